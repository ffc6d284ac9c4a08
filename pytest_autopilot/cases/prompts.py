"""Prompt templates: jinja2 with StrictUndefined, so a template naming a missing input fails
loudly instead of silently dropping it (the original lost inputs that way)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_autopilot.cases import defaults


class PromptError(Exception):
    """A template is missing or uses a variable the case does not provide."""


@lru_cache(maxsize=None)
def _environment(prompts_dir: str):
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(defaults.prompt_dirs(Path(prompts_dir))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(prompts_dir: Path, template: str, variables: dict[str, Any]) -> str:
    import jinja2

    try:
        return _environment(str(prompts_dir)).get_template(template).render(**variables)
    except jinja2.UndefinedError as exc:
        raise PromptError(f"{prompts_dir / template}: {exc.message}; add it to the case's context or fix the template") from None
    except jinja2.TemplateError as exc:
        raise PromptError(f"{prompts_dir / template}: {exc}") from None


def prompt_hash(messages: list[dict[str, str]]) -> str:
    digest = hashlib.sha256()
    for message in messages:
        digest.update(message["role"].encode() + b"\0" + message["content"].encode() + b"\0")
    return digest.hexdigest()[:16]

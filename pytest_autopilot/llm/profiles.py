"""Which LLMs a sweep evaluates: ``--autopilot-llm`` strings plus per-model profiles.

The models file (``autopilot-models.yaml``) gives parameter profiles per litellm model
string; the same model may have several profiles (the paper's tuned "p" vs default "np"),
each becoming its own test id::

    models:
      ollama/phi4:
        api_base: http://localhost:11434
        context_window: 16384          # sets Ollama num_ctx unless a profile sets it
        api_key_env: MY_SERVER_KEY     # for OpenAI-compatible servers: env var holding the key
        price: {input_per_mtok: 0.0, output_per_mtok: 0.0}
        profiles:
          p:  {temperature: 0.1, top_p: 0.3}
          np: {}

``--autopilot-llm ollama/phi4`` selects every profile; ``ollama/phi4@p`` one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_autopilot.core.util import slug, validation_line

STANDIN_MODEL = "scripted/standin"  # the offline default: scripted answers, not an LLM
LOCAL_PREFIX = "local/"  # a GGUF model the plugin serves itself with llama.cpp
HUMAN_PREFIX = "human/"  # a person answers through files (llm.human): a human baseline, not an LLM
# Unless a profile sets max_tokens: a careful PySG program with a few lines of prose takes 1,300-2,000
# tokens, so 1024 cut correct answers; 3072 leaves room without letting a rambling model run for minutes.
LOCAL_DEFAULT_MAX_TOKENS = 3072
# llama.cpp's n_ctx, set explicitly for every local model: a conversation's fifth attempt carries the
# task and four feedback turns (up to about 5k tokens with 3000-character errors), four earlier answers
# and room for the fifth, each up to max_tokens: 5k + 5 x 3072 = 20.4k tokens.
LOCAL_DEFAULT_CONTEXT = 24576

OLLAMA_DEFAULT_NUM_CTX = 8192  # set explicitly: Ollama's own default (2048) silently truncates


class LLMConfigError(Exception):
    """The models file or an --autopilot-llm value is invalid (one-line message)."""


class _Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None  # base seed: repetition r sends seed + r (see LLMSpec.seed_for)
    max_tokens: int | None = Field(default=None, gt=0)
    num_ctx: int | None = Field(default=None, gt=0)
    strategy: list[str] | None = None  # repair strategies this profile is swept with (registered names, loop.strategies)


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")  # the key itself never goes here
    context_window: int | None = Field(default=None, gt=0)
    price: _Price | None = None
    profiles: dict[str, _Profile] = Field(default_factory=dict)


class _ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: dict[str, _ModelEntry] = Field(default_factory=dict)


@dataclass(frozen=True)
class LLMSpec:
    """One model with one parameter profile: a column of the sweep."""

    model: str  # litellm model string
    profile: str | None
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    api_base: str | None = None
    context_window: int | None = None
    price: dict[str, float] | None = field(default=None, hash=False)
    api_key_env: str | None = None
    strategies: tuple[str, ...] = ()  # from the profile; empty: the settings / case decide

    @property
    def scripted(self) -> bool:
        return self.model == STANDIN_MODEL

    @property
    def is_human(self) -> bool:
        """A person answers (``human/<name>``): the human baseline, labelled as such everywhere."""
        return self.model.startswith(HUMAN_PREFIX)

    @property
    def is_ollama(self) -> bool:
        return self.model.startswith(("ollama/", "ollama_chat/"))

    @property
    def is_local(self) -> bool:
        """A GGUF served by the plugin's own llama.cpp server (``local/<name>`` or ``local/<path.gguf>``)."""
        return self.model.startswith(LOCAL_PREFIX)

    @property
    def local_alias(self) -> str:
        """The name a local model is asked by (and kept under in cassettes): never a path."""
        rest = self.model[len(LOCAL_PREFIX):]
        return Path(rest).stem if rest.endswith(".gguf") else rest

    @property
    def id(self) -> str:
        base = ("scripted-standin" if self.scripted else
                f"local-{slug(self.local_alias)}" if self.is_local else slug(self.model))  # human/ann: human-ann
        return f"{base}-{slug(self.profile)}" if self.profile else base

    def seed_for(self, repetition: int, attempt: int) -> int | None:
        """Repetition r samples with seed base + r, so repetitions differ and a re-recording
        reproduces them; later attempts add 1000 per attempt (a resampled prompt must not get
        the same answer again). Local models default to base 0; others send no seed unless set."""
        base = self.params.get("seed", 0 if self.is_local else None)
        return None if base is None else base + repetition + 1000 * (attempt - 1)


def load_models_file(path: Path | None) -> dict[str, _ModelEntry]:
    if path is None or not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return _ModelsFile.model_validate(raw).models
    except yaml.YAMLError as exc:
        raise LLMConfigError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except ValidationError as exc:
        raise LLMConfigError(validation_line(exc, str(path))) from None


def resolve_llms(selected: list[str] | None, models_file: Path | None) -> list[LLMSpec]:
    """Turn --autopilot-llm values into specs, in the given order (deterministic for xdist)."""
    entries = load_models_file(models_file)
    specs: list[LLMSpec] = []
    for value in selected or [STANDIN_MODEL]:
        model, _, wanted = value.partition("@")
        if not model:
            raise LLMConfigError(f"--autopilot-llm {value!r}: expected a litellm model string like ollama/phi4[@profile]")
        if model.startswith(HUMAN_PREFIX) and not model[len(HUMAN_PREFIX):].strip("/ "):
            raise LLMConfigError(f"--autopilot-llm {value!r}: name the person answering, e.g. human/ann")
        entry = entries.get(model, _ModelEntry())
        profiles = entry.profiles or {"": _Profile()}
        if wanted:
            if wanted not in profiles:
                known = ", ".join(p for p in profiles if p) or "none"
                raise LLMConfigError(f"--autopilot-llm {value!r}: no profile {wanted!r} for {model} in {models_file} (profiles: {known})")
            profiles = {wanted: profiles[wanted]}
        for name, profile in profiles.items():
            params = profile.model_dump(exclude_none=True)
            strategies = tuple(params.pop("strategy", ()))
            context = entry.context_window or (LOCAL_DEFAULT_CONTEXT if model.startswith(LOCAL_PREFIX) else None)
            spec = LLMSpec(model, name or None, params, entry.api_base, context,
                           entry.price.model_dump() if entry.price else None, entry.api_key_env, strategies)
            if spec.is_ollama:
                params.setdefault("num_ctx", entry.context_window or OLLAMA_DEFAULT_NUM_CTX)
            elif "num_ctx" in params:
                raise LLMConfigError(f"{models_file}: models.{model}.profiles.{name}.num_ctx: only Ollama models take num_ctx")
            if spec.is_local:  # bounded generation: a small model may otherwise ramble to the context's end
                params.setdefault("max_tokens", LOCAL_DEFAULT_MAX_TOKENS)
            specs.append(spec)
    ids = [s.id for s in specs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise LLMConfigError(f"--autopilot-llm: duplicate model id(s) {', '.join(dupes)}; give each parameter set its own profile name")
    return specs

"""The defaults shipped inside the package (``pytest_autopilot/data/``): the shared prompt
templates (``prompts/common/``) and the board registry (``hardware/*.yaml``).

A project's own ``prompts/`` and ``hardware/`` override them entry by entry: a user file with
the same relative name wins, any other name falls back to the packaged default.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parents[1] / "data"
PROMPTS = DATA / "prompts"
HARDWARE = DATA / "hardware"


def prompt_dirs(prompts_dir: Path) -> list[Path]:
    """Where templates are looked up, first match wins."""
    return [Path(prompts_dir), PROMPTS]


def prompt_path(prompts_dir: Path, template: str) -> Path | None:
    """The file ``template`` resolves to, or None."""
    for folder in prompt_dirs(prompts_dir):
        if (folder / template).is_file():
            return folder / template
    return None


def board_files(hardware_dir: Path) -> dict[str, Path]:
    """Board name -> its file: the packaged boards, overridden by the project's ``hardware_dir``."""
    files = {p.stem: p for p in sorted(HARDWARE.glob("*.yaml"))}
    files.update({p.stem: p for p in sorted(Path(hardware_dir).glob("*.yaml"))})
    return files

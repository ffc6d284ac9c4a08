"""``pytest-autopilot init [DIR]``: scaffold a user project from ``data/scaffold/``.

The project gets a pyproject.toml with the ini keys, one example case (prompt, reference, two
bad solutions), empty prompts/, cassettes/ and hardware/ folders, a .gitignore for reports, and a
GitHub Actions workflow (cassette check, self-test, offline replay, compare with the committed
baseline in baselines/main/, whose README says how to make it).
Existing files are never overwritten: init refuses and names them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_autopilot.cases.defaults import DATA

TEMPLATE = DATA / "scaffold"
# stored without the dot: setuptools' package-data globs skip hidden files and folders
RENAMED = {"gitignore": ".gitignore", "github": ".github"}


def planned_files(target: Path) -> dict[Path, Path]:
    """Template file -> where init writes it."""
    files = {}
    for source in sorted(TEMPLATE.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            rel = source.relative_to(TEMPLATE)
            files[source] = target.joinpath(*(RENAMED.get(part, part) for part in rel.parts))
    return files


def init(target: Path) -> int:
    files = planned_files(target)
    existing = [dest for dest in files.values() if dest.exists()]
    if existing:
        names = ", ".join(str(p.relative_to(target)) for p in existing)
        print(f"pytest-autopilot init: {target} already has {names}; remove them or pick another folder")
        return 1
    for source, dest in files.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    print(f"created an autopilot project in {target}; next: cd {target} && pytest --autopilot-self-test && pytest; "
          "before CI (.github/workflows/autopilot.yml) can replay and gate, commit cassettes/ and the baseline "
          "(baselines/README.md)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("init", help="scaffold a project: pyproject.toml, an example case, prompts/, cassettes/, "
                                    "hardware/, a CI workflow",
                       description="write a pyproject.toml with the autopilot ini keys, one example case with its "
                                   "prompt, reference and two bad solutions, prompts/, cassettes/, hardware/, "
                                   "baselines/, a .gitignore for reports and a GitHub Actions workflow into DIR "
                                   "(default: the current folder)")
    p.add_argument("dir", metavar="DIR", nargs="?", default=".", type=Path)
    p.set_defaults(func=lambda args: init(args.dir.resolve()))

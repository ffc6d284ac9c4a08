"""Archives of previously generated programs, for ``--autopilot-rescore DIR``.

Two layouts, mixed freely: one file per program in ``DIR`` (or ``DIR/<case name>/``), or one
folder per program holding its ``.py`` -- the paper's ``valid_<timestamp>_psg_<model>/`` and
``tmp_…`` folders, whose names contain ``:`` (``qwen2.5-coder:32b``).

Each program gets a model, a run id and the study's own verdict from, in this order: a
manifest (``--autopilot-rescore-groups FILE.csv|FILE.json``: columns/keys ``file``, ``model``,
``run``, ``verdict``; ``file`` is the program's path in ``DIR``, its folder or its file name),
a pattern with the named groups ``model``, ``run`` and ``verdict`` (``--autopilot-rescore-groups
REGEX``, matched against the folder name, else the file stem; default :data:`PAPER_PATTERN`),
else the archive's folder name as the model. ``valid`` (and success words) is a study success,
``tmp`` (and failure words) a study failure: the paper copied a program to ``valid_`` only when
its check passed. Model ids are names, never paths.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_autopilot.cases.spec import CaseError
from pytest_autopilot.core.util import slug

PAPER_PATTERN = r"^(?P<verdict>valid|tmp)_(?P<run>\d{8,14})_[a-z]+_(?P<model>.+)$"
SUCCESS = {"valid", "success", "successful", "pass", "passed", "ok", "true", "1", "yes"}
FAILURE = {"tmp", "failure", "fail", "failed", "error", "invalid", "false", "0", "no"}


@dataclass(frozen=True)
class ArchivedProgram:
    path: Path
    rel: str  # its path inside the archive: what reports show
    model: str  # e.g. qwen2.5-coder:32b
    run: str  # e.g. the folder's timestamp
    verdict: str | None  # the study's: "success", "failure" or None (unknown)
    key: str = ""  # unique among the archive's programs of one model: the item id's last part

    @property
    def model_id(self) -> str:
        return "archive-" + slug(self.model)

    def params(self) -> dict[str, Any]:
        """What the run record keeps about the program (its ``params``)."""
        return {"archive_file": self.rel, "study_run": self.run, "study_verdict": self.verdict}


def study_verdict(raw: Any) -> str | None:
    text = str(raw).strip().lower() if raw is not None else ""
    return "success" if text in SUCCESS else "failure" if text in FAILURE else None


def programs(archive: Path, case_name: str, groups: str | None = None) -> list[ArchivedProgram]:
    """The archive's programs for one case, sorted by model and run."""
    archive = Path(archive)
    folder = archive / case_name if (archive / case_name).is_dir() else archive
    manifest = _manifest(Path(groups)) if groups and _is_manifest(groups) else None
    pattern = _pattern(groups) if groups and manifest is None else re.compile(PAPER_PATTERN)
    skip = {Path(groups).resolve()} if manifest is not None else set()
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.resolve() in skip:
            continue
        if entry.is_file():
            found.append((entry, entry.stem))
        elif entry.is_dir():
            found += [(p, entry.name) for p in sorted(entry.rglob("*.py")) if not p.name.startswith(".")]
    out = sorted((_describe(path, name, archive, folder, manifest, pattern) for path, name in found),
                 key=lambda p: (p.model, p.run, p.rel))
    seen: set[tuple[str, str]] = set()
    keyed = []
    for program in out:
        key = slug(program.run)
        if (program.model_id, key) in seen:  # e.g. a valid_ and a tmp_ folder of the same second
            key = f"{key}-{slug(Path(program.rel).parent.name if '/' in program.rel else program.path.stem)}"
        seen.add((program.model_id, key))
        keyed.append(dataclasses.replace(program, key=key))
    return keyed


def _describe(path: Path, name: str, archive: Path, folder: Path, manifest, pattern) -> ArchivedProgram:
    rel = path.relative_to(archive).as_posix()
    if manifest is not None:
        for key in (rel, path.relative_to(folder).as_posix(), path.parent.name, path.name, path.stem):
            if key in manifest:
                row = manifest[key]
                return ArchivedProgram(path, rel, row["model"], str(row.get("run") or path.stem),
                                       study_verdict(row.get("verdict")))
    match = pattern.search(name)
    if match:
        groups = match.groupdict()
        return ArchivedProgram(path, rel, groups.get("model") or archive.name, groups.get("run") or path.stem,
                               study_verdict(groups.get("verdict")))
    return ArchivedProgram(path, rel, archive.name, path.stem, None)


def _is_manifest(groups: str) -> bool:
    if not groups.endswith((".csv", ".json")):
        return False
    if not Path(groups).is_file():
        raise CaseError(f"--autopilot-rescore-groups {groups}: no such manifest; give an existing .csv/.json file "
                        "(file, model, run, verdict) or a pattern")
    return True


def _pattern(text: str) -> re.Pattern:
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise CaseError(f"--autopilot-rescore-groups {text!r}: not a regular expression ({exc}); give a pattern with "
                        "named groups model, run, verdict, or a manifest .csv/.json") from None
    if "model" not in pattern.groupindex:
        raise CaseError(f"--autopilot-rescore-groups {text!r}: the pattern needs a named group (?P<model>...) "
                        "(run and verdict are optional)")
    return pattern


def _manifest(path: Path) -> dict[str, dict[str, Any]]:
    """file -> {model, run, verdict} from a CSV (header row) or a JSON list/mapping."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".csv":
            rows = list(csv.DictReader(text.splitlines()))
        else:
            data = json.loads(text)
            rows = [{"file": k, **v} for k, v in data.items()] if isinstance(data, dict) else data
    except (OSError, ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise CaseError(f"{path}: cannot read the re-score manifest ({exc}); give CSV with a header row or JSON") \
            from None
    out = {}
    for number, row in enumerate(rows if isinstance(rows, list) else [], start=1):
        if not isinstance(row, dict) or not row.get("file") or not row.get("model"):
            raise CaseError(f"{path}: row {number}: needs the fields file and model (and optionally run, verdict); "
                            f"got {row!r:.120}")
        out[str(row["file"]).strip()] = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
    if not out:
        raise CaseError(f"{path}: the re-score manifest lists no program; add rows file, model, run, verdict")
    return out

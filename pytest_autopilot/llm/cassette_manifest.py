"""A cassettes folder's ``MANIFEST.sha256`` (``sha256sum`` format): tamper evidence for the
cassettes a replay reads. Every recording updates its entry (``llm.cassettes``);
``pytest-autopilot cassettes --manifest`` rewrites them from the files as they are."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pytest_autopilot.core.util import atomic_write, cache_dir, file_lock, sha256_file

MANIFEST_NAME = "MANIFEST.sha256"
FIX = "re-record it with --record-mode=all, or delete it and record it with --record-mode=once"
MANIFEST_COMMAND = "pytest-autopilot cassettes --manifest"


def manifest_of(folder: Path) -> dict[str, str]:
    """A folder's manifest: cassette file name -> sha256 (empty when there is none)."""
    path = folder / MANIFEST_NAME
    entries = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            if name:
                entries[name] = digest
    return entries


def manifest_problem(path: Path, shown: str) -> str | None:
    """Why ``path`` does not match its folder's manifest, or None when it does."""
    manifest = Path(shown).parent / MANIFEST_NAME
    expected = manifest_of(path.parent).get(path.name)
    if expected is None:
        return f"{shown}: no sha256 entry in {manifest}; {FIX}, or if the file is trusted add it with: {MANIFEST_COMMAND}"
    if expected != sha256_file(path):
        return (f"{shown}: content differs from its sha256 in {manifest} (edited after recording?); {FIX}, "
                f"or if the edit is deliberate update the manifest with: {MANIFEST_COMMAND}")
    return None


def record_in_manifest(path: Path) -> None:
    """Write a just-recorded cassette's sha256 into its folder's manifest."""
    with _manifest_lock(path.parent):
        entries = manifest_of(path.parent)
        entries[path.name] = sha256_file(path)
        _write_manifest(path.parent, entries)


def write_manifests(cassettes_dir: Path) -> list[Path]:
    """(Re)write the manifest of every folder holding cassettes, from the files as they are."""
    written = []
    for folder in sorted({p.parent for p in Path(cassettes_dir).rglob("*.yaml")}):
        with _manifest_lock(folder):
            written.append(_write_manifest(folder, {p.name: sha256_file(p) for p in folder.glob("*.yaml")}))
    return written


def _manifest_lock(folder: Path):
    """One writer per manifest at a time: xdist workers record cassettes of one folder in parallel."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return file_lock(cache_dir("locks") / f"manifest-{key}.lock")


def _write_manifest(folder: Path, entries: dict[str, str]) -> Path:
    return atomic_write(folder / MANIFEST_NAME, "".join(f"{entries[n]}  {n}\n" for n in sorted(entries)))

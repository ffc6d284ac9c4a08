"""Record/replay of LLM traffic with vcrpy, and the checks a cassette passes before a replay.

Requests match on method, URL (loopback host:port ignored: the stand-in's port changes every
session) and the *normalised JSON body*, so a changed prompt is a miss, never a silent replay
of an old answer. Credentials are stripped before anything is written.

Before a replay a cassette must load with vcrpy's safe loader, hold well-formed interactions
with JSON bodies in its successful responses, and (tamper evidence) match the sha256 in its
folder's ``MANIFEST.sha256`` (``sha256sum`` format), which every recording updates.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category
from pytest_autopilot.core.util import atomic_write, cache_dir, file_lock, sha256_file

SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "openai-organization", "openai-project",
                  "anthropic-api-key", "x-goog-api-key", "cookie", "set-cookie", "proxy-authorization")
SECRET_QUERY = ("key", "api_key", "apikey", "token", "access_token")
SECRET_BODY_KEYS = ("api_key", "apikey", "token", "access_token")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Anything shaped like a credential; used by tests to scan the cassettes folder.
SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_-]{20,}|Bearer\s+[A-Za-z0-9._~+/-]{16,}|AKIA[0-9A-Z]{16}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{30,}|xox[abp]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,})"
)


def cassette_path(cassettes_dir: Path, nodeid: str) -> Path:
    """``cases/dp/x.yaml::x[scripted-standin-r01]`` -> ``<dir>/dp/x/scripted-standin-r01.yaml``."""
    file_part, _, rest = nodeid.partition("::")
    parts = Path(file_part).with_suffix("").parts
    if parts and parts[0] == "cases":
        parts = parts[1:]
    param = rest[rest.index("[") + 1:-1] if "[" in rest else rest
    return cassettes_dir.joinpath(*parts, re.sub(r"[^A-Za-z0-9._-]+", "-", param) + ".yaml")


def _uri_key(request) -> tuple[str, str, str, str]:
    parts = urlsplit(request.uri)
    host = "loopback" if parts.hostname in LOOPBACK else (parts.netloc or "")
    return parts.scheme, host, parts.path.rstrip("/"), parts.query


def normalised_body(body: bytes | str | None) -> object:
    if body in (None, b"", ""):
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return " ".join(text.split())
    if isinstance(data, dict):
        for key in SECRET_BODY_KEYS:
            data.pop(key, None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _match_uri(r1, r2) -> None:
    assert _uri_key(r1) == _uri_key(r2), "URL differs"


def _match_body(r1, r2) -> None:
    assert normalised_body(r1.body) == normalised_body(r2.body), "request body (prompt or parameters) differs"


def _scrub_request(request):
    if request.body:
        data = normalised_body(request.body)
        if isinstance(data, str) and data.startswith("{"):
            request.body = data.encode()
    return request


def _scrub_response(response):
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            del headers[name]
    return response


def make_vcr(record_mode: str, cassettes_dir: Path):
    import vcr

    recorder = vcr.VCR(
        cassette_library_dir=str(cassettes_dir),
        record_mode=record_mode,
        match_on=("method", "autopilot_uri", "autopilot_body"),
        filter_headers=list(SECRET_HEADERS),
        filter_query_parameters=list(SECRET_QUERY),
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )
    recorder.register_matcher("autopilot_uri", _match_uri)
    recorder.register_matcher("autopilot_body", _match_body)
    return recorder


# --------------------------------------------------------------------------- checks before a replay

MANIFEST_NAME = "MANIFEST.sha256"
FIX = "re-record it with --record-mode=all, or delete it and record it with --record-mode=once"
MANIFEST_COMMAND = "pytest-autopilot cassettes --manifest"


class CassetteInvalid(HarnessError):
    def __init__(self, message: str):
        super().__init__(Category.CASSETTE_INVALID, message)


def check_cassette(path: Path, shown: str) -> None:
    """Raise CassetteInvalid (one line naming ``shown``) unless vcrpy can replay ``path``:
    safe YAML (no ``!!python/object`` tag), interactions with a request and a response, and a
    JSON body in every successful response (what litellm parses)."""
    import yaml
    from vcr.serializers.yamlserializer import deserialize  # vcrpy's own safe loader

    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise CassetteInvalid(f"{shown}: empty file (truncated?); {FIX}")
        data = deserialize(text)
    except UnicodeDecodeError:
        raise CassetteInvalid(f"{shown}: not UTF-8 text; {FIX}") from None
    except yaml.constructor.ConstructorError as exc:
        raise CassetteInvalid(f"{shown}:{_line(exc)} refused YAML tag ({exc.problem}; a cassette is plain data); "
                              f"{FIX}") from None
    except yaml.YAMLError as exc:
        # one line: a reader error's text spans two ('... not allowed\n  in "<unicode string>", position 0')
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split()).replace(' in "<unicode string>",', " at")
        raise CassetteInvalid(f"{shown}:{_line(exc)} not valid YAML ({problem}; truncated?); {FIX}") from None
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list) or not interactions:
        raise CassetteInvalid(f"{shown}: not a vcrpy cassette (no list of interactions); {FIX}")
    for number, interaction in enumerate(interactions, start=1):
        problem = _interaction_problem(interaction)
        if problem:
            raise CassetteInvalid(f"{shown}: interaction {number}: {problem}; {FIX}")


def _line(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" line {mark.line + 1}:" if mark else ""


def _interaction_problem(interaction) -> str | None:
    request = interaction.get("request") if isinstance(interaction, dict) else None
    response = interaction.get("response") if isinstance(interaction, dict) else None
    if not isinstance(request, dict) or not {"method", "uri", "body", "headers"} <= set(request):
        return "no request with method, uri, body and headers"
    status = response.get("status") if isinstance(response, dict) else None
    body = response.get("body") if isinstance(response, dict) else None
    if not isinstance(status, dict) or not isinstance(status.get("code"), int) or not isinstance(body, dict):
        return "no response with a status code and a body"
    if 200 <= status["code"] < 300:
        text = body.get("string")
        try:
            json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
        except (TypeError, ValueError) as exc:
            return f"the response body is not JSON ({type(exc).__name__}: {str(exc)[:80]})"
    return None


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


# --------------------------------------------------------------------------- interactions never replayed

USE_KIND = "cassette-use"  # the cache folder of what each cassette's last replay used


def unused_interactions(cassette) -> tuple[list[int], int]:
    """(1-based numbers of the interactions a finished replay never played, how many it holds),
    from vcrpy's cassette object after its ``use_cassette`` block."""
    total = len(cassette.data)
    return [i + 1 for i in range(total) if not cassette.play_counts[i]], total


def unused_message(shown: str, unused: list[int], total: int) -> str:
    return (f"{shown}: {len(unused)} of its {total} interactions were never replayed ({_numbers(unused)}; left from "
            f"an earlier recording?); re-record it with --record-mode=all")


def _numbers(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``interactions 1-3, 7``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return "interactions " + ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def remember_use(path: Path, unused: list[int], total: int) -> None:
    """Note what a finished replay of ``path`` used, under the cassette's sha256 (an edited or
    re-recorded cassette is another file), for ``pytest-autopilot cassettes``."""
    folder = cache_dir(USE_KIND)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"{sha256_file(path)}.json", json.dumps({"interactions": total, "unused": unused}) + "\n")
    except OSError:  # a read-only cache loses only this note; the run's own warning still says it
        pass


def last_use(path: Path) -> dict | None:
    """What the last finished replay of this exact cassette used; None when none was seen here."""
    note = cache_dir(USE_KIND) / f"{sha256_file(path)}.json"
    try:
        return json.loads(note.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def survey(cassettes: list[Path], shown) -> tuple[list[str], list[str], int]:
    """``pytest-autopilot cassettes``: (one line per unreadable cassette or one not matching its
    manifest, one line per cassette whose last replay here left interactions unused, how many
    were never replayed here). ``shown(path)``: the path as the user sees it."""
    problems, unused, unknown = [], [], 0
    for path in cassettes:
        try:
            check_cassette(path, shown(path))
            problem = manifest_problem(path, shown(path))
        except CassetteInvalid as exc:
            problem = str(exc)
        if problem:
            problems.append(problem)
        use = last_use(path)
        if use is None:
            unknown += 1
        elif use["unused"]:
            unused.append("unused: " + unused_message(shown(path), use["unused"], use["interactions"]))
    return problems, unused, unknown


# --------------------------------------------------------------------------- half-written cassettes


def partial_path(cassette: Path) -> Path:
    """Where this process records ``cassette`` until its run ends; the pid tells a live writer's
    copy from a killed one's."""
    return cassette.with_name(f"{cassette.name}.{os.getpid()}.partial")


def remove_stale_partials(cassettes_dir: Path) -> list[Path]:
    """Remove every ``.partial`` cassette under ``cassettes_dir`` whose writer is this process or
    gone (a SIGKILLed worker's); another live session's stay. Returns the removed files."""
    removed = []
    for path in Path(cassettes_dir).rglob("*.partial"):
        pid = path.suffixes[-2][1:] if len(path.suffixes) >= 2 else ""
        if not pid.isdigit() or int(pid) == os.getpid() or not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """A running process (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"

"""Record/replay of LLM traffic with vcrpy, and the checks a cassette passes before a replay.

Requests match on method, URL (loopback host:port ignored: the stand-in's port changes every
session) and the *normalised JSON body*, so a changed prompt is a miss, never a silent replay
of an old answer. Credentials are stripped before anything is written.

Before a replay a cassette must load with vcrpy's safe loader, hold well-formed interactions
with JSON bodies in its successful responses, and (tamper evidence) match the sha256 in its
folder's ``MANIFEST.sha256`` (``llm.cassette_manifest``), which every recording updates.

This is the one module that touches vcrpy: a run uses its cassette through
:meth:`Cassettes.for_run` (the checks, the record mode, the ``.partial`` copy, the manifest and
the unused-interaction note), and the client asks :func:`cassette_miss` what a refused request was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category
from pytest_autopilot.core.util import atomic_write, cache_dir, sha256_file
from pytest_autopilot.llm.cassette_manifest import FIX, manifest_problem, record_in_manifest

SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "openai-organization", "openai-project",
                  "anthropic-api-key", "x-goog-api-key", "cookie", "set-cookie", "proxy-authorization")
SECRET_QUERY = ("key", "api_key", "apikey", "token", "access_token")
SECRET_BODY_KEYS = ("api_key", "apikey", "token", "access_token")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


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


class Cassettes:
    """A session's cassettes: one vcrpy recorder (built on first use) for all its runs."""

    def __init__(self, cassettes_dir: Path, record_mode: str, check: str, shown: Callable[[Path], str] = str):
        self.dir, self.record_mode, self.check, self.shown = Path(cassettes_dir), record_mode, check, shown
        self._vcr = None

    def path(self, nodeid: str) -> Path:
        return cassette_path(self.dir, nodeid)

    def for_run(self, cassette: Path, warnings: list[str]) -> CassetteUse:
        """One run's use of ``cassette``; an existing one is checked first (:meth:`usable`)."""
        exists = cassette.exists()
        will_record = self.record_mode in ("new_episodes", "all") or (self.record_mode == "once" and not exists)
        # --record-mode=all records the run afresh: none of the old cassette's interactions is kept
        keep_old = exists and self.record_mode != "all" and self.usable(cassette, warnings)
        return CassetteUse(self, cassette, will_record, keep_old, warnings)

    def usable(self, cassette: Path, warnings: list[str]) -> bool:
        """Check an existing cassette before its use. A replay of an unreadable one is a
        ``cassette_invalid`` error, as is one not matching its manifest under
        ``--autopilot-cassette-check=error`` (under ``warn`` the run records the warning and goes on)."""
        shown = self.shown(cassette)
        check_cassette(cassette, shown)
        problem = manifest_problem(cassette, shown)
        if problem and self.check == "error":
            raise CassetteInvalid(problem)
        if problem:
            warnings.append(f"{Category.CASSETTE_INVALID}: {problem}")
        return True

    @property
    def vcr(self):
        if self._vcr is None:
            self._vcr = make_vcr(self.record_mode, self.dir)
        return self._vcr


class CassetteUse:
    """A context manager around one run's LLM traffic. Replay straight from the cassette (vcrpy
    never writes it then), or record through a ``.partial`` copy that replaces it, and updates its
    manifest entry, only when the run ended (passed, failed or stopped by an error): an interrupted
    run must not leave a half cassette that the next run would replay. A killed worker's copy is
    removed at session end. A replay that ended without an error notes the interactions it never
    played, and warns of them."""

    def __init__(self, cassettes: Cassettes, path: Path, will_record: bool, keep_old: bool, warnings: list[str]):
        self.cassettes, self.path, self.will_record, self.keep_old = cassettes, path, will_record, keep_old
        self.warnings = warnings
        self._active = None

    def __enter__(self):
        self._active = self._record() if self.will_record else self._replay()
        return self._active.__enter__()

    def __exit__(self, *exc_info):
        return self._active.__exit__(*exc_info)

    @contextlib.contextmanager
    def _replay(self):
        with self.cassettes.vcr.use_cassette(str(self.path)) as played:
            yield
        unused, total = unused_interactions(played)
        remember_use(self.path, unused, total)
        if unused:
            self.warnings.append(unused_message(self.cassettes.shown(self.path), unused, total))

    @contextlib.contextmanager
    def _record(self):
        cassette, partial = self.path, partial_path(self.path)
        cassette.parent.mkdir(parents=True, exist_ok=True)
        if self.keep_old:
            shutil.copyfile(cassette, partial)
        finished = False
        try:
            with self.cassettes.vcr.use_cassette(str(partial)):
                try:
                    yield
                    finished = True
                except Exception:
                    finished = True
                    raise
        finally:
            if finished and partial.exists():
                os.replace(partial, cassette)
                record_in_manifest(cassette)
            else:
                partial.unlink(missing_ok=True)


class CassetteMiss(HarnessError):
    def __init__(self, message: str):
        super().__init__(Category.CASSETTE_MISS, message)


def cassette_miss(exc: BaseException, cassette: str | None) -> CassetteMiss | None:
    """The error to raise when vcrpy refused a request it has no recording of (anywhere in
    ``exc``'s chain), or None when ``exc`` is something else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ == "CannotOverwriteExistingCassetteException":
            return CassetteMiss(_miss_message(cassette))
        exc = exc.__cause__ or exc.__context__
    return None


def _miss_message(cassette: str | None) -> str:
    if cassette and not os.path.exists(cassette):
        return f"no cassette at {cassette} and --record-mode=none; record it with --record-mode=once"
    return (f"prompt changed since recording: no match in cassette {cassette} (method, URL and "
            f"normalised body are compared); re-record with --record-mode=all, or delete it and use "
            f"--record-mode=once")


# --------------------------------------------------------------------------- checks before a replay



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


def recorded_messages(cassette: Path) -> list[list] | None:
    """The messages of every request recorded in a cassette (None: not a readable cassette)."""
    from vcr.serializers.yamlserializer import deserialize

    try:
        out = []
        for interaction in deserialize(cassette.read_text(encoding="utf-8"))["interactions"]:
            body = interaction["request"]["body"]
            out.append(json.loads(body.decode() if isinstance(body, bytes) else body)["messages"])
        return out
    except Exception:  # noqa: BLE001 -- an unreadable cassette is for `pytest-autopilot cassettes` to explain
        return None


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

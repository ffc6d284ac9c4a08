"""Record/replay of LLM traffic with vcrpy.

Requests match on method, URL (loopback host:port ignored: the stand-in's port changes every
session) and the *normalised JSON body*, so a changed prompt is a miss, never a silent replay
of an old answer. Credentials are stripped before anything is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

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

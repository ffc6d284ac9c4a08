"""Stage-independent oracles, usable by any case."""

from __future__ import annotations

import re

from pytest_autopilot.core.records import Category, Check, Verdict
from pytest_autopilot.oracles import OracleContext


def output_files(ctx: OracleContext) -> Verdict:
    """params.files: {relative path: {equals: text} | {matches: regex} | {}} — each must exist
    inside the work dir and, when asked, have exactly that text or match that pattern."""
    checks, missing = [], False
    for rel, expect in ctx.params.get("files", {}).items():
        path = (ctx.workdir / rel).resolve()
        inside = path.is_relative_to(ctx.workdir.resolve())
        exists = inside and path.is_file()
        checks.append(Check(f"exists:{rel}", exists, "" if exists else f"{rel} was not written"))
        if not exists:
            missing = True
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        expect = expect or {}
        if "equals" in expect:
            same = text.strip() == str(expect["equals"]).strip()
            checks.append(Check(f"content:{rel}", same, "" if same else f"expected {expect['equals']!r}, got {text[:80]!r}"))
        if "matches" in expect:
            ok = re.search(expect["matches"], text) is not None
            checks.append(Check(f"content:{rel}", ok, "" if ok else f"does not match {expect['matches']!r}"))
    return Verdict.from_checks("output_files", checks, Category.ARTIFACT_MISSING if missing else None)

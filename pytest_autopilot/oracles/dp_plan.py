"""Strict oracle of the DP stage's plan step: ``dp_plan`` judges the JSON plan of
data-engineering operations (a json step, nothing ran) that the ``fruit_pipeline`` case's
operation steps then implement one by one (``oracles.dp_operation``).

One named ``Check`` per property. Category: ``artifact_missing`` when the answer is not a
plan object with an operations list, else ``semantic_mismatch``.
"""

from __future__ import annotations

import re
from collections import Counter

from pytest_autopilot.core.records import Check, Verdict
from pytest_autopilot.core.util import listed
from pytest_autopilot.oracles import OracleContext, categorised_verdict

_SNAKE = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"


def dp_plan(ctx: OracleContext) -> Verdict:
    """A JSON plan ``{"operations": [{"name", "description"}, ...]}``.

    params: ``operations`` (exact count, default 8); ``name_pattern`` (default snake_case);
    ``min_description_chars`` (default 10); ``required``: mapping kind -> ``{keywords: [...],
    where: name|any, unique: bool}`` -- some operation's name (``where: name``) or name or
    description (``where: any``) must contain one of the keywords, case-insensitively; with
    ``unique: true`` exactly one operation may (the operation step keys its split checks on
    the name, so a second "split" operation would be judged as a train/test split too).
    """
    p = ctx.params
    want = int(p.get("operations", 8))
    pattern = re.compile(p.get("name_pattern", _SNAKE))
    min_chars = int(p.get("min_description_chars", 10))
    plan = ctx.answer
    checks: list[Check] = []
    is_obj = isinstance(plan, dict)
    checks.append(Check("plan_is_object", is_obj,
                        "" if is_obj else f'expected a JSON object {{"operations": [...]}}, got {type(plan).__name__}'))
    ops = plan.get("operations") if is_obj else None
    is_list = isinstance(ops, list) and all(isinstance(o, dict) for o in ops)
    checks.append(Check("operations_list", is_list,
                        "" if is_list else 'key "operations" must be a list of objects {"name": ..., "description": ...}'))
    if not is_list:
        return categorised_verdict("dp_plan", checks, {"plan_is_object", "operations_list"})

    checks.append(Check("operation_count", len(ops) == want, f"{len(ops)} operations, expected exactly {want}"))
    names = [o.get("name") for o in ops]
    bad_names = [n for n in names if not isinstance(n, str) or not pattern.match(n)]
    checks.append(Check("names_snake_case", not bad_names,
                        f"names not matching {pattern.pattern}: {listed(repr(n) for n in bad_names)}" if bad_names else ""))
    dupes = sorted(n for n, c in Counter(map(str, names)).items() if c > 1)
    checks.append(Check("names_unique", not dupes, f"repeated names: {listed(dupes)}" if dupes else ""))
    thin = [str(o.get("name")) for o in ops
            if not isinstance(o.get("description"), str) or len(o["description"].strip()) < min_chars]
    checks.append(Check("descriptions_present", not thin,
                        f"operations without a description of at least {min_chars} characters: {listed(thin)}" if thin else ""))
    for kind, rule in (p.get("required") or {}).items():
        keywords = [k.lower() for k in rule.get("keywords", [kind])]
        where = rule.get("where", "any")
        texts = [(str(o.get("name", "")) + ("" if where == "name" else " " + str(o.get("description", "")))).lower()
                 for o in ops]
        hits = [str(o.get("name")) for o, t in zip(ops, texts) if any(k in t for k in keywords)]
        place = "an operation name" if where == "name" else "an operation name or description"
        if not hits:
            detail = f"no operation covers {kind}: {place} must mention one of {keywords}"
        elif rule.get("unique") and len(hits) > 1:
            detail = f"only one operation may be the {kind} operation ({place} mentioning one of {keywords}); got {hits}"
        else:
            detail = ""
        checks.append(Check(f"covers:{kind}", not detail, detail))
    return categorised_verdict("dp_plan", checks, {"plan_is_object", "operations_list"})

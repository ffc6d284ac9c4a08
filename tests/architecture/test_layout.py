"""The package's shape, checked: no import cycles (counting imports inside functions), lower
layers never import the pytest glue nor read the session object, the concept packages import
only those before them in ARCHITECTURE.md's order, vcrpy is touched by one module, every module
is named in ARCHITECTURE.md, and no module grows past the size the layout allows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "pytest_autopilot"
GLUE = {"plugin", "session", "distribution", "settings", "collect", "runner", "cli", "hookspec"}  # the only top-level modules
MAX_LINES = 420  # "about 400"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    return {m for m in imported_names(path, name) if m in modules and m != name}


def imported_names(path: Path, name: str) -> set[str]:
    """Every module an import statement names (inside functions too), relative ones resolved."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_inside_the_package():
    assert cycles(import_graph()) == []


def test_lower_layers_never_import_the_pytest_glue():
    glue = {f"pytest_autopilot.{m}" for m in GLUE}
    offenders = {name: sorted(deps & glue) for name, deps in import_graph().items()
                 if name not in glue and name != "pytest_autopilot" and deps & glue}
    assert offenders == {}


def test_top_level_holds_only_the_pytest_glue():
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top <= GLUE, top - GLUE


def test_no_module_is_over_about_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


# --------------------------------------------------------------------------- package order

ARCHITECTURE = PACKAGE.parent / "ARCHITECTURE.md"


def declared_order() -> list[str]:
    """The concept packages, lowest first, from ARCHITECTURE.md's line ``Import order: `core` < ...``."""
    line = next(line for line in ARCHITECTURE.read_text().splitlines() if line.startswith("Import order:"))
    return re.findall(r"`(\w+)`", line.partition(":")[2].partition(".")[0])


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


def up_imports(graph: dict[str, set[str]], order: list[str]) -> list[str]:
    """``module -> imported`` for each import of a concept package not before the importer's in ``order``."""
    rank = {name: i for i, name in enumerate(order)}
    out = []
    for module, deps in sorted(graph.items()):
        here = package_of(module)
        if here not in rank:
            continue
        out += [f"{module} -> {dep}" for dep in sorted(deps)
                if (there := package_of(dep)) in rank and rank[there] > rank[here]]
    return out


def test_the_declared_order_names_every_concept_package():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert sorted(declared_order()) == sorted(packages)


def test_the_order_check_finds_an_up_import():
    graph = {"pytest_autopilot.llm.client": {"pytest_autopilot.loop.repair", "pytest_autopilot.core.records"},
             "pytest_autopilot.loop.repair": {"pytest_autopilot.llm.client"}}
    assert up_imports(graph, ["core", "llm", "loop"]) == ["pytest_autopilot.llm.client -> pytest_autopilot.loop.repair"]


def test_packages_import_only_those_before_them_in_the_declared_order():
    assert up_imports(import_graph(), declared_order()) == []


def test_only_the_cassettes_module_touches_vcrpy():
    users = {name for name, path in _modules().items()
             if any(m == "vcr" or m.startswith("vcr.") for m in imported_names(path, name))}
    assert users == {"pytest_autopilot.llm.cassettes"}


# --------------------------------------------------------------------------- the session object

SESSION_OWNERS = {"plugin", "session", "collect", "distribution", "cli"}  # the glue that holds the session
SESSION_NAMES = {"session", "autopilot", "AutopilotSession", "SESSION_KEY"}


def session_uses(source: str) -> list[str]:
    """Where a module receives or reads the session object: a parameter or a name called like it,
    an import of ``pytest_autopilot.session``, or a lookup in ``config.stash``."""
    found = []
    for node in _outside_pytest_hooks(ast.parse(source)):
        if isinstance(node, ast.arg) and node.arg in SESSION_NAMES:
            found.append(f"line {node.lineno}: parameter {node.arg}")
        elif isinstance(node, ast.Name) and node.id in SESSION_NAMES:
            found.append(f"line {node.lineno}: name {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr == "stash":
            found.append(f"line {node.lineno}: .stash")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").endswith("session"):
            found.append(f"line {node.lineno}: imports {node.module}")
    return sorted(found, key=lambda line: (int(line.split()[1].rstrip(":")), line))


def _outside_pytest_hooks(tree: ast.AST):
    """Every node but those of ``pytest_*`` hook functions: their ``session`` is pytest's own."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("pytest_"):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def test_the_session_check_finds_a_module_reading_the_session(tmp_path):
    throwaway = tmp_path / "violating.py"
    throwaway.write_text("def provenance(session, records):\n    return session.run_id\n\n"
                         "def lookup(config):\n    from pytest_autopilot.session import SESSION_KEY\n"
                         "    return config.stash[SESSION_KEY].settings\n")
    assert session_uses(throwaway.read_text()) == [
        "line 1: parameter session", "line 2: name session", "line 5: imports pytest_autopilot.session",
        "line 6: .stash", "line 6: name SESSION_KEY"]  # sorted by line, then text
    assert session_uses("def provenance(ctx, records):\n    return ctx.run_id\n") == []


def test_no_module_below_the_glue_receives_or_reads_the_session():
    offenders = {name: uses for name, path in _modules().items()
                 if name.split(".")[-1] not in SESSION_OWNERS and (uses := session_uses(path.read_text()))}
    assert offenders == {}


# --------------------------------------------------------------------------- ARCHITECTURE.md names every module


def unnamed_modules(text: str, modules: dict[str, Path]) -> list[str]:
    """Modules whose file is named nowhere in ``text`` (as ``name.py`` or a path ending in it)."""
    named = set(re.findall(r"([\w/]+\.py)\b", text))
    out = []
    for path in modules.values():
        rel = path.relative_to(PACKAGE).as_posix()
        if not any(rel == n or rel.endswith("/" + n) or n.endswith("/" + rel) or n == path.name for n in named):
            out.append(rel)
    return sorted(out)


def test_the_name_check_finds_an_unnamed_module(tmp_path):
    assert unnamed_modules("`cases/spec.py`, `util.py`", {
        "a": PACKAGE / "cases/spec.py", "b": PACKAGE / "core/util.py", "c": PACKAGE / "core/nowhere.py"}) == ["core/nowhere.py"]


def test_architecture_md_names_every_module():
    """Every module file (packaged data, e.g. the scaffold's solutions, is not a module)."""
    modules = {name: path for name, path in _modules().items()
               if path.name != "__init__.py" and "data" not in path.relative_to(PACKAGE).parts}
    assert unnamed_modules(ARCHITECTURE.read_text(), modules) == []


def test_the_launcher_scripts_import_as_modules():
    """They run by path in the sandbox, importing each other as top-level modules; as modules of the
    package they must import too (the harness reads their constants, tests their functions)."""
    import importlib

    folder = PACKAGE / "executors" / "launcher"
    names = sorted(p.stem for p in folder.glob("_launcher*.py"))
    assert len(names) == 6
    for name in names:
        importlib.import_module(f"pytest_autopilot.executors.launcher.{name}")

"""The one shape of every app (README, *Layout*): modules of a kind live in a package of that
kind, never side by side under suffixed names, and no modules import each other in a circle.

Read from the source with ``ast`` (nothing is imported), so a new ``views_x.py`` or a circle
fails here before it reaches review.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("acura_portal", "tenants", "protection", "clouds", "storage", "agent")
KINDS = ("models", "views", "api", "serializers", "selectors", "services", "forms", "admin", "urls")


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The first-party modules ``name`` imports, at any depth of its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
                elif target in modules:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
    found.discard(name)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a circle."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_import_cycles_finds_a_circle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert import_cycles(graph) == []


@pytest.mark.parametrize("app", APPS)
def test_modules_of_a_kind_live_in_a_package_of_that_kind(app):
    top = ROOT / app
    suffixed = sorted(
        p.name for p in top.glob("*.py") if any(p.stem.startswith(f"{k}_") for k in KINDS)
    )
    assert suffixed == [], f"{app}: move these into a package of their kind: {suffixed}"
    both = sorted(k for k in KINDS if (top / f"{k}.py").exists() and (top / k).is_dir())
    assert both == [], f"{app}: a kind is both a module and a package: {both}"


def test_no_clouds_module_keeps_a_concern_suffix():
    banned = ("_clouds", "_customer", "_wizard", "_links", "_manage")
    names = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "clouds").rglob("*.py")
        if p.stem.endswith(banned) and "migrations" not in p.parts
    )
    assert names == []

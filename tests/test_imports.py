"""Imports run one way: common/ at the bottom, rewards/ above it, rl/ on top; no cycle anywhere.

Read from the source (an AST walk, function-level imports included: a lazy import is still a
dependency, and a cycle through one only waits for the wrong call order to break)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "rewards", "rl")
# Who may import whom: a package imports itself and what is below it, never what is above.
BELOW = {"common": set(), "rewards": {"common"}, "rl": {"common", "rewards"}}
PENDING_CYCLES: list[list[str]] = []  # none left: any cycle fails


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path], root: Path = ROOT) -> set[str]:
    """The project modules a file imports (anywhere in it), resolved to the module actually loaded."""
    this = module_name(path, root)
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the current package
                package = this.split(".") if is_package else this.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `import a.b.c` of a non-module attribute: its module
                name = name.rpartition(".")[0]
            if name and name != this:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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


def test_the_walk_sees_lazy_relative_and_from_imports(tmp_path):
    # The checker itself must catch what it claims to: a cycle through a function-level import.
    (tmp_path / "rl").mkdir()
    (tmp_path / "rl" / "__init__.py").write_text("")
    (tmp_path / "rl" / "a.py").write_text("def f():\n    from rl.b import g\n")
    (tmp_path / "rl" / "b.py").write_text("from . import c\n")
    (tmp_path / "rl" / "c.py").write_text("import rl.a\n")
    modules = {module_name(p, tmp_path): p for p in (tmp_path / "rl").rglob("*.py")}
    graph = {name: imports_of(path, modules, tmp_path) for name, path in modules.items()}
    assert graph["rl.a"] == {"rl.b"} and graph["rl.b"] == {"rl.c"} and graph["rl.c"] == {"rl.a"}
    assert cycles(graph) == [["rl.a", "rl.b", "rl.c"]]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package):
    graph = import_graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in BELOW[package] | {package}
    )
    assert not wrong, f"{package}/ may import only {sorted(BELOW[package]) or 'nothing of the project'}: {wrong}"


def test_the_graph_covers_the_project():
    graph = import_graph()
    assert {"common.retry", "rewards.judge.context", "rl.train"} <= set(graph)
    assert "common.conversation" in graph["rewards.judge.context"]

"""The import graph of the suite's packages: no import cycle between modules, and the layers import one way.

The graph is read from the source with :mod:`ast` (nothing is imported): every ``import`` and ``from ... import``
statement, at module level and inside functions alike, gives an edge to the suite module it names. ``from x import y``
where ``x.y`` is a module of the suite is an edge to ``x.y`` (``from data import toy`` reads ``data.toy``), else an
edge to ``x``; ``import x.y.z`` is an edge to the longest suite module that the dotted name starts with. The parent
packages that Python imports along the way are not edges (every submodule would otherwise depend on its package's
``__init__``); imports by string (``importlib.import_module``) are not seen.

Layers, lowest first: ``data`` < ``models`` < ``trainers`` < ``experiments`` < ``analysis`` < ``controls``, and
``bench`` beside ``controls``. A layer imports nothing from a layer above it (docs/layout.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "models", "trainers", "experiments", "analysis", "controls", "bench")
# package -> the packages it must not import (directly, at any depth of its modules)
FORBIDDEN = {
    "data": ("models", "trainers", "experiments", "analysis", "controls", "bench"),
    "models": ("trainers", "experiments", "analysis", "controls", "bench"),
    "trainers": ("experiments", "analysis", "controls", "bench"),
    "experiments": ("analysis", "controls", "bench"),
    "analysis": ("controls", "bench"),  # analysis only reads runs: the controls that load models sit above it
    "controls": ("bench",),
}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` file of :data:`PACKAGES` (``__init__`` as the package)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _longest_known(name: str, known: Mapping[str, Path]) -> str | None:
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return None


def imports_of(module: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported suite module, line) for every import statement of ``path``, at any depth."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _longest_known(alias.name, known)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                base_parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in known else _longest_known(base, known)
                if target is not None:
                    yield target, node.lineno


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """module -> {imported module: first line importing it}, self-imports left out."""
    known = module_files(root)
    graph: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        edges = graph.setdefault(module, {})
        for target, line in imports_of(module, path, known):
            if target != module:
                edges.setdefault(target, line)
    return graph


def strongly_connected(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return sorted(out)


def a_cycle(graph: Mapping[str, Mapping[str, int]], component: list[str]) -> list[str]:
    """One shortest cycle through the first module of ``component`` (breadth-first within the component), closed:
    its first module is repeated at the end."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in parent and child != start:
                    parent[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in {component}")  # unreachable for a strongly connected component


def describe(graph: Mapping[str, Mapping[str, int]], cycle: list[str]) -> str:
    known = module_files()
    steps = [
        f"{a} (line {graph[a][b]} of {known[a].relative_to(ROOT)})" for a, b in zip(cycle, cycle[1:], strict=False)
    ]
    return " -> ".join([*steps, cycle[-1]])


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph()


def test_the_graph_sees_every_kind_of_import(graph):
    # Top level, inside a function, and ``from package import submodule``.
    assert "data.io" in graph["data.toy.generate"]
    assert "data.toy" in graph["models.tokenizer"] and "data.toy.instruct" in graph["models.tokenizer"]
    assert "experiments.profiles" in graph["analysis.sources"]  # imported inside add_source_arguments


def test_no_import_cycle(graph):
    found = []
    for component in strongly_connected(graph):
        inside = "; ".join(f"{m} -> {', '.join(t for t in sorted(graph[m]) if t in component)}" for m in component)
        found.append(f"{describe(graph, a_cycle(graph, component))}\n    (the whole circle: {inside})")
    assert not found, "import cycles between modules:\n  " + "\n  ".join(found)


def test_the_cycle_finder_finds_and_names_a_cycle():
    toy_graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}, "e": {"d": 5}}
    assert strongly_connected(toy_graph) == [["a", "b", "c"]]
    assert a_cycle(toy_graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert strongly_connected({"a": {"b": 1}, "b": {}}) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_one_way(graph, package):
    known = module_files()
    bad = [
        f"{module} imports {target} (line {line} of {known[module].relative_to(ROOT)})"
        for module, edges in sorted(graph.items())
        if module.split(".")[0] == package
        for target, line in sorted(edges.items())
        if target.split(".")[0] in FORBIDDEN[package]
    ]
    assert not bad, f"{package} must not import {', '.join(FORBIDDEN[package])}:\n  " + "\n  ".join(bad)

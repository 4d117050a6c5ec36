"""The package's layers: every import (function-level ones included) goes to the importing module's own
unit or to a lower layer, and no modules import each other in a cycle. The order is the one written in
the package docstring (``src/emomotion/__init__.py``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import emomotion

PACKAGE = Path(emomotion.__file__).parent


def documented_layers(doc: str) -> list[set[str]]:
    """The layers of the docstring's ``code-block``, lowest first: one line of comma-separated units each."""
    block = doc.split(".. code-block:: text", 1)[1].split("\n\n")[1]
    return [{u.strip() for u in line.split(",")} for line in block.strip().splitlines()]


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__``)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_modules(source: str, modules: Mapping[str, Path], root: str) -> Iterator[str]:
    """The package's modules that ``source`` imports anywhere (``from a import b`` names ``a.b`` when that
    is a module, else ``a``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == root or node.module.startswith(root + "."):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    yield full if full in modules else node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == root or alias.name.startswith(root + "."):
                    yield alias.name


def import_graph(modules: Mapping[str, Path], root: str) -> dict[str, set[str]]:
    return {
        name: set(imported_modules(path.read_text(encoding="utf-8"), modules, root)) - {name}
        for name, path in modules.items()
    }


def unit_of(module: str) -> str:
    """``emomotion.models.mdm`` -> ``models``; the package itself is the unit ``emomotion``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(graph: Mapping[str, set[str]], layers: list[set[str]]) -> list[str]:
    """Each import that goes to a peer or a higher layer, or from or to a unit no layer lists."""
    level = {unit: i for i, line in enumerate(layers) for unit in line}
    problems = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = unit_of(source), unit_of(target)
            if a == b:
                continue
            if a not in level or b not in level:
                problems.append(f"{source} -> {target}: unit {a if a not in level else b!r} is in no layer")
            elif level[b] >= level[a]:
                relation = "a peer of" if level[a] == level[b] else "above"
                problems.append(f"{source} -> {target}: {b!r} is {relation} {a!r}")
    return problems


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(module_files(PACKAGE), "emomotion")


def test_every_import_goes_down_the_documented_layers(graph):
    layers = documented_layers(emomotion.__doc__ or "")
    assert len(layers) > 5 and {"models", "training", "evaluation", "cli"} <= set().union(*layers)
    assert layer_violations(graph, layers) == []


def test_no_import_cycles(graph):
    assert import_cycles(graph) == []


def test_the_checks_catch_an_upward_import_a_peer_import_and_a_cycle():
    layers = [{"errors"}, {"training", "evaluation"}, {"cli"}]
    graph = {
        "p.errors": {"p.cli"},  # upwards
        "p.training.loop": {"p.evaluation.metrics", "p.errors"},  # a peer; errors is fine
        "p.evaluation.metrics": {"p.evaluation.report"},
        "p.evaluation.report": {"p.evaluation.metrics"},  # a cycle inside one unit
        "p.cli": {"p.training.loop", "p.extra"},  # extra is in no layer
    }
    problems = layer_violations(graph, layers)
    assert problems == [
        "p.cli -> p.extra: unit 'extra' is in no layer",
        "p.errors -> p.cli: 'cli' is above 'errors'",
        "p.training.loop -> p.evaluation.metrics: 'evaluation' is a peer of 'training'",
    ]
    assert sorted(import_cycles(graph)) == [
        ["p.cli", "p.errors", "p.training.loop"],  # through the upward import
        ["p.evaluation.metrics", "p.evaluation.report"],
    ]


def test_function_level_and_package_imports_are_seen():
    modules = {"p": Path("x"), "p.a": Path("x"), "p.b": Path("x"), "p.b.c": Path("x")}
    source = "from p.b import c, helper\nimport p.a\n\ndef f():\n    from p import a\n"
    assert sorted(set(imported_modules(source, modules, "p"))) == ["p.a", "p.b", "p.b.c"]

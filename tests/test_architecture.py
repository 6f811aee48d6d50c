"""The import graph: one-way layers, no cycles, Beam only where a stage runs in Beam.

Data flows dumps -> urls -> warc -> shards -> tokens -> checkpoints, and the code follows it:
`core` (with the `sample` data package beside it) is the floor; `crawl`, `extract` and `dedup` stand on it side by side; `shards` composes
them into the build pipeline; `training` and `overlap` read the shards; `webtext` (config
aggregation, CLI registry, demo) is the roof. docs/architecture.md explains the layers.
Every import counts, also one inside a function: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Lowest first. A package may import its own modules and any package of a lower layer.
# `sample` (the bundled offline sample, generated) is data: the demo and `webtext replay` use it.
LAYERS: list[set[str]] = [
    {"core", "sample"},
    {"crawl", "extract", "dedup"},
    {"shards"},
    {"training", "overlap"},
    {"webtext"},
]
LAYER_OF = {package: level for level, packages in enumerate(LAYERS) for package in packages}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in LAYER_OF:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> set[str]:
    """Project modules `name` imports anywhere in its source (relative imports resolved)."""
    path = MODULES[name]
    found: set[str] = set()
    base = name.split(".") if _is_package(name) else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(base[: len(base) - node.level + 1] + ([module] if module else []))
            # `from pkg import sub` imports the submodule pkg.sub when there is one.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _package(name: str) -> str:
    return name.split(".")[0]


def test_every_package_has_a_layer():
    top_level = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "bench"}
    assert top_level <= set(LAYER_OF), f"packages without a layer: {sorted(top_level - set(LAYER_OF))}"


def test_no_import_runs_up_or_sideways():
    wrong = []
    for name, targets in GRAPH.items():
        for target in targets:
            source_package, target_package = _package(name), _package(target)
            if source_package == target_package:
                continue
            if LAYER_OF[target_package] >= LAYER_OF[source_package]:
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _loaded_after(imports: list[str], code: str = "") -> set[str]:
    script = "\n".join(f"import {m}" for m in imports) + "\n" + code + (
        "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_core_is_beam_free_except_its_beam_glue():
    core = [name for name in MODULES if _package(name) == "core" and name != "core.beam"]
    loaded = _loaded_after(core)
    assert "apache_beam" not in loaded


def test_the_trainer_loads_neither_beam_nor_scrapy():
    training = [name for name in MODULES if _package(name) == "training"]
    loaded = _loaded_after(training)
    assert not {"apache_beam", "scrapy", "trafilatura"} & loaded


def test_the_command_line_parser_imports_no_heavy_library():
    """`webtext --help` and every subcommand's parser load only argparse-level modules."""
    loaded = _loaded_after(["webtext.cli"], "webtext.cli.build_parser()")
    assert not {"apache_beam", "scrapy", "torch", "trafilatura", "pyarrow"} & loaded


@pytest.mark.parametrize("package", sorted(set(LAYER_OF) - {"core", "webtext"}))
def test_argparse_and_printing_live_only_in_the_cli_module(package):
    """Libraries take arguments and return data; `cli.py` (or a `__main__.py`) talks to the user."""
    offenders = []
    for name, path in MODULES.items():
        if _package(name) != package or name.endswith((".cli", ".__main__")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{name}:{node.lineno} print()")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if "argparse" in names:
                    offenders.append(f"{name}:{node.lineno} argparse")
    assert not offenders, "command-line code outside cli.py:\n" + "\n".join(offenders)

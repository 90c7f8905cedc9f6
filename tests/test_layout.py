"""The layout ARCHITECTURE.md draws, held against the code: imports run one way, no cycles.

model ← analyzers ← agent / training ← assist ← server / cli (cli may start the server; the
server never imports the command line). Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGES = ("model", "analyzers", "agent", "training", "assist", "server", "cli")
MAY_IMPORT = {
    "model": {"model"},
    "analyzers": {"analyzers", "model"},
    "agent": {"agent", "analyzers", "model"},
    "training": {"training", "analyzers", "model"},
    "assist": {"assist", "agent", "training", "analyzers", "model"},
    "server": {"server", "assist", "agent", "training", "analyzers", "model"},
    "cli": {"cli", "server", "assist", "agent", "training", "analyzers", "model"},
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def product_modules() -> dict[str, Path]:
    """Module name → file, for every Python file of the product packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The product modules a file imports (a package import counts as its __init__)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {name: imported_modules(path, set(modules)) - {name}
            for name, path in modules.items()}


def test_no_import_cycles():
    graph = import_graph()
    # A package's __init__ is imported with any of its modules; it must not import them back.
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_imports_follow_the_layering():
    wrong = [f"{module} imports {target}"
             for module, targets in import_graph().items() for target in sorted(targets)
             if target.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]]
    assert wrong == []


def test_no_product_module_is_too_long():
    long = {name: lines for name, path in product_modules().items()
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_product_function_is_too_long():
    long = []
    for name, path in product_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []


def test_the_server_never_runs_the_command_line():
    for path in (REPO_ROOT / "server").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert '"-m", "cli"' not in text and "smallcoder train" not in text.replace(
            "`smallcoder train`", ""), path

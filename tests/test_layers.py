"""The import rule of the package docstring, enforced: layers point down, nothing cycles.

Every ``import`` in every module counts, including those inside functions and under
``TYPE_CHECKING``: a lazy import that reaches up a layer is still a wrong-way import.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tokenhot_jupyter

PACKAGE = Path(tokenhot_jupyter.__file__).parent
NAME = "tokenhot_jupyter"

# The layer of each part of the package, and the layers (and outside libraries) it may use.
LAYER_OF = {
    "simulator": "simulator",
    "_store": "store",
    "_notebook": "notebook",
    "_widgets": "notebook",
    "_server": "server",
}
MAY_USE = {
    "simulator": {"simulator"},
    "client": {"client", "store"},  # the stored key is one of the client's settings
    "store": {"client", "store"},
    "server": {"client", "store", "server"},
    "notebook": {"client", "store", "notebook"},
    "top": {"client", "store", "notebook", "simulator", "top"},
}
KERNEL_LIBRARIES = ("IPython", "ipywidgets", "traitlets", "ipykernel", "comm")
SERVER_LIBRARIES = ("jupyter_server", "tornado", "jupyterlab")
FORBIDDEN = {
    "simulator": KERNEL_LIBRARIES + SERVER_LIBRARIES + ("httpx",),
    "client": KERNEL_LIBRARIES + SERVER_LIBRARIES,
    "store": KERNEL_LIBRARIES + SERVER_LIBRARIES,
    "server": KERNEL_LIBRARIES,
    "notebook": SERVER_LIBRARIES,
    "top": SERVER_LIBRARIES,
}
TOP_LEVEL = {"__init__", "__main__"}


def module_name(path: Path) -> str:
    """``tokenhot_jupyter._notebook._magics`` for its file."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    """The layer a module of the package belongs to."""
    parts = module.split(".")[1:]
    if not parts:
        return "top"
    if parts[0] in LAYER_OF:
        return LAYER_OF[parts[0]]
    return "top" if parts[0] in TOP_LEVEL else "client"


def imports(source: str, here: str, is_init: bool) -> Iterator[tuple[int, str, bool]]:
    """(line, absolute module, at module level) for every import in module ``here``."""
    tree = ast.parse(source)
    package = here if is_init else here.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            modules = known_modules()
            subs = [f"{base}.{alias.name}" for alias in node.names]
            found = [sub for sub in subs if sub in modules]
            # `from . import _x` imports the submodule _x, not its package's own names.
            targets = found if found and not node.module else [base, *found]
            for target in targets:
                yield node.lineno, target, id(node) in top_level


def file_imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    """Every import of one file of the package."""
    source = path.read_text(encoding="utf-8")
    return imports(source, module_name(path), path.name == "__init__.py")


def package_files() -> list[Path]:
    """Every Python file of the package."""
    return sorted(PACKAGE.rglob("*.py"))


@functools.cache
def known_modules() -> frozenset[str]:
    """Every module name of the package."""
    return frozenset(module_name(path) for path in package_files())


def wrong_way(source: str, here: str, is_init: bool = False) -> list[str]:
    """The imports in one module's source that break the layer rule."""
    mine = layer(here)
    modules = known_modules()
    problems = []
    name = here.rpartition(".")[2]
    for line, target, _ in imports(source, here, is_init):
        root = target.split(".")[0]
        if root == NAME:
            if target not in modules:
                problems.append(f"{name}:{line}: imports {target}, which does not exist")
                continue
            theirs = layer(target)
            if theirs not in MAY_USE[mine]:
                problems.append(f"{name}:{line}: {mine} layer imports {target} ({theirs})")
        elif root in FORBIDDEN[mine]:
            problems.append(f"{name}:{line}: {mine} layer imports {root}")
    return problems


@pytest.mark.parametrize("path", package_files(), ids=lambda path: module_name(path))
def test_every_import_points_down(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert wrong_way(source, module_name(path), path.name == "__init__.py") == []


def module_graph(*, lazy: bool = False) -> dict[str, set[str]]:
    """Imports between the package's modules: at module level (what runs at import time),
    or with ``lazy`` every import, those inside functions too."""
    modules = known_modules()
    graph: dict[str, set[str]] = {}
    for path in package_files():
        edges = {
            target for _, target, top in file_imports(path) if (top or lazy) and target in modules
        }
        graph[module_name(path)] = edges - {module_name(path)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in the graph, or an empty list."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycles() -> None:
    assert find_cycle(module_graph()) == []


def test_no_cycles_through_imports_inside_functions_either() -> None:
    # e.g. the panels once found the session through the magics, which import the panels.
    assert find_cycle(module_graph(lazy=True)) == []


def test_the_rule_catches_wrong_way_imports() -> None:
    lazy = "def f():\n    import IPython.display\n"
    assert wrong_way(lazy, "tokenhot_jupyter._catalog") == [
        "_catalog:2: client layer imports IPython"
    ]
    upward = "from ._notebook import _magics\n"
    assert wrong_way(upward, "tokenhot_jupyter._http") == [
        "_http:1: client layer imports tokenhot_jupyter._notebook (notebook)",
        "_http:1: client layer imports tokenhot_jupyter._notebook._magics (notebook)",
    ]
    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ipywidgets\n"
    assert wrong_way(hidden, "tokenhot_jupyter._store._journal") != []
    assert wrong_way("from .._client import Client\n", "tokenhot_jupyter._notebook._x") == []
    assert wrong_way("from .. import _exceptions as E\n", "tokenhot_jupyter._notebook._x") == []
    moved = "from .._cards import excerpt\n"  # a module that lives elsewhere now
    assert wrong_way(moved, "tokenhot_jupyter._server._x") == [
        "_x:1: imports tokenhot_jupyter._cards, which does not exist"
    ]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_importing_the_client_layer_loads_no_ipython() -> None:
    import subprocess

    code = (
        "import sys, tokenhot_jupyter._client, tokenhot_jupyter._follow,"
        " tokenhot_jupyter._store._journal;"
        "bad = [m for m in sys.modules if m.split('.')[0] in"
        " ('IPython', 'ipywidgets', 'traitlets', 'jupyter_server')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

"""The house's floors (DESIGN.md "The house"): no module imports a module on a higher floor, and no
import loop runs between packages.

Every module under ``topoloc/`` and ``augment/`` is parsed with `ast` (nothing is imported), each
import statement, at module level or inside a function, is resolved to the module it names, and
both ends are mapped to a floor, top down:

    5 apps        topoloc.cli, topoloc.experiments (demo, recipes' back-ends, the study), topoloc.__main__
    4 reporting   topoloc.reporting (report, saliency figures and shares)
    3 engine      topoloc.engine (train, predict, evaluate loops, checkpoints, DDP, localise, export)
    2 evaluation  topoloc.evaluation (result types and their files, baselines, retrieval, a
                  localisation of new photos and its GIS files)
    1 components  topoloc.models, topoloc.data, topoloc.procedural, topoloc.saliency, augment
    0 geometry    topoloc.geodesy, topoloc.rotations, topoloc.metrics, topoloc.pose_decoder,
                  and the leaf helpers topoloc._tempfiles, topoloc._paths, topoloc._device,
                  topoloc._flags, topoloc._lock, topoloc._messages, topoloc._modes, topoloc._progress,
                  topoloc._version, topoloc._yaml,
                  topoloc.image_size

``topoloc/__init__.py`` is the facade above them all (it re-exports the public names) and nothing
inside the library may import it. Imports under ``if TYPE_CHECKING:`` never run and are skipped.
Set ``TOPOLOC_FLOORS_ROOT`` to check another checkout (e.g. a worktree of an older commit).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("TOPOLOC_FLOORS_ROOT", Path(__file__).resolve().parents[1]))
PACKAGES = ("topoloc", "augment")

#: Module prefix -> floor (higher imports lower); the longest matching prefix wins.
FLOORS: dict[str, int] = {
    "topoloc.cli": 5,
    "topoloc.__main__": 5,
    "topoloc.experiments": 5,
    "topoloc.reporting": 4,
    "topoloc.engine": 3,
    "topoloc.evaluation": 2,
    "topoloc.models": 1,
    "topoloc.data": 1,
    "topoloc.procedural": 1,
    "topoloc.saliency": 1,
    "augment": 1,
    "topoloc.geodesy": 0,
    "topoloc.rotations": 0,
    "topoloc.metrics": 0,
    "topoloc.pose_decoder": 0,
    "topoloc._tempfiles": 0,
    "topoloc._paths": 0,
    "topoloc._device": 0,
    "topoloc._flags": 0,
    "topoloc._messages": 0,
    "topoloc._progress": 0,
    "topoloc._lock": 0,
    "topoloc._modes": 0,
    "topoloc._version": 0,
    "topoloc._yaml": 0,
    "topoloc.image_size": 0,
}
FACADE = "topoloc"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Import statements at any depth (functions, classes, try blocks), minus ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The library modules that module ``name`` (file ``path``) imports, resolved to module names."""
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import sub`` names the submodule ``pkg.sub`` when it is one
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        out.update(t for t in targets if t.split(".")[0] in PACKAGES)
    return out


def floor_of(module: str) -> int | None:
    """The floor of a module (the facade above all), None for a module on no floor."""
    if module == FACADE:
        return max(FLOORS.values()) + 1
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len, default=None)
    return None if best is None else FLOORS[best]


def package_of(module: str) -> str:
    """The unit whose loops are forbidden: ``topoloc.X`` (a subpackage or a top-level module), or ``augment``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "topoloc" else parts[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    assert len(modules) > 50, f"expected the library's modules under {ROOT}, found {len(modules)}"
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def test_every_module_has_a_floor(graph):
    unmapped = sorted(m for m in graph if floor_of(m) is None)
    assert not unmapped, f"modules on no floor (add them to FLOORS in this test): {unmapped}"


def test_no_import_runs_up_a_floor(graph):
    upward = sorted(f"{m} (floor {floor_of(m)}) imports {t} (floor {floor_of(t)})"
                    for m, targets in graph.items() if m != FACADE and floor_of(m) is not None
                    for t in targets if floor_of(t) is not None and floor_of(t) > floor_of(m))
    assert not upward, "imports running up a floor:\n" + "\n".join(upward)


def test_augment_never_imports_topoloc(graph):
    bad = sorted(f"{m} imports {t}" for m, ts in graph.items() if m.split(".")[0] == "augment"
                 for t in ts if t.split(".")[0] == "topoloc")
    assert not bad, bad


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_loop():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_loop_between_packages(graph):
    edges: dict[str, set[str]] = {}
    for m, targets in graph.items():
        if m == FACADE:
            continue
        edges.setdefault(package_of(m), set()).update(package_of(t) for t in targets if package_of(t) != package_of(m))
    assert not _cycles(edges), f"import loops between packages: {_cycles(edges)}"

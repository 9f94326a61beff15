"""The shape rules a reader relies on: small source files, and no import cycles anywhere.

An import inside a function still makes a cycle for a reader (and breaks on refactors), so
every import statement counts, wherever it stands.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def _sources() -> dict[str, Path]:
    """Every library and app module, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted(ROOT.glob("*/*/src/**/*.py")):
        src = next(p for p in path.parents if p.name == "src")
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules one file imports (a `from pkg import sub` names the submodule)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            if subs:
                out.update(subs)
            if len(subs) < len(node.names) and node.module in modules:
                out.add(node.module)
    return out


def test_no_source_file_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_cycles_not_even_inside_functions() -> None:
    modules = _sources()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert [" -> ".join(c) for c in cycles] == []


def test_the_cycle_check_can_fail(tmp_path: Path) -> None:
    # The checker itself: a module importing its package's __init__, which imports it back.
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("def f() -> None:\n    from pkg import g\n")
    modules = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py"}
    assert _imports(pkg / "__init__.py", modules) == {"pkg.a"}
    assert _imports(pkg / "a.py", modules) == {"pkg"}

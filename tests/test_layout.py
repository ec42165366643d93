"""The house's shape (issue 32): no module over 700 lines and the CLI under 500, and no import
cycle between files of the distribution (imports at run time, inside functions too; those
under ``if TYPE_CHECKING`` never run and are left out)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workloads", "sim", "rtl", "analysis", "validation", "hwsim")


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return mods


def _imports(name: str, path: Path, is_pkg: bool, mods: dict) -> set[str]:
    """The distribution's modules ``name`` imports when it runs."""
    out: set[str] = set()

    def known(n: str) -> str | None:
        while n and n not in mods:
            n = n.rpartition(".")[0]
        return n or None

    def visit(node: ast.AST) -> None:
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.If) and "TYPE_CHECKING" in ast.unparse(ch.test):
                continue
            if isinstance(ch, ast.Import):
                out.update(m for a in ch.names if (m := known(a.name)))
            elif isinstance(ch, ast.ImportFrom):
                base = ch.module or ""
                if ch.level:
                    here = name.split(".") if is_pkg else name.split(".")[:-1]
                    here = here[:len(here) - (ch.level - 1)]
                    base = ".".join(here + ([base] if base else []))
                for a in ch.names:
                    m = known(f"{base}.{a.name}") if f"{base}.{a.name}" in mods else known(base)
                    if m:
                        out.add(m)
            visit(ch)

    visit(ast.parse(path.read_text()))
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_files():
    mods = _modules()
    graph = {m: _imports(m, p, pkg, mods) for m, (p, pkg) in mods.items()}
    assert _cycles(graph) == []


def test_modules_are_small_and_the_cli_thin():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p, _ in _modules().values()}
    assert sizes["analysis/cli.py"] < 500
    assert {p: n for p, n in sizes.items() if n > 700} == {}

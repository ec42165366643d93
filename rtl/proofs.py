"""Which properties each RTL unit is proved against, at which size and depth: the property
harness of a unit (``SystolicProps``, ``DotProps``, ``EIEPEProps``, each next to its design),
its proof through :mod:`rtl.formal`, and the replay of a counterexample in Amaranth's own
simulator (where the harness's ``Assert`` fails again).

Sizes are small so that yosys's SAT engine closes the proofs in seconds; the generators are
the ones the co-simulation runs at full size:

- systolic, ``size`` = (R, C): an R x C array of ``WORD_BITS``-bit words and
  ``ACC_BITS``-bit accumulators, k-induction;
- dot, ``size`` = (E, M): four inputs of E exponent and M fraction bits, an accumulator of
  E + 1 and M + 1 (so that every product is exact in it), k-induction;
- mma, ``size`` = (E, M): the 4x4x4 step at the dot unit's formats, ``DotProps`` on each of
  its 16 outputs (``MmaProps``), k-induction;
- eie-pe, ``size`` = (D, N): a PE with a D-deep activation FIFO holding a slice of N columns
  of 0, 1, 2, 3, 0, ... entries (:func:`eie_slice`), proved to a depth (bounded: its
  reference queue is not tied to the PE's FIFO state, so induction does not close).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workloads.errors import HwsimError

from . import formal
from .units import UNITS

__all__ = ["WORD_BITS", "ACC_BITS", "SIZES", "DEPTHS", "LIMITS", "bugs", "Target", "target", "run", "replay", "eie_slice",
           "columns", "table", "label"]

# Named assumptions: proof sizes. Multiplier equivalence is what makes SAT slow: 2 x 2 of
# 4-bit words proves in seconds, 6-bit words ran past 2 minutes (benchmarks/data/formal.txt).
WORD_BITS, ACC_BITS = 4, 12
SIZES: dict[str, tuple[int, int]] = {"systolic": (2, 2), "dot": (2, 1), "eie-pe": (2, 4), "mma": (2, 1)}
# The most steps tried: k-induction closes within R + C steps for the array and in 1 for the
# dot unit and the MMA; for the PE this is the bound of the proof (cycles from reset).
DEPTHS: dict[str, int] = {"systolic": 8, "dot": 3, "eie-pe": 12, "mma": 3}
# Named assumption: the PE's proof runs at small value widths (4-bit activations and codebook,
# 8 destination rows); its properties are about which entries are taken and when, which no
# value width changes.
EIE_SMALL: dict[str, Any] = {"num_pes": 1, "act_regs": 8, "pointer_bits": 4, "act_bits": 4, "weight_bits": 4,
                             "weight_frac_bits": 2}
LIMITS: dict[str, tuple[int, int]] = {"systolic": (4, 4), "dot": (3, 3), "eie-pe": (4, 8), "mma": (3, 3)}



@dataclass
class Target:
    """One proof to run: the harness, its ports (free inputs first) and how to prove it."""

    unit: str
    size: tuple[int, int]
    label: str
    harness: Any
    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]
    induct: bool


def bugs(unit: str) -> tuple[str, ...]:
    """The deliberate mutations ``unit``'s generator can build (its module's ``BUGS``)."""
    from . import dot, eie_pe, mma, systolic
    return {"systolic": systolic.BUGS, "dot": dot.BUGS, "eie-pe": eie_pe.BUGS, "mma": mma.BUGS}[unit]


def eie_slice(columns: int) -> tuple[list[int], list[int], list[int]]:
    """(pointers, v, z) of a PE slice whose column k has k mod 4 entries: empty columns,
    single entries and runs, with varied codebook indices and relative rows."""
    ptr, v, z = [0], [], []
    for k in range(columns):
        for e in range(k % 4):
            v.append((5 * k + 3 * e + 1) % 16)
            z.append((k + e) % 2)
        ptr.append(len(v))
    return ptr, v, z


def label(unit: str, size: tuple[int, int] | None = None) -> str:
    """How a proof's size reads in its outcome, e.g. '2x2 (4-bit words, 12-bit sums)'."""
    x, y = size or SIZES[unit]
    if unit == "systolic":
        return f"{x}x{y} ({WORD_BITS}-bit words, {ACC_BITS}-bit sums)"
    if unit in ("dot", "mma"):
        return f"{'4x4x4, ' if unit == 'mma' else ''}e{x}m{y} inputs, e{x + 1}m{y + 1} accumulator"
    return f"FIFO depth {x}, {y}-column slice ({EIE_SMALL['act_bits']}-bit activations)"


def target(unit: str, size: tuple[int, int] | None = None, bug: str | None = None, checks: str = "comb",
           outputs: tuple[tuple[int, int], ...] | None = None) -> Target:
    """The property harness of ``unit`` at ``size`` (its default: :data:`SIZES`); ``bug``: one
    of the unit's deliberate mutations; ``checks``: "sync" to check at clock edges (replay);
    ``outputs``: for mma, the outputs (i, j) whose properties the harness holds (all 16: None)."""
    if unit not in UNITS:
        raise HwsimError(f"unknown RTL unit {unit!r}; one of {', '.join(UNITS)}")
    x, y = size or SIZES[unit]
    lim = LIMITS[unit]
    if not (1 <= x <= lim[0] and 1 <= y <= lim[1]):
        what = {"systolic": ("R", "C"), "dot": ("E", "M"), "eie-pe": ("D", "N"), "mma": ("E", "M")}[unit]
        raise HwsimError(f"--size for a formal proof of {unit} is {' '.join(what)} with {what[0]} from 1 to {lim[0]} "
                         f"and {what[1]} from 1 to {lim[1]} (a proof's time grows fast with the size); got {x} {y}")
    if unit == "systolic":
        from sim.systolic import PRESETS
        from .systolic import SystolicProps
        arch = dataclasses.replace(PRESETS["systolic-32"], rows=x, cols=y, word_bits=WORD_BITS, acc_bits=ACC_BITS)
        h = SystolicProps(arch, bug=bug, checks=checks)
        return Target(unit, (x, y), label(unit, size), h, h.inputs, (h.psum_out,), True)
    if unit in ("dot", "mma"):
        from .dot import DotProps, Format
        from .mma import MmaProps
        if x < 2:
            raise HwsimError(f"--size for a formal proof of {unit} is E M with E >= 2 (an exponent of 1 bit has no "
                             f"normal numbers); got {x} {y}")
        fi, fa = Format(x, y), Format(x + 1, y + 1)
        h = DotProps(fi, fa, bug=bug, checks=checks) if unit == "dot" else \
            MmaProps(fi, fa, bug=bug, checks=checks, outputs=outputs)
        return Target(unit, (x, y), label(unit, size), h, h.inputs, (h.d,), True)
    from sim.eie import PRESETS as EIE
    from .eie_pe import EIEPEProps
    earch = dataclasses.replace(EIE["eie-64"], queue_depth=x, **EIE_SMALL)
    ptr, v, zz = eie_slice(y)
    h = EIEPEProps(earch, ptr, v, zz, list(range(-8, 8)), earch.act_regs, earch.weight_frac_bits, bug=bug,
                   checks=checks)
    return Target(unit, (x, y), label(unit, size), h, h.inputs, (h.ready,), False)


def columns(unit: str, size: tuple[int, int] | None = None) -> list[tuple[str, str, int, int, str]]:
    """The stimulus table's columns for ``unit``: (title, port, lowest bit, bits, how shown:
    "s" signed decimal, "u" unsigned decimal, "x" hexadecimal)."""
    x, y = size or SIZES[unit]
    if unit == "systolic":
        return [(f"a{i}", "a_in", i * WORD_BITS, WORD_BITS, "s") for i in range(x)] + [("load", "load", 0, 1, "u")] + \
            [(f"w{j}", "w_in", j * WORD_BITS, WORD_BITS, "s") for j in range(y)]
    if unit == "dot":
        ib = 1 + x + y
        return [(f"a{i}", "a", i * ib, ib, "x") for i in range(4)] + \
            [(f"b{i}", "b", i * ib, ib, "x") for i in range(4)] + [("c", "c", 0, ib + 2, "x")]
    if unit == "mma":
        ib = 1 + x + y
        return [(f"a{i}{k}", "a", (4 * i + k) * ib, ib, "x") for i in range(4) for k in range(4)] + \
            [(f"b{k}{j}", "b", (4 * k + j) * ib, ib, "x") for k in range(4) for j in range(4)] + \
            [(f"c{i}{j}", "c", (4 * i + j) * (ib + 2), ib + 2, "x") for i in range(4) for j in range(4)]
    return [("push", "push_valid", 0, 1, "u"), ("col", "push_col", 0, max(1, (y + 1).bit_length()), "u"),
            ("act", "push_a", 0, 4, "s")]


def run(unit: str, size: tuple[int, int] | None = None, depth: int | None = None,
        bug: str | None = None, timeout_s: float = 600.0) -> formal.Proof:
    """Prove ``unit``'s properties (see the module docstring for sizes and methods)."""
    if depth is not None and depth < 1:
        raise HwsimError(f"--depth must be >= 1, got {depth}")
    if not formal.available():
        raise HwsimError(formal.INSTALL)
    if unit == "mma":
        return _run_mma(size, depth, bug, timeout_s)
    t = target(unit, size, bug)
    return formal.prove(t.harness, [*t.inputs, *t.outputs], depth or DEPTHS[unit], unit=unit, size=t.label,
                        induct=t.induct, timeout_s=timeout_s)


def _run_mma(size: tuple[int, int] | None, depth: int | None, bug: str | None, timeout_s: float) -> formal.Proof:
    """The MMA's 16 outputs proved one at a time (each a harness of the whole MMA holding one
    output's four properties): one SAT problem of all 64 did not finish in 10 minutes, four
    outputs together not in 150 s, one output closes in about 12 s at e2m1 (docs/rtl.md)."""
    from .mma import N
    proofs = []
    for i in range(N):
        for j in range(N):
            t = target("mma", size, bug, outputs=((i, j),))
            p = formal.prove(t.harness, [*t.inputs, *t.outputs], depth or DEPTHS["mma"], unit="mma", size=t.label,
                             induct=True, timeout_s=timeout_s)
            proofs.append(p)
            if not p.holds:
                p.seconds = sum(q.seconds for q in proofs)
                return p
    worst = "bounded" if any(p.result == "bounded" for p in proofs) else "proved"
    return formal.Proof("mma", proofs[0].size, sum(p.properties for p in proofs), max(p.depth for p in proofs),
                        proofs[0].method if worst == "proved" else "k-induction, not closed", worst,
                        sum(p.seconds for p in proofs), log=proofs[-1].log)


def table(unit: str, size: tuple[int, int] | None, stimulus: list[dict[str, int]]) -> str:
    """A counterexample's inputs per cycle, one column per lane (signed lanes in decimal,
    floats' bit patterns in hexadecimal)."""
    cols = columns(unit, size)
    rows = [["cycle", *(c[0] for c in cols)]]
    for i, s in enumerate(stimulus):
        row = [str(i + 1)]
        for _title, port, lo, bits, how in cols:
            v = (s.get(port, 0) >> lo) & ((1 << bits) - 1)
            row.append(f"{v:#x}" if how == "x" else str(v - (1 << bits) if how == "s" and v >> (bits - 1) else v))
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


def replay(unit: str, size: tuple[int, int] | None, bug: str | None, stimulus: list[dict[str, int]]) -> str | None:
    """Drive a fresh harness with ``stimulus`` in Amaranth's simulator (reset low, as in the
    proof); the message of the first ``Assert`` that fails, or None when all hold."""
    from amaranth.sim import Simulator

    t = target(unit, size, bug, checks="sync")     # sampled at each clock edge, after the cycle settles
    sim = Simulator(t.harness)
    sim.add_clock(1e-6)
    failed: list[str] = []

    async def bench(ctx: Any) -> None:
        for step in stimulus:
            for s in t.inputs:
                v, w = step.get(s.name, 0), len(s)
                ctx.set(s, v - (1 << w) if s.shape().signed and v >> (w - 1) else v)
            await ctx.tick()

    sim.add_testbench(bench)
    try:
        sim.run()
    except AssertionError as e:
        failed.append(str(e))
    return failed[0] if failed else None

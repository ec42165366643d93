"""The per-op mapping search: every unrolling the design allows, every loop order.

Orders are permutations of the dimensions left to time (those with a trip count above
one), the filter's rows and columns moving as one unit (``FX`` inside ``FY``); a
dimension's prime-factor loops stay together, smallest innermost, so the allocation can
still split a dimension between two levels. Each order has a second form (``hoisted``):
where the outermost on-chip level of an operand cuts a dimension's run of factors and
other dimensions follow that run, the factors above the cut move to the outermost place.
That is the order of a chip that keeps a tile of output channels' partial sums on chip
while the input channels stream through, and moves to the next tile only then (Eyeriss,
Chen et al. JSSC 2017: the filters of one K tile stream from DRAM once, the global buffer
holds that tile's psums and the ifmaps of a few channels); with a dimension's factors
always together, that order needs the whole of K or of C on chip. Each candidate is allocated
(``cost.allocate``) and costed (``cost.evaluate``); the best by the objective wins:
``latency`` (cycles, then energy), ``energy`` (energy, then cycles) or ``edp``
(energy x cycles, then cycles). Remaining ties go to the candidate met first: unrollings
in the design's order, orders in ``itertools.permutations`` order of ``DIMS``, an
order before its second form. The search is exhaustive over that space (at most twice
the orders) and deterministic (no sampling, no seed).

A design may name one dataflow (``SpatialArch.dataflow``): then only mappings of that
family are tried (``DATAFLOWS``: ws, os and is by the operand the innermost timed loop
leaves in the PEs, rs by the unrolling).

The space is pruned twice: by those restrictions (a heuristic: orders that split a
dimension's factors apart, or the filter's rows from its columns, are not tried; LOMA
likewise bounds its orders), and exactly: for the latency objective, an unrolling whose
array cycles alone exceed the best latency found is skipped, and a candidate whose
lower bound (``cost.lower_bound``: its last level's traffic, onloading and offloading,
its MAC and last-level energy) is already worse than the best found is not costed.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import TYPE_CHECKING, Mapping

from workloads.errors import HwsimError

from .array import dims_of, groups_for
from .cost import Cost, Footprints, Mapping_, allocate, evaluate, level_plan, lower_bound, loops_for, spatial_factors, \
    temporal
from .nest import DIMS, OPERANDS, RELEVANT, Nest

if TYPE_CHECKING:
    from .arch import SpatialArch

__all__ = ["best", "bypassed", "DATAFLOWS", "row_stationary", "stationary", "dataflow", "units", "hoisted"]


def _key(c: Cost, objective: str) -> tuple[float, float]:
    if objective == "latency":
        return (c.cycles, c.energy_pj)
    if objective == "energy":
        return (c.energy_pj, c.cycles)
    return (c.energy_pj * c.cycles, c.cycles)


def _may_win(lb: tuple[float, float], found: Cost, objective: str) -> bool:
    """Whether a candidate whose (cycles, energy) are at least ``lb`` may still beat
    ``found``: on the objective's first key, or by the second on a tie of the first. Cycles
    are whole numbers, so a bound above ``found.cycles - 1`` means at least as many; a
    tie on both keys goes to ``found``, met first."""
    lb_c, lb_e = lb
    at_least_as_slow = lb_c > found.cycles - 1
    if objective == "latency":
        return lb_c <= found.cycles and (not at_least_as_slow or lb_e < found.energy_pj)
    first = lb_e if objective == "energy" else lb_c * lb_e
    key = _key(found, objective)[0]
    return first < key or (first == key and not at_least_as_slow)


def best(nest: Nest, arch: SpatialArch, bits: Mapping[str, int], out_bits: int,
         objective: str | None = None, unrollings: tuple[tuple[str, ...], ...] | None = None) -> Cost:
    """The best mapping (see the module); where levels may be bypassed (``Level.bypass``), the
    best over every choice of which operands bypass them (none first: ties keep every level)."""
    objective = objective or arch.objective
    found: Cost | None = None
    for variant in bypassed(arch):
        c = _best(nest, variant, bits, out_bits, objective, unrollings)
        if found is None or _key(c, objective) < _key(found, objective):
            found = c
    assert found is not None
    return found


def bypassed(arch: SpatialArch) -> list[SpatialArch]:
    """The design as each choice of bypasses leaves it (``Level.bypass``), keeping every level
    first: a bypassed operand leaves the level's operands (a level left with none, the
    hierarchy), its tiles then moving between the levels below and above it."""
    pairs = [(i, o) for i, lv in enumerate(arch.levels) for o in lv.bypass]
    if not pairs:
        return [arch]
    out = []
    for mask in itertools.product((False, True), repeat=len(pairs)):
        skip = {p for p, m in zip(pairs, mask) if m}
        levels = []
        for i, lv in enumerate(arch.levels):
            ops = tuple(o for o in lv.operands if (i, o) not in skip)
            if ops:
                levels.append(replace(lv, operands=ops, bypass=()))
        out.append(replace(arch, levels=tuple(levels)))
    return out


def _best(nest: Nest, arch: SpatialArch, bits: Mapping[str, int], out_bits: int, objective: str,
          unrollings: tuple[tuple[str, ...], ...] | None) -> Cost:
    if objective in ("energy", "edp") and not (arch.mac_pj and all(x.priced for x in arch.levels)):
        raise HwsimError(f"objective {objective}: {arch.name} must price every level (read_pj, write_pj) and "
                         f"its MAC (mac_pj) for the mapping search; or search for latency")
    family = arch.dataflow
    plan = level_plan(arch, bits)
    found: Cost | None = None
    for un, sp in _spatials(nest, arch, unrollings or arch.unrollings):
        if family and (family == "rs") != row_stationary(un):
            continue
        groups = groups_for(arch.levels, un, sp)
        trips = temporal(nest, sp)
        if found is not None and objective == "latency" and _array_cycles(trips) > found.cycles:
            continue              # its array cycles alone exceed the best time: it cannot win
        for order in itertools.permutations(units(trips)):
            if family and family != "rs" and order and stationary(order[0][0]) != family:
                continue
            loops: tuple[tuple[str, int], ...] | None = loops_for(tuple(d for u in order for d in u), trips)
            first = True
            while loops is not None:
                tab = Footprints(nest, sp, loops, groups)
                m = allocate(nest, arch, un, loops, bits, tab, plan)
                loops = hoisted(arch, m) if first and m is not None else None
                first = False
                if m is None:
                    continue
                if found is not None and \
                        not _may_win(lower_bound(nest, arch, m, bits, out_bits, tab), found, objective):
                    continue                  # cannot win even on its last level's traffic alone
                c = evaluate(nest, arch, m, bits, out_bits, tab)
                if found is None or _key(c, objective) < _key(found, objective):
                    found = c
    if found is None:
        if family:
            raise HwsimError(f"{arch.name}: no {family} mapping fits this op (dataflow {family!r}: "
                             f"{DATAFLOWS[family]}); allow another dataflow or give the levels more capacity")
        raise HwsimError(f"{arch.name}: no mapping fits its memories (the innermost levels cannot hold one "
                         "word of each operand); give its levels more capacity")
    return found


def _spatials(nest: Nest, arch: SpatialArch, unrollings: tuple[tuple[str, ...], ...]
              ) -> list[tuple[tuple[str, ...], dict[str, int]]]:
    """Each unrolling with its spatial factors; with ``factors`` "divisors" only the unrollings
    that put the most PEs to work (AccelForge's min_usage 1: every fanout as fully used as
    whole tiles allow, no unrolling idling a side on a loop of 1 where another fills it)."""
    divisors = arch.factors == "divisors"
    out = [(un, spatial_factors(nest, un, *arch.array, divisors=divisors)) for un in unrollings]
    if divisors:
        most = max(_array_cycles(sp) for _, sp in out)
        out = [(un, sp) for un, sp in out if _array_cycles(sp) == most]
    return out


DATAFLOWS = {
    "ws": "weight stationary: the innermost timed loop leaves each PE's weight in place (B, OY or OX)",
    "os": "output stationary: the innermost timed loop is a reduction (C, FY or FX), partial sums stay in the PE",
    "is": "input stationary: the innermost timed loop is over output channels (K), inputs stay in the PE",
    "rs": "row stationary (Eyeriss): filter rows on the array's rows, output rows on its columns",
}


def row_stationary(unrolling: tuple[str, ...]) -> bool:
    """Filter rows on the array's rows (D1), output rows on its columns (D2)."""
    return "FY" in dims_of(unrolling[0]) and "OY" in dims_of(unrolling[1])


def stationary(dim: str) -> str:
    """The dataflow an innermost timed loop over ``dim`` makes: the operand it leaves in
    place (G changes every operand: none)."""
    if dim not in RELEVANT["weight"]:
        return "ws"
    if dim not in RELEVANT["output"]:
        return "os"
    if dim not in RELEVANT["input"]:
        return "is"
    return "none"


def dataflow(m: Mapping_) -> str:
    """The named dataflow of a mapping (``DATAFLOWS``); ``static`` when nothing is timed."""
    if row_stationary(m.unrolling):
        return "rs"
    return stationary(m.loops[0][0]) if m.loops else "static"


def units(trips: Mapping[str, int]) -> list[tuple[str, ...]]:
    """The dimensions left to time, as the units the orders permute: each alone, except
    the filter's rows and columns, which move together (columns inside rows)."""
    dims = [d for d in DIMS if trips[d] > 1]
    if "FY" in dims and "FX" in dims:
        dims.remove("FX")
        return [("FX", "FY") if d == "FY" else (d,) for d in dims]
    return [(d,) for d in dims]


def hoisted(arch: SpatialArch, m: Mapping_) -> tuple[tuple[str, int], ...] | None:
    """The order's second form (see the module): where the outermost on-chip level of an
    operand cuts a dimension's run of factors and other dimensions' loops follow that run,
    the run's factors above the cut move to the outermost place (the first such cut, from
    the innermost); None where no boundary cuts a run so."""
    loops = m.loops
    n = len(loops)
    cuts = sorted({m.bounds[(chain[-2], o)] for o in OPERANDS if len(chain := arch.chain(o)) > 1})
    for b in cuts:
        if not 0 < b < n or loops[b - 1][0] != loops[b][0]:
            continue
        d = loops[b][0]
        e = b
        while e < n and loops[e][0] == d:
            e += 1
        if e < n:                        # other loops follow the run: the remainder can go above them
            return loops[:b] + loops[e:] + loops[b:e]
    return None


def _array_cycles(trips: Mapping[str, int]) -> int:
    n = 1
    for v in trips.values():
        n *= v
    return n

"""The per-op mapping search: every unrolling the design allows, every loop order.

Orders are permutations of the dimensions left to time (those with a trip count above
one), the filter's rows and columns moving as one unit (``FX`` inside ``FY``); a
dimension's prime-factor loops stay together, smallest innermost, so the allocation can
still split a dimension between two levels. Each candidate is allocated
(``cost.allocate``) and costed (``cost.evaluate``); the best by the objective wins:
``latency`` (cycles, then energy), ``energy`` (energy, then cycles) or ``edp``
(energy x cycles, then cycles). Remaining ties go to the candidate met first: unrollings
in the design's order, orders in ``itertools.permutations`` order of ``DIMS``. The
search is exhaustive over that space and deterministic (no sampling, no seed).

The space is pruned twice: by those restrictions (a heuristic: orders that split a
dimension's factors apart, or the filter's rows from its columns, are not tried; LOMA
likewise bounds its orders), and exactly: for the latency objective, an unrolling whose
array cycles alone exceed the best latency found is skipped.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Mapping

from workloads.errors import HwsimError

from .cost import Cost, Footprints, allocate, evaluate, loops_for, spatial_factors, temporal
from .nest import DIMS, Nest

if TYPE_CHECKING:
    from .arch import SpatialArch

def _key(c: Cost, objective: str) -> tuple[float, float]:
    if objective == "latency":
        return (c.cycles, c.energy_pj)
    if objective == "energy":
        return (c.energy_pj, c.cycles)
    return (c.energy_pj * c.cycles, c.cycles)


def candidates(nest: Nest, arch: SpatialArch) -> list[tuple[str, str]]:
    """The design's unrollings, each used where it puts more than one PE to work (a
    dimension of extent 1 on a side leaves it idle but stays legal)."""
    return list(arch.unrollings)


def best(nest: Nest, arch: SpatialArch, bits: Mapping[str, int], out_bits: int,
         objective: str | None = None) -> Cost:
    objective = objective or arch.objective
    if objective in ("energy", "edp") and not (arch.mac_pj and all(x.priced for x in arch.levels)):
        raise HwsimError(f"objective {objective}: {arch.name} must price every level (read_pj, write_pj) and "
                         f"its MAC (mac_pj) for the mapping search; or search for latency")
    found: Cost | None = None
    for un in candidates(nest, arch):
        sp = spatial_factors(nest, un, arch.rows, arch.cols)
        trips = temporal(nest, sp)
        if found is not None and objective == "latency" and _array_cycles(trips) > found.cycles:
            continue              # its array cycles alone exceed the best time: it cannot win
        for order in itertools.permutations(units(trips)):
            loops = loops_for(tuple(d for u in order for d in u), trips)
            tab = Footprints(nest, sp, loops)
            m = allocate(nest, arch, un, loops, bits, tab)
            if m is None:
                continue
            c = evaluate(nest, arch, m, bits, out_bits, tab)
            if found is None or _key(c, objective) < _key(found, objective):
                found = c
    if found is None:
        raise HwsimError(f"{arch.name}: no mapping fits its memories (the innermost levels cannot hold one "
                         "word of each operand); give its levels more capacity")
    return found


def units(trips: Mapping[str, int]) -> list[tuple[str, ...]]:
    """The dimensions left to time, as the units the orders permute: each alone, except
    the filter's rows and columns, which move together (columns inside rows)."""
    dims = [d for d in DIMS if trips[d] > 1]
    if "FY" in dims and "FX" in dims:
        dims.remove("FX")
        return [("FX", "FY") if d == "FY" else (d,) for d in dims]
    return [(d,) for d in dims]


def _array_cycles(trips: Mapping[str, int]) -> int:
    n = 1
    for v in trips.values():
        n *= v
    return n

"""The MAC array's dimensions, the unrollings on them, and which memory instance serves which PEs.

An array has N dimensions (ZigZag's ``D1 .. Dn``: rows, columns, then ``extra_dims``); its
MACs are the product of their sizes. An unrolling gives every dimension one *side*: a loop
dimension, or several joined by ``*`` that take the dimension in turn (``FY*C``: the filter's
rows, then as many input channels as the rest holds), each optionally capped by a factor
(``OX8``: at most 8 output columns, as ZigZag's mapping files state ``OX, 8``). A loop
dimension is unrolled on one side at most.

A memory level is *shared along* the dimensions it serves and private along the others
(ZigZag's ``served_dimensions``, Mei et al., IEEE TC 2021): there is one instance of it per
combination of indices along the dimensions it does not serve, each holding its own tile
and feeding (multicasting to, and collecting reduced partial sums from) the PEs along the
dimensions it does serve. Its capacity and ports are per instance. Serving none is the
per-PE register file; serving all is the one buffer of the whole array. A level serves
every dimension a level below it that holds the same operand serves (``SpatialArch`` checks
it), so an operand's tiles only ever widen on the way out; the off-chip level serves all.

The cost model sees each level through its *group*: the loop dimensions unrolled along the
dimensions it serves (their spatial factors enter its per-instance tile) and its number of
instances (the product of the factors unrolled along the others). Group ``ARRAY`` serves
every dimension, ``PER_PE`` none; partly served levels get groups of their own.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..archbase import need
from .nest import DIMS

if TYPE_CHECKING:
    from .arch import Level
    from .nest import Nest

__all__ = ["ARRAY", "PER_PE", "Side", "parse_side", "dims_of", "axis_names", "unrolling", "spatial_factors",
           "axis_of", "served_axes", "largest_divisor", "level_groups", "groups_for"]

ARRAY, PER_PE = 0, 1          # the groups every design has: the whole array, one PE
Side = tuple[tuple[str, int], ...]     # (loop dimension, cap; 0: none) in the order they take the side
_TERM = re.compile(r"^([A-Z]+?)(\d*)$")
_EXAMPLE = ("K", "C", "OX", "OY", "B", "FX", "FY", "G")


@functools.lru_cache(maxsize=1024)
def parse_side(side: str) -> Side:
    """``"FY*C"`` -> (("FY", 0), ("C", 0)); ``"OX8"`` -> (("OX", 8),); ``""`` (the dimension
    left idle) -> (). Checked by ``unrolling``."""
    if not side.strip():
        return ()
    out = []
    for term in side.split("*"):
        m = _TERM.match(term.strip())
        d, cap = (m.group(1), int(m.group(2) or 0)) if m else (term.strip(), 0)
        out.append((d, cap))
    return tuple(out)


def dims_of(side: str) -> tuple[str, ...]:
    """The loop dimensions a side unrolls, in order (caps dropped)."""
    return tuple(d for d, _ in parse_side(side))


def axis_names(n: int) -> tuple[str, ...]:
    """ZigZag's names of an array's dimensions: D1 (rows), D2 (columns), D3, ..."""
    return tuple(f"D{k + 1}" for k in range(n))


def unrolling(v: Any, where: str, n: int) -> tuple[str, ...]:
    """One unrolling, checked: ``"ROWDIMS,COLDIMS[,D3DIMS...]"`` (or a list of sides), one side
    per array dimension, each ``DIM[CAP]`` terms joined by ``*`` (an empty side leaves its
    dimension idle), every loop dimension once."""
    parts = v.split(",") if isinstance(v, str) else v
    shape = "'ROWDIMS,COLDIMS' such as 'C,K' or 'FY*C,OY'" if n == 2 else \
        f"{n} sides, one per array dimension ({', '.join(axis_names(n))}), such as '{','.join(_EXAMPLE[:n])}'"
    need(isinstance(parts, (list, tuple)) and len(parts) == n, where,
         f"must be {shape} (dims {', '.join(DIMS)}; 'OX8' caps OX at 8), got {v!r}")
    sides = tuple(str(p).strip() for p in parts)
    seen: list[str] = []
    for side in sides:
        for term in side.split("*") if side else ():
            m = _TERM.match(term.strip())
            d = m.group(1) if m else term.strip()
            need(d in DIMS, where, f"{d!r} is not a loop dimension; use {', '.join(DIMS)} (a cap after it: 'OX8')")
            need(not m or not m.group(2) or int(m.group(2)) > 0, where, f"{term.strip()!r}: a cap must be above 0")
            need(d not in seen, where, f"unrolls {d!r} twice")
            seen.append(d)
    return sides


def spatial_factors(nest: Nest, unroll: Sequence[str], *sizes: int, divisors: bool = False) -> dict[str, int]:
    """Each side's dimensions in turn take as much of its array dimension as they can, up to
    their cap (``FY*C`` on 12 rows with a 3x3 filter: FY 3, then C 4); with ``divisors``
    (``SpatialArch.factors``) the largest factor of that much that divides the loop's bound
    (C 256 on 14 columns: 8)."""
    out: dict[str, int] = {}
    for side, cap in zip(unroll, sizes):
        for d, most in parse_side(side):
            f = max(1, min(nest.sizes[d], cap, most or cap))
            if divisors:
                f = largest_divisor(nest.sizes[d], f)
            out[d] = f
            cap //= f
    return out


@functools.lru_cache(maxsize=4096)
def largest_divisor(n: int, most: int) -> int:
    """The largest divisor of ``n`` that is at most ``most`` (at least 1)."""
    for f in range(min(n, most), 1, -1):
        if n % f == 0:
            return f
    return 1


@functools.lru_cache(maxsize=1024)
def axis_of(unroll: tuple[str, ...]) -> dict[str, int]:
    """Loop dimension -> the array dimension (0-based) it is unrolled on."""
    return {d: k for k, side in enumerate(unroll) for d in dims_of(side)}


def served_axes(lv: Level, n: int) -> frozenset[int]:
    """The array dimensions (0-based) a level serves."""
    if lv.served is None:
        return frozenset() if lv.per_pe else frozenset(range(n))
    return frozenset(int(a[1:]) - 1 for a in lv.served)


_GROUPS: dict[int, tuple[tuple[Level, ...], tuple[tuple[frozenset[int] | None, ...], tuple[int, ...]]]] = {}


def level_groups(levels: tuple[Level, ...]) -> tuple[tuple[frozenset[int] | None, ...], tuple[int, ...]]:
    """(the groups' served dimensions: None for ``ARRAY``, every one, then ``PER_PE``'s none and
    each partly served level's set in level order; each level's group), remembered per levels
    tuple (the search asks for every candidate)."""
    hit = _GROUPS.get(id(levels))
    if hit is None or hit[0] is not levels:
        if len(_GROUPS) > 64:
            _GROUPS.clear()
        sets: list[frozenset[int] | None] = [None, frozenset()]
        which = []
        for lv in levels:
            if lv.served is None:
                which.append(PER_PE if lv.per_pe else ARRAY)
                continue
            s = served_axes(lv, 0)
            if s not in sets:
                sets.append(s)
            which.append(sets.index(s))
        hit = _GROUPS[id(levels)] = (levels, (tuple(sets), tuple(which)))
    return hit[1]


def groups_for(levels: tuple[Level, ...], unroll: tuple[str, ...], sp: Mapping[str, int]) -> tuple[dict[str, int], ...]:
    """Per group, the spatial factors inside one of its instances: those of the loop
    dimensions unrolled along the array dimensions it serves."""
    sets, _ = level_groups(levels)
    where = axis_of(tuple(unroll))
    return tuple(dict(sp) if s is None else {d: f for d, f in sp.items() if where.get(d, -1) in s} for s in sets)


def check_served(served: Any, where: str, n: int) -> tuple[str, ...]:
    """A level's ``served``: a list of distinct array dimensions among D1..Dn."""
    names = axis_names(n)
    need(isinstance(served, (list, tuple)), where, f"must be a list of array dimensions ({', '.join(names)})")
    for a in served:
        need(a in names, where, f"{a!r} is not a dimension of this {n}-D array; use {', '.join(names)}")
    need(len(set(served)) == len(served), where, "names a dimension twice")
    return tuple(sorted(served, key=names.index))


def served_text(axes: frozenset[int], n: int) -> str:
    return "none (one per PE)" if not axes else ("all" if len(axes) == n else
                                                   ", ".join(axis_names(n)[a] for a in sorted(axes)))

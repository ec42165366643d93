"""A reference for ``cost.evaluate``'s access counts: walk the loop nest.

Every temporal iteration is visited in order; at every level boundary each operand's
tile is identified by the box of coordinates it spans (see ``_tile``) and sized by the
elements in it (the input's rows and columns through stride and dilation), in each
instance of the level (each PE's, the array's, or each group of PEs along the array
dimensions a level serves, enumerated PE index by PE index), computed from the loop
indices alone. A tile that differs from the one of
the iteration before is a refill; an output tile seen before is a read-back of partial
sums; below the innermost level, where the PEs hold no word of an operand
(``cost.held``), every iteration is a new tile. Nothing here uses which dimensions an operand depends on: that is what the fast
count's rule (skip the loops just above a tile that its operand ignores) is checked
against. Linear in the iterations times the PEs: for tests on small nests.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Collection, Mapping, TypeAlias

from .array import axis_of, served_axes
from .cost import held
from .nest import DIMS, OPERANDS, Nest

if TYPE_CHECKING:
    from .arch import SpatialArch
    from .cost import Mapping_

__all__ = ["walk"]

_Box: TypeAlias = dict[str, tuple[int, int]]      # dim -> (lo, hi) coordinates a tile spans
_Tile: TypeAlias = tuple[tuple[int, int], ...]    # a tile's identity: its box over the operand's dims


def _coords(nest: Nest, m: Mapping_, idx: tuple[int, ...], b: int, pe: Mapping[str, int]) -> _Box:
    """Per dimension, the (lo, hi) coordinates the tile below loop ``b`` spans at loop
    indices ``idx`` (innermost first), in the PEs whose spatial index is ``pe``'s for the
    dims it names (one PE when it names all, the whole array when it names none)."""
    lo = {d: 0 for d in DIMS}
    span = {d: 1 for d in DIMS}        # temporal extent of the tile per dim
    scale = {d: 1 for d in DIMS}       # weight of the next loop of d in the temporal index
    for i, (d, f) in enumerate(m.loops):
        if i < b:
            span[d] *= f
        else:
            lo[d] += idx[i] * scale[d]
        scale[d] *= f
    out: _Box = {}
    for d in DIMS:
        s = m.spatial.get(d, 1)
        t_lo, t_hi = lo[d], lo[d] + span[d] - 1     # temporal index range; coordinate = t * s + spatial
        if d not in pe:
            out[d] = (t_lo * s, t_hi * s + s - 1)
        else:
            out[d] = (t_lo * s + pe[d], t_hi * s + pe[d])
    return out


def _tile(nest: Nest, operand: str, c: _Box) -> _Tile:
    """The identity of an operand's tile over the array: the box of its tensor's
    coordinates it spans; the input's by the output and filter rows and columns its
    window serves (a controller tracks the window it fetched, so an input block reached
    again through another output/filter pair, diagonally, is fetched again)."""
    if operand == "weight":
        return tuple(c[d] for d in ("G", "K", "C", "FY", "FX"))
    if operand == "output":
        return tuple(c[d] for d in ("G", "B", "K", "OY", "OX"))
    return tuple(c[d] for d in ("G", "B", "C", "OY", "OX", "FY", "FX"))


def _count(nest: Nest, operand: str, c: _Box, sp: Mapping[str, int], fixed: Collection[str]) -> int:
    """Elements in the tile: a dim whose spatial index is ``fixed`` contributes its temporal
    span (the PEs see one coordinate per step of the array); the others, the whole
    coordinate range. The input's rows and columns are those its outputs read through its
    filter taps."""
    def ext(d: str) -> int:
        lo, hi = c[d]
        s = sp.get(d, 1)
        return (hi - lo) // s + 1 if d in fixed else hi - lo + 1

    def win(o: str, f: str, stride: int, dil: int, size: int) -> int:
        # distinct input coordinates, counted (for a tile of consecutive outputs and taps)
        return min(size, len({y * stride + t * dil for y in range(ext(o)) for t in range(ext(f))}))

    if operand == "weight":
        return ext("G") * ext("K") * ext("C") * ext("FY") * ext("FX")
    if operand == "output":
        return ext("G") * ext("B") * ext("K") * ext("OY") * ext("OX")
    return (ext("G") * ext("B") * ext("C") * win("OY", "FY", nest.stride_y, nest.dil_y, nest.in_h)
            * win("OX", "FX", nest.stride_x, nest.dil_x, nest.in_w))


def walk(nest: Nest, arch: SpatialArch, m: Mapping_, bits: Mapping[str, int], out_bits: int) -> dict[str, float]:
    """Bytes per ``level.operand.reads|writes`` by walking every iteration (see the module)."""
    levels = arch.levels
    where = axis_of(tuple(m.unrolling))
    n = len(arch.array)

    def instances(i: int | None) -> list[dict[str, int]]:
        """Each instance of level ``i`` (None: the PEs' registers) as the spatial indices of the
        dims on the array dimensions it does not serve."""
        served = frozenset() if i is None else served_axes(levels[i], n)
        fixed = [d for d in m.spatial if where[d] not in served]
        return [dict(zip(fixed, p)) for p in itertools.product(*(range(m.spatial[d]) for d in fixed))]

    inst = {i: instances(i) for i in [None, *range(len(levels))]}
    acc: dict[str, float] = {}

    def add(i: int | None, o: str, way: str, nbytes: float) -> None:
        if i is None or nbytes <= 0:
            return
        key = f"{levels[i].name}.{o}.{way}"
        acc[key] = acc.get(key, 0.0) + nbytes

    def size(i: int | None, o: str, idx: tuple[int, ...], b: int) -> int:
        return sum(_count(nest, o, _coords(nest, m, idx, b, pe), m.spatial, pe) for pe in inst[i])

    ranges = [range(f) for _, f in m.loops]
    for o in OPERANDS:
        chain = [i for i, lv in enumerate(levels) if o in lv.operands]
        pairs = []
        child: int | None = None
        b_child = 0
        for parent in chain:
            pairs.append((child, b_child, parent))
            child, b_child = parent, m.bounds[(parent, o)]
        # below the innermost level: the PEs' registers hold no word of the operand (cost.held),
        # so every iteration is a new tile there
        zero = tuple(0 for _ in m.loops)
        first = inst[chain[0]][0]
        word = arch.acc_bits if o == "output" else bits[o]
        every = not held(arch, o, _count(nest, o, _coords(nest, m, zero, 0, first), m.spatial, first) * word,
                         levels[chain[0]].read_bits)
        moves = {k: {"fill": 0.0, "fill_p": 0.0, "back": 0.0, "back_p": 0.0} for k in range(len(pairs))}
        prev: dict[int, _Tile] = {}                       # pair -> the tile in place
        seen: dict[int, set[_Tile]] = {k: set() for k in range(len(pairs))}
        last_idx: dict[int, tuple[int, ...]] = {}
        # iterate outermost loop slowest: product over reversed loops, then reverse each index tuple
        for rev in itertools.product(*reversed(ranges)):
            idx = tuple(reversed(rev))
            for k, (ch, b, par) in enumerate(pairs):
                ident = _tile(nest, o, _coords(nest, m, idx, b, {}))
                if prev.get(k) == ident and not (k == 0 and every):
                    continue
                if o == "output" and k in prev:       # the tile before leaves
                    pi = last_idx[k]
                    moves[k]["fill"] += size(ch, o, pi, b)
                    moves[k]["fill_p"] += size(par, o, pi, b)
                if o != "output":
                    moves[k]["fill"] += size(ch, o, idx, b)
                    moves[k]["fill_p"] += size(par, o, idx, b)
                elif ident in seen[k]:
                    moves[k]["back"] += size(ch, o, idx, b)
                    moves[k]["back_p"] += size(par, o, idx, b)
                seen[k].add(ident)
                prev[k] = ident
                last_idx[k] = idx
            for k in range(len(pairs)):
                if o == "output":
                    last_idx[k] = idx
        for k, (ch, b, par) in enumerate(pairs):
            mv = moves[k]
            if o == "output":
                mv["fill"] += size(ch, o, last_idx[k], b)           # the last tile leaves
                mv["fill_p"] += size(par, o, last_idx[k], b)
                width = arch.acc_bits if mv["back"] > 0 else out_bits
                add(ch, o, "reads", mv["fill"] * width / 8)
                add(par, o, "writes", mv["fill_p"] * width / 8)
                add(ch, o, "writes", mv["back"] * arch.acc_bits / 8)
                add(par, o, "reads", mv["back_p"] * arch.acc_bits / 8)
            else:
                add(par, o, "reads", mv["fill_p"] * bits[o] / 8)
                add(ch, o, "writes", mv["fill"] * bits[o] / 8)
    return acc

"""A mapping of a loop nest onto a spatial design, and what it costs.

A mapping is a spatial unrolling (one dimension on the array's rows, one on its
columns, each by at most the array's size) and one temporal loop order (the remaining
trip counts as prime-factor loops, innermost first). The loops are allocated to the
memory levels bottom-up, as ZigZag's LOMA allocates them (Symons et al., "LOMA", AICAS
2021): each level takes the longest prefix of the loop order whose tiles of the
operands it holds fit its capacity (half of it when double-buffered), shared by those
operands. The prefix below a level is the tile it holds.

Access counts follow from the allocation (Timeloop's and ZigZag's rule, Parashar et al.,
ISPASS 2019): a level is refilled once per iteration of the loops above its tile, except
for the loops just above it that its operand does not depend on (the tile stays: that is
the reuse a stationary dataflow gets). An output tile leaves its level at every refill
and is read back for every visit after its first (partial sums). A per-PE level is
written once per PE; a shared level feeds all the PEs it serves at once (multicast), and
partial sums reduced across the array reach it once. The array itself keeps the one
operand word and the partial sum each PE works on, so a MAC reads its innermost level
only when those change.

Time is a roofline over the levels: the array's cycles (one per temporal iteration),
or the busiest port (bits moved / bits per cycle; per PE for per-PE levels), whichever
is longer; refills of a level that is not double-buffered stall the array for their
write time; the array's first operands must arrive from the last level before it
starts, and the last output tile of the outermost on-chip level leaves after it stops
(ZigZag's onloading and offloading, Mei et al. 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from typing import TYPE_CHECKING, Mapping

from .nest import DIMS, OPERANDS, RELEVANT, Nest

if TYPE_CHECKING:
    from .arch import SpatialArch


@dataclass(frozen=True)
class Mapping_:
    unrolling: tuple[str, str]
    spatial: Mapping[str, int]                      # dim -> factor on the array
    loops: tuple[tuple[str, int], ...]              # temporal loops, innermost first
    bounds: Mapping[tuple[int, str], int]           # (level index, operand) -> loops below that level's tile

    def describe(self) -> str:
        order = " ".join(f"{d}{f}" for d, f in self.loops)
        sides = ("*".join(f"{d}{self.spatial[d]}" for d in side.split("*")) for side in self.unrolling)
        return f"{'|'.join(sides)} [{order}]"


@dataclass(frozen=True)
class Cost:
    mapping: Mapping_
    accesses: Mapping[str, float]        # "level.operand.reads|writes" -> bytes
    compute_cycles: int                  # temporal iterations (one cycle each)
    cycles: int
    energy_pj: float                     # the design's own prices (levels and MAC)
    active_pes: int


def spatial_factors(nest: Nest, unrolling: tuple[str, str], rows: int, cols: int) -> dict[str, int]:
    """Each side's dimensions in turn take as much of the side as they can (``FY*C`` on 12
    rows with a 3x3 filter: FY 3, then C 4)."""
    out: dict[str, int] = {}
    for side, cap in zip(unrolling, (rows, cols)):
        for d in side.split("*"):
            f = max(1, min(nest.sizes[d], cap))
            out[d] = f
            cap //= f
    return out


def prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def temporal(nest: Nest, spatial: Mapping[str, int]) -> dict[str, int]:
    """Trip counts left to time per dimension (a partial last tile runs as a full one)."""
    return {d: -(-nest.sizes[d] // spatial.get(d, 1)) for d in DIMS}


def loops_for(order: tuple[str, ...], trips: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """The prime-factor loops of each dimension in ``order`` (innermost first), smallest first."""
    return tuple((d, p) for d in order for p in prime_factors(trips[d]))


class Footprints:
    """Tile footprints of every operand at every prefix of one loop order, per PE and over
    the array (numpy over the prefixes, once per order)."""

    def __init__(self, nest: Nest, sp: Mapping[str, int], loops: tuple[tuple[str, int], ...]) -> None:
        n = len(loops)
        e = np.ones((n + 1, len(DIMS)), dtype=np.int64)
        for i, (d, f) in enumerate(loops):
            e[i + 1:, _COL[d]] *= f
        u = e.copy()
        for d, f in sp.items():
            u[:, _COL[d]] *= f
        self._t = {}
        for per_pe, x in ((True, e), (False, u)):
            g, b, k, c, oy, ox, fy, fx = (x[:, j] for j in range(len(DIMS)))
            ih = np.minimum(np.minimum(nest.in_h, (oy - 1) * nest.stride_y + (fy - 1) * nest.dil_y + 1), oy * fy)
            iw = np.minimum(np.minimum(nest.in_w, (ox - 1) * nest.stride_x + (fx - 1) * nest.dil_x + 1), ox * fx)
            self._t[("weight", per_pe)] = (g * k * c * fy * fx).tolist()
            self._t[("output", per_pe)] = (g * b * k * oy * ox).tolist()
            self._t[("input", per_pe)] = (g * b * c * ih * iw).tolist()

    def fp(self, o: str, b: int, per_pe: bool) -> int:
        return self._t[(o, per_pe)][b]


_COL = {d: i for i, d in enumerate(DIMS)}


def _bits(arch: SpatialArch, operand: str, bits: Mapping[str, int]) -> int:
    return arch.acc_bits if operand == "output" else bits[operand]


def allocate(nest: Nest, arch: SpatialArch, unrolling: tuple[str, str], loops: tuple[tuple[str, int], ...],
             bits: Mapping[str, int], tab: Footprints | None = None) -> Mapping_ | None:
    """LOMA's bottom-up allocation (see the module); None where a level cannot hold even
    the tile of the level below it."""
    sp = spatial_factors(nest, unrolling, arch.rows, arch.cols)
    n = len(loops)
    cur = {o: 0 for o in OPERANDS}
    bounds: dict[tuple[int, str], int] = {}
    tab = tab or Footprints(nest, sp, loops)
    fp = tab.fp

    top = len(arch.levels) - 1
    for i, lv in enumerate(arch.levels):
        if i == top:
            for o in lv.operands:
                bounds[(i, o)] = n
            break
        cap = lv.size_bytes / (2 if lv.double_buffered else 1) * 8
        lo = min(cur[o] for o in lv.operands)
        best = -1
        for p in range(n, lo - 1, -1):
            need_bits = sum(fp(o, max(cur[o], p), lv.per_pe) * _bits(arch, o, bits) for o in lv.operands)
            if need_bits <= cap:
                best = p
                break
        if best < 0:
            return None
        for o in lv.operands:
            cur[o] = max(cur[o], best)
            bounds[(i, o)] = cur[o]
    return Mapping_(unrolling, sp, loops, bounds)


def fills(loops: tuple[tuple[str, int], ...], b: int, operand: str) -> int:
    """Refills of a tile that holds loops[:b]: the loops above, less the run just above it
    that ``operand`` does not depend on."""
    rel = RELEVANT[operand]
    r = b
    while r < len(loops) and loops[r][0] not in rel:
        r += 1
    out = 1
    for _, f in loops[r:]:
        out *= f
    return out


def distinct(loops: tuple[tuple[str, int], ...], b: int, operand: str) -> int:
    """Different tiles of ``operand`` the loops above loops[:b] visit."""
    rel = RELEVANT[operand]
    out = 1
    for d, f in loops[b:]:
        if d in rel:
            out *= f
    return out


def evaluate(nest: Nest, arch: SpatialArch, m: Mapping_, bits: Mapping[str, int], out_bits: int,
             tab: Footprints | None = None) -> Cost:
    """Accesses, cycles and energy of one mapping (see the module)."""
    loops, sp = m.loops, m.spatial
    active = 1
    for f in sp.values():
        active *= f
    levels = arch.levels
    acc: dict[str, float] = {}
    r_bits = [0.0] * len(levels)
    w_bits = [0.0] * len(levels)
    fill_bits = [0.0] * len(levels)

    def add(i: int, o: str, way: str, nbits: float) -> None:
        if nbits <= 0:
            return
        key = f"{levels[i].name}.{o}.{way}"
        acc[key] = acc.get(key, 0.0) + nbits / 8
        (r_bits if way == "reads" else w_bits)[i] += nbits

    tab = tab or Footprints(nest, sp, loops)

    def side(i: int | None, o: str, b: int) -> int:
        if i is None or levels[i].per_pe:
            return tab.fp(o, b, True) * active
        return tab.fp(o, b, False)

    for o in OPERANDS:
        chain = [i for i, lv in enumerate(levels) if o in lv.operands]
        child: int | None = None            # the array's own operand registers
        b_child = 0
        for parent in chain:
            nfill = fills(loops, b_child, o)
            if o == "output":
                nd = distinct(loops, b_child, o)
                reloads = nfill - nd
                width = arch.acc_bits if reloads > 0 else out_bits
                if child is not None:
                    add(child, o, "reads", nfill * side(child, o, b_child) * width)
                    add(child, o, "writes", reloads * side(child, o, b_child) * arch.acc_bits)
                add(parent, o, "writes", nfill * side(parent, o, b_child) * width)
                add(parent, o, "reads", reloads * side(parent, o, b_child) * arch.acc_bits)
            else:
                width = bits[o]
                add(parent, o, "reads", nfill * side(parent, o, b_child) * width)
                if child is not None:
                    add(child, o, "writes", nfill * side(child, o, b_child) * width)
                    fill_bits[child] += nfill * side(child, o, b_child) * width
            child, b_child = parent, m.bounds[(parent, o)]
    compute = 1
    for _, f in loops:
        compute *= f
    top = len(levels) - 1
    first = 0.0
    last_out_bits = 0.0
    for o in OPERANDS:
        below = [i for i in range(top) if o in levels[i].operands]
        if not below:
            continue
        if o == "output":       # the last output tile of the outermost on-chip level leaves after the array stops
            last_out_bits = side(below[-1], o, m.bounds[(below[-1], o)]) * out_bits
            first += last_out_bits / levels[top].write_bits
        else:                   # the array's first operands arrive before it starts (refills then stream)
            first += tab.fp(o, 0, False) * bits[o] / levels[top].read_bits
    w_bits[top] = max(0.0, w_bits[top] - last_out_bits)      # that drain is not overlapped with compute
    busiest = 0.0
    stall = 0.0
    for i, lv in enumerate(levels):
        per = active if lv.per_pe else 1
        r, w = r_bits[i] / per / lv.read_bits, w_bits[i] / per / lv.write_bits
        busiest = max(busiest, r + w if lv.shared_port else max(r, w))
        if not lv.double_buffered and i < top:
            stall += fill_bits[i] / per / lv.write_bits
    cycles = int(round(max(compute + stall, busiest) + first))
    energy = 0.0
    for key, nbytes in acc.items():
        name, _, way = key.split(".")
        lv = next(x for x in levels if x.name == name)
        energy += nbytes * 8 * ((lv.read_pj / lv.read_bits) if way == "reads" else (lv.write_pj / lv.write_bits))
    energy += nest.macs * arch.mac_pj
    return Cost(m, acc, compute, max(cycles, compute), energy, active)

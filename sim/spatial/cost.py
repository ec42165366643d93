"""A mapping of a loop nest onto a spatial design, and what it costs.

A mapping is a spatial unrolling (loop dimensions on each of the array's dimensions, each
by at most its size: ``sim.spatial.array``) and one temporal loop order (the remaining
trip counts as prime-factor loops, innermost first). The loops are allocated to the
memory levels bottom-up, as ZigZag's LOMA allocates them (Symons et al., "LOMA", AICAS
2021): each level takes the longest prefix of the loop order whose tiles of the
operands it holds fit its capacity (half of it when double-buffered), shared by those
operands (LOMA's allocator may give the operands of a shared level different prefixes,
the combination that least refills them: ``zigzag/opt/loma/memory_allocator.py``). The
prefix below a level is the tile it holds.

Access counts follow from the allocation (Timeloop's and ZigZag's rule, Parashar et al.,
ISPASS 2019): a level is refilled once per iteration of the loops above its tile, except
for the loops just above it that its operand does not depend on (the tile stays: that is
the reuse a stationary dataflow gets). An output tile leaves its level at every refill
and is read back for every visit after its first (partial sums). Each instance of a level
(one per PE for a per-PE level, one for a level shared by the whole array, one per
combination of the dimensions it does not serve otherwise) is written its own tile: the
tile of the loops below it, spatial ones along the dimensions it serves included; it
feeds all the PEs it serves at once (multicast), and partial sums reduced across them
reach it once. Below each operand's innermost level are the PEs' own registers, as the
design says (``held``): with ``pe_accumulator`` the PE keeps the partial sum it works on,
so the innermost output level is written when the partial sum leaves and read when it
comes back; without, every MAC reads it there and writes it back (ZigZag's
read-modify-write). With ``operand_registers`` "pe" the PE keeps its input and weight
words, so their innermost levels are read only when a word changes (ZigZag's count too);
"none": every MAC reads them; "port": held where the level's read port delivers them whole.
With ``psum_reads`` "writes" a level that holds partial sums reads one back per write, the
first included (ZigZag's count). With ``port_words`` each tile moved into or out of an
instance is priced in whole accesses of the level's port (``Level.access_bits``; ZigZag's
``_calc_memory_access``), and the accesses count those words' bytes.

Time is a roofline over the levels: the array's cycles (one per temporal iteration),
or the busiest port (bits moved / bits per cycle; per instance), whichever
is longer; refills of a level that is not double-buffered stall the array
(``_refill_stall``); then what crosses before the array starts and after it stops
(``SpatialArch.loading``): the array's first operands from the last level and the last
output tile of the outermost on-chip level, whole ("tile"), or ZigZag's on- and
offloading (Mei et al. 2021; ``_loading``, "overlapped"); "roofline" (AccelForge's latency)
adds nothing and stalls nothing: the array's cycles or the busiest port, all its traffic
counted, whichever is longer.

A single-buffered level with separate read and write ports takes the next tile of an input
or weight in the last pass over its current one (``last_pass``, ``windowed``): the array
waits only for what a refill's write time exceeds that window by. This is ZigZag 3.9.1's
memory-updating window (``zigzag/mapping/mapping.py``: ``inst_data_trans_window`` = the
period over its top irrelevant loops; ``zigzag/cost_model``: ``stall_or_slack`` =
(real - allowed cycles) x (periods - 1)), with three differences: ZigZag grants a whole
period (a double buffer) to any level whose tile, over its top relevant loops, takes at most
half of it, where hwsim grants it to a level declared ``double_buffered``; ZigZag combines a
port's transfers and takes the worst port, where hwsim adds the levels' stalls to the
array's cycles and keeps its roofline over the ports; ZigZag gives an output's write-back a
window too, where hwsim moves an output tile whole after its last iteration. The stepper
(``sim.spatial.stepper``, hwsim's ground truth) starts such a refill once the level below
has begun reading the last pass, which is earlier where it takes whole tiles of its own
(the PEs' registers holding a word: up to one of their tiles), and lets a tile arrive
piece by piece; this closed form keeps ZigZag's window and whole tiles.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

from .array import ARRAY, PER_PE, dims_of, groups_for, level_groups, spatial_factors
from .nest import DIMS, OPERANDS, REDUCTION, RELEVANT, Nest, window

if TYPE_CHECKING:
    from .arch import Level, SpatialArch

__all__ = [
    "Mapping_", "Cost", "spatial_factors", "prime_factors", "temporal", "loops_for", "Footprints", "footprints",
    "level_plan", "allocate", "fills", "last_pass", "windowed", "held", "array_fills", "distinct", "evaluate",
    "lower_bound", "ARRAY", "PER_PE",
]


@dataclass(frozen=True)
class Mapping_:
    unrolling: tuple[str, ...]                      # one side per array dimension
    spatial: Mapping[str, int]                      # dim -> factor on the array
    loops: tuple[tuple[str, int], ...]              # temporal loops, innermost first
    bounds: Mapping[tuple[int, str], int]           # (level index, operand) -> loops below that level's tile

    def describe(self) -> str:
        order = " ".join(f"{d}{f}" for d, f in self.loops)
        sides = ("*".join(f"{d}{self.spatial[d]}" for d in dims_of(side)) or "-" for side in self.unrolling)
        return f"{'|'.join(sides)} [{order}]"


@dataclass(frozen=True)
class Cost:
    mapping: Mapping_
    accesses: Mapping[str, float]        # "level.operand.reads|writes" -> bytes
    compute_cycles: int                  # temporal iterations (one cycle each)
    cycles: int
    energy_pj: float                     # the design's own prices (levels and MAC)
    active_pes: int


@functools.lru_cache(maxsize=4096)
def prime_factors(n: int) -> tuple[int, ...]:
    """Smallest first (cached: every loop order of an op factors the same trip counts)."""
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return tuple(out)


def temporal(nest: Nest, spatial: Mapping[str, int]) -> dict[str, int]:
    """Trip counts left to time per dimension (a partial last tile runs as a full one)."""
    return {d: -(-nest.sizes[d] // spatial.get(d, 1)) for d in DIMS}


def loops_for(order: tuple[str, ...], trips: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """The prime-factor loops of each dimension in ``order`` (innermost first), smallest first."""
    return tuple((d, p) for d in order for p in prime_factors(trips[d]))


class Footprints:
    """Tile footprints of every operand at every prefix of one loop order, in one instance of
    each group of levels (``sim.spatial.array``: by default the whole array, ``ARRAY``, and one
    PE, ``PER_PE``), built loop by loop (a loop changes only the operands whose dimensions it
    runs over). ``inst[g]``: the instances of group ``g`` the unrolling puts to work."""

    def __init__(self, nest: Nest, sp: Mapping[str, int], loops: tuple[tuple[str, int], ...],
                 groups: tuple[Mapping[str, int], ...] | None = None) -> None:
        groups = groups if groups is not None else (sp, {})
        active = _prod(sp.values())
        self.inst = tuple(active // _prod(g.values()) for g in groups)
        # the reduction (C, FY, FX) a group's instances leave to the levels above them
        red = _prod(sp.get(d, 1) for d in REDUCTION)
        self.reduced = tuple(red > _prod(g.get(d, 1) for d in REDUCTION) for g in groups)
        sy, sx, dy, dx, H, W = nest.stride_y, nest.stride_x, nest.dil_y, nest.dil_x, nest.in_h, nest.in_w
        # per group: its spatial factors (weight, output, and the input's G*B*C; its window's
        # rows and columns) and its input window at the current prefix
        fac = []
        lists: list[list[int]] = []
        wys, wxs = [], []
        for g in groups:
            s = {d: g.get(d, 1) for d in DIMS}
            sw = s["G"] * s["K"] * s["C"] * s["FY"] * s["FX"]
            so = s["G"] * s["B"] * s["K"] * s["OY"] * s["OX"]
            sgbc = s["G"] * s["B"] * s["C"]
            fac.append((sw, so, sgbc, s["OY"], s["FY"], s["OX"], s["FX"]))
            wys.append(window(s["OY"], s["FY"], sy, dy, H))
            wxs.append(window(s["OX"], s["FX"], sx, dx, W))
            lists += [[sw], [so], [sgbc * wys[-1] * wxs[-1]]]
        w = o = gbc = eoy = efy = eox = efx = 1
        rng = range(len(groups))
        for d, f in loops:
            if d in _W_DIMS:
                w *= f
            if d in _O_DIMS:
                o *= f
            if d in _GBC:
                gbc *= f
            if d == "OY" or d == "FY":
                if d == "OY":
                    eoy *= f
                else:
                    efy *= f
                for k in rng:
                    wys[k] = window(eoy * fac[k][3], efy * fac[k][4], sy, dy, H)
            elif d == "OX" or d == "FX":
                if d == "OX":
                    eox *= f
                else:
                    efx *= f
                for k in rng:
                    wxs[k] = window(eox * fac[k][5], efx * fac[k][6], sx, dx, W)
            for k in rng:
                sw, so, sgbc = fac[k][:3]
                lists[3 * k].append(w * sw)
                lists[3 * k + 1].append(o * so)
                lists[3 * k + 2].append(gbc * sgbc * wys[k] * wxs[k])
        self._l = lists

    def table(self, o: str, g: int) -> list[int]:
        """The footprints of ``o`` in one instance of group ``g`` at every prefix (element ``b``: loops[:b])."""
        return self._l[3 * g + _SLOT[o]]

    def fp(self, o: str, b: int, g: int) -> int:
        return self._l[3 * g + _SLOT[o]][b]


def footprints(nest: Nest, arch: SpatialArch, unrolling: tuple[str, ...], sp: Mapping[str, int],
               loops: tuple[tuple[str, int], ...]) -> Footprints:
    """The footprint tables of the design's groups of levels for this unrolling."""
    return Footprints(nest, sp, loops, groups_for(arch.levels, unrolling, sp))


def _prod(xs: Iterable[int]) -> int:
    n = 1
    for x in xs:
        n *= x
    return n


_SLOT = {"weight": 0, "output": 1, "input": 2}
_W_DIMS = frozenset(("G", "K", "C", "FY", "FX"))
_O_DIMS = frozenset(("G", "B", "K", "OY", "OX"))
_GBC = frozenset(("G", "B", "C"))


def _bits(arch: SpatialArch, operand: str, bits: Mapping[str, int]) -> int:
    return arch.acc_bits if operand == "output" else bits[operand]


Plan = tuple[tuple[float, tuple[tuple[str, int], ...], int], ...]


def level_plan(arch: SpatialArch, bits: Mapping[str, int]) -> Plan:
    """What ``allocate`` needs of each level below the last: the bits one instance holds
    for one tile (half its capacity if double-buffered), its operands with their widths,
    and its group (``Footprints``). The same for every loop order of an op."""
    _, group = level_groups(arch.levels)
    return tuple((lv.size_bytes / (2 if lv.double_buffered else 1) * 8,
                  tuple((o, _bits(arch, o, bits)) for o in lv.operands), group[i])
                 for i, lv in enumerate(arch.levels[:-1]))


def allocate(nest: Nest, arch: SpatialArch, unrolling: tuple[str, ...], loops: tuple[tuple[str, int], ...],
             bits: Mapping[str, int], tab: Footprints | None = None, plan: Plan | None = None) -> Mapping_ | None:
    """LOMA's bottom-up allocation (see the module); None where a level cannot hold even
    the tile of the level below it. ``plan`` is ``level_plan(arch, bits)``, passed by a
    caller that allocates many orders."""
    sp = spatial_factors(nest, unrolling, *arch.array, divisors=arch.factors == "divisors")
    n = len(loops)
    cur = {o: 0 for o in OPERANDS}
    bounds: dict[tuple[int, str], int] = {}
    tab = tab or footprints(nest, arch, unrolling, sp, loops)
    for i, (cap, held_bits, g) in enumerate(plan if plan is not None else level_plan(arch, bits)):
        held = [(tab.table(o, g), cur[o], w) for o, w in held_bits]
        lo = min(c for _, c, _ in held)
        if sum(t[c] * w for t, c, w in held) > cap:     # cannot hold its operands' current tiles
            return None
        hi = n                                   # footprints grow with the prefix: the longest that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if sum(t[c if c > mid else mid] * w for t, c, w in held) <= cap:
                lo = mid
            else:
                hi = mid - 1
        for o, _ in held_bits:
            if lo > cur[o]:
                cur[o] = lo
            bounds[(i, o)] = cur[o]
    top = len(arch.levels) - 1
    for o in arch.levels[top].operands:
        bounds[(top, o)] = n
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


def last_pass(loops: tuple[tuple[str, int], ...], b: int, operand: str) -> int:
    """Iterations of the last pass over a tile that holds loops[:b] (ZigZag's memory-updating
    window): the tile's life (``fills``' period, the run of loops just above it that
    ``operand`` does not depend on included) less the loops at its top that ``operand``
    does not depend on, which go over the same words again. In the last pass each word is
    read for the last time, so a single buffer may take the next tile's words behind it."""
    rel = RELEVANT[operand]
    r = b
    while r < len(loops) and loops[r][0] not in rel:
        r += 1
    while r > 0 and loops[r - 1][0] not in rel:
        r -= 1
    out = 1
    for _, f in loops[:r]:
        out *= f
    return out


def windowed(level: Level, operand: str) -> bool:
    """Whether a single-buffered level takes its next tile of ``operand`` in the last pass
    over its current one (``last_pass``): an input or weight (an output tile leaves whole
    after its last iteration), on a level with separate read and write ports (one shared
    port serves the reads of the current tile until it ends)."""
    return not level.double_buffered and not level.shared_port and operand != "output"


def distinct(loops: tuple[tuple[str, int], ...], b: int, operand: str) -> int:
    """Different tiles of ``operand`` the loops above loops[:b] visit."""
    rel = RELEVANT[operand]
    out = 1
    for d, f in loops[b:]:
        if d in rel:
            out *= f
    return out


def held(arch: SpatialArch, operand: str, tile_bits: float, port_bits: float) -> bool:
    """Whether the PEs keep ``operand``'s word (an output's partial sum) while it does not
    change, so that its innermost level is read (an output's written) only when it changes
    (``SpatialArch.pe_accumulator`` and ``operand_registers``); ``tile_bits``: what one
    instance of that level hands the array per iteration, ``port_bits``: its read port."""
    if operand == "output":
        return arch.pe_accumulator
    mode = arch.operand_registers
    return mode == "pe" or (mode == "port" and tile_bits <= port_bits)


def array_fills(arch: SpatialArch, loops: tuple[tuple[str, int], ...], operand: str, tile_bits: float,
                port_bits: float) -> int:
    """How often the innermost level of ``operand`` hands the array its words: when they
    change where the PEs hold them (``held``), else every iteration."""
    if held(arch, operand, tile_bits, port_bits):
        return fills(loops, 0, operand)
    return _prod(f for _, f in loops)


_CHAINS: dict[int, tuple[tuple[Level, ...], dict[str, tuple[int, ...]]]] = {}
Edge = tuple[str, int, int, int, int, int]      # operand, child level, parent level, bound, transfers, bits a word


def _chains(levels: tuple[Level, ...]) -> dict[str, tuple[int, ...]]:
    """The levels that hold each operand, innermost first (remembered per levels tuple)."""
    hit = _CHAINS.get(id(levels))
    if hit is None or hit[0] is not levels:
        if len(_CHAINS) > 64:
            _CHAINS.clear()
        hit = _CHAINS[id(levels)] = (levels, {o: tuple(i for i, lv in enumerate(levels) if o in lv.operands)
                                              for o in OPERANDS})
    return hit[1]


def evaluate(nest: Nest, arch: SpatialArch, m: Mapping_, bits: Mapping[str, int], out_bits: int,
             tab: Footprints | None = None) -> Cost:
    """Accesses, cycles and energy of one mapping (see the module)."""
    loops, sp = m.loops, m.spatial
    active = _active(m)
    levels = arch.levels
    nlv = len(levels)
    moved = [[0.0] * (2 * len(OPERANDS)) for _ in range(nlv)]   # per level: bits read, written per operand
    # what the accesses are priced at: the bits moved, or with port_words whole accesses of them
    priced = [[0.0] * (2 * len(OPERANDS)) for _ in range(nlv)] if arch.port_words else moved
    stall = 0.0
    tab = tab or footprints(nest, arch, m.unrolling, sp, loops)
    _, group = level_groups(levels)
    inst = tab.inst

    def move(i: int, slot: int, n: int, o: str, b: int, width: int) -> None:
        """``n`` transfers of ``o``'s tile below loop ``b`` (``width`` bits a word) into or out
        of (``slot`` odd or even) every instance of level ``i``."""
        g = group[i]
        one = tab.fp(o, b, g) * width
        moved[i][slot] += n * inst[g] * one
        if priced is not moved:
            a = levels[i].access_bits[slot & 1]
            priced[i][slot] += n * inst[g] * math.ceil(one / a) * a

    chains = _chains(levels)
    edges: list[Edge] = []              # tile transfers between levels, each operand's innermost first
    overlapped = arch.loading == "overlapped"
    roofline = arch.loading == "roofline"           # no fill, no drain, no refill stall
    every_write = arch.psum_reads == "writes"
    for k, o in enumerate(OPERANDS):
        child: int | None = None            # the array's own operand registers
        b_child = 0
        r, w = 2 * k, 2 * k + 1
        for parent in chains[o]:
            if child is None:               # the PEs' registers, as the design has them
                word = arch.acc_bits if o == "output" else bits[o]
                nfill = array_fills(arch, loops, o, tab.fp(o, 0, group[parent]) * word, levels[parent].read_bits)
            else:
                nfill = fills(loops, b_child, o)
            if o == "output":
                reloads = nfill - distinct(loops, b_child, o)
                if every_write and (reloads > 0 or tab.reduced[group[parent]]):
                    reloads = nfill             # it holds partial sums: one read back per write
                width = arch.acc_bits if reloads > 0 else out_bits
                if child is not None:
                    edges.append((o, child, parent, b_child, nfill, width))
                    move(child, r, nfill, o, b_child, width)
                    move(child, w, reloads, o, b_child, arch.acc_bits)
                move(parent, w, nfill, o, b_child, width)
                move(parent, r, reloads, o, b_child, arch.acc_bits)
            else:
                width = bits[o]
                move(parent, r, nfill, o, b_child, width)
                if child is not None:
                    edges.append((o, child, parent, b_child, nfill, width))
                    move(child, w, nfill, o, b_child, width)
                    if not levels[child].double_buffered and not roofline:
                        stall += _refill_stall(levels[child], o, tab.fp(o, b_child, group[child]) * width, nfill,
                                               last_pass(loops, b_child, o), not overlapped)
            child, b_child = parent, m.bounds[(parent, o)]
    compute = 1
    for _, f in loops:
        compute *= f
    top = nlv - 1
    first = 0.0
    edge = [[0.0, 0.0] for _ in range(nlv)]     # per level: bits (per instance) read, written before or after
    if overlapped:              # each boundary's first input tile and last output tile (``_loading``)
        for o, c, p, b, _, width in edges:
            out = o == "output"
            edge[c][0 if out else 1] += tab.fp(o, b, group[c]) * width
            edge[p][1 if out else 0] += tab.fp(o, b, group[p]) * width
    elif not roofline:
        for o in OPERANDS:          # the array's first operands arrive before it starts (refills then stream)
            if o != "output" and any(i < top for i in chains[o]):
                first += tab.fp(o, 0, ARRAY) * bits[o] / levels[top].read_bits
        drains = [x for x in edges if x[0] == "output"]
        if drains:              # the last output tile of the outermost on-chip level leaves after the array stops
            _, c, p, b, _, _ = drains[-1]
            edge[p][1] = tab.fp("output", b, group[c]) * inst[group[c]] * out_bits / inst[group[p]]
            first += edge[p][1] / levels[p].write_bits
    energy = nest.macs * arch.mac_pj
    busy = []                   # per level: (read, write) port cycles during the compute; one shared port: both
    for i, lv in enumerate(levels):
        energy += sum(priced[i][0::2]) * lv.read_pj / lv.read_bits + sum(priced[i][1::2]) * lv.write_pj / lv.write_bits
        per = inst[group[i]]
        rc = max(0.0, sum(moved[i][0::2]) / per - edge[i][0]) / lv.read_bits
        wc = max(0.0, sum(moved[i][1::2]) / per - edge[i][1]) / lv.write_bits
        busy.append((rc + wc, rc + wc) if lv.shared_port else (rc, wc))
    span = max([compute + stall] + [max(x) for x in busy])
    if overlapped:
        first += _loading(levels, tab, group, edges, busy, span)
    cycles = int(round(span + first))
    names = tuple(lv.name for lv in levels)
    return Cost(m, _Moved(names, tuple(tuple(x) for x in priced)), compute, max(cycles, compute), energy, active)


def _loading(levels: tuple[Level, ...], tab: Footprints, group: tuple[int, ...], edges: list[Edge],
             busy: list[tuple[float, float]], span: float) -> float:
    """Cycles before and after the compute under ZigZag 3.9.1's on- and offloading
    (``SpatialArch.loading`` "overlapped"; its ``calc_loading_single_port``,
    ``calc_onloading_combined``, ``calc_offloading_combined``). Each edge costs the slower of
    its two sides (the child's write and the parent's read of an input's first tile, the
    child's read and the parent's write of an output's last one; per instance). A side of a
    tile that crosses once per layer instead takes its port's idle cycles while the array
    runs (``span`` less the port's ``busy``), the longest such transfer first, and keeps what they leave, at least the
    operand's innermost tile through that port. The offload adds up the output's edges; per
    input, its edges add up, and the two inputs' sums overlap where no port of theirs is
    shared: a side is shared where its level holds both inputs (one read port)."""
    lowest: dict[str, int] = {}             # elements of each operand's innermost tile
    once: list[tuple[int, int, int, tuple[int, int], int]] = []     # (cycles, edge, side, port, floor)
    sides = [[0.0, 0.0] for _ in edges]
    for k, (o, c, p, b, n, width) in enumerate(edges):
        lowest.setdefault(o, tab.fp(o, b, group[c]))
        for side, (i, way) in enumerate(((c, 0), (p, 1)) if o == "output" else ((c, 1), (p, 0))):
            port = levels[i].write_bits if way else levels[i].read_bits
            sides[k][side] = t = math.ceil(tab.fp(o, b, group[i]) * width / port)
            if n == 1:
                once.append((t, k, side, (i, 0 if levels[i].shared_port else way),
                             math.ceil(lowest[o] * width / port)))
    idle: dict[tuple[int, int], float] = {}
    for t, k, side, key, floor in sorted(once, key=lambda x: -x[0]):
        spare = idle.setdefault(key, max(0.0, span - busy[key[0]][key[1]]))
        cut = min(max(0, t - floor), spare)
        idle[key] = spare - cut
        sides[k][side] = t - cut
    both = [i for i, lv in enumerate(levels) if "input" in lv.operands and "weight" in lv.operands]
    part = {o: [0.0, 0.0, 0.0] for o in ("input", "weight")}        # shared, half-shared, separate
    off = 0.0
    for (o, c, p, *_), ts in zip(edges, sides):
        if o == "output":
            off += max(ts)
        else:
            part[o][2 - (c in both) - (p in both)] += max(ts)
    (s1, h1, i1), (s2, h2, i2) = part["input"], part["weight"]
    return off + min(s1 + max(s2 + h2 + i2, h1 + i1), s2 + max(s1 + h1 + i1, h2 + i2))


def _refill_stall(level: Level, operand: str, tile_bits: float, nfill: int, window: int, first: bool = True) -> float:
    """Cycles the array waits for ``nfill`` refills of a single-buffered level, each writing
    ``tile_bits`` into one instance in ``d`` cycles at the level's write port (whole cycles,
    as the stepper moves a tile; the port above it counts in the roofline). The first is
    loaded before the array starts, in full. Each later one is written in the last
    ``window`` iterations of the tile it replaces where ``windowed`` (ZigZag's memory-
    updating window; the array waits ``d - window`` where it does not fit, ZigZag's
    ``stall_or_slack`` of a transfer), else after that tile's last iteration (``d``).
    ``first`` false: the first load is counted as onloading (``_loading``), not here."""
    d = math.ceil(tile_bits / level.write_bits)
    if windowed(level, operand):
        return d * first + (nfill - 1) * max(0, d - window)
    return (nfill - 1 + first) * d


def lower_bound(nest: Nest, arch: SpatialArch, m: Mapping_, bits: Mapping[str, int], out_bits: int,
                tab: Footprints) -> tuple[float, float]:
    """(cycles, energy) no lower than ``evaluate``'s for this mapping, from the last level's
    traffic alone: its port time against the array's cycles, plus onloading and
    offloading; the MACs' and the last level's energy. Lets the search skip a candidate
    that cannot win without counting every level."""
    levels = arch.levels
    top = len(levels) - 1
    lv = levels[top]
    chains = _chains(levels)
    _, group = level_groups(levels)
    rb = wb = 0.0
    first = drain = 0.0
    last_out = first_in = 0.0
    for o in OPERANDS:
        below = [i for i in chains[o] if i < top]
        child, b = (below[-1], m.bounds[(below[-1], o)]) if below else (None, 0)
        fp = tab.fp(o, b, ARRAY)
        if child is None:                   # the last level is the operand's innermost
            word = arch.acc_bits if o == "output" else bits[o]
            nfill = array_fills(arch, m.loops, o, tab.fp(o, 0, group[top]) * word, lv.read_bits)
        else:
            nfill = fills(m.loops, b, o)
        if o == "output":
            reloads = nfill - distinct(m.loops, b, o)
            width = arch.acc_bits if reloads > 0 else out_bits
            wb += nfill * fp * width
            rb += reloads * fp * arch.acc_bits
            if child is not None:
                g = group[child]
                last_out = tab.fp(o, b, g) * tab.inst[g] * out_bits
                if arch.loading == "overlapped":     # the last transfer leaves after; its time is at least 0
                    last_out, drain = fp * width, 0.0
                else:
                    drain = last_out / lv.write_bits
        else:
            rb += nfill * fp * bits[o]
            if child is not None and arch.loading == "overlapped":     # the first tile arrives before
                first_in += fp * bits[o]
            elif child is not None:
                first += tab.fp(o, 0, ARRAY) * bits[o] / lv.read_bits
    energy = nest.macs * arch.mac_pj + rb * lv.read_pj / lv.read_bits + wb * lv.write_pj / lv.write_bits
    rc, wc = max(0.0, rb - first_in) / lv.read_bits, max(0.0, wb - last_out) / lv.write_bits
    compute = 1
    for _, f in m.loops:
        compute *= f
    busy = rc + wc if lv.shared_port else max(rc, wc)
    if arch.loading == "roofline":      # every bit in the port time (rb, wb whole), nothing before or after
        rc, wc = rb / lv.read_bits, wb / lv.write_bits
        busy = rc + wc if lv.shared_port else max(rc, wc)
        first = drain = 0.0
    return max(compute, busy) + first + drain - 1, energy * (1 - 1e-9)


def _active(m: Mapping_) -> int:
    n = 1
    for f in m.spatial.values():
        n *= f
    return n


class _Moved(Mapping[str, float]):
    """Bytes per ``level.operand.reads|writes`` (nonzero entries), built when first read:
    the search compares thousands of candidates by time and energy alone."""

    def __init__(self, names: tuple[str, ...], moved: tuple[tuple[float, ...], ...]) -> None:
        self._names, self._moved = names, moved
        self._d: dict[str, float] | None = None

    def _dict(self) -> dict[str, float]:
        if self._d is None:
            d = {}
            for name, row in zip(self._names, self._moved):
                for k, o in enumerate(OPERANDS):
                    for j, way in ((2 * k, "reads"), (2 * k + 1, "writes")):
                        if row[j] > 0:
                            d[f"{name}.{o}.{way}"] = row[j] / 8
            self._d = d
        return self._d

    def __getitem__(self, key: str) -> float:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

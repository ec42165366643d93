"""Event-driven reference for the tensor-core GEMM model (simpy; the unit of time is a cycle).

It is a second, independent model of the same kernel, not a replay of the closed form
(``gemm.gemm_time``): it is given only the kernel's choice (the CTA tile and the K split,
as a library's kernel name fixes them) and reads nothing the closed form computes.

* **Occupancy** from the kernel's shared memory, registers and threads against the SM's
  limits (``sim.gpu.kernel.Kernel.ctas_per_sm``).
* **Block scheduler**: CTAs in row-major raster order (batch copies one after another) go
  to SMs as slots free, the first wave round robin over the SMs.
* **Software pipeline per CTA**: the loads of the first ``stages - 1`` K steps, then per
  step: wait for its A and B blocks, issue the load ``stages - 1`` steps ahead, run the
  step's MMAs on the SM's tensor cores (shared by the resident CTAs), each step holding
  them for its share of the stepped SM core's main loop (``sim.gpu.sm``) with the SM full.
* **L2**: an LRU cache of the whole L2's capacity holding A blocks (copy, tile row, K step)
  and B blocks (copy, tile column, K step), each row of a block rounded up to 32-byte
  sectors. A hit costs its transfer at the L2 bandwidth (a block a cluster shares by TMA
  multicast, ``sim.gpu.kernel.multicast``, its share of it per CTA); a miss first moves the sectors
  over HBM (one chip-wide pipe at the DRAM bandwidth) and waits the DRAM latency; a
  second request for a block in flight waits for that fill instead of fetching it again
  (miss merging). So CTAs that share an A or B panel reuse it exactly as far as the
  raster order, the residency and the capacity allow.
* **Epilogue**: the output tile is written over HBM; the kernel ends when the last write
  has landed (one DRAM latency after its transfer).
* **Split-K**: the S-times-larger grid of K/S slices (slices outermost in the launch
  order). Parallel: each writes an accumulator-width partial over HBM, then a reduction
  kernel reads them and writes the output, after its launch. Serial (CUTLASS's semaphore):
  slice k waits for slice k - 1's release of the tile, one L2 round trip for its spinning
  acquire to see it and one to load the tile, reads and adds the tile over the L2 port,
  writes it back and releases (its stores ordered first: a third round trip); the last
  slice stores the tile over HBM.
* **Stream-K**: one wave of persistent CTAs, each running an equal share of all tiles' K
  steps in order (a new software pipeline per tile it enters); a later part of a cut tile
  writes its accumulator partial through L2 and signals; the CTA that ran the tile's first
  K step waits for those signals, reads the partials and stores the tile.

An implicit-GEMM convolution reads fewer distinct A bytes than its im2col matrix holds
(``a_unique_bytes``); the model charges an A miss that share of its sectors (a miss brings
in the input pixels of the block, most of which neighbouring blocks share).

Tests (``tests/test_gpu.py``) derive DRAM traffic by hand for small grids and report how
far this model and the closed form disagree over a shape grid (median and worst).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generator, TypeAlias

import simpy

from .precision import PRECISION_BYTES
from .kernel import kernel, multicast   # the kernel a tile runs (K step, stages, threads, clusters), not its timing
from .sm.mainloop import main_loop   # the SM's main loop, stepped (shared with the closed form, below it)

if TYPE_CHECKING:
    from .arch import GPUArch

__all__ = ["SECTOR_BYTES", "EventTiming", "gemm_run", "gemm_events", "gemm_detail"]

_ProcessBody: TypeAlias = Generator[simpy.Event, object, None]    # a simpy process body
_Block: TypeAlias = tuple[str, int, int, int]                  # (operand, batch, tile row or column, K step)

SECTOR_BYTES = 32            # L2 sector (NVIDIA: 32-byte sectors of 128-byte lines, Volta-Hopper tuning guides)


@dataclass(frozen=True)
class EventTiming:
    cycles: int
    ctas: int
    ctas_per_sm: int
    dram_read_bytes: float       # A and B sectors moved over HBM (split-K partials included)
    dram_write_bytes: float      # output tiles (and split-K partials) written
    l2_hits: int                 # block requests served by L2 (merged misses included)
    l2_misses: int               # block requests that went to HBM


def gemm_run(M: int, N: int, K: int, arch: GPUArch, precision: str = "fp16", count: int = 1,
             tile: tuple[int, int] = (128, 128), acc_bytes: int = 4,
             out_bytes: float | None = None, a_unique_bytes: float | None = None,
             stream_k: bool = False, serial_slices: int = 1) -> EventTiming:
    """One GEMM kernel (``count`` batched copies) with the given CTA tile, event by event;
    ``stream_k``: one wave of persistent CTAs, each running an equal share of all tiles' K
    steps in order; a tile cut between CTAs is finished by the CTA that ran its first K
    step, after reading the others' accumulator partials from L2. ``serial_slices`` S > 1:
    the ``count`` copies are S K-slices of ``count / S`` GEMMs (slice outermost) that
    reduce each output tile in turn through L2 (serial split-K)."""
    BM, BN = tile
    in_b = PRECISION_BYTES[precision]
    out_b = in_b if out_bytes is None else out_bytes
    kern = kernel(arch, BM, BN, precision, acc_bytes, out_bytes=out_b)
    BK, stages = kern.BK, kern.stages
    per_sm = kern.ctas_per_sm(arch)
    if per_sm < 1:
        raise ValueError(f"tile {BM}x{BN} does not fit one SM of {arch.name} at {precision}")
    tm, tn, nk = -(-M // BM), -(-N // BN), -(-K // BK)
    # a cluster reads its shared block from L2 once; stream-K's persistent CTAs walk different
    # tiles at unrelated K steps, so they share nothing (as the closed form's stream-K)
    a_cast, b_cast = (1.0, 1.0) if stream_k else multicast(arch, BM, BN, tm, tn)
    grid = tm * tn
    ctas = grid * count
    a_scale = 1.0 if a_unique_bytes is None else min(1.0, a_unique_bytes / (M * K * in_b))
    # a K step's MMAs hold the SM for its share of the resident CTAs' stepped main loop
    mma = main_loop(arch, BM, BN, BK, precision, per_sm, stages).cycles_per_kstep / per_sm
    lat = arch.dram_latency_cycles
    dram_bpc = arch.dram_bytes_per_clk
    capacity = arch.l2_mib * 2 ** 20

    env = simpy.Environment()
    hbm = simpy.Resource(env, capacity=1)
    l2_port = simpy.Resource(env, capacity=1)
    cores = [simpy.Resource(env, capacity=1) for _ in range(arch.sms)]
    l2: OrderedDict[_Block, float] = OrderedDict()     # block -> sectors' bytes, least recently used first
    pending: dict[_Block, simpy.Event] = {}            # block -> fill event
    stats = {"rd": 0.0, "wr": 0.0, "hit": 0, "miss": 0, "used": 0.0, "end": 0.0}

    def block_bytes(rows: int, k: int) -> float:
        width = min(BK, K - k * BK) * in_b
        return rows * math.ceil(width / SECTOR_BYTES) * SECTOR_BYTES

    def over(port: simpy.Resource, seconds: float) -> _ProcessBody:
        with port.request() as req:
            yield req
            yield env.timeout(seconds)

    def fetch(key: _Block, nbytes: float, dram_share: float, port_share: float) -> _ProcessBody:
        if key in l2:
            l2.move_to_end(key)
            stats["hit"] += 1
        elif key in pending:
            stats["hit"] += 1
            yield pending[key]
        else:
            stats["miss"] += 1
            fill = pending[key] = env.event()
            moved = nbytes * dram_share
            yield from over(hbm, moved / dram_bpc)
            stats["rd"] += moved
            yield env.timeout(lat)
            if nbytes <= capacity:
                while stats["used"] + nbytes > capacity:
                    _, old = l2.popitem(last=False)
                    stats["used"] -= old
                l2[key] = nbytes
                stats["used"] += nbytes
            del pending[key]
            fill.succeed()
        yield from over(l2_port, nbytes * port_share / arch.l2_bytes_per_clk)

    def load(b: int, tr: int, tc: int, k: int) -> _ProcessBody:
        rows_a, cols_b = min(BM, M - tr * BM), min(BN, N - tc * BN)
        a = env.process(fetch(("A", b, tr, k), block_bytes(rows_a, k), a_scale, a_cast))
        bb = env.process(fetch(("B", b, tc, k), block_bytes(cols_b, k), 1.0, b_cast))
        yield a & bb

    def mainloop(sm: int, b: int, tr: int, tc: int, k0: int, k1: int) -> _ProcessBody:
        ready: dict[int, simpy.Process] = {}      # K step -> its loads
        for k in range(k0, min(k0 + stages - 1, k1)):
            ready[k] = env.process(load(b, tr, tc, k))
        for k in range(k0, k1):
            yield ready.pop(k)
            nxt = k + stages - 1
            if nxt < k1:
                ready[nxt] = env.process(load(b, tr, tc, nxt))
            yield from over(cores[sm], mma)

    def store(tr: int, tc: int) -> _ProcessBody:
        out = min(BM, M - tr * BM) * min(BN, N - tc * BN) * out_b
        yield from over(hbm, out / dram_bpc)
        stats["wr"] += out
        stats["end"] = max(stats["end"], env.now + lat)

    S = serial_slices
    gemms = count // S
    l2_lat = arch.l2_latency_cycles
    released = {(b, k): env.event() for b in range(count) for k in range(grid) if S > 1}

    def reduce_in_turn(b: int, r: int, tr: int, tc: int) -> _ProcessBody:
        """Serial split-K: this slice's turn at the tile (CUTLASS Semaphore wait/release)."""
        k, g = divmod(b, gemms)
        tile = min(BM, M - tr * BM) * min(BN, N - tc * BN) * out_b
        if k:
            yield released[b - gemms, r]
            yield env.timeout(2 * l2_lat)                  # the acquire sees the release; the tile's load
            yield from over(l2_port, tile / arch.l2_bytes_per_clk)
        if k == S - 1:
            yield from store(tr, tc)
            return
        yield from over(l2_port, tile / arch.l2_bytes_per_clk)
        yield env.timeout(l2_lat)                          # the release waits for the stores
        released[b, r].succeed()

    def cta(cid: int, sm: int) -> _ProcessBody:
        b, r = divmod(cid, grid)
        tr, tc = divmod(r, tn)
        yield from mainloop(sm, b, tr, tc, 0, nk)
        if S > 1:
            yield from reduce_in_turn(b, r, tr, tc)
        else:
            yield from store(tr, tc)

    partial_bytes = BM * BN * acc_bytes

    def persistent(q: int, sm: int, first: int, last: int) -> _ProcessBody:
        i = first
        while i < last:
            t, k0 = divmod(i, nk)
            k1 = min(nk, k0 + last - i)
            b, r = divmod(t, grid)
            tr, tc = divmod(r, tn)
            yield from mainloop(sm, b, tr, tc, k0, k1)
            if k0 > 0:                       # a later part of a cut tile: its partial to the workspace
                yield from over(l2_port, partial_bytes / arch.l2_bytes_per_clk)
                done[t] += 1
                if done[t] == need[t]:
                    signal[t].succeed()
            else:
                if need[t]:                  # wait for the other parts, read them, then store
                    yield signal[t]
                    yield from over(l2_port, need[t] * partial_bytes / arch.l2_bytes_per_clk)
                yield from store(tr, tc)
            i += k1 - k0

    nxt_cta = [0]

    def slot(sm: int) -> _ProcessBody:
        while nxt_cta[0] < ctas:
            cid = nxt_cta[0]
            nxt_cta[0] += 1
            yield from cta(cid, sm)

    if stream_k:
        P = arch.sms * per_sm
        iters = ctas * nk
        bounds = [q * iters // P for q in range(P + 1)]
        need = {t: 0 for t in range(ctas)}              # parts of each tile that start past its first K step
        for q in range(P):
            i = bounds[q]
            while i < bounds[q + 1]:
                t, k0 = divmod(i, nk)
                if k0 > 0:
                    need[t] += 1
                i = (t + 1) * nk
        done = {t: 0 for t in range(ctas)}
        signal = {t: env.event() for t in range(ctas)}
        for q in range(P):       # CTA q on SM q mod SMs: the first wave's round robin
            env.process(persistent(q, q % arch.sms, bounds[q], bounds[q + 1]))
    else:
        for _ in range(per_sm):
            for sm in range(arch.sms):
                env.process(slot(sm))
    env.run()
    return EventTiming(int(math.ceil(max(env.now, stats["end"]))), ctas, per_sm, stats["rd"], stats["wr"],
                       int(stats["hit"]), int(stats["miss"]))


def gemm_events(M: int, N: int, K: int, arch: GPUArch, precision: str = "fp16", count: int = 1,
                tile: tuple[int, int] = (128, 128), acc_bytes: int = 4,
                out_bytes: float | None = None,
                a_unique_bytes: float | None = None, split_k: int = 1, stream_k: bool = False,
                serial: bool = False) -> int:
    """Cycles of the GEMM kernel with this tile and K split (a parallel split's reduction
    kernel and its launch included; ``serial``: reduced in the kernel), or as stream-K."""
    return gemm_detail(M, N, K, arch, precision, count, tile, acc_bytes, out_bytes,
                       a_unique_bytes, split_k, stream_k, serial).cycles


def gemm_detail(M: int, N: int, K: int, arch: GPUArch, precision: str = "fp16", count: int = 1,
                tile: tuple[int, int] = (128, 128), acc_bytes: int = 4,
                out_bytes: float | None = None,
                a_unique_bytes: float | None = None, split_k: int = 1, stream_k: bool = False,
                serial: bool = False) -> EventTiming:
    """:func:`gemm_events` with its traffic and L2 counts."""
    if split_k <= 1:
        return gemm_run(M, N, K, arch, precision, count, tile, acc_bytes, out_bytes, a_unique_bytes,
                        stream_k)
    ks = -(-K // split_k)
    if serial:
        return gemm_run(M, N, ks, arch, precision, count * split_k, tile, acc_bytes, out_bytes,
                        None if a_unique_bytes is None else a_unique_bytes * ks / K, serial_slices=split_k)
    t = gemm_run(M, N, ks, arch, precision, count * split_k, tile, acc_bytes, acc_bytes,
                 None if a_unique_bytes is None else a_unique_bytes * ks / K)
    out_b = PRECISION_BYTES[precision] if out_bytes is None else out_bytes
    partial = M * N * count * split_k * acc_bytes
    final = M * N * count * out_b
    # the reduction kernel: its launch, then the partials in and the output out over HBM
    reduce = arch.launch_us * arch.clock_mhz + (partial + final) / arch.dram_bytes_per_clk \
        + arch.dram_latency_cycles
    return EventTiming(int(math.ceil(t.cycles + reduce)), t.ctas, t.ctas_per_sm, t.dram_read_bytes + partial,
                       t.dram_write_bytes + final, t.l2_hits, t.l2_misses)

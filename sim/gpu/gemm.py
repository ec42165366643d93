"""GEMM time on a tensor-core GPU, in cycles, at the level that decides it on real parts.

1. **Tiles.** The GEMM is cut into CTA (thread-block) tiles ``BM x BN`` from a CUTLASS-like
   list, each run by the kernel CUTLASS would instantiate for it on the card
   (``sim.gpu.kernel``: its K step ``BK``, 64 bytes per row up to Ampere and 128 on Hopper,
   its stages and threads). As cuBLAS's heuristics/autotuning do, the fastest valid tile is
   chosen (or one is forced).
2. **Occupancy.** A CTA needs ``stages x (BM + BN) x BK`` bytes of shared memory (the
   software pipeline; a Hopper kernel takes all the SM has) and registers for its ``BM x BN``
   accumulators; CTAs per SM are limited by shared memory, registers, threads and the CTA cap.
3. **Waves.** CTAs (``count`` batched GEMMs x tile grid, rasterised row by row) are
   scheduled onto ``SMs x CTAs/SM`` slots in waves; the last wave may be partial (wave
   quantisation: the time-vs-N sawtooth).
4. **Software pipeline per CTA.** ``stages - 1`` K tiles are fetched before the first MMA,
   which waits a DRAM latency for the first; then each K step costs the slowest of the
   following, and the pipeline's fill or drain one step of the faster: the resident
   CTAs' main loop on one SM, stepped cycle by cycle (``sim.gpu.sm``: warp schedulers,
   tensor pipes at the datasheet rate with measured latencies, the shared-memory port,
   barriers and the stages' copy latency), the wave's L2->SM traffic at the chip's L2
   bandwidth, and its DRAM traffic at DRAM bandwidth. The epilogue writes the output tile
   in its precision. Clocks below the nominal one are the power manager's (``sim.gpu.dvfs``).
5. **DRAM vs L2.** Every CTA reads its A and B panels through L2. If A and B fit in half
   the L2, DRAM sees each byte once; otherwise each wave fetches the panels its CTAs touch.
6. **Split-K** (a grid that leaves SMs idle): the K loop of each output tile is cut into S
   slices run by S CTAs, reduced either by a second kernel (CUTLASS's parallel split-K) or
   in turn inside the one kernel (serial split-K: each slice waits on a semaphore for the
   previous slice's sum of the tile, reads it through L2, adds and writes it back); or the
   K steps of all tiles are spread over one wave of CTAs (stream-K). The cheapest is taken.
7. **Structured sparsity.** A B operand (the weight) pruned N:M on a card with sparse
   tensor cores for it runs the MMAs M/N times as fast (2:4: twice, NVIDIA A100 whitepaper)
   and moves its N/M kept values plus a ceil(log2 M)-bit position per kept value (2:4: a
   2-bit index each, cuSPARSELt's compressed layout) through DRAM, L2 and shared memory.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workloads.errors import HwsimError

from .. import budget
from .precision import PRECISION_BYTES
from .kernel import k_step, kernel, multicast
from .sm.mainloop import main_loop

if TYPE_CHECKING:
    from .arch import GPUArch

__all__ = [
    "TILES", "L2_OPERAND_SHARE", "EPILOGUE_LATENCY_SHARE", "GemmTiming", "sparse_factors", "SPLITS",
    "reduction_cycles", "HANDOFF_L2_TRIPS", "handoff_cycles", "SECONDS_PER_WAVE", "gemm_time",
]

TILES = ((256, 128), (128, 256), (128, 128), (256, 64), (64, 256), (128, 64), (64, 128), (64, 64),
         (64, 32), (32, 64), (32, 32))
# The model's constants; each one's value and source is in sim/gpu/constants.py (a test
# holds the two equal).
L2_OPERAND_SHARE = 0.5          # share of L2 that A and B may fill and still be read from DRAM once
EPILOGUE_LATENCY_SHARE = 0.5    # share of the DRAM latency an epilogue's stores expose


@dataclass(frozen=True)
class GemmTiming:
    cycles: int
    tile: tuple[int, int, int]
    ctas: int
    ctas_per_sm: int
    waves: int
    dram_bytes: float          # all DRAM traffic: A and B reads plus the output writes
    l2_bytes: float            # L2 -> SM reads of A and B panels
    compute_cycles: float      # the MMA term alone, summed over waves
    memory_cycles: float       # the larger of the L2 and DRAM terms alone
    bound: str                 # compute | memory | latency
    dram_a_bytes: float = 0.0  # of dram_bytes: A reads
    dram_b_bytes: float = 0.0  # B reads
    l2_a_bytes: float = 0.0    # of l2_bytes: A panels
    l2_b_bytes: float = 0.0
    split_k: int = 1           # K split over this many CTAs per output tile (1: none)
    dram_out_write_bytes: float = 0.0   # of dram_bytes: outputs (and split-K partial sums) written
    dram_out_read_bytes: float = 0.0    # split-K partial sums read back by the reduction
    stream_k: bool = False     # the MAC-loop iterations spread evenly over one wave of persistent CTAs
    serial: bool = False       # split-K slices reduce in turn inside the one kernel (no reduction kernel)
    l2_out_bytes: float = 0.0  # split-K partial tiles written to and read back from L2 (serial)
    # A and B bytes written to shared memory, where a cluster's multicast writes more than it
    # reads from L2 (None: what came through L2)
    smem_a_bytes: float | None = None
    smem_b_bytes: float | None = None

    def tflops(self, macs: int, clock_mhz: float) -> float:
        return 2 * macs / (self.cycles / (clock_mhz * 1e6)) / 1e12 if self.cycles else 0.0


def sparse_factors(structure: tuple[int, int] | None, precision: str) -> tuple[float, float]:
    """(MMA rate multiplier, B bytes per dense B byte) of an N:M-pruned B operand."""
    if structure is None:
        return 1.0, 1.0
    n, m = structure
    meta_bits = math.ceil(math.log2(m))
    return m / n, n / m * (1 + meta_bits / (8 * PRECISION_BYTES[precision]))


def _tile_time(M: int, N: int, K: int, count: int, arch: GPUArch, precision: str, BM: int, BN: int,
               acc_bytes: int, out_bytes: float, a_unique: float, b_unique: float,
               b_structure: tuple[int, int] | None = None, out_elem: float | None = None) -> GemmTiming | None:
    """One tile shape's data-parallel kernel; ``out_bytes`` the output bytes per element this
    kernel writes to DRAM (a serial split's share), ``out_elem`` the output element's size the
    kernel's epilogue stages (default: ``out_bytes``)."""
    in_b = PRECISION_BYTES[precision]
    rate_x, b_frac = sparse_factors(b_structure, precision)
    kern = kernel(arch, BM, BN, precision, acc_bytes, b_frac, out_bytes if out_elem is None else out_elem)
    BK, stages = kern.BK, kern.stages
    per_sm = kern.ctas_per_sm(arch)
    if per_sm < 1:
        return None
    tm, tn = math.ceil(M / BM), math.ceil(N / BN)
    ctas = tm * tn * count
    slots = arch.sms * per_sm
    waves = math.ceil(ctas / slots)
    nk = math.ceil(K / BK)
    a_f, b_f = multicast(arch, BM, BN, tm, tn, b_frac)       # a cluster's shared operand is read once
    cta_iter_bytes = (BM * a_f + BN * b_frac * b_f) * BK * in_b
    fits_l2 = (a_unique + b_unique) <= arch.l2_mib * 2 ** 20 * L2_OPERAND_SHARE
    dram_bw = arch.dram_bytes_per_clk
    total = comp = mem = 0.0
    dram_a = dram_b = l2_a = l2_b = 0.0
    fixed_total = 0.0
    mma_dominant = 0.0
    # Little's law: a CTA keeps stages - 1 loads in flight, each waits the DRAM latency
    lat_iter = arch.dram_latency_cycles / max(stages - 1, 1)
    prev_epilogue = None
    step_cycles: dict[int, float] = {}
    for w in range(waves):
        first = w * slots
        n = min(slots, ctas - first)
        resident = min(per_sm, math.ceil(n / arch.sms))
        # panels this wave touches (row-major raster over the batch of tile grids)
        last = first + n - 1
        rows = last // tn - first // tn + 1
        # n consecutive CTAs of a row-major raster touch min(tn, n) columns of one grid; a wave
        # that spans several grids (copies, or split-K slices, each with its own B) touches
        # the columns of each
        grid = tm * tn
        c0, c1 = first // grid, last // grid
        cols = min(tn, n) if c0 == c1 else \
            min(tn, (c0 + 1) * grid - first) + (c1 - c0 - 1) * tn + min(tn, last - c1 * grid + 1)
        if fits_l2:
            wave_dram = None
        else:
            wave_dram = (rows * min(BM, M) + cols * min(BN, N) * b_frac) * K * in_b
            dram_a += rows * min(BM, M) * K * in_b
            dram_b += cols * min(BN, N) * K * in_b * b_frac
        l2_iter = n * cta_iter_bytes / arch.l2_bytes_per_clk
        dram_iter = (wave_dram / nk / dram_bw) if wave_dram is not None else 0.0
        if resident not in step_cycles:      # the stepped main loop, once per residency (not per wave)
            step_cycles[resident] = main_loop(arch, BM, BN, BK, precision, resident, stages).cycles_per_kstep / rate_x
        c_iter = step_cycles[resident]
        t_iter = max(c_iter, l2_iter, dram_iter, lat_iter)
        out_bytes_wave = n * BM * BN * out_bytes
        # Loads stream at one per max(l2_iter, dram_iter), K steps compute at c_iter each after
        # their loads: after a DRAM latency, the last step ends at max(m + nk c, nk m + c),
        # i.e. nk x max(c, m) plus min(c, m): the first transfer when compute-bound, the last
        # step's MMAs when memory-bound (the other stages' loads arrive under the main loop)
        prologue = arch.dram_latency_cycles + min(c_iter, max(l2_iter, dram_iter))
        epilogue = arch.dram_latency_cycles * EPILOGUE_LATENCY_SHARE + out_bytes_wave / dram_bw
        # the next wave's prologue overlaps this wave's epilogue (CTAs start as slots free)
        boundary = prologue if prev_epilogue is None else max(prologue, prev_epilogue)
        total += boundary + nk * t_iter
        prev_epilogue = epilogue
        comp += nk * c_iter
        mem += nk * max(l2_iter, dram_iter, lat_iter)
        fixed_total += boundary
        mma_dominant += nk * t_iter if c_iter >= max(l2_iter, dram_iter, lat_iter) else 0.0
        l2_a += n * nk * BM * BK * in_b * a_f
        l2_b += n * nk * BN * BK * in_b * b_frac * b_f
    total += prev_epilogue or 0.0
    fixed_total += prev_epilogue or 0.0
    if fits_l2:
        dram_a, dram_b = a_unique, b_unique
        # compulsory traffic must also fit through DRAM over the whole kernel
        total = max(total, (dram_a + dram_b) / dram_bw + arch.dram_latency_cycles)
    dram_total = dram_a + dram_b + M * N * count * out_bytes
    cycles = int(math.ceil(total))
    if fixed_total > total / 2:
        bound = "latency"
    elif mma_dominant >= (total - fixed_total) / 2 and comp >= mem:
        bound = "compute"
    else:
        bound = "memory"
    return GemmTiming(cycles, (BM, BN, BK), ctas, per_sm, waves, dram_total, l2_a + l2_b, comp, mem, bound,
                      dram_a, dram_b, l2_a, l2_b, dram_out_write_bytes=M * N * count * out_bytes,
                      smem_a_bytes=l2_a / a_f, smem_b_bytes=l2_b / b_f)


# Split-K (CUTLASS's "parallel split-K", which cuBLAS also picks for thin GEMMs): the K
# loop of each output tile is cut into S slices run by S CTAs, each writing an fp32 (acc)
# partial tile; a second kernel reads the S partials and writes the output. The model
# searches these S (a modelling choice, powers of two) with every tile shape and keeps the
# fastest, ties to the smaller S.
SPLITS = (1, 2, 4, 8, 16, 32)


def reduction_cycles(partial_bytes: float, final_bytes: float, arch: GPUArch) -> float:
    """The split-K reduction kernel: read the partial tiles, write the output (DRAM-bound),
    one DRAM latency, and its own launch (a second kernel)."""
    return (partial_bytes + final_bytes) / arch.dram_bytes_per_clk + arch.dram_latency_cycles \
        + arch.launch_us * arch.clock_mhz


# Serial split-K (CUTLASS include/cutlass/gemm/kernel/gemm.h with SplitKSerial, and
# GemmUniversal's kGemm mode with split_k_slices > 1; semaphore.h): after its main loop the
# CTA of slice k spins on the tile's semaphore (ld.global.acquire) until it reads k, reads
# the tile the earlier slices summed (the output tensor D, in the output's type), adds its
# accumulators, stores D and releases the semaphore to k + 1 (st.global.release, which
# orders the stores before it). One hand-off between consecutive slices thus waits three
# L2 round trips (the release seen by the spinning acquire, the tile's load, the stores
# ordered before the release) and moves the tile twice through L2.
HANDOFF_L2_TRIPS = 3


def handoff_cycles(tile_bytes: float, arch: GPUArch) -> float:
    """One serial split-K hand-off: its L2 round trips, and the tile read and written by one
    CTA at its SM's even share of the chip's L2 bandwidth."""
    return HANDOFF_L2_TRIPS * arch.l2_latency_cycles + 2 * tile_bytes * arch.sms / arch.l2_bytes_per_clk


def _serial(M: int, N: int, K: int, count: int, arch: GPUArch, precision: str, BM: int, BN: int, S: int,
            acc_bytes: int, out_bytes: float, a_u: float, b_u: float,
            b_structure: tuple[int, int] | None = None) -> GemmTiming | None:
    """One tile shape with the K loop split ``S`` ways, reduced serially in the kernel.

    CUTLASS launches the slices as the grid's outermost dimension, so a wave holds slices
    ``first // T .. last // T`` of the ``T`` tiles; within a wave the slices of a tile hand
    off in turn at its end (a slice whose predecessor ran in an earlier wave waits for
    nothing but still reads the tile). The output reaches DRAM once: the partial tiles stay
    in the (write-back) L2."""
    Ks = -(-K // S)
    if Ks < k_step(arch, precision) or -(-K // Ks) < S:
        return None
    t = _tile_time(M, N, Ks, count * S, arch, precision, BM, BN, acc_bytes, out_bytes / S, a_u, b_u,
                   b_structure, out_elem=out_bytes)
    if t is None:
        return None
    T = -(-M // BM) * -(-N // BN) * count
    slots = arch.sms * t.ctas_per_sm
    ctas = T * S
    tile_bytes = M * N * count * out_bytes / T      # the epilogue moves a tile's in-bounds elements only
    chain = 0.0
    for w in range(t.waves):
        first, last = w * slots, min(ctas, (w + 1) * slots) - 1
        s0, s1 = first // T, last // T
        handoffs = s1 - s0 + (1 if s0 else 0)      # slices present, less the first unless it waits
        chain += handoffs * handoff_cycles(tile_bytes, arch)
    l2_out = 2 * (S - 1) * M * N * count * out_bytes
    return dataclasses.replace(t, cycles=int(math.ceil(t.cycles + chain)), split_k=S, serial=True,
                               l2_out_bytes=l2_out)


def _split(M: int, N: int, K: int, count: int, arch: GPUArch, precision: str, BM: int, BN: int, S: int,
           acc_bytes: int, out_bytes: float, a_u: float, b_u: float,
           b_structure: tuple[int, int] | None = None) -> GemmTiming | None:
    """One tile shape with the K loop split ``S`` ways, plus the reduction kernel."""
    if S == 1:
        return _tile_time(M, N, K, count, arch, precision, BM, BN, acc_bytes, out_bytes, a_u, b_u,
                          b_structure)
    Ks = -(-K // S)
    if Ks < k_step(arch, precision) or -(-K // Ks) < S:     # a slice of at least one K step, and S of them
        return None
    t = _tile_time(M, N, Ks, count * S, arch, precision, BM, BN, acc_bytes, acc_bytes, a_u, b_u,
                   b_structure)
    if t is None:
        return None
    partial = M * N * count * S * acc_bytes
    final = M * N * count * out_bytes
    # t already counts the partial tiles' writes; the reduction reads them and writes the output
    return dataclasses.replace(t, cycles=int(math.ceil(t.cycles + reduction_cycles(partial, final, arch))),
                               dram_bytes=t.dram_bytes + partial + final, split_k=S,
                               dram_out_write_bytes=partial + final, dram_out_read_bytes=partial)


def _stream_k(M: int, N: int, K: int, count: int, arch: GPUArch, precision: str, BM: int, BN: int,
              acc_bytes: int, out_bytes: float, a_u: float, b_u: float,
              b_structure: tuple[int, int] | None = None, dp: GemmTiming | None = None) -> GemmTiming | None:
    """Stream-K (Osama, Merrill, Cecka, Garland, Owens, PPoPP 2023; CUTLASS's
    ``GemmUniversalMode::kStreamK``): one wave of ``SMs x CTAs/SM`` persistent CTAs, each
    running an equal share of all tiles' K-step iterations in order, across tile
    boundaries. A tile cut between CTAs is finished by the CTA that runs its first K step,
    last in its range, so the others' accumulator partials (written to and read from an
    L2-resident workspace) are ready by then: no wave tail, one fix-up per cut tile.
    ``dp``: the same tile's data-parallel timing, when already computed."""
    if dp is None:
        dp = _tile_time(M, N, K, count, arch, precision, BM, BN, acc_bytes, out_bytes, a_u, b_u,
                        b_structure)
    if dp is None:
        return None
    in_b = PRECISION_BYTES[precision]
    rate_x, b_frac = sparse_factors(b_structure, precision)
    kern = kernel(arch, BM, BN, precision, acc_bytes, b_frac, out_bytes)
    BK = kern.BK
    per_sm = dp.ctas_per_sm
    P = arch.sms * per_sm
    tiles = -(-M // BM) * -(-N // BN) * count
    nk = math.ceil(K / BK)
    iters = tiles * nk
    if tiles < 2 or iters < P:
        return None                       # fewer iterations than CTAs: nothing to spread
    per = -(-iters // P)                  # iterations of the busiest CTA
    cuts = sum(1 for q in range(1, P) if (q * iters // P) % nk)      # tiles cut between two CTAs
    c_iter = main_loop(arch, BM, BN, BK, precision, per_sm, kern.stages).cycles_per_kstep / rate_x
    l2_iter = P * (BM + BN * b_frac) * BK * in_b / arch.l2_bytes_per_clk
    lat_iter = arch.dram_latency_cycles / max(kern.stages - 1, 1)
    partial = BM * BN * acc_bytes
    l2_in = iters * (BM + BN * b_frac) * BK * in_b
    # The CTAs walk different tiles at unrelated K steps, so whether they reuse each other's
    # panels depends on the L2's replacement; the model takes stream-K only where A and B
    # fit the L2 share and DRAM sees each byte once (the event model shows the rest).
    if a_u + b_u > arch.l2_mib * 2 ** 20 * L2_OPERAND_SHARE:
        return None
    dram_in = a_u + b_u
    a_share = a_u / (a_u + b_u)
    main = max(per * c_iter, per * lat_iter, (l2_in + 2 * cuts * partial) / arch.l2_bytes_per_clk,
               dram_in / arch.dram_bytes_per_clk)
    segments = -(-per // nk) + 1                          # tiles a CTA's range touches, at most
    prologue = float(arch.dram_latency_cycles)          # the first loads' transfers are in main's L2 term
    fixup = float(arch.l2_latency_cycles) if cuts else 0.0     # an owner waits on its peers' flags (in L2) once
    out_total = M * N * count * out_bytes
    epilogue = arch.dram_latency_cycles * EPILOGUE_LATENCY_SHARE * segments \
        + min(out_total, P * BM * BN * out_bytes) / arch.dram_bytes_per_clk
    total = prologue + main + fixup + epilogue
    cycles = int(math.ceil(total))
    fixed = prologue + fixup + epilogue
    comp = per * c_iter
    mem = per * max(l2_iter, lat_iter)
    bound = "latency" if fixed > total / 2 else "compute" if comp >= mem and c_iter >= max(l2_iter, lat_iter) \
        else "memory"
    l2_a = iters * BM * BK * in_b
    return GemmTiming(cycles, (BM, BN, BK), P, per_sm, 1, dram_in + out_total, l2_in + 2 * cuts * partial, comp,
                      mem, bound, dram_in * a_share, dram_in * (1 - a_share), l2_a, l2_in - l2_a,
                      dram_out_write_bytes=out_total, stream_k=True)


# For refusing a request before it runs (sim.budget): 2.9 us per wave and tile shape,
# measured on this project's 2-core machine (perf_counter over _tile_time, M = 10^7,
# N = K = 4096 on a100, 11,575 to 37,038 waves per shape), rounded up.
SECONDS_PER_WAVE = 3e-6


@functools.lru_cache(maxsize=65536)
def gemm_time(M: int, N: int, K: int, arch: GPUArch, precision: str = "fp16", count: int = 1,
              acc_bytes: int = 4, out_bytes: float | None = None, a_unique_bytes: float | None = None,
              tile: tuple[int, int] | None = None,
              split_k: int | None = None, b_structure: tuple[int, int] | None = None,
              serial: bool | None = None) -> GemmTiming:
    """Cycles of ``count`` GEMMs ``C[M,N] = A[M,K] B[K,N]`` on the tensor cores.

    ``acc_bytes``: accumulator width (4: fp32 accumulate). ``out_bytes``: output element
    size (default: the input precision). ``a_unique_bytes``: distinct bytes of A (an
    implicit-GEMM convolution reads its input tensor, smaller than the im2col matrix).
    ``split_k``: force a K split (default: the fastest of :data:`SPLITS`, or stream-K, see
    :func:`_stream_k`; 0 forces stream-K). ``serial``: force how a K split reduces (True:
    in the kernel, :func:`_serial`; False: a second kernel; default: the faster).
    ``b_structure``: (N, M) when B is pruned N:M and runs on sparse tensor cores (item 7 above).
    """
    for name, v in (("M", M), ("N", N), ("K", K), ("count", count)):
        if not isinstance(v, int) or v < 1:
            raise HwsimError(f"GEMM {name} must be a positive integer, got {v!r}")
    arch.check_precision(precision)
    in_b = PRECISION_BYTES[precision]
    out_b = in_b if out_bytes is None else out_bytes
    a_u = (a_unique_bytes if a_unique_bytes is not None else M * K * in_b) * count
    b_u = K * N * in_b * count * sparse_factors(b_structure, precision)[1]
    candidates = [tile] if tile else TILES
    if split_k is not None:
        splits: tuple[int, ...] = (split_k,) if split_k else ()
    else:   # split only a grid that leaves SMs idle, up to the split that fills them all once
        small = min(-(-M // BM) * -(-N // BN) for BM, BN in candidates) * count
        splits = tuple(S for S in SPLITS if S == 1 or (small < arch.sms and small * S // 2 < arch.sms))
    modes = {None: (False, True), True: (True,), False: (False,)}[serial]
    # each split timed once per reduction mode; stream-K times the tiled kernel too
    waves = sum(-(-(-(-M // BM) * -(-N // BN) * count * S) // arch.sms) * (len(modes) if S > 1 else 1)
                for BM, BN in candidates for S in splits + ((1,) if not split_k else ()))
    budget.need(f"a {M}x{N}x{K} GEMM{f' x {count}' if count > 1 else ''} on {arch.name} ({waves:,} waves over "
                f"{len(candidates)} tile shapes and {len(splits)} K splits)", seconds=waves * SECONDS_PER_WAVE)
    best = None
    tiled: dict[tuple[int, int], GemmTiming | None] = {}     # the data-parallel kernel per tile
    for S in splits:
        for BM, BN in candidates:
            for ser in modes if S > 1 else (False,):
                args = (M, N, K, count, arch, precision, BM, BN, S, acc_bytes, out_b, a_u, b_u,
                        b_structure)
                t = _serial(*args) if ser else _split(*args)
                if S == 1:
                    tiled[BM, BN] = t
                if t is not None and (best is None or t.cycles < best.cycles):
                    best = t
    if (split_k is None and serial is None) or split_k == 0:   # stream-K only where it is strictly faster
        for BM, BN in candidates:
            if (BM, BN) in tiled and tiled[BM, BN] is None:
                continue                  # the tile does not fit an SM
            t = _stream_k(M, N, K, count, arch, precision, BM, BN, acc_bytes, out_b, a_u, b_u,
                          b_structure, tiled.get((BM, BN)))
            if t is not None and (best is None or t.cycles < best.cycles):
                best = t
    if best is None and split_k == 0:
        raise HwsimError(f"stream-K does not apply to a {M}x{N}x{K} GEMM on {arch.name}: it needs more K steps than "
                         f"one wave of CTAs and A and B within half the L2")
    if best is None:
        raise HwsimError(f"no CTA tile fits {arch.name}'s shared memory/registers for {precision}"
                         + (f" with tile {tile}" if tile else ""))
    return best

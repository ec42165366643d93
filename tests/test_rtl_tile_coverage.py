"""The TPU tile's functional-coverage counters (rtl.tpu_tile.POINTS) against counts derived
without the RTL: the schedule-independent points from the GEMM's shape and operands alone
(folds that accumulate, partial K / column tiles, short streams, accumulator overflows), the
schedule-dependent ones from sim.systolic.timing's Schedule (the fold starts) and the
channel's rules replayed over them (stalls, late and back-to-back starts, a full weight FIFO,
shift-in under a stream, the channel idle under a stream, stores that wait). Random trials
and one small conv layer hit every point but the accumulator overflow, which needs narrow
accumulators (hit here at 16 bits). The compiled backends read the same counters (skip
without g++ and verilator)."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from rtl.tile_sim import gemm_program, run, tiles
from rtl.tpu_tile import POINTS
from sim.systolic.timing import durations

from test_rtl_tile import _arch, _case, compiled   # noqa: E402  (tests/ is on the path: pytest's rootdir import)


def _t_max(arch) -> int:
    """Accumulator rows per column: the chunk length, as sim.systolic.mapping cuts it."""
    return max(1, int(arch.ofmap_sram_kib * 1024 / 2 // (arch.cols * arch.acc_bits / 8)))


def _fold_tiles(arch, M, K, N, n=None):
    """(x tile, chunk, K tile) of each of the first ``n`` folds, mapping's order (x tiles
    outer, chunks, K tiles inner), as (T, kt, xt, row slice, K slice, column slice, ki)."""
    R, C = arch.rows, arch.cols
    tt, kt, xt = tiles(M, _t_max(arch)), tiles(K, R), tiles(N, C)
    out = []
    for xi, x in enumerate(xt):
        for ti, t in enumerate(tt):
            r0 = sum(tt[:ti])
            for ki, k in enumerate(kt):
                out.append((t, k, x, slice(r0, r0 + t), slice(ki * R, ki * R + k), slice(xi * C, xi * C + x), ki))
    return out[:n]


def shape_counts(arch, M, K, N, n=None) -> dict[str, int]:
    """The points that do not depend on the schedule, from the GEMM's shape alone."""
    ft = _fold_tiles(arch, M, K, N, n)
    return {"accumulate": sum(ki > 0 for *_, ki in ft), "partial_k": sum(k < arch.rows for _, k, *_ in ft),
            "partial_n": sum(x < arch.cols for _, _, x, *_ in ft), "short_stream": sum(t < arch.rows for t, *_ in ft)}


def overflow_count(A, B, arch, n=None) -> int:
    """Accumulator writes whose add wraps: each fold adds its partial sum (wrapped to
    acc_bits, as the column's adders leave it) to what the earlier K folds left (wrapped)."""
    ab = arch.acc_bits
    half = 1 << (ab - 1)

    def wrap(x):
        return ((x + half) & ((half << 1) - 1)) - half

    n_ovf = 0
    for _, _, _, rows, ks, cols, _ in _fold_tiles(arch, A.shape[0], A.shape[1], B.shape[1], n):
        prev = wrap(A[rows, :ks.start] @ B[:ks.start, cols])
        ps = wrap(A[rows, ks] @ B[ks, cols])
        tot = prev + ps
        n_ovf += int(((tot < -half) | (tot >= half)).sum())
    return n_ovf


def schedule_counts(f, s, arch) -> dict[str, int]:
    """The schedule-dependent points from sim's starts (``s.start``) and the channel's rules
    (sim.systolic.timing's docstring) replayed over them: loads in fold order, requested at
    cycle 0 for the first prefetch_depth folds, else at the start of the fold that many
    before; stores requested at a fold's start + latency; one transfer at a time, in request
    order, loads first at a tie."""
    R, D, F = arch.rows, arch.prefetch_depth, f.count
    st, T = [int(x) for x in s.start], [int(x) for x in f.T]
    lat, dl, ds = f.latency, durations(f.load, arch.dram_bw_bytes_per_cycle), durations(f.store, arch.dram_bw_bytes_per_cycle)
    chan, store_wait = 0, 0
    stores: list[tuple[int, int]] = []          # pending (request cycle, cycles to move)
    moving: list[tuple[int, int]] = []          # the channel's transfers [from, to)
    take: list[int] = []                        # the cycle each load goes on the channel
    done: list[int] = []                        # the cycle it has arrived

    def move(t, d):
        moving.append((t, t + d))
        return t + d

    for c in range(F):
        req = 0 if c < D else st[c - D]
        while stores and stores[0][0] < req:
            e, d = heapq.heappop(stores)
            store_wait += max(chan, e) > e
            chan = move(max(chan, e), d)
        take.append(max(chan, req))
        chan = move(take[-1], int(dl[c]))
        done.append(chan)
        if ds[c]:
            heapq.heappush(stores, (st[c] + int(lat[c]), int(ds[c])))
    while stores:
        e, d = heapq.heappop(stores)
        store_wait += max(chan, e) > e
        chan = move(max(chan, e), d)
    ideal = [R] + [st[i - 1] + max(T[i - 1], R) for i in range(1, F)]
    overlap = 0
    for c in range(1, F):
        sh = max(done[c], st[c - 1])           # the tile shifts in once loaded and the fold before started
        overlap += max(0, min(sh + R, st[c - 1] + T[c - 1]) - max(sh, st[c - 1]))
    streaming = np.zeros(s.cycles + 1, dtype=bool)
    for c in range(F):
        streaming[st[c]:st[c] + T[c]] = True
    for a, b in moving:
        streaming[a:b] = False
    return {"weight_stall": int(s.stall_cycles),
            "late_start": sum(st[i] > ideal[i] for i in range(F)),
            "back_to_back": sum(st[i] == ideal[i] for i in range(1, F)),
            "fifo_full": sum(max(0, st[c - D] - take[c - 1] - 1) for c in range(D, F)),
            "shift_overlap": overlap, "channel_idle": int(streaming.sum()), "store_wait": store_wait}


def derived(A, B, f, s, arch) -> dict[str, int]:
    """Every point, without the RTL."""
    M, K = A.shape
    return {**shape_counts(arch, M, K, B.shape[1], f.count), "acc_overflow": overflow_count(A, B, arch, f.count),
            **schedule_counts(f, s, arch)}


CASES = [   # (R, C, bandwidth, prefetch depth, activations on chip, accumulator rows, accumulator bits, M, K, N, operands)
    (3, 2, 1.5, 2, False, 5, 32, 13, 7, 5, "random"),     # chunks, partial tiles, stores that wait
    (2, 3, 10.0, 4, False, 2, 32, 2, 11, 13, "random"),   # a full FIFO, back-to-back starts, short streams
    (4, 4, 7.0, 1, True, 64, 32, 20, 10, 7, "random"),    # one slot, weights only on the channel
    (2, 2, 4.0, 3, False, 6, 16, 9, 12, 3, "extremes"),   # 16-bit accumulators: their adds wrap
]


def _operands(kind, M, K, N, seed):
    rng = np.random.default_rng(seed)
    if kind == "extremes":
        return rng.choice([-128, 127], (M, K)), rng.choice([-128, 127], (K, N))
    return rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))


@pytest.mark.parametrize("R,C,bw,depth,on_chip,acc_rows,ab,M,K,N,kind", CASES)
def test_counters_equal_the_derived_counts(R, C, bw, depth, on_chip, acc_rows, ab, M, K, N, kind):
    arch = _arch(R, C, bw, depth, on_chip, acc_rows, acc_bits=ab)
    _, _, f, s = _case(arch, M, K, N)
    A, B = _operands(kind, M, K, N, R + C)
    r = run(gemm_program(A, B, arch, f), arch)
    assert r.finished and not r.error and r.failure is None
    assert list(r.coverage) == list(POINTS)
    want = derived(A, B, f, s, arch)
    assert r.coverage == want
    # every fold but the first starts on the pipeline's pace or late; the first waits for its load
    assert r.coverage["late_start"] + r.coverage["back_to_back"] == f.count and r.stalls == r.coverage["weight_stall"]
    # the shape alone: folds after a chunk's first K fold, partial tiles (the whole GEMM)
    nk, nx, nt = -(-K // R), -(-N // C), len(tiles(M, _t_max(arch)))
    assert r.coverage["accumulate"] == f.count - nx * nt == (nk - 1) * nx * nt
    assert r.coverage["partial_k"] == (nx * nt if K % R else 0)
    assert r.coverage["partial_n"] == (nt * nk if N % C else 0)
    if ab == 16:
        assert r.coverage["acc_overflow"] > 0


# the point that the random int8 trials and the conv layer cannot hit: with 32-bit
# accumulators a sum of int8 products (each at most 2^14 in magnitude) wraps only beyond
# 2^17 terms, and the trials' K is under 3 x the array's side (hit at 16 bits above)
UNREACHED = {"acc_overflow": "int8 products into 32-bit accumulators wrap only beyond 2^17 terms"}


def test_random_trials_and_a_conv_layer_hit_every_point():
    from rtl.layer import run_systolic_layer, small_arch
    from rtl.verify import verify

    hits = dict.fromkeys(POINTS, 0)
    for t in verify("tpu-tile", 6, (2, 3), "amaranth", 4):
        assert t.result.passed, t.result.first_mismatch
        for k, v in t.result.details["coverage"].items():
            hits[k] += v
    r = run_systolic_layer("conv:1,2,5,5,3,3,3,2,1", "conv", small_arch(2, 3), seed=1)
    assert r.passed and list(r.coverage) == list(POINTS)
    # the layer's schedule-independent points from its GEMM's shape (M, N, K) alone
    M, N, K = r.gemm
    want = shape_counts(small_arch(2, 3), M, K, N)
    assert {k: r.coverage[k] for k in want} == want and r.coverage["weight_stall"] == r.stalls_sim
    for k, v in r.coverage.items():
        hits[k] += v
    assert [k for k, v in hits.items() if v == 0] == list(UNREACHED)


def test_cover_statements_simulate_like_the_counters(monkeypatch):
    # with cover=True every point is also an Amaranth Cover (the simulator does not count
    # them): the tile runs the same, its counters unchanged; the Verilog holds one per point
    from amaranth.back import rtlil

    import rtl.tile_sim as ts
    from rtl.tpu_tile import TpuTile

    arch = _arch(3, 2, 1.5, 2, False, 5)
    A, B, f, s = _case(arch, 13, 7, 5)
    p = gemm_program(A, B, arch, f)
    plain = run(p, arch)
    monkeypatch.setattr(ts, "TpuTile", lambda *a, **k: TpuTile(*a, **{**k, "cover": True}))
    covered = run(p, arch)
    assert covered.coverage == plain.coverage and list(covered.starts) == list(s.start)
    text = rtlil.convert(TpuTile(arch, checks=False, cover=True))
    assert text.count('\\FLAVOR "cover"') == len(POINTS)


@compiled
@pytest.mark.parametrize("backend", ["cxxrtl", "verilator"])
def test_compiled_backends_count_the_same(backend):
    # the design of test_rtl_tile.py's compiled test (one build, shared in the cache)
    arch = _arch(3, 2, 1.5, 2, False, 5)
    A, B, f, s = _case(arch, 13, 7, 5)
    p = gemm_program(A, B, arch, f)
    r = run(p, arch, backend)
    assert r.coverage == derived(A, B, f, s, arch) == run(p, arch).coverage

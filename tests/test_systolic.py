"""Systolic arrays: register-level values and per-cycle traffic vs numpy and the fold
mapping, the cycle-stepping schedule vs the fast engine, hand-derived cases, TPU checks."""

import dataclasses
import functools
from pathlib import Path
import importlib
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sim.systolic import PRESETS, SystolicArch, folds, run_gemm, schedule, schedule_cycles, simulate
from sim.systolic.mapping import outer_tiles
from sim.systolic.timing import schedule_slices
from sim.systolic.mapping import full_outer_tiles, slice_runs
from workloads import HwsimError, resolve
from workloads.build import gemm_op, vector_op
from workloads.trace import Workload

dataflows = st.sampled_from(["ws", "os", "is"])


@functools.lru_cache(maxsize=32)
def cycle_stepped(M: int, N: int, K: int, arch: SystolicArch, bw: float, depth: int):
    """The cycle-stepping reference on all the folds of an M x N x K GEMM, once per arguments:
    Hypothesis often draws a GEMM again with only the slicing changed (the Schedule is read,
    never changed)."""
    return schedule_cycles(folds(M, N, K, arch), arch.rows, arch.cols, bw, depth)


@settings(max_examples=40, deadline=None)
@given(R=st.integers(1, 6), C=st.integers(1, 6), M=st.integers(1, 14), N=st.integers(1, 14), K=st.integers(1, 14),
       df=dataflows, seed=st.integers(0, 1000))
def test_register_model_equals_numpy_and_mapping(R, C, M, N, K, df, seed):
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, (M, K), dtype=np.int64)
    B = rng.integers(-128, 128, (K, N), dtype=np.int64)
    arch = SystolicArch(rows=R, cols=C, dataflow=df, ofmap_sram_kib=1024)
    run = run_gemm(A.astype(np.int8), B.astype(np.int8), arch)
    np.testing.assert_array_equal(run.output, A @ B)           # int8 x int8 -> int32, exact
    f = folds(M, N, K, arch, 8, 8, 32)
    assert [x.latency for x in run.folds] == f.latency.tolist()
    assert sum(x.macs for x in run.folds) == M * N * K
    # per-cycle traffic counted from the address trace equals the mapping's totals
    streamed = "ifmap_sram.input.reads" if df in ("ws", "os") else "filter_sram.weight.reads"
    assert run.streamed_reads == f.sram[streamed]
    writes = run.output_writes * 4  # 32-bit psums / results
    assert writes == f.sram["ofmap_sram.output.writes"]
    other = "filter_sram.weight.reads" if df in ("ws", "os") else "ifmap_sram.input.reads"
    assert run.other_reads == f.sram[other]          # the stationary tile (or os's B), per cycle


def test_trace_addresses_for_a_tiny_ws_fold():
    # 2x2 array, A 3x2, B 2x2: row 1 of the array reads column 1 of A one cycle after row 0
    run = run_gemm(np.arange(6).reshape(3, 2), np.ones((2, 2)), SystolicArch(rows=2, cols=2, dataflow="ws"))
    reads = run.folds[0].reads
    assert reads[:4].tolist() == [[0, -1], [2, 1], [4, 3], [-1, 5]]
    # outputs leave the bottom of column j at cycle m + R - 1 + j
    writes = run.folds[0].writes
    assert writes[1:5].tolist() == [[0, -1], [2, 1], [4, 3], [-1, 5]]


@settings(max_examples=40, deadline=None)
@given(R=st.integers(1, 8), C=st.integers(1, 8), M=st.integers(1, 40), N=st.integers(1, 40), K=st.integers(1, 40),
       df=dataflows, bw=st.sampled_from([0.3, 1.0, 2.5, 7.0, 1000.0]), depth=st.integers(1, 4),
       sram=st.sampled_from([0.05, 1.0, 64.0]), acc=st.sampled_from([0.05, 0.25, 64.0]),
       bits=st.sampled_from([4, 8, 16]), head=st.sampled_from([0, 0, 1, 3, 17, 200]))
def test_fast_engine_equals_cycle_stepping(R, C, M, N, K, df, bw, depth, sram, acc, bits, head):
    """...with or without a head start (the channel running ``head`` cycles before the array)."""
    arch = SystolicArch(rows=R, cols=C, dataflow=df, ifmap_sram_kib=sram, filter_sram_kib=sram,
                        ofmap_sram_kib=acc, dram_bw_bytes_per_cycle=bw, prefetch_depth=depth)
    f = folds(M, N, K, arch, a_bits=bits, w_bits=bits, out_bits=bits)   # 4 bits: half bytes
    fast, ref = schedule(f, R, C, bw, depth, head=head), schedule_cycles(f, R, C, bw, depth, head=head)
    assert (fast.cycles, fast.stall_cycles, fast.dram_busy_cycles) == (ref.cycles, ref.stall_cycles, ref.dram_busy_cycles)
    np.testing.assert_array_equal(fast.start, ref.start)
    # where the cycles go: the recurrence's per-fold sums equal the reference's cycle-by-cycle count
    assert (fast.active_cycles, fast.shift_cycles, fast.stream_end, fast.channel_end) == \
        (ref.active_cycles, ref.shift_cycles, ref.stream_end, ref.channel_end)
    assert fast.active_cycles == f.T.sum() and fast.wait_cycles >= 0 and fast.drain_cycles >= 0
    # moving the bytes takes at least bytes / bw cycles
    assert fast.dram_busy_cycles >= (f.load.sum() + f.store.sum()) / bw - 1e-9


@settings(max_examples=30, deadline=None)
@given(R=st.integers(1, 6), C=st.integers(1, 6), M=st.integers(1, 120), N=st.integers(1, 120), K=st.integers(1, 60),
       df=dataflows, bw=st.sampled_from([0.3, 1.0, 2.5, 7.0, 1000.0]), depth=st.integers(1, 4),
       sram=st.sampled_from([0.05, 1.0, 64.0]), acc=st.sampled_from([0.05, 0.25, 64.0]),
       cuts=st.lists(st.integers(1, 40), min_size=1, max_size=4), ifmap_on_chip=st.booleans())
def test_slices_of_outer_tiles_schedule_as_one_sequence(R, C, M, N, K, df, bw, depth, sram, acc, cuts,
                                                         ifmap_on_chip):
    """A GEMM scheduled a slice of outer tiles at a time (bounded memory) gives the cycles,
    stalls, compute and DRAM time of the cycle-stepping engine on all its folds at once, and
    the slices' folds and byte totals are the whole GEMM's."""
    arch = SystolicArch(rows=R, cols=C, dataflow=df, ifmap_sram_kib=sram, filter_sram_kib=sram,
                        ofmap_sram_kib=acc, dram_bw_bytes_per_cycle=bw, prefetch_depth=depth,
                        ifmap_on_chip=ifmap_on_chip)
    whole = folds(M, N, K, arch)
    n_outer, per = outer_tiles(M, N, K, arch)
    assert n_outer * per == whole.count
    bounds = sorted({0, n_outer, *(c % n_outer for c in cuts)})
    parts = [folds(M, N, K, arch, outer=(a, b)) for a, b in zip(bounds, bounds[1:])]
    for field in ("T", "rows_used", "cols_used", "load", "store", "latency", "interval"):
        np.testing.assert_array_equal(np.concatenate([getattr(p, field) for p in parts]), getattr(whole, field))
    for k, v in {**whole.sram, **whole.dram}.items():
        assert sum({**p.sram, **p.dram}.get(k, 0.0) for p in parts) == pytest.approx(v)
    head = cuts[0] % 7        # a head start, or none
    got = schedule_slices(iter(parts), bw, depth, head=head)
    ref = schedule_cycles(whole, R, C, bw, depth, head=head)
    assert (got.cycles, got.stall_cycles, got.compute_cycles, got.dram_busy_cycles) == \
        (ref.cycles, ref.stall_cycles, ref.compute_cycles, ref.dram_busy_cycles)
    assert (got.active_cycles, got.shift_cycles, got.stream_end) == (ref.active_cycles, ref.shift_cycles, ref.stream_end)


@settings(max_examples=30, deadline=None)
@given(R=st.integers(1, 5), C=st.integers(1, 5), M=st.integers(1, 90), N=st.integers(1, 90), K=st.integers(1, 40),
       df=dataflows, bw=st.sampled_from([0.3, 1.0, 2.5, 1000.0]), depth=st.integers(1, 4),
       sram=st.sampled_from([0.05, 1.0, 64.0]), acc=st.sampled_from([0.05, 0.25, 64.0]), step=st.integers(1, 5))
def test_runs_of_identical_slices_schedule_as_every_slice(R, C, M, N, K, df, bw, depth, sram, acc, step):
    """``slice_runs`` covers every outer tile once; each slice of a run of repeats has the
    same folds as the run's first; and scheduling the runs (later repeats added in one step)
    gives the cycle-stepping engine's cycles, stalls and DRAM time on all the folds."""
    arch = SystolicArch(rows=R, cols=C, dataflow=df, ifmap_sram_kib=sram, filter_sram_kib=sram,
                        ofmap_sram_kib=acc, dram_bw_bytes_per_cycle=bw, prefetch_depth=depth)
    n_outer, _ = outer_tiles(M, N, K, arch)
    runs = slice_runs(n_outer, step, full_outer_tiles(M, N, arch))
    covered = [t for a, b, k in runs for i in range(k) for t in range(a + i * (b - a), b + i * (b - a))]
    assert covered == list(range(n_outer))
    items = []
    for a, b, k in runs:
        f = folds(M, N, K, arch, outer=(a, b))
        for i in range(1, k):
            g = folds(M, N, K, arch, outer=(a + i * (b - a), b + i * (b - a)))
            for field in ("T", "rows_used", "cols_used", "load", "store", "latency", "interval"):
                np.testing.assert_array_equal(getattr(g, field), getattr(f, field))
        items.append((f, k))
    got = schedule_slices(iter(items), bw, depth)
    ref = cycle_stepped(M, N, K, arch, bw, depth)
    assert (got.cycles, got.stall_cycles, got.compute_cycles, got.dram_busy_cycles) == \
        (ref.cycles, ref.stall_cycles, ref.compute_cycles, ref.dram_busy_cycles)
    assert (got.active_cycles, got.shift_cycles, got.stream_end) == (ref.active_cycles, ref.shift_cycles, ref.stream_end)


def test_a_gpt3_sized_gemm_simulates_in_slices_as_a_whole(monkeypatch):
    """simulate_op slices a GEMM of more than SLICE_FOLDS folds; with a small limit, every
    dataflow's op result (cycles, stalls, folds, every access) equals the unsliced one."""
    S = importlib.import_module("sim.systolic.simulate")     # the module (the package exports a function of that name)

    for df in ("ws", "os", "is"):
        arch = dataclasses.replace(PRESETS["systolic-16"], dataflow=df)
        op = gemm_op("g", 300, 200, 150, bits=8, dtype="int")
        whole = S.simulate_op(op, arch)
        monkeypatch.setattr(S, "SLICE_FOLDS", 7)
        sliced = S.simulate_op(op, arch)
        monkeypatch.undo()
        assert (sliced.cycles, sliced.stall_cycles, sliced.extra.folds) == \
            (whole.cycles, whole.stall_cycles, whole.extra.folds)
        assert sliced.accesses == pytest.approx(whole.accesses)


@settings(max_examples=25, deadline=None)
@given(R=st.integers(1, 6), C=st.integers(1, 6), M=st.integers(1, 300), N=st.integers(1, 300), K=st.integers(1, 300),
       df=dataflows, bw=st.sampled_from([0.3, 1.0, 2.5, 7.0, 1000.0]), depth=st.integers(1, 4),
       sram=st.sampled_from([0.05, 1.0, 64.0]), acc=st.sampled_from([0.05, 0.25, 64.0]))
def test_periodic_jumps_equal_walking_every_fold(R, C, M, N, K, df, bw, depth, sram, acc):
    # long runs of repeating folds, where the fast engine adds whole periods at once
    arch = SystolicArch(rows=R, cols=C, dataflow=df, ifmap_sram_kib=sram, filter_sram_kib=sram,
                        ofmap_sram_kib=acc, dram_bw_bytes_per_cycle=bw, prefetch_depth=depth)
    f = folds(M, N, K, arch)
    a, b = schedule(f, R, C, bw, depth), schedule(f, R, C, bw, depth, jump=False)
    assert (a.cycles, a.stall_cycles, a.dram_busy_cycles, a.active_cycles, a.shift_cycles, a.stream_end) == \
        (b.cycles, b.stall_cycles, b.dram_busy_cycles, b.active_cycles, b.shift_cycles, b.stream_end)
    np.testing.assert_array_equal(a.start, b.start)


def test_periodic_jumps_equal_cycle_stepping_on_a_long_run():
    arch = SystolicArch(rows=4, cols=4, dataflow="ws", dram_bw_bytes_per_cycle=2.5, prefetch_depth=2,
                        ifmap_sram_kib=0.05, filter_sram_kib=0.05, ofmap_sram_kib=0.25)
    f = folds(200, 64, 96, arch)                     # 24 K folds x 16 N tiles x 7 chunks
    fast, ref = schedule(f, 4, 4, 2.5, 2), schedule_cycles(f, 4, 4, 2.5, 2)
    assert f.count > 2000
    assert (fast.cycles, fast.stall_cycles, fast.dram_busy_cycles) == (ref.cycles, ref.stall_cycles, ref.dram_busy_cycles)
    assert (fast.active_cycles, fast.shift_cycles, fast.stream_end) == \
        (ref.active_cycles, ref.shift_cycles, ref.stream_end)
    np.testing.assert_array_equal(fast.start, ref.start)


def test_hand_derived_ws_gemm():
    arch = SystolicArch(rows=4, cols=4, dataflow="ws", dram_bw_bytes_per_cycle=8.0)
    f = folds(10, 4, 4, arch)                        # one fold: B 4x4 stationary, 10 rows streamed
    assert f.count == 1 and f.load.tolist() == [16 + 40] and f.store.tolist() == [40]
    s = schedule(f, 4, 4, 8.0, 2)
    # 56 bytes at 8 B/cycle = 7 cycles; 4 cycles to shift the weights in; last output
    # 10 + 4 + 4 - 2 = 16 cycles after the stream starts; then 40 bytes out in 5 cycles
    assert (s.stall_cycles, s.start.tolist(), s.cycles) == (7, [11], 11 + 16 + 5)
    assert s.compute_cycles == 4 + 16
    # Table 3's split: 7 cycles waiting for DRAM, 4 shifting, 10 streaming, then the
    # pipeline's 4 + 4 - 2 = 6 cycles of drain and the 5-cycle store
    assert (s.wait_cycles, s.shift_cycles, s.active_cycles, s.drain_cycles) == (7, 4, 10, 6 + 5)


def test_hand_derived_shift_exposed_between_short_streams():
    # 4x4 array, B 8x4: two K folds of 3 streamed rows each, weights and input on chip
    # after the first load; the second tile shifts in under the first stream (3 cycles)
    # and is exposed for 4 - 3 = 1 cycle (interval max(T, R) = 4)
    arch = SystolicArch(rows=4, cols=4, dataflow="ws", dram_bw_bytes_per_cycle=1000.0, ifmap_on_chip=True,
                        filter_sram_kib=64)
    f = folds(3, 4, 8, arch)
    assert f.T.tolist() == [3, 3] and f.interval.tolist() == [4, 4]
    s = schedule(f, 4, 4, 1000.0, 2)
    # load 32 B in 1 cycle; first tile shifts 4 cycles; start 5, then 9
    assert s.start.tolist() == [5, 9]
    assert (s.wait_cycles, s.shift_cycles, s.active_cycles, s.stream_end) == (1, 4 + 1, 6, 12)


# tpu-v1 with each layer on its own: no host link, weights loaded when an op starts
LAYERWISE_TPU = dataclasses.replace(PRESETS["tpu-v1"], decoupled_weight_reads=False, host_link_bytes_per_cycle=0.0)


def test_tpu_v1_preset_and_rates():
    tpu = PRESETS["tpu-v1"]
    assert tpu.peak_tops == pytest.approx(92, rel=0.005)      # Jouppi et al. 2017, Table 2: 92 TOPS (8-bit)
    assert (tpu.rate(8, 8), tpu.rate(16, 8), tpu.rate(16, 16)) == (1.0, 0.5, 0.25)
    op8 = gemm_op("g", 4096, 1024, 1024, bits=8, dtype="int")
    op16 = gemm_op("g", 4096, 1024, 1024, bits=16, dtype="int")
    c8 = simulate(Workload("a", (op8,)), tpu).ops[0]
    c16 = simulate(Workload("b", (op16,)), tpu).ops[0]
    assert c8.extra.compute_cycles * 3.5 < c16.extra.compute_cycles <= c8.extra.compute_cycles * 4


def test_mlp0_is_weight_bandwidth_bound_on_tpu():
    tpu = LAYERWISE_TPU
    wl = resolve("mlp0")
    res = simulate(wl, tpu)
    weight_bytes = sum(op.operand("weight").nbytes for op in wl.ops if op.is_gemm)
    roofline = weight_bytes / tpu.dram_bw_bytes_per_cycle      # 20 MB at 34 GB/s
    assert roofline <= res.cycles <= 1.15 * roofline
    # by hand, per layer (5 x 2000 x 2000 int8, 64 tiles of 256 x 256): the weights stream
    # back to back at 34 GB/s / 700 MHz, then the last tile shifts (256), streams its 200 rows
    # and drains (256 + 256 - 2); its ReLU runs 200 x 2000 / 256 lanes = 1563 cycles
    PEs, bw = tpu.rows * tpu.cols, 34e9 / 700e6
    hand = 5 * (2000 * 2000 / bw + 256 + 200 + (256 + 256 - 2) + math.ceil(200 * 2000 / 256))     # 424,410
    assert res.cycles == pytest.approx(hand, rel=0.002)
    assert res.total()["utilization"] == pytest.approx(wl.macs / (PEs * res.cycles), rel=1e-9)
    assert res.total()["utilization"] == pytest.approx(5 * 200 * 2000 * 2000 / (PEs * hand), rel=0.002)   # 0.144
    # the same layers at batch 2000 reuse each weight 10x more and become compute-bound: a
    # 65,536 B tile loads in 1350 cycles, under the previous tile's 2000-row stream, so per
    # layer 64 x 2000 stream cycles, the first tile's load (1350) and shift (256), the last
    # drain (510), then the ReLU's 2000 x 2000 / 256 = 15,625 cycles
    big_wl = resolve("mlp0", batch=2000)
    big = simulate(big_wl, tpu)
    hand = 5 * (64 * 2000 + math.ceil(65536 / bw) + 256 + (256 + 256 - 2) + 2000 * 2000 // 256)      # 728,705
    assert big.cycles == pytest.approx(hand, rel=0.002)
    assert big.total()["utilization"] == pytest.approx(big_wl.macs / (PEs * big.cycles), rel=1e-9)
    assert big.total()["utilization"] == pytest.approx(5 * 2000 ** 3 / (PEs * hand), rel=0.002)      # 0.838


def test_dense_array_gains_nothing_from_zeros():
    tpu = PRESETS["systolic-32"]
    dense = gemm_op("g", 256, 256, 256, bits=8, dtype="int")
    sparse = gemm_op("g", 256, 256, 256, bits=8, dtype="int", weight_density=0.1, act_density=0.3)
    a, b = (simulate(Workload("w", (op,)), tpu).ops[0] for op in (dense, sparse))
    assert (a.cycles, a.accesses) == (b.cycles, b.accesses)


def test_bad_config_names_the_field(tmp_path):
    with pytest.raises(HwsimError, match="rows"):
        SystolicArch(rows=0)
    with pytest.raises(HwsimError, match="dataflow"):
        SystolicArch(dataflow="rs")
    with pytest.raises(HwsimError, match="dram_bw_bytes_per_cycle"):
        dataclasses.replace(PRESETS["tpu-v1"], dram_bw_bytes_per_cycle=-1)
    from sim.registry import resolve_arch
    y = tmp_path / "mine.yaml"
    y.write_text("base: systolic-32\nrows: 64\ndataflow: os\n")
    arch = resolve_arch(str(y))
    assert (arch.family, arch.rows, arch.cols, arch.dataflow, arch.name) == ("systolic", 64, 32, "os", "mine")
    y.write_text("base: systolic-32\nrowz: 64\n")
    with pytest.raises(HwsimError, match="unknown field 'rowz'"):
        resolve_arch(str(y))
    y.write_text("base: nope\n")
    with pytest.raises(HwsimError, match="base"):
        resolve_arch(str(y))


def test_tpu_ridge_point_matches_the_paper():
    # TPU paper: the ridge of the roofline is ~1350 MACs per weight byte (65,536 MACs / 48.6 B/cycle)
    tpu = PRESETS["tpu-v1"]
    assert tpu.pes / tpu.dram_bw_bytes_per_cycle == pytest.approx(1350, rel=0.01)


# ---- steps, vector ops, wide operands, the cycle engine on whole workloads ----------------------------
def _small(**kw):
    return SystolicArch(name="s4", rows=4, cols=4, dataflow="ws", dram_bw_bytes_per_cycle=8.0, **kw)


def test_recurrent_steps_keep_their_weights_on_chip():
    """A 2x4x4 int8 GEMM over 3 dependent steps on a 4x4 array, 8 B/cycle.
    Step 1: 16 weight + 8 input bytes in 3 cycles, 4 to shift the tile in, the last output
    2 + 4 + 4 - 2 = 8 cycles after the stream starts (cycle 15), 8 output bytes out by 16.
    Steps 2 and 3: the tile never left the array; 8 input bytes (1 cycle), 8 cycles, 1 to
    store: 10 each. Without room for the weights every step is a first step."""
    op = gemm_op("hh", 2, 4, 4, bits=8, dtype="int", steps=3)
    r = simulate(Workload("rnn", (op,)), _small()).ops[0]
    assert r.cycles == 16 + 10 + 10
    assert (r.accesses["dram.weight.reads"], r.accesses["dram.input.reads"]) == (16, 3 * 8)
    assert r.extra.resident_steps == 2
    tight = simulate(Workload("rnn", (op,)), _small(filter_sram_kib=0.01)).ops[0]   # 10 bytes: no room
    assert tight.cycles == 3 * 16 and tight.accesses["dram.weight.reads"] == 3 * 16
    assert tight.extra.resident_steps == 0
    # independent copies of different matrices gain nothing: each fetches its own weights
    cop = simulate(Workload("c", (gemm_op("c", 2, 4, 4, bits=8, dtype="int", copies=3),)), _small()).ops[0]
    assert cop.cycles == 3 * 16 and cop.accesses["dram.weight.reads"] == 3 * 16


def test_vector_ops_run_on_the_lanes_step_by_step():
    arch = dataclasses.replace(PRESETS["systolic-32"], ifmap_on_chip=True)   # 32 lanes (one per column)
    op = vector_op("v", "activation", "sigmoid", 1000, ops_per_element=3)
    assert simulate(Workload("v", (op,)), arch).ops[0].cycles == math.ceil(3000 / 32)          # 94
    op = vector_op("v", "activation", "sigmoid", 1000, ops_per_element=3, copies=3, steps=2)
    r = simulate(Workload("v", (op,)), arch).ops[0]
    assert r.cycles == 2 * math.ceil(9000 / 32) and r.macs == 0                                   # 564
    assert r.accesses["ifmap_sram.output.writes"] == 6 * 1000 * 1    # int8 at the array's width
    assert not any(k.startswith("dram.") for k in r.accesses)


def test_activations_follow_one_rule_for_inputs_and_outputs():
    """Off chip (systolic-32: 10 B/cycle) an element-wise op reads its 1000 int8 inputs from
    DRAM and writes its 1000 outputs back: 2000 B / 10 = 200 cycles, more than the lanes'
    94. On chip (the TPU) a GEMM's outputs go back to the unified buffer, not to DRAM."""
    off = PRESETS["systolic-32"]
    r = simulate(Workload("v", (vector_op("v", "activation", "sigmoid", 1000, ops_per_element=3),)), off).ops[0]
    assert (r.cycles, r.stall_cycles) == (200, 200 - 94)
    assert r.accesses["dram.input.reads"] == r.accesses["dram.output.writes"] == 1000
    g = gemm_op("g", 64, 32, 32, bits=8, dtype="int")
    tpu = simulate(Workload("g", (g,)), PRESETS["tpu-v1"]).ops[0]
    assert tpu.accesses.get("dram.output.writes", 0) == 0 and tpu.accesses.get("dram.input.reads", 0) == 0
    assert tpu.accesses["ifmap_sram.output.writes"] == 64 * 32          # int8 outputs into the unified buffer
    offg = simulate(Workload("g", (g,)), off).ops[0]
    assert offg.accesses["dram.output.writes"] == 64 * 32 and offg.accesses["dram.input.reads"] == 64 * 32


def test_wide_operands_stream_at_a_fraction_of_the_rate():
    """16-bit activations on an 8-bit array: each of the 8 streamed rows occupies the array
    two cycles, so T = 16 and the fold's last output leaves 16 + 4 + 4 - 2 = 22 cycles after
    it starts; with the 4-cycle shift-in, 26 compute cycles (8-bit: 4 + 8 + 6 = 18)."""
    arch = _small()
    op16 = gemm_op("g", 8, 4, 4, bits=16, dtype="int")
    op16 = dataclasses.replace(op16, operands=tuple(dataclasses.replace(o, bits=8) if o.role == "weight" else o
                                                   for o in op16.operands))
    r16 = simulate(Workload("w", (op16,)), arch).ops[0]
    r8 = simulate(Workload("n", (gemm_op("g", 8, 4, 4, bits=8, dtype="int"),)), arch).ops[0]
    assert (r16.extra.compute_cycles, r8.extra.compute_cycles) == (26, 18)
    assert (r16.extra.rate, r16.precision) == (0.5, "int16")


def test_cycle_engine_on_whole_workloads():
    wl = resolve("lenet300", batch=4)
    for preset in ("systolic-16", "tpu-v1"):
        fast, ref = (simulate(wl, PRESETS[preset], engine=e) for e in ("fast", "cycles"))
        assert fast.rows() == ref.rows() and fast.cycles == ref.cycles
    stepped = Workload("s", (gemm_op("hh", 3, 40, 40, bits=8, dtype="int", steps=4),))
    assert simulate(stepped, _small(), engine="fast").rows() == simulate(stepped, _small(), engine="cycles").rows()


# ---- convolutions: DRAM moves the input tensor, not its im2col expansion -------------------
def _conv3x3(**arch):
    from sim.systolic.simulate import simulate_op
    from workloads.build import conv_op

    op = conv_op("c", 1, 64, 56, 56, 64, 3, 3, stride=1, pad=1, bits=8, dtype="int")
    return simulate_op(op, SystolicArch(rows=32, cols=32, dataflow="ws", **arch))


def test_a_conv_that_fits_reads_its_input_from_dram_once():
    # 3x3 conv 64 -> 64 at 56x56, pad 1, int8: the input is 64 x 56 x 56 = 200,704 bytes and
    # fits half of a 512 KiB ifmap SRAM; its im2col view (3136 x 576 = 1.8 MB) would not
    r = _conv3x3(ifmap_sram_kib=512)
    assert r.accesses["dram.input.reads"] == 64 * 56 * 56
    # the array is still fed im2col: every window position of every output pixel, once per
    # output-channel tile (64 filters on 32 columns: 2 tiles)
    assert r.accesses["ifmap_sram.input.reads"] == 3136 * 576 * 2


def test_a_conv_that_does_not_fit_reads_each_tile_region():
    # 64 KiB ifmap SRAM: the 196 KB input does not fit half of it, so every fold fetches the
    # input its tile reads. 196 KiB of 32-bit accumulators over 32 columns holds 784 output
    # pixels = 14 output rows per chunk; rows -1..14, 13..28, 27..42, 41..56 clipped to
    # 0..55 are 15 + 16 + 16 + 15 input rows of 56 columns. A K tile of 32 window positions
    # (k = 9c + 3r + s) names the channels {k // 9}; 2 output-channel tiles repeat it all.
    r = _conv3x3(ifmap_sram_kib=64, ofmap_sram_kib=196)
    rows = [len({y for p in range(14 * t, 14 * t + 14) for y in range(p - 1, p + 2) if 0 <= y < 56})
            for t in range(4)]
    assert rows == [15, 16, 16, 15]
    channels = sum(len({k // 9 for k in range(32 * i, 32 * i + 32)}) for i in range(576 // 32))
    assert r.accesses["dram.input.reads"] == 2 * sum(rows) * 56 * channels


def test_a_strided_1x1_conv_never_fetches_the_rows_it_skips():
    from sim.systolic.simulate import simulate_op
    from workloads.build import conv_op

    # ResNet's downsample: 1x1, stride 2, 64 x 56 x 56 -> 128 x 28 x 28 reads every other row
    # and column: 64 x 28 x 28 bytes
    op = conv_op("d", 1, 64, 56, 56, 128, 1, 1, stride=2, bits=8, dtype="int")
    r = simulate_op(op, SystolicArch(rows=32, cols=32, dataflow="ws", ifmap_sram_kib=512))
    assert r.accesses["dram.input.reads"] == 64 * 28 * 28


@settings(max_examples=150, deadline=None, derandomize=True)
@given(H=st.integers(1, 12), W=st.integers(1, 12), R=st.integers(1, 4), S=st.integers(1, 4), s=st.integers(1, 3),
       pad=st.integers(0, 2), dil=st.sampled_from([1, 1, 2]), N=st.integers(1, 3), tile=st.integers(1, 40),
       sw=st.integers(1, 3))
def test_conv_tile_regions_against_a_brute_force(H, W, R, S, s, pad, dil, N, tile, sw):
    from sim.systolic.convdata import ConvGeometry

    P, Q = (H + 2 * pad - dil * (R - 1) - 1) // s + 1, (W + 2 * pad - dil * (S - 1) - 1) // sw + 1
    if P < 1 or Q < 1:
        return
    g = ConvGeometry(N, 1, H, W, R, S, P, Q, s, sw, pad, pad, dil, dil)

    def reads(m):                           # input positions (image, y, x) output pixel m reads
        n, p, q = m // (P * Q), m // Q % P, m % Q
        return {(n, p * s - pad + r * dil, q * sw - pad + c * dil) for r in range(R) for c in range(S)
                if 0 <= p * s - pad + r * dil < H and 0 <= q * sw - pad + c * dil < W}

    M = N * P * Q
    m0 = np.arange(0, M, tile)
    m1 = np.minimum(m0 + tile, M)
    regions = [set().union(*(reads(m) for m in range(a, b))) for a, b in zip(m0, m1)]
    every = set().union(*regions)
    assert g.elements_read == len(every)
    # the vectorised form (undilated convs) and the set-by-set one both equal the brute force;
    # kept on chip, the tiles together fetch each element once
    forms = [g._row_elements_steps] + ([g._row_elements_fast] if g._fast() else [])
    for form in forms:
        assert form(m0, m1, False).tolist() == [len(x) for x in regions]
        assert int(form(m0, m1, True).sum()) == len(every)


@pytest.mark.parametrize("df", ["os", "is"])
def test_output_and_input_stationary_convs_fetch_each_tile_region(df):
    from sim.systolic.simulate import simulate_op
    from workloads.build import conv_op

    # 3x3 conv, pad 1, 8 -> 4 channels at 10x10, int8, on 4x4: os tiles the 100 output pixels
    # by the 4 array rows, is by the 4 array columns. With 1 KiB of input SRAM the whole
    # input (800 B) does not fit its 512 B active half, so each tile of pixels fetches the
    # input it reads (brute force below) for all 8 channels (os: all of K at once) or for the
    # channels of each K tile of 4 window positions (is)
    op = conv_op("c", 1, 8, 10, 10, 4, 3, 3, stride=1, pad=1, bits=8, dtype="int")
    r = simulate_op(op, SystolicArch(rows=4, cols=4, dataflow=df, ifmap_sram_kib=1))

    def region(pixels):
        return len({(p // 10 + dy, p % 10 + dx) for p in pixels for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                    if 0 <= p // 10 + dy < 10 and 0 <= p % 10 + dx < 10})

    tiles = [range(a, min(a + 4, 100)) for a in range(0, 100, 4)]
    if df == "os":
        want = sum(region(t) * 8 for t in tiles)
    else:
        k_tiles = [range(a, a + 4) for a in range(0, 72, 4)]
        want = sum(region(t) * len({k // 9 for k in kt}) for t in tiles for kt in k_tiles)
    assert r.accesses["dram.input.reads"] == want
    # with 64 KiB the input fits the active half and stays on chip: 8 x 10 x 10 bytes, once
    r = simulate_op(op, SystolicArch(rows=4, cols=4, dataflow=df, ifmap_sram_kib=64))
    assert r.accesses["dram.input.reads"] == 8 * 10 * 10


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_every_dataflow_reads_a_fitting_conv_input_once(df):
    """The 3x3 64->64 conv at 56x56 on a 32x32 array with 512 KiB of input SRAM: the input
    (64 x 56 x 56 = 200,704 B, by hand) fits the active half, so whichever operand the
    dataflow keeps stationary, DRAM brings each input element once and each weight once."""
    from sim.systolic.simulate import simulate_op
    from workloads.build import conv_op
    op = conv_op("c", 1, 64, 56, 56, 64, 3, 3, stride=1, pad=1, bits=8, dtype="int")
    r = simulate_op(op, SystolicArch(rows=32, cols=32, dataflow=df, ifmap_sram_kib=512, filter_sram_kib=128))
    assert r.accesses["dram.input.reads"] == 64 * 56 * 56
    assert r.accesses["dram.weight.reads"] == 64 * 64 * 9


def test_the_zigzag_tpu_like_example_moves_each_tensor_once():
    """examples/zigzag_tpu_like.yaml (ZigZag's tpu_like: 32x32 ws, 8 B/cycle DRAM, 1 MiB of
    the 2 MB SRAM for inputs) on the 3x3 64->64 conv at 56x56, 8-bit: the input (64 x 56 x
    56 = 200,704 B, by hand) fits half the input SRAM, so DRAM reads it once plus the
    weights (64 x 64 x 9 = 36,864 B) and writes the output once (200,704 B): what ZigZag
    3.9.1's mapping moves (benchmarks/data/zigzag_resnet18_tpu_like.txt). Each access is
    priced from examples/zigzag_tpu_like_energy.yaml unscaled (the design is at its node)."""
    from analysis.energy import energy_rows, load_table
    from sim.registry import resolve_arch
    from workloads.spec import adhoc
    root = Path(__file__).resolve().parents[1]
    arch = resolve_arch(str(root / "examples" / "zigzag_tpu_like.yaml"))
    assert (arch.rows, arch.cols, arch.dataflow, arch.dram_bw_bytes_per_cycle) == (32, 32, "ws", 8)
    res = arch.simulate(adhoc("conv:1,64,56,56,64,3,3,1,1:int8"))
    row = res.row(res.ops[0])
    assert row["dram_read_bytes"] == 200_704 + 36_864 and row["dram_write_bytes"] == 200_704
    table = load_table(str(root / "examples" / "zigzag_tpu_like_energy.yaml"))
    assert table.at_node(arch.technology_nm).scale == 1.0
    rows, _ = energy_rows(res, arch, table.at_node(arch.technology_nm))
    macs = 64 * 56 * 56 * 64 * 9
    assert rows[0]["energy_dram_pj"] == pytest.approx((200_704 * 2 + 36_864) * 8 * 10.94)
    assert rows[0]["energy_compute_pj"] == pytest.approx(macs * 0.04)
    # the per-PE registers, at ZigZag's prices: one 8-bit weight read a MAC from the 128 B
    # register file (0.095 pJ), one 16-bit partial-sum read and write in the 2 B output
    # register (0.021 pJ each)
    assert rows[0]["energy_pe_weight_reg_pj"] == pytest.approx(macs * 0.095)
    assert rows[0]["energy_pe_output_reg_pj"] == pytest.approx(macs * 2 * 0.021)


def test_pe_registers_are_validated_and_off_by_default():
    from workloads import HwsimError
    assert "pe_weight_reg" not in PRESETS["systolic-32"].memory_levels()
    with pytest.raises(HwsimError, match="pe_reg_bytes.psum: must be one of input, weight, output"):
        SystolicArch(pe_reg_bytes={"psum": 4})
    with pytest.raises(HwsimError, match=r"pe_reg_bytes.weight: must be bytes per PE"):
        SystolicArch(pe_reg_bytes={"weight": 0})


def test_a_weight_register_file_keeps_partial_sums_in_the_pe():
    """The 3x3 64->64 conv at 56x56 on a 32x32 ws array: K = 576 is 18 tiles of 32 rows.
    Without PE registers every tile's 3136 x 64 partial sums (16-bit here) go to the
    accumulators: 18 x 3136 x 64 x 2 B written. With a 128 B weight register file and an
    output register per PE, all 18 tiles' weights (18 B) sit in each PE and a row's partial
    sum accumulates over them before it leaves: written once, 3136 x 64 x 2 B. With 8 B of
    weight registers the tiles go in groups of 8, 8, 2: three times that. Cycles do not
    change (the same rows stream and the same weights load)."""
    from sim.systolic.simulate import simulate_op
    from workloads.build import conv_op
    op = conv_op("c", 1, 64, 56, 56, 64, 3, 3, stride=1, pad=1, bits=8, dtype="int")
    base = SystolicArch(rows=32, cols=32, acc_bits=16, ifmap_sram_kib=1024, ofmap_sram_kib=1024)
    plain = simulate_op(op, base)
    full = simulate_op(op, dataclasses.replace(base, pe_reg_bytes={"weight": 128, "output": 2}))
    eight = simulate_op(op, dataclasses.replace(base, pe_reg_bytes={"weight": 8, "output": 2}))
    no_out = simulate_op(op, dataclasses.replace(base, pe_reg_bytes={"weight": 128}))
    psums = 3136 * 64 * 2
    assert plain.accesses["ofmap_sram.output.writes"] == 18 * psums
    assert full.accesses["ofmap_sram.output.writes"] == psums
    assert eight.accesses["ofmap_sram.output.writes"] == 3 * psums
    assert no_out.accesses["ofmap_sram.output.writes"] == 18 * psums      # nowhere to accumulate
    assert plain.cycles == full.cycles == eight.cycles

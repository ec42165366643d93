"""EIE's DRAM streaming (sim.eie.dram): the closed forms against cycle stepping, the bytes that
do not fit counted by hand, layers that fit untouched, and VGG-6 on 64 PEs (Han et al., ISCA
2016: its 25089 16-bit pointers per PE do not fit the 32 KB pointer SRAM)."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sim.eie import PRESETS, from_dense, run_layer, synthetic, synthetic_activations
from sim.eie.dram import DRAM_GBPS, DRAM_STREAMING, load_cycles, pass_loads, stream_cycles, stream_time
from sim.eie.engine import column_tiles, pass_timing
from sim.eie.encode import encode
from workloads import HwsimError

EIE = PRESETS["eie-64"]


@settings(max_examples=200, deadline=None)
@given(passes=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=8),
       mode=st.sampled_from(DRAM_STREAMING))
def test_closed_form_equals_stepping_the_dma_and_the_pes(passes, mode):
    compute, loads = [c for c, _ in passes], [L for _, L in passes]
    assert stream_time(compute, loads, mode) == stream_cycles(compute, loads, mode)


def test_hand_derived_streams():
    # passes compute 10, 5, 7 cycles and load 3, 20, 0: stalled, everything one after another
    # (22 + 23); double-buffered, 3 to load the first, then pass 1 computes (10) while pass 2
    # loads (20), then 5 and 7; untimed, the compute alone
    c, L = [10, 5, 7], [3, 20, 0]
    assert {m: stream_time(c, L, m) for m in DRAM_STREAMING} == {"stalled": 45, "pipelined": 35, "untimed": 22}
    assert stream_time([], [], "stalled") == 0
    # DRAM cycles: 4264 bytes at 4.264 GB/s are 1 us, 800 cycles at 800 MHz; rounded up
    assert load_cycles(4264, EIE) == 800 and load_cycles(4265, EIE) == 801 and load_cycles(0, EIE) == 0
    assert DRAM_GBPS == 1066e6 * 4 / 1e9             # one x32 LPDDR2-1066 channel


def _small(**kw):
    # 2 PEs of 4 output registers: an 8 x 20 layer is one row batch, 4 entries a column per PE;
    # 16 B of pointers (8: 7 columns a tile), 40 B of entries (40), 2 bytes a cycle from DRAM
    return dataclasses.replace(EIE, num_pes=2, act_regs=4, ptr_sram_bytes=16, spmat_sram_bytes=40,
                               dram_gbps=1.6, **kw)


def test_bytes_that_do_not_fit_counted_by_hand():
    arch = _small()
    layer = from_dense(np.ones((8, 20)))
    enc = encode(layer, 2, arch.max_zero_run)
    assert column_tiles(enc.entries, arch) == [(0, 7), (7, 7), (14, 6)]
    # per PE, tiles of 28, 28, 24 entries and 8, 8, 7 pointers; 40 entries and 8 pointers fit,
    # so tile 2 reads 16 entries and 8 pointers, tile 3 24 entries and 7 pointers, on each
    # of the 2 PEs: (16 x 8 + 8 x 16) x 2 / 8 = 64 B and (24 x 8 + 7 x 16) x 2 / 8 = 76 B
    loads = pass_loads([np.array([28, 28]), np.array([28, 28]), np.array([24, 24])], [8, 8, 7], arch)
    np.testing.assert_array_equal(loads, [0, 64, 76])
    acts = np.ones(20, dtype=np.int64) << 12
    runs = {m: run_layer(layer, acts, dataclasses.replace(arch, dram_streaming=m)) for m in DRAM_STREAMING}
    # compute: every column brings each PE 4 entries, so a tile of A columns takes 4 A cycles
    # from cycle 1 plus the 4-stage pipeline: 32, 32, 28; loads 32 and 38 cycles at 2 B a cycle
    assert runs["untimed"].cycles == 32 + 32 + 28
    assert runs["stalled"].cycles == 92 + 32 + 38
    assert runs["pipelined"].cycles == 0 + max(32, 32) + max(32, 38) + 28
    for m, r in runs.items():
        assert r.dram_bytes == 140 and r.compute_cycles == 92
        assert r.dram_stall_cycles == r.cycles - 92
        np.testing.assert_array_equal(r.output, runs["untimed"].output)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 120), cols=st.integers(1, 50), density=st.floats(0.02, 1.0), pes=st.integers(1, 8),
       regs=st.integers(1, 8), seed=st.integers(0, 1000))
def test_a_layer_that_fits_reads_no_dram_in_any_mode(rows, cols, density, pes, regs, seed):
    arch = dataclasses.replace(EIE, num_pes=pes, act_regs=regs)
    layer, acts = synthetic(rows, cols, density, seed), synthetic_activations(cols, 0.5, seed)
    # the passes' own timings, summed (the layer's time before DRAM was modelled)
    want = 0
    for r0 in range(0, rows, pes * regs):
        enc = encode(layer, pes, arch.max_zero_run, row0=r0, rows=min(pes * regs, rows - r0))
        for c0, nc in column_tiles(enc.entries, arch):
            want += pass_timing(enc.entries[:, c0:c0 + nc][:, np.flatnonzero(acts[c0:c0 + nc])], arch.queue_depth,
                                arch.pipeline_depth).cycles
    for m in DRAM_STREAMING:
        r = run_layer(layer, acts, dataclasses.replace(arch, dram_streaming=m))
        assert (r.cycles, r.dram_bytes, r.dram_stall_cycles) == (want, 0, 0)


def test_vgg6_streams_its_pointers_on_64_pes():
    from sim.eie.simulate import simulate_op
    from workloads.zoo.eie import eie_benchmarks
    ops = {o.name: o for o in eie_benchmarks().ops}
    res = {m: simulate_op(ops["vgg6"], dataclasses.replace(EIE, dram_streaming=m)) for m in DRAM_STREAMING}
    # 25088 columns in two pointer tiles (16383 + 8705) need 25090 pointers per PE; 16384 fit
    # (32 KB of 16-bit pointers), so every vector reads 8706 x 64 PEs x 2 B; the entries fit
    # (about 100K of 131072 per PE)
    nbytes = (25088 + 2 - 32 * 1024 // 2) * 64 * 2
    assert nbytes == 1_114_368
    stall = math.ceil(nbytes * 800e6 / (DRAM_GBPS * 1e9))          # 209075 cycles: 261 us
    for m, r in res.items():
        assert r.accesses["dram.weight.reads"] == nbytes             # priced alike in every mode
    assert res["stalled"].stall_cycles == stall
    assert res["stalled"].cycles == res["untimed"].cycles + stall
    assert res["untimed"].stall_cycles == 0
    # double-buffered: the second tile loads while the first computes, which is far shorter
    assert res["untimed"].cycles < res["pipelined"].cycles < res["stalled"].cycles
    assert res["pipelined"].cycles > stall
    # a layer that fits (Alex-7: 4097 pointers per PE; NT-Wd: three row batches) is untouched
    for name in ("alex7", "nt-wd"):
        a, b = (simulate_op(ops[name], dataclasses.replace(EIE, dram_streaming=m)) for m in ("stalled", "untimed"))
        assert (a.cycles, a.stall_cycles, a.accesses["dram.weight.reads"]) == (b.cycles, 0, 0)


def test_dram_fields_are_checked():
    with pytest.raises(HwsimError, match="dram_streaming"):
        dataclasses.replace(EIE, dram_streaming="overlapped")
    with pytest.raises(HwsimError, match="dram_gbps"):
        dataclasses.replace(EIE, dram_gbps=0.0)
    assert EIE.peaks().bytes_per_s == {"dram": DRAM_GBPS * 1e9}
    assert dataclasses.replace(EIE, dram_streaming="untimed").peaks().bytes_per_s == {}

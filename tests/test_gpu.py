"""Tensor-core GPUs: published peak formulas, hand-derived rooflines, wave quantisation,
precision effects, bad input."""

import dataclasses
import io

import pandas as pd
import pytest

from analysis.cli import main
from sim.gpu import PRESETS, gemm_time
from workloads import HwsimError
from workloads.build import gemm_op
from workloads.trace import Workload
from sim.gpu import simulate

A100 = PRESETS["a100"]


@pytest.mark.parametrize("name, tflops", [("v100", 125.3), ("a100", 311.9), ("h100", 989.4), ("t4", 65.1)])
def test_peak_equals_sms_x_tcs_x_fma_x2_x_clock(name, tflops):
    assert PRESETS[name].peak_tflops("fp16") == pytest.approx(tflops, abs=0.05)


@pytest.mark.parametrize("name, ridge", [("v100", 139), ("a100", 201), ("h100", 295), ("h200", 206)])
def test_ridge_points(name, ridge):
    assert PRESETS[name].ridge_flop_per_byte == pytest.approx(ridge, abs=1)


def test_other_precisions_match_the_datasheets():
    assert A100.peak_tflops("tf32") == pytest.approx(156, rel=0.01)
    assert A100.peak_tflops("int8") == pytest.approx(624, rel=0.01)
    assert PRESETS["h100"].peak_tflops("fp8") == pytest.approx(1979, rel=0.01)
    assert PRESETS["t4"].peak_tflops("int8") == pytest.approx(130, rel=0.01)


def test_large_square_gemm_is_compute_bound_below_peak():
    n = 8192
    t = gemm_time(n, n, n, A100)
    frac = t.tflops(n ** 3, A100.clock_mhz) / A100.peak_tflops()
    assert t.bound == "compute"
    assert 0.75 < frac < 0.95                    # realistic, never the datasheet peak
    assert t.cycles >= n ** 3 / (A100.sms * A100.sm_fma_per_clk("fp16"))   # the compute roofline


def test_gemv_follows_the_memory_roofline():
    # batch-1 linear 8192 x 8192 fp16: 128 MiB of weights must cross DRAM once
    t = gemm_time(1, 8192, 8192, A100)
    roof = 8192 * 8192 * 2 / A100.dram_bytes_per_clk
    assert t.bound == "memory"
    assert roof <= t.cycles <= roof * 1.05 + 2 * A100.dram_latency_cycles
    assert t.dram_bytes == pytest.approx(8192 * 8192 * 2 + 8192 * 2 + 8192 * 2, rel=0.001)


def test_wave_quantisation_sawtooth():
    # fixed 128x128 tiles: 2 CTAs/SM -> 216 slots; M = 27 * 128 rows of tiles
    M, K = 27 * 128, 4096
    full = gemm_time(M, 16 * 128, K, A100, tile=(128, 128))      # 27 x 16 = 432 CTAs = exactly 2 waves
    over = gemm_time(M, 17 * 128, K, A100, tile=(128, 128))      # 459 CTAs: a third, mostly empty wave
    assert (full.ctas_per_sm, full.waves, over.waves) == (2, 2, 3)
    eff_full = full.tflops(M * 16 * 128 * K, A100.clock_mhz)
    eff_over = over.tflops(M * 17 * 128 * K, A100.clock_mhz)
    assert eff_over < 0.9 * eff_full                             # the tooth
    times = [gemm_time(M, n * 128, K, A100, tile=(128, 128)).cycles for n in range(1, 40)]
    assert all(b >= a for a, b in zip(times, times[1:]))         # monotone in N


def test_precision_changes_time_and_traffic():
    n = 8192
    fp16, int8, tf32 = (gemm_time(n, n, n, A100, p) for p in ("fp16", "int8", "tf32"))
    assert int8.cycles == pytest.approx(fp16.cycles / 2, rel=0.1)
    assert tf32.cycles == pytest.approx(fp16.cycles * 2, rel=0.15)
    # storing the output in fp32 instead of fp16 doubles the epilogue's DRAM writes
    w16 = simulate(Workload("w", (gemm_op("g", 4096, 4096, 4096, bits=16),)), A100).ops[0]
    w32 = simulate(Workload("w", (gemm_op("g", 4096, 4096, 4096, bits=16),)), A100, output="fp32").ops[0]
    assert w32.accesses["dram.output.writes"] == 2 * w16.accesses["dram.output.writes"] == 2 * 4096 * 4096 * 2
    # fp32 accumulators take twice the registers of fp16 ones: never more CTAs per SM
    acc32 = gemm_time(4096, 4096, 4096, A100, tile=(256, 128), acc_bytes=4)
    acc16 = gemm_time(4096, 4096, 4096, A100, tile=(256, 128), acc_bytes=2)
    assert acc16.ctas_per_sm >= acc32.ctas_per_sm


def test_bad_input():
    with pytest.raises(HwsimError, match="fp8.*not supported by a100"):
        gemm_time(64, 64, 64, A100, "fp8")
    with pytest.raises(HwsimError, match="sms"):
        dataclasses.replace(A100, sms=0)
    with pytest.raises(HwsimError, match="M must be a positive integer"):
        gemm_time(-4, 64, 64, A100)
    with pytest.raises(HwsimError, match="tc_fma_per_clk"):
        dataclasses.replace(A100, tc_fma_per_clk={"fp99": 1})


def test_resnet50_on_a100_from_the_cli(capsys):
    assert main(["simulate", "resnet50", "--arch", "a100", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    for col in ("name", "cycles", "time_us", "utilization", "tflops", "waves", "bound"):
        assert col in df.columns
    layers, total = df[df.name != "TOTAL"], df[df.name == "TOTAL"]
    assert len(layers) == 174
    assert total.cycles.item() == layers.cycles.sum()
    assert 0 < total.time_us.item() < 10_000
    conv = layers[layers.op == "conv2d"]
    assert (conv.utilization <= 1).all() and (conv.tflops <= A100.peak_tflops()).all()


@pytest.mark.parametrize("shape", [(2048, 2048, 2048), (16, 4096, 4096), (1, 8192, 8192), (512, 512, 512),
                                   (27 * 128, 17 * 128, 2048)])
def test_fast_model_tracks_the_event_driven_reference(shape):
    from sim.gpu.event import gemm_events
    fast = gemm_time(*shape, A100).cycles
    event = gemm_events(*shape, A100)
    assert event == pytest.approx(fast, rel=0.15)

"""DRAM time at the bandwidth kernels sustain (issue 35 item 4): each preset's measured STREAM
triad, not the datasheet peak, times every DRAM transfer; energy per byte, the ridge and the
peaks keep the datasheet figure. The expected times are worked out by hand from the sourced
GB/s (sim/gpu/constants.py), not read back from the model."""

import dataclasses
import math

import pytest

from analysis.energy import load_table, op_energy
from sim.gpu import PRESETS, gemm_time, simulate
from sim.gpu.arch import DRAM_ACHIEVED_GBS
from sim.gpu.constants import CONSTANTS
from workloads import HwsimError
from workloads.build import gemm_op, vector_op
from workloads.trace import Workload

# the measured STREAM triads (GB/s) and the datasheet peaks they are a share of
SOURCED = {"v100": (814, 900), "a100": (1360, 1555), "a100-80gb": (1700, 2039), "h100": (2970, 3350),
           "h200": (4150, 4800)}


@pytest.mark.parametrize("name", sorted(SOURCED))
def test_each_preset_sustains_its_measured_triad(name):
    gbs, peak = SOURCED[name]
    arch = PRESETS[name]
    assert arch.dram_gbs == peak                              # the datasheet figure is kept
    assert arch.dram_achievable_gbs == pytest.approx(gbs)
    assert arch.dram_bytes_per_clk == pytest.approx(gbs * 1e9 / (arch.clock_mhz * 1e6))
    assert 0.8 < arch.dram_efficiency < 0.95                  # 83-91% of peak, as measured


def test_t4_without_a_measurement_keeps_its_peak():
    t4 = PRESETS["t4"]
    assert "t4" not in DRAM_ACHIEVED_GBS and t4.dram_efficiency == 1.0
    assert t4.dram_bytes_per_clk == pytest.approx(320e9 / (1590 * 1e6))
    assert "no streaming-kernel measurement" in t4.source


def test_every_efficiency_is_registered_as_a_published_measurement():
    entries = {c.name: c for c in CONSTANTS if c.name.endswith(".dram_efficiency")}
    assert entries["GPUArch.dram_efficiency"].value == 1.0
    for name, (gbs, peak) in SOURCED.items():
        c = entries[f"{name}.dram_efficiency"]
        assert c.kind == "published" and c.value == PRESETS[name].dram_efficiency == gbs / peak
        assert "triad" in c.source.lower() and (f"{gbs / 1000:.2f} TB/s" in c.source or f"{gbs} GB/s" in c.source)


@pytest.mark.parametrize("name", ["v100", "a100", "h100", "h200"])
def test_an_elementwise_kernel_moves_its_bytes_at_the_measured_rate(name):
    gbs, _ = SOURCED[name]
    arch = PRESETS[name]
    E = 1 << 24                                           # 16 Mi fp16 elements: far past any L2
    add = vector_op("add", "elementwise", "add", E, inputs=2 * E, bits=16)
    r = simulate(Workload("add", (add,)), arch).ops[0]
    nbytes = 3 * E * 2                                    # two inputs read, one output written
    assert r.extra.dram_bytes == nbytes and r.extra.bound == "memory"
    # bytes / measured bandwidth, plus the launch the model adds to every kernel
    by_hand = nbytes / (gbs * 1e3) + arch.kernel_overhead_us           # us
    assert r.time_us == pytest.approx(by_hand, abs=1 / arch.clock_mhz)
    assert r.cycles == math.ceil(nbytes / (gbs * 1e9 / (arch.clock_mhz * 1e6)) + arch.kernel_overhead_us
                                 * arch.clock_mhz)


def test_a_gemv_is_no_faster_than_its_weights_at_the_measured_rate():
    # 1 x 4096 x 8192 fp16 on an H200: the 64 MiB weight (more than its 50 MB L2) streams once from HBM
    h200 = PRESETS["h200"]
    weight = 8192 * 4096 * 2
    floor_us = weight / 4150e3                            # 16.2 us at 4.15 TB/s (4800 peak: 14.0)
    for engine in ("fast", "events"):
        r = simulate(Workload("gemv", (gemm_op("g", 1, 4096, 8192, bits=16),)), h200, engine=engine).ops[0]
        assert r.time_us > floor_us + h200.kernel_overhead_us
        # within the model's fixed costs (launch, DRAM latency, the split-K reduction) of it
        assert r.time_us < floor_us + 4 * h200.kernel_overhead_us + 3 * h200.dram_latency_cycles / h200.clock_mhz


@pytest.mark.parametrize("name", ["a100-80gb", "h100", "h200"])
def test_memory_bound_time_scales_with_the_achievable_rate(name):
    # the same GEMV at the peak and at the measured rate: the DRAM-bound part scales by the ratio
    arch = PRESETS[name]
    peak = dataclasses.replace(arch, dram_efficiency=1.0)
    t, t_peak = gemm_time(1, 16384, 16384, arch, "fp16"), gemm_time(1, 16384, 16384, peak, "fp16")
    weight = 16384 * 16384 * 2
    extra = weight / arch.dram_bytes_per_clk - weight / peak.dram_bytes_per_clk
    assert t.cycles - t_peak.cycles == pytest.approx(extra, rel=0.05)
    assert t.dram_bytes == t_peak.dram_bytes                   # the same traffic, moved slower


def test_energy_per_byte_ridge_and_peaks_keep_the_datasheet_figure():
    a100 = PRESETS["a100"]
    peak = dataclasses.replace(a100, dram_efficiency=1.0)
    wl = Workload("gemv", (gemm_op("g", 1, 8192, 8192, bits=16),))
    table = load_table()
    e = {m.dram_efficiency: op_energy(simulate(wl, m).ops[0], m.memory_levels(), table, op_prices=m.op_prices())
         for m in (a100, peak)}
    assert e[a100.dram_efficiency].by_level["dram"] == pytest.approx(e[1.0].by_level["dram"])
    assert a100.ridge_flop_per_byte == peak.ridge_flop_per_byte == pytest.approx(311.9e12 / 1555e9, rel=1e-3)
    assert a100.peaks().bytes_per_s["dram"] == 1555e9


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.2])
def test_an_efficiency_outside_zero_to_one_is_refused(bad):
    with pytest.raises(HwsimError, match="dram_efficiency"):
        dataclasses.replace(PRESETS["h100"], dram_efficiency=bad)

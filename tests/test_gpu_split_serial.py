"""Serial (in-kernel) split-K, the choice among split modes, the measured L2 rates and
latencies of the presets, and eager against CUDA-graph launches."""

import dataclasses
import math

import pytest

from sim.gpu import PRESETS, gemm_time, simulate
from sim.gpu import gemm as G
from sim.gpu.event import gemm_detail
from workloads import HwsimError
from workloads.build import gemm_op, vector_op
from workloads.trace import Workload

A100, H200 = PRESETS["a100"], PRESETS["h200"]


def test_serial_split_k_one_wave_by_hand():
    """1 x 2048 x 512 fp16 on a100, 32 x 64 tiles, K split 2: 32 tiles x 2 slices = 64 CTAs,
    one wave. Both slices of every tile finish together; slice 1 then waits one hand-off:
    3 L2 round trips (319 cycles each: (213 + 425) / 2 at 1410 MHz) plus the tile's in-bounds
    1 x 64 x 2 B = 128 B read and written at one SM's share of 5.4 TB/s (3830 B/clk / 108):
    957 + 2 x 128 x 108 / 3830 = 964.2 cycles on top of the two slices' main loops. No
    second kernel: the output reaches DRAM once, 2048 x 2 B; the partial tile goes through
    L2 once each way."""
    assert (A100.l2_latency_cycles, A100.l2_bytes_per_clk) == (319, 3830)
    ser = gemm_time(1, 2048, 512, A100, tile=(32, 64), split_k=2, serial=True)
    par = gemm_time(1, 2048, 512, A100, tile=(32, 64), split_k=2, serial=False)
    base = G._tile_time(1, 2048, 256, 2, A100, "fp16", 32, 64, 4, 1.0, 512 * 2, 512 * 2048 * 2)
    assert base is not None and (ser.ctas, ser.waves) == (64, 1)
    assert ser.cycles == math.ceil(base.cycles + 3 * 319 + 2 * 128 * 108 / 3830)
    assert ser.serial and not par.serial
    assert ser.dram_out_write_bytes == 2048 * 2 and ser.dram_out_read_bytes == 0
    assert ser.l2_out_bytes == 2 * 2048 * 2
    # the parallel split writes and reads back 2 fp32 partial rows and pays a second launch
    assert par.dram_out_read_bytes == 2 * 2048 * 4
    assert par.cycles - ser.cycles > A100.kernel_overhead_us * A100.clock_mhz - 964.2


def test_serial_split_k_across_waves_counts_one_hand_off_per_later_slice():
    """One SM holding one CTA: 2 tiles x 2 slices run as 4 waves, slices outermost (tile 0
    slice 0, tile 1 slice 0, tile 0 slice 1, tile 1 slice 1). Slices 0 wait for nothing;
    each slice 1 reads its tile once its predecessor (an earlier wave) released it: two
    hand-offs in all."""
    one = dataclasses.replace(A100, sms=1, max_ctas_per_sm=1)
    ser = gemm_time(64, 128, 1024, one, tile=(64, 64), split_k=2, serial=True)
    base = G._tile_time(64, 128, 512, 2, one, "fp16", 64, 64, 4, 1.0, 64 * 1024 * 2, 1024 * 128 * 2)
    assert base is not None and base.waves == 4
    hand_off = 3 * 319 + 2 * 64 * 64 * 2 * 1 / 3830
    assert ser.cycles == math.ceil(base.cycles + 2 * hand_off)


def test_event_model_runs_the_serial_split_k():
    """The event model's own semaphore chain (acquire, load, add, store, release through its
    L2) lands near the closed form, writes the output once and needs no second launch."""
    for shape, tile in (((1, 2048, 512), (32, 64)), ((3136, 64, 576), (64, 64)), ((64, 1024, 4096), (32, 32))):
        f = gemm_time(*shape, A100, tile=tile, split_k=2, serial=True)
        e = gemm_detail(*shape, A100, tile=tile, split_k=2, serial=True)
        p = gemm_detail(*shape, A100, tile=tile, split_k=2)
        assert e.cycles == pytest.approx(f.cycles, rel=0.15), shape
        assert e.dram_write_bytes == shape[0] * shape[1] * 2
        assert p.cycles - e.cycles > 0.5 * A100.kernel_overhead_us * A100.clock_mhz


def test_the_split_mode_chosen_on_a_few_shapes():
    """h200, bf16 (Hopper kernels: 128-byte K steps, 64 values; sim.gpu.kernel): 1 x 2048 x
    512 has 8 K steps per 32 x 32 tile and 64 tiles for 132 SMs, one wave; splitting it in two
    saves 4 K steps of the one resident CTA's main loop but a serial hand-off costs at least
    3 L2 round trips (3 x 386 cycles) and a parallel one a second launch, so it is not split.
    1 x 1024 x 16384 has 256 K steps per tile: the serial split is costed as its base kernel
    plus the hand-offs (by hand below); 4096^3 fills the machine unsplit."""
    from sim.gpu.kernel import kernel
    from sim.gpu.sm import main_loop
    k = kernel(H200, 32, 32, "bf16")
    saved = 4 * main_loop(H200, 32, 32, k.BK, "bf16", 1, k.stages).cycles_per_kstep
    assert k.BK == 64 and saved < 3 * 386
    thin = gemm_time(1, 2048, 512, H200, "bf16")
    assert thin.split_k == 1 and thin.waves == 1
    wide = gemm_time(1, 1024, 16384, H200, "bf16")
    assert wide.split_k > 1 and wide.waves == 1
    ser8 = gemm_time(1, 1024, 16384, H200, "bf16", tile=(32, 64), split_k=8, serial=True)
    base = G._tile_time(1, 1024, 2048, 8, H200, "bf16", 32, 64, 4, 2 / 8, 16384 * 2, 16384 * 1024 * 2,
                        out_elem=2)
    assert base is not None
    # 7 hand-offs of 3 x 386 cycles and a 128 B tile read and written at 5355 / 132 B/clk
    assert ser8.cycles == math.ceil(base.cycles + 7 * (3 * 386 + 2 * 128 * 132 / 5355))
    assert ser8.cycles > wide.cycles
    big = gemm_time(4096, 4096, 4096, H200, "bf16")
    assert big.split_k == 1 and not big.serial


def test_measured_l2_rates_and_latencies_of_the_presets():
    """The presets' L2 rate is the measured bandwidth over their clock, the latencies the
    measured ns at their clock (gpu-benches; see sim/gpu/arch.py)."""
    for name, gbs in (("v100", 2482), ("a100", 5400), ("h100", 9800), ("h200", 9800)):
        a = PRESETS[name]
        assert a.l2_bytes_per_clk * a.clock_mhz / 1e3 == pytest.approx(gbs, rel=1e-3), name
    assert PRESETS["v100"].dram_latency_cycles == round(436 / 1380 * 1530)
    assert PRESETS["h100"].dram_latency_cycles == round(658 / 1755 * 1830)
    assert PRESETS["h100"].l2_latency_cycles == round((265 + 475) / 2 / 1755 * 1830)


def test_eager_launches_add_their_measured_extra_per_kernel():
    """A GEMM and an element-wise kernel: eager launches add eager_extra_us to each (h200:
    2.52 - 2.34 us between back-to-back small kernels, gpu-benches)."""
    wl = Workload("w", (gemm_op("g", 512, 512, 512, bits=16), vector_op("r", "activation", "relu", 512 * 512, bits=16)))
    graph = simulate(wl, H200)
    eager = simulate(wl, dataclasses.replace(H200, launch="eager"))
    assert H200.launch == "graph" and H200.eager_extra_us == pytest.approx(0.18)
    for g, e in zip(graph.ops, eager.ops):
        assert e.cycles - g.cycles == pytest.approx(0.18 * 1830, abs=1.0)
    with pytest.raises(HwsimError, match="launch"):
        dataclasses.replace(H200, launch="lazy")


def test_the_gpu_reader_takes_the_launch_option():
    from validation.gpu import OPTIONS, _design
    from validation.schema import Row
    row = Row(id="x", domain="gpu", model="gemm:1,1,1", design="h200", options={"launch": "eager"},
              quantity="time_us", value=1.0, unit="us", source="a test row")
    assert "launch" in OPTIONS and _design(row).launch == "eager"

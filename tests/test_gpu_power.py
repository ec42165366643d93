"""GPU energy: register-file and shared-memory traffic by hand, the calibrated per-event
energies against the NVML measurement file they come from, held-out measurements, and the
power limit."""

import dataclasses

import pytest

import hwsim
from analysis.gpu_calibration import calibrate, read_measurements
from sim.gpu import PRESETS
from sim.gpu.power import capped_cycles, padded_fmas, sm_traffic
from workloads import HwsimError
from workloads.build import gemm_op
from sim.gpu.simulate import simulate_op

H200_CSV = "benchmarks/data/NVIDIA_H200_matmul.csv"
H200 = PRESETS["h200"]


def test_sm_traffic_of_an_ampere_gemm_by_hand():
    # 100 x 200 x 64 fp16 with 128x128 tiles on a100: 1 x 2 tiles of 128 x 128 x 64 FMAs
    f = 128 * 256 * 64
    assert padded_fmas(100, 200, 64, 1, 128, 128) == f
    t = sm_traffic(PRESETS["a100"], 100, 200, 64, 1, (128, 128), 2, 4, "weight", l2_a=111.0, l2_b=222.0)
    # warp tile 64 x 64: each FMA reads 2 B / 64 of A and of B from smem (ldmatrix), which
    # land in registers; m16n8k16 reads A 2/8 B and B 2/16 B per FMA; C 4 B read + written per k16
    assert t["smem.input.writes"] == 111.0 and t["smem.weight.writes"] == 222.0
    assert t["smem.input.reads"] == pytest.approx(f * 2 / 64) and t["smem.weight.reads"] == pytest.approx(f * 2 / 64)
    assert t["rf.input.writes"] == t["smem.input.reads"]
    assert t["rf.input.reads"] == pytest.approx(f * 2 / 8)
    assert t["rf.weight.reads"] == pytest.approx(f * 2 / 16)
    assert t["rf.output.reads"] == t["rf.output.writes"] == pytest.approx(f * 4 / 16)


def test_hopper_wgmma_reads_its_operands_from_shared_memory():
    t = sm_traffic(H200, 256, 256, 64, 1, (128, 256), 2, 4, "weight")
    f = 256 * 256 * 64
    assert "rf.input.reads" not in t and "rf.weight.writes" not in t
    # warpgroup tile 64 x 256: A 2/256 B, B 2/64 B per FMA
    assert t["smem.input.reads"] == pytest.approx(f * 2 / 256)
    assert t["smem.weight.reads"] == pytest.approx(f * 2 / 64)
    assert t["rf.output.writes"] == pytest.approx(f * 4 / 16)


def test_calibration_reproduces_the_preset_constants():
    """The preset's per-event energies are what analysis.gpu_calibration derives from the
    NVML measurements (to the 4 digits the preset keeps)."""
    c = calibrate(H200, read_measurements(H200_CSV), dram_pj_per_bit=3.9)
    for p, v in c.mac_pj.items():
        assert H200.mac_pj[p] == pytest.approx(v, rel=2e-3), p
    for f in ("rf_pj_per_byte", "smem_pj_per_byte", "l2_pj_per_byte", "dram_pj_per_byte", "active_power_w"):
        assert getattr(H200, f) == pytest.approx(getattr(c, f), rel=2e-3), f
    assert 0 < c.k < 1          # a 4 nm event costs less than Horowitz's 45 nm one


def _measured(M, N, K):
    return next(m for m in read_measurements(H200_CSV) if (m.M, m.N, m.K, m.precision) == (M, N, K, "fp16"))


@pytest.mark.parametrize("shape,energy_tol,time_tol", [((8192, 8192, 8192), 0.10, 0.10),
                                                       ((16384, 16384, 16384), 0.20, 0.20),
                                                       ((64, 8192, 8192), 0.35, 0.25)])
def test_held_out_gemms_against_nvml(shape, energy_tol, time_tol):
    """GEMMs the calibration did not see: energy (NVML, idle included) and sustained time
    (energy / average power over the 3 s loop, power-limited where the card hit 700 W)."""
    m = _measured(*shape)
    s = hwsim.simulate(f"gemm:{shape[0]},{shape[1]},{shape[2]}:fp16", "h200").summary()
    kernel_us = s["time_us"] - H200.kernel_overhead_us     # the loop replays a CUDA graph: no launch gap
    assert s["energy_pj"] / 1e9 == pytest.approx(m.energy_mj, rel=energy_tol)
    assert kernel_us == pytest.approx(m.seconds * 1e6, rel=time_tol)


@pytest.mark.parametrize("name", ["h100", "h200"])
def test_8192_cubed_lands_between_60_and_100_percent_of_tdp(name):
    arch = PRESETS[name]
    ev = hwsim.simulate("gemm:8192,8192,8192:fp16", name)
    s = ev.summary()
    # the demand is over the 700 W limit (as the H200 measured: 690 W), so the card runs at it;
    # the 2 us launch gap at idle + active power keeps the whole op just under
    assert 0.6 * arch.tdp_w <= s["power_w"] <= arch.tdp_w
    assert s["power_w"] > 0.95 * arch.tdp_w
    assert ev.rows[0]["bound"] == "power"


def test_power_limit_stretches_a_kernel_by_hand():
    arch = dataclasses.replace(H200, tdp_w=400.0)
    op = gemm_op("g", 8192, 8192, 8192, bits=16)
    free = simulate_op(op, dataclasses.replace(H200, tdp_w=0.0), "fp16")
    capped = simulate_op(op, arch, "fp16")
    dyn = sum(n * (arch.memory_levels()[k.split(".")[0]].read_pj_per_byte or 0) for k, n in free.accesses.items())
    dyn += free.ops["mac.fp16"] * arch.mac_pj["fp16"]
    # every SM busy: the kernel runs at 400 - 81 idle - 178.8 active W
    seconds = dyn * 1e-12 / (400.0 - arch.static_power_w - arch.active_power_w)
    assert capped.cycles == pytest.approx(seconds * arch.clock_mhz * 1e6, rel=1e-6)
    assert capped.cycles > free.cycles
    assert capped_cycles(100, 1.0, 1.0, arch) == 100          # 1 pJ in 100 cycles is far below any limit


def test_active_power_is_charged_for_busy_sms():
    r = hwsim.simulate("gemm:8192,8192,8192:fp16", "h200")
    s = r.summary()
    assert s["energy_active_pj"] == pytest.approx(H200.active_power_w * s["time_us"] * 1e6
                                                  - H200.active_power_w * H200.kernel_overhead_us * 1e6, rel=0.01)


def test_uncalibrated_cards_are_priced_by_the_table_and_not_capped():
    a100 = PRESETS["a100"]
    assert not a100.calibrated and a100.op_prices() == {}
    s = hwsim.simulate("gemm:8192,8192,8192:fp16", "a100").summary()
    assert s["energy_active_pj"] == 0.0 and s["energy_by_level_pj"]["rf"] > 0


def test_bad_calibrated_fields_are_refused():
    with pytest.raises(HwsimError, match="mac_pj"):
        dataclasses.replace(H200, mac_pj={"fp16": 0.4})            # bf16, tf32, fp8, int8 missing
    with pytest.raises(HwsimError, match="tdp_w"):
        dataclasses.replace(H200, tdp_w=200.0)                      # below idle + active
    with pytest.raises(HwsimError, match="mma_mnk"):
        dataclasses.replace(PRESETS["a100"], mma_mnk=(16, 0, 32))   # n 0 needs operands in smem

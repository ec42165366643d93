"""GPU energy: register-file and shared-memory traffic by hand, the calibrated per-event
energies against the NVML measurement file they come from, their transfer to other dies,
held-out measurements (NVML here, published GEMM timings), and the power limit."""

import dataclasses
import math

import numpy as np
import pytest

import hwsim
from analysis.gpu_calibration import (PROCESS_POWER, calibrate, horowitz_prices, read_measurements, table_prices,
                                      transfer)
from sim.gpu import PRESETS
from sim.gpu.power import padded_fmas, sm_traffic
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
    # k and the active power re-derived from the two NVML rows (read here with the csv
    # module), two equations in two unknowns solved by Cramer's rule: per GEMM,
    #   E - idle x t_loop - DRAM bytes x 3.9 pJ/bit x 8 = (k x (45 nm on-chip pJ) + active x share x t_full) x v^2
    # with t_loop = E / avg power (the throttled loop), t_full = min(t_loop, the CUDA-graph burst time),
    # v the voltage share of the preset's curve at the clock share t_full / t_loop where the loop
    # averaged within 3% of the 700 W limit (held there), else 1
    import csv
    with open(H200_CSV) as f:
        meas = {(int(r["M"]), int(r["N"]), int(r["K"])): r for r in csv.DictReader(f)
                if r["dtype"] == "float16" and r["energy_mj_per_gemm"]}
    bare = dataclasses.replace(H200, mac_pj={}, rf_pj_per_byte=0.0, smem_pj_per_byte=0.0, l2_pj_per_byte=0.0,
                               dram_pj_per_byte=0.0, active_power_w=0.0)
    p45 = horowitz_prices(H200)
    eqs = []
    for shape in ((4096, 4096, 4096), (1, 8192, 8192)):
        r = meas[shape]
        e_j = float(r["energy_mj_per_gemm"]) * 1e-3
        t_loop = e_j / float(r["avg_power_w"])
        t_full = min(t_loop, float(r["time_us"]) * 1e-6)
        ev = simulate_op(gemm_op("g", *shape), bare, "fp16")
        onchip = ev.ops["mac.fp16"] * p45["mac.fp16"] + sum(n * p45[key.split(".")[0]] for key, n in ev.accesses.items()
                                                             if not key.startswith("dram."))
        dram = sum(n for key, n in ev.accesses.items() if key.startswith("dram."))
        share = min(1.0, ev.extra.ctas / H200.sms)
        held = float(r["avg_power_w"]) >= 0.97 * 700
        v2 = np.interp(t_full / t_loop, *zip(*H200.vf_curve)) ** 2 if held else 1.0
        assert held == (shape == (4096, 4096, 4096))
        eqs.append((onchip * 1e-12 * v2, share * t_full * v2,
                    e_j - H200.static_power_w * t_loop - dram * 3.9 * 8 * 1e-12))
    (a11, a12, b1), (a21, a22, b2) = eqs
    det = a11 * a22 - a12 * a21
    assert c.k == pytest.approx((b1 * a22 - a12 * b2) / det, rel=1e-9)            # 0.5198
    assert c.active_power_w == pytest.approx((a11 * b2 - a21 * b1) / det, rel=1e-9)  # 52.97 W


def _measured(M, N, K):
    return next(m for m in read_measurements(H200_CSV) if (m.M, m.N, m.K, m.precision) == (M, N, K, "fp16"))


@pytest.mark.parametrize("name", ["t4", "a100", "h100", "h200"])
def test_8192_cubed_is_power_limited_where_published_runs_show_it(name):
    # h200: 690 W measured at a 700 W limit (NVML); a100: 258 TFLOPS with random inputs vs 295
    # with zeros (thonking.ai); t4: clocks fall to ~900 MHz under load (mlcommons/inference_results_v0.5#20)
    arch = PRESETS[name]
    free_s, capped_s, free = _hand_power_limit(arch, 8192, 8192, 8192)
    assert free.ops["mac.fp16"] == 8192 ** 3 and free.extra.ctas >= arch.sms     # every SM busy: share 1
    # by hand the full-clock kernel would draw more than the limit, so it runs at the limit
    assert capped_s > free_s
    ev = hwsim.simulate("gemm:8192,8192,8192:fp16", name)
    s = ev.summary()
    assert ev.rows[0]["bound"] == "power"
    assert s["time_us"] == pytest.approx(capped_s * 1e6, rel=1e-6)
    # (dynamic + active + idle x t) / t with t = (dynamic + active) / (limit - idle): the limit itself
    assert s["power_w"] == pytest.approx(arch.tdp_w, rel=1e-6)


def _hand_power_limit(arch, M, N, K):
    """(full-clock seconds, power-limited seconds, the op run without a limit) of an fp16 GEMM:
    its events at the preset's own per-event prices (each access at its level's read or write
    price, each FMA at mac_pj), plus the active power over the full-clock time (share 1). At
    clock share s the on-chip part costs v(s)^2 (v: the preset's voltage curve, interpolated
    linearly), the DRAM part does not, and the kernel takes max(T0 / s, its DRAM bytes at the
    achievable bandwidth); the clock is where idle + energy / time meets the limit, found by
    bisection here (with no curve, v = 1 and time = energy / (limit - idle))."""
    free = simulate_op(gemm_op("g", M, N, K, bits=16), dataclasses.replace(arch, tdp_w=0.0), "fp16")
    levels = arch.memory_levels()
    onchip = free.ops["mac.fp16"] * arch.mac_pj["fp16"]
    dram = dram_bytes = 0.0
    for key, n in free.accesses.items():
        lv = levels[key.split(".")[0]]
        e = n * ((lv.read_pj_per_byte if key.endswith(".reads") else lv.write_pj_per_byte) or 0.0)
        if key.startswith("dram."):
            dram, dram_bytes = dram + e, dram_bytes + n
        else:
            onchip += e
    full_s = free.cycles / (arch.clock_mhz * 1e6)
    e_v = onchip * 1e-12 + arch.active_power_w * full_s
    t_dram = dram_bytes / (arch.dram_gbs * arch.dram_efficiency * 1e9)
    assert free.extra.bound in ("compute", "memory") and free.extra.tile   # tensor cores or L2: DRAM overlapped

    def power(s):
        v = np.interp(s, *zip(*arch.vf_curve)) if arch.vf_curve else 1.0
        return arch.static_power_w + (e_v * v * v + dram * 1e-12) / max(full_s / s, t_dram)

    if power(1.0) <= arch.tdp_w:
        return full_s, full_s, free
    lo, hi = 0.1, 1.0
    for _ in range(60):
        lo, hi = ((lo + hi) / 2, hi) if power((lo + hi) / 2) <= arch.tdp_w else (lo, (lo + hi) / 2)
    return full_s, full_s / lo, free


def test_power_limit_stretches_a_kernel_by_hand():
    """With no voltage curve the voltage stays nominal: the kernel's energy is what it is at
    any clock, so it takes (dynamic + active energy) / (limit - idle)."""
    arch = dataclasses.replace(H200, tdp_w=400.0, vf_curve=())
    op = gemm_op("g", 8192, 8192, 8192, bits=16)
    free = simulate_op(op, dataclasses.replace(H200, tdp_w=0.0), "fp16")
    capped = simulate_op(op, arch, "fp16")
    dyn = sum(n * (arch.memory_levels()[k.split(".")[0]].read_pj_per_byte or 0) for k, n in free.accesses.items())
    dyn += free.ops["mac.fp16"] * arch.mac_pj["fp16"]
    # every SM busy: the dynamic energy and the active power's energy over the op's
    # full-clock time, delivered within 400 W - 81 W idle
    full_s = free.cycles / (arch.clock_mhz * 1e6)
    seconds = (dyn * 1e-12 + arch.active_power_w * full_s) / (400.0 - arch.static_power_w)
    assert capped.cycles == pytest.approx(seconds * arch.clock_mhz * 1e6, rel=1e-6)
    assert capped.cycles > free.cycles and capped.voltage == 1.0
    assert capped.extra.sm_clock_mhz == pytest.approx(arch.clock_mhz * free.cycles / capped.cycles, rel=1e-6)
    # the SM cycles charged active power are the op's own: as many cycles, at a lower clock
    assert capped.ops["active.sm_cycles"] == pytest.approx(free.ops["active.sm_cycles"], rel=1e-6)
    assert free.ops["active.sm_cycles"] == arch.sms * free.cycles


def test_active_power_is_charged_for_busy_sms():
    arch = dataclasses.replace(H200, tdp_w=0.0)                   # no limit: the kernel runs at full clock
    s = hwsim.simulate("gemm:8192,8192,8192:fp16", arch).summary()
    assert s["energy_active_pj"] == pytest.approx(H200.active_power_w * s["time_us"] * 1e6, rel=1e-6)
    # under the limit the clock drops: as many SM cycles, each at the lower voltage's v^2
    capped = hwsim.simulate("gemm:8192,8192,8192:fp16", "h200").summary()
    free_s, capped_s, _ = _hand_power_limit(H200, 8192, 8192, 8192)
    v = np.interp(free_s / capped_s, *zip(*H200.vf_curve))
    assert capped["time_us"] == pytest.approx(capped_s * 1e6, rel=1e-6)
    assert capped["energy_active_pj"] == pytest.approx(s["energy_active_pj"] * v * v, rel=1e-6)


def test_a_card_without_prices_is_priced_by_the_table_and_not_capped():
    bare = dataclasses.replace(PRESETS["a100"], mac_pj={}, rf_pj_per_byte=0.0, smem_pj_per_byte=0.0,
                               l2_pj_per_byte=0.0, dram_pj_per_byte=0.0, active_power_w=0.0)
    assert not bare.self_priced and bare.op_prices() == {}
    ev = hwsim.simulate("gemm:8192,8192,8192:fp16", bare)
    s = ev.summary()
    assert s["energy_active_pj"] == 0.0 and s["energy_by_level_pj"]["rf"] > 0
    assert ev.rows[0]["bound"] != "power" and "energy table" in bare.energy_model


def test_table_priced_presets_carry_the_energy_tables_prices():
    """v100 and t4 price themselves at what the energy table charged them (horowitz45 at 12 nm),
    so their power limit can apply; the table's numbers, re-derived here."""
    for name in ("v100", "t4"):
        arch, c = PRESETS[name], table_prices(PRESETS[name])
        for p, v in c.mac_pj.items():
            assert arch.mac_pj[p] == pytest.approx(v, rel=2e-3), (name, p)
        for f in ("rf_pj_per_byte", "smem_pj_per_byte", "l2_pj_per_byte", "dram_pj_per_byte"):
            assert getattr(arch, f) == pytest.approx(getattr(c, f), rel=2e-3), (name, f)
        assert arch.active_power_w == 0.0


def test_a100_carries_the_h200_calibration_by_tsmcs_process_power():
    c = calibrate(H200, read_measurements(H200_CSV), dram_pj_per_bit=3.9)
    a100 = PRESETS["a100"]
    t = transfer(c, H200, a100)
    assert t.k == pytest.approx(c.k * PROCESS_POWER[7] / PROCESS_POWER[4])
    # by hand: 189.4 W x 0.40/0.28 x (54.2 x 108/128) / (80 x 132/144) x 1410/1830
    assert t.active_power_w == pytest.approx(c.active_power_w * (0.40 / 0.28) * (54.2 * 108 / 128) / (80 * 132 / 144)
                                             * 1410 / 1830)
    for p, v in t.mac_pj.items():
        assert a100.mac_pj[p] == pytest.approx(v, rel=2e-3), p
    for f in ("rf_pj_per_byte", "smem_pj_per_byte", "l2_pj_per_byte", "dram_pj_per_byte", "active_power_w"):
        assert getattr(a100, f) == pytest.approx(getattr(t, f), rel=2e-3), f
    # the same die keeps the calibration; an unknown node or missing die data is refused
    same = transfer(c, H200, PRESETS["h100"])
    assert same.k == pytest.approx(c.k) and same.active_power_w == pytest.approx(c.active_power_w * 1830 / 1830)
    with pytest.raises(HwsimError, match="no published process power"):
        transfer(c, H200, dataclasses.replace(a100, technology_nm=10))
    with pytest.raises(HwsimError, match="die_transistors_b"):
        transfer(c, H200, dataclasses.replace(a100, die_sms=0))


def test_bad_own_price_fields_are_refused():
    with pytest.raises(HwsimError, match="mac_pj"):
        dataclasses.replace(H200, mac_pj={"fp16": 0.4})            # bf16, tf32, fp8, int8 missing
    with pytest.raises(HwsimError, match="tdp_w"):
        dataclasses.replace(H200, tdp_w=80.0)                       # below the 81 W idle
    with pytest.raises(HwsimError, match="die_sms"):
        dataclasses.replace(H200, die_sms=-1)
    with pytest.raises(HwsimError, match="mma_mnk"):
        dataclasses.replace(PRESETS["a100"], mma_mnk=(16, 0, 32))   # n 0 needs operands in smem


def test_the_transfer_fails_its_check_at_12_nm_so_v100_keeps_the_table_prices():
    """Carried to V100 by TSMC's process power (16FF+ class vs N5: 1 / 0.28), the H200
    calibration makes 8192^3 fp16 power-limited at well under half the published 97 TFLOPS;
    the preset therefore keeps the energy table's prices (how close it then lands is the
    corpus's fit row v100-gemm-8192x8192x8192-fp16-tflops-published, not a test band)."""
    c = calibrate(H200, read_measurements(H200_CSV), dram_pj_per_bit=3.9)
    v100 = PRESETS["v100"]
    t = transfer(c, H200, v100)
    carried = dataclasses.replace(v100, **t.fields())
    flops = 2 * 8192 ** 3
    tflops = lambda a: flops / (hwsim.simulate("gemm:8192,8192,8192:fp16", a).summary()["time_us"] * 1e6)  # noqa: E731
    # carried prices: by hand the kernel's energy cannot be delivered in its full-clock time
    # within 300 W - 56.6 W idle, so it runs for (dynamic + active) / (limit - idle)
    free_s, capped_s, _ = _hand_power_limit(carried, 8192, 8192, 8192)
    assert capped_s > free_s
    assert tflops(carried) == pytest.approx(flops / capped_s / 1e12, rel=1e-6)
    assert tflops(carried) < 0.5 * 97.36
    # table prices (no active power): by hand it fits under the limit, so it runs at full clock
    free_s, capped_s, _ = _hand_power_limit(v100, 8192, 8192, 8192)
    assert capped_s == free_s
    assert tflops(v100) == pytest.approx(flops / free_s / 1e12, rel=1e-9)


def test_nchw_layout_adds_two_transposes_per_tensor_core_conv():
    """PyTorch's default NCHW: cuDNN transposes a tensor-core conv's input to NHWC and its
    output back, a memory-bound kernel each with its own launch. By hand for a 3x3 conv of
    1 x 64 x 56 x 56 -> 64 channels in fp16 on h200 (no power limit): input and output are
    64 x 56 x 56 x 2 B each; each is read and written once more."""
    from workloads.build import conv_op
    op = conv_op("c", 1, 64, 56, 56, 64, 3, 3, pad=1, bits=16)
    free = dataclasses.replace(H200, tdp_w=0.0)
    nhwc = simulate_op(op, free, "fp16")
    nchw = simulate_op(op, dataclasses.replace(free, layout="nchw"), "fp16")
    t = 64 * 56 * 56 * 2
    extra = math.ceil(2 * (t + t) / free.dram_bytes_per_clk + 2 * free.kernel_overhead_us * free.clock_mhz)
    assert nchw.cycles - nhwc.cycles == extra
    assert nchw.accesses["dram.input.reads"] - nhwc.accesses["dram.input.reads"] == t
    assert nchw.accesses["dram.input.writes"] == t and "dram.input.writes" not in nhwc.accesses
    assert nchw.accesses["dram.output.reads"] - nhwc.accesses["dram.output.reads"] == t
    assert nchw.accesses["dram.output.writes"] - nhwc.accesses["dram.output.writes"] == t
    assert (nchw.extra.kernels, nhwc.extra.kernels) == (3, 1)
    # a depthwise conv (CUDA cores) and a GEMM are not transposed
    dw = conv_op("d", 1, 64, 56, 56, 64, 3, 3, pad=1, groups=64, bits=16)
    g = gemm_op("g", 256, 256, 256, bits=16)
    for o in (dw, g):
        assert simulate_op(o, dataclasses.replace(free, layout="nchw"), "fp16").cycles == simulate_op(o, free, "fp16").cycles
    with pytest.raises(HwsimError, match="layout"):
        dataclasses.replace(H200, layout="chwn")


def _attention(causal=0):
    from workloads.trace import Op, Operand
    dims = {"B": 1, "H": 2, "Hkv": 2, "Lq": 256, "Lk": 256, "E": 64, "Ev": 64, "causal": causal, "backward": 0}
    shape = (1, 2, 256, 64)
    return Op("a", "attention", "sdpa", dims, operands=tuple(Operand(r, shape, 16, "float")
                                                             for r in ("input", "input2", "input3", "output")))


def test_fused_attention_traffic_by_hand():
    """FlashAttention forward, 2 heads of 256 x 64 in fp16 on a100, 128 x 128 blocks:
    * L2 -> shared memory: Q once (2 x 256 x 64 x 2 B = 64 KiB); K and V once per query
      block (2 blocks): 128 KiB each;
    * QK^T: 256 x 256 x 64 FMAs per head at a 128 x 128 tile (64 x 64 warp tiles): A and B
      each 2 B / 64 per FMA from shared memory into registers; mma.sync m16n8k16 reads A
      2/8 B and B 2/16 B per FMA; the fp32 scores read and written 4 B / 16 per FMA;
    * PV: 256 x 64 x 256 FMAs per head at a 128 x 64 tile, the same rates, B being V."""
    a100 = PRESETS["a100"]
    r = simulate_op(_attention(), a100, "fp16")
    a = r.accesses
    kib = 1024
    assert a["l2_sram.input.reads"] == a["smem.input.writes"] == 64 * kib
    assert a["l2_sram.input2.reads"] == a["smem.input2.writes"] == 128 * kib
    assert a["l2_sram.input3.reads"] == a["smem.input3.writes"] == 128 * kib
    f = 2 * 256 * 256 * 64                                   # FMAs of each of the two GEMMs
    assert a["smem.input.reads"] == pytest.approx(2 * f * 2 / 64)             # A of both GEMMs
    assert a["smem.input2.reads"] == a["smem.input3.reads"] == pytest.approx(f * 2 / 64)
    assert a["rf.input.reads"] == pytest.approx(2 * f * 2 / 8)
    assert a["rf.input2.reads"] == a["rf.input3.reads"] == pytest.approx(f * 2 / 16)
    assert a["rf.output.reads"] == a["rf.output.writes"] == pytest.approx(2 * f * 4 / 16)
    # a causal mask skips the blocks above the diagonal: (2 + 1) / (2 x 2) of them here
    c = simulate_op(_attention(causal=1), a100, "fp16").accesses
    assert c["rf.output.reads"] == pytest.approx(a["rf.output.reads"] * 3 / 4)
    assert c["l2_sram.input2.reads"] == pytest.approx(a["l2_sram.input2.reads"] * 3 / 4)
    assert c["l2_sram.input.reads"] == a["l2_sram.input.reads"]


def test_cuda_core_depthwise_reads_three_registers_per_fma():
    from workloads.build import conv_op
    op = conv_op("d", 1, 64, 56, 56, 64, 3, 3, pad=1, groups=64, bits=16)
    r = simulate_op(op, H200, "fp16")
    fmas = 64 * 56 * 56 * 9
    assert r.ops["fma.fp16"] == fmas
    assert r.accesses["rf.input.reads"] == r.accesses["rf.weight.reads"] == r.accesses["rf.output.reads"] \
        == r.accesses["rf.output.writes"] == 4 * fmas

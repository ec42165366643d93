"""The board power manager (sim.gpu.dvfs): the voltage-frequency curve derived from its
measurement, a kernel mix held at the card's limit, energy at the voltage a kernel ran at,
and kernels that the clock does not slow."""

import dataclasses
import math

import numpy as np
import pytest

import hwsim
from sim.gpu import PRESETS
from sim.gpu.dvfs import A100_PCIE_POWER, GA100_VF
from sim.gpu.simulate import simulate_op
from workloads import HwsimError
from workloads.build import gemm_op, vector_op
from workloads.trace import Workload

A100 = PRESETS["a100"]


def test_ga100_curve_from_the_power_table_by_hand():
    """Power at locked clocks of one kernel: P = P0 + c V^2 f. Below the knee (1005 MHz) V is
    constant; a straight line through the table's 210 and 1005 MHz points (not sim.gpu.dvfs's
    least squares over seven) gives P0 and c, and above the knee V / V_knee = sqrt((P - P0) /
    (c f)). The derived curve must agree to 1%, and be flat below the knee."""
    table = dict(A100_PCIE_POWER)
    c = (table[1005] - table[210]) / (1005 - 210)           # 0.0454 W/MHz
    p0 = table[210] - c * 210                               # 32.5 W
    rise = {f: math.sqrt((table[f] - p0) / (c * f)) for f in (1140, 1275, 1410)}
    assert rise[1410] == pytest.approx(1.374, abs=2e-3)     # the top voltage over the knee's
    curve = dict(GA100_VF)
    for f in (1140, 1275):
        assert curve[f / 1410] == pytest.approx(rise[f] / rise[1410], rel=1e-2)
    knee = curve[1005 / 1410]
    assert knee == pytest.approx(1 / rise[1410], rel=1e-2)  # 0.726 of the top voltage
    assert all(v == knee for s, v in GA100_VF if s <= 1005 / 1410)
    assert GA100_VF[-1] == (1.0, 1.0)


def _nominal(arch, op):
    """The op at the nominal clock (no limit), and its on-chip event and DRAM energy (J) and
    DRAM bytes, priced by hand from the preset's per-event prices (active power apart)."""
    free = simulate_op(op, dataclasses.replace(arch, tdp_w=0.0))
    levels = arch.memory_levels()
    onchip = sum(n * arch.op_prices().get(k, 0.0) for k, n in free.ops.items() if not k.startswith("active."))
    dram = dram_bytes = 0.0
    for key, n in free.accesses.items():
        lv = levels[key.split(".")[0]]
        e = n * (lv.read_pj_per_byte if key.endswith(".reads") else lv.write_pj_per_byte)
        if key.startswith("dram."):
            dram, dram_bytes = dram + e, dram_bytes + n
        else:
            onchip += e
    return free, onchip * 1e-12, dram * 1e-12, dram_bytes


def test_a_gemm_and_an_element_wise_kernel_settle_at_the_limit_together():
    """A loop of an 8192^3 fp16 GEMM (over the 400 W limit on its own) and a DRAM-bound
    element-wise kernel over 2^28 fp16 values: the manager holds the loop's average power at
    400 W with one clock for both. By hand: at clock share s the GEMM takes T0 / s, the
    element-wise kernel its DRAM time plus the rest / s; on-chip energy x v(s)^2 (the preset's
    curve, interpolated), active power per SM cycle held; bisection for idle + energy / time = 400 W. The GEMM then runs at a
    higher clock than alone, and the whole run's power (hwsim's energy / time) is 400 W."""
    gemm = gemm_op("g", 8192, 8192, 8192, bits=16)
    ew = vector_op("gelu", "activation", "gelu", 2 ** 28, bits=16, producers=("g",))
    parts = []
    for op in (gemm, ew):
        free, onchip, dram, dram_bytes = _nominal(A100, op)
        t0 = free.cycles / (A100.clock_mhz * 1e6)
        parts.append((free, t0, dram_bytes / (A100.dram_gbs * A100.dram_efficiency * 1e9), onchip, dram))
    (g, g_t0, g_td, _, _), (e, e_t0, e_td, _, _) = parts
    assert e.extra.bound == "memory" and e_td >= 0.75 * e_t0 and g_td < 0.75 * g_t0

    def times(s):
        return max(g_t0 / s, g_td), e_td + (e_t0 - e_td) / s

    def power(s):
        # events at v^2, DRAM as is, and the active power (every SM busy in both kernels) over
        # the SM cycles each holds, its time x the clock, at v^2
        v = np.interp(s, *zip(*A100.vf_curve))
        assert min(p[0].extra.ctas for p in parts) >= A100.sms
        energy = sum(p[3] * v * v + p[4] + A100.active_power_w * t * s * v * v for p, t in zip(parts, times(s)))
        return A100.static_power_w + energy / sum(times(s))

    lo, hi = 0.1, 1.0
    for _ in range(60):
        lo, hi = ((lo + hi) / 2, hi) if power((lo + hi) / 2) <= A100.tdp_w else (lo, (lo + hi) / 2)
    run = hwsim.simulate(Workload("mix", (gemm, ew)), A100)
    rg, re_ = run.result.ops
    assert rg.extra.sm_clock_mhz == re_.extra.sm_clock_mhz == pytest.approx(lo * A100.clock_mhz, rel=1e-6)
    assert rg.time_us * 1e-6 == pytest.approx(times(lo)[0], rel=1e-6)
    assert re_.time_us * 1e-6 == pytest.approx(times(lo)[1], rel=1e-6)
    assert rg.voltage == pytest.approx(np.interp(lo, *zip(*A100.vf_curve)), rel=1e-9)
    alone = simulate_op(gemm, A100)
    assert rg.extra.sm_clock_mhz > alone.extra.sm_clock_mhz
    s = run.summary()
    assert s["power_w"] == pytest.approx(A100.tdp_w, rel=1e-5)


def test_energy_per_event_falls_with_the_square_of_the_voltage():
    """The same GEMM at the limit and without it: every on-chip level and the MACs cost v^2 of
    their nominal energy, DRAM the same bytes at the same price."""
    op = gemm_op("g", 8192, 8192, 8192, bits=16)
    free = hwsim.simulate(Workload("g", (op,)), dataclasses.replace(A100, tdp_w=0.0)).rows[0]
    held = hwsim.simulate(Workload("g", (op,)), A100)
    r, row = held.result.ops[0], held.rows[0]
    v2 = np.interp(r.extra.sm_clock_mhz / A100.clock_mhz, *zip(*A100.vf_curve)) ** 2
    assert v2 < 0.75 and r.extra.bound == "power"
    for col in ("energy_compute_pj", "energy_rf_pj", "energy_smem_pj", "energy_l2_sram_pj", "energy_active_pj"):
        assert row[col] == pytest.approx(free[col] * v2, rel=1e-6), col
    assert row["energy_dram_pj"] == pytest.approx(free["energy_dram_pj"], rel=1e-9)


def test_a_kernel_under_the_limit_runs_at_the_nominal_clock_and_voltage():
    """A 1 x 8192 x 8192 GEMV draws far less than 400 W: no clock change, no voltage change."""
    r = simulate_op(gemm_op("g", 1, 8192, 8192, bits=16), A100)
    free, onchip, dram, _ = _nominal(A100, gemm_op("g", 1, 8192, 8192, bits=16))
    t0 = free.cycles / (A100.clock_mhz * 1e6)
    active = A100.active_power_w * min(1.0, free.extra.ctas / A100.sms)
    assert A100.static_power_w + active + (onchip + dram) / t0 < A100.tdp_w
    assert r.cycles == free.cycles and r.voltage == 1.0 and r.extra.sm_clock_mhz == A100.clock_mhz


def test_bad_voltage_curves_are_refused():
    for curve, word in [(((0.5, 0.8), (0.4, 0.9), (1.0, 1.0)), "rise"), (((0.5, 0.8), (0.9, 0.7), (1.0, 1.0)), "rise"),
                        (((0.5, 0.8), (0.9, 0.95)), "last point"), (((0.0, 0.5), (1.0, 1.0)), "in \\(0, 1\\]"),
                        (((0.5, 1.0, 2.0),), "pairs")]:
        with pytest.raises(HwsimError, match=word):
            dataclasses.replace(A100, vf_curve=curve)


def test_a_burst_runs_at_the_nominal_clock_and_is_a_design_field(tmp_path, capsys):
    """power: burst (a run shorter than the limiter's window) runs every kernel at the nominal
    clock and voltage, as with no limit at all; the field is set from a YAML design and a
    value it does not know is refused in one line naming it."""
    from analysis.cli import main
    op = gemm_op("g", 8192, 8192, 8192, bits=16)
    free = simulate_op(op, dataclasses.replace(A100, tdp_w=0.0))
    burst = simulate_op(op, dataclasses.replace(A100, power="burst"))
    assert burst.cycles == free.cycles and burst.voltage == 1.0 and burst.extra.sm_clock_mhz == A100.clock_mhz
    assert simulate_op(op, A100).cycles > free.cycles
    y = tmp_path / "burst.yaml"
    y.write_text("base: a100\npower: burst\n")
    assert main(["simulate", "gemm:8192,8192,8192:fp16", "--arch", str(y), "--format", "csv"]) == 0
    assert f"{free.cycles}" in capsys.readouterr().out
    y.write_text("base: a100\npower: cold\n")
    assert main(["simulate", "gemm:64,64,64", "--arch", str(y)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "power" in err[0] and "burst" in err[0]

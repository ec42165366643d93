"""Energy model (hand-computed cases, tables, node scaling), reports and compare."""

import json
import math

import pandas as pd
import pytest

from analysis.energy import load_table
from analysis.technology import node_factor
from analysis.report import compare, evaluate, write_report
from sim.systolic import SystolicArch
from workloads import HwsimError
from workloads.build import gemm_op
from workloads.trace import Workload

H45 = load_table("horowitz45")


def test_hand_computed_small_gemm_on_a_4x4_array():
    arch = SystolicArch(name="tiny", rows=4, cols=4, dataflow="ws", ifmap_sram_kib=64, filter_sram_kib=64,
                        ofmap_sram_kib=64, technology_nm=45)
    wl = Workload("g", (gemm_op("g", 4, 4, 4, bits=8, dtype="int"),))
    ev = evaluate(wl, arch, "horowitz45")
    # by hand: one fold. SRAM bytes: ifmap 16 read + 16 filled, filter 16 + 16, accumulators
    # 64 written (4x4 int32 psums) + 64 read out; DRAM: 16 in, 16 weights, 16 out.
    sram_pj_64b = 20 * (64 / 32) ** (math.log(100 / 20) / math.log(1024 / 32))   # 64 KiB on Horowitz's curve
    expected = (192 * sram_pj_64b / 8          # SRAM
                + 48 * 8 * 20.3                # DDR3, 20.3 pJ/bit
                + 64 * (0.2 + 0.1))            # int8 multiply + 32-bit accumulate
    row = ev.rows[0]
    assert row["energy_pj"] == pytest.approx(expected, rel=1e-9)
    parts = row["energy_compute_pj"] + row["energy_static_pj"] + sum(
        row[f"energy_{lv}_pj"] for lv in ("ifmap_sram", "filter_sram", "ofmap_sram", "dram"))
    assert parts == pytest.approx(row["energy_pj"], rel=1e-12)
    ops = row["energy_input_pj"] + row["energy_weight_pj"] + row["energy_output_pj"] + row["energy_compute_pj"]
    assert ops == pytest.approx(row["energy_pj"], rel=1e-12)


def test_published_ratios():
    int8_mac, fp32_mac = H45.op_pj("mac.int8"), H45.op_pj("mac.fp32")
    assert (int8_mac, fp32_mac) == pytest.approx((0.3, 4.6))
    assert fp32_mac / int8_mac == pytest.approx(15.33, rel=0.01)
    # a 64-bit DRAM access vs a 64-bit 32 KB SRAM access: 1.3 nJ vs 20 pJ
    dram64 = H45.level_pj_per_byte("dram", dram="ddr3") * 8
    sram64 = H45.level_pj_per_byte("sram", 32 * 1024) * 8
    assert (dram64, sram64) == pytest.approx((1299.2, 20.0))
    # Han's table: 32-bit DRAM 640 pJ vs 32-bit 32 KB SRAM 5 pJ = 128x
    han = load_table("han45")
    assert han.level_pj_per_byte("dram", dram="lpddr") / han.level_pj_per_byte("sram", 32 * 1024) == pytest.approx(128)
    # the SRAM curve passes through its points and interpolates by a power law
    assert H45.sram_pj_64b(8 * 1024) == pytest.approx(10)
    assert H45.sram_pj_64b(16 * 1024) == pytest.approx(10 * math.sqrt(2))


def test_node_scaling_is_dennard_with_nominal_vdd():
    """E ~ L x Vdd^2 at each node's nominal supply: PTM's 1.0 V at 45 nm, PTM-MG's 0.7 V at 7 nm;
    28 nm between PTM's 32 nm (0.9 V) and 22 nm (0.8 V): 0.86 V. Horowitz's table states its own
    0.9 V, which moving it starts from; at its own node it stays as written."""
    assert node_factor(45, 28) == pytest.approx(28 / 45 * (0.86 / 1.0) ** 2)
    assert node_factor(45, 7) == pytest.approx(7 / 45 * (0.7 / 1.0) ** 2)
    assert node_factor(45, 7, from_vdd=0.9) == pytest.approx(7 / 45 * (0.7 / 0.9) ** 2)
    t7 = H45.at_node(7)
    assert t7.op_pj("mul.int8") == pytest.approx(0.2 * 7 / 45 * (0.7 / 0.9) ** 2)
    assert H45.at_node(45).op_pj("mul.int8") == 0.2
    # moved twice, the prices are those of one move from the figures as written
    assert H45.at_node(28).at_node(7).op_pj("mul.int8") == pytest.approx(t7.op_pj("mul.int8"))


def test_eyeriss_relative_table():
    ey = load_table("eyeriss65")
    mac = ey.mac_pj()
    assert ey.level_pj_per_byte("dram") * 2 == pytest.approx(200 * mac)
    assert ey.level_pj_per_byte("sram", 1e6) * 2 == pytest.approx(6 * mac)
    assert ey.level_pj_per_byte("noc") * 2 == pytest.approx(2 * mac)


@pytest.mark.parametrize("text, message", [
    ("name: x\ntechnology_nm: 45\nsource: s\n", "ops: missing"),
    ("name: x\ntechnology_nm: 45\nsource: s\nops: {add.int8: -1}\nsram: []\n", "ops.add.int8"),
    ("name: x\ntechnology_nm: 45\nsource: s\nops: {add.int8: 1}\n", "sram: needs capacity points"),
    ("name: x\ntechnology_nm: 45\nsource: s\nops: {add.int8: 1}\nsram: [{capacity_kib: 8}]\n", "sram[0]"),
    ("{{", "not valid YAML"),
])
def test_bad_tables_are_named(tmp_path, text, message):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(HwsimError) as e:
        load_table(str(p))
    assert message in str(e.value) and str(p) in str(e.value)


def test_user_table_and_unknown_name(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("name: mine\ntechnology_nm: 45\nsource: test\nops: {add.int8: 1, mul.int8: 2, add.int32: 3}\n"
                 "sram: [{capacity_kib: 1, pj_per_64b: 8}, {capacity_kib: 4, pj_per_64b: 16}]\n"
                 "dram_pj_per_bit: {ddr3: 10}\n")
    t = load_table(str(p))
    assert t.op_pj("mac.int8") == 5 and t.sram_pj_64b(2048) == pytest.approx(8 * math.sqrt(2))
    with pytest.raises(HwsimError, match="unknown energy table"):
        load_table("nope")


def test_report_files_and_totals(tmp_path):
    from workloads import resolve
    ev = evaluate(resolve("mlp1"), "tpu-v1")
    out = write_report(ev, tmp_path)
    for f in ("ops.csv", "summary.json", "summary.csv", "report.html", "energy_breakdown.png", "latency.png",
              "roofline.png", "utilization.png"):
        assert (out / f).stat().st_size > 0
    ops = pd.read_csv(out / "ops.csv")
    summ = json.loads((out / "summary.json").read_text())
    assert ops.energy_pj.sum() == pytest.approx(summ["energy_pj"])
    assert ops.cycles.sum() == summ["cycles"]
    assert sum(summ["energy_by_level_pj"].values()) + summ["energy_compute_pj"] + summ["energy_static_pj"] == \
        pytest.approx(summ["energy_pj"])
    # TPU static power: 28 W over the run
    assert summ["energy_static_pj"] == pytest.approx(28 * summ["time_us"] * 1e6)
    assert "data:image/png;base64" in (out / "report.html").read_text()


def test_a_report_says_whose_prices_it_used(tmp_path):
    """A GPU preset prices its own events; the report says so and where they come from."""
    from workloads import resolve
    page = write_report(evaluate(resolve("mlp1"), "a100"), tmp_path / "a").joinpath("report.html").read_text()
    assert "own per-event energies (the H200 calibration carried from TSMC 4N to N7" in page
    assert "the 400 W power limit held by lowering clock and voltage" in page and "prices the rest" in page
    page = write_report(evaluate(resolve("mlp1"), "tpu-v1"), tmp_path / "t").joinpath("report.html").read_text()
    assert "Energy table horowitz45 at 28 nm" in page


def test_compare_two_designs(tmp_path):
    from workloads import resolve
    wl = resolve("gemm:256,256,256:int8")
    df = compare([evaluate(wl, "systolic-16"), evaluate(wl, "systolic-128")], tmp_path, ["small", "big"])
    assert list(df.design) == ["small", "big"]
    # by hand, weight stationary. systolic-16 (500 MHz, 4 B/cycle): 16 K x 16 N tiles of
    # 16 x 16, and M cut into 2 chunks of 128 rows (8 KiB, half the 16 KiB accumulators, of
    # 16 32-bit sums a row): 512 folds; the 32 KiB SRAMs hold neither operand, so DRAM
    # moves the weights once per chunk (2 x 64 KiB), the input once per N tile (16 x 64 KiB)
    # and the output once; the array's last fold (shift 16, stream 128, drain 16 + 16 - 2)
    # follows the last byte. systolic-128 (1 GHz, 50 B/cycle): 2 x 2 folds, its 6 MiB SRAMs
    # hold everything, so each operand crosses DRAM once and DRAM bounds the time
    mib = 256 * 256
    small = (2 * mib + 16 * mib + mib) / 4.0 + 16 + 128 + (16 + 16 - 2)          # 311,470 cycles
    big = 3 * mib / 50.0                                                          # 3,932 cycles
    assert df.time_us[0] == pytest.approx(small / 500.0, rel=1e-6)
    assert df.time_us[1] == pytest.approx(big / 1000.0, rel=0.002)
    assert (tmp_path / "compare.png").exists() and (tmp_path / "compare.csv").exists()


def test_compare_page_shows_each_design_and_where_its_energy_goes(tmp_path):
    """compare.html: one row per design with the CSV's figures, names escaped; the stacked
    energy plot's parts add up to each design's energy per sample."""
    import html
    import re

    from analysis.plots import compare_energy
    from workloads import resolve
    wl = resolve("mlp1")
    evs = [evaluate(wl, "tpu-v1"), evaluate(wl, "a100")]
    df = compare(evs, tmp_path, ["tpu<v1>", "a100"])
    page = (tmp_path / "compare.html").read_text()
    assert "tpu&lt;v1&gt;" in page and "tpu<v1>" not in page          # a label is text, never markup
    rows = re.findall(r"<tr>(<td.*?)</tr>", page)
    assert len(rows) == 2
    for row, (_, r) in zip(rows, df.iterrows()):
        keys = dict(zip(["design", "machine", "time", "sps", "tops", "util", "energy", "power", "dram"],
                        re.findall(r'data-v="([^"]*)"', row)))
        assert html.unescape(keys["design"]) == r.design
        assert float(keys["energy"]) == pytest.approx(r.energy_per_sample_uj)
        assert float(keys["energy"]) == pytest.approx(evs[_].energy_total["energy_pj"] / wl.batch / 1e6)
    assert page.count("<img") == 2 and "How each design was priced" in page
    fig = compare_energy(evs, ["tpu", "a100"])
    stacked = {}
    for patch in fig.axes[0].patches:
        x = round(patch.get_x() + patch.get_width() / 2)
        stacked[x] = stacked.get(x, 0.0) + patch.get_height()
    for i in range(2):
        assert stacked[i] == pytest.approx(df.energy_per_sample_uj[i], rel=1e-9)


def test_cnn_vs_mlp_energy_on_tpu():
    from workloads import resolve
    mlp = evaluate(resolve("mlp0"), "tpu-v1").summary()
    cnn = evaluate(resolve("cnn0"), "tpu-v1").summary()
    # MLP0 moves each weight byte from DDR3 for 200 MACs; CNN0 for 2888: DRAM dominates the MLP.
    # By hand, at the energy table's DDR3 20.3 pJ/bit (activations stay in the unified
    # buffer): MLP0's 5 x 2000 x 2000 int8 weights once; CNN0's (AlphaGo's 5 x 5 x 48 x 247, 14
    # 3 x 3 x 247 x 247 and 1 x 1 x 247 x 1) twice, as their 8 x 19 x 19 = 2888 rows exceed the 2048
    # (half the 4 MiB of 256 32-bit accumulators) one weight tile can stream, except the last
    # layer's single 247 x 1 tile, which stays in the array for both halves
    weights = 25 * 48 * 247 + 14 * 9 * 247 * 247 + 247
    assert mlp["energy_by_level_pj"]["dram"] == pytest.approx(5 * 2000 * 2000 * 8 * 20.3, rel=1e-9)     # 3.25 mJ
    assert cnn["energy_by_level_pj"]["dram"] == pytest.approx((2 * weights - 247) * 8 * 20.3, rel=1e-9)  # 2.59 mJ
    assert mlp["macs"] == 5 * 200 * 2000 * 2000 and cnn["macs"] == 2888 * weights
    share = lambda s: s["energy_by_level_pj"]["dram"] / (s["energy_pj"] - s["energy_static_pj"])  # noqa: E731
    assert share(mlp) > share(cnn)


def test_cli_compare_compression_choices(tmp_path, capsys):
    import io

    from analysis.cli import main
    plan = tmp_path / "p10.yaml"
    plan.write_text("default: {keep: 0.1, weight_bits: 4}\n")
    assert main(["compare", "lenet300", "--arch", "eie-64", "--compress", str(plan), "--format", "csv",
                 "-o", str(tmp_path / "c")]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out.split("wrote")[0]))
    assert list(df.design) == ["eie-64", "eie-64+p10"]
    # EIE skips the 90% pruned weights. By hand (64 PEs, 8-deep queues, 4-stage pipeline): a
    # layer takes its busiest PE's work + 4 cycles (+ a little starvation when pruned); PE k
    # holds rows k, k + 64, ... and works max(1, its non-zeros in the column) cycles per
    # non-zero activation (no zero run of 16 in its <= 5 rows of a layer); round(density x K)
    # activations are non-zero, here spread evenly over the columns; a ReLU of n values takes
    # ceil(n / 64) cycles. Dense: 784 x 5 + 4, 158 x 2 + 4, 52 x 1 + 4 and 5 + 2 = 4307 cycles
    import math

    import numpy as np

    from analysis.simulate import compressed
    from workloads import resolve

    def hand(wl):
        cycles = 0.0
        for op in wl.ops:
            if not op.is_gemm:
                cycles += math.ceil(op.dims["elements"] / 64)
                continue
            g, w = op.gemm, op.operand("weight")
            mask = np.ones((g.N, g.K), bool) if w.values is None else np.asarray(w.values).reshape(g.N, g.K) != 0
            busiest = max(np.maximum(1, mask[k::64].sum(axis=0)).sum() for k in range(64))
            cycles += busiest * round(op.operand("input").density * g.K) / g.K + 4
        return cycles
    dense, pruned = hand(resolve("lenet300")), hand(compressed("lenet300", str(plan), 0))
    assert df.cycles[0] == dense == 4307
    assert df.cycles[1] == pytest.approx(pruned, rel=0.02)                         # 1114 vs 1104
    assert df.time_us[0] / df.time_us[1] == pytest.approx(dense / pruned, rel=0.02)   # 3.87 vs 3.90


def test_dram_energy_does_not_follow_the_logic_node():
    """A DRAM access costs what the DRAM device and interface cost (the table's figure per
    type): moving the accelerator's logic from 45 nm to 7 nm scales its SRAM and MAC energy
    (Dennard, the VDD table), not its HBM's."""
    from analysis.energy import load_table
    t45 = load_table("horowitz45")
    t7 = t45.at_node(7)
    assert t7.level_pj_per_byte("dram", dram="hbm2") == t45.level_pj_per_byte("dram", dram="hbm2") == 3.9 * 8
    assert t7.level_pj_per_byte("sram", 64 * 1024) == pytest.approx(
        t45.level_pj_per_byte("sram", 64 * 1024) * node_factor(45, 7, from_vdd=0.9))


def _small_gemm(arch):
    from sim.registry import simulate
    wl = Workload("g", (gemm_op("g", 1024, 1024, 1024, bits=16),))
    r = simulate(wl, arch).ops[0]
    by = {lv: sum(v for k, v in r.accesses.items() if k.startswith(lv + ".")) for lv in ("rf", "smem", "l2_sram", "dram")}
    return r, by, evaluate(wl, arch).rows[0]


def test_a_small_gemm_on_a100_level_by_level():
    """1024 x 1024 x 1024 fp16 on a100, at its own prices (the H200 calibration carried to
    N7), each level by hand:
    * the on-chip scale k: the H200's (re-derived from its NVML file) x 0.40 / 0.28, TSMC's
      power at the same speed on N7 and on N5 relative to 16FF+;
    * MACs: 1024^3 x (1.1 pJ fp16 multiply + 0.9 pJ fp32 add, Horowitz 45 nm) x k;
    * register file, shared memory, L2: the model's bytes (counted by hand in
      tests/test_gpu_power.py) x Horowitz's SRAM curve (20 pJ per 64 bits at 32 KB, 100 at
      1 MiB, energy as capacity^(log(100/20)/log(1024/32))) at a 64 KB SM sub-partition
      register file, the 164 KB shared memory and the 40 MiB L2, / 8 per byte, x k;
    * HBM: the model's DRAM bytes x 3.9 pJ/bit x 8 (O'Connor et al. 2017; not node-scaled);
    * active: the model's busy SM cycles (counted in tests/test_gpu_power.py) x the H200's active power
      x 0.40/0.28 x enabled transistors (54.2 B x 108/128 over 80 B x 132/144) x clock
      (1410/1830), per SM cycle: / (108 SMs x 1410 MHz);
    * idle: 50.5 W x the kernel's time.
    The preset keeps 4 digits of each price, hence rel=2e-3. Run without the power limit, at
    the nominal clock and voltage (the power manager's clock and voltage: tests/test_gpu_dvfs.py)."""
    import dataclasses

    from analysis.gpu_calibration import calibrate, read_measurements
    from sim.gpu import PRESETS
    a100 = dataclasses.replace(PRESETS["a100"], tdp_w=0.0)
    r, by, row = _small_gemm(a100)
    h200 = calibrate(PRESETS["h200"], read_measurements("benchmarks/data/NVIDIA_H200_matmul.csv"), dram_pj_per_bit=3.9)
    k = h200.k * 0.40 / 0.28
    alpha = math.log(100 / 20) / math.log(1024 / 32)
    sram = lambda kib: 20 * (kib / 32) ** alpha / 8 * k            # noqa: E731
    assert row["energy_compute_pj"] == pytest.approx(1024 ** 3 * (1.1 + 0.9) * k, rel=2e-3)
    assert by["rf"] > 0 and by["smem"] > 0
    assert row["energy_rf_pj"] == pytest.approx(by["rf"] * sram(64), rel=2e-3)
    assert row["energy_smem_pj"] == pytest.approx(by["smem"] * sram(164), rel=2e-3)
    assert row["energy_l2_sram_pj"] == pytest.approx(by["l2_sram"] * sram(40 * 1024), rel=2e-3)
    assert row["energy_dram_pj"] == pytest.approx(by["dram"] * 3.9 * 8)
    active_w = h200.active_power_w * (0.40 / 0.28) * (54.2 * 108 / 128) / (80 * 132 / 144) * 1410 / 1830
    assert row["energy_active_pj"] == pytest.approx(r.ops["active.sm_cycles"] * active_w / (108 * 1410e6) * 1e12,
                                                    rel=2e-3)
    assert row["energy_static_pj"] == pytest.approx(50.5 * r.time_us * 1e6)
    assert row["energy_pj"] == pytest.approx(row["energy_compute_pj"] + row["energy_rf_pj"] + row["energy_smem_pj"]
                                             + row["energy_l2_sram_pj"] + row["energy_dram_pj"]
                                             + row["energy_active_pj"] + row["energy_static_pj"])


def test_a_small_gemm_on_a_table_priced_a100_level_by_level():
    """The same GEMM on an a100 without prices of its own: horowitz45 at 7 nm prices it.
    * MACs: 1024^3 x (1.1 + 0.9 pJ) x the 45 -> 7 nm factor (7/45) x (0.7/0.9)^2 (Dennard,
      0.9 V as Horowitz's figures state, PTM-MG's 0.7 V at 7 nm); the SRAM levels: Horowitz's
      curve x the same factor; HBM as above; no
      active power."""
    import dataclasses

    from sim.gpu import PRESETS
    a100 = dataclasses.replace(PRESETS["a100"], mac_pj={}, rf_pj_per_byte=0.0, smem_pj_per_byte=0.0,
                               l2_pj_per_byte=0.0, dram_pj_per_byte=0.0, active_power_w=0.0)
    r, by, row = _small_gemm(a100)
    node = (7 / 45) * (0.7 / 0.9) ** 2
    alpha = math.log(100 / 20) / math.log(1024 / 32)
    sram = lambda kib: 20 * (kib / 32) ** alpha / 8 * node            # noqa: E731  (extrapolated past 1 MiB)
    assert row["energy_compute_pj"] == pytest.approx(1024 ** 3 * (1.1 + 0.9) * node)
    assert row["energy_l2_sram_pj"] == pytest.approx(by["l2_sram"] * sram(40 * 1024))
    assert row["energy_dram_pj"] == pytest.approx(by["dram"] * 3.9 * 8)
    assert row["energy_static_pj"] == pytest.approx(50.5 * r.time_us * 1e6)
    assert row["energy_rf_pj"] == pytest.approx(by["rf"] * sram(64))
    assert row["energy_smem_pj"] == pytest.approx(by["smem"] * sram(164))
    assert row["energy_active_pj"] == 0.0


def test_a_design_carries_its_own_energy_table(tmp_path):
    """examples/zigzag_tpu_like.yaml names its table (a file beside it): commands price it with
    that table unless they name one; a table a design names but cannot be read is refused
    naming the design and the field."""
    from pathlib import Path

    from workloads.spec import adhoc
    root = Path(__file__).resolve().parents[1]
    wl = adhoc("conv:1,64,56,56,64,3,3,1,1:int8")
    ev = evaluate(wl, str(root / "examples" / "zigzag_tpu_like.yaml"))
    assert ev.table.name == "zigzag-tpu-like"
    assert ev.rows[0]["energy_compute_pj"] == pytest.approx(64 * 56 * 56 * 64 * 9 * 0.04)
    assert evaluate(wl, str(root / "examples" / "zigzag_tpu_like.yaml"), "horowitz45").table.name == "horowitz45"
    assert evaluate(wl, "systolic-32").table.name == "horowitz45"
    bad = tmp_path / "d.yaml"
    bad.write_text("base: systolic-32\nenergy_table: missing.yaml\n")
    with pytest.raises(HwsimError, match=r"design d: energy_table: .*missing.yaml"):
        evaluate(wl, str(bad))

"""The TPU paper's Table 3 counters (sim.systolic.counters) and read-after-write stalls
between dependent ops (sim.graph), against hand-derived schedules."""

import dataclasses
import math

import pytest

from sim.systolic import PRESETS, SystolicArch, simulate
from sim.systolic.counters import table3
from workloads import resolve
from workloads.build import gemm_op
from workloads.trace import Workload, chain

I8 = {"bits": 8, "dtype": "int"}


def _two_gemms():
    # 4x4 weight-stationary array, activations on chip, 4 B/cycle of DRAM, one tile prefetched
    arch = SystolicArch(rows=4, cols=4, dataflow="ws", dram_bw_bytes_per_cycle=4.0, prefetch_depth=1,
                        ifmap_on_chip=True)
    return arch, gemm_op("g0", 3, 4, 8, **I8), gemm_op("g1", 3, 3, 4, **I8)


def test_hand_derived_counters_and_raw_stall():
    """g0 (3x8 @ 8x4): two K tiles of 16 B, 4 cycles each from DRAM, streamed 3 rows each.
    Tile 0 arrives at 4, shifts 4, streams 8..11; tile 1 is requested at 8 (one buffer),
    arrives at 12, shifts 12..16, streams 16..19; the last output leaves 3 + 4 + 4 - 2 = 9
    cycles after its stream starts: g0 takes 25 cycles, of which 6 active, 8 shifting, 4 + 1
    waiting for DRAM and the last 6 draining. g1 (3x4 @ 4x3): 12 B in 3 cycles, shift 4,
    stream 7..10, last output at 7 + 3 + 4 + 3 - 2 = 15 (3 columns used)."""
    arch, g0, g1 = _two_gemms()
    dep = simulate(Workload("chain", tuple(chain([g0, g1]))), arch)
    a, b = dep.ops
    assert (a.cycles, a.extra.array_active_cycles, a.extra.weight_shift_cycles, a.extra.dram_wait_cycles,
            a.extra.drain_cycles, a.tail_cycles) == (25, 6, 8, 5, 6, 6)
    assert (b.cycles, b.extra.array_active_cycles, b.extra.weight_shift_cycles, b.extra.dram_wait_cycles,
            b.extra.drain_cycles) == (15, 3, 4, 3, 5)
    # g1 reads g0: it waits for g0's drain (a read-after-write stall of 6 cycles)
    assert (b.start_cycle, b.raw_stall_cycles, dep.cycles) == (25, 6, 40)
    # independent, g1 starts as g0's last stream ends, under its drain
    ind = simulate(Workload("independent", (g0, g1)), arch)
    assert (ind.ops[1].start_cycle, ind.ops[1].raw_stall_cycles, ind.cycles) == (19, 0, 34)
    t = table3(dep, arch.pes)
    assert t["array_active_%"] == pytest.approx(100 * 9 / 40)
    assert t["weight_shift_%"] == pytest.approx(100 * 12 / 40)
    assert t["weight_stall_%"] == pytest.approx(100 * 8 / 40)
    assert t["non_matrix_%"] == pytest.approx(100 * 11 / 40)          # the two drains
    assert t["raw_stall_%"] == pytest.approx(100 * 6 / 40)
    # 3*8*4 + 3*4*3 = 132 useful MACs of 16 PEs x 40 cycles; g1's empty column: 9 MAC-cycles unused
    assert t["useful_macs_%"] == pytest.approx(100 * 132 / 640)
    assert t["unused_macs_%"] == pytest.approx(100 * 12 / 640)


# tpu-v1 with each layer on its own: no host link, weights loaded when an op starts
LAYERWISE_TPU = dataclasses.replace(PRESETS["tpu-v1"], decoupled_weight_reads=False, host_link_bytes_per_cycle=0.0)


def test_a_weight_bound_fc_on_tpu_v1_from_its_datasheet_figures():
    """200 x 2048 x 2048 int8 on tpu-v1 (each layer alone): 64 full 64 KiB tiles of 200
    streamed rows. Each tile takes 65,536 B / (34 GB/s / 700 MHz) = 1349.3 cycles of DDR3,
    far more than its 256 shift and 200 stream cycles, so every tile's shift is exposed and
    the array waits for the rest (Jouppi et al. 2017, Sec. 2 and Table 2 figures)."""
    tpu = LAYERWISE_TPU
    r = simulate(Workload("fc", (gemm_op("fc", 200, 2048, 2048, **I8),)), tpu)
    o = r.ops[0]
    assert o.extra.array_active_cycles == 64 * 200
    assert o.extra.weight_shift_cycles == 64 * 256
    per_tile = 65536 / (34e9 / 700e6)
    # the channel moves 64 tiles back to back; then the last tile shifts, streams and drains
    hand = 64 * per_tile + 256 + 200 + (256 + 256 - 2)
    assert o.cycles == pytest.approx(hand, rel=0.002)
    t = table3(r, tpu.pes)
    assert t["array_active_%"] + t["weight_stall_%"] + t["weight_shift_%"] + t["non_matrix_%"] == pytest.approx(100)
    assert t["array_active_%"] == pytest.approx(100 * 64 * 200 / hand, rel=0.002)
    assert t["unused_macs_%"] == pytest.approx(0, abs=1e-9)          # every tile full


def test_tpu_workloads_rows_add_up_and_cnn0_is_compute_bound():
    tpu = LAYERWISE_TPU
    for name in ("mlp1", "lstm1", "cnn0"):
        r = simulate(resolve(name), tpu)
        t = table3(r, tpu.pes)
        assert t["array_active_%"] + t["weight_stall_%"] + t["weight_shift_%"] + t["non_matrix_%"] == \
            pytest.approx(100)
        assert 0 <= t["raw_stall_%"] <= t["non_matrix_%"] + 1e-9
        assert 0 <= t["useful_macs_%"] <= t["array_active_%"] + 1e-9
        busy = sum(o.extra.array_active_cycles + o.extra.weight_shift_cycles + o.extra.dram_wait_cycles
                   + o.extra.drain_cycles + o.extra.vector_cycles for o in r.ops)
        assert busy == sum(o.cycles for o in r.ops)                   # every op's cycles are split
    # CNN0 (AlphaGo, k = 247 filters at 19 x 19, batch 8): a hidden layer's 3 x 3 x 247 = 2223 rows
    # of weights are 9 tiles of one column tile, each streaming 8 x 19 x 19 = 2888 rows, which
    # hides every later tile's load; so only the first tile's load is exposed, 256 x 247 B at
    # 34 GB/s / 700 MHz = 1302 cycles, then its 256-cycle shift, 9 x 2888 rows streamed, the
    # drain (256 + 247 - 2) and the ReLU's ceil(8 x 247 x 361 / 256 lanes) = 2787 cycles
    r = simulate(resolve("cnn0"), tpu)
    conv, relu = r.ops[2], r.ops[3]
    load = math.ceil(256 * 247 / (34e9 / 700e6))
    assert conv.extra.array_active_cycles == 9 * 2888 and relu.extra.vector_cycles == relu.cycles == 2787
    assert conv.cycles == load + 256 + 9 * 2888 + (256 + 247 - 2)                     # 28,051
    # the 5 x 5 x 48 first layer has 1200 rows: 5 tiles; the 1 x 1 last layer one 247 x 1 tile
    # (247 B: 6 cycles), its stream of 2888 rows and a drain of 256 + 1 - 2; its ReLU 8 x 361 / 256
    first = load + 256 + 5 * 2888 + (256 + 247 - 2)
    last = math.ceil(247 / (34e9 / 700e6)) + 256 + 2888 + (256 + 1 - 2)
    hand = first + 14 * conv.cycles + last + 15 * 2787 + math.ceil(8 * 361 / 256)
    assert r.cycles == hand
    t = table3(r, tpu.pes)
    assert t["weight_stall_%"] == pytest.approx(100 * (15 * load + 6) / hand, rel=1e-9)


def test_report_and_summary_carry_the_counters(tmp_path, capsys):
    """hwsim report on tpu-v1 prints and stores Table 3's rows; a larger batch reuses each
    weight tile for more rows, so MLP1's weight stalls fall and its array is busier."""
    import json

    from analysis.cli import main as cli
    from analysis.report import evaluate

    assert cli(["report", "mlp1", "--arch", "tpu-v1", "-o", str(tmp_path / "r")]) in (0, None)
    assert "cycles: array active" in capsys.readouterr().out
    s = json.loads((tmp_path / "r" / "summary.json").read_text())["cycle_counters"]
    assert s["array_active_%"] + s["weight_stall_%"] + s["weight_shift_%"] + s["non_matrix_%"] == pytest.approx(100)
    assert "cycles_weight_stall_%" in (tmp_path / "r" / "summary.csv").read_text()
    small = evaluate(resolve("mlp1"), "tpu-v1").summary()["cycle_counters"]
    big = evaluate(resolve("mlp1", batch=1344), "tpu-v1").summary()["cycle_counters"]
    assert big["weight_stall_%"] < small["weight_stall_%"] and big["array_active_%"] > small["array_active_%"]
    assert evaluate(resolve("mlp1"), "a100").summary()["cycle_counters"] == {}     # machines without the split


def test_no_overlap_while_the_first_op_still_stores_its_outputs():
    """4x4 array, outputs to DRAM at 8 B/cycle: a 10x4 @ 4x4 GEMM loads 56 B (7 cycles),
    shifts its tile (4), streams at 11..21, its last output leaves at 27 and the 40 B of
    outputs take the channel until 32. The array's drain ends with the stores, so an
    independent second GEMM finds no idle tail to start in: 32 + 32 cycles."""
    arch = SystolicArch(rows=4, cols=4, dataflow="ws", dram_bw_bytes_per_cycle=8.0)
    a, b = gemm_op("a", 10, 4, 4, **I8), gemm_op("b", 10, 4, 4, **I8)
    r = simulate(Workload("two", (a, b)), arch)
    assert [o.cycles for o in r.ops] == [32, 32] and r.ops[0].tail_cycles == 0
    assert (r.ops[1].start_cycle, r.cycles) == (32, 64)

"""The spatial family: a described memory hierarchy, LOMA-style allocation, access counts
checked against a walk of the loop nest and against hand derivations, the mapping
search, the Eyeriss-like preset and ZigZag's hardware files."""

from __future__ import annotations

import dataclasses
import textwrap

import hypothesis
import pytest
from hypothesis import given, settings, strategies as st

from analysis.energy import energy_rows, load_table
from sim.registry import resolve_arch, simulate
from sim.spatial import Level, SpatialArch
from sim.spatial.cost import (ARRAY, PER_PE, Footprints, allocate, evaluate, loops_for, lower_bound, spatial_factors,
                              temporal)
from sim.spatial.nest import DIMS, Nest, window
from sim.spatial.reference import walk
from sim.spatial.search import best
from workloads.errors import HwsimError
from workloads.spec import adhoc

SMALL = SpatialArch(name="small", rows=2, cols=3, mac_pj=0.2, levels=(
    Level("wreg", ("weight",), 4, per_pe=True, read_bits=8, write_bits=8, read_pj=0.1, write_pj=0.1, kind="rf"),
    Level("oreg", ("output",), 8, per_pe=True, read_bits=32, write_bits=32, read_pj=0.3, write_pj=0.3, kind="rf"),
    Level("buf", ("input", "output"), 200, read_bits=64, write_bits=64, read_pj=4.0, write_pj=5.0),
    Level("dram", ("input", "weight", "output"), 0, read_pj=600.0, write_pj=700.0, kind="dram")),
    unrollings=(("C", "K"), ("OX", "K"), ("FY*C", "OY")))
BITS = {"input": 8, "weight": 8}


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_counts_equal_a_walk_of_the_nest(data):
    """For any mapping the allocation yields, the counting rule (refills skip the loops
    just above a tile that its operand ignores; partial sums read back after their first
    visit) gives the bytes a walk of every iteration counts from coordinates."""
    d = data.draw
    sizes = {"G": d(st.sampled_from([1, 2])), "B": d(st.sampled_from([1, 2])), "K": d(st.sampled_from([3, 6])),
             "C": d(st.sampled_from([2, 4])), "OY": d(st.sampled_from([2, 3, 4])), "OX": d(st.sampled_from([3, 6])),
             "FY": d(st.sampled_from([1, 2, 3])), "FX": d(st.sampled_from([1, 3]))}
    stride = d(st.sampled_from([1, 2]))
    nest = Nest(sizes, stride, stride, 1, 1, (sizes["OY"] - 1) * stride + sizes["FY"],
                (sizes["OX"] - 1) * stride + sizes["FX"])
    un = d(st.sampled_from(SMALL.unrollings))
    sp = spatial_factors(nest, un, SMALL.rows, SMALL.cols)
    if any(nest.sizes[k] % f for k, f in sp.items()):
        return                     # the walk counts real coordinates; the fast count pads partial tiles
    trips = temporal(nest, sp)
    order = d(st.permutations([k for k in DIMS if trips[k] > 1]))
    loops = loops_for(tuple(order), trips)
    m = allocate(nest, SMALL, un, loops, BITS)
    if m is None:
        return
    hypothesis.event("compared")
    cost = evaluate(nest, SMALL, m, BITS, 8)
    fast = cost.accesses
    ref = walk(nest, SMALL, m, BITS, 8)
    # the search's pruning bound never exceeds what it bounds
    lb_cycles, lb_energy = lower_bound(nest, SMALL, m, BITS, 8, Footprints(nest, sp, loops))
    assert lb_cycles <= cost.cycles and lb_energy <= cost.energy_pj + 1e-9
    assert set(fast) == set(ref)
    for k in ref:
        assert fast[k] == pytest.approx(ref[k]), k


ONE_PE = SpatialArch(name="one", rows=1, cols=1, acc_bits=32, levels=(
    Level("oreg", ("output",), 4, per_pe=True, read_bits=32, write_bits=32, kind="rf"),
    Level("buf", ("input", "weight", "output"), 1024),
    Level("dram", ("input", "weight", "output"), 0, kind="dram")), unrollings=(("C", "K"),))
GEMM_2x1x4 = Nest({"G": 1, "B": 1, "K": 1, "C": 4, "OY": 1, "OX": 2, "FY": 1, "FX": 1}, in_w=2)


def _run(order):
    loops = loops_for(order, temporal(GEMM_2x1x4, {"C": 1, "K": 1}))
    m = allocate(GEMM_2x1x4, ONE_PE, ("C", "K"), loops, BITS)
    assert m is not None
    return m, evaluate(GEMM_2x1x4, ONE_PE, m, BITS, 8)


def test_partial_sums_by_hand_reduction_outermost():
    """Two outputs, four reduction steps each, on one PE, outputs varying fastest
    (loops OX2, C2, C2). The 4-byte output register holds one 32-bit partial sum; every
    one of the 8 MACs moves to another output, so each partial sum leaves the PE 8 times
    and is read back 6 times (all but the first visit of each of the 2 outputs); the
    register passes all 8 up to the buffer and gets the 6 back. The buffer holds
    everything and writes the 2 final 8-bit outputs to DRAM once."""
    m, c = _run(("OX", "C"))
    assert m.bounds[(0, "output")] == 0 and m.bounds[(1, "output")] == 3
    a = c.accesses
    assert a["oreg.output.writes"] == 8 * 4 + 6 * 4           # from the MAC, then read-backs from the buffer
    assert a["oreg.output.reads"] == 6 * 4 + 8 * 4            # read-backs to the MAC, then drains to the buffer
    assert a["buf.output.writes"] == 8 * 4
    assert a["buf.output.reads"] == 6 * 4 + 2 * 1             # read-backs, then the 2 finals to DRAM
    assert a["dram.output.writes"] == 2
    # inputs change every MAC (8 reads of one byte); a weight stays while the 2 outputs
    # take it (the OX loop inside its C loop), so each of the 4 is read once
    assert a["buf.input.reads"] == 8 and a["buf.weight.reads"] == 4
    assert a["dram.input.reads"] == 8 and a["dram.weight.reads"] == 4
    assert c.compute_cycles == 8


def test_partial_sums_by_hand_reduction_innermost():
    """The same GEMM with the reduction innermost (C2, C2, OX2): each output accumulates
    in the PE over its 4 MACs and leaves once, final (8 bits): no read-back anywhere; the
    weight changes every MAC, the input too."""
    _, c = _run(("C", "OX"))
    a = c.accesses
    assert a["oreg.output.writes"] == 2 and a["oreg.output.reads"] == 2
    assert a["buf.output.writes"] == 2 and a["dram.output.writes"] == 2
    assert a["buf.output.reads"] == 2                  # only the drain to DRAM
    assert a["buf.weight.reads"] == 8 and a["buf.input.reads"] == 8


def test_window_counts_input_rows_by_hand():
    assert window(56, 3, 1, 1, 58) == 58           # 3x3 stride 1 over a padded 58-row input
    assert window(28, 1, 2, 1, 56) == 28           # 1x1 stride 2 reads every other row
    assert window(28, 3, 2, 1, 58) == 57           # 3x3 stride 2: (28-1)*2 + 3
    assert window(4, 2, 3, 1, 100) == 8            # windows of 2 rows, 3 apart: 4 x 2


def test_stationary_weight_stays_in_the_array():
    """Weight-stationary by hand: C and K on the array, only OX timed: each weight is read
    from the buffer once, each input once per output column step, outputs written once."""
    arch = SpatialArch(name="ws", rows=4, cols=4, levels=(
        Level("buf", ("input", "weight", "output"), 4096),
        Level("dram", ("input", "weight", "output"), 0, kind="dram")), unrollings=(("C", "K"),))
    nest = Nest({"G": 1, "B": 1, "K": 4, "C": 4, "OY": 1, "OX": 16, "FY": 1, "FX": 1}, in_w=16)
    c = best(nest, arch, BITS, 8)
    a = c.accesses
    assert a["buf.weight.reads"] == 16               # the 4x4 weights, once
    assert a["buf.input.reads"] == 16 * 4            # 16 steps x the 4 inputs of the column
    assert a["buf.output.writes"] == 16 * 4          # 16 steps x 4 outputs, reduced across the rows
    assert a["dram.input.reads"] == 64 and a["dram.weight.reads"] == 16 and a["dram.output.writes"] == 64
    assert c.compute_cycles == 16


def test_search_beats_or_equals_every_single_unrolling_and_is_reproducible():
    arch = resolve_arch("eyeriss-like")
    for spec in ("conv:1,64,28,28,64,3,3,1,1:int16", "conv:1,3,64,64,32,7,7,2,3:int16", "gemm:16,256,128:int16"):
        op = adhoc(spec).ops[0]
        from sim.spatial.nest import of_op
        nest = of_op(op)
        b = best(nest, arch, {"input": 16, "weight": 16}, 16)
        again = best(nest, arch, {"input": 16, "weight": 16}, 16)
        assert b.mapping.describe() == again.mapping.describe() and b.cycles == again.cycles
        for u in arch.unrollings:
            one = dataclasses.replace(arch, unrollings=(u,))
            assert b.cycles <= best(nest, one, {"input": 16, "weight": 16}, 16).cycles


def test_design_prices_reach_the_energy_model():
    """A level's own pJ per access and the design's MAC price, not the table's."""
    arch = SpatialArch(name="priced", rows=2, cols=2, mac_pj=0.5, word_bits=8, levels=(
        Level("buf", ("input", "weight", "output"), 4096, read_bits=64, write_bits=32, read_pj=8.0, write_pj=2.0),
        Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, read_pj=640.0,
              write_pj=320.0, kind="dram")), unrollings=(("C", "K"),))
    res = simulate(adhoc("gemm:8,2,2:int8"), arch)
    rows, tot = energy_rows(res, arch, load_table("horowitz45"))
    acc = res.ops[0].accesses
    reads = sum(v for k, v in acc.items() if k.startswith("buf.") and k.endswith("reads"))
    writes = sum(v for k, v in acc.items() if k.startswith("buf.") and k.endswith("writes"))
    assert rows[0]["energy_buf_pj"] == pytest.approx(reads * 8.0 / 8 + writes * 2.0 / 4)
    dram_r = sum(v for k, v in acc.items() if k.startswith("dram.") and k.endswith("reads"))
    dram_w = sum(v for k, v in acc.items() if k.startswith("dram.") and k.endswith("writes"))
    assert rows[0]["energy_dram_pj"] == pytest.approx(dram_r * 640 / 8 + dram_w * 320 / 8)
    assert rows[0]["energy_compute_pj"] == pytest.approx(8 * 2 * 2 * 0.5)


ZZ_HW = """\
name: mini_tpu
memories:
  rf_w:
    size: 1024
    r_cost: 0.1
    w_cost: 0.2
    area: 0
    latency: 1
    operands: [I2]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, tl"]}
      - {name: w_port_1, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, fh"]}
    served_dimensions: []
  sram:
    size: 1048576
    r_cost: 40.0
    w_cost: 36.0
    area: 0
    latency: 1
    operands: [I1, O]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 64, bandwidth_max: 256, allocation: ["I1, tl"]}
      - {name: w_port_1, type: write, bandwidth_min: 64, bandwidth_max: 256, allocation: ["O, fh"]}
    served_dimensions: [D1, D2]
  dram:
    size: 10000000000
    r_cost: 700
    w_cost: 750
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - {name: rw_port_1, type: read_write, bandwidth_min: 64, bandwidth_max: 64, allocation: ["I1, fh"]}
    served_dimensions: [D1, D2]
operational_array:
  unit_energy: 0.04
  unit_area: 1
  dimensions: [D1, D2]
  sizes: [8, 8]
"""
ZZ_MAP = """\
- name: default
  spatial_mapping:
    D1:
      - K, 8
    D2:
      - C, 8
  memory_operand_links: {O: O, W: I2, I: I1}
- name: Add
  spatial_mapping:
    D1:
      - G, 8
"""


def test_zigzag_hardware_file_reads_as_levels(tmp_path):
    hw = tmp_path / "hw.yaml"
    hw.write_text(ZZ_HW)
    mp = tmp_path / "map.yaml"
    mp.write_text(ZZ_MAP)
    arch = resolve_arch(f"zigzag:{hw}:{mp}")
    assert (arch.rows, arch.cols, arch.mac_pj) == (8, 8, 0.04)
    rf, sram, dram = arch.levels
    assert rf.per_pe and rf.size_bytes == 128 and rf.operands == ("weight",) and rf.read_pj == 0.1
    assert not sram.per_pe and sram.size_bytes == 131072 and sram.operands == ("input", "output")
    assert sram.read_bits == 256 and sram.read_pj == 40.0
    assert dram.kind == "dram" and dram.shared_port and dram.read_bits == 64
    assert arch.unrollings == (("K", "C"),)
    assert "not applied" in arch.source and "Add" in arch.source
    # the per-bit prices reach the energy model: 700 pJ per 64-bit DRAM read
    assert arch.memory_levels()["dram"].read_pj_per_byte == pytest.approx(700 / 8)
    res = simulate(adhoc("gemm:64,8,8:int8"), arch)
    assert res.ops[0].accesses["dram.weight.reads"] == 64        # the 8x8 weights, once
    assert res.ops[0].extra.mapping.startswith("K8|C8")


def test_zigzag_mapping_entries_per_layer_and_per_op_type(tmp_path):
    hw = tmp_path / "hw.yaml"
    hw.write_text(ZZ_HW)
    mp = tmp_path / "map.yaml"
    mp.write_text(ZZ_MAP + "- name: Conv\n  spatial_mapping:\n    D1:\n      - C, 8\n    D2:\n      - K, 8\n"
                  "- name: /blk/fc/Gemm\n  spatial_mapping:\n    D1:\n      - OX, 8\n    D2:\n      - K, 8\n")
    arch = resolve_arch(f"zigzag:{hw}:{mp}")
    assert dict(arch.op_unrollings) == {"conv": "C,K", "blk.fc.Gemm": "OX,K"}
    assert arch.unrollings_for("anything", "conv") == (("C", "K"),)
    assert arch.unrollings_for("blk.fc.Gemm", "gemm") == (("OX", "K"),)
    assert arch.unrollings_for("other", "gemm") == (("K", "C"),)          # the default entry
    conv = simulate(adhoc("conv:1,16,10,10,16,3,3,1,1:int8"), arch).ops[0]
    gemm = simulate(adhoc("gemm:64,8,8:int8"), arch).ops[0]
    assert conv.extra.mapping.startswith("C8|K8") and gemm.extra.mapping.startswith("K8|C8")


@pytest.mark.parametrize("edit, field", [
    (("sizes: [8, 8]", "sizes: [8, 8, 2]"), "operational_array.dimensions"),
    (("served_dimensions: []", "served_dimensions: [D3]"), "memories.rf_w.served_dimensions"),   # no such dimension
    (("operands: [I2]", "operands: [X9]"), "memories.rf_w.operands"),
    (("r_cost: 0.1", "r_cost: cheap"), "memories.rf_w.r_cost"),
])
def test_zigzag_files_that_cannot_be_expressed_are_refused(tmp_path, edit, field):
    hw = tmp_path / "hw.yaml"
    hw.write_text(ZZ_HW.replace(*edit))
    with pytest.raises(HwsimError) as e:
        resolve_arch(f"zigzag:{hw}")
    assert field in str(e.value) and str(hw) in str(e.value)


@pytest.mark.parametrize("levels, field", [
    ([{"name": "buf", "operands": ["input"], "size_bytes": 64}], "levels[0]"),
    ([{"name": "x", "operands": ["activations"], "size_bytes": 8},
      {"name": "dram", "operands": ["input", "weight", "output"], "kind": "dram"}], "levels[0].operands"),
    ([{"name": "buf", "operands": ["input"]},
      {"name": "dram", "operands": ["input", "weight", "output"], "kind": "dram"}], "levels[0].size_bytes"),
    ([{"name": "buf", "operands": ["input"], "size_bytes": 8, "colour": "red"}], "levels[0].colour"),
])
def test_bad_levels_name_the_field(levels, field):
    with pytest.raises(HwsimError) as e:
        SpatialArch(name="bad", levels=levels)
    assert field in str(e.value)


def test_arch_yaml_overrides_a_spatial_preset(tmp_path):
    f = tmp_path / "eyeriss_big.yaml"
    f.write_text(textwrap.dedent("""\
        base: eyeriss-like
        rows: 24
        unrollings: ["FY*C,OY", "C,K"]
        """))
    arch = resolve_arch(str(f))
    assert arch.rows == 24 and arch.unrollings == (("FY*C", "OY"), ("C", "K"))
    assert arch.levels == resolve_arch("eyeriss-like").levels


def test_eyeriss_like_runs_a_network_in_its_row_stationary_unrolling():
    # the row-stationary family asked for: by latency alone the search now prefers C12|K14 on this
    # layer (857,051 cycles against 887,059), whose spad refills fit their last pass
    arch = dataclasses.replace(resolve_arch("eyeriss-like"), dataflow="rs")
    res = simulate(adhoc("conv:1,64,56,56,64,3,3,1,1:int16"), arch)
    op = res.ops[0]
    assert op.extra.mapping.startswith("FY3*C4|OY14")          # row stationary fills all 168 PEs
    assert op.extra.active_pes == 168
    # the innermost temporal loop (FX3) changes the weight every cycle and there is no
    # register below the scratchpads, so every MAC reads its 16-bit weight (2 bytes) and its
    # 16-bit input from them
    macs = 64 * 64 * 9 * 56 * 56
    assert op.accesses["filter_spad.weight.reads"] == macs * 2
    assert op.accesses["ifmap_spad.input.reads"] == macs * 2
    # compute cycles by hand: FY3 x C4 on the 12 rows, OY14 on the 14 columns, so each PE
    # runs FX 3 x K 64 x OX 56 x C 64/4 x OY 56/14 temporal steps: the MACs over 168 PEs
    assert op.extra.compute_cycles == 3 * 64 * 56 * (64 // 4) * (56 // 14) == macs // 168     # 688,128
    assert op.utilization == pytest.approx(macs / (168 * op.cycles), rel=1e-12)


def test_zigzag_tpu_like_preset_is_the_zigzag_file():
    """The preset and the shipped ZigZag-format file (read by the ZigZag reader) hold the
    same levels, array, unrolling and prices."""
    a = resolve_arch("zigzag-tpu-like")
    b = resolve_arch("zigzag:examples/zigzag/tpu_like.yaml:examples/zigzag/tpu_like_mapping.yaml")
    assert a.levels == b.levels and a.unrollings == b.unrollings
    assert (a.rows, a.cols, a.mac_pj, a.word_bits, a.acc_bits) == (b.rows, b.cols, b.mac_pj, b.word_bits, b.acc_bits)
    rules = ("pe_accumulator", "operand_registers", "psum_reads", "port_words", "loading")
    assert [getattr(a, k) for k in rules] == [getattr(b, k) for k in rules] == [False, "pe", "writes", True, "overlapped"]


RESNET18_CONVS = ("conv:1,3,224,224,64,7,7,2,3", "conv:1,64,56,56,64,3,3,1,1", "conv:1,64,56,56,128,3,3,2,1",
                  "conv:1,64,56,56,128,1,1,2,0", "conv:1,128,28,28,128,3,3,1,1", "conv:1,128,28,28,256,3,3,2,1",
                  "conv:1,128,28,28,256,1,1,2,0", "conv:1,256,14,14,256,3,3,1,1", "conv:1,256,14,14,512,3,3,2,1",
                  "conv:1,256,14,14,512,1,1,2,0", "conv:1,512,7,7,512,3,3,1,1", "gemm:1,1000,512")


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_search_beats_or_equals_each_unrolling_on_every_resnet18_layer(objective):
    from sim.spatial.nest import of_op
    arch = resolve_arch("eyeriss-like")
    key = (lambda c: c.cycles) if objective == "latency" else (lambda c: c.energy_pj)
    for spec in RESNET18_CONVS:
        nest = of_op(adhoc(spec + ":int16").ops[0])
        b = best(nest, arch, {"input": 16, "weight": 16}, 16, objective)
        for u in arch.unrollings:
            one = best(nest, dataclasses.replace(arch, unrollings=(u,)), {"input": 16, "weight": 16}, 16, objective)
            assert key(b) <= key(one), (spec, u)


def test_mapping_search_flag_asks_a_spatial_design_for_its_objective():
    from analysis.energy import load_table
    from analysis.mapping import search
    wl = adhoc("conv:1,64,28,28,64,3,3,1,1:int16")
    arch = resolve_arch("eyeriss-like")
    table = load_table("eyeriss65")
    lat, _ = search(wl, arch, table, "latency")
    en, choices = search(wl, arch, table, "energy")
    e = lambda r: energy_rows(r, arch, table)[1]["energy_pj"]  # noqa: E731
    assert lat.cycles <= en.cycles and e(en) <= e(lat)
    assert choices[0].family == en.ops[0].extra.mapping


ZZ_SPEC = "zigzag:examples/zigzag/tpu_like.yaml:examples/zigzag/tpu_like_mapping.yaml"


def test_spatial_designs_run_through_simulate_report_compare_and_sweep(tmp_path, capsys):
    import csv

    from analysis.cli import main
    assert main(["simulate", "lenet5", "--arch", "eyeriss-like", "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert any(r["mapping"].startswith(("FY", "C", "K")) for r in rows) and all(int(r["cycles"]) > 0 for r in rows)
    assert main(["report", "lenet5", "--arch", ZZ_SPEC, "-o", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").exists()
    capsys.readouterr()
    assert main(["compare", "lenet5", "--arch", "eyeriss-like", "--arch", ZZ_SPEC, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [x.split(",")[0] for x in lines[1:]] == ["eyeriss-like", "tpu_like"]     # ZigZag's files by name
    study = tmp_path / "study.yaml"
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    study.write_text(f"name: s\nmodels: [lenet5]\nbase: zigzag:{root}/examples/zigzag/tpu_like.yaml\n"
                     "grid:\n  rows: [16, 32]\n")
    assert main(["sweep", str(study), "-o", str(tmp_path / "sw")]) == 0
    pts = list(csv.DictReader((tmp_path / "sw" / "results.csv").open()))
    assert sorted(int(p["rows"]) for p in pts) == [16, 32]
    # the 16-row array has half the MACs: never faster
    by = {int(p["rows"]): float(p["cycles"]) for p in pts}
    assert by[16] >= by[32]


def test_zigzag_paths_in_a_study_are_relative_to_it():
    from pathlib import Path

    from sim.spatial.zigzag import rebase, split
    assert split("hw.yaml:map.yaml") == ("hw.yaml", "map.yaml") and split("hw.yaml") == ("hw.yaml", "")
    assert rebase("hw.yaml:map.yaml", Path("/s")) == "/s/hw.yaml:/s/map.yaml"
    assert rebase("/abs/hw.yaml", Path("/s")) == "/abs/hw.yaml"


@pytest.mark.parametrize("family", ["ws", "os", "is", "rs"])
def test_the_search_beats_or_equals_each_named_dataflow_on_every_resnet18_layer(family):
    from sim.spatial.nest import of_op
    from sim.spatial.search import dataflow
    arch = resolve_arch("eyeriss-like")
    fixed = dataclasses.replace(arch, dataflow=family)
    bits = {"input": 16, "weight": 16}
    for spec in RESNET18_CONVS:
        nest = of_op(adhoc(spec + ":int16").ops[0])
        free = best(nest, arch, bits, 16)
        try:
            one = best(nest, fixed, bits, 16)
        except HwsimError:
            continue                      # no mapping of that family fits (a 1x1 conv has no filter rows)
        assert dataflow(one.mapping) in (family, "static")
        assert free.cycles <= one.cycles, (spec, family)


def test_named_dataflows_by_hand():
    from sim.spatial.search import stationary
    assert [stationary(d) for d in ("OX", "OY", "B", "C", "FY", "FX", "K", "G")] == \
        ["ws", "ws", "ws", "os", "os", "os", "is", "none"]
    with pytest.raises(HwsimError, match="dataflow"):
        SpatialArch(name="x", dataflow="xs", levels=SMALL.levels)


@pytest.mark.parametrize("double, expected", [(False, 155), (True, 145)])
def test_time_by_hand(double, expected):
    """8x8 array, one 1 MiB buffer (256-bit ports) for everything, a 64-bit DRAM port;
    a 64x8 @ 8x8 int8 GEMM: C and K on the array, 64 timed steps.
    DRAM reads 512 B of input and 64 B of weights: (512 + 64) x 8 / 64 = 72 cycles; the 512 B
    of outputs leave after the array stops: 64 cycles; the array's first operands (8 inputs,
    64 weights) arrive before it starts: 1 + 8 cycles. Single-buffered, the buffer's refills
    stall the array for their write time: (512 + 64) x 8 / 256 = 18 cycles, so
    max(64 + 18, 72) + 9 + 64 = 155; double-buffered they overlap: max(64, 72) + 9 + 64 = 145."""
    arch = SpatialArch(name="t", rows=8, cols=8, word_bits=8, acc_bits=32, levels=(
        Level("buf", ("input", "weight", "output"), 1 << 20, read_bits=256, write_bits=256, double_buffered=double),
        Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, shared_port=True, kind="dram")),
        unrollings=(("C", "K"),))
    nest = Nest({"G": 1, "B": 1, "K": 8, "C": 8, "OY": 1, "OX": 64, "FY": 1, "FX": 1}, in_w=64)
    c = best(nest, arch, BITS, 8)
    assert c.compute_cycles == 64
    assert c.accesses["dram.input.reads"] == 512 and c.accesses["dram.weight.reads"] == 64
    assert c.accesses["dram.output.writes"] == 512
    assert c.cycles == expected


def _costed(nest, arch, bits=BITS, out_bits=8):
    """Every unrolling and every order the search may try, each costed, in the search's
    order (no bound, no pruning). Nothing here reads ``arch.objective`` (only the search's
    key and bound do), so one list serves every objective."""
    import itertools

    from sim.spatial.search import hoisted, units
    out = []
    for un in arch.unrollings:
        sp = spatial_factors(nest, un, arch.rows, arch.cols)
        trips = temporal(nest, sp)
        for order in itertools.permutations(units(trips)):
            loops = loops_for(tuple(d for u in order for d in u), trips)
            m = allocate(nest, arch, un, loops, bits)
            if m is None:
                continue
            second = hoisted(arch, m)           # the order's second form, costed after it
            for cand in (m, allocate(nest, arch, un, second, bits) if second else None):
                if cand is None:
                    continue
                out.append(evaluate(nest, arch, cand, bits, out_bits))
    return out


def _first_lowest(costed, objective):
    """The first of the lowest key wins."""
    from sim.spatial.search import _key
    found = None
    for c in costed:
        if found is None or _key(c, objective) < _key(found, objective):
            found = c
    return found


def _exhaustive(nest, arch, objective, bits=BITS, out_bits=8):
    """Every unrolling and every order the search may try, each costed; the first of the
    lowest key wins (no bound, no pruning)."""
    return _first_lowest(_costed(nest, arch, bits, out_bits), objective)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_pruned_search_finds_what_costing_every_candidate_finds(data):
    """The search's shortcuts (unrollings whose array cycles already lose, candidates whose
    lower bound cannot win on the objective or on its tie-break) change nothing: the same
    mapping as costing every candidate, for every objective."""
    d = data.draw
    sizes = {"G": 1, "B": d(st.sampled_from([1, 2])), "K": d(st.sampled_from([3, 6, 8])),
             "C": d(st.sampled_from([2, 4, 6])), "OY": d(st.sampled_from([1, 2, 4])), "OX": d(st.sampled_from([3, 6])),
             "FY": d(st.sampled_from([1, 3])), "FX": d(st.sampled_from([1, 3]))}
    nest = Nest(sizes, 1, 1, 1, 1, sizes["OY"] + sizes["FY"] - 1, sizes["OX"] + sizes["FX"] - 1)
    objective = d(st.sampled_from(["latency", "energy", "edp"]))
    arch = dataclasses.replace(SMALL, objective=objective)
    want = _exhaustive(nest, arch, objective)
    got = best(nest, arch, BITS, 8)
    assert (got.mapping, got.cycles, got.energy_pj) == (want.mapping, want.cycles, want.energy_pj)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_footprints_at_every_prefix_equal_the_nest_s(data):
    """The footprint tables built loop by loop are the nest's footprint of the tile each
    prefix spans, per PE and over the array."""
    d = data.draw
    sizes = {k: d(st.sampled_from([1, 2, 3, 4])) for k in DIMS}
    stride = d(st.sampled_from([1, 2]))
    nest = Nest(sizes, stride, stride, 1, 1, (sizes["OY"] - 1) * stride + sizes["FY"],
                (sizes["OX"] - 1) * stride + sizes["FX"])
    un = d(st.sampled_from(SMALL.unrollings))
    sp = spatial_factors(nest, un, SMALL.rows, SMALL.cols)
    trips = temporal(nest, sp)
    order = d(st.permutations([k for k in DIMS if trips[k] > 1]))
    loops = loops_for(tuple(order), trips)
    tab = Footprints(nest, sp, loops)
    for b in range(len(loops) + 1):
        ext = dict.fromkeys(DIMS, 1)
        for k, f in loops[:b]:
            ext[k] *= f
        whole = {k: ext[k] * sp.get(k, 1) for k in DIMS}
        for o in ("input", "weight", "output"):
            assert tab.fp(o, b, PER_PE) == nest.footprint(o, ext)
            assert tab.fp(o, b, ARRAY) == nest.footprint(o, whole)


@pytest.mark.parametrize("preset", ["eyeriss-like", "zigzag-tpu-like"])
def test_the_pruned_search_finds_what_costing_every_candidate_finds_on_resnet18(preset):
    """The same on real layers, where the shortcuts skip most candidates."""
    from sim.spatial.nest import of_op
    from workloads.spec import resolve

    wl = resolve("resnet18", cache=True)
    seen = set()
    for op in wl.ops:
        if not op.is_gemm or op.name in seen:
            continue
        seen.add(op.name)
        nest = of_op(op)
        base = resolve_arch(preset)
        bits = {"input": base.word_bits, "weight": base.word_bits}
        # every candidate costed once per layer (as _exhaustive costs them), the lowest picked
        # per objective: the costing reads no objective, so this is _exhaustive's answer for each
        costed = _costed(nest, base, bits, base.word_bits)
        for objective in ("latency", "energy", "edp"):
            arch = dataclasses.replace(base, objective=objective)
            want = _first_lowest(costed, objective)
            got = best(nest, arch, {"input": arch.word_bits, "weight": arch.word_bits}, arch.word_bits)
            assert (got.mapping, got.cycles, got.energy_pj) == (want.mapping, want.cycles, want.energy_pj), \
                (op.name, objective)


# A buffer that holds one K tile's partial sums while the input channels stream through, and a
# weight register that takes the filters from DRAM (Eyeriss's arrangement, issue 36), on one MAC.
TILED = SpatialArch(name="tiled", rows=1, cols=1, mac_pj=0.2, objective="energy", levels=(
    Level("wreg", ("weight",), 2, per_pe=True, read_bits=8, write_bits=8, read_pj=0.1, write_pj=0.1, kind="rf"),
    Level("buf", ("input", "output"), 36, read_bits=64, write_bits=64, read_pj=4.0, write_pj=5.0),
    Level("dram", ("input", "weight", "output"), 0, read_pj=600.0, write_pj=700.0, kind="dram")),
    unrollings=(("C", "K"),))


def test_an_order_may_tile_output_channels_above_the_input_channel_stream():
    """K 8, C 8, OX 4 (8-bit operands, 32-bit partial sums). The buffer's 36 bytes hold the
    32-bit psums of 2 output channels x 4 columns (32 B) and the 4 inputs of one channel
    (4 B), not those of 2 (40 B); the register holds 2 weights. Tiling K by 2 under the C
    stream, the K tiles outermost: [K2 OX4 | C8 | K4]. By hand: the register's tile (K2, OX4
    not in the weight) is refilled once per C8 x K4 iteration: 32 x 2 B = 64 B, every weight
    once; the buffer's input tile (4 B) likewise 32 times: 128 B, the 32 B of inputs once per
    K tile; its psum tile stays across the C loops just above it, so each output leaves once,
    8-bit: 32 B. 224 B in all. With a dimension's factors kept together (the search before
    issue 36) the least-energy mapping moved 320 B: [C8 K8 OX4] reads the weights once per
    output column pair, 256 B."""
    nest = Nest({"G": 1, "B": 1, "K": 8, "C": 8, "OY": 1, "OX": 4, "FY": 1, "FX": 1}, in_h=1, in_w=4)
    c = best(nest, TILED, BITS, 8)
    assert c.mapping.describe() == "C1|K1 [K2 OX2 OX2 C2 C2 C2 K2 K2]"
    dram = {k: v for k, v in c.accesses.items() if k.startswith("dram.")}
    assert dram == {"dram.weight.reads": 64.0, "dram.input.reads": 128.0, "dram.output.writes": 32.0}
    assert walk(nest, TILED, c.mapping, BITS, 8) == pytest.approx(dict(c.accesses))
    old = [("C", 2)] * 3 + [("K", 2)] * 3 + [("OX", 2)] * 2     # the old choice, by hand: 32 + 256 + 32 B
    m = allocate(nest, TILED, ("C", "K"), tuple(old), BITS)
    assert m is not None
    moved = evaluate(nest, TILED, m, BITS, 8).accesses
    assert sum(v for k, v in moved.items() if k.startswith("dram.")) == 320.0 > sum(dram.values())

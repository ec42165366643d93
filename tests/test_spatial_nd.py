"""Spatial arrays of more than two dimensions and memories served along some of them
(sim.spatial.array): numbers derived by hand on small 3-D and 4-D arrays, access counts
checked against a walk of the nest, the fast timing against cycle stepping, the pruned
search against costing every candidate, grouped convolutions, and ZigZag 3.9.1's stock
designs read from its own files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import hypothesis
import pytest
from hypothesis import given, settings, strategies as st

from sim.registry import resolve_arch, simulate
from sim.spatial import Level, SpatialArch
from sim.spatial.cost import allocate, evaluate, loops_for, spatial_factors, temporal
from sim.spatial.nest import DIMS, Nest, of_op
from sim.spatial.reference import walk
from sim.spatial.search import best
from sim.spatial.stepper import schedule, schedule_cycles, streams
from workloads.errors import HwsimError
from workloads.spec import adhoc

BITS = {"input": 8, "weight": 8}
DRAM = Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, shared_port=True, kind="dram")


def test_macs_per_cycle_are_the_product_of_the_dimensions():
    arch = SpatialArch(name="4d", rows=4, cols=2, extra_dims=(2, 3), clock_mhz=100.0, levels=(DRAM,),
                       unrollings=(("K", "C", "OX", "OY"),))
    assert arch.array == (4, 2, 2, 3) and arch.pes == 48
    assert arch.peaks().macs_per_s == 48 * 100e6
    assert arch.unrollings == (("K", "C", "OX", "OY"),)


# a 3-D array: output channels down D1 (4), input channels across D2 (2), output columns along D3 (2)
HAND = SpatialArch(name="hand3d", rows=4, cols=2, extra_dims=(2,), word_bits=8, acc_bits=32, levels=(
    Level("wreg", ("weight",), 1, served=("D3",), read_bits=8, write_bits=8, kind="rf"),
    Level("oreg", ("output",), 4, served=("D2",), read_bits=32, write_bits=32, kind="rf"),
    Level("buf", ("input", "weight", "output"), 4096, read_bits=64, write_bits=64, double_buffered=True),
    DRAM), unrollings=(("K", "C", "OX"),))
GEMM_4x4x4 = Nest({"G": 1, "B": 1, "K": 4, "C": 4, "OY": 1, "OX": 4, "FY": 1, "FX": 1}, in_w=4)


def test_a_gemm_on_a_3d_array_by_hand():
    """C[4x4] = A[4x4] @ B[4x4] (OX 4, C 4, K 4) on HAND: K4 on D1, C2 on D2, OX2 on D3 put all
    16 MACs to work; left to time: C2 then OX2 (C innermost), 4 cycles.

    wreg is shared along D3 (the two output columns read one weight): one instance per
    (K, C) PE pair, 8 of them, each one 1-byte weight, so its tile holds no loop and a new
    weight arrives every cycle: 4 refills x 8 instances = 32 bytes written and read;
    the buffer sends each weight once to its instance (8 per refill): 32 bytes.
    oreg is shared along D2 (the two input channels' products meet in one register): one
    per (K, OX) pair, 8 of them, each one 32-bit partial sum; C is inside its tile (bound 1),
    so each output completes there and leaves once, at 8 bits: 2 OX steps x 8 = 16 bytes.
    Inputs come from the buffer, each multicast down D1 to the 4 output channels: 4 iterations
    x (C2 x OX2) = 16 bytes. The buffer holds the whole layer: DRAM reads 16 + 16 bytes, writes 16.

    Time: the array's 4 cycles; wreg is single-buffered, so its refills stall the array for
    their write time, 32 bytes over 8 instances' 8-bit ports = 4 cycles: 8; the buffer's read
    port moves 32 + 16 + 16 bytes in 64-bit words: 8 cycles. The first operands come from DRAM
    before the array starts (8 weights, 4 inputs: 1 + 0.5 cycles) and the 16 outputs leave after
    it (2 cycles): max(4 + 4, 8) + 3.5 = 11.5, 12."""
    loops = loops_for(("C", "OX"), temporal(GEMM_4x4x4, {"K": 4, "C": 2, "OX": 2}))
    m = allocate(GEMM_4x4x4, HAND, HAND.unrollings[0], loops, BITS)
    assert m is not None and dict(m.spatial) == {"K": 4, "C": 2, "OX": 2}
    assert m.bounds[(0, "weight")] == 0 and m.bounds[(1, "output")] == 1
    c = evaluate(GEMM_4x4x4, HAND, m, BITS, 8)
    assert dict(c.accesses) == {
        "wreg.weight.reads": 32, "wreg.weight.writes": 32,
        "oreg.output.reads": 16, "oreg.output.writes": 16,
        "buf.input.reads": 16, "buf.input.writes": 16, "buf.weight.reads": 32, "buf.weight.writes": 16,
        "buf.output.reads": 16, "buf.output.writes": 16,
        "dram.input.reads": 16, "dram.weight.reads": 16, "dram.output.writes": 16}
    assert (c.compute_cycles, c.active_pes, c.cycles) == (4, 16, 12)
    assert walk(GEMM_4x4x4, HAND, m, BITS, 8) == pytest.approx(dict(c.accesses))
    assert m.describe() == "K4|C2|OX2 [C2 OX2]"


@pytest.mark.parametrize("served, copies", [(("D2",), 1), (("D1",), 4)])
def test_a_level_shared_along_one_dimension_by_hand(served, copies):
    """A 4x4 array, input channels down D1, output channels across D2; a 64-byte input buffer
    shared along D2 is one per row: each row's 16 inputs (OX 16) multicast to its 4 output
    channels, written and read once (64 bytes). Shared along D1 instead, it is one per column:
    every column's instance holds all 4 channels' inputs, written 4 times over (256 bytes)
    while the shared buffer above reads each input once and multicasts it to the 4."""
    arch = SpatialArch(name="one-axis", rows=4, cols=4, word_bits=8, acc_bits=32, levels=(
        Level("ibuf", ("input",), 64, served=served, read_bits=32, write_bits=32),
        Level("buf", ("input", "weight", "output"), 4096), DRAM), unrollings=(("C", "K"),))
    nest = Nest({"G": 1, "B": 1, "K": 4, "C": 4, "OY": 1, "OX": 16, "FY": 1, "FX": 1}, in_w=16)
    c = best(nest, arch, BITS, 8)
    a = c.accesses
    assert c.compute_cycles == 16
    assert a["ibuf.input.writes"] == a["ibuf.input.reads"] == 64 * copies
    assert a["buf.input.reads"] == 64


def test_serving_none_or_all_is_per_pe_or_the_array():
    a = Level("r", ("weight",), 8, served=())
    assert a == Level("r", ("weight",), 8, per_pe=True)
    arch = SpatialArch(name="t", rows=2, cols=2, levels=(Level("b", ("input",), 64, served=("D2", "D1")), DRAM))
    assert arch.levels[0] == Level("b", ("input",), 64)


def test_an_idle_dimension_of_size_one_changes_nothing():
    """The eyeriss-like preset with a third dimension of size 1, nothing unrolled on it:
    the same mapping, cycles and accesses on a conv."""
    flat = resolve_arch("eyeriss-like")
    deep = dataclasses.replace(flat, extra_dims=(1,), unrollings=tuple((*u, "") for u in flat.unrollings))
    wl = adhoc("conv:1,32,14,14,32,3,3,1,1:int16")
    a, b = simulate(wl, flat).ops[0], simulate(wl, deep).ops[0]
    assert b.extra.mapping.replace("|-", "") == a.extra.mapping       # the idle side shows as -
    assert (a.cycles, a.accesses) == (b.cycles, b.accesses)


@pytest.mark.parametrize("levels, field", [
    ((Level("r", ("weight",), 8, served=("D1", "D2")), Level("b", ("weight",), 64, served=("D1",)), DRAM),
     "b.served"),
    ((Level("r", ("weight",), 8, served=("D3",)), DRAM), "levels[0].served"),
    ((Level("r", ("weight",), 8, served=("D1",)), dataclasses.replace(DRAM, served=("D1",))), "levels[1]"),
])
def test_levels_that_do_not_nest_are_refused(levels, field):
    with pytest.raises(HwsimError) as e:
        SpatialArch(name="bad", rows=2, cols=2, levels=levels)
    assert str(e.value).startswith(field)


@pytest.mark.parametrize("unrollings, words", [
    (("K,C",), "3 sides, one per array dimension (D1, D2, D3)"),
    (("K,C,K",), "unrolls 'K' twice"),
    (("K,C,OX0",), "a cap must be above 0"),
])
def test_unrollings_need_a_side_per_dimension(unrollings, words):
    with pytest.raises(HwsimError, match="unrollings") as e:
        dataclasses.replace(HAND, unrollings=unrollings)
    assert words in str(e.value)


def test_a_cap_limits_a_loop_on_its_dimension():
    """``OX8`` on 32 columns takes 8 output columns (ZigZag's ``OX, 8``), leaving 24 idle."""
    nest = of_op(adhoc("conv:1,64,56,56,64,3,3,1,1:int8").ops[0])
    assert spatial_factors(nest, ("K", "OX8", "OY"), 32, 32, 4) == {"K": 32, "OX": 8, "OY": 4}
    assert spatial_factors(nest, ("K", "C4*FX", "OY"), 32, 16, 4) == {"K": 32, "C": 4, "FX": 3, "OY": 4}


def test_a_depthwise_conv_is_a_group_loop_the_mapper_places():
    """A depthwise 3x3 conv of 8 channels over a 10x10 input (each channel its own group: G 8,
    K 1, C 1, 8x8 outputs) on a 2x4x2 array unrolling the groups down D1, output columns
    across D2 and output rows along D3: all 16 MACs busy, G4 x OY4 x OX2 x 9 taps = 288
    cycles. The one buffer holds the layer, so DRAM sends its 72 weights (8 x 9), 800 inputs
    and takes 512 outputs once; the search keeps the taps innermost, so every cycle the
    buffer sends the 2 groups' current weights, each multicast to the 8 PEs along D2 and D3:
    288 x 2 = 576 bytes."""
    from workloads.build import conv_op

    op = conv_op("dw", 1, 8, 10, 10, 8, 3, 3, groups=8, bits=8, dtype="int")
    nest = of_op(op)
    assert {d: nest.sizes[d] for d in ("G", "K", "C", "OY", "OX")} == {"G": 8, "K": 1, "C": 1, "OY": 8, "OX": 8}
    arch = SpatialArch(name="dw", rows=2, cols=4, extra_dims=(2,), word_bits=8, acc_bits=32, levels=(
        Level("buf", ("input", "weight", "output"), 1 << 16), DRAM), unrollings=(("G", "OX", "OY"),))
    c = best(nest, arch, BITS, 8)
    assert dict(c.mapping.spatial) == {"G": 2, "OX": 4, "OY": 2} and c.mapping.loops[:2] == (("FX", 3), ("FY", 3))
    assert c.compute_cycles == 4 * 4 * 2 * 9 == 8 * 64 * 9 // 16 == 288
    a = c.accesses
    assert (a["dram.weight.reads"], a["dram.input.reads"], a["dram.output.writes"]) == (72, 800, 512)
    assert a["buf.weight.reads"] == 288 * 2


# ---- random mappings on a 3-D design whose levels are served along one dimension each -------
ND = SpatialArch(name="nd", rows=2, cols=3, extra_dims=(2,), mac_pj=0.2, levels=(
    Level("wreg", ("weight",), 4, served=("D3",), read_bits=8, write_bits=8, read_pj=0.1, write_pj=0.1, kind="rf"),
    Level("ireg", ("input",), 4, served=("D1",), read_bits=8, write_bits=8, read_pj=0.1, write_pj=0.1, kind="rf"),
    Level("oreg", ("output",), 8, served=("D2",), read_bits=32, write_bits=32, read_pj=0.3, write_pj=0.3, kind="rf"),
    Level("buf", ("input", "output"), 200, read_bits=64, write_bits=64, read_pj=4.0, write_pj=5.0),
    Level("dram", ("input", "weight", "output"), 0, read_pj=600.0, write_pj=700.0, kind="dram")),
    unrollings=(("K", "C", "OX"), ("FY*C", "OY", "K"), ("C", "OX*FX", "B"), ("OX", "K", "FY")))
SMALL_NESTS = {"G": [1, 2], "B": [1, 2], "K": [2, 3, 6], "C": [2, 4], "OY": [2, 3, 4], "OX": [2, 3, 6],
               "FY": [1, 2, 3], "FX": [1, 3]}


def _draw(d, arch=ND, even=True):
    sizes = {k: d(st.sampled_from(SMALL_NESTS[k])) for k in DIMS}
    stride = d(st.sampled_from([1, 2]))
    nest = Nest(sizes, stride, stride, 1, 1, (sizes["OY"] - 1) * stride + sizes["FY"],
                (sizes["OX"] - 1) * stride + sizes["FX"])
    un = d(st.sampled_from(arch.unrollings))
    sp = spatial_factors(nest, un, *arch.array)
    if even and any(nest.sizes[k] % f for k, f in sp.items()):
        return None                 # the walk counts real coordinates; the fast count pads partial tiles
    trips = temporal(nest, sp)
    order = d(st.permutations([k for k in DIMS if trips[k] > 1]))
    m = allocate(nest, arch, un, loops_for(tuple(order), trips), BITS)
    return None if m is None else (nest, m)


@settings(max_examples=250, deadline=None)
@given(st.data())
def test_nd_counts_equal_a_walk_of_the_nest(data):
    """Every instance of every level counted PE index by PE index (the walk) gives the bytes
    the footprint rule gives, for levels shared along D1, D2 or D3 only."""
    drawn = _draw(data.draw)
    if drawn is None:
        return
    hypothesis.event("compared")
    nest, m = drawn
    fast = evaluate(nest, ND, m, BITS, 8).accesses
    ref = walk(nest, ND, m, BITS, 8)
    assert set(fast) == set(ref)
    for k in ref:
        assert fast[k] == pytest.approx(ref[k]), k


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_nd_fast_engine_equals_cycle_stepping(data):
    drawn = _draw(data.draw, even=False)
    if drawn is None:
        return
    nest, m = drawn
    ss, iters = streams(nest, ND, m, BITS, 8)
    assert schedule(ss, iters) == schedule_cycles(ss, iters)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_nd_pruned_search_finds_what_costing_every_candidate_finds(data):
    import itertools

    from sim.spatial.search import _key, hoisted, units
    d = data.draw
    sizes = {k: d(st.sampled_from(SMALL_NESTS[k])) for k in DIMS} | {"G": 1}
    nest = Nest(sizes, 1, 1, 1, 1, sizes["OY"] + sizes["FY"] - 1, sizes["OX"] + sizes["FX"] - 1)
    objective = d(st.sampled_from(["latency", "energy", "edp"]))
    arch = dataclasses.replace(ND, objective=objective)
    want = None
    for un in arch.unrollings:
        trips = temporal(nest, spatial_factors(nest, un, *arch.array))
        for order in itertools.permutations(units(trips)):
            m = allocate(nest, arch, un, loops_for(tuple(x for u in order for x in u), trips), BITS)
            second = hoisted(arch, m) if m is not None else None       # the order's second form
            for cand in (m, allocate(nest, arch, un, second, BITS) if second else None):
                if cand is not None:
                    c = evaluate(nest, arch, cand, BITS, 8)
                    if want is None or _key(c, objective) < _key(want, objective):
                        want = c
    got = best(nest, arch, BITS, 8)
    assert want is not None and (got.mapping, got.cycles, got.energy_pj) == (want.mapping, want.cycles,
                                                                              want.energy_pj)


# ---- ZigZag 3.9.1's stock designs, read from its own files ---------------------------------
ZZ = Path(os.environ.get("ZIGZAG_INPUTS", "/work/venvs/zigzag/lib/python3.11/site-packages/zigzag/inputs"))
needs_zigzag = pytest.mark.skipif(not (ZZ / "hardware").is_dir(), reason="ZigZag 3.9.1's inputs not installed "
                                                                       "(set ZIGZAG_INPUTS)")
# design -> (its mapping file, the array, MACs, each memory's served dimensions as hwsim reads them)
STOCK = {
    "ascend_like": ("ascend_like", (16, 16, 2, 2), [("D3", "D4"), ("D2",), None, None, None, None, None, None]),
    "edge_tpu_like": ("edge_tpu_like", (8, 8, 4, 4), [("D3", "D4"), ("D2",), None, None, None]),
    "meta_prototype": ("meta_prototype_like", (32, 2, 4, 4),
                       [("D3", "D4"), ("D2",), None, None, None, None, None]),
    "tesla_npu_like": ("tesla_npu_like", (32, 32, 4), [("D2", "D3"), "pe", None, None, None, None, None]),
    "eyeriss_like": ("default", (14, 12), ["pe", "pe", "pe", None, None, None, None]),
    "generic_array_cacti": ("default", (256, 256), ["pe", "pe", "pe", None, None]),
    "gemm_l1": ("default", (8, 8, 8), [("D2",), None]),
    "gemm_l1_l3": ("default", (8, 8, 8), [("D2",), None, None]),
}


@needs_zigzag
@pytest.mark.parametrize("design", sorted(STOCK))
def test_every_stock_zigzag_design_loads(design):
    mapping, array, served = STOCK[design]
    arch = resolve_arch(f"zigzag:{ZZ}/hardware/{design}.yaml:{ZZ}/mapping/{mapping}.yaml")
    assert arch.array == array
    assert [("pe" if lv.per_pe else lv.served) for lv in arch.levels] == served
    res = simulate(adhoc("conv:1,64,28,28,64,3,3,1,1:int8"), arch).ops[0]
    assert res.cycles >= res.extra.compute_cycles > 0


@needs_zigzag
def test_the_stock_4d_mappings_are_read_with_their_caps():
    ascend = resolve_arch(f"zigzag:{ZZ}/hardware/ascend_like.yaml:{ZZ}/mapping/ascend_like.yaml")
    assert ascend.unrollings == (("K", "C", "OX", "OY"),) and ascend.pes == 1024
    tesla = resolve_arch(f"zigzag:{ZZ}/hardware/tesla_npu_like.yaml:{ZZ}/mapping/tesla_npu_like.yaml")
    assert tesla.unrollings == (("K", "OX8", "OY"),)               # D2 is 32 wide; the mapping uses 8
    gemm = resolve_arch(f"zigzag:{ZZ}/hardware/gemm_l1.yaml:{ZZ}/mapping/default.yaml")
    # default.yaml leaves D3 out: searched, as ZigZag's generator searches it, over the loops not on D1, D2
    assert gemm.unrollings == tuple(("K", "C", d) for d in ("G", "B", "OY", "OX", "FY", "FX"))
    assert "D3 left out: searched" in gemm.source
    # tesla's _mixed mapping gives no spatial_mapping, only hints (D1: K; D2: OX or OY); D3 has none: any loop
    mixed = resolve_arch(f"zigzag:{ZZ}/hardware/tesla_npu_like.yaml:{ZZ}/mapping/tesla_npu_like_mixed.yaml")
    assert len(mixed.unrollings) == 2 * 6 and mixed.unrollings[:2] == (("K", "OX", "G"), ("K", "OX", "B"))
    assert {u[1] for u in mixed.unrollings} == {"OX", "OY"} and all(u[2] not in u[:2] for u in mixed.unrollings)


@needs_zigzag
@pytest.mark.parametrize("hardware, mapping, words", [
    ("tpu_like", "tpu_like", "memories.sram_2MB.ports: given twice"),     # PyYAML keeps the last; hwsim refuses
    ("gemm_l1", "gemm_l1", "0.spatial_mapping.D1: 'D0' is not a loop of a conv or GEMM layer"),
    ("gemm_l1_l3", "gemm_l1_l3", "0.spatial_mapping.D1: 'D0' is not a loop of a conv or GEMM layer"),
    ("ascend_like", None, "operational_array.dimensions: an array of 4 dimensions needs a mapping file"),
    ("edge_tpu_like", "edge_tpu_like_mixed", "0.spatial_mapping.D4: OX is unrolled on D3 too"),
])
def test_what_a_stock_file_says_that_hwsim_cannot_is_refused_with_the_field(hardware, mapping, words):
    spec = f"zigzag:{ZZ}/hardware/{hardware}.yaml" + (f":{ZZ}/mapping/{mapping}.yaml" if mapping else "")
    with pytest.raises(HwsimError) as e:
        resolve_arch(spec)
    assert words in str(e.value)


def test_zigzag_served_dimensions_are_widened_as_zigzag_widens_them(tmp_path):
    """A memory serves what the memories below it of its operands serve (ZigZag hands an array
    dimension's loops to the first memory up the hierarchy that serves it): ascend_like's DRAM
    says [D1, D2] of a 4-D array and still serves all four through the buffers below it."""
    hw = tmp_path / "hw.yaml"
    port = ("    ports:\n      - {name: rw_port_1, type: read_write, bandwidth_min: 8, bandwidth_max: 64,\n"
            "         allocation: ['I1, fh', 'I1, tl', 'I2, fh', 'I2, tl', 'O, fh', 'O, tl', 'O, fl', 'O, th']}\n")
    mem = "  %s:\n    size: %d\n    r_cost: 1\n    w_cost: 1\n    latency: 1\n    operands: [I1, I2, O]\n" + port + \
        "    served_dimensions: %s\n"
    hw.write_text("name: t\noperational_array: {dimensions: [D1, D2, D3], sizes: [2, 2, 2], unit_energy: 0.1}\n"
                  "memories:\n" + mem % ("buf", 1 << 16, "[D3, D1, D2]") + mem % ("dram", 1 << 30, "[D1, D2]"))
    mp = tmp_path / "map.yaml"
    mp.write_text("- name: default\n  spatial_mapping: {D1: ['K, 2'], D2: ['C, 2'], D3: ['OX, 2']}\n")
    arch = resolve_arch(f"zigzag:{hw}:{mp}")
    assert [lv.served for lv in arch.levels] == [None, None] and arch.pes == 8
    hw.write_text(hw.read_text().replace("[D3, D1, D2]", "[D3]").replace("[D1, D2]", "[D1]"))
    with pytest.raises(HwsimError, match="memories.dram.served_dimensions: the last memory"):
        resolve_arch(f"zigzag:{hw}:{mp}")

"""ZigZag 3.9.1's counting conventions as design options (SpatialArch.port_words, psum_reads,
loading; Level.read_access_bits): by hand on tiny nests, and against ZigZag's own output on
its stock designs, layer by layer on ZigZag's own mappings (energy_total to the pJ, word
accesses per memory, latency_total2)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from sim.registry import resolve_arch
from sim.spatial import Level, SpatialArch
from sim.spatial.cost import Footprints, Mapping_, allocate, evaluate, loops_for, lower_bound, spatial_factors, \
    temporal
from sim.spatial.nest import Nest, of_op
from test_spatial_rf_semantics import BITS, ONE_PE, draw_mapping
from workloads.errors import HwsimError
from workloads.spec import adhoc

ROOT = Path(__file__).resolve().parents[1]
# one PE, one register file for every operand (16-bit ports: 1 pJ per read, 2 pJ per write),
# DRAM at 100 pJ per 64-bit access, 0.5 pJ per MAC: tests/test_spatial_rf_semantics.py's
GEMV = Nest({"G": 1, "B": 1, "K": 2, "C": 3, "OY": 1, "OX": 1, "FY": 1, "FX": 1})     # O[k] += W[k][c] I[c]


def _cost(arch: SpatialArch, nest: Nest, order: tuple[str, ...], unrolling: tuple[str, ...] = ("K", "C")):
    loops = loops_for(order, temporal(nest, spatial_factors(nest, unrolling, *arch.array)))
    m = allocate(nest, arch, unrolling, loops, BITS)
    assert m is not None
    return evaluate(nest, arch, m, BITS, 8)


def test_port_words_by_hand():
    """C innermost, then K; the PE holds its words and partial sum (the rf_semantics test's
    free accumulator: by the bit, rf reads 6 + 6 + 2 B, writes 3 + 6 + 2 B; DRAM 3 + 6 B
    read, 2 B written). In whole port words: each 8-bit input or weight read from the 16-bit
    rf is a 16-bit access (12 B each); the two finished outputs leave the PE one at a time
    (2 x 16 bits, 4 B) and are drained together (16 bits, 2 B); the rf takes its 3 inputs in
    one transfer of 24 bits (2 accesses, 4 B) and its 6 weights in 48 bits (3, 6 B); DRAM
    moves one 64-bit access per transfer: inputs, weights, outputs 8 B each.
    Energy: rf reads 26 B x 8 / 16 x 1 pJ = 13, writes 14 B x 8 / 16 x 2 pJ = 14, DRAM
    (16 + 8) B x 8 / 64 x 100 pJ = 300, MACs 3: 330 pJ."""
    c = _cost(dataclasses.replace(ONE_PE, port_words=True), GEMV, ("C", "K"))
    assert dict(c.accesses) == pytest.approx({
        "rf.input.reads": 12, "rf.weight.reads": 12, "rf.output.reads": 2,
        "rf.input.writes": 4, "rf.weight.writes": 6, "rf.output.writes": 4,
        "dram.input.reads": 8, "dram.weight.reads": 8, "dram.output.writes": 8})
    assert c.energy_pj == pytest.approx(13 + 14 + 300 + 3)
    # an 8-bit access on the rf's read port: its reads cost by the word again (6, 6, 2 B)
    rf, dram = ONE_PE.levels
    narrow = dataclasses.replace(ONE_PE, port_words=True, levels=(dataclasses.replace(rf, read_access_bits=8), dram))
    acc = _cost(narrow, GEMV, ("C", "K")).accesses
    assert (acc["rf.input.reads"], acc["rf.weight.reads"], acc["rf.output.reads"]) == (6, 6, 2)
    # by the bit (the default) the timing is the same: port words price, they do not move
    assert _cost(ONE_PE, GEMV, ("C", "K")).cycles == c.cycles


def test_an_access_wider_than_its_port_is_refused():
    with pytest.raises(HwsimError, match="rf.read_access_bits: 32 bits exceed the read port's 16"):
        Level("rf", ("input",), 16, read_bits=16, read_access_bits=32)


def test_psum_reads_on_every_write_by_hand():
    """C innermost, K outer, no PE accumulator: every MAC writes its partial sum to the rf
    (6 x 16 bits). Read back on revisits only, 4 of them are read (the rf_semantics test);
    ZigZag reads one per write, the first MAC of each output too: 6 x 16 bits, 12 B, and
    the drain (2 B). Energy: rf reads (6 + 6 + 14) B x 8 / 16 = 13 pJ, 2 more than 11."""
    zz = dataclasses.replace(ONE_PE, pe_accumulator=False)
    revisits = _cost(zz, GEMV, ("C", "K"))
    writes = _cost(dataclasses.replace(zz, psum_reads="writes"), GEMV, ("C", "K"))
    assert revisits.accesses["rf.output.reads"] == 8 + 2 and writes.accesses["rf.output.reads"] == 12 + 2
    assert writes.accesses["rf.output.writes"] == revisits.accesses["rf.output.writes"] == 12
    assert writes.energy_pj - revisits.energy_pj == pytest.approx(2.0)


def test_psum_reads_count_a_reduction_across_the_array():
    """O[0] = W[0][0] I[0] + W[0][1] I[1] on two PEs (C on the columns), each with its own
    partial-sum register (16-bit ports, 1 pJ a read or write) under a shared buffer: no loop
    is timed. Each register is written once; with reads on revisits it is read once, to
    leave its 8-bit product for the buffer (2 x 1 B). ZigZag counts a reduction left across
    the registers' instances as partial sums held: each register writes and reads its
    16-bit partial sum (2 x 2 B each way), then leaves it, 8 bits (2 x 1 B)."""
    arch = SpatialArch(name="two", rows=1, cols=2, word_bits=8, acc_bits=16, unrollings=(("K", "C"),), levels=(
        Level("oreg", ("output",), 2, per_pe=True, read_bits=16, write_bits=16, read_pj=1.0, write_pj=1.0),
        Level("buf", ("input", "weight", "output"), 64, read_bits=64, write_bits=64),
        Level("dram", ("input", "weight", "output"), 0, kind="dram")), pe_accumulator=False)
    nest = Nest({"G": 1, "B": 1, "K": 1, "C": 2, "OY": 1, "OX": 1, "FY": 1, "FX": 1})
    revisits = _cost(arch, nest, ())
    writes = _cost(dataclasses.replace(arch, psum_reads="writes"), nest, ())
    assert (revisits.accesses["oreg.output.writes"], revisits.accesses["oreg.output.reads"]) == (2, 2)
    assert (writes.accesses["oreg.output.writes"], writes.accesses["oreg.output.reads"]) == (4, 4 + 2)


# one PE with a 4-byte register for all three operands, a buffer (64-bit ports) and DRAM on one
# 8-bit port: K 8, C 1, so 8 MACs (K2 K2 K2); the register takes no loop, the buffer all
STREAMED = SpatialArch(name="streamed", rows=1, cols=1, word_bits=8, acc_bits=16, unrollings=(("K", "C"),), levels=(
    Level("reg", ("input", "weight", "output"), 4, per_pe=True, read_bits=32, write_bits=32, kind="rf"),
    Level("buf", ("input", "weight", "output"), 1024, read_bits=64, write_bits=64),
    Level("dram", ("input", "weight", "output"), 0, read_bits=8, write_bits=8, shared_port=True, kind="dram")))
K8 = Nest({"G": 1, "B": 1, "K": 8, "C": 1, "OY": 1, "OX": 1, "FY": 1, "FX": 1})


def test_loading_overlapped_by_hand():
    """8 iterations. "tile": the register's 8 weight refills and first input, the buffer's
    one fill of each, are loaded before use (1 cycle each: 4 cycles of stall); DRAM's port
    is busy 9 cycles (72 bits read) beside the 12, the array's first input and weight come
    from DRAM first (2) and the 8 outputs (64 bits) drain after the array (8): 22 cycles.
    "overlapped" (ZigZag's): no first load stalls, each boundary's first input and last
    output tile cross before and after, the slower port's time (1 cycle each, the register's
    and the buffer's), except the tiles crossing once per layer at DRAM: the 8 weights
    (8 cycles) and the 8 outputs (8) share DRAM's 8 idle cycles of the compute, the weights
    first (7 of them: 1 left), the outputs the last one (7 left); the input's 1 cycle is its
    floor. Onloading: the two inputs share every port (levels holding both): 1 + 1 each,
    2 + 2 = 4; offloading 1 + 7 = 8: 8 + 4 + 8 = 20."""
    tile = _cost(STREAMED, K8, ("K",))
    overlapped = _cost(dataclasses.replace(STREAMED, loading="overlapped"), K8, ("K",))
    assert tile.mapping.bounds[(0, "weight")] == 0 and tile.mapping.bounds[(1, "weight")] == 3
    assert (tile.compute_cycles, tile.cycles, overlapped.cycles) == (8, 22, 20)
    assert dict(overlapped.accesses) == dict(tile.accesses)


# ZigZag's own mapping of two ResNet-18 layers on its tpu_like (examples/zigzag/tpu_like.yaml,
# the same figures as ZigZag 3.9.1's inputs/hardware/tpu_like.yaml), from its
# CostModelEvaluation (benchmarks/zigzag_stock_designs.py): K 32 on D1, C on D2; temporal loops
# innermost first; the loops below each memory's tile (rf_128B: weights, rf_2B: outputs,
# sram_2MB: inputs and outputs, dram). energy_total and latency_total2 as ZigZag gives them
# (validation/data/spatial.csv holds the energies); word accesses from memory_word_access.
TPU_LAYERS = {
    "conv1": ("conv:1,3,224,224,64,7,7,2,3", 3, (("FX", 7), ("FY", 7), ("OY", 16), ("OY", 7), ("OX", 112), ("K", 2)),
              2, 128899782.592, 1248163, {"rf_2B.output": 118013952 * 2 + 2408448, "rf_128B.weight": 118013952 + 9408,
                                           "sram_2MB.input": 38416 + 588, "dram.input": 18816}),
    "layer1.0.conv1": ("conv:1,64,56,56,64,3,3,1,1", 32, (("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56),
                                                          ("K", 2)),
                       3, 66996199.936, 138048, {"rf_2B.output": 115605504 * 2 + 6422528,
                                                 "rf_128B.weight": 115605504 + 36864, "sram_2MB.input": 14112 + 784,
                                                 "dram.input": 25088}),
}


@pytest.mark.parametrize("layer", sorted(TPU_LAYERS))
def test_zigzags_energy_to_the_pj_on_its_own_mapping_of_tpu_like(layer):
    """hwsim's cost model on ZigZag's mapping gives ZigZag's energy_total exactly (port
    words, partial sums read per write, conv1's input 3 x 224 x 224 without its padding)
    and the words ZigZag counts per memory (in ZigZag's words: bandwidth_max bits, rounded
    to bandwidth_min per transfer). Its cycles are ZigZag's latency_total2 less the
    systolic drain ZigZag adds on tpu_like's systolic dimensions (one cycle per PE along
    each unrolled side less one: 31 + 2 for C 3, 31 + 31), which hwsim does not model."""
    spec, c_side, loops, o_bound, energy, cycles, words = TPU_LAYERS[layer]
    arch = resolve_arch(f"zigzag:{ROOT}/examples/zigzag/tpu_like.yaml:{ROOT}/examples/zigzag/tpu_like_mapping.yaml")
    assert isinstance(arch, SpatialArch)
    n = len(loops)
    bounds = {(0, "weight"): n, (1, "output"): o_bound, (2, "output"): n, (2, "input"): n}
    bounds |= {(3, o): n for o in ("input", "weight", "output")}
    m = Mapping_(("K", "C"), {"K": 32, "C": c_side}, loops, bounds)
    c = evaluate(of_op(adhoc(spec + ":int8").ops[0]), arch, m, BITS, 8)
    assert c.energy_pj == pytest.approx(energy, rel=1e-12)
    assert c.cycles == cycles - 31 - (c_side - 1)
    for key, n_words in words.items():
        lv = next(x for x in arch.levels if x.name == key.split(".")[0])
        moved = sum(v for k, v in c.accesses.items() if k.startswith(key + "."))
        assert moved * 8 / lv.read_bits * (2 if lv.name == "rf_2B" else 1) == n_words, key


ZZ = Path(os.environ.get("ZIGZAG_INPUTS", "/work/venvs/zigzag/lib/python3.11/site-packages/zigzag/inputs"))
needs_zigzag = pytest.mark.skipif(not (ZZ / "hardware").is_dir(), reason="ZigZag 3.9.1's inputs not installed "
                                                                       "(set ZIGZAG_INPUTS)")
# ResNet-18's layer1.0.conv1 (conv:1,64,56,56,64,3,3,1,1) on ZigZag's stock designs, as ZigZag 3.9.1
# maps it (LOMA, latency): its spatial factors, its temporal loops per operand and memory level
# (innermost first, a list per memory of that operand's hierarchy), its energy_total (pJ) and
# latency_total2 (benchmarks/zigzag_stock_designs.py's run of ZigZag)
_T = {"C4F3": [("C", 4), ("FX", 3)], "C32": [("C", 32), ("FY", 3), ("FX", 3)]}
STOCK_LAYER1 = {
    "ascend_like": ("ascend_like", {"K": 16, "C": 16, "OX": 2, "OY": 2}, {
        "output": [_T["C4F3"], [("OY", 28), ("K", 4), ("FY", 3)], [("OX", 28)], []],
        "weight": [[], _T["C4F3"] + [("OY", 28)], [("K", 4), ("FY", 3), ("OX", 28)], []],
        "input": [_T["C4F3"], [("OY", 28), ("K", 4), ("FY", 3), ("OX", 28)], []]}, 64412869.12, 112998),
    "generic_array_cacti": ("default", {"K": 32, "C": 32}, {
        "output": [[("K", 2), ("C", 2), ("FY", 3), ("FX", 3)], [("OY", 56), ("OX", 56)], []],
        "weight": [[("K", 2), ("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56)], [], []],
        "input": [[("K", 2), ("C", 2), ("FY", 3), ("FX", 3)], [("OY", 56), ("OX", 56)], []]}, 47849407.36, 112917),
    "meta_prototype": ("meta_prototype_like", {"C": 2, "K": 32, "OY": 4, "OX": 4}, {
        "output": [_T["C32"], [("OY", 14), ("K", 2), ("OX", 14)], []],
        "weight": [[], _T["C32"] + [("OY", 14), ("K", 2), ("OX", 14)], [], []],
        "input": [_T["C32"] + [("OY", 14), ("K", 2)], [("OX", 14)], []]}, 52871873.28, 116261),
    "edge_tpu_like": ("edge_tpu_like", {"C": 8, "K": 8, "OY": 4, "OX": 4}, {
        "output": [[("C", 8), ("FY", 3), ("FX", 3)], [("OY", 14), ("OX", 14), ("K", 8)], []],
        "weight": [[], [("C", 8), ("FY", 3), ("FX", 3), ("OY", 14), ("OX", 14)], [("K", 8)]],
        "input": [[("C", 8), ("FY", 3), ("FX", 3), ("OY", 14), ("OX", 14), ("K", 8)], []]}, 71980245.12, 137986),
}


@needs_zigzag
@pytest.mark.parametrize("design", sorted(STOCK_LAYER1))
def test_zigzags_energy_and_cycles_on_its_own_mapping_of_its_stock_designs(design):
    """On ZigZag's own mapping of layer1.0.conv1, hwsim's cost model gives ZigZag's
    energy_total to the pJ and its latency_total2 to the cycle: on- and offloading
    (ascend_like: 72 and 30 cycles), the memory-updating windows, port words (generic_array's
    8-bit operands on 16-bit register ports), partial sums read back per write."""
    mapping, sp, tm, energy, cycles = STOCK_LAYER1[design]
    arch = resolve_arch(f"zigzag:{ZZ}/hardware/{design}.yaml:{ZZ}/mapping/{mapping}.yaml")
    assert isinstance(arch, SpatialArch)
    loops = tuple(x for lv in tm["output"] for x in lv)
    bounds = {}
    for o, levels in tm.items():
        n = 0
        for i, lv in zip(arch.chain(o), levels):
            n += len(lv)
            bounds[(i, o)] = n
    c = evaluate(of_op(adhoc("conv:1,64,56,56,64,3,3,1,1:int8").ops[0]), arch,
                 Mapping_(arch.unrollings[0], sp, loops, bounds), BITS, 8)
    assert (c.cycles, c.energy_pj) == (cycles, pytest.approx(energy, rel=1e-12))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_search_bound_stays_below_under_zigzags_rules(data):
    """Random nests, loop orders and designs with ZigZag's options drawn: the pruning bound
    (cost.lower_bound) never exceeds the cost, whole port words never price below the bits
    moved, and partial sums read per write never fewer than per revisit."""
    d = data.draw
    arch = SpatialArch(name="small", rows=2, cols=3, pe_accumulator=d(st.booleans()),
                       port_words=d(st.booleans()), loading=d(st.sampled_from(["tile", "overlapped"])), levels=(
        Level("wreg", ("weight",), 4, per_pe=True, read_bits=8, write_bits=d(st.sampled_from([8, 16])),
              read_pj=0.1, write_pj=0.1, kind="rf"),
        Level("oreg", ("output",), 8, per_pe=True, read_bits=32, write_bits=32, read_access_bits=16, read_pj=0.2,
              write_pj=0.2, kind="rf"),
        Level("buf", ("input", "output"), 4000, read_bits=d(st.sampled_from([8, 64])), write_bits=64,
              shared_port=d(st.booleans()), double_buffered=d(st.booleans()), read_pj=2.0, write_pj=2.0),
        Level("dram", ("input", "weight", "output"), 0, read_pj=50.0, write_pj=50.0, kind="dram")),
        unrollings=(("C", "K"), ("OX", "K")))
    drawn = draw_mapping(d, arch)
    if drawn is None:
        return
    nest, sp, loops, m = drawn
    archs = {"revisits": arch, "writes": dataclasses.replace(arch, psum_reads="writes")}
    costs = {p: evaluate(nest, a, m, BITS, 8) for p, a in archs.items()}
    for p, c in costs.items():
        lb_cycles, lb_energy = lower_bound(nest, archs[p], m, BITS, 8, Footprints(nest, sp, loops))
        assert lb_energy <= c.energy_pj and lb_cycles <= c.cycles
    bits = evaluate(nest, dataclasses.replace(arch, port_words=False), m, BITS, 8).accesses
    for k, v in costs["revisits"].accesses.items():
        assert v >= bits[k] - 1e-9 and costs["writes"].accesses.get(k, 0) >= v - 1e-9, k

"""What the PEs hold outside the declared levels (SpatialArch.pe_accumulator and
operand_registers): access counts and energy of a tiny nest on one PE derived by hand, for
hwsim's free registers and for ZigZag's cost model (a read-modify-write of the partial sum
per MAC), against the cost model, the walk of the nest and the stepper."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import hypothesis
import pytest
from hypothesis import given, settings, strategies as st

from sim.registry import resolve_arch
from sim.spatial import Level, SpatialArch
from sim.spatial.cost import Footprints, allocate, evaluate, loops_for, lower_bound, spatial_factors, temporal
from sim.spatial.nest import DIMS, Nest
from sim.spatial.reference import walk
from sim.spatial.stepper import schedule, schedule_cycles, streams

BITS = {"input": 8, "weight": 8}
OUT_BITS = 8
# one PE, one register file for every operand (16-bit ports: 1 pJ per read, 2 pJ per write,
# so 1/16 pJ per bit read and 1/8 per bit written), DRAM at 100 pJ per 64 bits, 0.5 pJ per MAC
ONE_PE = SpatialArch(name="one-pe", rows=1, cols=1, word_bits=8, acc_bits=16, mac_pj=0.5, levels=(
    Level("rf", ("input", "weight", "output"), 16, per_pe=True, read_bits=16, write_bits=16, read_pj=1.0,
          write_pj=2.0, kind="rf"),
    Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, read_pj=100.0, write_pj=100.0,
          kind="dram")),
    unrollings=(("K", "C"),))
# ZigZag's PEs keep no partial sum (its read-modify-write per MAC); ZigZag's full count also
# reads the partial sum on each output's first MAC (psum_reads: tests/test_spatial_zigzag_rules.py)
ZIGZAG = dataclasses.replace(ONE_PE, pe_accumulator=False, operand_registers="port")
# O[k] += W[k][c] * I[c], K = 2, C = 3: 6 MACs
GEMV = Nest({"G": 1, "B": 1, "K": 2, "C": 3, "OY": 1, "OX": 1, "FY": 1, "FX": 1})


def _cost(arch: SpatialArch, order: tuple[str, ...]):
    loops = loops_for(order, temporal(GEMV, spatial_factors(GEMV, ("K", "C"), 1, 1)))
    m = allocate(GEMV, arch, ("K", "C"), loops, BITS)
    assert m is not None and m.bounds[(0, "output")] == len(loops)       # the whole layer fits the rf
    return m, evaluate(GEMV, arch, m, BITS, OUT_BITS)


def test_free_accumulator_by_hand():
    """C innermost, then K. The PE accumulates O[k] over c in its own register: the rf is
    written each output once, when it is done (2 x 8 bits), and read once to drain it to
    DRAM (16 bits); never read back. Input and weight words change every MAC (c moves):
    6 reads each of 8 bits. The rf is filled from DRAM: 3 inputs, 6 weights.
    Energy: rf reads (48 + 48 + 16) / 16 = 7 pJ; rf writes (24 + 48 + 16) / 8 = 11 pJ;
    DRAM reads (24 + 48) x 100 / 64 = 112.5 pJ, writes 16 x 100 / 64 = 25 pJ; MACs 3 pJ."""
    m, c = _cost(ONE_PE, ("C", "K"))
    acc = dict(c.accesses)
    assert acc == pytest.approx({
        "rf.input.reads": 6, "rf.weight.reads": 6, "rf.output.reads": 2,
        "rf.input.writes": 3, "rf.weight.writes": 6, "rf.output.writes": 2,
        "dram.input.reads": 3, "dram.weight.reads": 6, "dram.output.writes": 2})
    assert c.energy_pj == pytest.approx(7 + 11 + 112.5 + 25 + 3)
    assert walk(GEMV, ONE_PE, m, BITS, OUT_BITS) == pytest.approx(acc)


def test_zigzag_read_modify_write_by_hand():
    """The same mapping with ZigZag's PEs: every MAC writes its partial sum to the rf
    (6 x 16 bits), and every MAC but the first of each output reads it back (4 x 16 bits);
    the drain and the operands are as with a free accumulator (input and weight words change
    every MAC). Energy: rf reads 7 + 64 / 16 = 11 pJ, rf writes (24 + 48 + 96) / 8 = 21 pJ;
    DRAM and MACs unchanged: 172.5 pJ in all, 14 pJ more."""
    m, c = _cost(ZIGZAG, ("C", "K"))
    acc = dict(c.accesses)
    assert acc == pytest.approx({
        "rf.input.reads": 6, "rf.weight.reads": 6, "rf.output.reads": 8 + 2,
        "rf.input.writes": 3, "rf.weight.writes": 6, "rf.output.writes": 12,
        "dram.input.reads": 3, "dram.weight.reads": 6, "dram.output.writes": 2})
    assert c.energy_pj == pytest.approx(11 + 21 + 112.5 + 25 + 3)
    assert walk(GEMV, ZIGZAG, m, BITS, OUT_BITS) == pytest.approx(acc)


@pytest.mark.parametrize("registers, read_bits, input_reads", [
    ("pe", 16, 3), ("port", 16, 3), ("port", 4, 6), ("none", 16, 6)])
def test_operand_registers_by_hand(registers, read_bits, input_reads):
    """K innermost, then C: the input word I[c] is the same for both k. Held by the PE
    ("pe"), or at a read port that carries a whole 8-bit word ("port"), it is
    read from the rf once per c (3 reads); read every MAC (6) where the PE holds none or the
    port carries 4 bits. Weights change every MAC (6 reads); partial sums leave the PE every
    MAC either way (K moves): 6 writes of 16 bits, 4 read back, with or without an
    accumulator."""
    rf, dram = ONE_PE.levels
    arch = dataclasses.replace(ONE_PE, operand_registers=registers,
                               levels=(dataclasses.replace(rf, read_bits=read_bits), dram))
    for a in (arch, dataclasses.replace(arch, pe_accumulator=False)):
        m, c = _cost(a, ("K", "C"))
        acc = dict(c.accesses)
        assert acc["rf.input.reads"] == input_reads and acc["rf.weight.reads"] == 6
        assert (acc["rf.output.writes"], acc["rf.output.reads"]) == (12, 8 + 2)
        assert walk(GEMV, a, m, BITS, OUT_BITS) == pytest.approx(acc)


@pytest.mark.parametrize("arch", [ONE_PE, ZIGZAG], ids=["free", "zigzag"])
def test_stepper_moves_what_the_cost_model_counts(arch):
    """The stepper's stream from the rf into the PE carries one tile per count of the cost
    model: partial sums every MAC (6 write-backs, 4 read-backs) without an accumulator, once
    per output (2, none read back) with one; both engines agree."""
    m, c = _cost(arch, ("C", "K"))
    ss, iters = streams(GEMV, arch, m, BITS, OUT_BITS)
    out = next(s for s in ss if s.operand == "output" and s.child < 0)
    backs = sum(out.seen_before(e) for e in range(out.events))
    assert (out.events, backs) == ((2, 0) if arch.pe_accumulator else (6, 4))
    assert schedule(ss, iters) == schedule_cycles(ss, iters)
    assert schedule(ss, iters).cycles >= c.compute_cycles


def draw_mapping(d, arch: SpatialArch):
    """A small conv nest (K, C, OX, FX drawn), one of ``arch``'s unrollings and a random loop
    order, allocated to its levels: (nest, spatial factors, loops, mapping), or None where the
    tiles do not fit."""
    sizes = {k: 1 for k in DIMS} | {"K": d(st.sampled_from([3, 6])), "C": d(st.sampled_from([2, 4])),
                                    "OX": d(st.sampled_from([3, 6])), "FX": d(st.sampled_from([1, 3]))}
    nest = Nest(sizes, 1, 1, 1, 1, 1, sizes["OX"] + sizes["FX"] - 1)
    un = d(st.sampled_from(arch.unrollings))
    sp = spatial_factors(nest, un, arch.rows, arch.cols)
    trips = temporal(nest, sp)
    loops = loops_for(tuple(d(st.permutations([k for k in DIMS if trips[k] > 1]))), trips)
    m = allocate(nest, arch, un, loops, BITS)
    return None if m is None else (nest, sp, loops, m)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_semantics_agree_with_the_walk_and_the_engines(data):
    """Random nests and loop orders on a 2x3 array with per-PE and shared levels, under
    every combination of pe_accumulator and operand_registers: the cost model's counts equal
    the walk's, its pruning bound stays below it, and both stepper engines agree."""
    d = data.draw
    arch = SpatialArch(name="small", rows=2, cols=3, pe_accumulator=d(st.booleans()),
                       operand_registers=d(st.sampled_from(["pe", "port", "none"])), levels=(
        Level("wreg", ("weight",), 4, per_pe=True, read_bits=d(st.sampled_from([4, 8])), write_bits=8, kind="rf"),
        Level("oreg", ("output",), 8, per_pe=True, read_bits=32, write_bits=32, kind="rf"),
        Level("buf", ("input", "output"), 4000, read_bits=d(st.sampled_from([8, 64])), write_bits=64),
        Level("dram", ("input", "weight", "output"), 0, kind="dram")),
        unrollings=(("C", "K"), ("OX", "K")))
    drawn = draw_mapping(d, arch)
    if drawn is None:
        return
    nest, sp, loops, m = drawn
    hypothesis.event("compared")
    c = evaluate(nest, arch, m, BITS, OUT_BITS)
    assert walk(nest, arch, m, BITS, OUT_BITS) == pytest.approx(dict(c.accesses))
    lb_cycles, lb_energy = lower_bound(nest, arch, m, BITS, OUT_BITS, Footprints(nest, sp, loops))
    assert lb_energy <= c.energy_pj and lb_cycles <= c.cycles
    ss, iters = streams(nest, arch, m, BITS, OUT_BITS)
    assert schedule(ss, iters) == schedule_cycles(ss, iters)


def test_zigzag_designs_have_zigzags_pes_and_presets_keep_theirs():
    root = Path(__file__).resolve().parents[1] / "examples" / "zigzag"
    zz = resolve_arch(f"zigzag:{root / 'eyeriss_like.yaml'}:{root / 'default_mapping.yaml'}")
    assert isinstance(zz, SpatialArch)
    rules = ("pe_accumulator", "operand_registers", "psum_reads", "port_words", "loading")
    assert [getattr(zz, k) for k in rules] == [False, "pe", "writes", True, "overlapped"]
    tpu = resolve_arch("zigzag-tpu-like")
    assert isinstance(tpu, SpatialArch) and [getattr(tpu, k) for k in rules] == [getattr(zz, k) for k in rules]
    eyeriss = resolve_arch("eyeriss-like")
    assert isinstance(eyeriss, SpatialArch)
    assert [getattr(eyeriss, k) for k in rules] == [True, "pe", "revisits", False, "tile"]

"""The spatial family's cycle-level timing (sim.spatial.stepper): the fast engine against
the cycle-stepping reference on random mappings and designs, and a schedule derived by hand."""

from __future__ import annotations

import dataclasses

import hypothesis
import pytest
from hypothesis import given, settings, strategies as st

from sim.registry import resolve_arch, simulate
from sim.spatial import Level, SpatialArch
from sim.spatial.cost import allocate, loops_for, spatial_factors, temporal
from sim.spatial.nest import DIMS, Nest
from sim.spatial.search import best
from sim.spatial.stepper import schedule, schedule_cycles, streams
from workloads.errors import HwsimError
from workloads.spec import adhoc

BITS = {"input": 8, "weight": 8}
BASE = SpatialArch(name="small", rows=2, cols=3, levels=(
    Level("wreg", ("weight",), 4, per_pe=True, read_bits=8, write_bits=8, kind="rf"),
    Level("oreg", ("output",), 8, per_pe=True, read_bits=32, write_bits=32, kind="rf"),
    Level("buf", ("input", "output"), 200, read_bits=64, write_bits=64),
    Level("dram", ("input", "weight", "output"), 0, kind="dram")),
    unrollings=(("C", "K"), ("OX", "K"), ("FY*C", "OY")))


SMALL_NESTS = {"G": [1, 2], "B": [1, 2], "K": [3, 6], "C": [2, 4], "OY": [2, 3, 4], "OX": [3, 6], "FY": [1, 2, 3],
               "FX": [1, 3]}
LARGER_NESTS = {"G": [1, 2], "B": [1, 2, 4], "K": [3, 6, 12], "C": [2, 4, 8], "OY": [2, 4, 8], "OX": [3, 6, 12],
                "FY": [1, 3], "FX": [1, 3]}


def _random_mapping(d, choices: dict, ireg: bool = False) -> tuple[SpatialArch, Nest, object] | None:
    """A nest drawn from ``choices``, a variant of BASE (single or double buffers, shared or
    separate ports, narrow or wide ones, small or large buffer; the weight register single-
    buffered with separate ports takes its next tile in the last pass over its current one,
    and a narrow write port makes that refill outlast the pass) and a random loop order,
    allocated; None where the allocation fails. ``ireg``: an input register under the buffer
    too (Eyeriss's ifmap scratchpad), so that a refill in the last pass may follow the reads
    below it while the tile above it changes (three levels of one operand)."""
    sizes = {k: d(st.sampled_from(choices[k])) for k in DIMS}
    stride = d(st.sampled_from([1, 2]))
    nest = Nest(sizes, stride, stride, 1, 1, (sizes["OY"] - 1) * stride + sizes["FY"],
                (sizes["OX"] - 1) * stride + sizes["FX"])
    wreg, oreg, buf, dram = BASE.levels
    arch = dataclasses.replace(BASE, levels=(
        dataclasses.replace(wreg, double_buffered=d(st.booleans()), shared_port=d(st.booleans()),
                            write_bits=d(st.sampled_from([8, 2]))),
        dataclasses.replace(oreg, double_buffered=d(st.booleans())),
        dataclasses.replace(buf, double_buffered=d(st.booleans()), shared_port=d(st.booleans()),
                            read_bits=d(st.sampled_from([8, 64, 256])), size_bytes=d(st.sampled_from([60, 200, 4000]))),
        dataclasses.replace(dram, read_bits=d(st.sampled_from([16, 64])), shared_port=d(st.booleans()))))
    if ireg:
        arch = dataclasses.replace(arch, levels=(
            Level("ireg", ("input",), d(st.sampled_from([4, 8, 16])), per_pe=True, read_bits=8,
                  write_bits=d(st.sampled_from([8, 2])), double_buffered=d(st.booleans()),
                  shared_port=d(st.booleans()), kind="rf"),) + arch.levels)
    un = d(st.sampled_from(arch.unrollings))
    trips = temporal(nest, spatial_factors(nest, un, arch.rows, arch.cols))
    order = d(st.permutations([k for k in DIMS if trips[k] > 1]))
    m = allocate(nest, arch, un, loops_for(tuple(order), trips), BITS)
    return None if m is None else (arch, nest, m)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_fast_engine_equals_cycle_stepping(data):
    """Any mapping the allocation yields, on designs with single or double buffers, shared
    or separate ports and narrow or wide ones: the recurrence gives the cycles, stalls and
    drain that stepping every cycle gives, and never less than the iterations or than the
    busiest port's work."""
    drawn = _random_mapping(data.draw, SMALL_NESTS, ireg=data.draw(st.booleans()))
    if drawn is None:
        return
    hypothesis.event("compared")
    arch, nest, m = drawn
    ss, iters = streams(nest, arch, m, BITS, 8)
    fast, ref = schedule(ss, iters), schedule_cycles(ss, iters)
    assert fast == ref
    busy: dict[str, int] = {}
    for s in ss:
        loads = s.events if s.operand != "output" else sum(s.seen_before(e) for e in range(s.events))
        for p, c in s.load_ports:
            busy[p] = busy.get(p, 0) + loads * c
        if s.operand == "output":
            for p, c in s.store_ports:
                busy[p] = busy.get(p, 0) + s.events * c
    assert fast.cycles >= max([iters, *busy.values()])
    assert fast.cycles == iters + fast.stall_cycles + fast.drain_cycles


def _gemm_design(double: bool) -> tuple[SpatialArch, Nest]:
    arch = SpatialArch(name="t", rows=8, cols=8, word_bits=8, acc_bits=32, levels=(
        Level("buf", ("input", "weight", "output"), 1 << 20, read_bits=256, write_bits=256, double_buffered=double),
        Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, shared_port=True, kind="dram")),
        unrollings=(("C", "K"),))
    return arch, Nest({"G": 1, "B": 1, "K": 8, "C": 8, "OY": 1, "OX": 64, "FY": 1, "FX": 1}, in_w=64)


@pytest.mark.parametrize("double", [False, True])
def test_stepped_schedule_by_hand(double):
    """8x8 array, one 1 MiB buffer with 256-bit ports, a shared 64-bit DRAM port; a 64x8 @ 8x8
    int8 GEMM with C and K on the array and 64 timed steps; the whole layer fits the buffer,
    so each operand is one buffer tile (double buffering changes nothing).
    Cycle 0 issues the loads shortest first: the 64 B of weights take the DRAM port for 8
    cycles, then shift into the PEs through the buffer's read port (512 bits: 2 cycles, 8..10);
    the 512 B of inputs follow on the DRAM port (8..72), arriving a row per cycle, the first
    at 9, and the first input row moves to the array at 10..11. Iteration 0 runs at 11.
    Each iteration's 8 outputs (64 bits) go back to the buffer's write port (1 cycle), which
    the input fill holds for 4096 bits / 256 = 16 cycles (8..24): the first write-back waits
    until 24, so iteration 2, whose output registers it frees, runs at 25 (12 cycles lost);
    the rest follow one per cycle, the last at 86. Its write-back arrives at 88, then the
    512 B of outputs leave on the DRAM port: 64 cycles, done at 152."""
    arch, nest = _gemm_design(double)
    c = best(nest, arch, BITS, 8)
    ss, iters = streams(nest, arch, c.mapping, BITS, 8)
    for engine in (schedule, schedule_cycles):
        t = engine(ss, iters)
        assert (t.cycles, t.compute_cycles, t.stall_cycles, t.drain_cycles) == (152, 64, 11 + 12, 152 - 87)


def test_timing_stepped_runs_through_simulate(tmp_path):
    arch, nest = _gemm_design(True)
    path = tmp_path / "stepped.yaml"
    path.write_text("base: eyeriss-like\ntiming: stepped\n")
    stepped = resolve_arch(str(path))
    assert isinstance(stepped, SpatialArch) and stepped.timing == "stepped"
    wl = adhoc("gemm:16,12,24:int8")
    a = simulate(wl, resolve_arch("eyeriss-like")).ops[0]
    b = simulate(wl, stepped).ops[0]
    assert a.extra.mapping == b.extra.mapping and a.macs == b.macs       # the same mapping, counted step by step
    assert b.cycles >= b.extra.compute_cycles and b.stall_cycles == b.cycles - b.extra.compute_cycles
    with pytest.raises(HwsimError, match="timing: must be one of analytical, stepped"):
        dataclasses.replace(arch, timing="fast")


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_window_jumps_equal_walking_every_window(data):
    """Larger nests, where windows of iterations repeat and the fast engine adds them in one
    step: the same cycles, stalls, drain and transfers as walking every window."""
    drawn = _random_mapping(data.draw, LARGER_NESTS, ireg=data.draw(st.booleans()))
    if drawn is None:
        return
    arch, nest, m = drawn
    ss, iters = streams(nest, arch, m, BITS, 8)
    assert schedule(ss, iters) == schedule(ss, iters, jump=False)


def test_window_jumps_equal_cycle_stepping_on_a_long_run():
    arch, nest = _gemm_design(False)
    nest = Nest({"G": 1, "B": 1, "K": 16, "C": 16, "OY": 1, "OX": 512, "FY": 1, "FX": 1}, in_w=512)
    lv = (dataclasses.replace(arch.levels[0], size_bytes=4096), arch.levels[1])
    arch = dataclasses.replace(arch, levels=lv)
    c = best(nest, arch, BITS, 8)
    ss, iters = streams(nest, arch, c.mapping, BITS, 8)
    fast = schedule(ss, iters)
    assert fast == schedule_cycles(ss, iters) == schedule(ss, iters, jump=False)
    assert iters >= 2048


def test_a_stepped_op_past_the_time_limit_is_refused_in_one_line():
    from sim import budget
    from sim.spatial.simulate import simulate_op
    from workloads.build import conv_op

    arch = dataclasses.replace(resolve_arch("eyeriss-like"), timing="stepped")
    op = conv_op("big", 4, 64, 56, 56, 64, 3, 3, pad=1, bits=16, dtype="int")
    with budget.limited(max_time_s=1e-6), pytest.raises(HwsimError) as e:
        simulate_op(op, arch)
    msg = str(e.value)
    assert msg.startswith("big: stepping its mapping on eyeriss-like passed the") and "--max-time" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("double, shared, cycles, stall", [(False, True, 14, 5), (False, False, 12, 3),
                                                            (True, False, 12, 3)])
def test_double_buffering_by_hand(double, shared, cycles, stall):
    """One MAC; 8 int8 inputs stream through a buffer that holds 4 of them (a double buffer
    holds 4 in each half), weights and outputs straight from and to DRAM, whose read and write
    ports move a byte per cycle each. Cycle 0: the weight (1 byte, 0..1), then the first
    4 inputs (1..5, one every cycle), input 0 into the MAC at 2..3: iteration 0 runs at 3,
    then one per cycle, each output written back in a cycle. Single-buffered on one shared
    port, inputs 4-7 are fetched only after iteration 3 (at 7..11): input 4 reaches the MAC at
    9, 2 cycles late, and the last write-back ends at 14. Double-buffered, they are fetched
    from cycle 5, as soon as the DRAM port is free, and nothing waits: 12. Single-buffered
    with separate read and write ports, the tile's one loop is over inputs, so its last pass
    is all of it: the refill may start once the MAC has begun reading input 0 (cycle 2) and
    takes the DRAM port at 5, as the double buffer does (input 4 overwrites input 0, input 5
    input 1 at 7, after the MAC read it at 3, ...): 12."""
    arch = SpatialArch(name="db", rows=1, cols=1, word_bits=8, acc_bits=32, levels=(
        Level("buf", ("input",), 8 if double else 4, read_bits=64, write_bits=64, double_buffered=double,
              shared_port=shared),
        Level("dram", ("input", "weight", "output"), 0, read_bits=8, write_bits=8, kind="dram")),
        unrollings=(("C", "K"),))
    nest = Nest({"G": 1, "B": 1, "K": 1, "C": 1, "OY": 1, "OX": 8, "FY": 1, "FX": 1}, in_w=8)
    m = allocate(nest, arch, ("C", "K"), loops_for(("OX",), temporal(nest, {"C": 1, "K": 1})), BITS)
    assert m is not None and m.bounds[(0, "input")] == 2           # 4 inputs per buffer tile
    ss, iters = streams(nest, arch, m, BITS, 8)
    for engine in (schedule, schedule_cycles):
        t = engine(ss, iters)
        assert (t.cycles, t.stall_cycles, t.drain_cycles) == (cycles, stall, 1)


def _one_word_register(double: bool, shared: bool, write_bits: int = 8) -> tuple[SpatialArch, Nest, object]:
    """One MAC whose weight sits in a one-byte register (two bytes when double-buffered) filled
    from DRAM; 4 filters (K) over 4 output columns (OX): OX innermost, so the weight changes
    every 4 iterations (3 refills after the first), as the 3-D and 4-D ZigZag designs' rf_1B."""
    arch = SpatialArch(name="w", rows=1, cols=1, word_bits=8, acc_bits=32, levels=(
        Level("wreg", ("weight",), 2 if double else 1, per_pe=True, read_bits=8, write_bits=write_bits,
              shared_port=shared, double_buffered=double, kind="rf"),
        Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, kind="dram")),
        unrollings=(("C", "K"),))
    nest = Nest({"G": 1, "B": 1, "K": 4, "C": 1, "OY": 1, "OX": 4, "FY": 1, "FX": 1}, in_w=4)
    m = allocate(nest, arch, ("C", "K"), (("OX", 4), ("K", 4)), BITS)
    assert m is not None and m.bounds[(0, "weight")] == 1          # the register holds one weight over OX
    return arch, nest, m


def test_one_word_register_refilled_in_its_window():
    """The register's tile is one weight; above it OX 4, which the weight does not depend on,
    so its last pass is the last iteration (``last_pass`` 1) and a one-cycle refill fits it.
    Stepped: with separate read and write ports the refill is hidden as a double buffer hides
    it (the same cycles); on one shared port it waits for the tile's last iteration, and each
    of the 3 refills after the first costs the array at least its one-cycle write. Closed form
    (``evaluate``): 16 iterations + the first fill (1 cycle) + 3 x max(0, 1 - 1) = 17, against
    16 + 4 x 1 = 20 on a shared port (the ports' traffic, 2.5 cycles of DRAM reads, does not
    bind; the first operands' 16 bits on a 64-bit port round away)."""
    from sim.spatial.cost import evaluate, last_pass

    runs = {}
    for double, shared in ((False, False), (True, False), (False, True)):
        arch, nest, m = _one_word_register(double, shared)
        ss, iters = streams(nest, arch, m, BITS, 8)
        runs[(double, shared)] = schedule(ss, iters)
        assert runs[(double, shared)] == schedule_cycles(ss, iters)
        if not double:
            assert last_pass(m.loops, m.bounds[(0, "weight")], "weight") == 1
            assert evaluate(nest, arch, m, BITS, 8).cycles == (20 if shared else 17)
    assert runs[(False, False)].cycles == runs[(True, False)].cycles
    assert runs[(False, True)].cycles >= runs[(False, False)].cycles + 3


def test_a_refill_longer_than_its_window_stalls():
    """The same register with a 2-bit write port: a refill takes 4 cycles and its window is
    1 iteration, so the closed form waits 4 + 3 x (4 - 1) = 13 cycles: 16 + 13 = 29. Stepped,
    the PE holds the weight it multiplies (``operand_registers`` pe), so the register's word is
    no longer needed once the PE has begun reading it: the refill may start a whole tile
    earlier than ZigZag's window and the array waits less than the closed form says, but
    more than with the 8-bit port."""
    from sim.spatial.cost import evaluate

    arch, nest, m = _one_word_register(False, False, write_bits=2)
    assert evaluate(nest, arch, m, BITS, 8).cycles == 29
    ss, iters = streams(nest, arch, m, BITS, 8)
    slow = schedule(ss, iters)
    assert slow == schedule_cycles(ss, iters)
    arch8, nest8, m8 = _one_word_register(False, False)
    fast = schedule(*streams(nest8, arch8, m8, BITS, 8))
    assert fast.cycles < slow.cycles < 29


def test_window_jumps_on_a_known_counterexample():
    """Found by a random draw: a transfer that started exactly at a window's floor and was still
    arriving kept its old start when the windows were added at once (699 cycles, not 700)."""
    vals = iter([1, 2, 6, 4, 2, 3, 2, 3, 1, False, False, 8, True, False, False, 64, 4000, 16, False, ("C", "K"),
                 ["C", "B", "K", "OY", "OX", "FY", "FX"]])
    arch, nest, m = _random_mapping(lambda _: next(vals), SMALL_NESTS)
    ss, iters = streams(nest, arch, m, BITS, 8)
    assert schedule(ss, iters, jump=False) == schedule_cycles(ss, iters)
    assert schedule(ss, iters) == schedule_cycles(ss, iters)


def test_window_jumps_stop_where_a_load_ahead_reaches_the_next_tile():
    """Found by a random draw: the input register is refilled during the reads below it (lead 9
    on an 8-iteration tile), so the second-to-last window of a buffer tile already issues the
    load of the register tile that starts the buffer's next one, and it waits for that buffer
    tile (not yet issued). The windows' key keeps such a window out of a jump (895 cycles, not
    923)."""
    vals = iter([2, 1, 3, 8, 2, 3, 1, 3, 1, False, False, 8, False, False, True, 8, 200, 16, False, 8, 8, False, False,
                 ("C", "K"), ["G", "C", "OY", "FX", "OX"]])
    arch, nest, m = _random_mapping(lambda _: next(vals), LARGER_NESTS, ireg=True)
    ss, iters = streams(nest, arch, m, BITS, 8)
    refill, buffer = ss[1], ss[0]                       # the register's refill and the buffer's tiles above it
    assert refill.up == 0 and refill.trail is not None and buffer.period > refill.lead > refill.period
    assert schedule(ss, iters) == schedule_cycles(ss, iters) == schedule(ss, iters, jump=False)
    assert schedule(ss, iters).cycles == 895

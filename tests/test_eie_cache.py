"""The per-process memos of synthetic EIE layers, their column-major form and their plans
(sim.eie.memo): what they hand out equals what is built afresh, is read-only, is keyed by
everything it depends on, and the memos stay within their bounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.eie import PRESETS, simulate, synthetic
from sim.eie.encode import SYNTHETIC, SparseLayer, _column_major, _synthetic, column_major
from sim.eie.engine import PLANS, LayerPlan, _plan_layer, plan_layer
from sim.eie.memo import Memo
from workloads.build import gemm_op
from workloads.trace import Workload

EIE = PRESETS["eie-64"]


def _fresh(layer: SparseLayer) -> SparseLayer:
    """The same layer with arrays of its own and no recipe: nothing memoised about it."""
    return SparseLayer(layer.shape, layer.rows.copy(), layer.cols.copy(), layer.idx.copy(), layer.codebook.copy(),
                       layer.frac_bits)


def _same_plan(a: LayerPlan, b: LayerPlan) -> None:
    assert a.shape == b.shape and len(a.batches) == len(b.batches)
    np.testing.assert_array_equal(a.col_nnz, b.col_nnz)
    for (r0, e, p, t), (r1, e1, p1, t1) in zip(a.batches, b.batches):
        assert r0 == r1 and t == t1
        np.testing.assert_array_equal(e, e1)
        np.testing.assert_array_equal(p, p1)


@pytest.mark.parametrize("args", [(300, 200, 0.1, 3, 4, 12), (64, 50, 0.9, 1, 4, 12), (1000, 37, 0.02, 7, 3, 8)])
def test_a_kept_layer_equals_a_fresh_one_and_is_read_only(args):
    rows, cols, density, seed, ib, fb = args
    kept = synthetic(rows, cols, density, seed, ib, fb)
    again = synthetic(rows, cols, density, seed, ib, fb)
    assert again is kept and kept.recipe is not None
    fresh = _synthetic(rows, cols, density, seed, ib, fb)
    for name in ("rows", "cols", "idx", "codebook"):
        a, b = getattr(kept, name), getattr(fresh, name)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[:1] = 0
    assert (kept.shape, kept.frac_bits) == (fresh.shape, fresh.frac_bits)
    # replacing a field leaves a layer the memos know nothing about
    assert dataclasses.replace(kept, frac_bits=fb).recipe is None


def test_other_arguments_other_layers():
    a = synthetic(200, 100, 0.1, 1)
    assert synthetic(200, 100, 0.1, 2) is not a and synthetic(200, 100, 0.2, 1) is not a
    assert synthetic(200, 100, 0.1, 1, index_bits=3) is not a and synthetic(200, 100, 0.1, 1, frac_bits=8) is not a
    # a numpy density draws what the same float does; other numeric types are drawn each time
    assert synthetic(200, 100, np.float64(0.1), 1) is a
    b = synthetic(np.int64(200), 100, 0.1, 1)
    assert b is not a and b.recipe is None and not b.rows.flags.writeable
    np.testing.assert_array_equal(b.rows, a.rows)


def test_a_kept_plan_equals_a_fresh_one_and_is_shared_only_where_encoding_is_the_same():
    layer = synthetic(700, 300, 0.05, 4)
    kept = plan_layer(layer, EIE)
    _same_plan(kept, _plan_layer(_fresh(layer), EIE))
    assert plan_layer(_fresh(layer), EIE) is not kept                  # no recipe: built again
    for _, e, p, _ in kept.batches:
        assert not e.flags.writeable and not p.flags.writeable
    assert not kept.col_nnz.flags.writeable
    # fields encoding does not read: the same plan
    for kw in ({"name": "other"}, {"queue_depth": 2}, {"clock_mhz": 1000.0}, {"dram_streaming": "untimed"}):
        assert plan_layer(layer, dataclasses.replace(EIE, **kw)) is kept
    # fields it reads: a plan of their own, equal to a fresh one
    for kw in ({"num_pes": 16}, {"act_regs": 8}, {"zero_run_bits": 3, "index_bits": 5}, {"ptr_sram_bytes": 128},
               {"spmat_sram_bytes": 256}, {"spmat_width_bits": 32}):
        arch = dataclasses.replace(EIE, **kw)
        other = plan_layer(layer, arch)
        assert other is not kept
        _same_plan(other, _plan_layer(_fresh(layer), arch))


def test_tile_statistics_of_a_shared_plan_match_a_fresh_run():
    from sim.eie import run_layer, synthetic_activations
    layer = synthetic(900, 400, 0.08, 5)
    acts = synthetic_activations(400, 0.5, 5)
    for arch in (EIE, dataclasses.replace(EIE, spmat_width_bits=32), dataclasses.replace(EIE, queue_depth=2)):
        a = run_layer(None, acts, arch, plan=plan_layer(layer, arch), functional=False)
        b = run_layer(None, acts, arch, plan=_plan_layer(_fresh(layer), arch), functional=False)
        assert dataclasses.asdict(a).keys() == dataclasses.asdict(b).keys()
        for k, v in dataclasses.asdict(a).items():
            np.testing.assert_array_equal(v, dataclasses.asdict(b)[k], err_msg=k)


def test_a_kept_column_major_form_equals_a_fresh_one():
    layer = synthetic(500, 260, 0.07, 2)
    cm = column_major(layer)
    assert column_major(layer) is cm and not cm.rows.flags.writeable and not cm.start.flags.writeable
    fresh = _column_major(_fresh(layer))
    np.testing.assert_array_equal(cm.rows, fresh.rows)
    np.testing.assert_array_equal(cm.start, fresh.start)
    assert cm.rows.dtype == fresh.rows.dtype and cm.shape == fresh.shape


def test_simulating_twice_gives_the_same_result():
    wl = Workload("w", (gemm_op("fc", 4, 800, 500, bits=16, dtype="fixed", weight_density=0.1),))
    SYNTHETIC.clear()
    PLANS.clear()
    first = simulate(wl, EIE)
    assert SYNTHETIC.misses == 1 and PLANS.misses == 1
    second = simulate(wl, EIE)
    assert SYNTHETIC.hits >= 1 and PLANS.hits == 1
    assert repr(first.ops) == repr(second.ops) and first.cycles == second.cycles


def test_memo_bounds():
    m: Memo[np.ndarray] = Memo("t", max_items=3, max_bytes=1000)
    made = []

    def make(n: int):
        def f() -> np.ndarray:
            made.append(n)
            return np.zeros(n, dtype=np.uint8)
        return f

    for k in range(5):
        m.get(k, make(100), lambda a: a.nbytes)
    assert len(m) == 3 and m.nbytes == 300                      # the oldest two went
    m.get(4, make(100), lambda a: a.nbytes)
    assert made == [100] * 5                                     # a hit makes nothing
    m.get("big", make(2000), lambda a: a.nbytes)                 # over the budget: returned, not kept
    assert "big" not in m._items and m.nbytes == 300
    m.get("half", make(900), lambda a: a.nbytes)                 # keeping it pushes the oldest out
    assert m.nbytes == 1000 and list(m._items) == [4, "half"]
    with pytest.raises(RuntimeError):
        m.get("err", lambda: (_ for _ in ()).throw(RuntimeError("no")), lambda a: 0)
    assert "err" not in m._items

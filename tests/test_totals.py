"""Whole-workload figures are defined once (``SimResult.total()``): utilisation is useful MACs
over the run's peak (each MAC-doing op's precision peak weighted by its cycles) times the
makespan, so ops that do no MACs count in the time and not in the peak."""

from __future__ import annotations

import pytest

from sim.registry import presets, simulate
from workloads.build import gemm_op, vector_op
from workloads.trace import Workload


def _wl() -> Workload:
    """Two GEMMs of different shapes with an element-wise op between them."""
    a = gemm_op("a", 64, 128, 256)
    r = vector_op("r", "elementwise", "relu", 64 * 128, producers=("a",))
    b = gemm_op("b", 64, 32, 128, producers=("r",))
    return Workload("w", (a, r, b), batch=64)


@pytest.mark.parametrize("design", sorted(presets()))
def test_total_utilisation_lies_within_its_ops(design):
    res = simulate(_wl(), design)
    util = [o.utilization for o in res.ops if o.cycles]
    total = res.total()["utilization"]
    assert 0.0 <= total <= 1.0
    if res.cycles == res.busy_cycles:          # one op at a time: the total is a time-weighted mean
        assert min(util) - 1e-12 <= total <= max(util) + 1e-12, (util, total)


def test_total_by_hand():
    """Two ops at peaks 100 and 50 MACs/cycle for 10 and 30 cycles, one op of no MACs for 20
    cycles, run one after another: peak (100 x 10 + 50 x 30) / 40 = 62.5; useful 800 + 600
    MACs over 62.5 x 60 cycles = 0.3733."""
    from sim.result import OpResult, SimResult

    ops = [OpResult("a", "linear", 800, 10, 1000.0, useful_macs=800, peak_macs_per_cycle=100),
           OpResult("v", "relu", 0, 20, 1000.0, peak_macs_per_cycle=200),
           OpResult("b", "linear", 600, 30, 1000.0, useful_macs=600, peak_macs_per_cycle=50)]
    res = SimResult("w", "m", "x", 1000.0, tuple(ops), {}, 60, 60)
    assert res.peak_macs_per_cycle == pytest.approx(62.5)
    assert res.total()["utilization"] == pytest.approx(1400 / (62.5 * 60))

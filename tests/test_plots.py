"""The report's figures say what they show: titles with "top N of M", the latency split,
a data-scaled utilisation axis, named roofline ceilings and labelled points, static energy
apart from dynamic, Pareto points labelled with their design, utilisation in %."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from analysis import plots as P
from analysis.report import ceilings, evaluate, figures
from workloads.spec import resolve

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


@pytest.fixture(scope="module")
def ev():
    return evaluate(resolve("lstm0"), "tpu-v1")      # 58 ops, 24 with MACs; 28 W static


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_titles_say_top_n_of_m_and_the_rest_is_one_bar(ev):
    figs = figures(ev, top=10)
    lat = figs["latency.png"].axes[0]
    assert "top 10 of 58 ops by time" in lat.get_title()
    labels = [t.get_text() for t in lat.get_xticklabels()]
    assert len(labels) == 11 and labels[-1] == "other (48 ops)"
    # the bars add up to the workload's time: nothing dropped
    heights = {}
    for bar in lat.patches:
        heights[bar.get_x()] = heights.get(bar.get_x(), 0.0) + bar.get_height()
    assert sum(heights.values()) == pytest.approx(sum(r["time_us"] for r in ev.rows), rel=1e-9)
    util = figs["utilization.png"].axes[0]
    assert "top 10 of 24 ops by time" in util.get_title()
    assert "all 58 ops" in figures(ev, top=100)["latency.png"].axes[0].get_title()


def test_latency_is_stacked_by_cause(ev):
    lat = figures(ev)["latency.png"].axes[0]
    legend = _legend(lat)
    assert set(legend) <= {p for p, _ in P.LATENCY_PARTS} and "compute" in legend and "weight load" in legend
    assert lat.get_ylabel() == "time (us)"
    # the tallest stack stands below the frame (stacked bars' sticky edges gave no headroom)
    tops: dict[float, float] = {}
    for bar in lat.patches:
        tops[bar.get_x()] = max(tops.get(bar.get_x(), 0.0), bar.get_y() + bar.get_height())
    assert lat.get_ylim()[1] == pytest.approx(1.08 * max(tops.values()))


def test_latency_parts_add_up():
    r = {"cycles": 100, "time_us": 2.0, "stall_cycles": 30, "weight_load_cycles": 20, "compute_cycles": 60}
    assert P.latency_parts(r) == {"compute": 1.2, "memory stall": 0.2, "weight load": 0.4, "host link": 0.0,
                                  "other": 0.2}
    gpu = {"cycles": 100, "time_us": 1.0, "stall_cycles": 25}            # no compute_cycles: the rest computes
    assert P.latency_parts(gpu) == {"compute": 0.75, "memory stall": 0.25, "weight load": 0.0, "host link": 0.0,
                                    "other": 0.0}
    # a TPU op reading the input over PCIe (10 stall cycles) and sending its output back (5)
    tpu = {"cycles": 100, "time_us": 1.0, "stall_cycles": 30, "weight_load_cycles": 20, "host_read_cycles": 10,
           "host_write_cycles": 5, "compute_cycles": 60}
    assert P.latency_parts(tpu) == pytest.approx({"compute": 0.6, "memory stall": 0.0, "weight load": 0.2,
                                                  "host link": 0.15, "other": 0.05})


def test_utilisation_axis_follows_the_data(ev):
    ax = figures(ev)["utilization.png"].axes[0]
    top = max(100 * r["utilization"] for r in ev.rows)
    lo, hi = ax.get_ylim()
    assert lo == 0 and top <= hi <= min(100, top * 1.2)
    assert "%" in ax.get_ylabel()
    assert any(t.startswith("whole workload") and t.endswith("%") for t in _legend(ax))


def test_roofline_names_its_ceilings_and_its_largest_ops(ev):
    ax = figures(ev)["roofline.png"].axes[0]
    pk = ceilings(ev)
    legend = _legend(ax)
    assert any(t.startswith("compute peak") and f"{pk.ops_per_s / 1e12:,.1f} TOPS" in t for t in legend)
    assert any(t.startswith("DRAM") and f"{pk.bytes_per_s['dram'] / 1e9:,.1f} GB/s" in t for t in legend)
    assert "1 MAC = 2 ops" in ax.get_xlabel()
    names = [t.get_text().split(" (+")[0] for t in ax.texts]
    biggest = max((r for r in ev.rows if r["macs"]), key=lambda r: r["macs"])["name"]
    assert 1 <= len(names) <= 5 and any(n == biggest or n.split(".")[0] == biggest.split(".")[0] for n in names)


def test_static_energy_is_apart_from_dynamic(ev):
    fig = figures(ev)["energy_breakdown.png"]
    per_op, whole = fig.axes
    assert "static" not in _legend(per_op) and per_op.get_ylabel() == "dynamic energy (uJ)"
    legend = _legend(whole)
    assert legend[0].startswith("dynamic") and legend[1].startswith("static") and "28 W" in legend[1]
    static = ev.energy_total["energy_static_pj"] / 1e6
    assert sum(b.get_height() for b in whole.patches) == pytest.approx(ev.energy_total["energy_pj"] / 1e6)
    assert f"static {100 * static / (ev.energy_total['energy_pj'] / 1e6):.0f}%" in whole.get_title()


def test_pareto_points_carry_their_design():
    df = pd.DataFrame({"model": ["m"] * 3, "rows": [8, 16, 32], "time_us": [3.0, 2.0, 1.0],
                       "energy_per_sample_uj": [1.0, 2.0, 3.0]})
    fig = P.pareto(df, df, ["m"], "study", ["rows"])
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["rows=16", "rows=32", "rows=8"]
    assert ax.get_xlabel() == "latency (us)" and ax.get_ylabel() == "energy per sample (uJ)"


def test_compare_shows_utilisation_in_percent():
    df = pd.DataFrame({"design": ["a", "b"], "time_us": [1.0, 2.0], "energy_per_sample_uj": [3.0, 4.0],
                       "utilization": [0.25, 0.5]})
    fig = P.compare(df, "w")
    ax = fig.axes[2]
    assert "%" in ax.get_title()
    assert [p.get_height() for p in ax.patches] == [25.0, 50.0]

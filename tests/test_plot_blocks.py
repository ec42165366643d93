"""Large workloads are plotted by block and phase: the grouping and its sums, by hand."""

from __future__ import annotations

import pytest

from analysis.plots import GROUP_ABOVE, block_of, by_block


def test_block_of():
    assert block_of("layers.11.mlp.up", "forward") == "layers.11"
    assert block_of("layers.11.mlp.up", "backward") == "layers.11 backward"
    assert block_of("encoder.layer.3.attn.qkv", "forward") == "encoder.layer.3"
    assert block_of("optimizer.layers.0.mlp.up.weight", "optimizer") == "optimizer"
    assert block_of("word", "forward") == "word"


def test_by_block_keeps_small_workloads_per_op_and_sums_big_ones():
    small = [{"name": f"op{i}", "phase": "forward", "time_us": 1.0, "macs": 1, "utilization": 0.5}
             for i in range(GROUP_ABOVE)]
    assert by_block(small) == (small, "ops")
    # 60 layers of 2 ops: a GEMM (2 us at 50%) and an element-wise op (1 us, no MACs)
    rows = []
    for i in range(60):
        rows += [{"name": f"layers.{i}.fc", "phase": "forward", "time_us": 2.0, "macs": 10, "utilization": 0.5},
                 {"name": f"layers.{i}.relu", "phase": "forward", "time_us": 1.0, "macs": 0, "utilization": 0.0}]
    rows[0]["utilization"] = 0.8                # layers.0's GEMM
    grouped, unit = by_block(rows)
    assert unit == "blocks" and len(grouped) == 60
    g0 = grouped[0]
    assert g0["name"] == "layers.0 (2)" and g0["time_us"] == 3.0 and g0["macs"] == 10
    assert g0["utilization"] == pytest.approx(0.8)          # time-weighted over the ops with MACs
    assert sum(g["time_us"] for g in grouped) == sum(r["time_us"] for r in rows)


def test_report_page_sections_carry_units_and_denominators():
    """The summary cards: every figure with its unit and what it is per (a training step's
    energy per sample beside per batch)."""
    from analysis.report_page import sections

    s = {"workload": "w", "design": "d", "machine": "gpu", "batch": 8, "ops": 3, "clock_mhz": 1000.0,
         "time_us": 2000.0, "cycles": 2_000_000, "critical_path_us": 1500.0, "throughput_samples_per_s": 4000.0,
         "macs": 1e9, "tops": 1.0, "utilization": 0.25, "energy_per_sample_uj": 500.0, "energy_pj": 4e9,
         "power_w": 2.0, "energy_compute_pj": 1e9, "energy_by_level_pj": {"dram": 3e9}, "energy_static_pj": 0.0,
         "static_power_w": 0.0, "dram_bytes": 2e6, "sram_bytes": 5e5, "energy_table": "t", "technology_nm": 7.0,
         "phases": {"forward": {"time_us": 1.0, "energy_pj": 1.0, "macs": 1.0}}, "cycle_counters": {},
         "training": True}
    cards = dict(sections(s))
    energy = dict(cards["Energy"])
    assert energy["per sample (training step)"] == "500 uJ" and energy["per batch of 8"] == "4000 uJ"
    assert dict(cards["Time"])["throughput"] == "4000 samples/s"
    assert dict(cards["Memory traffic per batch"])["DRAM"] == "2MB"

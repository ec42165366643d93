"""Systolic-array rows: TPU v1 (Jouppi et al., ISCA 2017) on the ``tpu-v1`` preset, and any
systolic design's whole-workload throughput.

Quantities: ``tops`` (2 ops per MAC over the simulated time, as Table 3 counts them) and
``pct_<counter>``, the share of cycles of one of Table 3's rows (``array_active``,
``useful_macs``, ``unused_macs``, ``weight_stall``, ``weight_shift``, ``non_matrix``,
``raw_stall``, ``input_stall``; ``sim.systolic.counters``); a design without a host link
keeps no ``input_stall`` counter, and that row is refused as unsupported.
"""

from __future__ import annotations

from .base import Reader, Unsupported, evaluation, opt_int
from .schema import Row

__all__ = ["READER"]

COUNTERS = ("array_active", "useful_macs", "unused_macs", "weight_stall", "weight_shift", "non_matrix", "raw_stall",
            "input_stall")
QUANTITIES = {"tops": ("TOP/s",), "cycles": ("cycles",), **{f"pct_{c}": ("%",) for c in COUNTERS}}


def measure(row: Row) -> float:
    s = evaluation(row.model, row.design, batch=opt_int(row, "batch")).summary()
    if row.quantity == "tops":
        return float(s["tops"])
    if row.quantity == "cycles":
        return float(s["cycles"])
    name = row.quantity[4:]
    counters = s["cycle_counters"]
    if f"{name}_%" not in counters:
        why = " (it has no host link: host_link_bytes_per_cycle is 0)" if name == "input_stall" else ""
        raise Unsupported(f"{row.design} keeps no {name} counter{why}")
    return float(counters[f"{name}_%"])


READER = Reader("systolic", QUANTITIES, frozenset({"batch"}), measure)

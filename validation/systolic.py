"""Systolic-array rows: TPU v1 (Jouppi et al., ISCA 2017) on the ``tpu-v1`` preset, and any
systolic design's whole-workload throughput.

Quantities: ``tops`` (2 ops per MAC over the simulated time, as Table 3 counts them) and
``pct_<counter>``, the share of cycles of one of Table 3's rows (``array_active``,
``useful_macs``, ``unused_macs``, ``weight_stall``, ``weight_shift``, ``non_matrix``,
``raw_stall``; ``sim.systolic.counters``). ``pct_input_stall`` (the host's PCIe link) is
refused as unsupported: hwsim does not model the host.
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
    if name == "input_stall":
        raise Unsupported("input stalls need the host and its PCIe link, which the systolic model leaves out")
    counters = s["cycle_counters"]
    if f"{name}_%" not in counters:
        raise Unsupported(f"{row.design} keeps no {name} counter")
    return float(counters[f"{name}_%"])


READER = Reader("systolic", QUANTITIES, frozenset({"batch"}), measure)

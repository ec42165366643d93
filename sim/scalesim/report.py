"""SCALE-Sim's three reports: one row per layer of COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv
and DETAILED_ACCESS_REPORT.csv, with SCALE-Sim's columns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["COMPUTE_COLUMNS", "BANDWIDTH_COLUMNS", "DETAIL_COLUMNS", "LayerReport", "write_reports"]

COMPUTE_COLUMNS = ["LayerID", "Total Cycles (incl. prefetch)", "Total Cycles", "Stall Cycles", "Overall Util %",
                   "Mapping Efficiency %", "Compute Util %"]
BANDWIDTH_COLUMNS = ["LayerID", "Avg IFMAP SRAM BW", "Avg FILTER SRAM BW", "Avg OFMAP SRAM BW", "Avg IFMAP DRAM BW",
                     "Avg FILTER DRAM BW", "Avg OFMAP DRAM BW"]
DETAIL_COLUMNS = ["LayerID", "SRAM IFMAP Start Cycle", "SRAM IFMAP Stop Cycle", "SRAM IFMAP Reads",
                  "SRAM Filter Start Cycle", "SRAM Filter Stop Cycle", "SRAM Filter Reads", "SRAM OFMAP Start Cycle",
                  "SRAM OFMAP Stop Cycle", "SRAM OFMAP Writes", "DRAM IFMAP Start Cycle", "DRAM IFMAP Stop Cycle",
                  "DRAM IFMAP Reads", "DRAM Filter Start Cycle", "DRAM Filter Stop Cycle", "DRAM Filter Reads",
                  "DRAM OFMAP Start Cycle", "DRAM OFMAP Stop Cycle", "DRAM OFMAP Writes"]


@dataclass(frozen=True)
class LayerReport:
    """One layer's rows of the three reports (without the LayerID): cycles and counts are
    ints, utilisations and bandwidths floats."""

    compute: list[int | float]
    bandwidth: list[float]
    detail: list[int]

    @property
    def total_cycles(self) -> int:
        return int(self.compute[1])

    @property
    def stall_cycles(self) -> int:
        return int(self.compute[2])


def _fmt(v: int | float) -> str:
    return str(v)


def write_reports(reports: list[LayerReport], outdir: str | Path) -> Path:
    """COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv, DETAILED_ACCESS_REPORT.csv with SCALE-Sim's columns."""
    from workloads.fileio import atomic_write

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for fname, cols, attr in (("COMPUTE_REPORT.csv", COMPUTE_COLUMNS, "compute"),
                              ("BANDWIDTH_REPORT.csv", BANDWIDTH_COLUMNS, "bandwidth"),
                              ("DETAILED_ACCESS_REPORT.csv", DETAIL_COLUMNS, "detail")):
        text = ", ".join(cols) + ",\n"
        for lid, rep in enumerate(reports):
            text += f"{lid}, " + ", ".join(_fmt(x) for x in getattr(rep, attr)) + ",\n"
        atomic_write(out / fname, text)
    return out

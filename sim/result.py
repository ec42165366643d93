"""Simulation results: one row per op with the core columns every machine shares.

Core columns: ``name, op, macs, cycles, stall_cycles, time_us, utilization`` and memory
traffic in bytes (``sram_reads, sram_writes, dram_reads, dram_writes``). ``accesses``
breaks traffic down by ``level.operand.direction`` (bytes) and ``ops`` counts arithmetic
by type and width (e.g. ``mul.int16``), which is what the energy model prices. Each
machine adds its own columns in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

def run_ops(workload, machine: str, arch, simulate_op, progress=None) -> "SimResult":
    """Simulate every op of ``workload`` with ``simulate_op(op)``, ticking ``progress``."""
    ops = []
    for op in workload.ops:
        ops.append(simulate_op(op))
        if progress:
            progress(op)
    return SimResult(workload.name, arch.name, machine, arch.clock_mhz, tuple(ops))


CORE_COLUMNS = ("name", "op", "macs", "cycles", "stall_cycles", "time_us", "utilization",
                "sram_reads", "sram_writes", "dram_reads", "dram_writes")


@dataclass(frozen=True)
class OpResult:
    name: str
    op: str
    macs: int
    cycles: int
    time_us: float
    utilization: float
    stall_cycles: int = 0
    accesses: Mapping[str, float] = field(default_factory=dict)   # "level.operand.reads|writes" -> bytes
    ops: Mapping[str, float] = field(default_factory=dict)        # "mul.int16" -> count
    extra: Mapping[str, Any] = field(default_factory=dict)

    def _sum(self, level_kind: str, direction: str) -> float:
        return sum(v for k, v in self.accesses.items()
                   if k.split(".")[0].endswith(level_kind) and k.endswith(direction))

    @property
    def sram_reads(self) -> float:
        return self._sum("sram", "reads") + self._sum("rf", "reads")

    @property
    def sram_writes(self) -> float:
        return self._sum("sram", "writes") + self._sum("rf", "writes")

    @property
    def dram_reads(self) -> float:
        return self._sum("dram", "reads")

    @property
    def dram_writes(self) -> float:
        return self._sum("dram", "writes")

    def row(self) -> dict[str, Any]:
        r = {"name": self.name, "op": self.op, "macs": self.macs, "cycles": self.cycles,
             "stall_cycles": self.stall_cycles, "time_us": self.time_us, "utilization": self.utilization,
             "sram_reads": self.sram_reads, "sram_writes": self.sram_writes,
             "dram_reads": self.dram_reads, "dram_writes": self.dram_writes}
        r.update(self.extra)
        return r


@dataclass(frozen=True)
class SimResult:
    """All ops of one workload on one design."""

    workload: str
    arch: str
    machine: str
    clock_mhz: float
    ops: tuple[OpResult, ...]

    def rows(self) -> list[dict[str, Any]]:
        return [o.row() for o in self.ops]

    @property
    def cycles(self) -> int:
        return sum(o.cycles for o in self.ops)

    @property
    def time_us(self) -> float:
        return sum(o.time_us for o in self.ops)

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    def total(self) -> dict[str, Any]:
        """The TOTAL row: sums, and utilisation weighted by cycles."""
        cyc = self.cycles
        util = sum(o.utilization * o.cycles for o in self.ops) / cyc if cyc else 0.0
        return {"op": f"{len(self.ops)} ops", "macs": self.macs, "cycles": cyc,
                "stall_cycles": sum(o.stall_cycles for o in self.ops), "time_us": self.time_us,
                "utilization": util,
                **{k: sum(getattr(o, k) for o in self.ops) for k in ("sram_reads", "sram_writes",
                                                                      "dram_reads", "dram_writes")}}

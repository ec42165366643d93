"""Simulation results: one row per op, with the same core columns and the same meaning on
every machine, plus typed per-machine extras.

Core columns (units in the names; ``cycles`` are the machine's clock cycles)
---------------------------------------------------------------------------
``name``, ``op``, ``phase``
    The trace op, its operation and its phase (forward, backward, optimizer).
``precision``
    What the op ran at on this machine (``int8``, ``fp16``, ``fixed16``, ...), which may
    differ from the trace's widths where a machine has a fixed datapath.
``macs``
    Multiply-accumulates of the op as the trace states them: dense, all copies and steps.
``cycles``
    Cycles the op occupies the machine, all copies and steps, fills and drains included.
``stall_cycles``
    Of those, cycles the compute units wait on memory (data not yet there).
``start_us``, ``time_us``
    When the op starts in the whole-workload schedule (``sim.graph``) and how long it takes.
``utilization``
    Useful MACs / (peak MACs per cycle at the op's precision x ``cycles``). Useful MACs
    are those the machine performs to produce the result: all of them on a dense machine,
    the non-zero (non-padding) ones on a sparse engine that skips zeros.
``sram_read_bytes``, ``sram_write_bytes``
    Bytes read from and written to every on-chip level (register files, SRAM, caches).
``dram_read_bytes``, ``dram_write_bytes``
    Bytes moved to and from off-chip memory.

Underneath, ``accesses`` counts bytes per ``level.operand.reads|writes`` (the level names
are the machine's ``memory_levels()``; operands are the trace roles ``input``, ``weight``,
``input2``, ``output``) and ``ops`` counts arithmetic by type and width (``mac.int8``,
``vector.fp16``), which is what the energy model prices. ``extra`` is a frozen dataclass
of the machine's own columns.

The whole workload's ``cycles`` is the makespan of the schedule (``sim.graph``): the sum of
the ops' cycles on a machine that runs one op at a time, less where independent ops
overlap; ``critical_path_cycles`` is its lower bound with unlimited hardware.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping, Sequence, TypeAlias

from workloads.errors import HwsimError
from workloads.trace import Op, Workload

from .graph import Timeline, schedule

if TYPE_CHECKING:
    import pandas as pd

    from .machine import Machine, Progress

__all__ = ["CORE_COLUMNS", "OpResult", "SimResult", "merge", "ShapeKey", "shape_key", "run_ops", "checked", "assemble"]

CORE_COLUMNS = ("name", "op", "phase", "precision", "macs", "cycles", "stall_cycles", "start_us", "time_us",
                "utilization", "sram_read_bytes", "sram_write_bytes", "dram_read_bytes", "dram_write_bytes")


@dataclass(frozen=True)
class OpResult:
    """One op on one machine. ``useful_macs`` and ``peak_macs_per_cycle`` define utilisation."""

    name: str
    op: str
    macs: int
    cycles: int
    clock_mhz: float
    useful_macs: float = 0.0
    peak_macs_per_cycle: float = 1.0
    stall_cycles: int = 0
    precision: str = ""
    phase: str = "forward"
    start_cycle: int = 0
    # the last cycles of the op in which a machine that runs one op at a time may already
    # start the next op, when that op does not read this one's results (a systolic array's
    # drain); a reader of them waits: a read-after-write stall (``sim.graph``)
    tail_cycles: int = 0
    raw_stall_cycles: int = 0         # cycles the schedule held the op for a producer's results
    # the core supply voltage the op ran at, a share of the machine's nominal (a power
    # manager's DVFS, sim.gpu.dvfs): its on-chip dynamic energies scale by the square
    voltage: float = 1.0
    accesses: Mapping[str, float] = field(default_factory=dict)   # "level.operand.reads|writes" -> bytes
    ops: Mapping[str, float] = field(default_factory=dict)        # "mul.int16" -> count
    extra: Any = None                                             # a frozen dataclass per machine

    @property
    def time_us(self) -> float:
        return self.cycles / self.clock_mhz

    @property
    def start_us(self) -> float:
        return self.start_cycle / self.clock_mhz

    @property
    def utilization(self) -> float:
        return self.useful_macs / (self.peak_macs_per_cycle * self.cycles) if self.cycles else 0.0

    def traffic(self, on_chip: Callable[[str], bool]) -> dict[str, float]:
        """The four byte columns, with ``on_chip(level)`` telling on-chip levels from DRAM."""
        out = {"sram_read_bytes": 0.0, "sram_write_bytes": 0.0, "dram_read_bytes": 0.0, "dram_write_bytes": 0.0}
        for key, nbytes in self.accesses.items():
            level, _, direction = key.split(".")
            col = f"{'sram' if on_chip(level) else 'dram'}_{'read' if direction == 'reads' else 'write'}_bytes"
            out[col] += nbytes
        return out

    def extras(self) -> dict[str, Any]:
        e = self.extra
        return {f.name: getattr(e, f.name) for f in dataclasses.fields(e)} if e is not None else {}


@dataclass(frozen=True)
class SimResult:
    """All ops of one workload on one design, scheduled on its graph."""

    workload: str
    arch: str
    family: str
    clock_mhz: float
    ops: tuple[OpResult, ...]
    level_kinds: Mapping[str, str]       # level -> rf | sram | noc | dram
    cycles: int                          # makespan of the schedule
    critical_path_cycles: int

    def _on_chip(self, level: str) -> bool:
        return self.level_kinds[level] != "dram"

    def __repr__(self) -> str:
        """One line (a notebook shows this, not thousands of op records)."""
        return (f"SimResult({self.workload!r} on {self.arch!r} ({self.family}): {len(self.ops)} ops, "
                f"{self.macs:,} MACs, {self.cycles:,} cycles = {self.time_us:,.1f} us, "
                f"utilisation {100 * self.utilization:.1f}%)")

    def row(self, o: OpResult) -> dict[str, Any]:
        r: dict[str, Any] = {"name": o.name, "op": o.op, "phase": o.phase, "precision": o.precision, "macs": o.macs,
                             "cycles": o.cycles, "stall_cycles": o.stall_cycles, "start_us": o.start_us,
                             "time_us": o.time_us, "utilization": o.utilization}
        r.update(o.traffic(self._on_chip))
        r.update(o.extras())
        return r

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(o) for o in self.ops]

    @property
    def time_us(self) -> float:
        return self.cycles / self.clock_mhz

    @property
    def busy_cycles(self) -> int:
        """Sum of the ops' cycles (equals ``cycles`` on a machine that runs one op at a time)."""
        return sum(o.cycles for o in self.ops)

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def peak_macs_per_cycle(self) -> float:
        """The machine's peak over the run: each op that does MACs weighs its precision's peak
        by its cycles (ops that do none, an element-wise op or a fused epilogue, count in the
        time but not here)."""
        mac_ops = [o for o in self.ops if o.useful_macs and o.cycles]
        busy = sum(o.cycles for o in mac_ops)
        return sum(o.peak_macs_per_cycle * o.cycles for o in mac_ops) / busy if busy else 0.0

    @property
    def utilization(self) -> float:
        """Useful MACs / (the run's peak MACs per cycle x its makespan)."""
        denominator = self.peak_macs_per_cycle * self.cycles
        return sum(o.useful_macs for o in self.ops) / denominator if denominator else 0.0

    def total(self) -> dict[str, Any]:
        """The TOTAL row: the makespan, sums, and utilisation over the whole run."""
        cyc = self.cycles
        out: dict[str, Any] = {"op": f"{len(self.ops)} ops", "macs": self.macs, "cycles": cyc,
                               "stall_cycles": sum(o.stall_cycles for o in self.ops), "start_us": 0.0,
                               "time_us": self.time_us, "utilization": self.utilization,
                               "critical_path_us": self.critical_path_cycles / self.clock_mhz}
        for o in self.ops:
            for k, v in o.traffic(self._on_chip).items():
                out[k] = out.get(k, 0.0) + v
        return out

    def to_frame(self) -> "pd.DataFrame":
        """The per-op rows as a pandas DataFrame."""
        import pandas as pd
        return pd.DataFrame(self.rows())


def merge(op: Op, parts: list[OpResult]) -> OpResult:
    """One op's result from the results of the parts it ran as, one after another (a fused
    attention on a machine without a fused kernel): cycles, stalls, bytes, operations and
    useful MACs add up; numeric extras add up, others are the first part's."""
    first = parts[0]
    acc: dict[str, float] = {}
    ops: dict[str, float] = {}
    for r in parts:
        for k, v in r.accesses.items():
            acc[k] = acc.get(k, 0.0) + v
        for k, v in r.ops.items():
            ops[k] = ops.get(k, 0.0) + v
    extra = first.extra
    if extra is not None:
        sums = {}
        for f in dataclasses.fields(extra):
            vals = [getattr(r.extra, f.name) for r in parts]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                sums[f.name] = type(vals[0])(sum(vals))
        extra = dataclasses.replace(extra, **sums)
    peak = max(r.peak_macs_per_cycle for r in parts)
    return OpResult(op.name, op.op, op.macs, sum(r.cycles for r in parts), first.clock_mhz,
                    useful_macs=sum(r.useful_macs for r in parts), peak_macs_per_cycle=peak,
                    stall_cycles=sum(r.stall_cycles for r in parts), precision=first.precision,
                    accesses=acc, ops=ops, extra=extra, tail_cycles=parts[-1].tail_cycles)


# (kind, op, phase, dims, copies, steps, (role, shape, bits, dtype, structure) of each operand)
ShapeKey: TypeAlias = tuple[str, str, str, tuple[tuple[str, int], ...], int, int,
                            tuple[tuple[str, tuple[int, ...], int, str, str], ...]]


def shape_key(op: Op) -> ShapeKey:
    """Everything a machine that ignores names and densities sees of an op: two ops with
    the same key get the same result on it (an N:M structure is part of it)."""
    return (op.kind, op.op, op.phase, tuple(sorted(op.dims.items())), op.copies, op.steps,
            tuple((o.role, o.shape, o.bits, o.dtype, o.structure) for o in op.operands))


def run_ops(workload: Workload, arch: "Machine", simulate_op: Callable[[Op], OpResult],
            progress: "Progress | None" = None, max_concurrent: int | None = None,
            same: Callable[[Op], Hashable] | None = None) -> SimResult:
    """Simulate every op with ``simulate_op(op)``, check its access levels against the
    machine's, and schedule the ops on the workload's graph with the machine's occupancy.
    ``same(op)``: a key under which ops are evaluated once (e.g. :func:`shape_key` for a
    machine whose results depend on shapes alone: a transformer's identical layers)."""
    results = []
    done: dict[Hashable, OpResult] = {}
    for op in workload.ops:
        key = same(op) if same is not None else None
        if key is not None and key in done:
            r = dataclasses.replace(done[key], name=op.name, op=op.op)
        else:
            r = simulate_op(op)
            if key is not None:
                done[key] = r
        results.append(checked(arch, op, r))
        if progress:
            progress(op)
    tl = schedule(workload.ops, [r.cycles for r in results], [arch.occupancy(r) for r in results], max_concurrent,
                  tail=[r.tail_cycles for r in results])
    return assemble(workload, arch, results, tl)


def checked(arch: "Machine", op: Op, r: OpResult) -> OpResult:
    """``r`` as op ``op``'s result (its phase), once its access keys name the machine's levels."""
    levels = arch.memory_levels()
    for key in r.accesses:
        parts = key.split(".")
        if len(parts) != 3 or parts[0] not in levels or parts[2] not in ("reads", "writes"):
            raise HwsimError(f"{arch.name}: op {op.name!r} reports access {key!r}; keys are "
                             f"LEVEL.OPERAND.reads|writes with LEVEL one of {', '.join(levels)}")
    return dataclasses.replace(r, phase=op.phase)


def assemble(workload: Workload, arch: "Machine", results: Sequence[OpResult], tl: Timeline) -> SimResult:
    """The run's result: each op's result placed on the timeline ``tl``."""
    ops = tuple(dataclasses.replace(r, start_cycle=int(s), raw_stall_cycles=int(w))
                for r, s, w in zip(results, tl.start, tl.raw_stall))
    return SimResult(workload.name, arch.name, arch.family, arch.clock_mhz, ops,
                     {k: v.kind for k, v in arch.memory_levels().items()}, tl.makespan, tl.critical_path)

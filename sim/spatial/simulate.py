"""Run a workload trace on a spatial design: each GEMM-like op in its best mapping.

Each op is mapped on its own (``search.best``), layer by layer as ZigZag maps them: its
operands start in the last level (off-chip) and its outputs end there. The search ranks
mappings by ``cost.evaluate``; with ``timing: stepped`` the chosen mapping's cycles are then
counted by ``stepper`` (every transfer and iteration, cycle-level). Copies and conv
groups are the nest's ``G`` dimension (they can be unrolled or timed like any other);
steps run one after another, each mapped the same. Element-wise ops run on the vector
lanes, reading and writing the last level. A fused attention runs as its parts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from workloads.errors import HwsimError
from workloads.trace import Op, Workload

from .. import budget
from ..machine import Progress
from ..result import OpResult, SimResult, merge, run_ops, shape_key
from .nest import of_op
from .search import best, dataflow
from .stepper import schedule, streams

if TYPE_CHECKING:
    from .arch import SpatialArch

__all__ = ["SpatialStats", "simulate_op", "simulate"]


@dataclass(frozen=True)
class SpatialStats:
    """The spatial design's own columns."""

    compute_cycles: int          # temporal iterations of the mapping (one array cycle each)
    active_pes: int              # PEs the unrolling puts to work
    mapping: str                 # "ROWDIM<f>|COLDIM<f>[|D3DIM<f>...] [temporal loops, innermost first]"
    dataflow: str = ""           # the named family of that mapping (ws, os, is, rs; sim.spatial.search)


def _bits(op: Op, role: str, arch: SpatialArch) -> int:
    o = op.operand(role)
    if o is None or o.dtype == "float":
        return arch.word_bits
    return o.bits


def _vector(op: Op, arch: SpatialArch) -> OpResult:
    per_step = op.dims["elements"] * op.dims["ops_per_element"] * op.copies
    compute = math.ceil(per_step / arch.lanes) * op.steps
    b = _bits(op, "output", arch) / 8
    n = op.instances
    in_b, out_b = op.dims["inputs"] * n * b, op.dims["elements"] * n * b
    top = arch.top
    acc = {f"{top.name}.input.reads": in_b, f"{top.name}.output.writes": out_b}
    r, w = in_b * 8 / top.read_bits, out_b * 8 / top.write_bits
    busy = math.ceil(r + w if top.shared_port else max(r, w))
    cycles = max(compute, busy)
    return OpResult(op.name, op.op, 0, cycles, arch.clock_mhz, peak_macs_per_cycle=arch.pes,
                    stall_cycles=cycles - compute, precision=f"int{arch.word_bits}", accesses=acc,
                    ops={f"vector.int{arch.word_bits}": op.vector_ops}, extra=SpatialStats(compute, 0, ""))


def _deadline(op: Op, arch: SpatialArch) -> Callable[[], None]:
    """A check the stepper calls as it goes: past the time limit (sim.budget), the op is
    refused in one line. Its transfers are no guide beforehand: the window jumps skip most."""
    limit = budget.limits().max_time_s
    end = time.perf_counter() + limit

    def check() -> None:
        if time.perf_counter() > end:
            raise HwsimError(f"{op.name}: stepping its mapping on {arch.name} passed the {budget.time_text(limit)} "
                             f"limit; raise it with hwsim --max-time DURATION (or HWSIM_MAX_TIME), or use timing: "
                             f"analytical")
    return check


def simulate_op(op: Op, arch: SpatialArch) -> OpResult:
    if op.kind == "attention":
        return merge(op, [simulate_op(p, arch) for p in op.unfused()])
    if not op.is_gemm:
        return _vector(op, arch)
    w_role = "weight" if op.operand("weight") else "input2"
    bits = {"input": _bits(op, "input", arch), "weight": _bits(op, w_role, arch)}
    out_bits = _bits(op, "output", arch)
    wide = {r: b for r, b in bits.items() if b > arch.word_bits}
    if wide:
        raise HwsimError(f"op {op.name!r}: {', '.join(f'{r} int{b}' for r, b in wide.items())} is wider than "
                         f"{arch.name}'s {arch.word_bits}-bit MACs; quantise the model or raise word_bits")
    nest = of_op(op)
    c = best(nest, arch, bits, out_bits, unrollings=arch.unrollings_for(op.name, op.kind))
    cycles = c.cycles
    if arch.timing == "stepped":
        ss, iters = streams(nest, arch, c.mapping, bits, out_bits)
        cycles = schedule(ss, iters, deadline=_deadline(op, arch)).cycles
    steps = op.steps
    acc = {}
    for k, v in c.accesses.items():
        if w_role != "weight":
            k = k.replace(".weight.", ".input2.")
        acc[k] = v * steps
    prec = arch.word_bits
    return OpResult(op.name, op.op, op.macs, cycles * steps, arch.clock_mhz, useful_macs=op.macs,
                    peak_macs_per_cycle=arch.pes, stall_cycles=(cycles - c.compute_cycles) * steps,
                    precision=f"int{prec}", accesses=acc, ops={f"mac.int{prec}": op.macs},
                    extra=SpatialStats(c.compute_cycles * steps, c.active_pes, c.mapping.describe(),
                                       dataflow(c.mapping)))


def simulate(workload: Workload, arch: SpatialArch, *, progress: Progress | None = None) -> SimResult:
    arch.check_op_unrollings(workload)
    if arch.op_unrollings:        # an op may have its own unrolling: alike by shape is not alike enough
        return run_ops(workload, arch, lambda op: simulate_op(op, arch), progress,
                       same=lambda op: (shape_key(op), arch.unrollings_for(op.name, op.kind)))
    return run_ops(workload, arch, lambda op: simulate_op(op, arch), progress, same=shape_key)

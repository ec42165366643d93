"""Run a workload trace on a systolic-array design (fast engine by default).

GEMM-like ops (convs through their im2col view) are folded onto the array
(``mapping``) and scheduled with the DRAM channel (``timing``). Operand widths come from
the trace: wider-than-native operands run at a fraction of the rate (16-bit on an 8-bit
array: half speed for one 16-bit operand, quarter for two, as on the TPU). Float
operands are taken as deployed at the array's native width (the TPU runs quantized
models) unless ``quantize_float=False``. A dense array gains nothing from zeros: weight
and activation density do not change cycles or accesses (the density columns say what
a sparse design could skip). Identical GEMMs (``repeat``, conv groups) run back to back.
Vector ops run on ``lanes`` element-operations per cycle from on-chip buffers.
"""

from __future__ import annotations

import dataclasses
import math

from workloads.trace import Op, Workload

from ..result import OpResult, SimResult, run_ops
from .arch import SystolicArch
from .mapping import folds
from .timing import schedule, schedule_cycles


def _bits(op: Op, role: str, arch: SystolicArch, quantize_float: bool) -> int:
    o = op.operand(role)
    if o is None:
        return arch.word_bits
    if o.dtype == "float" and quantize_float:
        return arch.word_bits
    return o.bits


def simulate_op(op: Op, arch: SystolicArch, engine: str = "fast", quantize_float: bool = True) -> OpResult:
    if not op.is_gemm:
        work = op.vector_ops
        cycles = math.ceil(work / arch.lanes) if work else 0
        b = _bits(op, "output", arch, quantize_float) / 8
        acc = {"ofmap_sram.input.reads": op.dims["inputs"] * op.repeat * b,
               "ofmap_sram.output.writes": op.dims["elements"] * op.repeat * b}
        return OpResult(op.name, op.op, 0, cycles, cycles / arch.clock_mhz, 0.0, accesses=acc,
                        ops={f"vector.int{arch.word_bits}": work},
                        extra={"compute_cycles": cycles, "weight_load_cycles": 0})
    g = op.gemm
    a_bits = _bits(op, "input", arch, quantize_float)
    w_bits = _bits(op, "weight", arch, quantize_float) if op.operand("weight") else _bits(op, "input2", arch, quantize_float)
    out_bits = _bits(op, "output", arch, quantize_float)
    rate = arch.rate(a_bits, w_bits)
    f = folds(g.M, g.N, g.K, arch, a_bits, w_bits, out_bits)
    if rate < 1:  # each streamed vector occupies the array 1/rate cycles
        slow = round(1 / rate)
        f = dataclasses.replace(f, T=f.T * slow, latency=f.latency + f.T * (slow - 1),
                                interval=f.interval + (f.interval >= f.T) * f.T * (slow - 1))
    run = schedule if engine == "fast" else schedule_cycles
    s = run(f, arch.rows, arch.cols, arch.dram_bw_bytes_per_cycle, arch.prefetch_depth)
    n = g.count
    cycles = s.cycles * n
    accesses = {k: v * n for k, v in {**f.sram, **f.dram}.items()}
    w = op.operand("weight")
    a = op.operand("input")
    extra = {
        "compute_cycles": s.compute_cycles * n,
        "weight_load_cycles": s.stall_cycles * n,
        "folds": f.count * n,
        "dram_busy_cycles": s.dram_busy_cycles * n,
        "tops": 2 * op.macs / (cycles / arch.clock_mhz * 1e-6) / 1e12 if cycles else 0.0,
        "rate": rate,
        "weight_density": w.density if w else None,
        "act_density": a.density if a else None,
    }
    return OpResult(op.name, op.op, op.macs, cycles, cycles / arch.clock_mhz,
                    op.macs / (arch.pes * cycles) if cycles else 0.0, stall_cycles=s.stall_cycles * n,
                    accesses=accesses, ops={f"mac.int{max(a_bits, w_bits)}": op.macs}, extra=extra)


def simulate(workload: Workload, arch: SystolicArch, engine: str = "fast", quantize_float: bool = True,
             progress=None, **_) -> SimResult:
    return run_ops(workload, "systolic", arch, lambda op: simulate_op(op, arch, engine, quantize_float), progress)

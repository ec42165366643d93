"""Run a workload trace on a tensor-core GPU.

GEMMs and RNN gate GEMMs run as tensor-core GEMMs (``gemm.gemm_time``); convolutions as
implicit GEMMs whose A operand is the input tensor (so DRAM sees the input once, not the
im2col matrix); grouped convolutions with fewer than 8 output channels per group
(depthwise) run on the CUDA cores, as cuDNN does. Non-GEMM ops are memory-bound kernels
(read inputs, write outputs at DRAM bandwidth, or the CUDA-core rate if slower). Every
kernel pays ``kernel_overhead_us``.

Precision: ``precision=None`` takes it from the trace (int <= 4 bits: int4, int <= 8: int8,
fp8: fp8, anything else: fp16 mixed precision: fp16 storage, fp32 accumulation). ``accumulate`` is the accumulator
width ("fp32" or "fp16"); ``output`` the stored output precision (default: the input's).
"""

from __future__ import annotations

import math

from workloads.errors import HwsimError
from workloads.trace import Op, Workload

from ..result import OpResult, SimResult, run_ops
from .arch import PRECISION_BYTES, GPUArch
from .gemm import gemm_time


def _precision(op: Op, precision: str | None) -> str:
    """The tensor-core precision for an op: forced, or from its input operand."""
    if precision:
        if precision not in PRECISION_BYTES:
            raise HwsimError(f"unknown precision {precision!r}; one of {', '.join(PRECISION_BYTES)}")
        return precision
    a = op.operand("input")
    if a is None:
        return "fp16"
    if a.dtype in ("int", "fixed", "index"):
        return "int4" if a.bits <= 4 else "int8"
    return "fp8" if a.bits <= 8 else "fp16"   # fp32 traces run as fp16 mixed precision


def simulate_op(op: Op, arch: GPUArch, precision: str | None = None, accumulate: str = "fp32",
                output: str | None = None) -> OpResult:
    if accumulate not in ("fp32", "fp16"):
        raise HwsimError(f"accumulate must be 'fp32' or 'fp16', got {accumulate!r}")
    prec = _precision(op, precision)
    arch.check_precision(prec)
    in_b = PRECISION_BYTES[prec]
    out_b = PRECISION_BYTES[output] if output else in_b
    overhead = arch.kernel_overhead_us * arch.clock_mhz
    if not op.is_gemm:
        d = op.dims
        nbytes = (d["inputs"] + d["elements"]) * op.repeat * in_b
        mem = nbytes / arch.dram_bytes_per_clk
        alu = op.vector_ops / (arch.sms * arch.fp32_lanes_per_sm)
        cycles = int(math.ceil(max(mem, alu) + overhead * op.repeat))
        return OpResult(op.name, op.op, 0, cycles, cycles / arch.clock_mhz, 0.0,
                        accesses={"dram.input.reads": d["inputs"] * op.repeat * in_b,
                                  "dram.output.writes": d["elements"] * op.repeat * in_b},
                        ops={f"vector.{prec}": op.vector_ops},
                        extra={"bound": "memory" if mem >= alu else "compute", "tflops": 0.0, "waves": 0,
                               "precision": prec, "dram_bytes": nbytes, "l2_bytes": nbytes})
    g = op.gemm
    a_unique = None
    if op.kind == "conv":
        d = op.dims
        a_unique = d["N"] * d["C"] * d["H"] * d["W"] * in_b / d["groups"]
        if g.N < 8 and d["groups"] > 1:      # depthwise / thin groups: CUDA cores
            fma = op.macs / (arch.sms * arch.fp32_lanes_per_sm)
            nbytes = (d["N"] * d["C"] * d["H"] * d["W"] + d["K"] * d["C"] // d["groups"] * d["R"] * d["S"]
                      + d["N"] * d["K"] * d["P"] * d["Q"]) * in_b
            mem = nbytes / arch.dram_bytes_per_clk
            cycles = int(math.ceil(max(fma, mem) + overhead))
            t = cycles / arch.clock_mhz
            return OpResult(op.name, op.op, op.macs, cycles, t, 0.0,
                            accesses={"dram.input.reads": nbytes, "l2_sram.input.reads": nbytes},
                            ops={f"fma.{prec}": op.macs},
                            extra={"bound": "memory" if mem >= fma else "compute", "tflops": 2 * op.macs / t / 1e6,
                                   "waves": 0, "precision": prec, "path": "cuda-cores", "dram_bytes": nbytes,
                                   "l2_bytes": nbytes})
    t = gemm_time(g.M, g.N, g.K, arch, prec, count=g.count, acc_bytes=4 if accumulate == "fp32" else 2,
                  out_bytes=out_b, a_unique_bytes=a_unique)
    cycles = int(t.cycles + overhead)
    time_us = cycles / arch.clock_mhz
    tflops = 2 * op.macs / (time_us * 1e-6) / 1e12
    peak = arch.peak_tflops(prec)
    out_bytes_total = g.M * g.N * g.count * out_b
    return OpResult(op.name, op.op, op.macs, cycles, time_us, tflops / peak,
                    accesses={"dram.operands.reads": t.dram_bytes - out_bytes_total,
                              "dram.output.writes": out_bytes_total, "l2_sram.operands.reads": t.l2_bytes},
                    ops={f"mac.{prec}": op.macs},
                    extra={"bound": t.bound, "tflops": tflops, "waves": t.waves, "tile": "x".join(map(str, t.tile)),
                           "ctas": t.ctas, "ctas_per_sm": t.ctas_per_sm, "precision": prec,
                           "dram_bytes": t.dram_bytes, "l2_bytes": t.l2_bytes})


def simulate(workload: Workload, arch: GPUArch, precision: str | None = None, accumulate: str = "fp32",
             output: str | None = None, progress=None, **_) -> SimResult:
    return run_ops(workload, "gpu", arch, lambda op: simulate_op(op, arch, precision, accumulate, output), progress)

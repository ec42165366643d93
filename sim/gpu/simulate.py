"""Run a workload trace on a tensor-core GPU.

GEMMs and RNN gate GEMMs run as tensor-core GEMMs (``gemm.gemm_time``); convolutions as
implicit GEMMs whose A operand is the input tensor (so DRAM sees the input once, not the
im2col matrix); grouped convolutions with fewer than 8 output channels per group
(depthwise) run on the CUDA cores, as cuDNN does. Non-GEMM ops are memory-bound kernels
(read inputs, write outputs at DRAM bandwidth, or the CUDA-core rate if slower).

Copies (a bmm's batch, conv groups, attention heads) run as one batched kernel. Steps are
one kernel each, one after another, each paying its launch (``GPUArch.launch_us``): an LSTM's
recurrent GEMM over T steps is T dependent launches. A fused ``attention`` op is one
FlashAttention-style kernel (``_attention``).

Precision: ``precision=None`` takes it from the trace (int <= 4 bits: int4, int <= 8: int8,
fp8: fp8, anything else: fp16 mixed precision: fp16 storage, fp32 accumulation).
``accumulate`` is the accumulator width ("fp32" or "fp16"); ``output`` the stored output
precision (default: the input's).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Sequence

from workloads.errors import HwsimError
from workloads.trace import Op, Workload, structure_nm

from ..machine import Progress
from ..result import OpResult, SimResult, run_ops, shape_key
from .fusion import chains, epilogues
from .gemm import gemm_time, sparse_factors
from .dvfs import Demand, mix_clock, stretched, voltage
from .flash import flash_run
from .power import attention_traffic, cuda_core_traffic, dynamic_pj, sm_share, sm_traffic
from .precision import PRECISION_BYTES

if TYPE_CHECKING:
    from .arch import GPUArch

__all__ = [
    "VECTOR_BLOCK_THREADS", "VECTOR_ELEMENTS_PER_BLOCK", "DRAM_BOUND_SHARE", "dram_bound", "GPUStats", "SPARSE_PRECISIONS",
    "sparse_structure", "demand", "clock_share", "powered", "simulate_op", "simulate",
]

# PyTorch's element-wise CUDA kernels: 128 threads per block, 4 elements per thread
# (aten/src/ATen/native/cuda/Loops.cuh: num_threads() = 4 warps, thread_work_size() = 4).
VECTOR_BLOCK_THREADS = 128
VECTOR_ELEMENTS_PER_BLOCK = 512


@dataclass(frozen=True)
class GPUStats:
    """The GPU's own columns (per step for the kernel shape, all steps for bytes)."""

    path: str                 # tensor-cores | cuda-cores | vector
    bound: str                # compute | memory | latency | power (slowed to the card's power limit)
    tflops: float
    kernels: int              # launches (one per step)
    waves: int = 0
    tile: str = ""
    ctas: int = 0
    ctas_per_sm: int = 0
    dram_bytes: float = 0.0
    l2_bytes: float = 0.0
    split_k: int = 0          # K split of the GEMM kernel (1: none; 0: not a GEMM)
    split_serial: bool = False  # the K split reduces in the kernel (serial split-K), not in a second kernel
    stream_k: bool = False    # the GEMM ran as stream-K (one wave of persistent CTAs)
    sparsity: str = ""        # N:M when the weight ran on sparse tensor cores
    fused: str = ""           # a GEMM: the ops its epilogue runs (+-joined); a fused op: "into HOST"
    sm_clock_mhz: float = 0.0  # the SM clock the board's power manager ran the kernel at (sim.gpu.dvfs); 0: not priced


def _precision(op: Op, precision: str | None) -> str:
    """The tensor-core precision for an op: forced, or from its input operand."""
    if precision:
        return precision
    a = op.operand("input")
    if a is None:
        return "fp16"
    if a.dtype in ("int", "fixed", "index"):
        return "int4" if a.bits <= 4 else "int8"
    return "fp8" if a.bits <= 8 else "fp16"   # fp32 traces run as fp16 mixed precision


def _vector(op: Op, arch: GPUArch, prec: str, overhead: float) -> OpResult:
    in_b = PRECISION_BYTES.get(prec, 2)
    d = op.dims
    n = op.instances
    per_step_bytes = (d["inputs"] + d["elements"]) * op.copies * in_b
    mem = per_step_bytes / arch.dram_bytes_per_clk
    alu = d["elements"] * d["ops_per_element"] * op.copies / (arch.sms * arch.fp32_lanes_per_sm)
    step = int(math.ceil(max(mem, alu) + overhead))
    cycles = step * op.steps
    ctas = math.ceil(d["elements"] * op.copies / VECTOR_ELEMENTS_PER_BLOCK)
    peak = arch.sms * arch.tcs_per_sm * max(arch.tc_fma_per_clk.values())
    return OpResult(op.name, op.op, 0, cycles, arch.clock_mhz, peak_macs_per_cycle=peak,
                    stall_cycles=int(max(0.0, mem - alu)) * op.steps, precision=prec,
                    accesses={"dram.input.reads": d["inputs"] * n * in_b, "dram.output.writes": d["elements"] * n * in_b},
                    ops={f"vector.{prec}": op.vector_ops},
                    extra=GPUStats("vector", "memory" if mem >= alu else "compute", 0.0, op.steps, ctas=ctas,
                                   ctas_per_sm=arch.max_threads_per_sm // VECTOR_BLOCK_THREADS,
                                   dram_bytes=per_step_bytes * op.steps, l2_bytes=per_step_bytes * op.steps))


def _depthwise(op: Op, arch: GPUArch, prec: str, overhead: float) -> OpResult:
    in_b = PRECISION_BYTES[prec]
    d = op.dims
    macs_step = op.macs // op.steps
    fma = macs_step / (arch.sms * arch.fp32_lanes_per_sm)
    ins = d["N"] * d["C"] * d["H"] * d["W"] * op.copies * in_b
    wts = d["K"] * d["C"] // d["groups"] * d["R"] * d["S"] * op.copies * in_b
    outs = d["N"] * d["K"] * d["P"] * d["Q"] * op.copies * in_b
    mem = (ins + wts + outs) / arch.dram_bytes_per_clk
    step = int(math.ceil(max(fma, mem) + overhead))
    cycles = step * op.steps
    t = cycles / arch.clock_mhz
    s = op.steps
    return OpResult(op.name, op.op, op.macs, cycles, arch.clock_mhz, useful_macs=op.macs,
                    peak_macs_per_cycle=arch.sm_fma_per_clk(prec) * arch.sms,
                    stall_cycles=int(max(0.0, mem - fma)) * s, precision=prec,
                    accesses={"dram.input.reads": ins * s, "dram.weight.reads": wts * s, "dram.output.writes": outs * s,
                              "l2_sram.input.reads": ins * s, "l2_sram.weight.reads": wts * s,
                              **cuda_core_traffic(op.macs)},
                    ops={f"fma.{prec}": op.macs},
                    extra=GPUStats("cuda-cores", "memory" if mem >= fma else "compute", 2 * op.macs / t / 1e6, s,
                                   ctas=math.ceil(d["N"] * d["K"] * d["P"] * d["Q"] * op.copies / VECTOR_ELEMENTS_PER_BLOCK),
                                   ctas_per_sm=arch.max_threads_per_sm // VECTOR_BLOCK_THREADS,
                                   dram_bytes=(ins + wts + outs) * s, l2_bytes=(ins + wts) * s))


def _attention(op: Op, arch: GPUArch, prec: str, acc_b: int, overhead: float) -> OpResult:
    """A fused attention kernel (FlashAttention-2 or -3, ``sim.gpu.flash``): its CTAs' blocks on
    the SMs (GEMMs, softmax, their partial overlap; the blocks a causal mask zeroes skipped)
    against its compulsory DRAM traffic: Q, K, V, the output and the row statistics
    (forward); those, the output gradient and dQ, dK, dV (backward). The score matrix never
    goes to memory. A backward is three kernels, as FA2 and FA3 launch it: a preprocess
    (D = rowsum(dO * O), and dQ's fp32 accumulator zeroed), the main kernel, and a postprocess
    (the accumulator converted to dQ), the first and last at DRAM speed, each with its launch."""
    d = op.dims
    in_b = PRECISION_BYTES[prec]
    run = flash_run(arch, prec, arch.attention_kernel, d, op.copies)
    c = op.copies * d["B"]
    t = run.tiles
    grid = c * d["H"] * math.ceil(d["Lq"] / t.br) * math.ceil(d["Lk"] / t.bc)
    ran = min(1.0, run.blocks / grid)                    # the blocks computed (energy)
    lq, lk = d["Lq"], d["Lk"]
    # the pairs a causal mask (bottom-right, query q sees keys up to q + lk - lq) keeps: from the
    # first query that sees a key, 1 + ... up to lk keys (useful work)
    first = max(1, lk - lq + 1)
    kept = (lk - first + 1) * (first + lk) / 2 if d["causal"] else lq * lk
    frac = kept / (lq * lk)
    q = c * d["H"] * d["Lq"] * d["E"] * in_b
    k = c * d["Hkv"] * d["Lk"] * d["E"] * in_b
    v = c * d["Hkv"] * d["Lk"] * d["Ev"] * in_b
    o = c * d["H"] * d["Lq"] * d["Ev"] * in_b
    lse = c * d["H"] * d["Lq"] * 4
    if d["backward"]:
        reads = {"input": q + o + o + lse, "input2": k, "input3": v}       # Q, O, dO, row statistics
        writes = q + k + v                                                # dQ, dK, dV
    else:
        reads = {"input": q, "input2": k, "input3": v}
        writes = o + lse
    mem = (sum(reads.values()) + writes) / arch.dram_bytes_per_clk     # the main kernel's
    side = 0.0
    if d["backward"]:
        acc32 = c * d["H"] * d["Lq"] * d["E"] * 4                       # dQ's fp32 accumulator
        pre_r, pre_w = 2 * o, lse + acc32                                  # O, dO in; D out, accumulator zeroed
        post_r, post_w = acc32, q                                          # accumulator in, dQ out
        reads["input"] += pre_r + post_r
        writes += pre_w + post_w
        side = (pre_r + pre_w + post_r + post_w) / arch.dram_bytes_per_clk + 2 * (arch.dram_latency_cycles + overhead)
    kernel = max(run.cycles, mem + arch.dram_latency_cycles)    # the CTAs' cycles hold their own latency
    step = int(math.ceil(kernel + overhead + side))
    s = op.steps
    cycles = step * s
    acc = {f"dram.{r}.reads": b * s for r, b in reads.items()}
    acc["dram.output.writes"] = writes * s
    inside = attention_traffic(arch, op.gemms, d, op.copies, in_b, acc_b, ran, (t.br, t.bc))
    acc.update({key: b * s for key, b in inside.items()})
    return OpResult(op.name, op.op, op.macs, cycles, arch.clock_mhz, useful_macs=op.macs * frac,
                    peak_macs_per_cycle=arch.sm_fma_per_clk(prec) * arch.sms,
                    stall_cycles=int(max(0.0, kernel - run.cycles)) * s, precision=prec, accesses=acc,
                    ops={f"mac.{prec}": op.macs * frac},
                    extra=GPUStats("tensor-cores", "compute" if run.cycles >= mem else "memory",
                                   2 * op.macs * frac / (cycles / arch.clock_mhz * 1e-6) / 1e12, s, ctas=run.ctas,
                                   tile=f"{run.kernel} {t.br}x{t.bc}" + (f" split {run.splits}" if run.splits > 1 else ""),
                                   ctas_per_sm=1, dram_bytes=(sum(reads.values()) + writes) * s))


def _epilogue(op: Op, host: str, arch: GPUArch, prec: str) -> OpResult:
    """An op run in a GEMM's epilogue (``fusion``): no launch, its input is the accumulator
    tile in registers and its output is the GEMM's store; only a second operand (a
    residual) is read, at DRAM bandwidth."""
    in_b = PRECISION_BYTES.get(prec, 2)
    d = op.dims
    n = op.instances
    other = max(0, d["inputs"] - d["elements"]) * n * in_b
    cycles = int(math.ceil(other / arch.dram_bytes_per_clk))
    peak = arch.sms * arch.tcs_per_sm * max(arch.tc_fma_per_clk.values())
    acc = {"dram.input2.reads": other} if other else {}
    return OpResult(op.name, op.op, 0, cycles, arch.clock_mhz, peak_macs_per_cycle=peak, stall_cycles=cycles,
                    precision=prec, accesses=acc, ops={f"vector.{prec}": op.vector_ops},
                    extra=GPUStats("epilogue", "memory" if other else "latency", 0.0, 0, dram_bytes=other,
                                   fused=f"into {host}"))


# Input precisions whose MMAs the sparse tensor cores run 2:4 (A100/H100 whitepapers: FP16,
# BF16, INT8, INT4 and, on H100, FP8; TF32 takes 1:2 instead, which 2:4 does not imply).
SPARSE_PRECISIONS = ("fp16", "bf16", "fp8", "int8", "int4")


def sparse_structure(op: Op, arch: GPUArch, precision: str) -> str:
    """The N:M pattern ``op`` runs on sparse tensor cores, or "": a forward GEMM whose
    weight is marked N:M, on a card whose sparse tensor cores take that pattern at this
    precision (gradients and activations are dense)."""
    w = op.operand("weight")
    if (w is None or not w.structure or op.phase != "forward" or w.structure not in arch.sparse_structures
            or precision not in SPARSE_PRECISIONS):
        return ""
    return w.structure


def demand(r: OpResult, arch: GPUArch) -> Demand:
    """What kernel result ``r`` (at the nominal clock) asks of the board: its time, its DRAM
    bytes' time, its on-chip dynamic and active energy (the core rail) and its DRAM energy."""
    share = sm_share(r.extra.ctas, arch)
    dram = {k: v for k, v in r.accesses.items() if k.startswith("dram.")}
    onchip = {k: v for k, v in r.accesses.items() if not k.startswith("dram.")}
    seconds = r.cycles / (arch.clock_mhz * 1e6)
    t_dram = sum(dram.values()) / (arch.dram_achievable_gbs * 1e9)
    return Demand(seconds, t_dram, dynamic_pj(arch, onchip, r.ops) * 1e-12, dynamic_pj(arch, dram, {}) * 1e-12,
                  arch.active_power_w * share, dram_bound(r, t_dram, seconds))


# A memory-bound kernel whose DRAM bytes take at least this share of its time is DRAM-bound
# for the power manager (its DRAM time does not stretch with the clock); below it, an
# L2-bound GEMM (an 8192^3 fp16 on h100: 0.6), whose L2 runs on the SM clock. A modelling choice.
DRAM_BOUND_SHARE = 0.75


def dram_bound(r: OpResult, t_dram: float, seconds: float) -> bool:
    """Whether a kernel is DRAM-bound for the power manager: the model calls it memory-bound
    and its DRAM bytes take at least ``DRAM_BOUND_SHARE`` of its time."""
    return r.extra.bound == "memory" and t_dram >= DRAM_BOUND_SHARE * seconds


def clock_share(results: Sequence[OpResult], arch: GPUArch) -> float:
    """The clock share (of ``clock_mhz``) the board's power manager settles at for a loop
    of these kernels (``sim.gpu.dvfs.mix_clock``); 1 on a card with no limit or own prices,
    and in a burst (``GPUArch.power``)."""
    if not (arch.self_priced and arch.tdp_w) or arch.power == "burst":
        return 1.0
    # a kernel that recurs (a transformer's identical layers share one result) is priced once
    # and counted as often as it runs: time and energy are linear in the count
    runs: dict[int, int] = {}
    first: dict[int, OpResult] = {}
    for r in results:
        if r.cycles:
            runs[id(r)] = runs.get(id(r), 0) + 1
            first.setdefault(id(r), r)
    demands = [demand(first[k], arch).times(n) for k, n in runs.items()]
    return mix_clock(demands, arch.vf_curve, arch.static_power_w, arch.tdp_w)


def powered(r: OpResult, arch: GPUArch, s: float = 1.0) -> OpResult:
    """``r`` on a card that prices its own events, at clock share ``s`` (its power manager's,
    :func:`clock_share`) and the voltage of its curve there: what of its time runs on the SM
    clock stretches by ``1 / s``, its DRAM time does not (``sim.gpu.dvfs.stretched``); charged active power for the SM cycles its kernel holds (``active.sm_cycles``).
    The launch gap is charged too: between short kernels the card stays well above idle
    (NVML on an H200 reads a CUDA graph of ResNet-50 at batch 1, short kernels back to back,
    at 194 W against 81 W idle; benchmarks/data/NVIDIA_H200_models.csv)."""
    if not arch.self_priced or not r.cycles:
        return r
    share = sm_share(r.extra.ctas, arch)
    dram_cycles = sum(v for k, v in r.accesses.items() if k.startswith("dram.")) / arch.dram_bytes_per_clk
    slow = dram_bound(r, dram_cycles, r.cycles)
    cycles = max(r.cycles, int(math.ceil(stretched(r.cycles, dram_cycles, s, slow)))) if s < 1.0 else r.cycles
    ops = dict(r.ops)
    ops["active.sm_cycles"] = share * arch.sms * cycles * s      # the SM cycles held at the lower clock
    extra = dataclasses.replace(r.extra, tflops=r.extra.tflops * r.cycles / cycles,
                                bound="power" if cycles > r.cycles else r.extra.bound, sm_clock_mhz=arch.clock_mhz * s)
    return dataclasses.replace(r, cycles=cycles, ops=ops, extra=extra, voltage=voltage(arch.vf_curve, s))


def simulate_op(op: Op, arch: GPUArch, precision: str | None = None, accumulate: str = "fp32",
                output: str | None = None, engine: str = "fast", epilogue_of: str | None = None,
                epilogue: str = "") -> OpResult:
    """One op; ``epilogue_of``: the GEMM whose epilogue runs it (fusion); ``epilogue``: for
    a GEMM, the ops its epilogue runs (shown in its ``fused`` column)."""
    r = _simulate_op(op, arch, precision, accumulate, output, engine, epilogue_of, epilogue)
    return powered(r, arch, clock_share([r], arch))


def _simulate_op(op: Op, arch: GPUArch, precision: str | None, accumulate: str, output: str | None, engine: str,
                 epilogue_of: str | None, epilogue: str) -> OpResult:
    overhead = arch.launch_us * arch.clock_mhz
    if epilogue_of is not None:
        a = op.operand("input")
        return _epilogue(op, epilogue_of, arch, "int8" if a is not None and a.dtype != "float" else
                         _precision(op, precision))
    if not op.is_gemm and op.kind != "attention":
        # CUDA-core kernels: integer/boolean data as bytes, float data as the GEMMs' type
        a = op.operand("input")
        return _vector(op, arch, "int8" if a is not None and a.dtype != "float" else _precision(op, precision),
                       overhead)
    prec = _precision(op, precision)
    arch.check_precision(prec)
    in_b = PRECISION_BYTES[prec]
    out_b = PRECISION_BYTES[output] if output else in_b
    if op.kind == "attention":
        return _attention(op, arch, prec, 4 if accumulate == "fp32" else 2, overhead)
    g = op.gemm
    assert g is not None
    a_unique = None
    if op.kind == "conv":
        d = op.dims
        if g.N < 8 and d["groups"] > 1:      # depthwise / thin groups: CUDA cores
            return _depthwise(op, arch, prec, overhead)
        a_unique = d["N"] * d["C"] * d["H"] * d["W"] * in_b / d["groups"]
    # one kernel per step, its copies batched
    acc_b = 4 if accumulate == "fp32" else 2
    sparse = sparse_structure(op, arch, prec)
    t = gemm_time(g.M, g.N, g.K, arch, prec, count=g.copies, acc_bytes=acc_b, out_bytes=out_b, a_unique_bytes=a_unique,
                  b_structure=structure_nm(sparse) if sparse else None)
    kernel = t.cycles
    if engine == "events":     # the same kernel through the event-driven reference
        from .event import gemm_events
        if sparse:
            raise HwsimError(f"op {op.name!r}: the event-driven engine does not model sparse tensor cores; "
                             "use --engine fast, or a trace without N:M weights")
        kernel = gemm_events(g.M, g.N, g.K, arch, prec, count=g.copies, tile=(t.tile[0], t.tile[1]), acc_bytes=acc_b,
                             out_bytes=out_b, a_unique_bytes=a_unique, split_k=t.split_k, stream_k=t.stream_k,
                             serial=t.serial)
    step = int(kernel + overhead)
    s = g.steps
    # NCHW activations: cuDNN transposes a tensor-core convolution's input to NHWC and its
    # output back, a memory-bound kernel each (cuDNN developer guide, Tensor Transformations)
    tr_in = tr_out = 0.0
    kernels = s
    if op.kind == "conv" and arch.layout == "nchw":
        d = op.dims
        tr_in = d["N"] * d["C"] * d["H"] * d["W"] * in_b * g.copies
        tr_out = d["N"] * d["K"] * d["P"] * d["Q"] * out_b * g.copies
        step += int(math.ceil(2 * (tr_in + tr_out) / arch.dram_bytes_per_clk + 2 * overhead))
        kernels = 3 * s
    b_role = "weight" if op.operand("weight") else "input2"
    b_frac = sparse_factors(structure_nm(sparse) if sparse else None, prec)[1]
    inside = sm_traffic(arch, g.M, g.N, g.K, g.copies, (t.tile[0], t.tile[1]), in_b, acc_b, b_role, b_frac,
                        t.l2_a_bytes if t.smem_a_bytes is None else t.smem_a_bytes,
                        t.l2_b_bytes if t.smem_b_bytes is None else t.smem_b_bytes)
    accesses = {"dram.input.reads": t.dram_a_bytes * s, f"dram.{b_role}.reads": t.dram_b_bytes * s,
                "dram.output.writes": t.dram_out_write_bytes * s, "dram.output.reads": t.dram_out_read_bytes * s,
                "l2_sram.input.reads": t.l2_a_bytes * s, f"l2_sram.{b_role}.reads": t.l2_b_bytes * s}
    if t.l2_out_bytes:        # serial split-K: partial tiles written to and read back from L2
        accesses["l2_sram.output.writes"] = accesses["l2_sram.output.reads"] = t.l2_out_bytes / 2 * s
    accesses.update({k: v * s for k, v in inside.items()})
    if tr_in:
        accesses["dram.input.reads"] += tr_in * s
        accesses["dram.input.writes"] = tr_in * s
        accesses["dram.output.reads"] += tr_out * s
        accesses["dram.output.writes"] += tr_out * s
    ops = {f"mac.{prec}": float(op.macs)}
    cycles = step * s
    time_us = cycles / arch.clock_mhz
    return OpResult(op.name, op.op, op.macs, cycles, arch.clock_mhz, useful_macs=op.macs,
                    peak_macs_per_cycle=arch.sm_fma_per_clk(prec) * arch.sms,
                    stall_cycles=int(max(0.0, kernel - t.compute_cycles)) * s, precision=prec,
                    accesses=accesses, ops=ops,
                    extra=GPUStats("tensor-cores", t.bound, 2 * op.macs / (time_us * 1e-6) / 1e12, kernels,
                                   waves=t.waves, tile="x".join(map(str, t.tile)), ctas=t.ctas, ctas_per_sm=t.ctas_per_sm,
                                   dram_bytes=(t.dram_bytes + 2 * (tr_in + tr_out)) * s, l2_bytes=t.l2_bytes * s,
                                   split_k=t.split_k, split_serial=t.serial,
                                   fused=epilogue, sparsity=sparse, stream_k=t.stream_k))


def simulate(workload: Workload, arch: GPUArch, *, precision: str | None = None, accumulate: str = "fp32",
             output: str | None = None, engine: str = "fast", progress: Progress | None = None) -> SimResult:
    fused = epilogues(workload) if arch.fusion == "epilogue" else {}
    kinds = {op.name: op.kind for op in workload.ops}
    chain = {h: "+".join(kinds[o] for o in ops) for h, ops in chains(fused).items()}

    def key(op: Op) -> Hashable:
        return (shape_key(op), fused.get(op.name), chain.get(op.name))

    # each distinct kernel once at the nominal clock, unless one is fused and the other not
    # (or into a different chain); then the clock the power manager holds for the loop of
    # the whole workload's kernels (sim.gpu.dvfs), and every kernel at it
    nominal: dict[Hashable, OpResult] = {}
    for op in workload.ops:
        k = key(op)
        if k not in nominal:
            nominal[k] = _simulate_op(op, arch, precision, accumulate, output, engine, fused.get(op.name),
                                      chain.get(op.name, ""))
        if progress:
            progress(op)
    # a training trace's optimizer runs once per step, its other ops once per microbatch: in
    # a step of many microbatches the optimizer's share of the board's average is negligible,
    # so the clock is the repeated part's (an optimizer-only trace: its own)
    repeated = [op for op in workload.ops if op.phase != "optimizer"] or list(workload.ops)
    s = clock_share([nominal[key(op)] for op in repeated], arch)

    def one(op: Op) -> OpResult:
        return powered(nominal[key(op)], arch, s)

    return run_ops(workload, arch, one, None, max_concurrent=arch.streams, same=key)

"""Run a workload trace on a systolic-array design.

GEMM-like ops (convs through their im2col view) are folded onto the array
(``mapping``) and scheduled with the DRAM channel (``timing``). Operand widths come from
the trace: wider-than-native operands run at a fraction of the rate (16-bit on an 8-bit
array: half speed for one 16-bit operand, quarter for two, as on the TPU). Float
operands are taken as deployed at the array's native width (the TPU runs quantized
models) unless ``quantize_float=False``. A dense array gains nothing from zeros: weight
and activation density do not change cycles or accesses (the density columns say what
a sparse design could skip).

Copies (conv groups, a bmm's batch) run back to back. Steps run one after another, each
waiting for the one before; a step after the first finds its weights still in their SRAM
when all of them fit (``filter_sram_kib``, which holds the weights in every dataflow), so
only the first step fetches them, and a single weight-stationary tile stays in the array.
Vector ops run on ``lanes`` element operations per cycle from on-chip buffers, one step
after another. A fused ``attention`` op runs as its parts (``Op.unfused``): the array has
no fused attention kernel.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from workloads.trace import Op, Workload

from .. import budget
from ..constants import Constant
from ..machine import Progress
from ..result import OpResult, SimResult, merge, run_ops, shape_key
from .convdata import ConvGeometry
from .mapping import Folds, folds, full_outer_tiles, outer_tiles, slice_runs
from .program import PCIE3_X16_BYTES_PER_S, run_program
from .timing import Schedule, schedule, schedule_cycles, schedule_slices

if TYPE_CHECKING:
    from .arch import SystolicArch

__all__ = ["SystolicStats", "SLICE_FOLDS", "BYTES_PER_FOLD", "SECONDS_PER_FOLD", "CONSTANTS", "simulate_op", "simulate"]


@dataclass(frozen=True)
class SystolicStats:
    """The systolic array's own columns."""

    compute_cycles: int               # the same op with unlimited DRAM bandwidth
    weight_load_cycles: int           # fold starts delayed by DRAM loads (= stall_cycles)
    folds: int
    dram_busy_cycles: int
    tops: float
    rate: float                       # MACs per PE per cycle at the operands' widths
    resident_steps: int               # steps that found their weights on chip
    weight_density: float | None
    act_density: float | None
    dataflow: str = ""                # the mapping family the op ran in (ws, os, is)
    # where the cycles go, as the TPU paper's performance counters split them (Jouppi et
    # al., ISCA 2017, Table 3); they add up to ``cycles``
    array_active_cycles: int = 0      # the array streams operands (Table 3 row 1)
    weight_shift_cycles: int = 0      # a stationary tile shifts in while nothing streams (row 5)
    dram_wait_cycles: int = 0         # the array waits for DRAM data (row 4: weight stalls on the TPU)
    drain_cycles: int = 0             # results leave the array after a stream (between copies, at the end)
    vector_cycles: int = 0            # element-wise work on the vector lanes (part of row 6)
    channel_end: int = 0              # the cycle (from the op's start) its last DRAM transfer ends
    head_start_cycles: int = 0        # cycles its first weight loads ran before it began (decoupled reads)
    host_read_cycles: int = 0         # its input arriving over the host link before it runs (row 8)
    host_write_cycles: int = 0        # its output leaving over the host link after it ends (part of row 6)
    feeds_matrix: bool = False        # an element-wise op whose output a later matrix op reads (row 7)


def _bits(op: Op, role: str, arch: SystolicArch, quantize_float: bool) -> int:
    o = op.operand(role)
    if o is None:
        return arch.word_bits
    if o.dtype == "float" and quantize_float:
        return arch.word_bits
    return o.bits


def _slowed(f: Folds, rate: float) -> Folds:
    """Each streamed vector occupies the array 1/rate cycles (wide operands)."""
    if rate >= 1:
        return f
    slow = round(1 / rate)
    return dataclasses.replace(f, T=f.T * slow, latency=f.latency + f.T * (slow - 1),
                               interval=f.interval + (f.interval >= f.T) * f.T * (slow - 1))


def _vector(op: Op, arch: SystolicArch, quantize_float: bool) -> OpResult:
    """An element-wise op on the vector lanes. Its activations follow the GEMMs' rule (see
    ``mapping``): in the activation SRAM with ``ifmap_on_chip``, else read from and written
    to DRAM, where the op takes at least the channel's time for its bytes."""
    per_step = op.dims["elements"] * op.dims["ops_per_element"] * op.copies
    compute = math.ceil(per_step / arch.lanes) * op.steps
    b = _bits(op, "output", arch, quantize_float) / 8
    n = op.instances
    in_b, out_b = op.dims["inputs"] * n * b, op.dims["elements"] * n * b
    if arch.ifmap_on_chip:
        acc = {"ifmap_sram.input.reads": in_b, "ifmap_sram.output.writes": out_b}
        cycles, busy = compute, 0
    else:
        acc = {"dram.input.reads": in_b, "dram.output.writes": out_b}
        busy = math.ceil((in_b + out_b) / arch.dram_bw_bytes_per_cycle)
        cycles = max(compute, busy)
    return OpResult(op.name, op.op, 0, cycles, arch.clock_mhz, peak_macs_per_cycle=arch.pes,
                    stall_cycles=cycles - compute, precision=f"int{arch.word_bits}", accesses=acc,
                    ops={f"vector.int{arch.word_bits}": op.vector_ops},
                    extra=SystolicStats(compute, 0, 0, busy, 0.0, 1.0, 0, None, None, arch.dataflow,
                                        dram_wait_cycles=cycles - compute, vector_cycles=compute, channel_end=busy))


SLICE_FOLDS = 1 << 20     # folds scheduled at a time (about 100 MB of per-fold arrays); a policy
# Measured on this project's 2-core machine (tracemalloc and perf_counter over folds() and
# schedule() of 160k and 400k folds on systolic-32): 90-96 B and 82 ns to build a fold,
# 63-602 ns to schedule it (periodic runs jumped or not). Used only for refusing a request
# before it runs (sim.budget), rounded up.
BYTES_PER_FOLD = 128
SECONDS_PER_FOLD = 0.7e-6

CONSTANTS: tuple[Constant, ...] = (
    Constant("simulate.SLICE_FOLDS", SLICE_FOLDS, "policy",
             "folds scheduled at a time, about 100 MB of per-fold arrays; identical slices are scheduled once"),
    Constant("simulate.BYTES_PER_FOLD", BYTES_PER_FOLD, "measured",
             "tracemalloc over folds() and schedule() of 160k and 400k folds on systolic-32: 90-96 B per fold, "
             "rounded up; only for refusing a request over --max-memory before it runs"),
    Constant("program.PCIE3_X16_BYTES_PER_S", PCIE3_X16_BYTES_PER_S, "published",
             "PCIe 3.0 x16, one direction: 16 lanes x 8 GT/s x 128b/130b = 15.75 GB/s (PCI Express Base "
             "Specification 3.0), of which a 256-byte payload per 282-byte TLP (framing token, sequence number, "
             "4-DW header, LCRC; the 256 B maximum payload an assumption): the tpu-v1 host link"),
    Constant("simulate.SECONDS_PER_FOLD", SECONDS_PER_FOLD, "measured",
             "perf_counter over the same runs on the project's 2-core machine: 82 ns to build a fold, 63-602 ns to "
             "schedule it, rounded up; only for refusing a request over --max-time before it runs"),
)


@dataclass(frozen=True)
class _Totals:
    """What an op's result needs of its folds: their count and SRAM/DRAM byte totals."""

    count: int
    sram: dict[str, float]
    dram: dict[str, float]

    @staticmethod
    def of(parts: Iterable[_Totals | Folds], count: int) -> "_Totals":
        sram: dict[str, float] = {}
        dram: dict[str, float] = {}
        for f in parts:
            for acc, src in ((sram, f.sram), (dram, f.dram)):
                for k, v in src.items():
                    acc[k] = acc.get(k, 0.0) + v
        return _Totals(count, sram, dram)


def simulate_op(op: Op, arch: SystolicArch, engine: str = "fast", quantize_float: bool = True,
                head: int = 0) -> OpResult:
    """One op alone. ``head``: cycles the DRAM channel is idle before the op begins and may
    already load its first ``prefetch_depth`` folds (``timing``; decoupled weight reads)."""
    if op.kind == "attention":           # no fused kernel: its GEMMs and softmax in turn
        parts = [simulate_op(p, arch, engine, quantize_float) for p in op.unfused()]
        m = merge(op, parts)             # (its channel ends in its last part)
        end = m.cycles - parts[-1].cycles + parts[-1].extra.channel_end
        return dataclasses.replace(m, extra=dataclasses.replace(m.extra, channel_end=end, head_start_cycles=0))
    if not op.is_gemm:
        return _vector(op, arch, quantize_float)
    g = op.gemm
    assert g is not None
    a_bits = _bits(op, "input", arch, quantize_float)
    w_role = "weight" if op.operand("weight") else "input2"
    w_bits = _bits(op, w_role, arch, quantize_float)
    out_bits = _bits(op, "output", arch, quantize_float)
    rate = arch.rate(a_bits, w_bits)
    run = schedule if engine == "fast" else schedule_cycles
    conv = ConvGeometry.of(op.dims) if op.kind == "conv" else None     # DRAM moves its real input

    def once(resident: bool, head: int = 0) -> tuple[_Totals, Schedule]:
        n_outer, per = outer_tiles(g.M, g.N, g.K, arch)
        if engine == "fast" and n_outer * per > SLICE_FOLDS and n_outer > 1:
            # tens of millions of folds (a GPT-3 GEMM on a small array): a slice of outer
            # tiles at a time, the recurrence carried across (same cycles, bounded memory);
            # slices of full outer tiles after the first are identical, given as one run
            step = max(1, SLICE_FOLDS // per)
            parts: list[_Totals] = []
            budget.need(f"{op.name}: {per * step:,} folds of {g.M}x{g.N}x{g.K} on {arch.name}",
                        nbytes=per * step * BYTES_PER_FOLD, seconds=3 * per * step * SECONDS_PER_FOLD)

            def slices() -> Iterator[tuple[Folds, int]]:
                for a, b, k in slice_runs(n_outer, step, full_outer_tiles(g.M, g.N, arch)):
                    f = _slowed(folds(g.M, g.N, g.K, arch, a_bits, w_bits, out_bits, weights_resident=resident,
                                      outer=(a, b), conv=conv), rate)
                    parts.append(_Totals(f.count * k, {x: v * k for x, v in f.sram.items()},
                                         {x: v * k for x, v in f.dram.items()}))   # the totals, not the arrays
                    yield f, k

            s = schedule_slices(slices(), arch.dram_bw_bytes_per_cycle, arch.prefetch_depth, head=head)
            return _Totals.of(parts, n_outer * per), s
        budget.need(f"{op.name}: {n_outer * per:,} folds of {g.M}x{g.N}x{g.K} on {arch.name}",
                    nbytes=n_outer * per * BYTES_PER_FOLD, seconds=n_outer * per * SECONDS_PER_FOLD)
        f = _slowed(folds(g.M, g.N, g.K, arch, a_bits, w_bits, out_bits, weights_resident=resident, conv=conv), rate)
        if resident and arch.dataflow == "ws" and f.count == 1 and g.copies == 1:
            f = dataclasses.replace(f, preload=0)      # the one weight tile never left the array
        return _Totals.of([f], f.count), run(f, arch.rows, arch.cols, arch.dram_bw_bytes_per_cycle,
                                            arch.prefetch_depth, head=head)

    # the head start helps the first copy's first loads only; later copies and steps start cold
    # (and are scheduled only where there are any)
    warm = once(False, head) if head else None
    first = once(False) if warm is None or g.copies > 1 or g.steps > 1 else warm
    runs = [(first, g.copies)] if warm is None else [(warm, 1), (first, g.copies - 1)]
    resident_steps = 0
    if g.steps > 1:
        weight_bytes = g.copies * g.N * g.K * w_bits / 8
        if w_role == "weight" and weight_bytes <= arch.filter_sram_kib * 1024:
            resident_steps = g.steps - 1
            runs.append((once(True), g.copies * resident_steps))
        else:
            runs.append((first, g.copies * (g.steps - 1)))
    runs = [r for r in runs if r[1]]
    cycles = sum(s.cycles * n for (_, s), n in runs)
    stalls = sum(s.stall_cycles * n for (_, s), n in runs)
    accesses: dict[str, float] = {}
    for (f, _), n in runs:
        for k, v in {**f.sram, **f.dram}.items():
            accesses[k] = accesses.get(k, 0.0) + v * n
    # per-PE registers: each MAC reads its operands from them and updates its partial sum
    macs = float(op.macs)
    for role in arch.pe_reg_bytes:
        if role == "output":
            psum = macs * arch.acc_bits / 8
            accesses["pe_output_reg.output.reads"] = psum
            accesses["pe_output_reg.output.writes"] = psum
        else:
            width, operand = (a_bits, "input") if role == "input" else (w_bits, w_role)
            accesses[f"pe_{role}_reg.{operand}.reads"] = macs * width / 8
    w = op.operand("weight")
    a = op.operand("input")
    extra = SystolicStats(
        compute_cycles=sum(s.compute_cycles * n for (_, s), n in runs), weight_load_cycles=stalls,
        folds=sum(f.count * n for (f, _), n in runs), dram_busy_cycles=sum(s.dram_busy_cycles * n for (_, s), n in runs),
        tops=2 * op.macs / (cycles / arch.clock_mhz * 1e-6) / 1e12 if cycles else 0.0, rate=rate,
        resident_steps=resident_steps, weight_density=w.density if w else None, act_density=a.density if a else None,
        dataflow=arch.dataflow, array_active_cycles=sum(s.active_cycles * n for (_, s), n in runs),
        weight_shift_cycles=sum(s.shift_cycles * n for (_, s), n in runs),
        dram_wait_cycles=sum(s.wait_cycles * n for (_, s), n in runs),
        drain_cycles=sum(s.drain_cycles * n for (_, s), n in runs),
        channel_end=cycles - runs[-1][0][1].cycles + runs[-1][0][1].channel_end, head_start_cycles=head)
    bits = max(a_bits, w_bits)
    last = runs[-1][0][1]      # the next op may start in its drain, once the DRAM channel is idle too
    return OpResult(op.name, op.op, op.macs, cycles, arch.clock_mhz, useful_macs=op.macs, peak_macs_per_cycle=arch.pes,
                    stall_cycles=stalls, precision=f"int{bits}", accesses=accesses, ops={f"mac.int{bits}": op.macs},
                    extra=extra, tail_cycles=last.cycles - max(last.stream_end, last.channel_end))


def simulate(workload: Workload, arch: SystolicArch, *, engine: str = "fast", quantize_float: bool = True,
             progress: Progress | None = None) -> SimResult:
    # identical ops (a transformer's layers) once; the densities are reported, so they are part of the key
    def same(op: Op) -> tuple[object, ...]:
        return (shape_key(op), tuple(o.density for o in op.operands))

    if arch.decoupled_weight_reads or arch.host_link_bytes_per_cycle:     # one instruction stream
        res = run_program(workload, arch, lambda op, head: simulate_op(op, arch, engine, quantize_float, head),
                          same, progress)
    else:
        res = run_ops(workload, arch, lambda op: simulate_op(op, arch, engine, quantize_float), progress, same=same)
    feeds = matrix_feeds(workload)
    if not feeds:
        return res
    ops = tuple(dataclasses.replace(o, extra=dataclasses.replace(o.extra, feeds_matrix=True)) if o.name in feeds
                else o for o in res.ops)
    return dataclasses.replace(res, ops=ops)


def matrix_feeds(workload: Workload) -> set[str]:
    """The element-wise ops a matrix op reads through (its producers, and theirs, up to the
    next matrix op): while they run, the array waits for their results (Table 3's RAW
    stalls; the TPU's Activate writes the buffer the next MatrixMultiply reads)."""
    by_name = {op.name: op for op in workload.ops}
    feeds: set[str] = set()
    todo = [p for op in workload.ops if op.is_gemm for p in op.producers]
    while todo:
        name = todo.pop()
        op = by_name.get(name)
        if op is None or op.is_gemm or op.kind == "attention" or name in feeds:
            continue
        feeds.add(name)
        todo.extend(op.producers)
    return feeds

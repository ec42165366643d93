"""Run a whole workload trace on an EIE design.

Each GEMM-like op (a linear layer, an RNN gate GEMM, or a conv through its im2col view)
becomes a sparse matrix (out x in) times its activation vectors. Real weights come from
the trace when it keeps them (a pruned, weight-shared layer); otherwise a seeded synthetic
layer at the op's weight density is drawn. Activation vectors are seeded synthetic
vectors at the op's measured activation density. An op with M > ``max_vectors`` vectors
simulates ``max_vectors`` of them and scales (``vectors_simulated`` says how many ran).
Copies and steps are more vectors through the same layer, one after another. Vector ops
run on the PEs at one element-operation per PE per cycle, one step after another. A fused
``attention`` op runs as its parts (``Op.unfused``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from workloads.errors import HwsimError
from workloads.trace import Op, Workload
from workloads.tensorfile import release_pages

from .. import budget
from ..constants import Constant
from ..machine import Progress
from ..result import OpResult, SimResult, merge, run_ops
from .dram import DRAM_GBPS
from .encode import SparseLayer, from_dense, synthetic, synthetic_activations
from .engine import LayerRun, plan_dense, plan_from_mask, plan_layer, run_layer

if TYPE_CHECKING:
    from .arch import EIEArch

__all__ = [
    "EIEStats", "MAX_NONZEROS", "SECONDS_PER_PASS", "SECONDS_PER_NONZERO", "BYTES_PER_NONZERO",
    "BYTES_PER_COLUMN", "CONSTANTS", "layer_for", "simulate_op", "simulate",
]


@dataclass(frozen=True)
class EIEStats:
    """EIE's own columns (GEMM ops; None on vector ops)."""

    load_balance: float | None = None          # busy PE-cycles / (PEs x compute cycles)
    work_balance: float | None = None          # mean / max entries per PE
    real_work_fraction: float | None = None    # non-padding entries / entries
    padding_overhead: float | None = None
    effective_macs: int | None = None          # non-zero weight x non-zero activation MACs
    weight_density: float | None = None
    act_density: float | None = None
    broadcast_stalls: int | None = None        # cycles the LNZD waited for queue room
    starved_cycles: int | None = None          # cycles the busiest PE waited for an activation
    passes: int | None = None
    pe_busy_max: int | None = None
    pe_busy_min: int | None = None
    vectors_simulated: int | None = None


# Encoding a sparse layer keeps about 40 bytes per non-zero (row, column, index and the sort
# keys of encode()); above this many the simulation would need over 8 GB.
MAX_NONZEROS = 200_000_000
# For refusing a request before it runs (sim.budget), measured on this project's 2-core
# machine (perf_counter over simulate_op on eie-64): a dense 40960^2 layer took 21 us per
# pass and vector, a dense 4096 x 200000 one 71 us; a 20000^2 layer at density 0.1 took
# 0.32 us per non-zero to encode and plan. Rounded up; per column, the activation vectors,
# their non-zero masks and the plan's column totals (int64 each).
SECONDS_PER_PASS = 100e-6
SECONDS_PER_NONZERO = 0.4e-6
BYTES_PER_NONZERO = 40
BYTES_PER_COLUMN = 32

CONSTANTS: tuple[Constant, ...] = (
    Constant("dram.DRAM_GBPS", DRAM_GBPS, "assumption",
             "EIEArch.dram_gbps: the paper gives no DRAM bandwidth; its energy figures price LPDDR2 (Sec. I, Table I, "
             "after Horowitz), and one x32 LPDDR2-1066 channel (JEDEC JESD209-2's fastest grade) moves "
             "1066e6 x 4 B = 4.264 GB/s. Of the nine benchmark layers only VGG-6 (on 64 PEs) does not fit the "
             "SRAMs and reads DRAM"),
    Constant("EIEArch.dram_streaming", "stalled", "modelling choice",
             "how DRAM loads overlap compute: the paper's only loading mechanism is the Central Unit's I/O mode, in "
             "which 'all of the PEs are idle while the activations and weights in every PE can be accessed by a DMA' "
             "(Sec. IV), and it describes no second buffer; 'pipelined' (double-buffered) and 'untimed' (the paper's "
             "simulator: its Fig. 11 scales VGG-6, whose 25K pointers per PE never fit, near-linearly) are options"),
    Constant("simulate.MAX_NONZEROS", MAX_NONZEROS, "policy",
             "non-zeros a layer may hold: encoding keeps about 40 B per non-zero, so 8 GB at most"),
    Constant("simulate.SECONDS_PER_PASS", SECONDS_PER_PASS, "measured",
             "perf_counter over simulate_op on eie-64 (dense 40960^2: 21 us per pass and vector; dense 4096 x 200000: "
             "71 us), rounded up; only for refusing a request over --max-time"),
    Constant("simulate.SECONDS_PER_NONZERO", SECONDS_PER_NONZERO, "measured",
             "a 20000^2 layer at density 0.1: 0.32 us per non-zero to encode and plan, rounded up"),
    Constant("simulate.BYTES_PER_NONZERO", BYTES_PER_NONZERO, "measured",
             "row, column, codebook index and encode()'s sort keys per non-zero; for --max-memory"),
    Constant("simulate.BYTES_PER_COLUMN", BYTES_PER_COLUMN, "modelling choice",
             "per column: the activation vectors, their non-zero masks and the plan's column totals (int64 each)"),
)


def layer_for(op: Op, arch: EIEArch, seed: int = 0, max_nonzeros: int = MAX_NONZEROS) -> SparseLayer:
    g = op.gemm
    assert g is not None, "layer_for takes GEMM-like ops"
    w0 = op.operand("weight")
    nnz = (w0.density if w0 is not None else 1.0) * g.N * g.K
    if nnz > max_nonzeros:
        raise HwsimError(f"op {op.name!r}: a {g.N} x {g.K} layer at density {w0.density if w0 else 1.0:.3g} has "
                         f"{nnz:.3g} non-zeros; encoding it would take about {nnz * 40 / 2 ** 30:.0f} GiB "
                         f"(limit {max_nonzeros:.3g} non-zeros); pass max_nonzeros to raise the limit")
    w = op.operand("weight")
    if w is not None and w.values is not None and op.kind == "gemm":
        vals = np.asarray(w.values, dtype=np.float64).reshape(g.N, g.K)
        return from_dense(vals, arch.index_bits, arch.weight_frac_bits, w.codebook)
    density = w.density if w is not None else 1.0
    if density <= 0:
        raise HwsimError(f"op {op.name!r}: weight density is 0; there is nothing for EIE to compute")
    return synthetic(g.N, g.K, density, seed=seed, index_bits=arch.index_bits, frac_bits=arch.weight_frac_bits)


def _seed(name: str, seed: int) -> int:
    return (zlib.crc32(name.encode()) + 1000003 * seed) & 0x7FFFFFFF


def simulate_op(op: Op, arch: EIEArch, seed: int = 0, max_vectors: int = 8, engine: str = "fast",
                max_nonzeros: int = MAX_NONZEROS) -> OpResult:
    if op.kind == "attention":           # no fused kernel: its GEMMs and softmax in turn
        return merge(op, [simulate_op(p, arch, seed, max_vectors, engine, max_nonzeros) for p in op.unfused()])
    prec = f"fixed{arch.act_bits}"
    if not op.is_gemm:
        per_step = op.dims["elements"] * op.dims["ops_per_element"] * op.copies
        cycles = -(-per_step // arch.num_pes) * op.steps
        n, b = op.instances, arch.act_bits / 8
        return OpResult(op.name, op.op, 0, cycles, arch.clock_mhz, peak_macs_per_cycle=arch.num_pes, precision=prec,
                        accesses={"act_rf.input.reads": op.dims["inputs"] * n * b,
                                  "act_rf.output.writes": op.dims["elements"] * n * b},
                        ops={f"vector.int{arch.act_bits}": op.vector_ops}, extra=EIEStats())
    g = op.gemm
    assert g is not None
    s = _seed(op.name, seed)
    w = op.operand("weight")
    if w is not None and w.values is not None and op.kind == "gemm":
        dense = int(np.count_nonzero(w.values)) == w.values.size
    else:
        dense = w is None or w.density >= 1.0
    encoded = 0.0 if dense or (w is not None and w.values is not None) else (w.density if w else 1.0) * g.N * g.K
    passes = -(-g.N // (arch.num_pes * arch.act_regs)) * -(-g.K // max(1, arch.ptr_capacity - 1))
    budget.need(f"{op.name}: a {g.N} x {g.K} layer on {arch.name}",
                nbytes=encoded * BYTES_PER_NONZERO + g.K * BYTES_PER_COLUMN,
                seconds=encoded * SECONDS_PER_NONZERO + passes * min(g.M, max_vectors) * SECONDS_PER_PASS)
    if dense:                                       # no zeros: the plan in closed form
        plan, w_density = plan_dense(g.N, g.K, arch), 1.0
    elif w is not None and w.values is not None and op.kind == "gemm":   # real zeros: where they are
        vals = np.asarray(w.values).reshape(g.N, g.K)
        plan, w_density = plan_from_mask(vals, arch), np.count_nonzero(vals) / vals.size
        release_pages(w.values)                     # a large model's weights, mapped from disk
    else:                                           # the encoding is the same for every vector
        layer = layer_for(op, arch, s, max_nonzeros)
        plan, w_density = plan_layer(layer, arch), layer.density
    a_op = op.operand("input")
    act_density = a_op.density if a_op is not None else 1.0
    vectors = min(g.M, max_vectors)
    runs: list[LayerRun] = []
    by_pattern: dict[bytes, LayerRun] = {}          # timing depends only on which activations are non-zero
    for v in range(vectors):
        acts = synthetic_activations(g.K, act_density, s + v, 8)
        key = np.packbits(acts != 0).tobytes()
        if key not in by_pattern:
            by_pattern[key] = run_layer(None, acts, arch, engine, plan=plan, functional=False)
        runs.append(by_pattern[key])
    scale = g.M / vectors * g.count
    cyc = sum(r.cycles for r in runs)
    cycles = int(round(cyc * scale))
    P = arch.num_pes
    entries = sum(r.entries for r in runs) * scale
    padding = sum(r.padding for r in runs) * scale
    real = sum(r.real_macs for r in runs) * scale
    busy = np.sum([r.busy for r in runs], axis=0)
    # what does not fit on chip streams from DRAM for every vector (sim.eie.dram): per PE,
    # the entries and pointers beyond its sparse-matrix and pointer SRAMs
    dram = sum(r.dram_bytes for r in runs) * scale
    acc = {
        "spmat_sram.weight.reads": sum(r.spmat_reads for r in runs) * scale * arch.spmat_width_bits / 8,
        "ptr_sram.weight.reads": sum(r.ptr_reads for r in runs) * scale * arch.pointer_bits / 8,
        "act_sram.input.reads": sum(r.act_scans for r in runs) * scale * arch.act_bits / 8,
        "queue_rf.input.writes": sum(r.nonzero_acts for r in runs) * scale * P * 4,
        "queue_rf.input.reads": sum(r.nonzero_acts for r in runs) * scale * P * 4,
        "codebook_rf.weight.reads": entries * arch.weight_bits / 8,
        "act_rf.output.reads": entries * arch.act_bits / 8,
        "act_rf.output.writes": entries * arch.act_bits / 8,
        "dram.weight.reads": dram,
    }
    compute = max(sum(r.compute_cycles for r in runs), 1)
    extra = EIEStats(
        load_balance=float(busy.sum() / (P * compute)),
        work_balance=float(busy.mean() / busy.max()) if busy.max() else 1.0,
        real_work_fraction=float(real / entries) if entries else 0.0,
        padding_overhead=float(padding / entries) if entries else 0.0,
        effective_macs=int(round(real)),
        weight_density=w_density,
        act_density=act_density,
        broadcast_stalls=int(round(sum(r.broadcast_stalls for r in runs) * scale)),
        starved_cycles=int(round(sum(r.starved_cycles for r in runs) * scale)),
        passes=runs[0].passes,
        pe_busy_max=int(busy.max() * scale),
        pe_busy_min=int(busy.min() * scale),
        vectors_simulated=vectors,
    )
    return OpResult(op.name, op.op, op.macs, cycles, arch.clock_mhz, useful_macs=float(real),
                    peak_macs_per_cycle=P, stall_cycles=int(round(sum(r.dram_stall_cycles for r in runs) * scale)),
                    precision=prec, accesses=acc,
                    ops={f"mul.int{arch.act_bits}": entries, f"add.int{arch.act_bits}": entries}, extra=extra)


def simulate(workload: Workload, arch: EIEArch, *, seed: int = 0, max_vectors: int = 8, engine: str = "fast",
             max_nonzeros: int = MAX_NONZEROS, progress: Progress | None = None) -> SimResult:
    """Simulate every op of ``workload`` on ``arch`` (see the module docstring)."""
    return run_ops(workload, arch, lambda op: simulate_op(op, arch, seed, max_vectors, engine, max_nonzeros),
                   progress)

"""EIE's scalability (PE count) and activation-queue-depth studies (Han et al., ISCA 2016,
Fig. 8 and Figs. 11-12), over the nine benchmark layers or any workload's GEMMs. The rows
are plain dicts, one per layer and setting; ``analysis.eie_plots`` draws them.

The studies time compute only, as the paper's figures do: a layer that does not fit the
SRAMs is timed as if its DRAM loads took no time (``dram_streaming="untimed"``; the paper's
Fig. 11 scales VGG-6, whose pointers never fit, near-linearly to 256 PEs)."""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence, TypedDict

import numpy as np
from numpy.typing import NDArray

from workloads.progress import step
from workloads.trace import Op, Workload

from .arch import EIEArch
from .encode import ColumnMajor, SparseLayer, batch_counts, column_major, synthetic_activations
from .engine import column_tiles, pass_timings
from .simulate import _seed, layer_for

__all__ = ["PES", "DEPTHS", "PEScalingRow", "QueueDepthRow", "pe_scaling", "queue_depth"]

PES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class PEScalingRow(TypedDict):
    """One layer at one PE count (Figs. 11-13)."""

    layer: str
    pes: int
    cycles: int
    time_us: float
    speedup: float
    load_balance: float
    real_work_fraction: float


class QueueDepthRow(TypedDict):
    """One layer at one activation-queue depth (Fig. 8)."""

    layer: str
    queue_depth: int
    cycles: int
    time_us: float
    load_balance: float


def _layer_timing(cm: ColumnMajor, acts: NDArray[np.int64], arch: EIEArch,
                  depths: Sequence[int]) -> dict[int, tuple[int, float, float]]:
    """depth -> (cycles, load_balance, real_work_fraction) for one layer on ``arch``."""
    P = arch.num_pes
    entries_all, padding_all = batch_counts(cm, P, P * arch.act_regs, arch.max_zero_run)
    passes = []
    entries = real_entries = 0
    nz_all = acts != 0
    for ent, pad in zip(entries_all, padding_all):       # one row batch: encode(...).entries, .padding
        for c0, nc in column_tiles(ent, arch):
            nzc = np.flatnonzero(nz_all[c0:c0 + nc])
            e = ent[:, c0:c0 + nc][:, nzc]
            entries += int(e.sum())
            real_entries += int(e.sum() - pad[:, c0:c0 + nc][:, nzc].sum())
            passes.append(e)
    out: dict[int, tuple[int, float, float]] = {}
    for d in depths:
        c, busy = 0, 0.0
        for t in pass_timings(passes, d, arch.pipeline_depth):
            c += t.cycles
            busy += float(t.busy.sum())
        out[d] = (c, busy / (P * c) if c else 0.0, real_entries / entries if entries else 0.0)
    return out


def _layers(workload: Workload, arch: EIEArch, seed: int) -> Iterator[tuple[Op, SparseLayer, NDArray[np.int64]]]:
    """(op, layer, activation vector) for every GEMM, drawn as ``simulate`` draws them."""
    for op in (o for o in workload.ops if o.is_gemm):
        s = _seed(op.name, seed)
        g, a = op.gemm, op.operand("input")
        assert g is not None
        yield op, layer_for(op, arch, s), synthetic_activations(g.K, a.density if a else 1.0, s, 8)


def pe_scaling(workload: Workload, arch: EIEArch, pes: Sequence[int] = PES, seed: int = 0) -> list[PEScalingRow]:
    rows: list[PEScalingRow] = []
    for op, layer, acts in _layers(workload, arch, seed):
        step()
        base = None
        cm = column_major(layer)
        for p in pes:
            a = dataclasses.replace(arch, num_pes=p, name=f"{arch.name}@{p}")
            cyc, lb, rw = _layer_timing(cm, acts, a, [arch.queue_depth])[arch.queue_depth]
            base = base or cyc
            rows.append({"layer": op.name, "pes": p, "cycles": cyc, "time_us": cyc / arch.clock_mhz,
                         "speedup": base / cyc, "load_balance": lb, "real_work_fraction": rw})
    return rows


def queue_depth(workload: Workload, arch: EIEArch, depths: Sequence[int] = DEPTHS,
                seed: int = 0) -> list[QueueDepthRow]:
    rows: list[QueueDepthRow] = []
    for op, layer, acts in _layers(workload, arch, seed):
        step()
        for d, (cyc, lb, _) in _layer_timing(column_major(layer), acts, arch, depths).items():
            rows.append({"layer": op.name, "queue_depth": d, "cycles": cyc, "time_us": cyc / arch.clock_mhz,
                         "load_balance": lb})
    return rows


"""SCALE-Sim 3.0.0 compatibility: the same cycles, stalls and access counts, much faster.

This reproduces SCALE-Sim's own model (``scalesim.single_layer_sim`` with sparsity off,
no custom layouts, no Ramulator), bug for bug, with numpy instead of per-element Python:

* the demands SCALE-Sim's per-dataflow demand matrices (one row per cycle) hold, as
  streams in service order with demands per cycle (:mod:`sim.scalesim.streams`, from
  index arithmetic; :func:`~sim.scalesim.matrices.reference_streams` builds the matrices,
  ifmap ``M x RSC`` with -1 where SCALE-Sim's ``ceil((H - R + s) / s)`` output size reads
  past the ifmap, and reads them as SCALE-Sim does; the tests hold the two equal);
* CALC bandwidth mode: SCALE-Sim's ``ReadBufferEstimateBw`` (addresses grouped in sets of
  ``size/100``, a 50-set active window that slides 50 sets at a time; a DRAM read is a
  demanded address in neither the window nor the set being filled) emulated phase by
  phase, and its write buffer (lines of ``bw`` words, a drain of half the buffer when the
  active half is full, stalls while a drain is in flight) emulated event by event
  (:mod:`sim.scalesim.read_buffer`, :mod:`sim.scalesim.write_buffer`).

This module runs the layers: the config (:mod:`sim.scalesim.config`) and topology
(:mod:`sim.scalesim.topology`) in, SCALE-Sim's reports (:mod:`sim.scalesim.report`) out.
The names of those modules stay importable from here.

Known SCALE-Sim behaviours this mode keeps (hwsim's own model does not):

1. Partial sums of every K fold are written to the ofmap SRAM and to DRAM (no on-chip
   accumulation): DRAM ofmap writes are ``M x N x ceil(K / rows)`` for ``ws``.
2. The output size is ``ceil((H - R + s) / s)``; the extra row/column reads past the
   ifmap (addresses -1) and still count as SRAM reads.
3. ``os`` adds ``rows + cols`` phantom ofmap writes per fold.
4. In CALC mode the read buffers never stall; their DRAM traffic is timed backwards from
   the first demand, so DRAM start cycles are negative.
5. Total cycles are the index of the last demand row plus stalls (one less than the
   number of rows).
6. DRAM ofmap writes count a line flushed half full mid-stream as a full line (only the
   last line of each drain is trimmed), so they can exceed the words written.
7. USER mode: every read miss advances the active window by the prefetch window, the
   stall is added to the row's offset twice when positive (and subtracted when
   negative), and DRAM reads count whole prefetch lines, padding included.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from workloads.progress import step

from .. import budget
from ..constants import Constant
from .config import ScaleSimConfig, read_config
from .matrices import Demand, demand_matrices, operand_matrices, prefetch_sequences, reference_streams
from .read_buffer import ReadResult, UserReads, read_buffer_calc, read_buffer_user
from .report import BANDWIDTH_COLUMNS, COMPUTE_COLUMNS, DETAIL_COLUMNS, LayerReport, write_reports
from .streams import RowMap, Streams, streams
from .topology import Layer, read_topology
from .write_buffer import WriteBuffer

__all__ = [
    # running layers (this module)
    "SCALE", "CONSTANTS", "demand_bytes", "run_layer", "run",
    # re-exported from the modules of each concept
    "ScaleSimConfig", "read_config", "Layer", "read_topology", "Demand", "operand_matrices", "demand_matrices",
    "prefetch_sequences", "reference_streams", "Streams", "RowMap", "streams", "ReadResult", "UserReads",
    "read_buffer_calc", "read_buffer_user", "WriteBuffer", "COMPUTE_COLUMNS", "BANDWIDTH_COLUMNS", "DETAIL_COLUMNS",
    "LayerReport", "write_reports",
]


def _read_stalls(u: UserReads, lo: int, hi: int, cycle: int, calls_done: int) -> tuple[int, int]:
    """Offset of one demand row whose misses are ``u.miss_*[lo:hi]`` (SCALE-Sim's
    ``service_reads``: each prefetch adds ``lines + 1`` to the last prefetch cycle, the stall
    is applied to the row's offset, twice when positive)."""
    off = 1
    per_call = u.lines_per_prefetch + 1
    for k in u.miss_calls[lo:hi]:
        for _ in range(int(k)):
            calls_done += 1
            lpc = -1 + calls_done * per_call
            pot = lpc - (cycle + off)
            off += pot
            if pot > 0:
                off += pot
    return off, calls_done


def _timing(n_rows: int, wb: WriteBuffer,
            reads: list[UserReads]) -> tuple[NDArray[np.int64], dict[tuple[int, int], int], dict[int, int]]:
    """Walk the demand rows in order, visiting only rows where something happens.

    Returns the stall each row adds, the read offsets of rows with misses and the write
    offsets of rows where the write buffer stalled."""
    stall_at = np.zeros(n_rows, dtype=np.int64)
    read_off: dict[tuple[int, int], int] = {}      # (operand, row) -> offset
    write_off: dict[int, int] = {}                 # row -> offset
    S = 0
    ptr = [0] * len(reads)
    calls = [0] * len(reads)
    miss_rows = [u.miss_rows for u in reads]
    while True:
        r_read = min((int(mr[p]) for mr, p in zip(miss_rows, ptr) if p < mr.size), default=math.inf)
        nxt = min(r_read, wb.next_event_row(S))
        if nxt == math.inf:
            break
        r = int(nxt)
        wb.store_until(r)
        cycle = r + S
        o = wb.process_row(r, cycle)
        if o:
            write_off[r] = o
        stall = o
        for q, u in enumerate(reads):
            mr = miss_rows[q]
            lo = hi = ptr[q]
            while hi < mr.size and mr[hi] == r:
                hi += 1
            if hi > lo:
                off, calls[q] = _read_stalls(u, lo, hi, cycle, calls[q])
                read_off[(q, r)] = off
                stall = max(stall, off - 1)
                ptr[q] = hi
        stall_at[r] = stall
        S += stall
    wb.store_until(n_rows)
    return stall_at, read_off, write_off


def demand_bytes(L: Layer, cfg: ScaleSimConfig) -> float:
    """Estimated peak memory of :func:`run_layer`: per demand of the ifmap and filter
    streams 16 bytes (the int32 fold parts, their concatenation and the read buffer's intp
    ranks), int64 index temporaries of the largest skewed block, the CALC read buffer's
    tables over the address span, the per-row counts and, in USER mode, the operand
    matrices, the padded prefetch matrices and the membership arrays. ``SCALE`` is a
    margin over measurements: tracemalloc peaks of run_layer over ResNet-18's first eight layers at 8x8,
    32x32 and 128x128, ws/os/is, CALC and USER, were 0.32-1.33 times the bracket (measured
    2026-11-27); a 100000-row array in USER mode peaked at 4.7 GB (RSS) against 6.9 GB estimated."""
    R, C = cfg.rows, cfg.cols
    E, F = L.ofmap
    M, win = E * F, L.R * L.S * L.C
    fr, fc = {"ws": (-(-win // R), -(-L.K // C)), "os": (-(-M // R), -(-L.K // C)),
              "is": (-(-win // R), -(-M // C))}[cfg.dataflow]
    ifmap = (fc if cfg.dataflow == "ws" else 1) * M * win
    filt = {"ws": win * L.K, "os": fr * win * L.K, "is": fc * win * L.K}[cfg.dataflow]
    block = max(M, win, L.K) * min(max(R, C), max(M, win, L.K))
    span = L.H * L.W * L.C + win * L.K
    rows = fr * fc * ({"ws": M, "os": win, "is": L.K}[cfg.dataflow] + 2 * R + 2 * C)   # demand rows
    b = 16 * (ifmap + filt) + 8 * 4 * block + 8 * span + 3 * 8 * rows
    if cfg.user_bandwidth:
        # the prefetch matrices, padded to the array's rows or columns, and their
        # anti-diagonal order (int64 index grids and a lexsort): 48 bytes per entry
        prefetch = {"ws": fr * M * R + fc * win * C, "os": fr * win * R + fc * win * C,
                    "is": fc * win * C + fr * L.K * R}[cfg.dataflow]
        b += 24 * (M * win + win * L.K + M * L.K) + 24 * (ifmap + filt) + 48 * prefetch
    return SCALE * b


SCALE = 1.5   # a margin over the measured peaks, see demand_bytes

CONSTANTS: tuple[Constant, ...] = (
    Constant("compat.SCALE", SCALE, "measured",
             "margin on demand_bytes' bracket: tracemalloc peaks of run_layer over ResNet-18's first eight layers "
             "at 8x8, 32x32 and 128x128, ws/os/is, CALC and USER, were 0.32-1.33 times it (2026-11-27); only for "
             "refusing a request over --max-memory"),
)


def run_layer(L: Layer, cfg: ScaleSimConfig, reference: bool = False) -> LayerReport:
    """One layer's three report rows. ``reference=True`` builds SCALE-Sim's demand matrices
    and reads the streams off them (slow; the tests compare the two)."""
    R, C = cfg.rows, cfg.cols
    if reference:
        st = reference_streams(L, cfg)
    else:
        budget.need(f"layer {L.name!r}: SCALE-Sim's demand streams on a {R}x{C} array", nbytes=demand_bytes(L, cfg))
        st = streams(L, cfg)
    n_rows = st.n_rows
    maps = [RowMap(c) for c in st.counts]
    sizes = (cfg.ifmap_kb * 1024, cfg.filter_kb * 1024)
    if cfg.user_bandwidth:
        ifm, flt, _ = operand_matrices(L, cfg)
        pi, pf = prefetch_sequences(ifm, flt, R, C, cfg.dataflow)
        del ifm, flt
        banks = (cfg.ifmap_banks, cfg.filter_banks)
        reads = [read_buffer_user(pre, a, rm, size, bw, nb, what)
                 for pre, a, rm, size, bw, nb, what in zip((pi, pf), st.addrs, maps, sizes,
                                                         (cfg.ifmap_bank_bw, cfg.filter_bank_bw), banks,
                                                         ("Ifmap", "Filter"))]
        wb = WriteBuffer(maps[2], cfg.ofmap_kb * 1024, cfg.bandwidths[0])
    else:
        reads = []
        wb = WriteBuffer(maps[2], cfg.ofmap_kb * 1024, C)
    stall_at, read_off, write_off = _timing(n_rows, wb, reads)
    stall_after = np.cumsum(stall_at)
    stall_before = stall_after - stall_at
    stalls = int(stall_after[-1])
    cyc_before = np.arange(n_rows) + stall_before
    def out_cycle(row: int) -> int:   # when the ofmap write of a row is serviced
        return int(cyc_before[row] + write_off.get(row, 0))

    total_cycles = out_cycle(n_rows - 1)
    wb.finish(total_cycles)

    dram, sram = [], []
    for q, (a, rm, size) in enumerate(zip(st.addrs, maps, sizes)):
        if cfg.user_bandwidth:
            u = reads[q]
            first = -u.first_lines
            stop = -1 + u.prefetches * (u.lines_per_prefetch + 1)
            dram.append(ReadResult(u.dram_reads, first, stop))
        else:
            def cycle_of(pos: int, rows: RowMap = rm) -> int:   # when a stream position is demanded
                return int(cyc_before[rows.row_of(pos)])

            dram.append(read_buffer_calc(a, cycle_of, size, 10))
        r0, r1 = rm.first_row(), rm.last_row()
        sram.append((int(cyc_before[r0] + read_off.get((q, r0), 1)), int(cyc_before[r1] + read_off.get((q, r1), 1))))
    sram.append((out_cycle(maps[2].first_row()), out_cycle(maps[2].last_row())))
    ri, rf = dram
    assert wb.dmin is not None and wb.dmax is not None   # the layer wrote its outputs
    num_compute = L.ofmap[0] * L.ofmap[1] * L.K * L.R * L.S * L.C
    overall = int(wb.dmax - min(ri.dram_start, rf.dram_start))
    util = num_compute * 100 / (total_cycles * R * C)
    compute = [overall, total_cycles, stalls, util, sum(st.mapping_eff) / len(st.mapping_eff) * 100,
               sum(st.compute_util) / len(st.compute_util) * 100]
    bandwidth = [st.ifmap_reads / total_cycles, st.filter_reads / total_cycles, st.ofmap_writes / total_cycles,
                 ri.dram_reads / (ri.dram_stop - ri.dram_start + 1), rf.dram_reads / (rf.dram_stop - rf.dram_start + 1),
                 wb.access / (wb.dmax - wb.dmin + 1)]
    detail = [sram[0][0], sram[0][1], st.ifmap_reads, sram[1][0], sram[1][1], st.filter_reads,
              sram[2][0], sram[2][1], st.ofmap_writes, ri.dram_start, ri.dram_stop, ri.dram_reads,
              rf.dram_start, rf.dram_stop, rf.dram_reads, wb.dmin, wb.dmax, wb.access]
    return LayerReport(compute, bandwidth, detail)


def run(config: str | Path, topology: str | Path, gemm: bool | None = None) -> tuple[ScaleSimConfig, list[Layer], list[LayerReport]]:
    """Every layer of ``topology`` under ``config``. SCALE-Sim simulates each layer afresh
    (new buffers, no state carried between layers), so layers of the same shape share one
    report: ResNet-18's four identical ``layer1`` convolutions are simulated once."""
    cfg = read_config(config)
    layers = read_topology(topology, gemm)
    done: dict[tuple[object, ...], LayerReport] = {}      # layer shape -> its report
    for L in layers:
        shape = dataclasses.astuple(dataclasses.replace(L, name=""))
        step()
        if shape not in done:
            done[shape] = run_layer(L, cfg)
    return cfg, layers, [done[dataclasses.astuple(dataclasses.replace(L, name=""))] for L in layers]

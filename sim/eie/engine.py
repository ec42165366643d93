"""Cycle-level simulation of EIE on one layer: sparse matrix x sparse activation vector.

What each cycle does (both engines below implement exactly this):

* **Central control unit.** The leading-non-zero-detection tree yields the non-zero input
  activations in order. At most one is broadcast per cycle, and only when every PE's
  activation queue has room; a queued activation can be started from the next cycle on.
  An activation holds its queue slot until its PE has finished its column (the slot
  frees in the cycle of the column's last entry), so depth 1 leaves no backlog: then
  about half of the PE cycles idle, as the paper reports (Sec. VI-C).
* **PE.** When idle with a non-empty queue, a PE pops an activation ``a_j`` and reads
  ``p_j, p_{j+1}`` from its two pointer banks (one cycle, overlapped with the first entry).
  It then streams the column's entries from the sparse-matrix SRAM, 64 bits (8 entries)
  per read, one ``(v, z)`` entry per cycle into the 4-stage pipeline (codebook lookup and
  address accumulation | multiply and output read | add | write). Padding zeros take a
  cycle like any entry. A column with no entries on this PE still costs the pointer-read
  cycle. The last result is written ``pipeline_depth - 1`` cycles after it entered.
* **Batches and tiles.** Each PE holds ``act_regs`` output activations, so a layer with
  more than ``num_pes * act_regs`` outputs runs in row batches; columns are split into
  tiles when a PE's pointers or entries exceed its pointer or sparse-matrix SRAM. Each
  (batch, tile) pass broadcasts that tile's non-zero activations again.
* **DRAM.** When the passes do not all fit the SRAMs together, what does not fit is read
  from DRAM for every vector, stalling the PEs or overlapped with compute as
  ``arch.dram_streaming`` says (:mod:`sim.eie.dram`); a layer that fits reads nothing.

``simulate_cycles`` steps every cycle (the reference). ``pass_timing`` computes the same
schedule from the recurrence it implies, vectorised over PEs:

    B[a] = max(B[a-1] + 1, max_k F[k, a - depth] - 1)   (broadcast when a slot is free)
    S[k, a] = max(F[k, a-1], B[a] + 1),  F = S + max(e[k, a], 1)

where ``e[k, a]`` is PE k's entry count for the a-th non-zero activation. Tests prove the
two equal on cycles, per-PE busy cycles and broadcast stalls.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
from numpy.typing import NDArray

from workloads.errors import HwsimError

from .dram import load_cycles, pass_loads, stream_time
from .encode import SparseLayer, encode
from .memo import Memo, frozen_array, nbytes_of

if TYPE_CHECKING:
    from .arch import EIEArch

__all__ = [
    "PassTiming", "pass_timing", "pass_timings", "uniform_pass", "simulate_cycles", "LayerRun", "column_tiles",
    "LayerPlan", "TileStats", "plan_layer", "plan_from_mask", "plan_dense", "run_layer", "reference_output",
]


@dataclass(frozen=True)
class PassTiming:
    cycles: int              # first broadcast to last write-back, inclusive
    busy: np.ndarray         # per PE: cycles spent popping/processing
    broadcast_stalls: int    # cycles the CCU held a ready activation because a queue was full
    broadcast: np.ndarray | None = None   # cycle each activation is broadcast (fast engine)
    start: np.ndarray | None = None       # (activations x PEs) cycle each PE pops each activation


def _work(e: NDArray[np.integer]) -> NDArray[np.integer]:
    work: NDArray[np.integer] = np.maximum(e, 1)
    return work


def pass_timing(e: np.ndarray, depth: int, pipeline_depth: int, schedule: bool = True) -> PassTiming:
    """Fast engine. ``e[k, a]``: entries of PE k for the a-th broadcast activation.

    The recurrence is solved ``depth`` activations at a time: within a block every
    broadcast waits only on finishes of the block before, so with ``ready[a] = max_k
    F[k, a - depth] - 1`` the broadcasts are ``B[a] = a + cummax(ready[j] - j)`` and, with
    ``W`` the running sum of a PE's work, ``F[k, a] = W[k, a] + max(F[k, a0 - 1] -
    W[k, a0 - 1], cummax_j (B[j] + 1 - W[k, j - 1]))``. Broadcast stalls add up to
    ``B[A - 1] + 1 - A``. Python loops over A / depth blocks, numpy over the block x PEs.

    When every activation brings each PE the same work (a dense layer: ``e[k, a] = c_k``)
    the busiest PE bounds every other one's finish and is never starved, so
    ``F[k*, a] = 1 + (a + 1) c*`` and the broadcasts follow in closed form; one numpy pass
    then gives every PE's schedule. Without ``schedule`` (the broadcast and start cycles)
    such a pass is :func:`uniform_pass`, three scalars.
    """
    P, A = e.shape
    if A == 0:
        return PassTiming(0, np.zeros(P, dtype=np.int64), 0)
    w = _work(e).T.astype(np.int64)          # (A, P)
    alike = bool((w == w[0]).all())          # a dense tile: every activation, the same work
    if alike and not schedule:
        return uniform_pass(e[:, 0], A, depth, pipeline_depth)
    W = np.cumsum(w, axis=0)                 # W[a] = work of activations 0..a
    if alike:
        c = int(w[0].max())
        j = np.arange(A, dtype=np.int64)
        ready = np.where(j >= depth, (j - depth + 1) * c, -1)
        Bc = j + np.maximum(np.maximum.accumulate(ready - j), 0)
        F = W + np.maximum(np.maximum.accumulate(Bc[:, None] + 1 - (W - w), axis=0), 0)
        return PassTiming(int(F[-1].max()) - 1 + pipeline_depth, W[-1].copy(), int(Bc[-1]) + 1 - A, Bc, F - w)
    Fmax, Bc, Fk = _blocked(w[:, None], W[:, None], depth, keep=True)
    assert Fk is not None
    S = Fk[:, 0] - w
    return PassTiming(int(Fmax[-1, 0]) - 1 + pipeline_depth, w.sum(axis=0), int(Bc[-1, 0]) + 1 - A, Bc[:, 0], S)


def _blocked(w: NDArray[np.int64], W: NDArray[np.int64], depth: int,
             keep: bool = False) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64] | None]:
    """:func:`pass_timing`'s blocks for N passes at once, one numpy step per block: from the
    work ``w`` and its running sum ``W`` (A x N x P), the busiest PE's finish cycle and the
    broadcast cycle of every activation (A x N each), and with ``keep`` every PE's F."""
    A, N, P = w.shape
    Fmax = np.empty((A, N), dtype=np.int64)
    Bc = np.empty((A, N), dtype=np.int64)
    F = np.empty((A, N, P), dtype=np.int64) if keep else None
    Q = W - w - 1                            # W[j - 1] - 1
    j1 = np.arange(1, A + 1, dtype=np.int64)[:, None]        # j + 1
    b_prev = np.full(N, -1, dtype=np.int64)  # B[-1]: the first broadcast is at cycle 0
    f_prev = np.zeros((N, P), dtype=np.int64)                # F[-1] - W[-1]: PEs are free from cycle 0
    for a0 in range(0, A, depth):
        a1 = min(a0 + depth, A)
        # B[a] = max(B[a0 - 1] + (a - a0 + 1), max_{a0 <= j <= a} ready[j] + (a - j)),
        # ready[j] = max_k F[k, j - depth] - 1
        if a0 >= depth:
            B = np.maximum.accumulate(Fmax[a0 - depth:a1 - depth] - j1[a0:a1], axis=0)
            np.maximum(B, b_prev + 1 - a0, out=B)
        else:
            B = np.repeat((b_prev + 1 - a0)[None], a1 - a0, axis=0)
        B += j1[a0:a1] - 1
        Bc[a0:a1] = B
        start = np.maximum.accumulate(B[:, :, None] - Q[a0:a1], axis=0)    # max_j B[j] + 1 - W[j - 1]
        np.maximum(start, f_prev, out=start)
        f_prev = start[-1].copy()
        start += W[a0:a1]                    # F
        start.max(axis=2, out=Fmax[a0:a1])
        if F is not None:
            F[a0:a1] = start
        b_prev = B[-1]
    return Fmax, Bc, F


def pass_timings(es: Sequence[np.ndarray], depth: int, pipeline_depth: int,
                 chunk: int = 1 << 20) -> list[PassTiming]:
    """``pass_timing(e, depth, pipeline_depth, schedule=False)`` for every ``e`` in ``es``
    (tested equal): passes of one shape are solved together, about ``chunk`` PE-activations
    at a time, so the Python loop runs once per block of a group, not of every pass."""
    out: list[PassTiming | None] = [None] * len(es)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(es):
        work = _work(e)
        if e.shape[1] == 0 or bool((work == work[:, :1]).all()):      # pass_timing's own shortcuts
            out[i] = pass_timing(e, depth, pipeline_depth, schedule=False)
        else:
            groups.setdefault(e.shape, []).append(i)
    for (P, A), members in groups.items():
        step = max(1, chunk // (P * A))
        for g0 in range(0, len(members), step):
            part = members[g0:g0 + step]
            w: NDArray[np.int64] = np.stack([_work(es[i]).T for i in part], axis=1).astype(np.int64)  # A x N x P
            Fmax, Bc, _ = _blocked(w, np.cumsum(w, axis=0), depth)
            busy = w.sum(axis=0)
            for n, i in enumerate(part):
                out[i] = PassTiming(int(Fmax[-1, n]) - 1 + pipeline_depth, busy[n], int(Bc[-1, n]) + 1 - A)
    return [t for t in out if t is not None]


def uniform_pass(entries: np.ndarray, A: int, depth: int, pipeline_depth: int) -> PassTiming:
    """:func:`pass_timing` of ``A`` activations that each bring PE k ``entries[k]`` entries
    (a dense tile), without the schedule: the busiest PE's last entry is at cycle ``A c*``
    and the CCU has stalled ``max(0, (A - depth) c* - (A - 1))`` cycles (see there)."""
    w = _work(np.asarray(entries, dtype=np.int64))
    if A == 0:
        return PassTiming(0, np.zeros(w.size, dtype=np.int64), 0)
    c = int(w.max())
    stalls = max(0, (A - depth) * c - (A - 1)) if A > depth else 0
    return PassTiming(A * c + pipeline_depth, A * w, stalls)


def simulate_cycles(e: np.ndarray, depth: int, pipeline_depth: int, schedule: bool = False) -> PassTiming:
    """Reference engine: step the CCU, the queues and every PE one cycle at a time.
    (``schedule`` is taken for :func:`pass_timing`'s signature; no start cycles are kept.)"""
    P, A = e.shape
    if A == 0:
        return PassTiming(0, np.zeros(P, dtype=np.int64), 0)
    queues: list[deque[tuple[int, int]]] = [deque() for _ in range(P)]     # (activation, cycle it becomes visible); head = current
    remaining = [0] * P
    busy = [0] * P
    nxt, t, last, stalls = 0, 0, -1, 0
    while True:
        for k in range(P):
            if remaining[k] == 0 and queues[k] and queues[k][0][1] <= t:
                remaining[k] = max(int(e[k, queues[k][0][0]]), 1)
            if remaining[k] > 0:
                remaining[k] -= 1
                busy[k] += 1
                last = t
                if remaining[k] == 0:
                    queues[k].popleft()          # the column is done: its slot frees now
        if nxt < A:
            if all(len(q) < depth for q in queues):
                for q in queues:
                    q.append((nxt, t + 1))
                nxt += 1
            else:
                stalls += 1
        t += 1
        if nxt == A and not any(queues) and not any(remaining):
            break
    return PassTiming(last + pipeline_depth, np.array(busy, dtype=np.int64), stalls)


@dataclass(frozen=True)
class LayerRun:
    """Everything one layer x one activation vector produced."""

    cycles: int                  # compute_cycles + dram_stall_cycles
    passes: int
    row_batches: int
    col_tiles: int
    busy: np.ndarray             # per PE, summed over passes
    compute_cycles: int          # sum over passes of the per-pass cycles
    broadcast_stalls: int
    starved_cycles: int          # cycles the busiest PE waited for an activation, summed over passes
    entries: int                 # (v, z) entries processed, padding included
    padding: int                 # of which padding zeros
    real_macs: int               # non-padding entries processed (weight x non-zero activation)
    nonzero_acts: int            # broadcasts, summed over passes
    spmat_reads: int             # 64-bit sparse-matrix SRAM reads
    ptr_reads: int               # pointer reads (16-bit words, two per broadcast per PE)
    act_scans: int               # source activations read by the LNZD tree
    spmat_bytes: int             # encoded weights (entries x entry bits / 8)
    ptr_bytes: int
    output: np.ndarray           # y as 16-bit fixed point
    dram_bytes: float = 0.0      # entries and pointers read from DRAM (what does not fit on chip)
    dram_stall_cycles: int = 0   # cycles the PEs waited for DRAM


def column_tiles(entries_per_col: np.ndarray, arch: EIEArch) -> list[tuple[int, int]]:
    """Split columns so every PE's pointers and entries fit its SRAMs: [(col0, cols)]."""
    P, C = entries_per_col.shape
    max_cols = arch.ptr_capacity - 1
    if max_cols < 1:
        raise HwsimError(f"{arch.name}: ptr_sram_bytes holds {arch.ptr_capacity} pointers; at least 2 are needed")
    if entries_per_col.max(initial=0) > arch.spmat_capacity:
        raise HwsimError(f"{arch.name}: one column needs {int(entries_per_col.max())} entries on a PE but its "
                         f"sparse-matrix SRAM holds {arch.spmat_capacity}; raise spmat_sram_bytes or num_pes")
    tiles = []
    c0 = 0
    while c0 < C:                # a tile has at most max_cols columns: only those are summed
        need = np.cumsum(entries_per_col[:, c0:c0 + max_cols], axis=1, dtype=np.int64).max(axis=0)
        n = int(np.searchsorted(need, arch.spmat_capacity, side="right"))   # need is monotone in columns
        n = max(1, min(n, max_cols, C - c0))
        tiles.append((c0, n))
        c0 += n
    return tiles


@dataclass(frozen=True)
class LayerPlan:
    """What of a layer's encoding the timing needs, for every activation vector: per row
    batch, the (PE x column) entry and padding counts and the column tiles."""

    batches: tuple[tuple[int, np.ndarray, np.ndarray, tuple[tuple[int, int], ...]], ...]   # (row0, entries, padding, tiles)
    col_nnz: np.ndarray          # non-zeros of each column (all rows)
    shape: tuple[int, int] = (0, 0)
    # per (batch entries, tile start): the tile's per-column totals, worked out once per plan
    stats: dict[tuple[int, int], TileStats] = field(default_factory=dict, compare=False, repr=False)

    def tile_stats(self, entries: np.ndarray, padding: np.ndarray, c0: int, nc: int, per_read: int) -> "TileStats":
        key = (id(entries), c0)
        ts = self.stats.get(key)
        if ts is None:
            e = entries[:, c0:c0 + nc]
            P = e.shape[0]
            ptr = np.concatenate([np.zeros((P, 1), dtype=np.int64), np.cumsum(e, axis=1)], axis=1)
            # 64-bit reads: the distinct 8-entry words each column's entries span on each PE
            words = np.where(e > 0, (ptr[:, 1:] - 1) // per_read - ptr[:, :-1] // per_read + 1, 0)
            alike = bool((e == e[:, :1]).all())
            ts = TileStats(frozen_array(e.sum(axis=0)), frozen_array(padding[:, c0:c0 + nc].sum(axis=0)),
                           frozen_array(words.sum(axis=0)), int(ptr[:, -1].sum()),
                           frozen_array(e[:, 0].copy()) if alike else None, frozen_array(ptr[:, -1].copy()))
            self.stats[key] = ts
        return ts


@dataclass(frozen=True)
class TileStats:
    """Per column of a tile, summed over PEs: entries, padding entries and 64-bit reads; the
    tile's encoded entries; when every column is alike (a dense tile), each PE's entries
    per column (the timing then needs only how many activations are non-zero); and each
    PE's entries in the tile (what its sparse-matrix SRAM holds of it)."""

    entries: np.ndarray
    padding: np.ndarray
    words: np.ndarray
    total_entries: int
    uniform: np.ndarray | None
    pe_entries: np.ndarray


# Plans of synthetic layers, by the layer's recipe and what of the arch the plan reads.
PLANS: Memo[LayerPlan] = Memo("layer plans", max_items=64, max_bytes=256 << 20)


def plan_layer(layer: SparseLayer, arch: EIEArch) -> LayerPlan:
    """The layer's :class:`LayerPlan` on ``arch`` (read-only). For a :func:`synthetic` layer
    it is made once per process for the layer's recipe and the arch fields it depends on:
    the PEs, output registers and longest zero run (encode), the pointer and sparse-matrix
    SRAM capacities (column tiles) and the entries per SRAM read (the tile statistics it
    keeps); the arch's name appears only in errors, which are not kept."""
    if layer.recipe is None:
        return _plan_layer(layer, arch)
    key = (layer.recipe, arch.num_pes, arch.act_regs, arch.max_zero_run, arch.ptr_capacity, arch.spmat_capacity,
           arch.entries_per_read)
    return PLANS.get(key, lambda: _plan_layer(layer, arch),
                     lambda p: nbytes_of([p.col_nnz] + [a for b in p.batches for a in b[1:3]]))


def _plan_layer(layer: SparseLayer, arch: EIEArch) -> LayerPlan:
    if layer.nnz == 0:
        raise HwsimError("the layer has no non-zero weights; there is nothing for EIE to compute")
    R, C = layer.shape
    P = arch.num_pes
    batch_rows = P * arch.act_regs
    out = []
    for r0 in range(0, R, batch_rows):
        enc = encode(layer, P, arch.max_zero_run, row0=r0, rows=min(batch_rows, R - r0))
        out.append((r0, frozen_array(enc.entries), frozen_array(enc.padding), tuple(column_tiles(enc.entries, arch))))
        del enc
    return LayerPlan(tuple(out), frozen_array(np.bincount(layer.cols, minlength=C)), (R, C))


def plan_from_mask(weights: np.ndarray, arch: EIEArch, chunk_elements: int = 1 << 21) -> LayerPlan:
    """The plan of a layer from where its non-zeros are (``weights != 0``, rows x cols),
    without encoding it: equal to ``plan_layer`` on the same layer (tested), in memory
    bounded by ``chunk_elements`` columns' worth of one row batch at a time.

    Row r of a batch sits on PE ``r mod P`` at local row ``r // P``; a PE's entries in a
    column are its non-zeros plus one padding entry per ``max_zero_run + 1`` zeros before
    each non-zero (since the previous one, or the column's start)."""
    R, C = weights.shape
    if not weights.any():
        raise HwsimError("the layer has no non-zero weights; there is nothing for EIE to compute")
    P = arch.num_pes
    batch_rows = P * arch.act_regs
    run = arch.max_zero_run + 1
    out = []
    for r0 in range(0, R, batch_rows):
        rb = min(batch_rows, R - r0)
        L = -(-rb // P)
        entries = np.empty((P, C), dtype=np.int64)
        padding = np.empty((P, C), dtype=np.int64)
        step = max(1, chunk_elements // (L * P))
        local = np.arange(L, dtype=np.int64)[:, None, None]
        for c0 in range(0, C, step):
            cc = min(step, C - c0)
            m = np.zeros((L * P, cc), dtype=bool)
            m[:rb] = weights[r0:r0 + rb, c0:c0 + cc] != 0
            m = m.reshape(L, P, cc)                       # [local row, PE, column]
            seen = np.maximum.accumulate(np.where(m, local, -1), axis=0)
            prev = np.concatenate([np.full((1, P, cc), -1, dtype=np.int64), seen[:-1]])
            pads = np.where(m, (local - prev - 1) // run, 0).sum(axis=0)
            padding[:, c0:c0 + cc] = pads
            entries[:, c0:c0 + cc] = m.sum(axis=0) + pads
        out.append((r0, entries, padding, tuple(column_tiles(entries, arch))))
    col_nnz = np.zeros(C, dtype=np.int64)
    rows_at_once = max(1, chunk_elements // C)
    for r0 in range(0, R, rows_at_once):
        col_nnz += np.count_nonzero(weights[r0:r0 + rows_at_once], axis=0)
    return LayerPlan(tuple(out), col_nnz, (R, C))


def plan_dense(rows: int, cols: int, arch: EIEArch) -> LayerPlan:
    """The plan of a layer with no zeros, in closed form: row r of a batch belongs to PE
    r mod P, so PE p holds ceil((rows - p) / P) entries of every column and, with no zero
    runs, no padding (equal to ``plan_layer`` on such a layer: tested). Nothing of size PEs
    x columns is built: the counts are broadcast views, the column tiles are equal steps
    of ``min(spmat capacity // busiest PE's entries, pointers - 1)`` columns, and each
    tile's totals are filled in from the (at most two) distinct per-PE counts."""
    P = arch.num_pes
    batch_rows = P * arch.act_regs
    per_read = arch.entries_per_read
    max_cols = arch.ptr_capacity - 1
    if max_cols < 1:
        raise HwsimError(f"{arch.name}: ptr_sram_bytes holds {arch.ptr_capacity} pointers; at least 2 are needed")
    out = []
    # full batches share one array (run_layer reuses their timing): rows -> (entries, padding, tiles)
    made: dict[int, tuple[NDArray[np.int64], NDArray[np.int64], tuple[tuple[int, int], ...]]] = {}
    stats: dict[tuple[int, int], TileStats] = {}
    for r0 in range(0, rows, batch_rows):
        rb = min(batch_rows, rows - r0)
        if rb not in made:
            per_pe = np.maximum(0, (rb - np.arange(P) + P - 1) // P).astype(np.int64)
            cmax = int(per_pe.max())
            if cmax > arch.spmat_capacity:
                raise HwsimError(f"{arch.name}: one column needs {cmax} entries on a PE but its sparse-matrix SRAM "
                                 f"holds {arch.spmat_capacity}; raise spmat_sram_bytes or num_pes")
            step = max(1, min(arch.spmat_capacity // cmax if cmax else cols, max_cols))
            tiles = tuple((c0, min(step, cols - c0)) for c0 in range(0, cols, step))
            entries = np.broadcast_to(per_pe[:, None], (P, cols))
            padding = np.broadcast_to(np.zeros(1, dtype=np.int64)[:, None], (P, cols))
            counts = {int(c): int(n) for c, n in zip(*np.unique(per_pe, return_counts=True))}
            total = int(per_pe.sum())
            for c0, nc in tiles:
                j = np.arange(nc, dtype=np.int64)
                words = np.zeros(nc, dtype=np.int64)
                for c, n in counts.items():
                    if c:
                        words += n * (((j + 1) * c - 1) // per_read - (j * c) // per_read + 1)
                stats[(id(entries), c0)] = TileStats(np.full(nc, total, dtype=np.int64), np.zeros(nc, dtype=np.int64),
                                                     words, nc * total, per_pe, per_pe * nc)
            made[rb] = (entries, padding, tiles)
        out.append((r0, *made[rb]))
    return LayerPlan(tuple(out), np.full(cols, rows, dtype=np.int64), (rows, cols), stats)


def run_layer(layer: SparseLayer | None, acts: np.ndarray, arch: EIEArch, engine: str = "fast",
              plan: LayerPlan | None = None, functional: bool = True) -> LayerRun:
    """Simulate ``y = W a`` on ``arch``; ``acts`` is 16-bit fixed point (any radix point).
    ``plan`` (from :func:`plan_layer` or :func:`plan_dense`) saves re-encoding the layer for
    every vector; ``functional=False`` skips computing ``y`` (the output is then zeros) and
    then needs no ``layer`` when a plan is given."""
    if layer is None and (plan is None or functional):
        raise HwsimError("run_layer needs the layer for its output (or a plan and functional=False)")
    if layer is not None and layer.nnz == 0:
        raise HwsimError("the layer has no non-zero weights; there is nothing for EIE to compute")
    if plan is None:
        assert layer is not None
        plan = plan_layer(layer, arch)
    R, C = plan.shape
    acts = np.asarray(acts, dtype=np.int64)
    if acts.shape != (C,):
        raise HwsimError(f"activation vector has shape {list(acts.shape)}, the layer needs ({C},)")
    timing = pass_timing if engine == "fast" else simulate_cycles
    P = arch.num_pes
    batch_rows = P * arch.act_regs
    y = np.zeros(R, dtype=np.int64)
    busy = np.zeros(P, dtype=np.int64)
    totals = dict(passes=0, compute=0, stalls=0, starved=0, entries=0, padding=0, real=0, nz=0,
                  spmat=0, ptr=0, scans=0, spmat_bytes=0, ptr_bytes=0)
    n_tiles = 0
    seen: dict[tuple[int, int], PassTiming] = {}    # a batch sharing another's counts has its timing
    compute: list[int] = []                         # per pass, in order: compute cycles,
    pe_entries: list[np.ndarray] = []               # each PE's entries,
    pointers: list[int] = []                        # and pointers per PE
    for r0, entries, padding, tiles in plan.batches:
        n_tiles = max(n_tiles, len(tiles))
        for c0, nc in tiles:
            nzc = np.flatnonzero(acts[c0:c0 + nc])
            ts = plan.tile_stats(entries, padding, c0, nc, arch.entries_per_read)
            key = (id(entries), c0)
            if key not in seen:
                if ts.uniform is not None and engine == "fast":
                    seen[key] = uniform_pass(ts.uniform, nzc.size, arch.queue_depth, arch.pipeline_depth)
                else:
                    seen[key] = timing(entries[:, c0:c0 + nc][:, nzc], arch.queue_depth, arch.pipeline_depth,
                                       schedule=False)
            t = seen[key]
            compute.append(t.cycles)
            pe_entries.append(ts.pe_entries)
            pointers.append(nc + 1)
            totals["compute"] += t.cycles
            totals["stalls"] += t.broadcast_stalls
            if t.cycles:
                totals["starved"] += t.cycles - (arch.pipeline_depth - 1) - int(t.busy.max())
            totals["passes"] += 1
            busy += t.busy
            totals["entries"] += int(ts.entries[nzc].sum())
            totals["padding"] += int(ts.padding[nzc].sum())
            totals["nz"] += nzc.size
            totals["ptr"] += 2 * P * nzc.size
            totals["scans"] += nc
            totals["spmat"] += int(ts.words[nzc].sum())
            totals["spmat_bytes"] += ts.total_entries * arch.entry_bits // 8
            totals["ptr_bytes"] += P * (nc + 1) * arch.pointer_bits // 8
        if functional and layer is not None:   # every non-zero of this batch times its activation
            sel = (layer.rows >= r0) & (layer.rows < r0 + batch_rows)
            rows, cols = layer.rows[sel], layer.cols[sel]
            prod = (layer.codebook[layer.idx[sel]] * acts[cols]) >> layer.frac_bits
            y += np.bincount(rows, weights=prod, minlength=R).astype(np.int64)
    totals["real"] = int(plan.col_nnz[acts != 0].sum())      # non-zero weights meeting non-zero activations
    loads = pass_loads(pe_entries, pointers, arch)
    cycles = stream_time(compute, [load_cycles(float(b), arch) for b in loads], arch.dram_streaming)
    lim = 2 ** (arch.act_bits - 1)
    y = np.clip(y, -lim, lim - 1)
    return LayerRun(cycles=cycles, passes=totals["passes"], row_batches=len(plan.batches), col_tiles=n_tiles,
                    busy=busy, compute_cycles=totals["compute"], broadcast_stalls=totals["stalls"],
                    starved_cycles=totals["starved"],
                    entries=totals["entries"], padding=totals["padding"], real_macs=totals["real"],
                    nonzero_acts=totals["nz"], spmat_reads=totals["spmat"], ptr_reads=totals["ptr"],
                    act_scans=totals["scans"], spmat_bytes=totals["spmat_bytes"], ptr_bytes=totals["ptr_bytes"],
                    output=y, dram_bytes=float(loads.sum()), dram_stall_cycles=cycles - totals["compute"])


def reference_output(layer: SparseLayer, acts: np.ndarray, act_bits: int = 16) -> np.ndarray:
    """y from the dense decoded matrix with numpy (independent of the CSC path)."""
    w = layer.dense_int()
    y = ((w * np.asarray(acts, dtype=np.int64)[None, :]) >> layer.frac_bits).sum(axis=1)
    lim = 2 ** (act_bits - 1)
    clipped: NDArray[np.int64] = np.clip(y, -lim, lim - 1)
    return clipped

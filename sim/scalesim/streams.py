"""SCALE-Sim's demand streams without its per-cycle demand matrices.

SCALE-Sim builds, per fold, matrices with one row per cycle and one column per array
row or column, mostly ``-1``, and its memory system then reads them row by row, left to
right. Every such matrix is one of two shapes: a block skewed by one cycle per column
(its entries come out anti-diagonal by anti-diagonal) or a block flipped upside down
(rows in reverse order, one per cycle). So the service order of the demanded addresses,
and how many land in each cycle, follow from index arithmetic alone:

* an im2col ifmap address is separable, ``base(output pixel) + offset(window position)``,
  so no ``M x RSC`` matrix is built;
* the anti-diagonal order of a ``T x w`` block depends on ``(T, w)`` only and is shared
  by all folds of that shape;
* ``ws`` streams the same ifmap columns again for every filter fold, so those arrays are
  built once.

:func:`streams` gives what the reports need: the ifmap and filter addresses in service
order (the read buffers consume them), and demands per cycle for all three operands (the
write buffer and the start/stop cycles need only those). ``sim.scalesim.matrices.reference_streams``
derives the same from the materialised matrices; the tests hold the two equal. :class:`RowMap`
answers which demand row a stream position falls in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, TypeAlias, overload

import numpy as np
from numpy.typing import NDArray

from .config import ScaleSimConfig
from .topology import Layer

__all__ = ["ADDR", "Addresses", "Counts", "Index", "Streams", "RowMap", "diagonal_order", "streams"]

ADDR = np.int32   # addresses below 2**31, as SCALE-Sim's own '>i4' matrices
Addresses: TypeAlias = NDArray[np.int32]
Counts: TypeAlias = NDArray[np.int64]
Index: TypeAlias = NDArray[np.int64]


@dataclass
class Streams:
    """Demands of one layer: ``addrs`` for ifmap and filter (service order, no ``-1``),
    ``counts[q][row]`` demands of operand q (ifmap, filter, ofmap) in each demand row."""

    n_rows: int
    addrs: list[Addresses]
    counts: list[Counts]
    ifmap_reads: int = 0
    filter_reads: int = 0
    ofmap_writes: int = 0
    mapping_eff: list[float] = field(default_factory=list)
    compute_util: list[float] = field(default_factory=list)


class RowMap:
    """Which demand row each position of a stream falls in, from the demands per row."""

    def __init__(self, counts: Counts):
        self.counts = counts
        self.cum = np.cumsum(counts)
        self.size = int(self.cum[-1]) if counts.size else 0

    @overload
    def row_of(self, pos: int) -> np.intp: ...

    @overload
    def row_of(self, pos: Index) -> NDArray[np.intp]: ...

    def row_of(self, pos: int | Index) -> np.intp | NDArray[np.intp]:
        """Row of stream position(s) ``pos``."""
        return np.searchsorted(self.cum, pos, "right")

    def before(self, row: int) -> int:
        """Stream positions in rows before ``row``."""
        row = min(row, self.counts.size)
        return int(self.cum[row - 1]) if row > 0 else 0

    def first_row(self) -> int:
        return int(self.row_of(0))

    def last_row(self) -> int:
        return int(self.row_of(self.size - 1))


@lru_cache(maxsize=64)
def diagonal_order(T: int, w: int) -> tuple[Index, Index, Index]:
    """Entries ``(i, c)`` of a ``T x w`` block in the order a one-cycle-per-column skew
    serves them: by anti-diagonal ``i + c``, then by column. Returns ``i``, ``c`` and the
    number of entries on each of the ``T + w - 1`` diagonals (read-only, shared)."""
    d = np.arange(T + w - 1)
    lo = np.maximum(0, d - T + 1)
    n = np.minimum(d, w - 1) - lo + 1
    starts = np.cumsum(n) - n
    c = np.arange(T * w, dtype=np.int64) - np.repeat(starts - lo, n)
    i = np.repeat(d, n) - c
    out = (i.astype(np.int64), c, n.astype(np.int64))
    for a in out:
        a.flags.writeable = False
    return out


class _Im2col:
    """The ifmap operand matrix ``ifm[m, j]`` (output pixel m, window position j) as
    ``base[m] + offset[j]``, ``-1`` where SCALE-Sim's output size reads past the ifmap."""

    def __init__(self, L: Layer, offset: int):
        E, F = L.ofmap
        m = np.arange(E * F)
        orow, ocol = np.divmod(m, F)
        self.irow, self.icol = orow * L.sh, ocol * L.sw
        self.base = ((self.irow * L.W + self.icol) * L.C + offset).astype(ADDR)
        j = np.arange(L.R * L.S * L.C)
        self.crow, k = np.divmod(j, L.S * L.C)
        self.ccol, cch = np.divmod(k, L.C)
        self.off = ((self.crow * L.W + self.ccol) * L.C + cch).astype(ADDR)
        self.H, self.W = L.H, L.W
        self.all_valid = (L.H - L.R) % L.sh == 0 and (L.W - L.S) % L.sw == 0

    def gather(self, m: NDArray[np.integer], j: NDArray[np.integer]) -> Addresses:
        a: Addresses = self.base[m] + self.off[j]          # int32 wraps as SCALE-Sim's int32 cast does
        if not self.all_valid:
            bad = (self.crow[j] + self.irow[m] >= self.H) | (self.ccol[j] + self.icol[m] >= self.W)
            a[bad] = -1
        return a


def _drop_invalid(a: Addresses, rows: Index, counts: Counts) -> Addresses:
    """Remove ``-1`` entries from a stream and from the per-row counts (``rows``: the
    local row of each entry)."""
    bad: NDArray[np.bool] = a == -1
    if not bad.any():
        return a
    np.subtract.at(counts, rows[bad], 1)
    return a[~bad]


def _diag_block(values: Callable[[Index, Index], Addresses] | None, T: int, w: int, counts: Counts,
                row0: int) -> Addresses | None:
    """A skewed ``T x w`` block whose entry (i, c) is demanded in row ``row0 + i + c``:
    adds its counts, returns its addresses in service order (``values(i, c)``, or None
    when only counts are needed)."""
    i, c, n = diagonal_order(T, w)
    if values is None:
        counts[row0:row0 + n.size] += n
        return None
    a = values(i, c)
    local = n.copy()
    if (a == -1).any():
        rows = i + c
        a = _drop_invalid(a, rows, local)
    counts[row0:row0 + n.size] += local
    return a


def streams(L: Layer, cfg: ScaleSimConfig) -> Streams:
    """SCALE-Sim's demands for layer ``L`` under ``cfg`` (``systolic_compute_{ws,os,is}``
    with sparsity off), fold by fold, without its demand matrices."""
    R, C, df = cfg.rows, cfg.cols, cfg.dataflow
    E, F = L.ofmap
    M, win, K = E * F, L.R * L.S * L.C, L.K
    ifm = _Im2col(L, cfg.ifmap_offset)
    foff = cfg.filter_offset
    if df == "ws":
        Sr, Sc, T = win, K, M
    elif df == "os":
        Sr, Sc, T = M, K, win
    else:
        Sr, Sc, T = win, M, K
    fr_n, fc_n = math.ceil(Sr / R), math.ceil(Sc / C)
    Lf = T + R + C - 2 if df == "os" else 2 * R + C + T - 2
    n_rows = fr_n * fc_n * Lf
    cnt = [np.zeros(n_rows, dtype=np.int64) for _ in range(3)]
    out = Streams(n_rows, [], cnt)
    I: list[Addresses] = []
    Fl: list[Addresses] = []
    ws_ifmap: dict[int, tuple[Addresses, Counts]] = {}    # fr -> (addresses, counts of one fold)
    fold = 0
    for fc in range(fc_n):
        c0, c1 = fc * C, min(fc * C + C, Sc)
        wc = c1 - c0
        for fr in range(fr_n):
            r0, r1 = fr * R, min(fr * R + R, Sr)
            w = r1 - r0
            base = fold * Lf
            used = w * wc
            out.mapping_eff.append(used / (R * C))
            if df == "ws":
                if fr not in ws_ifmap:
                    local = np.zeros(Lf, dtype=np.int64)
                    a = _diag_block(lambda i, c: ifm.gather(i, r0 + c), T, w, local, R)
                    assert a is not None
                    ws_ifmap[fr] = (a, local)
                a, local = ws_ifmap[fr]
                I.append(a)
                cnt[0][base:base + Lf] += local
                out.ifmap_reads += T * w
                # filter block flipped: row p holds filter row R-1-p, one cycle each
                Fl.append((np.arange(c0, c1)[None, :] * win + np.arange(r1 - 1, r0 - 1, -1)[:, None] + foff)
                          .astype(ADDR).ravel())
                cnt[1][base + R - w:base + R] += wc
                out.filter_reads += used
                _diag_block(None, T, wc, cnt[2], base + 2 * R - 1)
                out.ofmap_writes += T * wc
                out.compute_util.append(used * T / (R * C * (2 * R + 2 * C + T - 3)))
            elif df == "os":
                a = _diag_block(lambda i, c: ifm.gather(r0 + c, i), T, w, cnt[0], base)
                assert a is not None
                I.append(a)
                out.ifmap_reads += T * w
                a = _diag_block(lambda i, c: ((c0 + c) * win + i + foff).astype(ADDR), T, wc, cnt[1], base)
                assert a is not None
                Fl.append(a)
                out.filter_reads += T * wc
                _diag_block(None, w, wc, cnt[2], base + T - 1 + R - w)
                out.ofmap_writes += used + R + C          # SCALE-Sim adds rows + cols per fold
                out.compute_util.append(used * T / (R * C * (T + R + C - 2)))
            else:  # is: the ifmap block flipped, row p holds window position r0 + R-1-p
                rr = np.arange(r1 - 1, r0 - 1, -1)
                m = np.arange(c0, c1)
                a = ifm.gather(np.broadcast_to(m[None, :], (w, wc)).ravel(),
                               np.broadcast_to(rr[:, None], (w, wc)).ravel())
                local = np.full(w, wc, dtype=np.int64)
                a = _drop_invalid(a, np.repeat(np.arange(w), wc), local)
                cnt[0][base + R - w:base + R] += local
                I.append(a)
                out.ifmap_reads += used
                a = _diag_block(lambda i, c: (i * win + r0 + c + foff).astype(ADDR), T, w, cnt[1], base + R)
                assert a is not None
                Fl.append(a)
                out.filter_reads += T * w
                _diag_block(None, T, wc, cnt[2], base + 2 * R - 1)
                out.ofmap_writes += T * wc
                out.compute_util.append(used * T / (R * C * (2 * R + 2 * C + T - 3)))
            fold += 1
    out.addrs = [np.concatenate(I), np.concatenate(Fl)]
    return out

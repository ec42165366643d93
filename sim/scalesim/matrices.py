"""SCALE-Sim's materialised matrices: the operand matrices of addresses, the per-cycle demand
matrices of each dataflow (``systolic_compute_{ws,os,is}``) and the USER-mode prefetch
matrices. :func:`reference_streams` reads the demand matrices as SCALE-Sim's memory system
does, the slow reference for :func:`sim.scalesim.streams.streams`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from numpy.typing import NDArray

from .config import ScaleSimConfig
from .streams import ADDR, Addresses, Streams
from .topology import Layer

__all__ = ["Demand", "operand_matrices", "demand_matrices", "prefetch_sequences", "reference_streams"]


def operand_matrices(L: Layer, cfg: ScaleSimConfig) -> tuple[Addresses, Addresses, Addresses]:
    """SCALE-Sim's operand matrices of addresses: ifmap ``M x RSC`` (im2col, -1 past the
    ifmap), filter ``RSC x K``, ofmap ``M x K``."""
    E, F = L.ofmap
    M, win = E * F, L.R * L.S * L.C
    i = np.arange(M)[:, None]
    j = np.arange(win)[None, :]
    orow, ocol = np.divmod(i, F)
    irow, icol = orow * L.sh, ocol * L.sw
    crow, k = np.divmod(j, L.S * L.C)
    ccol, cch = np.divmod(k, L.C)
    valid = (crow + irow < L.H) & (ccol + icol < L.W)
    addr = ((crow * L.W + ccol) * L.C + cch) + (irow * L.W + icol) * L.C + cfg.ifmap_offset
    ifmap = np.where(valid, addr, -1).astype(ADDR)
    filt = (np.arange(L.K)[None, :] * win + np.arange(win)[:, None] + cfg.filter_offset).astype(ADDR)
    ofmap = (L.K * np.arange(M)[:, None] + np.arange(L.K)[None, :] + cfg.ofmap_offset).astype(ADDR)
    return ifmap, filt, ofmap


def _pad(a: Addresses, rows: int, cols: int) -> Addresses:
    out = np.full((rows, cols), -1, dtype=ADDR)
    out[:a.shape[0], :a.shape[1]] = a
    return out


def _gap(rows: int, cols: int) -> Addresses:
    return np.full((rows, cols), -1, dtype=ADDR)


def _skew(a: Addresses) -> Addresses:
    """Column c delayed by c cycles: ``out[t, c] = a[t - c, c]`` (-1 outside), one strided copy."""
    rows, cols = a.shape
    z = np.full((rows + 2 * (cols - 1), cols), -1, dtype=ADDR)
    z[cols - 1:cols - 1 + rows] = a
    rs, cs = z.strides
    view: Addresses = np.lib.stride_tricks.as_strided(z[cols - 1:], shape=(rows + cols - 1, cols),
                                                      strides=(rs, cs - rs))
    return view.copy()


@dataclass
class Demand:
    ifmap: Addresses
    filter: Addresses
    ofmap: Addresses
    ifmap_reads: int = 0
    filter_reads: int = 0
    ofmap_writes: int = 0
    mapping_eff: list[float] = field(default_factory=list)
    compute_util: list[float] = field(default_factory=list)


def _fold_bounds(Sr: int, Sc: int, R: int, C: int) -> Iterator[tuple[int, int, int, int]]:
    """``(c0, c1, r0, r1)`` of every fold of an ``Sr x Sc`` mapping on ``R x C``: column folds
    outer, row folds inner, as SCALE-Sim runs them."""
    for fc in range(math.ceil(Sc / C)):
        c0, c1 = fc * C, min(fc * C + C, Sc)
        for fr in range(math.ceil(Sr / R)):
            yield c0, c1, fr * R, min(fr * R + R, Sr)


def demand_matrices(ifm: Addresses, flt: Addresses, ofm: Addresses, R: int, C: int, df: str) -> Demand:
    """SCALE-Sim's demand matrices (``systolic_compute_{ws,os,is}``), fold by fold."""
    I: list[Addresses] = []
    Fm: list[Addresses] = []
    O: list[Addresses] = []
    empty = np.zeros((0, 0), dtype=ADDR)
    d = Demand(empty, empty, empty)
    if df == "ws":
        Sr, Sc, T = ifm.shape[1], flt.shape[1], ifm.shape[0]
        for c0, c1, r0, r1 in _fold_bounds(Sr, Sc, R, C):
            blk = ifm[:, r0:r1]
            d.ifmap_reads += blk.size
            I.append(_skew(np.concatenate([_gap(R, R), _pad(blk, T, R), _gap(C - 1, R)])))
            fb = flt[r0:r1, c0:c1]
            d.filter_reads += fb.size
            fb = np.flip(_pad(fb, R, C), 0)
            sparse = int((fb == -1).sum())
            fb = np.concatenate([fb, _gap(R + C + T - 2, C)])
            Fm.append(fb)
            cycles = fb.shape[0] + fb.shape[1] - 1
            used = (r1 - r0) * (c1 - c0)
            d.mapping_eff.append((R * C - sparse) / (R * C))
            d.compute_util.append(used * T / (R * C * cycles))
            ob = ofm[:, c0:c1]
            d.ofmap_writes += ob.size
            O.append(_skew(np.concatenate([_gap(2 * R - 1, C), _pad(ob, T, C)])))
    elif df == "os":
        Sr, Sc, T = ifm.shape[0], flt.shape[1], ifm.shape[1]
        ifm_t = ifm.T
        for c0, c1, r0, r1 in _fold_bounds(Sr, Sc, R, C):
            blk = ifm_t[:, r0:r1]
            d.ifmap_reads += blk.size
            I.append(_skew(np.concatenate([_pad(blk, T, R), _gap(C - 1, R)])))
            fb = flt[:, c0:c1]
            d.filter_reads += fb.size
            Fm.append(_skew(np.concatenate([_pad(fb, T, C), _gap(R - 1, C)])))
            ob = ofm[r0:r1, c0:c1]
            d.ofmap_writes += ob.size + R + C          # SCALE-Sim adds rows + cols per fold
            ob = np.concatenate([_gap(T - 1, C), np.flip(_pad(ob, R, C), 0)])
            used = (r1 - r0) * (c1 - c0)
            cycles = ob.shape[0] + ob.shape[1] - 1
            d.mapping_eff.append(used / (R * C))
            d.compute_util.append(used * T / (R * C * cycles))
            O.append(_skew(ob))
    else:  # is
        Sr, Sc, T = ifm.shape[1], ifm.shape[0], flt.shape[1]
        ifm_t = ifm.T
        for c0, c1, r0, r1 in _fold_bounds(Sr, Sc, R, C):
            blk = ifm_t[r0:r1, c0:c1]
            d.ifmap_reads += blk.size
            blk = np.concatenate([np.flip(_pad(blk, R, C), 0), _gap(R + C + T - 2, C)])
            used = (r1 - r0) * (c1 - c0)
            cycles = blk.shape[0] + blk.shape[1] - 1
            d.mapping_eff.append(used / (R * C))
            d.compute_util.append(used * T / (R * C * cycles))
            I.append(blk)
            fb = flt[r0:r1, :].T
            d.filter_reads += fb.size
            Fm.append(_skew(np.concatenate([_gap(R, R), _pad(fb, T, R), _gap(C - 1, R)])))
            ob = ofm[c0:c1, :].T
            d.ofmap_writes += ob.size
            O.append(_skew(np.concatenate([_gap(2 * R - 1, C), _pad(ob, T, C)])))
    d.ifmap, d.filter, d.ofmap = np.concatenate(I), np.concatenate(Fm), np.concatenate(O)
    return d


def _diag_flatten(m: Addresses) -> Addresses:
    """SCALE-Sim's anti-diagonal order: diagonal by diagonal, bottom row first."""
    M, N = m.shape
    r, c = np.meshgrid(np.arange(M), np.arange(N), indexing="ij")
    order = np.lexsort(((M - 1 - r).ravel(), (r + c).ravel()))
    return m.ravel()[order]


def prefetch_sequences(ifm: Addresses, flt: Addresses, R: int, C: int, df: str) -> tuple[Addresses, Addresses]:
    """SCALE-Sim's ifmap and filter prefetch matrices, flattened in fetch order (with -1s)."""
    if df == "ws":
        T, Sr, Sc = ifm.shape[0], ifm.shape[1], flt.shape[1]
        pi = np.concatenate([_pad(ifm[:, f * R:min(f * R + R, Sr)], T, R) for f in range(math.ceil(Sr / R))])
        pf = np.concatenate([_pad(flt[:, f * C:min(f * C + C, Sc)], flt.shape[0], C) for f in range(math.ceil(Sc / C))])
        return _diag_flatten(pi), pf.ravel()
    if df == "os":
        it = ifm.T
        T, Sr, Sc = it.shape[0], ifm.shape[0], flt.shape[1]
        pi = np.concatenate([_pad(it[:, f * R:min(f * R + R, Sr)], T, R) for f in range(math.ceil(Sr / R))])
        pf = np.concatenate([_pad(flt[:, f * C:min(f * C + C, Sc)], T, C) for f in range(math.ceil(Sc / C))])
        return _diag_flatten(pi), _diag_flatten(pf)
    it = ifm.T
    Sr, Sc, T = ifm.shape[1], ifm.shape[0], flt.shape[1]
    pi = np.concatenate([_pad(it[:, f * C:min(f * C + C, Sc)], Sr, C) for f in range(math.ceil(Sc / C))])
    pf = np.concatenate([_pad(flt[f * R:min(f * R + R, Sr), :].T, T, R) for f in range(math.ceil(Sr / R))])
    return pi.ravel(), _diag_flatten(pf)


def reference_streams(L: Layer, cfg: ScaleSimConfig) -> Streams:
    """:class:`Streams` read off the materialised demand matrices, as SCALE-Sim's memory
    system reads them (row by row, left to right): the reference for :func:`streams`."""
    ifm, flt, ofm = operand_matrices(L, cfg)
    d = demand_matrices(ifm, flt, ofm, cfg.rows, cfg.cols, cfg.dataflow)
    masks: list[NDArray[np.bool]] = [m != -1 for m in (d.ifmap, d.filter, d.ofmap)]
    return Streams(d.ofmap.shape[0], [d.ifmap[masks[0]], d.filter[masks[1]]],
                   [m.sum(axis=1).astype(np.int64) for m in masks], d.ifmap_reads, d.filter_reads,
                   d.ofmap_writes, d.mapping_eff, d.compute_util)

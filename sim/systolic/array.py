"""Register-level model of an R x C systolic array: what every PE holds each cycle.

It computes real values (int8 x int8 -> int32 equals numpy's matmul exactly) and records,
per cycle, the SRAM address each array row/column reads or writes (-1: none), for each
fold of a GEMM. The fold timing it exhibits is what ``mapping.Folds.latency`` states.

* ``ws``/``is``: the stationary tile is loaded, then the streamed operand enters row i
  skewed by i cycles; operands move one PE right per cycle, partial sums one PE down;
  results leave the bottom of column j, skewed by j.
* ``os``: A enters row i skewed by i, B enters column j skewed by j; each PE accumulates
  its output; results then drain one row per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from .arch import SystolicArch

__all__ = ["FoldTrace", "ArrayRun", "FoldSignals", "stationary_fold", "run_gemm"]


@dataclass
class FoldTrace:
    latency: int                       # cycles from the first input to the last output out
    reads: np.ndarray                  # streamed-operand (os: A) SRAM addresses (cycles x R)
    writes: np.ndarray                 # output addresses written (cycles x C)
    macs: int = 0
    reads2: np.ndarray | None = None   # the other operand: the stationary tile as it shifts
                                       # in (R cycles x C, before the stream), or os's B (cycles x C)


@dataclass
class ArrayRun:
    output: np.ndarray
    folds: list[FoldTrace] = field(default_factory=list)

    @property
    def streamed_reads(self) -> int:
        return int(sum((f.reads >= 0).sum() for f in self.folds))

    @property
    def output_writes(self) -> int:
        return int(sum((f.writes >= 0).sum() for f in self.folds))

    @property
    def other_reads(self) -> int:
        return int(sum((f.reads2 >= 0).sum() for f in self.folds if f.reads2 is not None))


class FoldSignals(TypedDict):
    """One stationary fold, cycle by cycle (one row per cycle)."""

    a_in: NDArray[np.int64]      # what enters each array row (cycles x R)
    bottom: NDArray[np.int64]    # what leaves the bottom of each column (cycles x C)
    reads: NDArray[np.int64]     # the streamed SRAM address each row reads, -1 for none (cycles x R)


def stationary_fold(Xf: np.ndarray, W: np.ndarray, k0: int = 0, Kd: int | None = None) -> FoldSignals:
    """One fold with a stationary R x C tile ``W`` (zero-padded) and streamed rows ``Xf``
    (T x kt): what enters each array row and what leaves the bottom of each column, every
    cycle (the per-cycle state an RTL model is compared against)."""
    R, C = W.shape
    T, kt = Xf.shape
    Kd = kt if Kd is None else Kd
    rows = np.arange(R)
    a = np.zeros((R, C), dtype=np.int64)
    p = np.zeros((R, C), dtype=np.int64)
    a_in_seq, bottom, reads = [], [], []
    for tau in range(T + R + C - 2):
        m_in = tau - rows
        valid = (m_in >= 0) & (m_in < T) & (rows < kt)
        a_in = np.zeros(R, dtype=np.int64)
        a_in[valid] = Xf[m_in[valid], rows[valid]]
        a = np.concatenate([a_in[:, None], a[:, :-1]], axis=1)      # one PE right
        p = np.concatenate([np.zeros((1, C), dtype=np.int64), p[:-1]], axis=0) + a * W  # one PE down
        a_in_seq.append(a_in)
        bottom.append(p[R - 1].copy())
        reads.append(np.where(valid, m_in * Kd + k0 + rows, -1))
    return {"a_in": np.array(a_in_seq).reshape(-1, R), "bottom": np.array(bottom).reshape(-1, C),
            "reads": np.array(reads).reshape(-1, R)}


def _stationary(S: np.ndarray, X: np.ndarray, R: int, C: int, trace: bool) -> ArrayRun:
    """out = X @ S with S (Kd x Xd) stationary in tiles, X (T x Kd) streamed."""
    T, Kd = X.shape
    Xd = S.shape[1]
    out = np.zeros((T, Xd), dtype=np.int64)
    run = ArrayRun(out)
    cols = np.arange(C)
    for x0 in range(0, Xd, C):
        for k0 in range(0, Kd, R):
            kt, xt = min(R, Kd - k0), min(C, Xd - x0)
            W = np.zeros((R, C), dtype=np.int64)
            W[:kt, :xt] = S[k0:k0 + kt, x0:x0 + xt]
            f = stationary_fold(X[:, k0:k0 + kt], W, k0, Kd)
            writes = []
            last = -1
            for tau, row in enumerate(f["bottom"]):
                m_out = tau - (R - 1) - cols
                ok = (m_out >= 0) & (m_out < T) & (cols < xt)
                out[m_out[ok], x0 + cols[ok]] += row[ok]
                if ok.any():
                    last = tau
                writes.append(np.where(ok, m_out * Xd + x0 + cols, -1))
            reads = f["reads"] if trace else np.zeros((0, R), dtype=np.int64)
            # shift-in: the tile's bottom row is read first, row i at preload cycle R - 1 - i
            rr = np.arange(R)[::-1][:, None]
            shift_in = np.where((rr < kt) & (cols[None, :] < xt), (k0 + rr) * Xd + x0 + cols[None, :], -1)
            run.folds.append(FoldTrace(last + 1, reads, np.array(writes).reshape(-1, C) if trace else
                                       np.zeros((0, C), dtype=np.int64), T * kt * xt, shift_in))
    return run


def _output_stationary(A: np.ndarray, B: np.ndarray, R: int, C: int, trace: bool) -> ArrayRun:
    M, K = A.shape
    N = B.shape[1]
    out = np.zeros((M, N), dtype=np.int64)
    run = ArrayRun(out)
    rows, cols = np.arange(R), np.arange(C)
    for m0 in range(0, M, R):
        for n0 in range(0, N, C):
            mt, nt = min(R, M - m0), min(C, N - n0)
            a = np.zeros((R, C), dtype=np.int64)
            b = np.zeros((R, C), dtype=np.int64)
            acc = np.zeros((R, C), dtype=np.int64)
            reads, writes, reads_b = [], [], []
            last_mac = -1
            macs = 0
            for tau in range(K + R + C - 2):
                ka, kb = tau - rows, tau - cols
                va = (ka >= 0) & (ka < K) & (rows < mt)
                vb = (kb >= 0) & (kb < K) & (cols < nt)
                a_in = np.zeros(R, dtype=np.int64)
                b_in = np.zeros(C, dtype=np.int64)
                a_in[va] = A[m0 + rows[va], ka[va]]
                b_in[vb] = B[kb[vb], n0 + cols[vb]]
                a = np.concatenate([a_in[:, None], a[:, :-1]], axis=1)
                b = np.concatenate([b_in[None, :], b[:-1]], axis=0)
                acc += a * b
                kk = tau - rows[:, None] - cols[None, :]
                live = (kk >= 0) & (kk < K) & (rows[:, None] < mt) & (cols[None, :] < nt)
                if live.any():
                    last_mac = tau
                    macs += int(live.sum())
                if trace:
                    reads.append(np.where(va, (m0 + rows) * K + ka, -1))
                    reads_b.append(np.where(vb, kb * N + n0 + cols, -1))
                    writes.append(np.full(C, -1))
            out[m0:m0 + mt, n0:n0 + nt] = acc[:mt, :nt]
            # drain: one row of results per cycle
            for r in range(mt):
                if trace:
                    reads.append(np.full(R, -1))
                    reads_b.append(np.full(C, -1))
                    writes.append(np.where(cols < nt, (m0 + r) * N + n0 + cols, -1))
            run.folds.append(FoldTrace(last_mac + 1 + mt, np.array(reads).reshape(-1, R),
                                       np.array(writes).reshape(-1, C), macs, np.array(reads_b).reshape(-1, C)))
    return run


def run_gemm(A: np.ndarray, B: np.ndarray, arch: SystolicArch, trace: bool = True) -> ArrayRun:
    """Run ``A @ B`` through the array with ``arch``'s shape and dataflow."""
    A = np.asarray(A, dtype=np.int64)
    B = np.asarray(B, dtype=np.int64)
    R, C = arch.rows, arch.cols
    if arch.dataflow == "ws":
        return _stationary(B, A, R, C, trace)
    if arch.dataflow == "is":
        run = _stationary(A.T, B.T, R, C, trace)
        run.output = run.output.T
        return run
    return _output_stationary(A, B, R, C, trace)

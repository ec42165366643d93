"""The real input a convolution's im2col tiles read, for DRAM traffic.

The array is fed the im2col view ``A[M, K]`` of a convolution (``M = N*P*Q`` output
pixels, ``K = C*R*S`` window positions, ``k = (c*R + r)*S + s`` as in PyTorch's weight
layout), but only the input tensor crosses the DRAM channel: the expansion happens on
chip, as an accelerator's line buffer or address generator does (Eyeriss, the TPU's
unified buffer). A tile of ``A`` (output pixels ``m0..m1-1`` by window positions
``k0..k1-1``) needs the channels its window positions name, over the input rows its
output rows read (the halo included) and the input columns any output column reads.
Input rows or columns that no window touches (a 1x1 stride-2 conv skips three
quarters of its input) are never fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConvGeometry:
    """One group's convolution: ``N`` images of ``C x H x W`` to ``P x Q`` through ``R x S``."""

    N: int
    C: int
    H: int
    W: int
    R: int
    S: int
    P: int
    Q: int
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dil_h: int = 1
    dil_w: int = 1

    @classmethod
    def of(cls, dims: Mapping[str, int]) -> "ConvGeometry":
        """From a trace conv op's dims (per group)."""
        g = dims.get("groups", 1)
        return cls(dims["N"], dims["C"] // g, dims["H"], dims["W"], dims["R"], dims["S"], dims["P"], dims["Q"],
                   dims.get("stride_h", 1), dims.get("stride_w", 1), dims.get("pad_h", 0), dims.get("pad_w", 0),
                   dims.get("dil_h", 1), dims.get("dil_w", 1))

    def _touched(self, lo: int, hi: int, stride: int, pad: int, taps: int, dil: int, size: int) -> np.ndarray:
        """Input indices read by output indices lo..hi (inclusive) along one axis."""
        idx = (np.arange(lo, hi + 1)[:, None] * stride - pad + np.arange(taps)[None, :] * dil).ravel()
        return np.unique(idx[(idx >= 0) & (idx < size)])

    @property
    def cols_read(self) -> int:
        """Input columns some output column reads."""
        return int(self._touched(0, self.Q - 1, self.stride_w, self.pad_w, self.S, self.dil_w, self.W).size)

    def rows_read(self, p_lo: int, p_hi: int) -> np.ndarray:
        """Input rows output rows p_lo..p_hi read (sorted)."""
        return self._touched(p_lo, p_hi, self.stride_h, self.pad_h, self.R, self.dil_h, self.H)

    @property
    def elements_read(self) -> int:
        """Input elements the whole convolution reads at least once."""
        return self.N * self.C * int(self.rows_read(0, self.P - 1).size) * self.cols_read

    def channels(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """Channels the window positions k0..k1-1 name (per tile)."""
        rs = self.R * self.S
        return (np.asarray(k1) - 1) // rs - np.asarray(k0) // rs + 1

    def new_channels(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """Channels of each tile of consecutive window positions that the tile before it
        (in the same list) did not already name."""
        rs = self.R * self.S
        first, last = np.asarray(k0) // rs, (np.asarray(k1) - 1) // rs
        prev_last = np.concatenate([[-1], last[:-1]])
        return last - np.maximum(first, prev_last + 1) + 1

    def _cols(self, q_lo: int, q_hi: int) -> np.ndarray:
        mask = np.zeros(self.W, dtype=bool)
        mask[self._touched(q_lo, q_hi, self.stride_w, self.pad_w, self.S, self.dil_w, self.W)] = True
        return mask

    def _region(self, s: int, e: int) -> int:
        """Input elements of one channel that output pixels s..e-1 of one image read: the
        union of the windows of a partial first row, the whole rows between and a partial
        last row."""
        (pa, qa), (pb, qb) = divmod(s, self.Q), divmod(e - 1, self.Q)
        if pa == pb:
            return int(self.rows_read(pa, pa).size) * int(self._cols(qa, qb).sum())
        rects = [(self.rows_read(pa, pa), self._cols(qa, self.Q - 1)), (self.rows_read(pb, pb), self._cols(0, qb))]
        if pb > pa + 1:
            rects.append((self.rows_read(pa + 1, pb - 1), self._cols(0, self.Q - 1)))
        rows = np.unique(np.concatenate([r for r, _ in rects]))
        covered = np.zeros((rows.size, self.W), dtype=bool)
        for r, c in rects:
            covered |= np.isin(rows, r)[:, None] & c[None, :]
        return int(covered.sum())

    def row_elements(self, m0: np.ndarray, m1: np.ndarray, new: bool = False) -> np.ndarray:
        """Input elements of one channel that output pixels m0..m1-1 read, per tile. With
        ``new``, only those the tiles before it (in the same list) did not read, as when
        everything read so far stays on chip: counted in whole input rows (a tile's last
        row is finished by the next), so the tiles together read each element once."""
        PQ = self.P * self.Q
        out = np.zeros(len(m0), dtype=np.int64)
        image, fetched = -1, np.zeros(self.H, dtype=bool)     # input rows already read, in `image`
        for i, (a, b) in enumerate(zip(np.asarray(m0).tolist(), np.asarray(m1).tolist())):
            total = 0
            for n in range(a // PQ, (b - 1) // PQ + 1):
                s, e = max(a - n * PQ, 0), min(b - n * PQ, PQ)
                if not new:
                    total += self._region(s, e)
                    continue
                if n != image:
                    image, fetched = n, np.zeros(self.H, dtype=bool)
                r = self.rows_read(s // self.Q, (e - 1) // self.Q)
                total += int((~fetched[r]).sum()) * self.cols_read
                fetched[r] = True
            out[i] = total
        return out

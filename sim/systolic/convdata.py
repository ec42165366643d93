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
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = ["Ints", "ConvGeometry"]

Ints: TypeAlias = NDArray[np.int64]
# per output index along one axis: first and last input index of its window (unclipped), the
# input size, and prefix sums of the windows' lengths clipped to the input
_Axis: TypeAlias = tuple[Ints, Ints, int, Ints]


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

    def channels(self, k0: np.ndarray, k1: np.ndarray) -> Ints:
        """Channels the window positions k0..k1-1 name (per tile)."""
        rs = self.R * self.S
        named: Ints = (np.asarray(k1) - 1) // rs - np.asarray(k0) // rs + 1
        return named

    def new_channels(self, k0: np.ndarray, k1: np.ndarray) -> Ints:
        """Channels of each tile of consecutive window positions that the tile before it
        (in the same list) did not already name."""
        rs = self.R * self.S
        first, last = np.asarray(k0) // rs, (np.asarray(k1) - 1) // rs
        prev_last = np.concatenate([[-1], last[:-1]])
        new: Ints = last - np.maximum(first, prev_last + 1) + 1
        return new

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

    # ---- a vectorised form for undilated convs (every tile at once) ------------------------
    def _axis(self, n_out: int, stride: int, pad: int, taps: int, size: int) -> _Axis:
        """Per output index: the first and last input index of its window (unclipped), the
        input size, and prefix sums of the windows' lengths clipped to the input."""
        i = np.arange(n_out)
        lo, hi = i * stride - pad, i * stride - pad + taps - 1
        length = np.maximum(0, np.minimum(hi, size - 1) - np.maximum(lo, 0) + 1)
        return lo, hi, size, np.concatenate([[0], np.cumsum(length)])

    def _span(self, ax: _Axis, a: Ints, b: Ints, contiguous: bool) -> tuple[Ints, Ints, Ints]:
        """Inputs read by output indices a..b (arrays, a <= b) along one axis: a count, and
        the first and last input their windows reach (for a contiguous axis, overlapping or
        abutting windows, the interval read; otherwise unused)."""
        lo, hi, size, cum = ax
        first, last = np.maximum(lo[a], 0), np.minimum(hi[b], size - 1)
        if contiguous:
            return np.maximum(0, last - first + 1), first, last
        return cum[b + 1] - cum[a], first, last        # windows do not overlap: their lengths add

    def _fast(self) -> bool:
        return self.dil_h == 1 and self.dil_w == 1 and (self.stride_w <= self.S or self.stride_h >= self.R)

    def _regions_fast(self, s: Ints, e: Ints) -> Ints:
        """``_region`` for many pixel ranges of one image each (see ``_fast``): the union of
        the three rectangles by inclusion and exclusion; rows of different output rows do
        not overlap when the stride is at least the kernel, so there the areas add."""
        rows_c, cols_c = self.stride_h < self.R, self.stride_w <= self.S
        ra = self._axis(self.P, self.stride_h, self.pad_h, self.R, self.H)
        ca = self._axis(self.Q, self.stride_w, self.pad_w, self.S, self.W)
        pa, qa = np.divmod(s, self.Q)
        pb, qb = np.divmod(e - 1, self.Q)
        same = pa == pb
        zero, last = np.zeros_like(pa), np.full_like(pa, self.Q - 1)
        # A: row pa, columns qa..(qb or Q-1); C: row pb, columns 0..qb; B: rows pa+1..pb-1, all
        nA_r, A_r0, A_r1 = self._span(ra, pa, pa, rows_c)
        nA_c, A_c0, A_c1 = self._span(ca, qa, np.where(same, qb, last), cols_c)
        nC_r, C_r0, C_r1 = self._span(ra, pb, pb, rows_c)
        nC_c, C_c0, C_c1 = self._span(ca, zero, qb, cols_c)
        mid = pb > pa + 1
        b0, b1 = np.where(mid, pa + 1, 0), np.where(mid, pb - 1, 0)
        nB_r, B_r0, B_r1 = self._span(ra, b0, b1, rows_c)
        nB_c, B_c0, B_c1 = self._span(ca, zero, last, cols_c)
        A = nA_r * nA_c
        C = np.where(same, 0, nC_r * nC_c)
        B = np.where(mid, nB_r * nB_c, 0)
        if not rows_c:
            total: Ints = A + B + C
            return total

        def ov(a0: Ints, a1: Ints, b0_: Ints, b1_: Ints) -> Ints:
            """Length of the overlap of the intervals a0..a1 and b0_..b1_."""
            n: Ints = np.maximum(0, np.minimum(a1, b1_) - np.maximum(a0, b0_) + 1)
            return n

        AB = np.where(mid, ov(A_r0, A_r1, B_r0, B_r1) * ov(A_c0, A_c1, B_c0, B_c1), 0)
        BC = np.where(mid, ov(B_r0, B_r1, C_r0, C_r1) * ov(B_c0, B_c1, C_c0, C_c1), 0)
        AC_r, AC_c = ov(A_r0, A_r1, C_r0, C_r1), ov(A_c0, A_c1, C_c0, C_c1)
        AC = np.where(same, 0, AC_r * AC_c)
        ABC = np.where(mid & ~same, ov(np.maximum(A_r0, C_r0), np.minimum(A_r1, C_r1), B_r0, B_r1)
                       * ov(np.maximum(A_c0, C_c0), np.minimum(A_c1, C_c1), B_c0, B_c1), 0)
        union: Ints = A + B + C - AB - BC - AC + ABC
        return union

    def _segments(self, m0: Ints, m1: Ints) -> tuple[Ints, Ints, Ints, Ints]:
        """Tiles of pixels m0..m1-1 cut at image boundaries: (tile, image, start, end)."""
        PQ = self.P * self.Q
        na, nb = m0 // PQ, (m1 - 1) // PQ
        cnt = nb - na + 1
        tile = np.repeat(np.arange(m0.size), cnt)
        n = np.repeat(na, cnt) + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        return tile, n, np.maximum(m0[tile] - n * PQ, 0), np.minimum(m1[tile] - n * PQ, PQ)

    def _row_elements_fast(self, m0: np.ndarray, m1: np.ndarray, new: bool) -> np.ndarray:
        tile, n, s, e = self._segments(m0, m1)
        if not new:
            return np.bincount(tile, weights=self._regions_fast(s, e), minlength=m0.size).astype(np.int64)
        # whole input rows, those of output rows beyond what the tiles before fetched
        pa, pb = s // self.Q, (e - 1) // self.Q
        prev = np.concatenate([[-1], pb[:-1]])
        first = np.maximum(pa, np.where(np.concatenate([[False], n[1:] == n[:-1]]), prev + 1, 0))
        lo, hi, H, cum = self._axis(self.P, self.stride_h, self.pad_h, self.R, self.H)
        f = np.minimum(first, pb)
        if self.stride_h < self.R:       # overlapping windows: the rows past the last one read
            before = np.where(first > 0, np.minimum(hi[np.maximum(first - 1, 0)], H - 1), -1)
            rows = np.maximum(0, np.minimum(hi[pb], H - 1) - np.maximum(before + 1, np.maximum(lo[f], 0)) + 1)
        else:
            rows = cum[pb + 1] - cum[f]
        rows = np.where(first <= pb, rows, 0)
        return np.bincount(tile, weights=rows * self.cols_read, minlength=m0.size).astype(np.int64)

    def row_elements(self, m0: np.ndarray, m1: np.ndarray, new: bool = False) -> np.ndarray:
        """Input elements of one channel that output pixels m0..m1-1 read, per tile. With
        ``new``, only those the tiles before it (in the same list) did not read, as when
        everything read so far stays on chip: counted in whole input rows (a tile's last
        row is finished by the next), so the tiles together read each element once."""
        m0, m1 = np.asarray(m0, dtype=np.int64), np.asarray(m1, dtype=np.int64)
        if self._fast():
            return self._row_elements_fast(m0, m1, new)
        return self._row_elements_steps(m0, m1, new)

    def _row_elements_steps(self, m0: np.ndarray, m1: np.ndarray, new: bool) -> np.ndarray:
        """:meth:`row_elements` tile by tile over sets of input rows (any geometry; the
        reference the vectorised form is tested against)."""
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

"""Folding a GEMM ``C[M,N] = A[M,K] @ B[K,N]`` onto an R x C array, per dataflow.

* ``ws`` (weight stationary, the TPU's): a K_t x N_t tile of B sits in the array; all M
  rows of A stream through it. Folds: N tiles (outer) x K tiles (inner, accumulating).
* ``is`` (input stationary): a K_t x M_t tile of A^T sits in the array; the N columns of
  B stream through. Folds: M tiles (outer) x K tiles (inner, accumulating).
* ``os`` (output stationary): each PE accumulates one output of an M_t x N_t tile while
  K steps of A and B stream in. Folds: M tiles (outer) x N tiles (inner).

For each fold this module gives the streamed length ``T``, the rows and columns used, the
bytes to move between DRAM and the SRAMs, and the SRAM traffic (bytes, by operand). The
DRAM rules: the streamed length is cut into chunks whose partial sums fit the active
half of the accumulators (``ofmap`` SRAM; the TPU's 2048 of 4096 accumulator rows), so
partial sums never leave the chip; a stationary tile is fetched for every chunk unless
the whole stationary operand fits in its SRAM; a streamed operand is fetched once if it
fits in the active half of its SRAM (the other half is the prefetch buffer), else once
per fold that needs it. Activations follow one rule, inputs and outputs alike: with
``ifmap_on_chip`` (the TPU's unified buffer) they live in the activation SRAM and cost no
DRAM traffic; otherwise inputs come from DRAM and outputs go to DRAM once. With ``weights_resident`` (a later step of a
recurrence whose weights stayed in their SRAM) the weight operand costs no DRAM traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .convdata import ConvGeometry

if TYPE_CHECKING:
    from .arch import SystolicArch

__all__ = ["Folds", "weight_group", "outer_tiles", "full_outer_tiles", "slice_runs", "folds"]


@dataclass(frozen=True)
class Folds:
    """Per-fold arrays (length F) plus the timing constants of the dataflow."""

    T: np.ndarray            # streamed length (cycles of input per fold)
    rows_used: np.ndarray
    cols_used: np.ndarray
    load: np.ndarray         # bytes DRAM -> SRAM needed before the fold starts
    store: np.ndarray        # bytes SRAM -> DRAM once the fold ends
    sram: dict[str, float]   # "level.operand.direction" -> bytes (totals)
    dram: dict[str, float]   # "dram.operand.direction" -> bytes (totals)
    latency: np.ndarray      # cycles from a fold's first input to its last output leaving the array
    interval: np.ndarray     # cycles until the next fold may start streaming
    preload: int             # cycles to shift a stationary tile in after its data arrives

    @property
    def count(self) -> int:
        return int(self.T.size)


def _tiles(n: int, t: int) -> np.ndarray:
    full, rem = divmod(n, t)
    return np.array([t] * full + ([rem] if rem else []), dtype=np.int64)


def _residence(arch: SystolicArch, out: np.ndarray, sram: dict[str, float], dram: dict[str, float]) -> np.ndarray:
    """Where an op's finished outputs go, by the one activation rule: with ``ifmap_on_chip``
    activations live in the activation (ifmap) SRAM, inputs and outputs alike (the TPU's
    unified buffer: results return to it, not to DRAM); otherwise every output is written
    to DRAM. Returns the bytes each fold stores over the DRAM channel."""
    if arch.ifmap_on_chip:
        sram["ifmap_sram.output.writes"] = float(out.sum())
        return np.zeros_like(out)
    dram["dram.output.writes"] = float(out.sum())
    return out


def weight_group(arch: SystolicArch, nk: int, w_bits: int = 8) -> int:
    """K tiles a weight-stationary PE holds at once: with a weight register file and an
    output register per PE (``pe_reg_bytes``), as many weight tiles as the register file
    holds (at most all ``nk``), interleaved per streamed row so that each row's partial sum
    accumulates over them in the output register before it leaves the array (the loop
    order that keeps partial sums in the PE, as ZigZag's tpu_like mapping runs); else 1.
    It changes the partial sums' traffic to the accumulators, not the folds' timing."""
    regs = arch.pe_reg_bytes
    if arch.dataflow != "ws" or "weight" not in regs or "output" not in regs:
        return 1
    return max(1, min(nk, int(regs["weight"] // (w_bits / 8))))


def outer_tiles(M: int, N: int, K: int, arch: SystolicArch) -> tuple[int, int]:
    """(outer tiles, folds per outer tile): the X tiles of ``ws``/``is`` (each K tiles x
    stream chunks long) or the M tiles of ``os`` (each N tiles long). ``folds(...,
    outer=(a, b))`` gives the folds of outer tiles a..b-1 alone, so that a GEMM of tens of
    millions of folds is scheduled a slice at a time in bounded memory."""
    R, C = arch.rows, arch.cols
    if arch.dataflow in ("ws", "is"):
        X, T = (N, M) if arch.dataflow == "ws" else (M, N)
        t_max = max(1, int(arch.ofmap_sram_kib * 1024 / 2 // (C * arch.acc_bits / 8)))
        return -(-X // C), -(-T // t_max) * -(-K // R)
    return -(-M // R), -(-N // C)


def full_outer_tiles(M: int, N: int, arch: SystolicArch) -> int:
    """How many outer tiles (see :func:`outer_tiles`) are full size (the last may be partial)."""
    if arch.dataflow in ("ws", "is"):
        return (N if arch.dataflow == "ws" else M) // arch.cols
    return M // arch.rows


def slice_runs(n_outer: int, step: int, n_full: int) -> list[tuple[int, int, int]]:
    """Outer tiles ``0..n_outer-1`` in slices of ``step``, as ``(first, end, repeats)`` runs:
    the first slice alone (it brings a streamed operand that fits on chip, see
    :func:`folds`), then every following slice of full tiles as one run of identical slices
    (their folds differ in nothing), then the rest one slice at a time."""
    runs = [(0, min(step, n_outer), 1)]
    a = runs[0][1]
    same = max(0, (n_full - a) // step)
    if same:
        runs.append((a, a + step, same))
        a += same * step
    while a < n_outer:
        runs.append((a, min(a + step, n_outer), 1))
        a += step
    return runs


def _bounds(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    end = np.cumsum(tiles)
    return end - tiles, end


def folds(M: int, N: int, K: int, arch: SystolicArch, a_bits: int = 8, w_bits: int = 8,
          out_bits: int = 8, weights_resident: bool = False, outer: tuple[int, int] | None = None,
          conv: ConvGeometry | None = None) -> Folds:
    """The folds of ``C[M,N] = A[M,K] @ B[K,N]`` in the order they run; with ``outer = (a,
    b)`` only those of outer tiles a..b-1 (see :func:`outer_tiles`), whose DRAM traffic is
    what they move in the whole GEMM (the first X tile's streamed operand, say). With
    ``conv``, ``A`` is that convolution's im2col view: the array and the SRAM reads see
    im2col tiles, but DRAM moves the input region each tile reads (see ``convdata``), and
    whether the input fits on chip is judged by the input read, not its expansion."""
    R, C = arch.rows, arch.cols
    ab, wb, ob, accb = a_bits / 8, w_bits / 8, out_bits / 8, arch.acc_bits / 8

    def half(kib: float) -> float:
        """Bytes in the active half of a double buffer of ``kib`` KiB."""
        return kib * 1024 / 2

    df = arch.dataflow
    if df in ("ws", "is"):
        # stationary tile (K tile over rows) x (X tile over cols); the streamed length is cut
        # into chunks whose partial sums fit the active half of the accumulators
        X, T, x_bytes, s_bytes = (N, M, wb, ab) if df == "ws" else (M, N, ab, wb)
        t_max = max(1, int(half(arch.ofmap_sram_kib) // (C * accb)))
        kt, xt, tt = _tiles(K, R), _tiles(X, C), _tiles(T, t_max)
        x0, x1 = outer if outer is not None else (0, xt.size)
        xt = xt[x0:x1]
        xx, tc, kk = (a.ravel() for a in np.meshgrid(xt, tt, kt, indexing="ij"))  # x outer, t, k inner
        xi = np.repeat(np.arange(x0, x0 + xt.size), tt.size * kt.size)
        F = kk.size
        nk = kt.size
        first_k = np.zeros(F, dtype=bool)
        first_k[::nk] = True
        last_k = np.zeros(F, dtype=bool)
        last_k[nk - 1::nk] = True
        streamed_sram = "ifmap" if df == "ws" else "filter"
        stationary_sram = "filter" if df == "ws" else "ifmap"
        s_role, x_role = ("input", "weight") if df == "ws" else ("weight", "input")
        size = {"ifmap": arch.ifmap_sram_kib, "filter": arch.filter_sram_kib}
        stationary = kk * xx * x_bytes
        streamed_fold = tc * kk * s_bytes
        ti = np.repeat(np.arange(tt.size), kt.size)[np.arange(F) % (tt.size * kt.size)]
        ki = np.arange(F) % kt.size
        k0, k1 = _bounds(kt)
        # the input operand's DRAM bytes per fold: its im2col tile, or the conv's real region
        a_all = M * K * ab if conv is None else conv.elements_read * ab
        if df == "ws":      # streamed input: chunk t of output pixels by K tile k
            t0, t1 = _bounds(tt)
            if conv is None:
                streamed_once, streamed_each = streamed_fold, streamed_fold
            else:
                streamed_each = (conv.row_elements(t0, t1) * ab)[ti] * conv.channels(k0, k1)[ki]
                streamed_once = (conv.row_elements(t0, t1, new=True) * ab)[ti] * conv.new_channels(k0, k1)[ki]
            streamed_all, stationary_all = a_all, K * X * x_bytes
        else:               # stationary input: K tile k by M tile x
            streamed_once = streamed_each = streamed_fold
            streamed_all = T * K * s_bytes
            if conv is not None:
                x0b, x1b = _bounds(_tiles(X, C))
                stationary = (conv.row_elements(x0b, x1b) * ab)[xi] * conv.channels(k0, k1)[ki]
                # an input that fits the active half stays on chip: each tile fetches only
                # the rows and channels no earlier tile brought (x outer, k inner)
                stationary_new = (conv.row_elements(x0b, x1b, new=True) * ab)[xi] * conv.new_channels(k0, k1)[ki]
            stationary_all = a_all
        if (arch.ifmap_on_chip and streamed_sram == "ifmap") or (weights_resident and s_role == "weight"):
            streamed_dram = np.zeros(F)
        elif streamed_all <= half(size[streamed_sram]):
            streamed_dram = np.where(xi == 0, streamed_once, 0.0)   # the first X tile brings it all
        else:
            streamed_dram = streamed_each
        if (arch.ifmap_on_chip and stationary_sram == "ifmap") or (weights_resident and x_role == "weight"):
            stationary_dram = np.zeros(F)
        elif df == "is" and conv is not None and stationary_all <= half(size[stationary_sram]):
            stationary_dram = np.where(ti == 0, stationary_new, 0.0)     # each input element once
        elif tt.size > 1 and stationary_all <= half(size[stationary_sram]):
            stationary_dram = np.where(ti == 0, stationary, 0.0)   # kept on chip across chunks
        else:
            stationary_dram = stationary
        out = np.where(last_k, tc * xx * ob, 0.0)
        psum = tc * xx * accb
        load = stationary_dram + streamed_dram
        sram = {
            f"{streamed_sram}_sram.{s_role}.reads": float(streamed_fold.sum()),
            f"{stationary_sram}_sram.{x_role}.reads": float((kk * xx * x_bytes).sum()),
            f"{streamed_sram}_sram.{s_role}.writes": float(streamed_dram.sum()),
            f"{stationary_sram}_sram.{x_role}.writes": float(stationary_dram.sum()),
            "ofmap_sram.output.writes": float(psum.sum()),
            "ofmap_sram.output.reads": float(np.where(first_k, 0.0, psum).sum() + out.sum() / ob * accb),
        }
        dram = {f"dram.{s_role}.reads": float(streamed_dram.sum()), f"dram.{x_role}.reads": float(stationary_dram.sum())}
        G = weight_group(arch, nk, int(w_bits))
        if G > 1:
            # G K tiles at a time in the PEs' weight registers, interleaved per streamed row:
            # each row's partial sum leaves the array (to the accumulators) once per group of
            # G tiles, not once per tile. The folds keep their per-tile timing: the
            # interleaved schedule streams the same rows and loads the same weights, and only
            # saves the fill and drain between the tiles of a group (not modelled)
            starts = np.flatnonzero(ki % G == 0)
            psum_g = (tc * xx)[starts] * accb
            sram["ofmap_sram.output.writes"] = float(psum_g.sum())
            sram["ofmap_sram.output.reads"] = float(np.where(first_k[starts], 0.0, psum_g).sum()
                                                    + out.sum() / ob * accb)
        out = _residence(arch, out, sram, dram)
        # the psum passes all R rows; the last used column is cols_used - 1 to the right
        return Folds(T=tc, rows_used=kk, cols_used=xx, load=load, store=out, sram=sram, dram=dram,
                     latency=tc + R + xx - 2, interval=np.maximum(tc, R), preload=R)
    # output stationary: M tiles (rows) outer, N tiles (cols) inner; K streamed
    mt, nt = _tiles(M, R), _tiles(N, C)
    m0, m1 = outer if outer is not None else (0, mt.size)
    mt = mt[m0:m1]
    nn, mm = np.meshgrid(nt, mt, indexing="xy")
    mm, nn = mm.ravel(), nn.ravel()
    F = mm.size
    first_n = np.zeros(F, dtype=bool)
    first_n[::nt.size] = True
    a_fold = mm * K * ab
    b_fold = K * nn * wb
    if conv is None:
        a_tile = a_fold                      # DRAM bytes of each fold's M tile of A
        a_fits = (R * K * ab) <= arch.ifmap_sram_kib * 1024 / 2
    else:                                    # the conv's input region of each M tile
        mb = _bounds(_tiles(M, R))
        region = conv.row_elements(*mb) * conv.C * ab
        a_fits = float(region.max()) <= arch.ifmap_sram_kib * 1024 / 2
        if conv.elements_read * ab <= arch.ifmap_sram_kib * 1024 / 2:
            # the whole input fits the active half and stays on chip: each M tile fetches
            # only the input rows no earlier tile brought, so DRAM moves each element once
            region = conv.row_elements(*mb, new=True) * conv.C * ab
        a_tile = region[np.repeat(np.arange(m0, m1), nt.size)]
    b_fits = (K * N * wb) <= arch.filter_sram_kib * 1024 / 2
    a_dram = np.zeros(F) if arch.ifmap_on_chip else (np.where(first_n, a_tile, 0.0) if a_fits else a_tile)
    if weights_resident:
        b_dram = np.zeros(F)
    else:
        b_dram = np.where(np.arange(F) < nt.size, b_fold, 0.0) if b_fits and m0 == 0 else \
            (np.zeros(F) if b_fits else b_fold)
    out = mm * nn * ob
    sram = {"ifmap_sram.input.reads": float(a_fold.sum()), "filter_sram.weight.reads": float(b_fold.sum()),
            "ofmap_sram.output.writes": float(out.sum()), "ifmap_sram.input.writes": float(a_dram.sum()),
            "filter_sram.weight.writes": float(b_dram.sum()), "ofmap_sram.output.reads": float(out.sum())}
    dram = {"dram.input.reads": float(a_dram.sum()), "dram.weight.reads": float(b_dram.sum())}
    out = _residence(arch, out, sram, dram)
    # last MAC at K-1 + (rows-1) + (cols-1); then the results drain one row per cycle,
    # overlapped with the next fold
    return Folds(T=np.full(F, K, dtype=np.int64), rows_used=mm, cols_used=nn, load=a_dram + b_dram, store=out,
                 sram=sram, dram=dram, latency=K + 2 * mm + nn - 2, interval=np.maximum(K, mm), preload=0)

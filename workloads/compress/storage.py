"""Storage accounting exactly as Deep Compression counts it (Han, Mao, Dally, ICLR 2016).

A pruned layer is stored as its non-zeros in (flattened) order with a relative index of
``index_bits`` each: the number of zeros skipped since the previous kept weight; a gap
longer than ``2**index_bits - 1`` inserts filler zeros (stored entries of value 0). So:

* **P** (pruning): entries x (32-bit weight + index bits).
* **P+Q** (weight sharing to ``weight_bits``): entries x (weight bits + index bits) plus a
  codebook of ``2**weight_bits`` 32-bit centroids.
* **P+Q+H**: the weight indices and the relative indices Huffman-coded with code lengths
  from their own distributions, plus the codebook.

The ratios divide the dense 32-bit size by each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .huffman import encoded_bits

__all__ = ["LayerStorage", "relative_indices", "layer_storage", "totals"]


@dataclass(frozen=True)
class LayerStorage:
    name: str
    weights: int
    keep: float
    weight_bits: int
    index_bits: int
    entries: int            # stored entries, filler zeros included
    fillers: int
    bits_p: float           # bits per (dense) weight after each stage
    bits_pq: float
    bits_pqh: float

    @property
    def dense_bits(self) -> int:
        return 32 * self.weights


def relative_indices(mask: np.ndarray, index_bits: int) -> tuple[np.ndarray, int]:
    """The relative-index stream (zeros before each stored entry) and the filler count."""
    flat = np.flatnonzero(np.asarray(mask).ravel())
    if flat.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    gaps = np.diff(np.concatenate([[-1], flat])) - 1
    span = 2 ** index_bits
    fillers_each = gaps // span
    rel = gaps % span
    fillers = int(fillers_each.sum())
    # each filler carries index span-1 ... stream: fillers (2**b - 1) then the real entry
    stream = np.concatenate([np.full(fillers, span - 1, dtype=np.int64), rel]) if fillers else rel
    return stream, fillers


def layer_storage(name: str, weights: np.ndarray, index_bits: int, weight_bits: int,
                  codes: np.ndarray | None = None) -> LayerStorage:
    """Account one layer: ``weights`` after pruning (zeros are pruned); ``codes`` the
    cluster index of every kept weight (for the Huffman stage), in flattened order."""
    w = np.asarray(weights)
    n = w.size
    mask = w != 0
    kept = int(mask.sum())
    rel, fillers = relative_indices(mask, index_bits)
    entries = kept + fillers
    bits_p = entries * (32 + index_bits)
    if weight_bits >= 32:            # no weight sharing: Q and H have nothing to act on
        return LayerStorage(name, n, kept / n, weight_bits, index_bits, entries, fillers, bits_p / n, bits_p / n,
                            bits_p / n)
    codebook = 2 ** weight_bits * 32
    bits_pq = entries * (weight_bits + index_bits) + codebook
    if codes is None:
        _, codes = np.unique(w[mask], return_inverse=True)
    codes = np.asarray(codes).ravel()
    weight_stream = np.concatenate([np.zeros(fillers, dtype=np.int64), codes + 1]) if fillers else codes + 1
    bits_pqh = encoded_bits(weight_stream.tolist()) + encoded_bits(rel.tolist()) + codebook
    return LayerStorage(name, n, kept / n, weight_bits, index_bits, entries, fillers, bits_p / n, bits_pq / n,
                        bits_pqh / n)


def totals(layers: list[LayerStorage]) -> dict:
    n = sum(l.weights for l in layers)
    p = sum(l.bits_p * l.weights for l in layers)
    pq = sum(l.bits_pq * l.weights for l in layers)
    pqh = sum(l.bits_pqh * l.weights for l in layers)
    return {"weights": n, "keep": sum(l.keep * l.weights for l in layers) / n,
            "bits_p": p / n, "bits_pq": pq / n, "bits_pqh": pqh / n,
            "ratio_p": 32 * n / p, "ratio_pq": 32 * n / pq, "ratio_pqh": 32 * n / pqh}

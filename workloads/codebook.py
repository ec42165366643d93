"""k-means weight sharing in numpy alone (no torch), so that simulators can re-cluster a
trace's codebook (EIE needs one that fits its index width) without the compression passes.

Deep Compression (Han et al., ICLR 2016, Sec. 3) clusters a layer's kept weights with
k-means from a linear initialisation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kmeans_share"]


def kmeans_share(values: np.ndarray, bits: int, iters: int = 30, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ``values`` (the kept weights) into ``2**bits`` shared values.

    Centroids start linearly spaced between min and max (Deep Compression found linear
    initialisation best: large weights keep their own centroids). Returns (codebook,
    index of every value)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    k = min(k or 2 ** bits, max(1, v.size))
    cents = np.linspace(v.min(), v.max(), k) if v.size else np.zeros(k)
    idx = np.zeros(v.size, dtype=np.int64)
    for _ in range(iters):
        # nearest centroid via sorted midpoints (1-D): O(n log k)
        order = np.argsort(cents)
        c = cents[order]
        mids = (c[1:] + c[:-1]) / 2
        idx = order[np.searchsorted(mids, v)]
        sums = np.bincount(idx, weights=v, minlength=k)
        cnt = np.bincount(idx, minlength=k)
        new = np.where(cnt > 0, sums / np.maximum(cnt, 1), cents)
        if np.allclose(new, cents):
            break
        cents = new
    return cents, idx

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
    exact = _sums_exact(v)
    if exact is None:
        return _kmeans_direct(v, cents, iters)
    return _kmeans_sorted(v, cents, iters, exact)


def _sums_exact(v: np.ndarray) -> bool | None:
    """None if ``v`` is not finite or its sums could near overflow; else whether every sum of
    its values, in any order, is exact: all are multiples of 2**q, every partial sum is below
    n * 2**e <= 2**(53+q) (|v| < 2**e), so all are integers times 2**q that float64 holds."""
    nz = v[v != 0]
    if not nz.size:
        return True
    if not np.isfinite(nz).all():
        return None
    m, e = np.frexp(nz)                                 # nz = m * 2**e, 0.5 <= |m| < 1
    top = int(e.max()) + int(v.size).bit_length()       # every partial sum is below 2**top
    if top > 1020:
        return None
    mant = (m * 2.0 ** 53).astype(np.int64)             # exact: nz = mant * 2**(e - 53)
    low = np.frexp((mant & -mant).astype(np.float64))[1] - 1   # lowest set bit of mant
    return top <= 53 + int((e - 53 + low).min())


def _kmeans_direct(v: np.ndarray, cents: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's iterations, each value to its nearest centroid by sorted midpoints (1-D)."""
    k = cents.size
    idx = np.zeros(v.size, dtype=np.int64)
    for _ in range(iters):
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


def _kmeans_sorted(v: np.ndarray, cents: np.ndarray, iters: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_kmeans_direct` on the values sorted once, with the same results: a value's
    cluster is the number of midpoints below it, so each cluster is a run of the sorted values,
    found by k-1 binary searches. Runs are summed directly where ``exact`` (the order cannot
    matter), else in the original order as ``np.bincount`` does."""
    k = cents.size
    perm = np.argsort(v)
    sv = v[perm]
    idx = np.zeros(v.size, dtype=np.int64)
    order, runs = np.zeros(1, dtype=np.int64), np.array([v.size])     # iters == 0: all in cluster 0
    for _ in range(iters):
        order = np.argsort(cents)
        c = cents[order]
        mids = (c[1:] + c[:-1]) / 2                     # finite and non-decreasing
        runs = np.diff(np.searchsorted(sv, mids, side="right"), prepend=0, append=v.size)
        cnt = np.zeros(k, dtype=np.int64)
        cnt[order] = runs
        if exact:
            sums: np.ndarray = np.zeros(k)
            full = runs > 0
            starts = (np.cumsum(runs) - runs)[full]
            sums[order[full]] = np.add.reduceat(sv, starts) + 0.0      # a sum of -0.0s is 0.0, as in bincount
        else:
            idx[perm] = np.repeat(order, runs)
            sums = np.bincount(idx, weights=v, minlength=k)
        new = np.where(cnt > 0, sums / np.maximum(cnt, 1), cents)
        if np.allclose(new, cents):
            break
        cents = new
    idx[perm] = np.repeat(order, runs)                  # the last iteration's clusters
    return cents, idx

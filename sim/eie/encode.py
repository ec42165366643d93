"""EIE's compressed sparse format (Han et al., ISCA 2016, Sec. III-B/C).

Rows are interleaved over N PEs (row i on PE ``i mod N``); each PE stores its slice in
CSC form: per non-zero a 4-bit virtual weight index ``v`` into a 16-entry codebook
(entry 0 is the zero used for padding) and a 4-bit relative row index ``z`` (zeros
skipped since the previous entry of the column). A run longer than 15 zeros gets a
padding entry ``(v=0, z=15)``. Column pointers ``p`` delimit each column:
``p[j+1] - p[j]`` entries, padding included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable

import numpy as np
from numpy.typing import NDArray

from workloads.errors import HwsimError

from .memo import Memo, frozen_array, nbytes_of

__all__ = [
    "SparseLayer", "PESlice", "Encoded", "encode", "decode", "ColumnMajor", "column_major", "batch_counts",
    "linear_codebook", "nearest", "to_fixed", "from_dense", "synthetic", "synthetic_activations",
]


@dataclass(frozen=True)
class SparseLayer:
    """A pruned, weight-shared matrix ``W[rows, cols]`` (out x in) in coordinate form.

    ``idx`` are codebook indices in 1..len(codebook)-1 (0 means zero); ``codebook`` holds
    16-bit fixed-point values with ``frac_bits`` fraction bits, ``codebook[0] == 0``.
    """

    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    idx: np.ndarray
    codebook: np.ndarray
    frac_bits: int = 12
    # how :func:`synthetic` drew the layer (its arguments), which keys the memos of what is
    # derived from it (sim.eie.memo); None for any other layer (``dataclasses.replace`` too)
    recipe: Hashable | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def nnz(self) -> int:
        return int(self.rows.size)

    @property
    def density(self) -> float:
        return self.nnz / (self.shape[0] * self.shape[1])

    def dense_int(self) -> np.ndarray:
        """The decoded matrix as 16-bit fixed-point integers (for reference checks)."""
        w = np.zeros(self.shape, dtype=np.int64)
        w[self.rows, self.cols] = self.codebook[self.idx]
        return w


@dataclass(frozen=True)
class PESlice:
    """One PE's part of one tile, as stored in its SRAMs."""

    v: np.ndarray      # uint8 codebook indices, 0 for padding zeros
    z: np.ndarray      # uint8 zero runs
    ptr: np.ndarray    # int64 column pointers, length cols + 1


@dataclass(frozen=True)
class Encoded:
    """A (row batch, column tile) of a layer encoded for ``num_pes`` PEs.

    ``entries[k, j]`` counts PE k's entries of column j (padding included);
    ``padding[k, j]`` how many of them are padding zeros.
    """

    num_pes: int
    row0: int
    rows: int
    col0: int
    cols: int
    entries: np.ndarray
    padding: np.ndarray
    # coordinate form sorted by (pe, col, local row), with padding counts per non-zero
    pe: np.ndarray
    col: np.ndarray
    lrow: np.ndarray
    idx: np.ndarray
    z: np.ndarray
    pads: np.ndarray

    def pe_slice(self, k: int, max_run: int = 15) -> PESlice:
        """Materialise PE k's (v, z, ptr) arrays exactly as the SRAMs hold them."""
        sel = self.pe == k
        pads, idx, z = self.pads[sel], self.idx[sel], self.z[sel]
        reps = pads + 1
        total = int(reps.sum())
        v_out = np.zeros(total, dtype=np.uint8)
        z_out = np.full(total, max_run, dtype=np.uint8)
        pos = np.cumsum(reps) - 1
        v_out[pos] = idx
        z_out[pos] = z
        ptr = np.concatenate([[0], np.cumsum(self.entries[k])]).astype(np.int64)
        return PESlice(v_out, z_out, ptr)


def encode(layer: SparseLayer, num_pes: int, max_run: int = 15, row0: int = 0, rows: int | None = None,
           col0: int = 0, cols: int | None = None) -> Encoded:
    """Encode rows ``[row0, row0+rows)`` x columns ``[col0, col0+cols)`` for ``num_pes`` PEs."""
    if num_pes < 1:
        raise HwsimError(f"num_pes: must be >= 1, got {num_pes}")
    R, C = layer.shape
    rows = R - row0 if rows is None else rows
    cols = C - col0 if cols is None else cols
    if _inside(layer.rows, row0, rows) and _inside(layer.cols, col0, cols):   # nothing to select
        r, c, v = layer.rows - row0, layer.cols - col0, layer.idx
    else:
        sel = (layer.rows >= row0) & (layer.rows < row0 + rows) & (layer.cols >= col0) & (layer.cols < col0 + cols)
        r, c, v = layer.rows[sel] - row0, layer.cols[sel] - col0, layer.idx[sel]
    L = -(-rows // num_pes)
    nb = 1 << int(max(layer.codebook.size - 1, 1)).bit_length()
    # one packed int64 key sorts by (pe, column, local row) in a single pass
    lr, pe = np.divmod(r, num_pes)
    key = ((pe * cols + c) * L + lr) * nb + v
    key = _ascending(key, r, c, pe, cols, num_pes)
    idx = key & (nb - 1)
    key >>= nb.bit_length() - 1
    key, lrow = np.divmod(key, L)
    pe, c = np.divmod(key, cols)
    group = key           # pe * cols + c
    first = np.ones(group.size, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    prev = np.empty_like(lrow)
    prev[0:1] = -1
    prev[1:] = lrow[:-1]
    prev[first] = -1
    gap = lrow - prev - 1
    pads = gap // (max_run + 1)
    z = gap % (max_run + 1)
    entries = np.bincount(group, weights=pads + 1, minlength=num_pes * cols).reshape(num_pes, cols).astype(np.int64)
    padding = np.bincount(group, weights=pads, minlength=num_pes * cols).reshape(num_pes, cols).astype(np.int64)
    return Encoded(num_pes, row0, rows, col0, cols, entries, padding, pe, c, lrow, idx.astype(np.uint8),
                   z.astype(np.uint8), pads)


def _small(n: int) -> type[np.unsignedinteger] | None:
    """The unsigned type of at most 16 bits that holds 0..n-1 (numpy sorts those stably by
    radix, in linear time), or None."""
    return np.uint8 if n <= 1 << 8 else np.uint16 if n <= 1 << 16 else None


def _ascending(key: NDArray[np.int64], r: NDArray[np.integer], c: NDArray[np.integer], pe: NDArray[np.integer],
               cols: int, num_pes: int) -> NDArray[np.int64]:
    """``np.sort(key)`` for keys ordered by (PE, column, local row). Where the non-zeros come
    in (row, column) order without repeats, as a layer read from a dense matrix does, two
    stable radix sorts (by column, then by PE) give that order in linear time: for one PE,
    row order is local-row order."""
    tc, tp = _small(cols), _small(num_pes)
    if tc is None or tp is None or key.size < 2:
        return np.sort(key)
    rc = r.astype(np.int64) * cols + c
    if not bool((rc[1:] > rc[:-1]).all()):
        return np.sort(key)
    o = np.argsort(c.astype(tc), kind="stable")
    if num_pes > 1:
        o = o[np.argsort(pe[o].astype(tp), kind="stable")]
    return key[o]


def _inside(x: NDArray[np.integer], lo: int, n: int) -> bool:
    """Whether every coordinate in ``x`` lies in ``[lo, lo + n)``."""
    return x.size == 0 or (int(x.min()) >= lo and int(x.max()) < lo + n)


@dataclass(frozen=True)
class ColumnMajor:
    """A layer's non-zero rows sorted by (column, row): column j's are
    ``rows[start[j]:start[j + 1]]``. Made once by :func:`column_major`, it gives every PE
    count's entry and padding counts (:func:`batch_counts`) without re-selecting rows."""

    shape: tuple[int, int]
    rows: NDArray[np.signedinteger]      # the narrowest of int16, int32, int64 that holds them
    start: NDArray[np.int64]


# Column-major forms of synthetic layers by recipe; the budgets here and below are memory
# policy (a process keeps at most these), not model constants.
COLUMN_MAJOR: Memo[ColumnMajor] = Memo("column-major layers", max_items=32, max_bytes=128 << 20)


def column_major(layer: SparseLayer) -> ColumnMajor:
    """The layer's non-zeros inside its shape (those :func:`encode` keeps), sorted by (column, row).
    Read-only; made once per process for a :func:`synthetic` layer's recipe."""
    if layer.recipe is None:
        return _column_major(layer)
    return COLUMN_MAJOR.get(layer.recipe, lambda: _column_major(layer), lambda cm: nbytes_of((cm.rows, cm.start)))


def _column_major(layer: SparseLayer) -> ColumnMajor:
    R, C = layer.shape
    rows, cols = layer.rows.astype(np.int64), layer.cols.astype(np.int64)
    if not (_inside(rows, 0, R) and _inside(cols, 0, C)):
        keep = (rows >= 0) & (rows < R) & (cols >= 0) & (cols < C)
        rows, cols = rows[keep], cols[keep]
    if rows.size < 2 or bool((rows[1:] >= rows[:-1]).all()):   # row-major already: a stable sort by column
        order = np.argsort(cols.astype(np.uint16) if C <= 1 << 16 else cols, kind="stable")
    else:
        order = np.lexsort((rows, cols))
    start = np.zeros(C + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=C), out=start[1:])
    rdt = np.int16 if R <= 1 << 15 else np.int32 if R <= 1 << 31 else np.int64
    return ColumnMajor((R, C), frozen_array(rows[order].astype(rdt)), frozen_array(start))


def batch_counts(cm: ColumnMajor, num_pes: int, batch_rows: int, max_run: int = 15,
                 chunk: int = 1 << 22) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``entries[b]`` and ``padding[b]`` (batches x PEs x columns) of ``encode(layer, num_pes,
    max_run, row0=b * batch_rows, rows=min(batch_rows, R - row0))`` for every row batch b,
    without the coordinate arrays; about ``chunk`` non-zeros and counts at a time, by columns.

    Row r of a batch sits on PE ``r mod num_pes`` at local row ``r // num_pes``. The key
    ``((PE, column, batch) group, local row)`` in ascending order puts each group's non-zeros
    together in row order, and a non-zero's zero run is then ``min(key - previous key - 1,
    local row)``: the local row when it starts its group. The non-zeros come in (column, row)
    order, which is (column, batch, local row) order for each PE, so a stable sort by PE
    alone (a radix sort of small integers, linear time) orders the keys."""
    if num_pes < 1 or batch_rows < 1:
        raise HwsimError(f"num_pes and batch_rows must be >= 1, got {num_pes} and {batch_rows}")
    R, C = cm.shape
    nb = -(-R // batch_rows)
    L = -(-batch_rows // num_pes)
    G = nb * num_pes                             # (batch, PE) pairs
    b, r = np.divmod(np.arange(R, dtype=np.int64), batch_rows)
    lrow, pe = np.divmod(r, num_pes)
    pe_small = pe.astype(np.uint8 if num_pes <= 1 << 8 else np.uint16 if num_pes <= 1 << 16 else np.int64)
    narrow = G * L <= 2 ** 31 - 1                # int32 keys for up to (2**31 - 1) // (G L) columns
    width = max(1, min(chunk // max(G, 1), (2 ** 31 - 1) // (G * L) if narrow else C))
    kdt = np.int32 if narrow else np.int64
    shift = L.bit_length() - 1 if L & (L - 1) == 0 else -1
    entries = padding = np.zeros((nb, num_pes, 0), dtype=np.int64)
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []
    c0 = 0
    while c0 < C:
        c1 = min(C, c0 + width, max(c0 + 1, int(np.searchsorted(cm.start, cm.start[c0] + chunk, "right")) - 1))
        s0, s1 = int(cm.start[c0]), int(cm.start[c1])
        nc = c1 - c0
        rows = cm.rows[s0:s1]
        key: NDArray[np.signedinteger] = np.repeat(np.arange(0, nc * nb * L, nb * L, dtype=kdt),
                                                   np.diff(cm.start[c0:c1 + 1]))
        key += ((pe * nc * nb + b) * L + lrow).astype(kdt)[rows]
        if num_pes > 1:
            key = key[np.argsort(pe_small[rows], kind="stable")]
        group, gap = (key >> shift, key & (L - 1)) if shift >= 0 else np.divmod(key, L)
        np.minimum(gap[1:], np.diff(key) - 1, out=gap[1:])
        pads = gap // (max_run + 1)
        if 4 * np.count_nonzero(pads) < pads.size:          # padding is rare: count where it is
            nz = np.flatnonzero(pads)
            pad = np.bincount(group[nz], weights=pads[nz], minlength=G * nc).astype(np.int64)
        else:
            pad = np.bincount(group, weights=pads, minlength=G * nc).astype(np.int64)
        ent = np.bincount(group, minlength=G * nc) + pad
        # groups are (PE, column, batch); the counts are laid out (batch, PE, column)
        parts.append((ent.reshape(num_pes, nc, nb).transpose(2, 0, 1), pad.reshape(num_pes, nc, nb).transpose(2, 0, 1)))
        c0 = c1
    if len(parts) == 1:
        entries, padding = np.ascontiguousarray(parts[0][0]), np.ascontiguousarray(parts[0][1])
    elif parts:
        entries = np.concatenate([e for e, _ in parts], axis=2)
        padding = np.concatenate([p for _, p in parts], axis=2)
    return entries, padding


def decode(s: PESlice, pe: int, num_pes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rebuild (global row, column, index) of PE ``pe``'s non-zeros from its SRAM arrays."""
    rows, cols, idx = [], [], []
    for j in range(len(s.ptr) - 1):
        v, z = s.v[s.ptr[j]:s.ptr[j + 1]], s.z[s.ptr[j]:s.ptr[j + 1]].astype(np.int64)
        local = np.cumsum(z + 1) - 1
        keep = v != 0
        rows.append(local[keep] * num_pes + pe)
        cols.append(np.full(int(keep.sum()), j))
        idx.append(v[keep])
    def cat(parts: list[NDArray[np.integer]]) -> NDArray[np.integer]:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return cat(rows), cat(cols), cat(idx)


# ---- building layers -------------------------------------------------------------------
def linear_codebook(values: np.ndarray, index_bits: int = 4, frac_bits: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Share the non-zero ``values`` over ``2**index_bits - 1`` linearly spaced centroids
    (Deep Compression's linear initialisation; k-means refinement lives in
    ``workloads.compress``). Returns (codebook int16 fixed point with entry 0 = 0, indices)."""
    k = 2 ** index_bits - 1
    lo, hi = float(values.min()), float(values.max())
    cents = np.linspace(lo, hi, k) if hi > lo else np.full(k, lo)
    idx = nearest(values, cents) + 1
    cb = np.concatenate([[0.0], cents])
    return to_fixed(cb, frac_bits), idx.astype(np.uint8)


def nearest(values: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Index of the nearest of ``cents`` for every value (the first on a tie), by binary
    search between sorted midpoints: O(n log k) time and O(n) memory, where the distance
    matrix would take n x k."""
    order = np.argsort(cents, kind="stable")
    c = np.asarray(cents, dtype=np.float64)[order]
    mids = (c[1:] + c[:-1]) / 2
    nearest_index: NDArray[np.intp] = order[np.searchsorted(mids, np.asarray(values, dtype=np.float64), side="left")]
    return nearest_index


def to_fixed(x: np.ndarray, frac_bits: int, bits: int = 16) -> np.ndarray:
    lim = 2 ** (bits - 1)
    fixed: NDArray[np.int64] = np.clip(np.round(np.asarray(x, dtype=np.float64) * 2 ** frac_bits), -lim,
                                       lim - 1).astype(np.int64)
    return fixed


def from_dense(w: np.ndarray, index_bits: int = 4, frac_bits: int = 12, codebook: np.ndarray | None = None) -> SparseLayer:
    """A layer from a dense (out x in) matrix: its zeros stay zeros, the rest is weight-shared.

    With ``codebook`` given, ``w`` holds codebook *values* already (a weight-shared trace)
    and each non-zero is mapped to its codebook entry; a codebook with more non-zero values
    than the index width leaves room for (index 0 is the zero) is re-clustered to fit.
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise HwsimError(f"EIE needs a 2-D weight matrix (out x in), got shape {list(w.shape)}")
    rows, cols = np.nonzero(w)
    if rows.size == 0:
        raise HwsimError("the weight matrix has no non-zeros; there is nothing for EIE to compute")
    vals = w[rows, cols]
    if codebook is not None:
        cb = np.asarray(codebook, dtype=np.float64)
        nz = cb[cb != 0]
        if nz.size > 2 ** index_bits - 1:
            # EIE reserves index 0 for zero: a 2**b-entry codebook is re-shared to 2**b - 1 values
            from workloads.codebook import kmeans_share
            nz, _ = kmeans_share(vals, index_bits, k=2 ** index_bits - 1)
        full = np.concatenate([[0.0], nz])
        idx = nearest(vals, full[1:]) + 1
        cbf = to_fixed(full, frac_bits)
    else:
        cbf, idx = linear_codebook(vals, index_bits, frac_bits)
    return SparseLayer((w.shape[0], w.shape[1]), rows.astype(np.int64), cols.astype(np.int64),
                       idx.astype(np.uint8), cbf, frac_bits)


# Seeded synthetic layers by recipe: the nine EIE benchmark layers (about 12M non-zeros,
# 17 bytes each) fit; a layer over the budget is drawn for each call and not kept.
SYNTHETIC: Memo[SparseLayer] = Memo("synthetic layers", max_items=64, max_bytes=512 << 20)


def synthetic(rows: int, cols: int, density: float, seed: int = 0, index_bits: int = 4,
              frac_bits: int = 12) -> SparseLayer:
    """A seeded random layer with exactly ``round(density * rows * cols)`` non-zeros placed
    uniformly, indices uniform over the non-zero codebook entries. Its arrays are read-only:
    for the same arguments (ints, and a float density) the layer is drawn once per process
    and shared (sim.eie.memo)."""
    args = (rows, cols, seed, index_bits, frac_bits)
    if not (all(type(a) is int for a in args) and isinstance(density, float)):
        return _frozen(_synthetic(rows, cols, density, seed, index_bits, frac_bits), None)
    # an np.float64 density draws what the same float does (both IEEE doubles)
    key = ("synthetic", rows, cols, float(density), seed, index_bits, frac_bits)
    return SYNTHETIC.get(key, lambda: _frozen(_synthetic(rows, cols, float(density), seed, index_bits, frac_bits), key),
                         lambda lay: nbytes_of((lay.rows, lay.cols, lay.idx, lay.codebook)))


def _frozen(layer: SparseLayer, recipe: Hashable | None) -> SparseLayer:
    for a in (layer.rows, layer.cols, layer.idx, layer.codebook):
        frozen_array(a)
    object.__setattr__(layer, "recipe", recipe)
    return layer


def _synthetic(rows: int, cols: int, density: float, seed: int, index_bits: int, frac_bits: int) -> SparseLayer:
    if not 0.0 < density <= 1.0:
        raise HwsimError(f"weight density must be in (0, 1], got {density}")
    if rows < 1 or cols < 1:
        raise HwsimError(f"layer shape must be positive, got {rows} x {cols}")
    rng = np.random.default_rng(seed)
    total = rows * cols
    nnz = max(1, int(round(density * total)))
    if nnz * 3 > total:
        flat = np.flatnonzero(_marked(total, rng.permutation(total)[:nnz]))
    else:  # draw with replacement, drop repeats (sort-based, fast), keep exactly nnz
        flat = np.zeros(0, dtype=np.int64)
        while flat.size < nnz:
            x = np.sort(np.concatenate([flat, rng.integers(0, total, size=int((nnz - flat.size) * 1.1) + 16)]))
            flat = x[np.concatenate([[True], x[1:] != x[:-1]])]
        flat = flat[_marked(flat.size, rng.permutation(flat.size)[:nnz])]     # flat ascends: so does this
    k = 2 ** index_bits - 1
    cb = to_fixed(np.concatenate([[0.0], np.linspace(-1.0, 1.0, k)]), frac_bits)
    idx = rng.integers(1, k + 1, size=nnz).astype(np.uint8)
    r, c = np.divmod(flat, cols)
    return SparseLayer((rows, cols), r, c, idx, cb, frac_bits)


def _marked(n: int, at: NDArray[np.integer]) -> NDArray[np.bool_]:
    """A length-``n`` mask, true at ``at``: ``np.flatnonzero`` of it is ``np.sort(at)`` (for
    distinct ``at``) in linear time."""
    m = np.zeros(n, dtype=bool)
    m[at] = True
    return m


def synthetic_activations(n: int, density: float, seed: int = 0, frac_bits: int = 8) -> np.ndarray:
    """A seeded post-ReLU activation vector (16-bit fixed point) with the given density."""
    if not 0.0 <= density <= 1.0:
        raise HwsimError(f"activation density must be in [0, 1], got {density}")
    rng = np.random.default_rng(seed + 7919)
    a = np.zeros(n, dtype=np.int64)
    nz = int(round(density * n))
    pos = rng.permutation(n)[:nz]
    a[pos] = rng.integers(1, 2 ** (frac_bits + 2), size=nz)
    return a

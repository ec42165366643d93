"""Weight sharing (k-means, linear initialisation), linear / fixed-point quantisation,
and binary / ternary weights."""

from __future__ import annotations

import math

import numpy as np

from ..codebook import kmeans_share

__all__ = ["kmeans_share", "radix_point", "fixed_point", "linear_quant", "ternary", "binary"]


def radix_point(x: np.ndarray, bits: int) -> int:
    """Fraction bits of a signed ``bits``-bit fixed-point format that holds max|x|."""
    m = float(np.max(np.abs(x))) if np.size(x) else 0.0
    int_bits = max(0, math.ceil(math.log2(m + 1e-12)) + 1) if m > 0 else 0
    return bits - 1 - int_bits


def fixed_point(x: np.ndarray, bits: int, frac: int | None = None) -> tuple[np.ndarray, int]:
    """Round ``x`` to signed fixed point (radix point from its observed range unless given)."""
    frac = radix_point(x, bits) if frac is None else frac
    lim = 2 ** (bits - 1)
    q = np.clip(np.round(np.asarray(x) * 2.0 ** frac), -lim, lim - 1)
    return q / 2.0 ** frac, frac


def linear_quant(x: np.ndarray, bits: int) -> tuple[np.ndarray, float, int]:
    """Asymmetric int-k quantisation from observed min/max: (dequantised, scale, zero point)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    qmax = 2 ** bits - 1
    scale = (hi - lo) / qmax if hi > lo else 1.0
    zp = int(round(-lo / scale))
    q = np.clip(np.round(x / scale) + zp, 0, qmax)
    return (q - zp) * scale, scale, zp


def ternary(w: np.ndarray, delta_factor: float = 0.7) -> tuple[np.ndarray, float, float]:
    """TWN: threshold 0.7 mean|W|, one scale = mean |W| above it. Returns (W_t, alpha, delta)."""
    w = np.asarray(w, dtype=np.float64)
    delta = delta_factor * np.abs(w).mean()
    mask = np.abs(w) > delta
    alpha = float(np.abs(w[mask]).mean()) if mask.any() else 0.0
    return alpha * np.sign(w) * mask, alpha, float(delta)


def binary(w: np.ndarray) -> tuple[np.ndarray, float]:
    """BinaryConnect/XNOR-style: sign(W) scaled by mean |W|."""
    w = np.asarray(w, dtype=np.float64)
    alpha = float(np.abs(w).mean())
    return alpha * np.where(w >= 0, 1.0, -1.0), alpha

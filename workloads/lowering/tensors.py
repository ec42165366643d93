"""What the lowering knows of a tensor: its storage's identity, the part of that storage
it views, its width in bits, and the tensors nested in an op's arguments."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["DTYPE_BITS", "MAX_RUNS", "View", "real", "storage_key", "tensors"]

# dtype -> (bits, trace dtype)
DTYPE_BITS: dict[torch.dtype, tuple[int, str]] = {
    torch.float32: (32, "float"), torch.float16: (16, "float"), torch.bfloat16: (16, "float"),
    torch.float64: (64, "float"), torch.int8: (8, "int"), torch.uint8: (8, "int"),
    torch.int16: (16, "int"), torch.int32: (32, "int"), torch.int64: (64, "int"),
    torch.bool: (1, "int"), torch.qint8: (8, "int"), torch.quint8: (8, "int"),
    torch.qint32: (32, "int"), torch.quint4x2: (4, "int"),
}
if hasattr(torch, "float8_e4m3fn"):
    DTYPE_BITS[torch.float8_e4m3fn] = (8, "float")
    DTYPE_BITS[torch.float8_e5m2] = (8, "float")

MAX_RUNS = 1 << 20   # runs up to which two strided views are compared exactly


def storage_key(t: torch.Tensor) -> int | None:
    """The identity of a tensor's storage (shared by its views; also on the meta device)."""
    try:
        return int(t.untyped_storage()._cdata)
    except (RuntimeError, NotImplementedError, AttributeError):
        return None


def real(t: torch.Tensor) -> torch.Tensor:
    """``t``'s values as a float tensor where it is quantized."""
    return t.dequantize() if t.is_quantized else t


def tensors(values: Any) -> Iterator[torch.Tensor]:
    """The tensors among ``values``, searching lists, tuples and dict values."""
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from tensors(v)
        elif isinstance(v, dict):
            yield from tensors(tuple(v.values()))


@dataclass(frozen=True)
class View:
    """The elements of a storage a tensor covers: offset, sizes and strides (in elements)."""

    offset: int
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    itemsize: int
    full: bool

    @classmethod
    def of(cls, t: torch.Tensor) -> "View | None":
        try:
            n = t.untyped_storage().nbytes()
            full = (t.storage_offset() == 0 and t.is_contiguous() and t.numel() * t.element_size() == n)
            return cls(int(t.storage_offset()), tuple(t.shape), tuple(t.stride()), t.element_size(), full)
        except (RuntimeError, NotImplementedError):      # quantized and other opaque tensors
            return None

    def span(self) -> tuple[int, int]:
        lo = self.offset * self.itemsize
        hi = self.offset + sum((s - 1) * st for s, st in zip(self.sizes, self.strides) if s > 0)
        return lo, (hi + 1) * self.itemsize

    def runs(self) -> tuple[np.ndarray, int] | None:
        """The view as equal runs of contiguous bytes: (sorted run starts, run length), or None
        if it has more runs than is worth listing."""
        dims = [(s, st) for s, st in zip(self.sizes, self.strides) if s != 1]
        if any(s == 0 for s in self.sizes):
            return np.zeros(0, dtype=np.int64), 0
        run, inner = 1, len(dims)
        while inner and dims[inner - 1][1] == run:   # trailing dims that are contiguous
            run *= dims[inner - 1][0]
            inner -= 1
        outer = dims[:inner]
        if math.prod(s for s, _ in outer) > MAX_RUNS:
            return None
        starts = np.array([self.offset], dtype=np.int64)
        for s, st in outer:
            starts = (starts[:, None] + np.arange(s, dtype=np.int64) * st).ravel()
        return np.sort(starts * self.itemsize), run * self.itemsize

    def overlaps(self, other: "View") -> bool:
        (a0, a1), (b0, b1) = self.span(), other.span()
        if a1 <= b0 or b1 <= a0:
            return False
        ra, rb = self.runs(), other.runs()
        if ra is None or rb is None:
            return True                              # too many runs to list: the byte spans decide (conservative)
        (sa, la), (sb, lb) = ra, rb
        # a run [x, x + la) meets some run of the other iff one starts in (x - lb, x + la)
        lo = np.searchsorted(sb, sa - lb, side="right")
        hi = np.searchsorted(sb, sa + la, side="left")
        return bool((hi > lo).any())

"""What the lowering knows of a tensor: its storage's identity, the part of that storage
it views, its width in bits, and the tensors nested in an op's arguments."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["DTYPE_BITS", "MAX_RUNS", "View", "nonzeros", "real", "storage_key", "tensors"]

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


# dtypes numpy compares with zero as torch.count_nonzero does (NaN counts, -0.0 does not);
# bfloat16 as its bits less the sign
_NUMPY_TYPES = {torch.float32: "<f4", torch.float64: "<f8", torch.float16: "<f2", torch.bool: "|b1",
                torch.uint8: "|u1", torch.int8: "|i1", torch.int16: "<i2", torch.int32: "<i4", torch.int64: "<i8",
                torch.bfloat16: "<u2"}
_CHUNK = 1 << 16     # elements compared at a time (a chunk and its mask stay in cache)
_SERIAL = 1 << 15    # fewer elements than this torch counts in one thread (at.parallel's grain), faster


class _Memory:
    """A tensor's elements as numpy sees them (``__array_interface__``), without
    ``Tensor.numpy()``, which would leave the storage unable to resize (a paged weight's)."""

    def __init__(self, t: torch.Tensor, typestr: str, flat: bool):
        size = t.element_size()
        shape, strides = ((t.numel(),), (size,)) if flat else (tuple(t.shape), tuple(s * size for s in t.stride()))
        self.__array_interface__ = {"data": (t.data_ptr(), True), "shape": shape, "typestr": typestr,
                                    "strides": strides, "version": 3}


def _plain(t: torch.Tensor) -> bool:
    """A plain CPU tensor with elements, all within its storage (not an emptied weight's view)."""
    if t.layout != torch.strided or t.device.type != "cpu" or t.is_conj() or t.is_neg() \
            or type(t) not in (torch.Tensor, torch.nn.Parameter) or t.numel() == 0:
        return False
    last = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
    return t.untyped_storage().nbytes() >= (last + 1) * t.element_size()


def nonzeros(t: torch.Tensor) -> int:
    """``torch.count_nonzero(t)``, counted by numpy where it can (compared with zero a
    chunk at a time, which numpy vectorises): the same count, faster, and without torch's
    thread pool, whose wake-up costs milliseconds a call on busy cores."""
    typestr = _NUMPY_TYPES.get(t.dtype)
    if typestr is None or t.numel() < _SERIAL or not _plain(t):
        return int(torch.count_nonzero(t))
    flat = t.is_contiguous()
    arr = np.asarray(_Memory(t, typestr, flat))
    bf16 = t.dtype == torch.bfloat16
    if not flat:
        return int(np.count_nonzero((arr & 0x7FFF) if bf16 else arr))
    n = 0
    for i in range(0, arr.size, _CHUNK):
        c = arr[i:i + _CHUNK]
        n += int(np.count_nonzero(((c & 0x7FFF) if bf16 else c) != 0))
    return n


def real(t: torch.Tensor) -> torch.Tensor:
    """``t``'s values as a float tensor where it is quantized."""
    return t.dequantize() if t.is_quantized else t


def tensors(values: Any) -> list[torch.Tensor]:
    """The tensors among ``values``, searching lists, tuples and dict values, in order."""
    out: list[torch.Tensor] = []
    _collect(values, out)
    return out


# argument types that hold no tensor (most of an op's arguments: sizes, dims, flags)
_LEAVES = frozenset((int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format))


def _collect(values: Any, out: list[torch.Tensor]) -> None:
    for v in values:
        if type(v) in _LEAVES:
            continue
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            _collect(v, out)
        elif isinstance(v, dict):
            _collect(v.values(), out)


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

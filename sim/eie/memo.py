"""Per-process memos of what EIE derives from a seeded synthetic layer: the layer itself
(:func:`sim.eie.encode.synthetic`), its column-major form and its encoding plan. The same
nine benchmark layers are drawn and encoded again by every simulation, sweep and study of
``eie-benchmarks``; each is a pure function of its recipe (shape, density, seed, index and
fraction bits) and, for a plan, of the few arch fields encoding reads, so it is made once
per process.

What a memo holds is read-only (numpy arrays with ``writeable`` off, frozen dataclasses):
no caller can change what the next one gets. Each memo is a least-recently-used map
bounded by entries and by bytes; a value larger than its memo's byte budget is returned
but not kept."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, Iterable, TypeVar

import numpy as np

__all__ = ["Memo", "frozen_array", "nbytes_of"]

T = TypeVar("T")


def frozen_array(a: np.ndarray) -> np.ndarray:
    """``a`` with writing turned off (the same array, not a copy)."""
    a.setflags(write=False)
    return a


def nbytes_of(arrays: Iterable[Any]) -> int:
    """Bytes held by the numpy arrays among ``arrays``."""
    return sum(int(a.nbytes) for a in arrays if isinstance(a, np.ndarray))


class Memo(Generic[T]):
    """A thread-safe LRU map of at most ``max_items`` values and ``max_bytes`` bytes (as
    ``size`` counts them). ``get(key, make, size)`` returns the kept value or ``make()``'s,
    keeping it when it fits; exceptions from ``make`` are not kept."""

    def __init__(self, name: str, max_items: int, max_bytes: int) -> None:
        self.name = name
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, make: Callable[[], T], size: Callable[[T], int]) -> T:
        with self._lock:
            kept = self._items.get(key)
            if kept is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return kept[0]
            self.misses += 1
        value = make()
        n = size(value)
        if n > self.max_bytes or self.max_items < 1:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, n)
                self._bytes += n
            while len(self._items) > self.max_items or self._bytes > self.max_bytes:
                _, (_, m) = self._items.popitem(last=False)
                self._bytes -= m
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

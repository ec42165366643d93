"""Huffman code lengths for a symbol distribution (Deep Compression's last stage)."""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Iterable

__all__ = ["code_lengths", "encoded_bits"]


def code_lengths(freqs: dict) -> dict:
    """Optimal prefix-code length (bits) of each symbol; a lone symbol gets 1 bit."""
    items = [(f, i, s) for i, (s, f) in enumerate(freqs.items()) if f > 0]
    if not items:
        return {}
    if len(items) == 1:
        return {items[0][2]: 1}
    depth = {s: 0 for _, _, s in items}
    heap = [(f, i, [s]) for f, i, s in items]
    heapq.heapify(heap)
    uid = len(heap)
    while len(heap) > 1:
        f1, _, a = heapq.heappop(heap)
        f2, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        heapq.heappush(heap, (f1 + f2, uid, a + b))
        uid += 1
    return depth


def encoded_bits(symbols: Iterable) -> int:
    """Total bits of ``symbols`` under the Huffman code of their own distribution."""
    c = Counter(symbols)
    lens = code_lengths(c)
    return sum(c[s] * lens[s] for s in c)

"""SCALE-Sim's ``write_buffer`` for the ofmap: lines of ``bw`` words, a drain of half the
buffer when the active half is full, stalls while a drain is in flight; emulated event by
event, visiting only the demand rows where something happens."""

from __future__ import annotations

import math
from collections import deque

from workloads.errors import HwsimError

from .streams import RowMap

__all__ = ["WriteBuffer"]


class WriteBuffer:
    """SCALE-Sim's ``write_buffer``: words packed into lines of ``bw``; when the active half
    fills, the partial line is flushed and half the buffer drains at one line per cycle;
    a write that finds the buffer full while a drain is in flight stalls until it ends.
    Driven in row order by :func:`sim.scalesim.compat._timing`; rows without an event are stored in bulk."""

    def __init__(self, rows: RowMap, size_bytes: int, bw: int):
        self.rows, self.bw = rows, bw
        self.total = size_bytes
        self.active = math.ceil(size_bytes * 0.5)
        self.per_drain = math.ceil((self.total - self.active) / bw)
        self.free, self.D, self.e = self.total, 0, 0
        self.queue: deque[list[int]] = deque()     # undrained lines: [full lines, valid words of a trailing partial line]
        self.since_flush = 0
        self.access = 0
        self.dmin: int | None = None
        self.dmax: int | None = None

    def next_event_row(self, S: int) -> float:
        e, W = self.e, self.rows.size
        if e >= W:
            return math.inf
        ea = max(self.rows.before(max(self.D - S, 0)), e + max(0, self.free - self.active))
        eb = e + max(self.free - 1, 0)
        best = math.inf
        if eb < W and (rb := int(self.rows.row_of(eb))) + S < self.D:
            best = rb
        if ea < W:
            best = min(best, int(self.rows.row_of(ea)))
        return best

    def store_until(self, row: int) -> None:
        n = max(self.rows.before(row) - self.e, 0)
        self.free -= n
        self.since_flush += n
        self.e += n

    def process_row(self, row: int, cycle: int) -> int:
        """Store the words of ``row`` one by one; returns the row's stall offset."""
        off = 0
        cc = cycle
        end = self.rows.before(row + 1)
        while self.e < end:
            self.e += 1
            self.free -= 1
            self.since_flush += 1
            if cc < self.D:
                if self.free <= 0:
                    off += self.D - cc
                    cc = self.D
            elif self.free < self.active:
                self._flush()
                self.D = self._drain(cc)
        return off

    def finish(self, cycle: int) -> None:
        self._flush()
        while self.queue:
            self.D = self._drain(cycle)
            cycle = self.D + 1
        if self.dmin is None:
            raise HwsimError("SCALE-Sim fails on a layer with no ofmap writes")

    def _flush(self) -> None:
        if self.since_flush:
            self.queue.append([self.since_flush // self.bw, self.since_flush % self.bw])
            self.since_flush = 0

    def _drain(self, start: int) -> int:
        n, last_valid = 0, self.bw
        while n < self.per_drain and self.queue:
            seg = self.queue[0]
            if seg[0]:
                t = min(seg[0], self.per_drain - n)
                seg[0] -= t
                n += t
                last_valid = self.bw
            elif seg[1]:
                n += 1
                last_valid = seg[1]
                seg[1] = 0
            if not seg[0] and not seg[1]:
                self.queue.popleft()
        if n == 0:
            raise HwsimError("SCALE-Sim's write buffer would drain an empty line here (it crashes); "
                             "use a larger OfmapSramSzkB")
        data = n * self.bw - (self.bw - last_valid)
        self.access += data
        self.free += data
        end = start + n - 1
        self.dmin = start if self.dmin is None else min(self.dmin, start)
        self.dmax = end if self.dmax is None else max(self.dmax, end)
        return end

"""When each op of a workload runs on one machine: its dependency graph against the
machine's capacity.

Ops are issued in trace order (a topological order), as a framework issues kernels:
an op starts once every producer has finished, no earlier than the op issued before it,
and only while the ops already running leave room for it: the occupancies (fractions of
the machine, from ``Machine.occupancy``) of the ops running at once may not exceed 1, and
at most ``max_concurrent`` run at once. A machine whose ops each occupy all of it runs
them back to back (the time is the sum); with zero occupancy the time is the critical path.

On such a one-op-at-a-time machine an op may report a ``tail`` (``OpResult.tail_cycles``):
its last cycles, in which the machine could already start the next op (a systolic
array's drain). The next op starts in the tail unless it reads the op's results; then it
waits for them, a read-after-write stall (``raw_stall``: the cycles an op starts later than
the machine alone allows, because a producer has not finished).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from workloads.trace import Op

__all__ = ["Timeline", "schedule", "schedule_in_order"]

_EPS = 1e-9


@dataclass(frozen=True)
class Timeline:
    start: np.ndarray          # cycle each op starts
    end: np.ndarray            # cycle each op ends
    makespan: int              # cycles from the first start to the last end
    critical_path: int         # the longest producer chain, in cycles (unlimited machine)
    raw_stall: np.ndarray      # cycles each op waited for a producer beyond the machine


def _ready(ops: Sequence[Op], end: np.ndarray, index: dict[str, int], i: int) -> int:
    return max((int(end[index[p]]) for p in ops[i].producers), default=0)


def _critical_path(ops: Sequence[Op], dur: np.ndarray, index: dict[str, int]) -> int:
    """The longest producer chain: every op as early as its producers allow."""
    cp_end = np.zeros(len(ops), dtype=np.int64)
    for i in range(len(ops)):
        cp_end[i] = _ready(ops, cp_end, index, i) + dur[i]
    return int(cp_end.max(initial=0))


def schedule_in_order(ops: Sequence[Op], run: Callable[[int, int], tuple[int, int]]) -> Timeline:
    """One op at a time in trace order, each starting in the tail of the one before unless it
    reads its results (the module docstring), where an op's cycles and tail are known only
    once its start is: ``run(i, start)`` gives op ``i``'s ``(cycles, tail)`` when it starts
    at cycle ``start`` (a machine whose DRAM channel runs ahead into the gap before an op)."""
    n = len(ops)
    index = {op.name: i for i, op in enumerate(ops)}
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    raw = np.zeros(n, dtype=np.int64)
    dur = np.zeros(n, dtype=np.int64)
    free = 0                                    # the machine may start the next op
    for i in range(n):
        first = max(free, int(start[i - 1]) if i else 0)
        start[i] = max(first, _ready(ops, end, index, i))
        raw[i] = start[i] - first
        d, t = run(i, int(start[i]))
        dur[i] = d
        end[i] = start[i] + d
        free = max(free, int(end[i] - min(t, d)))
    return Timeline(start, end, int(end.max(initial=0)), _critical_path(ops, dur, index), raw)


def schedule(ops: Sequence[Op], cycles: Sequence[int], occupancy: Sequence[float],
             max_concurrent: int | None = None, tail: Sequence[int] | None = None) -> Timeline:
    """Start and end cycle of every op (see the module docstring)."""
    n = len(ops)
    dur = np.asarray(cycles, dtype=np.int64)
    occ = np.asarray(occupancy, dtype=float)
    index = {op.name: i for i, op in enumerate(ops)}
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    raw = np.zeros(n, dtype=np.int64)
    if n and bool((occ >= 1 - _EPS).all()):
        tl = np.zeros(n, dtype=np.int64) if tail is None else np.minimum(np.asarray(tail, dtype=np.int64), dur)
        if not tl.any():
            end[:] = np.cumsum(dur)             # one op at a time, in order
            start[:] = end - dur
            return Timeline(start, end, int(end[-1]), _critical_path(ops, dur, index), raw)
        return schedule_in_order(ops, lambda i, _: (int(dur[i]), int(tl[i])))
    critical = _critical_path(ops, dur, index)
    limit = max_concurrent or n or 1
    running: list[tuple[int, float]] = []       # (end, occupancy) heap
    used = 0.0
    t = 0
    for i in range(n):
        ready = _ready(ops, end, index, i)
        raw[i] = max(0, ready - t)
        t = max(t, ready)
        need = min(float(occ[i]), 1.0)
        while running and (running[0][0] <= t or used + need > 1 + _EPS or len(running) >= limit):
            e, o = heapq.heappop(running)
            used -= o
            t = max(t, e)
        start[i], end[i] = t, t + dur[i]
        if dur[i] > 0:
            heapq.heappush(running, (int(end[i]), need))
            used += need
    return Timeline(start, end, int(end.max(initial=0)), critical, raw)

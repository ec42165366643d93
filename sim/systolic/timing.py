"""When each fold runs: the array's fold pipeline plus one DRAM channel.

Rules (both engines below implement exactly these):

* Fold f streams ``T_f`` inputs; its last output leaves the array ``latency_f`` cycles
  after its stream starts (``T + R + cols - 2`` for a stationary tile; ``K + 2 rows + cols
  - 2`` for output stationary, whose results drain one row per cycle). The next fold may
  start ``interval_f`` cycles later (``max(T, R)``: the next stationary tile shifts in under
  the current stream; ``max(K, rows)`` for output stationary, whose drain overlaps the next
  fold). ``sim.systolic.array`` checks these against a register-level model.
* Its DRAM data (``load_f`` bytes) must have arrived, and a stationary tile then needs
  ``preload`` (``R``) cycles to shift in: ``start_f >= done_f + preload``.
* Fold f's load may be requested once a buffer slot is free: at cycle 0 for the first
  ``prefetch_depth`` folds, else when fold ``f - prefetch_depth`` starts. Fold f's
  results (``store_f`` bytes) are requested when it ends.
* One DRAM channel moves ``bw`` bytes per cycle, one transfer at a time, in order of
  request (loads before stores at the same cycle): a transfer of B bytes takes
  ``ceil(B / bw)`` cycles.
* Stall cycles are the cycles a fold starts later than the pipeline alone allows.

``schedule`` is the fast engine (a recurrence over folds); ``schedule_cycles`` steps every
cycle. Tests prove they agree on cycles, stalls and DRAM traffic.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .mapping import Folds


@dataclass(frozen=True)
class Schedule:
    cycles: int
    stall_cycles: int
    compute_cycles: int       # the same folds with unlimited bandwidth
    start: np.ndarray
    dram_busy_cycles: int


def _bw(bw: float) -> Fraction:
    return Fraction(bw).limit_denominator(1 << 20)


def _dur(nbytes: float, bw: Fraction) -> int:
    return 0 if nbytes <= 0 else math.ceil(Fraction(nbytes).limit_denominator(1 << 20) / bw)


def _pipeline(f: Folds, R: int, C: int):
    return f.latency, f.interval


def compute_cycles(f: Folds, R: int, C: int) -> int:
    """Cycles with unlimited DRAM bandwidth (closed form)."""
    lat, interval = _pipeline(f, R, C)
    return int(f.preload + interval[:-1].sum() + lat[-1]) if f.count else 0


def durations(nbytes: np.ndarray, bw: float) -> list[int]:
    """``ceil(B / bw)`` cycles for every transfer, exactly (0 for none): in integers
    (``ceil(B q / p)`` with ``bw = p / q``) where the byte counts are whole, else with
    fractions, the way ``schedule_cycles`` subtracts ``bw`` per cycle."""
    bwf = _bw(bw)
    b = np.asarray(nbytes, dtype=np.float64)
    if b.size and np.all(b == np.floor(b)) and float(np.abs(b).max()) * bwf.denominator < 2.0 ** 62:
        p, q = bwf.numerator, bwf.denominator
        n = b.astype(np.int64)
        return np.where(n > 0, (n * q + p - 1) // p, 0).tolist()
    return [_dur(float(x), bwf) for x in b]


def schedule(f: Folds, R: int, C: int, bw: float, depth: int) -> Schedule:
    """Fast engine: the fold/channel recurrence."""
    lat_a, interval_a = _pipeline(f, R, C)
    lat, interval = lat_a.tolist(), interval_a.tolist()
    d_load, d_store = durations(f.load, bw), durations(f.store, bw)
    preload = int(f.preload)
    F = f.count
    start = [0] * F
    end = [0] * F
    chan = 0              # first cycle the channel is free
    busy = stalls = 0
    stores: list = []     # pending (request cycle, fold): a narrow last fold may end first
    push, pop = heapq.heappush, heapq.heappop

    for i in range(F):
        req = 0 if i < depth else start[i - depth]
        while stores and stores[0][0] < req:   # stores requested before this load go first
            e, j = pop(stores)
            d = d_store[j]
            if d:
                chan = (chan if chan > e else e) + d
                busy += d
        d = d_load[i]
        if d:
            chan = (chan if chan > req else req) + d
            busy += d
            done = chan
        else:
            done = req
        if i == 0:
            st, stall = done + preload, done
        else:
            ideal = start[i - 1] + interval[i - 1]
            ready = done + preload
            st = ideal if ideal > ready else ready
            stall = st - ideal
        stalls += stall
        start[i] = st
        end[i] = st + lat[i]
        push(stores, (end[i], i))
    while stores:
        e, j = pop(stores)
        d = d_store[j]
        if d:
            chan = (chan if chan > e else e) + d
            busy += d
    total = int(max(max(end, default=0), chan))
    return Schedule(total, int(stalls), compute_cycles(f, R, C), np.array(start, dtype=np.int64), busy)


def schedule_cycles(f: Folds, R: int, C: int, bw: float, depth: int) -> Schedule:
    """Reference engine: each cycle, first the array (start a fold if it may), then the
    channel (take the oldest request if idle, move ``bw`` bytes)."""
    lat, interval = _pipeline(f, R, C)
    bwf = _bw(bw)
    F = f.count
    start = np.full(F, -1, dtype=np.int64)
    end = np.full(F, -1, dtype=np.int64)
    done = np.full(F, -1, dtype=np.int64)
    pending: list = []            # (request cycle, 0 load / 1 store, fold, bytes)

    def request(t: int, kind: int, i: int, nbytes: float) -> None:
        if nbytes > 0:
            heapq.heappush(pending, (t, kind, i, Fraction(nbytes).limit_denominator(1 << 20)))
        elif kind == 0:
            done[i] = t               # nothing to move: ready at once

    for i in range(min(depth, F)):
        request(0, 0, i, f.load[i])
    requested = min(depth, F)
    cur = None
    busy = stalls = last_done = 0
    nxt = t = 0
    while nxt < F or cur is not None or pending:
        if nxt < F and done[nxt] >= 0:
            ready = done[nxt] + f.preload
            ideal = start[nxt - 1] + interval[nxt - 1] if nxt else ready
            if t >= max(ideal, ready):
                start[nxt], end[nxt] = t, t + lat[nxt]
                stalls += (t - ideal) if nxt else done[nxt]
                request(int(end[nxt]), 1, nxt, f.store[nxt])
                if requested < F:
                    request(t, 0, requested, f.load[requested])
                    requested += 1
                nxt += 1
        if cur is None and pending and pending[0][0] <= t:
            _, kind, i, nbytes = heapq.heappop(pending)
            cur = [kind, i, nbytes]
        if cur is not None:
            busy += 1
            cur[2] -= bwf
            if cur[2] <= 0:
                if cur[0] == 0:
                    done[cur[1]] = t + 1
                last_done = t + 1
                cur = None
        t += 1
    total = int(max(end.max(initial=0), last_done))
    return Schedule(total, int(stalls), compute_cycles(f, R, C), start, busy)

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


def durations(nbytes: np.ndarray, bw: float) -> np.ndarray:
    """``ceil(B / bw)`` cycles for every transfer, exactly (0 for none): in integers
    (``ceil(B q / p)`` with ``bw = p / q``) where the byte counts are whole, else with
    fractions, the way ``schedule_cycles`` subtracts ``bw`` per cycle."""
    bwf = _bw(bw)
    b = np.asarray(nbytes, dtype=np.float64)
    if b.size and np.all(b == np.floor(b)) and float(np.abs(b).max()) * bwf.denominator < 2.0 ** 62:
        p, q = bwf.numerator, bwf.denominator
        n = b.astype(np.int64)
        return np.where(n > 0, (n * q + p - 1) // p, 0)
    return np.array([_dur(float(x), bwf) for x in b], dtype=np.int64)


def _period(ids: np.ndarray) -> int:
    """The fold pattern's period: the least common multiple of each kind of fold's most
    common distance to its previous occurrence, kept if at least half the folds equal the
    fold one period earlier (else the largest such distance that passes; 0 for none)."""
    F = ids.size
    if F < 3:
        return 0
    order = np.argsort(ids, kind="stable")
    sid = ids[order]
    same = sid[1:] == sid[:-1]
    gaps = (order[1:] - order[:-1])[same]
    owner = sid[1:][same]
    modes = set()
    for k in np.unique(owner):
        modes.add(int(np.bincount(gaps[owner == k]).argmax()))
    lcm = 1
    for m in modes:
        lcm = math.lcm(lcm, m)
        if lcm > F // 2:
            break
    for p in [lcm] + sorted(modes, reverse=True):
        if 0 < p <= F // 2 and np.count_nonzero(ids[p:] == ids[:-p]) * 2 >= F:
            return p
    return 0


def schedule(f: Folds, R: int, C: int, bw: float, depth: int, jump: bool = True) -> Schedule:
    """Fast engine: the fold/channel recurrence, over runs of repeating folds in one step.

    Folds repeat with a period ``p`` (a stationary tile's K folds, say). When the state at a
    period boundary (the channel's free cycle, the pending stores and the last ``depth``
    starts, all relative to the last start) equals the state ``p`` folds earlier, and the
    folds ahead keep repeating, every following period is the last one shifted in time:
    the recurrence is deterministic and shift invariant, so those periods are added in one
    step (exact; ``jump=False`` walks every fold, and tests check both against
    ``schedule_cycles``)."""
    lat_a, interval_a = (np.ascontiguousarray(a, dtype=np.int64) for a in _pipeline(f, R, C))
    dl_a, ds_a = durations(f.load, bw), durations(f.store, bw)
    # int64 arrays read through memoryviews: Python ints per index, 8 bytes per fold (lists
    # would take five times that on the tens of millions of folds of a GPT-3 GEMM)
    lat, interval, d_load, d_store = (np.ascontiguousarray(a).data for a in (lat_a, interval_a, dl_a, ds_a))
    preload = int(f.preload)
    F = f.count
    start = np.zeros(F, dtype=np.int64)
    st_list = start.data                 # a memoryview: the walk writes the starts in place
    chan = 0              # first cycle the channel is free
    busy = stalls = 0
    stores: list = []     # pending (request cycle, fold): a narrow last fold may end first
    push, pop = heapq.heappush, heapq.heappop
    p = 0
    cols = (lat_a, interval_a, dl_a, ds_a)
    if jump and F > 8:
        head = min(F, 4096)             # the period, from a prefix (a longer one is not jumped)
        ids = np.zeros(head, dtype=np.int64)
        for col in cols:
            u, inv = np.unique(col[:head], return_inverse=True)
            ids = ids * u.size + inv.ravel()
        p = _period(ids)
    if p:
        eq = np.zeros(F + 1, dtype=bool)
        eq[p:F] = True
        for col in cols:
            eq[p:F] &= col[p:] == col[:-p]
        brk = np.append(np.flatnonzero(~eq[:F]), F)      # positions that break the period
        del eq
        snaps: dict[int, tuple] = {}

    def ahead(i: int) -> int:
        """How many folds from ``i`` on repeat the fold ``p`` earlier."""
        return int(brk[np.searchsorted(brk, i)]) - i

    def state(i: int) -> tuple:
        # every later transfer is requested at or after `low` (a load at one of the last
        # `depth` starts, a store at a pending or a later end): the channel's free cycle
        # matters only above it
        ref = st_list[i - 1]
        last = start[i - depth:i].tolist()
        low = min(last + [e for e, _ in stores])
        return (max(chan, low) - ref, tuple(sorted((e - ref, j - i, d_store[j]) for e, j in stores)),
                tuple(x - ref for x in last))

    i = 0
    while i < F:
        if p and i >= depth + p + 1 and i % p == 0 and ahead(i - 1) > p:
            now = state(i)
            before = snaps.get(i - p)
            snaps = {i: (now, stalls, busy)}
            if before is not None and before[0] == now:
                k = (ahead(i - 1) - 1) // p              # whole periods ahead that repeat
                if k > 0:
                    delta = st_list[i - 1] - st_list[i - p - 1]
                    seg = start[i - p:i]
                    start[i:i + k * p] = (seg[None, :] + delta * np.arange(1, k + 1, dtype=np.int64)[:, None]).ravel()
                    stalls += k * (stalls - before[1])
                    busy += k * (busy - before[2])
                    chan += k * delta
                    stores = [(e + k * delta, j + k * p) for e, j in stores]
                    heapq.heapify(stores)
                    i += k * p
                    snaps = {}
                    continue
        req = 0 if i < depth else st_list[i - depth]
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
            ideal = st_list[i - 1] + interval[i - 1]
            ready = done + preload
            st = ideal if ideal > ready else ready
            stall = st - ideal
        stalls += stall
        st_list[i] = st
        if d_store[i]:                          # a store with nothing to move changes nothing
            push(stores, (st + lat[i], i))
        i += 1
    while stores:
        e, j = pop(stores)
        d = d_store[j]
        if d:
            chan = (chan if chan > e else e) + d
            busy += d
    total = int(max(int((start + lat_a).max(initial=0)), chan))
    return Schedule(total, int(stalls), compute_cycles(f, R, C), start, busy)


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

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
* A head start of ``head`` cycles (``decoupled`` weight reads: the DRAM channel is idle
  before the op begins, while the array finishes earlier work) lets the first
  ``prefetch_depth`` loads be requested ``head`` cycles before the op's cycle 0; the first
  tile still shifts in from cycle 0. All cycles are counted from the op's cycle 0.
* Where the array's cycles go (the TPU paper's Table 3 counters, Jouppi et al. 2017): a
  cycle before the last stream ends is *active* while a fold streams (``T`` cycles each),
  else *shift* in the ``preload`` cycles before a fold starts (its tile shifts in then;
  the double buffer frees at the previous start, at least ``preload`` earlier), else a
  *wait* for DRAM data. The cycles after the last stream ends are the *drain* (results
  leaving the array, stores finishing).

``schedule`` is the fast engine (a recurrence over folds); ``schedule_cycles`` steps every
cycle. Tests prove they agree on cycles, stalls and DRAM traffic.
"""

from __future__ import annotations

import heapq
import math
from typing import Iterable, TypeAlias
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .mapping import Folds

__all__ = ["Schedule", "compute_cycles", "durations", "schedule", "schedule_slices", "schedule_cycles"]

# the recurrence's state relative to the last start: (channel free, pending stores, last starts)
_WalkState: TypeAlias = tuple[int, tuple[tuple[int, int], ...], tuple[int, ...]]


@dataclass(frozen=True)
class Schedule:
    cycles: int
    stall_cycles: int
    compute_cycles: int       # the same folds with unlimited bandwidth
    start: np.ndarray
    dram_busy_cycles: int
    active_cycles: int = 0    # cycles a fold streams (the sum of T)
    shift_cycles: int = 0     # cycles not streaming while a stationary tile shifts in
    stream_end: int = 0       # the cycle the last stream ends; after it the array drains
    channel_end: int = 0      # the cycle the DRAM channel's last transfer ends

    @property
    def wait_cycles(self) -> int:
        """Cycles before the last stream ends that the array neither streams nor shifts:
        waiting for DRAM data."""
        return self.stream_end - self.active_cycles - self.shift_cycles

    @property
    def drain_cycles(self) -> int:
        return self.cycles - self.stream_end


def _bw(bw: float) -> Fraction:
    return Fraction(bw).limit_denominator(1 << 20)


def _dur(nbytes: float, bw: Fraction) -> int:
    return 0 if nbytes <= 0 else math.ceil(Fraction(nbytes).limit_denominator(1 << 20) / bw)


def _pipeline(f: Folds, R: int, C: int) -> tuple[np.ndarray, np.ndarray]:
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


@dataclass
class _Carry:
    """The recurrence's state between slices of one GEMM's folds."""

    starts: list[int] = field(default_factory=list)   # the last `depth` starts, oldest first
    last_interval: int = 0
    chan: int = 0              # first cycle the channel is free
    stores: list[tuple[int, int]] = field(default_factory=list)   # heap of pending (request cycle, cycles to move)
    stalls: int = 0
    busy: int = 0
    end: int = 0               # latest fold end
    n: int = 0                 # folds scheduled
    head: int = 0              # cycles the channel ran before the array's cycle 0 (see the module docstring)
    interval_sum: int = 0
    last_lat: int = 0
    preload: int = 0
    last_T: int = 0            # the last fold's streamed length
    active: int = 0            # sum of T
    shift: int = 0             # exposed shift cycles
    stream_end: int = 0


def schedule(f: Folds, R: int, C: int, bw: float, depth: int, jump: bool = True, head: int = 0) -> Schedule:
    """Fast engine: the fold/channel recurrence, over runs of repeating folds in one step.

    Folds repeat with a period ``p`` (a stationary tile's K folds, say). When the state at a
    period boundary (the channel's free cycle, the pending stores and the last ``depth``
    starts, all relative to the last start) equals the state ``p`` folds earlier, and the
    folds ahead keep repeating, every following period is the last one shifted in time:
    the recurrence is deterministic and shift invariant, so those periods are added in one
    step (exact; ``jump=False`` walks every fold, and tests check both against
    ``schedule_cycles``). ``head``: the head start (module docstring)."""
    carry = _Carry(head=_head(head))
    start = _walk(f, carry, bw, depth, jump)
    return _finish(carry, start)


def schedule_slices(slices: Iterable[Folds | tuple[Folds, int]], bw: float, depth: int,
                    jump: bool = True, head: int = 0) -> Schedule:
    """:func:`schedule` of the folds of ``slices`` one after another, as one sequence
    (``mapping.folds(..., outer=...)`` slices of one GEMM), carrying the recurrence's
    state across: the same cycles, stalls and DRAM time as one call on all the folds
    (tested), in the memory of one slice. ``start`` is left empty.

    An item ``(folds, k)`` is that slice ``k`` times in a row. Once one repeat leaves the
    state (last starts, channel, pending stores, latest end; all relative to the last start)
    as the repeat before it did, every later repeat is the last one shifted in time, so the
    remaining ones are added in one step (exact, as in :func:`schedule`; ``jump=False``
    walks every repeat). ``head``: the head start, before the first slice."""
    carry = _Carry(head=_head(head))
    for item in slices:
        f, k = item if isinstance(item, tuple) else (item, 1)
        prev = None
        done = 0
        while done < k:
            _walk(f, carry, bw, depth, jump)
            done += 1
            if not jump or done == k or carry.n < depth or not carry.starts:
                continue
            now = (_slice_state(carry), carry.starts[-1], carry.stalls, carry.busy, carry.shift)
            if prev is not None and prev[0] == now[0]:
                rest, delta = k - done, now[1] - prev[1]
                carry.starts = [x + rest * delta for x in carry.starts]
                carry.chan += rest * delta
                carry.stores = [(e + rest * delta, d) for e, d in carry.stores]
                heapq.heapify(carry.stores)
                carry.end += rest * delta
                carry.stalls += rest * (now[2] - prev[2])
                carry.busy += rest * (now[3] - prev[3])
                carry.shift += rest * (now[4] - prev[4])
                carry.stream_end += rest * delta
                carry.active += rest * int(np.asarray(f.T, dtype=np.int64).sum())
                carry.n += rest * f.count
                carry.interval_sum += rest * int(np.asarray(f.interval, dtype=np.int64).sum())
                done = k
            prev = now
    return _finish(carry, np.zeros(0, dtype=np.int64))


def _head(head: int) -> int:
    if head < 0:
        raise ValueError(f"a head start is a number of cycles >= 0, got {head}")
    return int(head)


def _slice_state(carry: _Carry) -> tuple[int, tuple[tuple[int, int], ...], tuple[int, ...], int]:
    """The recurrence state between slices, relative to the last start (see ``_walk``'s
    ``state``): what decides how the next slice runs."""
    ref = carry.starts[-1]
    low = min(carry.starts + [e for e, _ in carry.stores])
    return (max(carry.chan, low) - ref, tuple(sorted((e - ref, d) for e, d in carry.stores)),
            tuple(x - ref for x in carry.starts), carry.end - ref)


def _finish(carry: _Carry, start: np.ndarray) -> Schedule:
    chan, busy = carry.chan, carry.busy
    for e, d in sorted(carry.stores):
        chan = (chan if chan > e else e) + d
        busy += d
    h = carry.head             # the walk counts from the channel's first cycle; the op from its own
    total = int(max(carry.end, chan, h)) - h
    compute = carry.preload + carry.interval_sum - carry.last_interval + carry.last_lat if carry.n else 0
    return Schedule(total, int(carry.stalls), int(compute), start - h, int(busy), int(carry.active), int(carry.shift),
                    int(carry.stream_end) - h if carry.n else 0, int(chan) - h)


def _walk(f: Folds, carry: _Carry, bw: float, depth: int, jump: bool) -> np.ndarray:
    """Schedule the folds of ``f`` after those ``carry`` holds; returns their starts."""
    lat_a, interval_a = (np.ascontiguousarray(a, dtype=np.int64) for a in _pipeline(f, 0, 0))
    T_a = np.ascontiguousarray(f.T, dtype=np.int64)
    dl_a, ds_a = durations(f.load, bw), durations(f.store, bw)
    # int64 arrays read through memoryviews: Python ints per index, 8 bytes per fold (lists
    # would take five times that on the tens of millions of folds of a GPT-3 GEMM)
    lat, interval, d_load, d_store, T = (np.ascontiguousarray(a).data for a in (lat_a, interval_a, dl_a, ds_a, T_a))
    preload = int(f.preload)
    carry.preload = preload
    n = f.count
    h = len(carry.starts)                 # the previous slice's last starts, ahead of this one's
    start = np.zeros(h + n, dtype=np.int64)
    start[:h] = carry.starts
    st_list = start.data                  # a memoryview: the walk writes the starts in place
    chan, busy, stalls, shift = carry.chan, carry.busy, carry.stalls, carry.shift
    stores = carry.stores                 # pending (request cycle, cycles to move)
    push, pop = heapq.heappush, heapq.heappop
    first, done_before, prev_interval, prev_T = carry.n == 0, carry.n, carry.last_interval, carry.last_T
    p = 0
    cols = (lat_a, interval_a, dl_a, ds_a, T_a)
    if jump and n > 8:
        head = min(n, 4096)             # the period, from a prefix (a longer one is not jumped)
        ids = np.zeros(head, dtype=np.int64)
        for col in cols:
            u, inv = np.unique(col[:head], return_inverse=True)
            ids = ids * u.size + inv.ravel()
        p = _period(ids)
    if p:
        eq = np.zeros(n + 1, dtype=bool)
        eq[p:n] = True
        for col in cols:
            eq[p:n] &= col[p:] == col[:-p]
        brk = np.append(np.flatnonzero(~eq[:n]), n)      # positions that break the period
        del eq
        snaps: dict[int, tuple[_WalkState, int, int, int]] = {}     # fold -> (state, stalls, busy, shift)

    def ahead(c: int) -> int:
        """How many folds from ``c`` on repeat the fold ``p`` earlier."""
        return int(brk[np.searchsorted(brk, c)]) - c

    def state(i: int) -> _WalkState:
        # every later transfer is requested at or after `low` (a load at one of the last
        # `depth` starts, a store at a pending or a later end): the channel's free cycle
        # matters only above it
        ref = st_list[i - 1]
        last = start[i - depth:i].tolist()
        low = min(last + [e for e, _ in stores])
        return (max(chan, low) - ref, tuple(sorted((e - ref, d) for e, d in stores)), tuple(x - ref for x in last))

    c = 0
    while c < n:
        i = h + c
        if p and c >= depth + p + 1 and c % p == 0 and ahead(c - 1) > p:
            now = state(i)
            before = snaps.get(c - p)
            snaps = {c: (now, stalls, busy, shift)}
            if before is not None and before[0] == now:
                k = (ahead(c - 1) - 1) // p              # whole periods ahead that repeat
                if k > 0:
                    delta = st_list[i - 1] - st_list[i - p - 1]
                    seg = start[i - p:i]
                    start[i:i + k * p] = (seg[None, :] + delta * np.arange(1, k + 1, dtype=np.int64)[:, None]).ravel()
                    stalls += k * (stalls - before[1])
                    busy += k * (busy - before[2])
                    shift += k * (shift - before[3])
                    chan += k * delta
                    stores = [(e + k * delta, d) for e, d in stores]
                    heapq.heapify(stores)
                    c += k * p
                    snaps = {}
                    continue
        req = 0 if done_before + c < depth else st_list[i - depth]
        while stores and stores[0][0] < req:   # stores requested before this load go first
            e, d = pop(stores)
            chan = (chan if chan > e else e) + d
            busy += d
        d = d_load[c]
        if d:
            chan = (chan if chan > req else req) + d
            busy += d
            done = chan
        else:
            done = req
        if first and c == 0:
            hd = carry.head
            st = (done if done > hd else hd) + preload
            stall = st - hd - preload
            idle = st - hd
        else:
            ideal = st_list[i - 1] + (interval[c - 1] if c else prev_interval)
            ready = done + preload
            st = ideal if ideal > ready else ready
            stall = st - ideal
            idle = st - st_list[i - 1] - (T[c - 1] if c else prev_T)
        stalls += stall
        if idle > 0:                            # the tile shifts in during the last `preload` idle cycles
            shift += idle if idle < preload else preload
        st_list[i] = st
        if d_store[c]:                          # a store with nothing to move changes nothing
            push(stores, (st + lat[c], d_store[c]))
        c += 1
    if n:
        carry.end = max(carry.end, int((start[h:] + lat_a).max()))
        carry.starts = start[max(0, h + n - depth):].tolist()
        carry.last_interval = int(interval_a[-1])
        carry.interval_sum += int(interval_a.sum())
        carry.last_lat = int(lat_a[-1])
        carry.last_T = int(T_a[-1])
        carry.active += int(T_a.sum())
        carry.stream_end = int(start[h + n - 1] + T_a[-1])
        carry.n += n
    carry.chan, carry.busy, carry.stalls, carry.stores, carry.shift = chan, busy, stalls, stores, shift
    return start[h:]


def schedule_cycles(f: Folds, R: int, C: int, bw: float, depth: int, head: int = 0) -> Schedule:
    """Reference engine: each cycle, first the array (start a fold if it may), then the
    channel (take the oldest request if idle, move ``bw`` bytes). The channel's clock starts
    ``head`` cycles before the array's (the head start, module docstring)."""
    head = _head(head)
    lat, interval = _pipeline(f, R, C)
    bwf = _bw(bw)
    F = f.count
    start = np.full(F, -1, dtype=np.int64)
    end = np.full(F, -1, dtype=np.int64)
    done = np.full(F, -1, dtype=np.int64)
    pending: list[tuple[int, int, int, Fraction]] = []     # (request cycle, 0 load / 1 store, fold, bytes)

    def request(t: int, kind: int, i: int, nbytes: float) -> None:
        if nbytes > 0:
            heapq.heappush(pending, (t, kind, i, Fraction(nbytes).limit_denominator(1 << 20)))
        elif kind == 0:
            done[i] = t               # nothing to move: ready at once

    for i in range(min(depth, F)):
        request(0, 0, i, f.load[i])
    requested = min(depth, F)
    cur: tuple[int, int] | None = None      # (0 load / 1 store, fold) of the transfer on the channel
    left = Fraction(0)                      # its bytes still to move
    busy = stalls = last_done = 0
    nxt = t = 0
    while nxt < F or cur is not None or pending:
        if nxt < F and done[nxt] >= 0:
            ready = done[nxt] + f.preload
            ideal = start[nxt - 1] + interval[nxt - 1] if nxt else head + f.preload
            if t >= max(ideal, ready):
                start[nxt], end[nxt] = t, t + lat[nxt]
                stalls += t - ideal
                request(int(end[nxt]), 1, nxt, f.store[nxt])
                if requested < F:
                    request(t, 0, requested, f.load[requested])
                    requested += 1
                nxt += 1
        if cur is None and pending and pending[0][0] <= t:
            _, kind, i, left = heapq.heappop(pending)
            cur = (kind, i)
        if cur is not None:
            busy += 1
            left -= bwf
            if left <= 0:
                if cur[0] == 0:
                    done[cur[1]] = t + 1
                last_done = t + 1
                cur = None
        t += 1
    total = int(max(end.max(initial=0), last_done, head))
    active = shift = stream_end = 0
    if F:                  # each cycle up to the last stream's end, by what the array does in it
        T = np.asarray(f.T, dtype=np.int64)
        stream_end = int(start[-1] + T[-1])
        nxt = 0            # the first fold that has not started by cycle t
        for t in range(head, stream_end):
            while nxt < F and start[nxt] <= t:
                nxt += 1
            if nxt and t < start[nxt - 1] + T[nxt - 1]:
                active += 1
            elif nxt < F and t >= start[nxt] - f.preload:
                shift += 1
    return Schedule(total - head, int(stalls), compute_cycles(f, R, C), start - head, busy, active, shift,
                    stream_end - head if F else 0, int(last_done) - head)

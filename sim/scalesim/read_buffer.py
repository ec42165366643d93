"""SCALE-Sim's read buffers (ifmap and filter): USER mode's ``read_buffer`` (a prefetch
window sliding on every miss; which demands miss does not depend on timing) and CALC mode's
``ReadBufferEstimateBw`` (addresses grouped in sets of ``size/100``, a 50-set active window
that slides 50 sets at a time), each emulated over a whole demand stream."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from workloads.errors import HwsimError

from .streams import Addresses, Counts, RowMap

__all__ = ["UserReads", "ReadResult", "read_buffer_user", "read_buffer_calc"]


@dataclass
class UserReads:
    """Where SCALE-Sim's USER-mode ``read_buffer`` misses: timing-independent."""

    miss_elems: Counts                 # stream positions that miss
    miss_calls: Counts                 # new_prefetch() calls each miss makes
    miss_rows: NDArray[np.intp]        # demand row of each miss
    first_lines: int           # lines fetched by the initial active-buffer prefetch
    lines_per_prefetch: int
    bw: int

    @property
    def prefetches(self) -> int:
        return int(self.miss_calls.sum())

    @property
    def dram_reads(self) -> int:
        return (self.first_lines + self.prefetches * self.lines_per_prefetch) * self.bw


def read_buffer_user(prefetch: Addresses, addrs: Addresses, rows: RowMap, size_bytes: int, bw: int,
                     banks: int, what: str) -> UserReads:
    """Emulate SCALE-Sim's USER-mode ``read_buffer``: sets of ``ceil(size/100)`` prefetched
    words (duplicates counted), an active window of sets sliding circularly by the prefetch
    window on every miss; which demands miss does not depend on timing."""
    if bw % banks:
        raise HwsimError(f"[layout] {what}SRAMBankBandwidth {bw} must be divisible by {what}SRAMBankNum {banks}")
    total = size_bytes
    active = math.ceil(total * 0.5)
    pf_size = total - active
    eps = math.ceil(total / 100)
    valid = prefetch[prefetch != -1]
    V = valid.size
    NL = V // eps + 1
    Al = min(math.ceil(active / eps), NL)
    Pl = min(math.ceil(pf_size / eps), NL - Al)
    fetch_rows = math.ceil(prefetch.size / bw)
    first_lines = min(math.ceil(active / bw), fetch_rows)
    per = math.ceil(pf_size / bw)
    # membership keys: address rank * NL + set id, sorted and unique
    uniq, inv = np.unique(np.concatenate([valid, addrs]), return_inverse=True)
    rv, ra = inv[:V], inv[V:]
    keys = np.unique(rv.astype(np.int64) * NL + np.arange(V) // eps)
    present = np.zeros(uniq.size, dtype=bool)
    present[rv] = True
    if not present[ra].all():
        raise HwsimError(f"a demanded {what} address is never prefetched; SCALE-Sim would loop forever here")
    base = ra.astype(np.int64) * NL

    def hits(b: NDArray[np.int64], w: int) -> NDArray[np.bool]:
        end = (w + Al) % NL if not (w == 0 and Al == NL) else NL
        p = np.searchsorted(keys, b + w)
        k1 = keys[np.minimum(p, keys.size - 1)]
        in_window: NDArray[np.bool]
        if w < end:
            in_window = (p < keys.size) & (k1 < b + end)
            return in_window
        in_tail = (p < keys.size) & (k1 < b + NL)
        p0 = np.searchsorted(keys, b)
        k0 = keys[np.minimum(p0, keys.size - 1)]
        in_window = in_tail | ((p0 < keys.size) & (k0 < b + end))
        return in_window

    w = 0
    miss_e, miss_k = [], []
    E = ra.size
    i, L = 0, 4096
    while i < E:
        j = min(E, i + L)
        h = hits(base[i:j], w)
        bad = np.flatnonzero(~h)
        if bad.size == 0:
            i, L = j, min(L * 2, 1 << 15)   # small chunks: fewer repeated candidates to de-duplicate
            continue
        e = i + int(bad[0])
        k = 0
        while True:
            if Pl == 0 and k > NL:
                raise HwsimError(f"a demanded {what} address never enters the active window; SCALE-Sim loops forever")
            w = (w + Pl) % NL
            k += 1
            if hits(base[e:e + 1], w)[0]:
                break
            if k > 4 * NL + 4:
                raise HwsimError(f"a demanded {what} address never enters the active window; SCALE-Sim loops forever")
        miss_e.append(e)
        miss_k.append(k)
        i, L = e + 1, 4096
    me = np.array(miss_e, dtype=np.int64)
    return UserReads(me, np.array(miss_k, dtype=np.int64), rows.row_of(me), first_lines, per, bw)


@dataclass
class ReadResult:
    dram_reads: int
    dram_start: int
    dram_stop: int


def read_buffer_calc(addrs: Addresses, cycle_of: Callable[[int], int], size_bytes: int, bw: int) -> ReadResult:
    """SCALE-Sim's ``ReadBufferEstimateBw`` (CALC mode) for a stream of demanded addresses;
    ``cycle_of(position)`` is the cycle a stream position is demanded in.

    The buffer splits the stream greedily into epochs of ``50 x size/100`` distinct
    addresses (a demand is a DRAM read when its address is not yet in the current epoch);
    the cycle that closes each epoch times the next prefetch."""
    n = size_bytes // 100
    A = P = 50
    if addrs.size == 0:
        raise HwsimError("SCALE-Sim fails on an operand with no demands")
    lo = int(addrs.min())
    ranks = addrs.astype(np.intp) - lo           # index arrays in intp: no casts per gather
    last = np.full(int(addrs.max()) - lo + 1, -1, dtype=np.int32)   # epoch that last fetched the address
    stamp = np.full(last.size, -1, dtype=np.int32)
    epoch = 0
    cur, elems, read_end = 0, 0, A - 1
    first_done = False
    last_start, last_end = -2, -1
    count = 0
    t_start: int | None = None
    t_stop: int | None = None
    E = addrs.size
    i, L = 0, 4096
    while i < E:
        j = min(E, i + L)
        r = ranks[i:j]
        cand = np.flatnonzero(last[r] != epoch)
        if cand.size:
            rc = r[cand]
            stamp[rc[::-1]] = cand[::-1]          # first occurrence wins
            newpos = cand[stamp[rc] == cand]
        else:
            newpos = cand
        needed = (read_end + 1 - cur) * n - elems if n else E + 1
        take = newpos if newpos.size < needed else newpos[:needed]
        if take.size:
            last[r[take]] = epoch
            count += take.size
            if n:
                elems += take.size
                cur += elems // n
                elems %= n
        if newpos.size < needed:
            i, L = j, min(L * 2, 1 << 15)   # small chunks: fewer repeated candidates to de-duplicate
            continue
        cycle = cycle_of(i + int(take[-1]))          # this address completes the last active set
        if not first_done:
            end = cycle_of(0) - 2
            start = end - math.ceil(P * n / bw) + 1
            t_start, t_stop = start + 1, end + 1
            last_start, last_end = start, end
            first_done = True
        else:
            if last_end - last_start + 1 <= 0:
                raise HwsimError("SCALE-Sim divides by zero here (two prefetches in one cycle); "
                                 "use a larger SRAM")
            t_stop = last_end + 1
        last_start, last_end = last_end + 1, cycle
        epoch += 1
        read_end += P
        i = i + int(take[-1]) + 1
    # complete_all_prefetches
    if elems == 0:
        cur -= 1
    if not first_done:
        end = -2
        cn = math.ceil((cur + 1) * n / bw)
        if cn <= 0:
            raise HwsimError("SCALE-Sim fails here (an empty prefetch); use a larger SRAM")
        t_start, t_stop = end - cn + 2, end + 1
    else:
        if last_end - last_start + 1 <= 0:
            raise HwsimError("SCALE-Sim divides by zero here (two prefetches in one cycle); use a larger SRAM")
        t_stop = last_end + 1
    assert t_start is not None and t_stop is not None    # set by the first prefetch, or above
    return ReadResult(count, t_start, t_stop)

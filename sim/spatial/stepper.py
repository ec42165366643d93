"""Cycle-level timing of one mapping on a multi-level spatial design: fills, drains and
port contention at every level, overlap by double buffering.

The rules (the two engines below implement exactly these; tests prove them equal):

* The array runs the mapping's temporal iterations in loop order, one per cycle, each once
  every tile it uses is in place.
* A *stream* moves one operand's tiles from a level (the parent) to the level below it
  that holds the operand (the child; below the innermost level, the array's own operand
  registers). The child's tile holds the loops below its bound and changes every ``P``
  iterations, ``P`` being the iterations below the first loop at or above that bound the
  operand depends on (``cost.fills``): event ``e`` serves iterations ``[eP, (e+1)P)``.
  Below the innermost level ``P`` is 1 where the PEs hold no word of the operand
  (``cost.held``: every iteration reads it, and an output is read back and written back).
  Inputs and weights are loaded before the event's first iteration; an output tile is
  read back before it when it was visited before (partial sums) and written back after
  its last iteration. A tile arrives in the order the level below uses it: of its ``n``
  distinct sub-tiles (the tiles of the stream below), the ``k``-th in first-use order is in
  place ``ceil(d (k + 1) / n)`` cycles after a ``d``-cycle transfer starts.
* A load is issued when the child has room: on a double-buffered child (and into the
  array's registers, which are pipelined) when the event before starts; on a
  single-buffered one with separate read and write ports (inputs and weights,
  ``cost.windowed``) when the stream below begins reading the last pass over the tile it
  replaces (``cost.last_pass``, rounded up to whole tiles of that stream): the words read
  before it are no longer needed, and the load waits for that read to start (it writes
  behind the reads; it is not held behind each word's read: where the port outruns them
  the stepper lets it, as it changes no tile's arrival before its first use); on any other
  single-buffered child the cycle after the event before ends (one shared port serves the
  reads of the current tile until it ends; an output tile leaves whole after its last
  iteration); event 0 at cycle 0. It waits
  for the parent to hold the data (its sub-tile of the parent stream's event that covers
  the iteration it serves first); an output tile also waits for the write-back that freed
  its buffer (the event before on a single buffer, two before on a double one). A
  write-back is issued the cycle after its tile's last iteration; it waits for the last
  write-back into the tile from below and for the parent's tile to be in place.
* A transfer uses the source's read port for ``ceil(source bits / read bits per cycle)``
  cycles and the destination's write port for ``ceil(destination bits / write bits per
  cycle)`` (one port where a level has a shared one; the bits of one instance of a level,
  each instance with its own ports), both from its start; it arrives when the slower is done. A port serves one transfer at a time.
  Transfers are issued in program order: by the iteration that issues them (cycle 0
  first), at its start then at its end; at an iteration's end write-backs bottom-up, then
  loads, shortest first; a load that waits for its parent's event is issued right after
  that event. Each starts once issued, when its waits are over and every transfer issued
  before it on one of its ports has finished.
* The op ends when its last iteration has run and its last write-back has arrived.

``schedule`` is the fast engine (a recurrence over the transfers in program order, the
iterations between them in one step, repeating windows of iterations added at once);
``schedule_cycles`` steps every cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Mapping, TypeAlias

from .array import level_groups
from .cost import Footprints, Mapping_, _chains, distinct, fills, footprints, held, last_pass, windowed
from .nest import OPERANDS, RELEVANT, Nest

if TYPE_CHECKING:
    from .arch import SpatialArch

__all__ = ["Stream", "StepTiming", "streams", "schedule", "schedule_cycles"]


@dataclass(frozen=True)
class Stream:
    """One operand's tiles moving between two adjacent levels (see the module)."""

    operand: str
    child: int                       # level index; -1: the array's operand registers
    parent: int
    period: int                      # iterations each tile serves
    events: int                      # tiles moved (iterations / period)
    load_cycles: int                 # one load (or read-back of partial sums)
    store_cycles: int                # one write-back (outputs)
    load_ports: tuple[tuple[str, int], ...]     # (port, cycles it is busy) per load
    store_ports: tuple[tuple[str, int], ...]
    double: bool                     # the child has room for the next tile while this one serves
    up: int | None                   # the stream that fills the parent (None: the parent is off-chip)
    down: int | None                 # the stream below the child (outputs: its write-backs feed this tile)
    revisit: tuple[tuple[int, int], ...] = ()   # outputs: (stride, trip) of the loops whose index > 0 means seen before
    within: tuple[tuple[int, int], ...] = ()    # (stride, trip) of the loops that pick this tile within the parent's
    # when the load of tile e + 1 is issued: at the start of iteration (e + 1) * period - lead, or
    # (at_end) at the end of the iteration before it; a double buffer: lead = period; a single one
    # refilled after its tile: lead 0, at_end
    lead: int = 0
    at_end: bool = True
    trail: int | None = None         # a refill in the last pass: the stream below, whose reads it follows
    pass_lead: int = 0               # the last pass, in whole tiles of that stream (iterations)

    def trailed(self, e: int, below: int) -> int:
        """The event of the stream below (period ``below``) whose load the refill of tile ``e`` follows:
        the first of the last pass over tile ``e - 1``."""
        return (e * self.period - self.pass_lead) // below

    def seen_before(self, e: int) -> bool:
        i = e * self.period
        return any((i // s) % f for s, f in self.revisit)

    def part(self, e: int) -> tuple[int, int]:
        """(k, n): event ``e``'s tile is the k-th of the n distinct tiles of the parent's tile,
        in the order they are first used."""
        i = e * self.period
        k, n = 0, 1
        for s, f in self.within:
            k += (i // s) % f * n
            n *= f
        return k, n


@dataclass(frozen=True)
class StepTiming:
    cycles: int
    compute_cycles: int              # iterations (one cycle each)
    stall_cycles: int                # cycles the array waited for a tile before its last iteration
    drain_cycles: int                # cycles after the last iteration until the last write-back arrives
    events: int                      # transfers and allocations scheduled


def _port(arch: SpatialArch, i: int, way: str) -> str:
    lv = arch.levels[i]
    return f"{lv.name}.rw" if lv.shared_port else f"{lv.name}.{way}"


def streams(nest: Nest, arch: SpatialArch, m: Mapping_, bits: Mapping[str, int], out_bits: int,
            tab: Footprints | None = None) -> tuple[tuple[Stream, ...], int]:
    """The mapping's streams (parents before children within an operand) and its iterations."""
    loops = m.loops
    tab = tab or footprints(nest, arch, m.unrolling, m.spatial, loops)
    _, group = level_groups(arch.levels)
    levels = arch.levels
    stride = [1]
    for _, f in loops:
        stride.append(stride[-1] * f)
    iters = stride[-1]
    out: list[Stream] = []
    for o in OPERANDS:
        chain = (-1,) + _chains(levels)[o]
        first = len(out)
        for k in range(len(chain) - 1, 0, -1):           # parents first
            child, parent = chain[k - 1], chain[k]
            b = 0 if child < 0 else m.bounds[(child, o)]
            r = b
            word = arch.acc_bits if o == "output" else bits[o]
            keep = child >= 0 or held(arch, o, tab.fp(o, 0, group[parent]) * word, levels[parent].read_bits)
            while keep and r < len(loops) and loops[r][0] not in RELEVANT[o]:
                r += 1
            period = stride[r]               # the PEs' registers holding no word: every iteration
            nfill = iters // period
            assert nfill == (fills(loops, b, o) if keep else iters)
            if o == "output":
                load_w = arch.acc_bits
                store_w = arch.acc_bits if nfill > distinct(loops, b, o) else out_bits
                rev = tuple((stride[j], f) for j, (d, f) in enumerate(loops) if j >= r and d not in RELEVANT[o])
            else:
                load_w, store_w, rev = bits[o], 0, ()
            pl = levels[parent]
            p_elems = tab.fp(o, b, group[parent])         # in one instance of the level (one PE's, the array's)
            c_elems = tab.fp(o, b, group[child]) if child >= 0 else 0

            def cyc(elems: int, width: int, per_cycle: float) -> int:
                return math.ceil(elems * width / per_cycle) if elems and width else 0

            lp: tuple[tuple[str, int], ...] = ((_port(arch, parent, "r"), cyc(p_elems, load_w, pl.read_bits)),)
            sp: tuple[tuple[str, int], ...] = ((_port(arch, parent, "w"), cyc(p_elems, store_w, pl.write_bits)),)
            if child >= 0:
                lp += ((_port(arch, child, "w"), cyc(c_elems, load_w, levels[child].write_bits)),)
                sp = ((_port(arch, child, "r"), cyc(c_elems, store_w, levels[child].read_bits)),) + sp
            load, store = max(c for _, c in lp), max(c for _, c in sp)
            double = child < 0 or levels[child].double_buffered
            idx = len(out)
            up = idx - 1 if idx > first else None
            top_b = m.bounds[(parent, o)] if up is not None else r
            within = tuple((stride[j], f) for j, (d, f) in enumerate(loops) if r <= j < top_b and d in RELEVANT[o])
            out.append(Stream(o, child, parent, period, iters // period, load, store, lp, sp, double, up, None, rev,
                              within))
        for idx in range(len(out) - 1, first - 1, -1):   # bottom-up: each refill's lead follows the reads below it
            this = out[idx]
            if this.double:
                out[idx] = replace(this, lead=this.period, at_end=False)
            elif windowed(levels[this.child], o) and this.events > 1:
                below = out[idx + 1]
                w = last_pass(loops, m.bounds[(this.child, o)], o)
                span = -(-w // below.period) * below.period   # the last pass in whole tiles below (or the period)
                out[idx] = replace(this, lead=span + below.lead, at_end=below.at_end, trail=idx + 1,
                                   pass_lead=span)
        for idx in range(first, len(out) - 1):           # the stream below each one's child
            out[idx] = replace(out[idx], down=idx + 1)
    return tuple(out), iters


_EventKey: TypeAlias = tuple[str, int, int]                            # ("ready"|"wb", stream, event)
_Wait: TypeAlias = _EventKey | tuple[str, int, int, int, int]           # or ("part", stream, event, k, n)
_Ports: TypeAlias = tuple[tuple[str, int], ...]                         # (port, cycles it is busy)
_WindowKey: TypeAlias = tuple[bool | int | tuple[bool, bool], ...]
# the engine's state relative to a window (_normal): known events, busy ports, issued and deferred loads,
# each stream's last issued load
_State: TypeAlias = tuple[tuple[tuple[str, int, int, int, int], ...], _Ports, tuple[tuple[int, int], ...],
                         tuple[tuple[tuple[int, int], tuple[tuple[int, int, int], ...]], ...],
                         tuple[tuple[int, int], ...]]


class _Program:
    """The transfers in program order (shared by both engines: what is issued when, with
    which waits; never when anything starts). ``emit(kind, s, e, req, waits, ports,
    cycles)`` receives each; ``waits`` are keys ``("ready"|"wb", stream, event)``, or
    ``("part", stream, event, k, n)`` for the k-th of n pieces of a tile."""

    def __init__(self, ss: tuple[Stream, ...], emit: Callable[..., None]) -> None:
        self.ss = ss
        self.emit = emit
        self.issued: set[tuple[int, int]] = set()
        self.latest: dict[int, int] = {}         # stream -> the last tile whose load was issued
        self.deferred: dict[tuple[int, int], list[tuple[int, int, int]]] = {}   # parent event -> loads waiting
        n = len(ss)
        self.load_order = sorted(range(n), key=lambda i: (-ss[i].child, OPERANDS.index(ss[i].operand)))
        self.store_order = sorted((i for i in range(n) if ss[i].operand == "output"), key=lambda i: ss[i].child)
        rank = {s: k for k, s in enumerate(self.load_order)}
        self.shortest = sorted(range(n), key=lambda i: (ss[i].load_cycles, rank[i]))
        # refills that follow the reads below them: issued after those reads, bottom-up
        self.trailing = sorted((i for i in range(n) if ss[i].trail is not None), key=lambda i: (ss[i].child, i))
        self.plain = [i for i in self.shortest if ss[i].trail is None]

    def load(self, s: int, e: int, req: int) -> None:
        st = self.ss[s]
        waits: list[_Wait] = []
        if st.up is not None:
            pe = e * st.period // self.ss[st.up].period
            if (st.up, pe) not in self.issued:
                self.deferred.setdefault((st.up, pe), []).append((s, e, req))
                return
            waits.append(("part", st.up, pe) + st.part(e))
        if st.trail is not None:        # it overwrites words no longer needed: it starts once their reads have
            re = st.trailed(e, self.ss[st.trail].period)
            if self.latest.get(st.trail, -1) < re:
                self.deferred.setdefault((st.trail, re), []).append((s, e, req))
                return
            if (st.trail, re) in self.issued:       # (else two loads back: started before this one is issued)
                waits.append(("began", st.trail, re))
        kind = "load"
        if st.operand == "output":
            k = e - (2 if st.double else 1)
            if k >= 0:
                waits.append(("wb", s, k))
            if not st.seen_before(e):
                kind = "alloc"
        self.issued.add((s, e))
        self.issued.discard((s, e - 2))          # nothing waits on an event two tiles back
        self.latest[s] = e
        if kind == "alloc" or not st.load_cycles:
            self.emit("alloc", s, e, req, waits, (), 0)
        else:
            self.emit("load", s, e, req, waits, st.load_ports, st.load_cycles)
        for x in self.deferred.pop((s, e), ()):
            self.load(*x)

    def store(self, s: int, e: int, req: int) -> None:
        st = self.ss[s]
        waits: list[_Wait] = []
        if st.down is not None:
            d = self.ss[st.down]
            waits.append(("wb", st.down, (e + 1) * st.period // d.period - 1))
        if st.up is not None:
            waits.append(("ready", st.up, e * st.period // self.ss[st.up].period))
        if st.store_cycles:
            self.emit("wb", s, e, req, waits, st.store_ports, st.store_cycles)
        else:
            self.emit("wbnone", s, e, req, waits, (), 0)

    # Loads issued at one point go shortest first (the controller's DMA policy; ties in
    # stream order), so that a small tile the array needs whole is not queued behind a
    # large one it uses a piece at a time.

    def start(self) -> None:
        for s in self.shortest:
            self.load(s, 0, 0)
        for s in self.trailing:         # refills whose issue point comes before the first iteration
            st = self.ss[s]
            e = 1
            while e < st.events and e * st.period - st.lead - st.at_end < 0:
                self.load(s, e, 0)
                e += 1

    def _next(self, s: int, i: int) -> int:
        """The tile whose load stream ``s`` issues at iteration ``i`` (at its start; at its end where
        ``at_end``, ``i`` then the next iteration), or 0 for none."""
        st = self.ss[s]
        if (i + st.lead) % st.period:
            return 0
        e = (i + st.lead) // st.period
        return e if 1 <= e < st.events else 0

    def needs(self, i: int) -> list[tuple[str, int, int]]:
        """The tiles iteration ``i`` waits for: the new ones in the array's registers."""
        return [("ready", s, i // st.period) for s, st in enumerate(self.ss) if st.child < 0 and i % st.period == 0]

    def began(self, i: int, t: int) -> None:
        """Iteration ``i`` ran at cycle ``t``: its start's issues."""
        for group in (self.plain, self.trailing):
            for s in group:
                if not self.ss[s].at_end:
                    e = self._next(s, i)
                    if e:
                        self.load(s, e, t)

    def ended(self, i: int, t: int) -> None:
        """Iteration ``i`` ran at cycle ``t``: its end's issues, requested at ``t + 1``."""
        for s in self.store_order:
            st = self.ss[s]
            if (i + 1) % st.period == 0:
                self.store(s, i // st.period, t + 1)
        for group in (self.plain, self.trailing):
            for s in group:
                if self.ss[s].at_end:
                    e = self._next(s, i + 1)
                    if e:
                        self.load(s, e, t + 1)


def _value(w: _Wait, known: dict[_EventKey, int], started: dict[_EventKey, int]) -> int | None:
    """The cycle a wait is over: a tile in place, a write-back arrived, or (``part``) the
    k-th of n sub-tiles of a tile that arrives progressively; None while unknown."""
    if len(w) == 3:                   # ("ready"|"wb", stream, event); a "part" wait has five fields
        if w[0] == "began":           # the start of a load
            key = ("ready", w[1], w[2])
            return started[key] if key in known else None
        return known.get(w)
    _, s, e, k, n = w
    key = ("ready", s, e)
    if key not in known:
        return None
    st = started[key]
    return st + -(-(known[key] - st) * (k + 1) // n)


def schedule(ss: tuple[Stream, ...], iters: int, jump: bool = True,
             deadline: Callable[[], None] | None = None) -> StepTiming:
    """Fast engine: each transfer's start is the latest of its request, its waits and its
    ports' free cycles, in program order; iterations between two event boundaries run back
    to back and are stepped over.

    Windows of iterations (``_windows``: several sizes, the longest tried first) repeat:
    when the state at a window's start, relative to it (``_normal``: less what the windows
    cannot touch), equals the state at the start of the window before, and the windows ahead
    issue the same program (``_window_key``), each of them is the last one shifted in time
    (the rules are deterministic and shift invariant, and a time at or before the window's
    first cycle can delay nothing in it), so they are added in one step (exact; ``jump=False``
    walks every window, and tests check both against ``schedule_cycles``). ``deadline``, if
    given, is called every few thousand blocks (it raises to stop a run past a time
    limit)."""
    free: dict[str, int] = {}
    known: dict[tuple[str, int, int], int] = {}
    started: dict[tuple[str, int, int], int] = {}
    count = [0]
    last = [0]                                # the latest write-back arrival

    def emit(kind: str, s: int, e: int, req: int, waits: list[_Wait], ports: _Ports, cycles: int) -> None:
        start = req
        for w in waits:
            v = _value(w, known, started)
            assert v is not None, w
            if v > start:
                start = v
        for p, _ in ports:
            v = free.get(p, 0)
            if v > start:
                start = v
        end = start + cycles
        for p, c in ports:
            free[p] = start + c
        key = ("wb" if kind in ("wb", "wbnone") else "ready", s, e)
        known[key], started[key] = end, start
        old = (key[0], s, e - 3)              # nothing waits on a tile three back: bounded memory
        known.pop(old, None)
        started.pop(old, None)
        if key[0] == "wb" and end > last[0]:
            last[0] = end
        count[0] += 1

    prog = _Program(ss, emit)
    prog.start()
    step = min(st.period for st in ss)
    wins = _windows(ss, iters, step) if jump else []
    blocks = 0
    t = -1
    stall = 0
    # window size -> ((window key, state), cycle, stalls, transfers) at the last boundary
    prev: dict[int, tuple[tuple[_WindowKey, _State | None], int, int, int]] = {}
    i0 = 0
    while i0 < iters:
        jumped = False
        for win in wins:                  # the longest windows first
            if i0 % win:
                continue
            w, n = i0 // win, iters // win
            key = _window_key(ss, win, w, n)
            floor = t + 1
            p = prev.get(win)
            # the state matters only where the window before or the one after has the same key, and
            # while a longer stream's tile is still arriving it matches neither (its time stays, the floor moves)
            keep = ((p is not None and p[0][0] == key) or (w + 1 < n and _window_key(ss, win, w + 1, n) == key)) \
                and _settled(ss, win, w, floor, known)
            now = (key, _normal(ss, win, w, floor, known, started, free, prog) if keep else None)
            if keep and p is not None and p[0] == now:
                k = 1
                while w + k < n and _window_key(ss, win, w + k, n) == key:
                    k += 1
                # windows w .. w + k - 1 repeat window w - 1, each `delta` cycles later
                delta = t - p[1]
                _shift(ss, win, k, k * delta, floor, known, started, free, prog)
                stall += k * (stall - p[2])
                count[0] += k * (count[0] - p[3])
                t += k * delta
                last[0] = max([last[0]] + [v for (typ, _, _), v in known.items() if typ == "wb"])
                i0 += k * win
                # the longer windows' states stand where the jump stays inside their current window
                prev = {x: q for x, q in prev.items() if x > win and (i0 - 1) // x == (i0 - k * win) // x}
                jumped = True
                break
            prev[win] = (now, t, stall, count[0])
        if jumped:
            continue
        blocks += 1
        if deadline is not None and blocks % 4096 == 0:     # policy: a check every few milliseconds
            deadline()                    # raises past the caller's time limit
        ready = t + 1
        for need in prog.needs(i0):
            v = known[need]
            if v > ready:
                ready = v
        stall += ready - (t + 1)
        t = ready
        prog.began(i0, t)
        t += step - 1                  # the block's other iterations: no tile changes inside it
        prog.ended(i0 + step - 1, t)
        i0 += step
    cycles = max(t + 1, last[0])
    return StepTiming(cycles, iters, stall, cycles - (t + 1), count[0])


def _windows(ss: tuple[Stream, ...], iters: int, step: int) -> list[int]:
    """Window sizes for the jumps, longest first: every loop stride the streams show (their
    periods and the strides of the loops that pick or revisit their tiles; each a multiple of
    every shorter one, so a window holds whole tiles of the streams inside it) of at least 8
    blocks with at least 4 windows in the op (shorter windows would cost more to compare than
    to walk). Not only periods: where the loops above a tile change what is read back, or a
    tile is longer than the op has windows, the program repeats over a stride no stream has."""
    sizes = {st.period for st in ss}
    for st in ss:
        for s, f in st.within + st.revisit:
            sizes.update((s, s * f))
    return sorted((w for w in sizes if w % step == 0 and w >= 8 * step and iters // w >= 4 and iters % w == 0),
                  reverse=True)


def _window_key(ss: tuple[Stream, ...], win: int, w: int, windows: int) -> _WindowKey:
    """What the program issues in window ``w`` that differs between windows: the tile
    boundaries of the streams longer than a window, how far the next one is where a load
    issued ahead in the window (``reach``: the longest lead of the streams inside it) serves
    a tile past it, the partial-sum read-backs that the loops outside the window decide (for
    its tiles and for the next window's first, which it loads ahead), where in it the longer
    streams issue their next loads, and the last windows (no next tiles: those within
    ``reach`` of the end differ)."""
    i, j = w * win, (w + 1) * win
    reach = max((st.lead + st.at_end for st in ss if st.period <= win), default=0)
    out: list[bool | int | tuple[bool, bool]] = [w == windows - 1, min(0, windows * win - j - reach)]
    for st in ss:
        if st.period > win:
            out.append((i % st.period == 0, j % st.period == 0))
            nxt = -j % st.period
            out.append(nxt if nxt < reach else -1)
            off = (-st.lead - i) % st.period
            out.append(off if off <= win else -1)
        elif st.operand == "output":            # this window's tiles and the next one's, loaded ahead
            out.append((any((i // s) % f for s, f in st.revisit if s >= win),
                        any((j // s) % f for s, f in st.revisit if s >= win)))
    return tuple(out)


def _settled(ss: tuple[Stream, ...], win: int, w: int, floor: int, known: dict[_EventKey, int]) -> bool:
    """Whether the current tile of every stream longer than a window is in place by ``floor``
    (else this window's state can match neither the one before nor the one after)."""
    for s, st in enumerate(ss):
        if st.period > win:
            e = w * win // st.period
            if known.get(("ready", s, e), floor) > floor or known.get(("wb", s, e), floor) > floor:
                return False
    return True


def _inside(ss: tuple[Stream, ...], win: int) -> tuple[list[bool], set[str]]:
    """The streams whose tiles change inside a window (period at most ``win``) and the ports
    their transfers take: all a run of equal windows moves (see ``_normal``)."""
    short = [st.period <= win for st in ss]
    ports = {p for st, x in zip(ss, short) if x for p, _ in st.load_ports + st.store_ports}
    return short, ports


def _normal(ss: tuple[Stream, ...], win: int, w: int, floor: int, known: dict[_EventKey, int],
            started: dict[_EventKey, int], free: dict[str, int], prog: _Program) -> _State:
    """The engine's state at the start of window ``w``, relative to it: every time after
    ``floor`` (the first cycle anything in the window can happen) as an offset, every time
    at or before it as 0 (it can no longer delay anything), events relative to each
    stream's current one. Left out, as nothing in a run of equal windows reads or writes
    them (and a jump leaves them as they are, ``_shift``): the tiles of the streams longer
    than a window other than their current one (a refill or write-back in flight across the
    run; the key keeps out of a run a window whose loads ahead reach the next tile) and the
    ports only those streams take. Without this a slow refill overlapping many windows (a
    single buffer refilled in the last pass) kept every window apart."""
    cur = [w * win // st.period for st in ss]
    short, used = _inside(ss, win)

    def rel(v: int) -> int:
        return v - floor if v > floor else 0

    ks = []
    for (typ, s, e), v in known.items():
        if short[s] or e == cur[s]:
            # a transfer still arriving keeps its exact start (its pieces arrive from it)
            ks.append((typ, s, e - cur[s], rel(v), started[(typ, s, e)] - floor if v > floor else 0))
    ks.sort()
    ports = tuple(sorted((p, rel(v)) for p, v in free.items() if v > floor and p in used))
    issued = tuple(sorted((s, e - cur[s]) for s, e in prog.issued))
    deferred = tuple(sorted(((u, pe - cur[u]), tuple((s, e - cur[s], rel(r)) for s, e, r in items))
                            for (u, pe), items in prog.deferred.items()))
    latest = tuple(sorted((s, e - cur[s]) for s, e in prog.latest.items()))
    return (tuple(ks), ports, issued, deferred, latest)


def _shift(ss: tuple[Stream, ...], win: int, k: int, delta: int, floor: int, known: dict[_EventKey, int],
           started: dict[_EventKey, int], free: dict[str, int], prog: _Program) -> None:
    """Move the state ``k`` windows on: events of the streams inside a window advance by
    their tiles per window, their times and those of the ports they take after ``floor`` by
    ``delta`` (those at or before it stay: they delay nothing); the longer streams' tiles and
    the ports only they take stay as they are (nothing in the windows touches them)."""
    short, used = _inside(ss, win)
    adv = [k * win // st.period if x else 0 for st, x in zip(ss, short)]

    def mv(v: int) -> int:
        return v + delta if v > floor else v

    nk, ns = {}, {}
    for (typ, s, e), v in known.items():
        if not short[s]:
            nk[(typ, s, e)], ns[(typ, s, e)] = v, started[(typ, s, e)]
            continue
        nk[(typ, s, e + adv[s])] = mv(v)
        # a transfer still arriving moves whole, its start too (even one at or before the floor)
        ns[(typ, s, e + adv[s])] = started[(typ, s, e)] + (delta if v > floor else 0)
    known.clear()
    known.update(nk)
    started.clear()
    started.update(ns)
    for p in free:
        if p in used:
            free[p] = mv(free[p])
    prog.issued = {(s, e + adv[s]) for s, e in prog.issued}
    prog.latest = {s: e + adv[s] for s, e in prog.latest.items()}
    prog.deferred = {(u, pe + adv[u]): [(s, e + adv[s], mv(r)) for s, e, r in items]
                     for (u, pe), items in prog.deferred.items()}


def schedule_cycles(ss: tuple[Stream, ...], iters: int) -> StepTiming:
    """Reference engine: every cycle, first the array (the next iteration runs if every tile
    it uses has arrived), then the ports (each issued transfer, in program order, starts if
    its request and waits are past and its ports are free and not claimed by an earlier
    waiting transfer)."""
    known: dict[tuple[str, int, int], int] = {}
    started: dict[tuple[str, int, int], int] = {}
    emitted = [0]
    # (kind, key, req, waits, ports, cycles), in program order
    queue: list[tuple[str, _EventKey, int, list[_Wait], _Ports, int]] = []
    busy: dict[str, int] = {}

    def emit(kind: str, s: int, e: int, req: int, waits: list[_Wait], ports: _Ports, cycles: int) -> None:
        emitted[0] += 1
        queue.append((kind, ("wb" if kind in ("wb", "wbnone") else "ready", s, e), req, list(waits), ports, cycles))

    prog = _Program(ss, emit)
    prog.start()
    i = t = 0
    last_t = -1
    stall = 0
    while True:
        for item in queue:            # port-free items are in place once their waits are known
            vals = [_value(w, known, started) for w in item[3]]
            over = [v for v in vals if v is not None]
            if not item[4] and len(over) == len(vals):       # every wait is known
                known[item[1]] = started[item[1]] = max([item[2]] + over)
        queue[:] = [x for x in queue if x[1] not in known]
        if i < iters:
            needs = prog.needs(i)
            if all(k in known and known[k] <= t for k in needs):
                stall += t - (last_t + 1)
                prog.began(i, t)
                prog.ended(i, t)
                last_t = t
                i += 1
        claimed: set[str] = set()
        for item in queue:
            kind, key, req, waits, ports, cycles = item
            if not ports:
                continue
            vals = [_value(w, known, started) for w in waits]
            names = [p for p, _ in ports]
            ok = req <= t and all(v is not None and v <= t for v in vals) and \
                all(busy.get(p, 0) <= t for p in names) and not claimed.intersection(names)
            if ok:
                for p, c in ports:
                    busy[p] = t + c
                known[key], started[key] = t + cycles, t
            else:
                claimed.update(names)
        queue[:] = [x for x in queue if x[1] not in known]
        if i == iters and not queue:
            break
        t += 1
    last = max((v for (k, _, _), v in known.items() if k == "wb"), default=0)
    cycles = max(last_t + 1, last)
    return StepTiming(cycles, iters, stall, cycles - (last_t + 1), emitted[0])

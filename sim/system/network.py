"""Transfers over a system's links, as events (simpy; the unit of time is a microsecond).

Every device has an up and a down port into its node's switch and, across nodes, reaches the
network through an up and a down port of its NIC (``System.nic_of``: one per device unless
``nics_per_node`` says fewer, which the node's devices then share); on a torus, a link to each neighbour in each
direction. A transfer waits its fabric's latency (per hop on a torus), then moves its bytes
along its path; transfers that share a link share its bandwidth max-min fairly (the
fluid model of congestion-controlled networks: every flow gets an equal share of its
bottleneck, and what a flow cannot use goes to the others). Rates are recomputed whenever a
transfer starts or ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator, TypeAlias

import simpy

from .topology import System

__all__ = ["ProcessBody", "Span", "Network"]

ProcessBody: TypeAlias = Generator[simpy.Event, object, None]     # what a simpy process runs

_EPS = 1e-9


@dataclass(eq=False)
class _Flow:
    path: tuple[str, ...]
    remaining: float
    done: simpy.Event
    rate: float = 0.0
    tag: str = ""


@dataclass
class Span:
    """A transfer as it happened (for timelines)."""

    src: int
    dst: int
    nbytes: float
    start_us: float
    end_us: float
    tag: str = ""


class Network:
    def __init__(self, env: simpy.Environment, system: System, record: bool = False):
        self.env, self.sys = env, system
        self.capacity: dict[str, float] = {}
        self.flows: set[_Flow] = set()
        self.t_last = 0.0
        self.generation = 0
        self.pending = False                 # a rate update is queued for this instant
        self.spans: list[Span] | None = [] if record else None
        if system.intra.kind == "torus2d":
            self.shape = system.torus_shape()

    # ---- paths ---------------------------------------------------------------------------
    def _link(self, name: str, bytes_per_us: float) -> str:
        self.capacity.setdefault(name, bytes_per_us)
        return name

    def route(self, src: int, dst: int) -> tuple[tuple[str, ...], float]:
        """(links a transfer crosses, its latency in us)."""
        s = self.sys
        if s.intra.kind == "torus2d":
            X, Y = self.shape
            bw = s.intra.bytes_per_us
            (x, y), (tx, ty) = divmod(src, Y), divmod(dst, Y)
            links = []
            for axis, size in ((0, X), (1, Y)):                   # dimension order: X, then Y
                cur, tgt = (x, tx) if axis == 0 else (y, ty)
                fwd = (tgt - cur) % size
                step = 1 if fwd <= size - fwd else -1              # the shorter way round
                while cur != tgt:
                    nxt = (cur + step) % size
                    a, b = ((cur, y), (nxt, y)) if axis == 0 else ((x, cur), (x, nxt))
                    links.append(self._link(f"ici{a}->{b}", bw))
                    cur = nxt
                if axis == 0:
                    x = tx
            return tuple(links), s.intra.latency_us * max(1, len(links))
        if s.node_of(src) == s.node_of(dst):
            bw = s.intra.bytes_per_us
            return (self._link(f"up{src}", bw), self._link(f"down{dst}", bw)), s.intra.latency_us
        assert s.inter is not None
        bw = s.inter.bytes_per_us
        (na, i), (nb, j) = s.nic_of(src), s.nic_of(dst)
        return (self._link(f"nic_up{na}.{i}", bw), self._link(f"nic_down{nb}.{j}", bw)), s.inter.latency_us

    # ---- transfers ---------------------------------------------------------------------------
    def transfer(self, src: int, dst: int, nbytes: float, tag: str = "") -> simpy.Event:
        """An event that fires when ``nbytes`` have gone from ``src`` to ``dst``."""
        done = self.env.event()
        if src == dst or nbytes <= 0:
            done.succeed()
            return done
        self.env.process(self._transfer(src, dst, nbytes, done, tag))
        return done

    def _transfer(self, src: int, dst: int, nbytes: float, done: simpy.Event, tag: str) -> ProcessBody:
        path, latency = self.route(src, dst)
        start = self.env.now
        yield self.env.timeout(latency)
        arrived = self.env.event()
        self._advance()
        self.flows.add(_Flow(path, float(nbytes), arrived, tag=tag))
        self._soon()
        yield arrived
        if self.spans is not None:
            self.spans.append(Span(src, dst, nbytes, start, self.env.now, tag))
        done.succeed()

    def _advance(self) -> None:
        dt = self.env.now - self.t_last
        if dt > 0:
            for f in self.flows:
                f.remaining -= f.rate * dt
        self.t_last = self.env.now

    def _rates(self) -> None:
        """Max-min fair rates by progressive filling."""
        cap = dict(self.capacity)
        active = set(self.flows)
        for f in active:
            f.rate = 0.0
        users: dict[str, set[_Flow]] = {}
        for f in active:
            for link in f.path:
                users.setdefault(link, set()).add(f)
        while active:
            share = min(cap[lk] / len(us) for lk, us in users.items() if us)
            for lk in [lk for lk, us in users.items() if us and cap[lk] / len(us) <= share * (1 + 1e-12)]:
                for f in list(users[lk]):           # every link at the bottleneck share at once
                    if f not in active:
                        continue
                    f.rate = share
                    active.discard(f)
                    for other in f.path:
                        cap[other] -= share
                        users[other].discard(f)

    def _soon(self) -> None:
        """Recompute rates once all transfers starting at this instant have joined."""
        if not self.pending:
            self.pending = True
            self.env.process(self._batch())

    def _batch(self) -> ProcessBody:
        yield self.env.timeout(0)
        self.pending = False
        self._advance()
        self._reschedule()

    def _reschedule(self) -> None:
        self._rates()
        self.generation += 1
        if self.flows:
            dt = min(f.remaining / f.rate for f in self.flows)
            self.env.process(self._wake(max(dt, 0.0), self.generation))

    def _wake(self, dt: float, gen: int) -> ProcessBody:
        yield self.env.timeout(dt)
        if gen != self.generation:
            return                                    # rates changed since: a newer wake-up is due
        self._advance()
        for f in [f for f in self.flows if f.remaining <= _EPS * max(1.0, f.rate)]:
            self.flows.discard(f)
            f.done.succeed()
        self._reschedule()

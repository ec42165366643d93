"""Collective communication as the transfers it makes, on a :class:`Network`.

Each collective is a simpy process over a group of devices; its time comes from the
transfers (latency, bandwidth, sharing), not from a formula. The algorithms are the
textbook ones (Thakur, Rabenseifner and Gropp, IJHPCA 2005; Patarasuk and Yuan, JPDC 2009;
Sanders, Speck and Traeff, Parallel Computing 2009, for the double binary tree):

* ``ring_allreduce``: a reduce-scatter and an all-gather around a ring, 2(n-1) steps of
  S/n bytes per device: 2 (n-1)/n S/B + 2 (n-1) a on a non-blocking fabric. Across nodes
  with several of the group's devices and NICs each, k rings at once, one per NIC, each with
  S/k (``ring_channels``: NCCL's channels), so the network part of the bus bandwidth is k
  NICs' rate, as far as the intra-node fabric carries the k rings;
* ``reduce_scatter``, ``all_gather``: one half of that each (on the same rings);
* ``tree_allreduce``: two binary trees (each device interior in at most one), each carrying
  half the data, reduced up and broadcast down in pipelined chunks: about 2 log2(n) a +
  2 S/B for many chunks;
* ``all_to_all``: every device sends S/n to every other at once;
* ``p2p``: one transfer;
* ``hierarchical_allreduce``: reduce-scatter inside each node, all-reduce across nodes of
  the shards (every local rank on its own NIC, in parallel), all-gather inside each node,
  the three phases one after the other: the network idles during the intra-node phases,
  where the rings of ``ring_allreduce`` keep NVLink and the NICs busy at once.

S is the bytes each device contributes (the buffer size).

The ring algorithms take ``exact``: with ``exact=False`` a ring simulates its first step
and repeats that step's time for the others. Alone on the network every step of a ring
is the same transfers on an idle network, so the two agree (``tests/test_system.py``
checks it on every preset); sharing the network with other traffic needs ``exact=True``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import simpy

from workloads.errors import HwsimError

from .network import Network, ProcessBody
from .topology import System

__all__ = [
    "ALGORITHMS", "ring_channels", "ring_allreduce", "reduce_scatter", "all_gather", "all_to_all", "p2p", "TREE_CHUNKS",
    "tree_allreduce", "hierarchical_allreduce", "ALLREDUCE", "time_us", "allreduce_us",
]

ALGORITHMS = ("ring", "tree", "hierarchical")


def _step(net: Network, pairs: Sequence[tuple[int, int]], nbytes: float, tag: str) -> simpy.Event:
    return simpy.AllOf(net.env, [net.transfer(a, b, nbytes, tag) for a, b in pairs])


def ring_channels(sys: System, group: Sequence[int]) -> list[list[int]]:
    """The rings (NCCL's channels) a ring collective over ``group`` runs at once, each carrying
    an equal share of the data.

    Inside one node, or where some node holds one device of the group (a rail: every hop
    crosses the network), or the nodes hold different numbers of them: one ring, in the
    group's order. Across nodes that each hold m > 1 of the group's devices on k > 1 distinct
    NICs: k rings, one per NIC, as NCCL builds them (S. Jeaugey, NVIDIA/nccl issue 412: one
    ring per NIC, so that the rings' network hops use every NIC at once). Ring c goes through
    the m devices of each node in turn on the intra-node fabric and crosses to the next node
    from its device L[r] (r = c m / k, the first device on NIC c) to the same local rank of the
    next node (the same rail), which runs through its m devices the other way round and
    leaves from L[r + 1] to L[r + 1] of the next: every NIC carries one ring out and one in
    (the two ends of a node's chain may share a NIC, in its two directions). The rings share
    the links as the network says: a ring's step is as slow as its slowest hop, the NIC
    (S / (k n) at the NIC's rate) unless the k - 1 or k rings sharing a device's
    intra-node port are slower."""
    if sys.intra.kind == "torus2d":
        return [list(group)]
    by_node: dict[int, list[int]] = {}
    for d in group:
        by_node.setdefault(sys.node_of(d), []).append(d)
    locals_ = list(by_node.values())
    m = len(locals_[0])
    if len(locals_) < 2 or m < 2 or any(len(x) != m for x in locals_):
        return [list(group)]
    k = min(len({sys.nic_of(d) for d in x}) for x in locals_)
    if k < 2:
        return [list(group)]
    rings = []
    for c in range(k):
        r = c * m // k
        order: list[int] = []
        for i, x in enumerate(locals_):
            fwd = x[r + 1:] + x[:r + 1]               # enters at x[r + 1], leaves from x[r]
            order += fwd if i % 2 == 0 else fwd[::-1]  # enters at x[r], leaves from x[r + 1]
        rings.append(order)
    return rings


def _ring(net: Network, group: Sequence[int], nbytes: float, steps: int, tag: str, exact: bool) -> ProcessBody:
    """``steps`` steps of every device sending ``nbytes / n`` to the next around the ring,
    split over the rings of :func:`ring_channels` (k rings: nbytes / (k n) each)."""
    n = len(group)
    if n < 2 or steps < 1:
        return
    rings = ring_channels(net.sys, group)
    pairs = [(ring[i], ring[(i + 1) % n]) for ring in rings for i in range(n)]
    chunk = nbytes / n / len(rings)
    t0 = net.env.now
    yield _step(net, pairs, chunk, tag)
    if exact:
        for _ in range(steps - 1):
            yield _step(net, pairs, chunk, tag)
    else:
        yield net.env.timeout((steps - 1) * (net.env.now - t0))


def ring_allreduce(net: Network, group: Sequence[int], nbytes: float, tag: str = "allreduce",
                   exact: bool = True) -> ProcessBody:
    yield from _ring(net, group, nbytes, 2 * (len(group) - 1), tag, exact)


def reduce_scatter(net: Network, group: Sequence[int], nbytes: float, tag: str = "reduce_scatter",
                   exact: bool = True) -> ProcessBody:
    yield from _ring(net, group, nbytes, len(group) - 1, tag, exact)


def all_gather(net: Network, group: Sequence[int], nbytes: float, tag: str = "all_gather",
               exact: bool = True) -> ProcessBody:
    """``nbytes`` is the gathered size on each device (each contributes nbytes / n)."""
    yield from _ring(net, group, nbytes, len(group) - 1, tag, exact)


def all_to_all(net: Network, group: Sequence[int], nbytes: float, tag: str = "all_to_all") -> ProcessBody:
    n = len(group)
    pairs = [(a, b) for a in group for b in group if a != b]
    yield _step(net, pairs, nbytes / n, tag)


def p2p(net: Network, src: int, dst: int, nbytes: float, tag: str = "p2p") -> ProcessBody:
    yield net.transfer(src, dst, nbytes, tag)


def _btree(n: int) -> list[int]:
    """Parent of each rank in NCCL's binary tree (``ncclGetBtree``): a rank's lowest set bit
    decides its level, odd ranks are leaves, rank 0 is the root (-1)."""
    parent = [-1] * n
    for r in range(1, n):
        bit = r & -r
        up = (r ^ bit) | (bit << 1)
        parent[r] = up if up < n else r ^ bit
    return parent


TREE_CHUNKS = 64   # assumption (fitted to nothing): pipelined chunks per tree (NCCL sizes its chunks by message size)


def tree_allreduce(net: Network, group: Sequence[int], nbytes: float, chunks: int = TREE_CHUNKS,
                   tag: str = "allreduce") -> ProcessBody:
    n = len(group)
    if n < 2:
        return
    env = net.env
    base = _btree(n)
    # the second tree mirrors the first (rank r as n-1-r; shifted by one for odd n): its
    # leaves are the first tree's interior ranks (NCCL's double binary tree)
    mirror = [(n - 1 - r) if n % 2 == 0 else (r + 1) % n for r in range(n)]
    second = [-1] * n
    for r, par in enumerate(base):
        second[mirror[r]] = -1 if par < 0 else mirror[par]
    trees = [base, second]
    half = nbytes / 2
    c = max(1, chunks)

    def run(parent: list[int]) -> ProcessBody:
        kids: dict[int, list[int]] = {i: [] for i in range(n)}
        for i, p in enumerate(parent):
            if p >= 0:
                kids[p].append(i)
        up = {(i, k): env.event() for i in range(n) for k in range(c)}    # chunk k of node i reduced
        down = {(i, k): env.event() for i in range(n) for k in range(c)}  # chunk k reached node i

        def reduce(i: int) -> ProcessBody:          # chunk by chunk: the children's partial sums, then up
            for k in range(c):
                yield simpy.AllOf(env, [up[(j, k)] for j in kids[i]])
                if parent[i] >= 0:
                    yield net.transfer(group[i], group[parent[i]], half / c, tag)
                up[(i, k)].succeed()

        def broadcast(i: int) -> ProcessBody:       # a chunk goes down as soon as it is reduced (pipelined)
            for k in range(c):
                if parent[i] < 0:
                    yield up[(i, k)]
                else:
                    yield down[(parent[i], k)]
                    yield net.transfer(group[parent[i]], group[i], half / c, tag)
                down[(i, k)].succeed()
        procs = [env.process(f(i)) for i in range(n) for f in (reduce, broadcast)]
        yield simpy.AllOf(env, procs)
    yield simpy.AllOf(env, [env.process(run(t)) for t in trees])


def hierarchical_allreduce(net: Network, group: Sequence[int], nbytes: float, tag: str = "allreduce",
                           exact: bool = True) -> ProcessBody:
    sys = net.sys
    by_node: dict[int, list[int]] = {}
    for d in group:
        by_node.setdefault(sys.node_of(d), []).append(d)
    locals_ = list(by_node.values())
    g = len(locals_[0])
    if len(locals_) == 1 or any(len(x) != g for x in locals_):
        yield from ring_allreduce(net, group, nbytes, tag, exact)
        return
    env = net.env
    yield simpy.AllOf(env, [env.process(reduce_scatter(net, x, nbytes, tag, exact)) for x in locals_])
    rails = [[x[i] for x in locals_] for i in range(g)]       # local rank i of every node
    yield simpy.AllOf(env, [env.process(ring_allreduce(net, r, nbytes / g, tag, exact)) for r in rails])
    yield simpy.AllOf(env, [env.process(all_gather(net, x, nbytes, tag, exact)) for x in locals_])


ALLREDUCE: dict[str, Callable[..., ProcessBody]] = {
    "ring": ring_allreduce, "tree": tree_allreduce, "hierarchical": hierarchical_allreduce,
}


def time_us(system: System, run: Callable[[Network], ProcessBody]) -> float:
    """The time a collective takes alone on ``system``."""
    env = simpy.Environment()
    net = Network(env, system)
    env.process(run(net))
    env.run()
    return env.now


def allreduce_us(system: System, group: Sequence[int], nbytes: float, algorithm: str = "ring") -> float:
    if algorithm not in ALLREDUCE:
        raise HwsimError(f"unknown all-reduce algorithm {algorithm!r}; one of {', '.join(ALLREDUCE)}")
    if len(group) < 2 or nbytes <= 0:
        return 0.0
    return time_us(system, lambda net: ALLREDUCE[algorithm](net, group, nbytes))


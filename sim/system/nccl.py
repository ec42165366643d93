"""NCCL's own performance model: each collective's latency by algorithm and protocol, and the
(algorithm, protocol) NCCL picks for a message size as the one its model says is fastest.

The tables and formulas are NCCL 2.9.6's (NVIDIA/nccl, tag v2.9.6-1, 2021-04-12,
``src/graph/tuning.cc``: ``ncclTopoTuneModel`` and ``ncclTopoGetAlgoTime``; the NCCL of the
spring-2021 runs that ``validation/data/train.csv``'s Narayanan et al. rows measured). A
collective over n ranks on N nodes takes ``lat + nBytes / algBw``:

* ring: ``baseLat + (nsteps - nInter) intraLat + nInter interLat`` with nsteps = 2(n-1)
  for an all-reduce and n-1 for an all-gather or a reduce-scatter, nInter the same over the
  N nodes (2(N-1), N-1): one hop's latency per step; an all-reduce of Simple across nodes
  pays 1.9x (NCCL's "plateau effect of ring") once nBytes >= n/16 x 64 KiB;
* tree (all-reduce only): ``baseLat + 2 ((n/N - 1) intraLat + log2(N) interLat)``;
* nBytes is the whole buffer (an all-gather's or a reduce-scatter's count times n:
  ``src/misc/argcheck.cc``);
* algBw is the bus bandwidth times n / nsteps (ring) or 1/2 (tree), the bus bandwidth
  lowered per protocol: ring LL to a quarter (a third on one node, not for an all-reduce)
  capped at ``llMaxBw``, ring LL128 to 0.92 (0.7 with one rank per node), tree to 0.92 and
  then LL to 1/3.8 (capped), LL128 to 7/9 on one node or 0.915; trees below 256 MB also by
  NCCL's ``treeCorrectionFactor``.

The bus bandwidth NCCL starts from is its topology search's channels x speed. Here it is the
achieved bus bandwidth of hwsim's simulated Simple rings on the system's links (one ring per
NIC, ``sim.system.collectives``), which the ``fit`` rows of ``collectives.csv`` set; the tree
is taken to find the same (an assumption: both searches reach NCCL's per-channel speed on a
DGX). Left out, as they need NCCL's channel count: the per-channel caps of LL128
(``ll128MaxBwPerCh``) and of trees (``perChMaxTreeBws``), and the 235 GB/s cap of Ampere
(above any achieved rate here). LL128 is on where NCCL 2.9.6 turns it on, Volta and Ampere
over NVLink, and Hopper as NCCL 2.18 does (``tuning.cc`` of v2.18.1-1); CollNet (SHARP) is not
modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ALGORITHMS", "PROTOCOLS", "BASE_LAT_US", "HW_LAT_US", "LL_MAX_BW_GBS", "TREE_CORRECTION",
           "LL128_GENERATIONS", "Choice", "latency_us", "bandwidth_gbs", "candidates", "tuned"]

ALGORITHMS = ("tree", "ring")
PROTOCOLS = ("LL", "LL128", "Simple")
COLLECTIVES = ("allreduce", "all_gather", "reduce_scatter")

# NCCL 2.9.6 src/graph/tuning.cc: baseLat[algorithm][protocol], us
BASE_LAT_US = {"tree": (4.4, 4.4, 0.0), "ring": (3.6, 10.0, 8.4)}
# hwLat[NVLink | network][algorithm][protocol], us per step (a hop)
HW_LAT_US = {
    "nvlink": {"tree": (0.52, 1.25, 28.0), "ring": (0.47, 1.9, 3.4)},
    "net": {"tree": (5.0, 8.5, 28.0), "ring": (2.7, 4.0, 9.6)},
}
# llMaxBws[index1][index2], GB/s: index1 the GPU (Volta 0, Ampere 1) on one node, else the
# CPU (Intel 0, AMD 1); index2 one node, two, more
LL_MAX_BW_GBS = ((39.0, 39.0, 20.4), (87.7, 22.5, 19.0))
# treeCorrectionFactor[protocol][log2(nBytes / 64)], 64 B to 256 MB
TREE_CORRECTION = (
    (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .5, .6, .6, .7, .7, .8, .9, .9, .92, .92),
    (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9),
)
LL128_GENERATIONS = ("volta", "ampere", "hopper")


def _log2i(x: int) -> int:
    """NCCL's log2i: the floor of log2 (0 for x < 2)."""
    return max(0, int(x).bit_length() - 1)


def _steps(coll: str, n: int, nodes: int) -> tuple[int, int]:
    if coll == "allreduce":
        return 2 * (n - 1), 2 * (nodes - 1)
    return n - 1, nodes - 1


def latency_us(coll: str, algorithm: str, protocol: str, n: int, nodes: int) -> float:
    """``comm->latencies[coll][algorithm][protocol]`` of NCCL 2.9.6 for n ranks on ``nodes``
    nodes joined by NVLink inside (the plateau factor is applied in :func:`candidates`)."""
    p = PROTOCOLS.index(protocol)
    intra = HW_LAT_US["nvlink"][algorithm][p] * (1.8 if nodes > 1 and protocol == "LL" else 1.0)
    inter = HW_LAT_US["net"][algorithm][p]
    base = BASE_LAT_US[algorithm][p]
    if algorithm == "ring":
        steps, inter_steps = _steps(coll, n, nodes)
        return base + (steps - inter_steps) * intra + inter_steps * inter
    return base + 2 * ((n // nodes - 1) * intra + _log2i(nodes) * inter)


def bandwidth_gbs(coll: str, algorithm: str, protocol: str, n: int, nodes: int, busbw_gbs: float,
                  ampere: bool, amd: bool) -> float:
    """NCCL 2.9.6's algorithm bandwidth (GB/s) from a bus bandwidth (``busbw_gbs``): the
    protocol's refinements, then bus to algorithm bandwidth."""
    i2 = min(nodes, 3) - 1
    ll_max = LL_MAX_BW_GBS[int(ampere) if nodes == 1 else int(amd)][i2]
    bus = busbw_gbs
    if algorithm == "ring":
        if protocol == "LL":
            bus = min(ll_max, bus * (1 / 4 if nodes > 1 or coll == "allreduce" else 1 / 3))
        elif protocol == "LL128":
            bus = bus * (0.7 if n / nodes < 2 else 0.92)
        steps, _ = _steps(coll, n, nodes)
        return bus * n / steps
    bus *= 0.92
    if protocol == "LL":
        bus = min(bus / 3.8, ll_max)
    elif protocol == "LL128":
        bus *= 7 / 9 if nodes == 1 else 0.915
    return bus * 0.5


@dataclass(frozen=True)
class Choice:
    """One (algorithm, protocol) for a collective and size: NCCL's modelled latency, its
    algorithm bandwidth, and the time ``latency_us + nbytes / bandwidth``."""

    algorithm: str
    protocol: str
    latency_us: float
    bandwidth_gbs: float
    time_us: float


def candidates(coll: str, nbytes: float, n: int, nodes: int, busbw_gbs: float, generation: str = "ampere",
               amd: bool = False) -> list[Choice]:
    """Every (algorithm, protocol) NCCL 2.9.6 would consider, in its loop order (tree before
    ring, LL, LL128, Simple), with its modelled time (``ncclTopoGetAlgoTime``)."""
    if coll not in COLLECTIVES:
        raise ValueError(f"NCCL's model has no collective {coll!r}")
    out = []
    for a in ALGORITHMS:
        if a == "tree" and (coll != "allreduce" or n < 2):
            continue
        for p in PROTOCOLS:
            if p == "LL128" and generation not in LL128_GENERATIONS:
                continue
            lat = latency_us(coll, a, p, n, nodes)
            bw = bandwidth_gbs(coll, a, p, n, nodes, busbw_gbs, generation == "ampere", amd)
            log_size = _log2i(int(nbytes) >> 6)
            if a == "tree" and log_size < 23:
                bw *= TREE_CORRECTION[PROTOCOLS.index(p)][log_size]
            if a == "ring" and p == "Simple" and nodes > 1 and coll == "allreduce" and nbytes >= n / 16 * 65536:
                lat *= 1.9
            out.append(Choice(a, p, lat, bw, lat + nbytes / (1e3 * bw)))
    return out


def tuned(coll: str, nbytes: float, n: int, nodes: int, busbw_gbs: float, generation: str = "ampere",
          amd: bool = False) -> Choice:
    """The (algorithm, protocol) NCCL picks: the first of the least modelled time
    (``getAlgoInfo`` keeps a candidate only if strictly faster)."""
    best = None
    for c in candidates(coll, nbytes, n, nodes, busbw_gbs, generation, amd):
        if best is None or c.time_us < best.time_us:
            best = c
    assert best is not None and math.isfinite(best.time_us)
    return best

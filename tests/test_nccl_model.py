"""NCCL's tuning model (sim.system.nccl) against numbers worked out here by hand from NCCL
2.9.6's src/graph/tuning.cc (NVIDIA/nccl, tag v2.9.6-1): baseLat, hwLat, the protocols'
bandwidth refinements and the least-time choice; and the collective times the training step
uses (sim.system.step.Collectives) built from them."""

from __future__ import annotations

import pytest

from sim.system import nccl
from sim.system.step import Collectives
from sim.system.topology import PRESETS


def test_ring_latency_over_1536_ranks_on_192_nodes_is_milliseconds():
    # an all-gather: n - 1 = 1535 steps, N - 1 = 191 of them across nodes, 1344 on NVLink
    assert nccl.latency_us("all_gather", "ring", "Simple", 1536, 192) == pytest.approx(8.4 + 1344 * 3.4 + 191 * 9.6)
    assert nccl.latency_us("all_gather", "ring", "LL128", 1536, 192) == pytest.approx(10.0 + 1344 * 1.9 + 191 * 4.0)
    # LL's NVLink latency is 1.8x across nodes
    assert nccl.latency_us("all_gather", "ring", "LL", 1536, 192) == pytest.approx(3.6 + 1344 * 0.47 * 1.8 + 191 * 2.7)
    assert nccl.latency_us("all_gather", "ring", "Simple", 1536, 192) == pytest.approx(6411.6)
    # an all-reduce twice the steps: 2 x 1535 and 2 x 191
    assert nccl.latency_us("allreduce", "ring", "Simple", 1536, 192) == pytest.approx(8.4 + 2688 * 3.4 + 382 * 9.6)


def test_tree_latency_is_logarithmic_in_the_nodes():
    # 64 ranks on 8 nodes: 2 ((8 - 1) intra + log2(8) inter)
    assert nccl.latency_us("allreduce", "tree", "Simple", 64, 8) == pytest.approx(2 * (7 * 28 + 3 * 28))
    assert nccl.latency_us("allreduce", "tree", "LL", 64, 8) == pytest.approx(4.4 + 2 * (7 * 0.52 * 1.8 + 3 * 5.0))


def _ag1536(nbytes: float) -> tuple[str, str, float]:
    c = nccl.tuned("all_gather", nbytes, 1536, 192, 192.0, "ampere", amd=True)
    return c.algorithm, c.protocol, c.time_us


@pytest.mark.parametrize("nbytes,protocol", [(1e6, "LL"), (1e8, "LL128"), (1e10, "Simple")])
def test_all_gather_protocol_by_size_over_192_dgx_a100(nbytes, protocol):
    """Bus bandwidth 192 GB/s (8 HDR NICs), AMD hosts, more than two nodes: algorithm
    bandwidths LL min(19.0, 192/4) x 1536/1535, LL128 192 x 0.92 x 1536/1535, Simple 192 x
    1536/1535; with the latencies above LL128 overtakes LL at ~35.6 MB and Simple LL128 at ~3.96 GB."""
    k = 1536 / 1535 * 1e3
    times = {"LL": 1656.324 + nbytes / (19.0 * k), "LL128": 3327.6 + nbytes / (192 * 0.92 * k),
             "Simple": 6411.6 + nbytes / (192 * k)}
    assert min(times, key=times.__getitem__) == protocol
    algo, proto, t = _ag1536(nbytes)
    assert (algo, proto) == ("ring", protocol)
    assert t == pytest.approx(times[protocol], rel=1e-9)


def test_one_node_all_reduce_choices():
    """8 A100s on NVLink at 230 GB/s: ring LL 3.6 + 14 x 0.47 = 10.18 us at min(87.7, 230/4) x
    8/14; tree LL 4.4 + 2 x 7 x 0.52 = 11.68 us at min(230 x 0.92 / 3.8, 87.7) / 2, times 0.7
    (treeCorrectionFactor's LL entry 7: log2(8192 / 64)); ring Simple 8.4 + 14 x 3.4 = 56 us at 230 x 8/14."""
    small = nccl.tuned("allreduce", 8192, 8, 1, 230.0, "ampere")
    assert (small.algorithm, small.protocol) == ("ring", "LL")
    assert small.time_us == pytest.approx(10.18 + 8192 / (57.5 * 8 / 14 * 1e3))
    tree_ll = next(c for c in nccl.candidates("allreduce", 8192, 8, 1, 230.0, "ampere")
                   if (c.algorithm, c.protocol) == ("tree", "LL"))
    assert tree_ll.time_us == pytest.approx(11.68 + 8192 / (230 * 0.92 / 3.8 * 0.5 * 0.7 * 1e3))
    big = nccl.tuned("allreduce", 4294967296, 8, 1, 230.0, "ampere")
    assert (big.algorithm, big.protocol) == ("ring", "Simple")
    assert big.time_us == pytest.approx(56.0 + 4294967296 / (230 * 8 / 14 * 1e3))


def test_ll128_only_where_nccl_enables_it():
    gens = {c.protocol for c in nccl.candidates("all_gather", 1e6, 8, 1, 200.0, "turing")}
    assert gens == {"LL", "Simple"}
    assert "LL128" in {c.protocol for c in nccl.candidates("all_gather", 1e6, 8, 1, 200.0, "hopper")}


def test_two_dgx_a100_all_reduce_is_nccls_ring_at_eight_nics():
    """The 2-node check of collectives.csv (192 GB/s, nccl issue 812): 8 rings at 24 GB/s each
    (bus bandwidth 192); at 8 GB NCCL picks ring Simple, whose latency 8.4 + 28 x 3.4 + 2 x 9.6
    = 122.8 us is 1.9x across nodes above n/16 x 64 KiB: t = 233.32 + 2 x 15/16 x S / 192e3."""
    sys = PRESETS["dgx-a100"].with_devices(16)
    S = 8589934592
    c = Collectives(sys)
    t = c.run("allreduce", list(range(16)), S)
    assert t == pytest.approx(122.8 * 1.9 + 2 * 15 / 16 * S / 192e3, rel=1e-9)
    busbw = 2 * 15 / 16 * S / t / 1e3
    assert 191.0 < busbw < 192.0


def test_a_rail_across_nodes_is_all_network_steps():
    """One rank per node (local rank 0 of 4 nodes): every step crosses the network, and LL128
    runs at 0.7 of the bus bandwidth (one rank per node). 4 x 1 GB all-gather at 24 GB/s."""
    sys = PRESETS["dgx-a100"].with_devices(32)
    c = Collectives(sys)
    group = [0, 8, 16, 24]
    assert c.busbw_gbs("all_gather", group) == pytest.approx(24.0, rel=1e-9)
    S = 4e9
    simple = 8.4 + 3 * 9.6 + S / (24.0 * 4 / 3 * 1e3)
    ll128 = 10.0 + 3 * 4.0 + S / (24.0 * 0.7 * 4 / 3 * 1e3)
    assert c.run("all_gather", group, S) == pytest.approx(min(simple, ll128), rel=1e-9)
    assert simple < ll128

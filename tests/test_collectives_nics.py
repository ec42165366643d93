"""Ring collectives across nodes with several NICs: one ring (NCCL channel) per NIC.

Expected times are derived here by hand from the ring formula, 2 (n-1)/n S/B per ring of
S/k bytes, with the ring's bottleneck link named; never read back from the code under test.
Systems are made up (round link rates, efficiency 1) so the arithmetic is exact.
"""

from __future__ import annotations

import pytest

from sim.system import collectives as C
from sim.system.topology import PRESETS, Fabric, System
from workloads.errors import HwsimError


def _system(gpus: int, nics: int | None, nv_gbs: float, nic_gbs: float, nv_a: float = 0.0,
            nic_a: float = 0.0) -> System:
    """2 nodes of ``gpus`` devices, ``nics`` NICs each."""
    return System("test", "a100-80gb", gpus, 2, intra=Fabric("switch", nv_gbs, nv_a),
                  inter=Fabric("switch", nic_gbs, nic_a), nics_per_node=nics)


def _busbw_gbs(n: int, S: float, t_us: float) -> float:
    return 2 * (n - 1) / n * S / t_us / 1e3


def test_two_nodes_two_gpus_two_nics_by_hand():
    """Nodes {0, 1} and {2, 3}, NIC i of a node serving its device i; NVLink 100 GB/s (1e5
    B/us), NICs 10 GB/s (1e4 B/us). Two rings, S/2 each: [1, 0, 2, 3] (0 -> 2 on NIC 0's
    rail, 3 -> 1 on NIC 1's) and [0, 1, 3, 2] (1 -> 3 on NIC 1's, 2 -> 0 on NIC 0's). Every
    link, NVLink port or NIC direction, carries one flow: each hop at its own rate, the NIC
    the slower. A step moves S/(4 * 2) per hop; 2 (n-1) = 6 steps of S/8 / 1e4 us:
    t = 2 * 3/4 * (S/2) / 1e4, the ring formula per ring at the NIC's rate."""
    S = 8e6
    sys = _system(2, 2, 100, 10)
    assert C.ring_channels(sys, [0, 1, 2, 3]) == [[1, 0, 2, 3], [0, 1, 3, 2]]
    t = C.allreduce_us(sys, [0, 1, 2, 3], S, "ring")
    assert t == pytest.approx(2 * 3 / 4 * (S / 2) / 1e4, rel=1e-9)        # 600 us
    assert _busbw_gbs(4, S, t) == pytest.approx(20.0, rel=1e-9)              # two NICs' worth
    # one NIC per node: one ring [0, 1, 2, 3] with all of S, both its network hops on that
    # NIC (one out, one in): twice the time
    one = C.allreduce_us(_system(2, 1, 100, 10), [0, 1, 2, 3], S, "ring")
    assert one == pytest.approx(2 * 3 / 4 * S / 1e4, rel=1e-9)               # 1200 us


def test_latency_is_paid_once_per_step_at_the_slowest_hop():
    """The same with 1 us per NVLink transfer and 2 us per NIC transfer: a step ends when its
    slowest hop does, max(1 + S/8/1e5, 2 + S/8/1e4) = 2 + 100 us, six times."""
    S = 8e6
    t = C.allreduce_us(_system(2, 2, 100, 10, nv_a=1.0, nic_a=2.0), [0, 1, 2, 3], S, "ring")
    assert t == pytest.approx(6 * (2.0 + S / 8 / 1e4), rel=1e-9)
    rs = C.time_us(_system(2, 2, 100, 10, nv_a=1.0, nic_a=2.0), lambda net: C.reduce_scatter(net, [0, 1, 2, 3], S))
    assert rs == pytest.approx(3 * (2.0 + S / 8 / 1e4), rel=1e-9)           # half the steps


@pytest.mark.parametrize("nics,busbw", [
    (1, 20.0),               # one ring: its NIC hop at 20 GB/s; its NVLink hops alone on their ports
    (2, 40.0),               # two rings, one per NIC (20 each); a port carries <= 2 rings: 50 each
    (4, 80.0),               # four rings; <= 4 rings per NVLink port: 25 GB/s each, the NIC's 20 binds
    (8, 8 * 100 / 7),        # eight rings: every GPU leaves its node in one, so its port carries the
])                           # other 7: 100/7 = 14.3 GB/s per ring < 20, NVLink binds: 114.3, not 160
def test_more_nics_give_proportionally_more_bandwidth_until_nvlink_binds(nics, busbw):
    """2 nodes x 8 GPUs, NVLink 100 GB/s per port, NICs 20 GB/s; k NICs give k rings of S/k;
    a ring's rate is its slowest hop's share: min(20, 100 / (rings on a port)); the bus
    bandwidth is k times that (no latency)."""
    S = 1.6e9
    t = C.allreduce_us(_system(8, nics, 100, 20), list(range(16)), S, "ring")
    assert _busbw_gbs(16, S, t) == pytest.approx(busbw, rel=1e-9)


def test_dgx_a100_two_nodes_reach_eight_nics_of_busbw():
    """nccl issue 812 (D. Addison, NVIDIA): 8 x 200 Gb/s HDR per DGX A100, 192 GB/s all-reduce
    busbw. 8 rings of S/8, each NIC hop at HDR's achieved 24 GB/s (one ring per NIC and
    direction); a GPU's NVLink port carries 7 rings at 230/7 = 32.9 GB/s each: the NIC binds,
    8 x 24 = 192 GB/s; at 8 GB the 30 steps' 2 us latency costs 0.07%."""
    sys = PRESETS["dgx-a100"].with_devices(16)
    S = 8589934592
    t = C.allreduce_us(sys, list(range(16)), S, "ring")
    assert t == pytest.approx(30 * (2.0 + S / 128 / 24e3), rel=1e-9)
    assert 191.5 < _busbw_gbs(16, S, t) < 192.0
    # the hierarchical phases in turn: NVLink reduce-scatter and all-gather, 7/8 S / 230e3 +
    # 7 us each, and between them 8 rails of S/8 over 2 nodes at 24e3 (+ 2 x 2 us)
    hier = C.allreduce_us(sys, list(range(16)), S, "hierarchical")
    assert hier == pytest.approx(2 * (7 / 8 * S / 230e3 + 7) + (S / 8 / 24e3 + 4), rel=1e-9)


def test_rails_and_single_nodes_keep_one_ring():
    """One device per node (a rail: every hop on the network) or one node: one ring, in the
    group's order."""
    sys = PRESETS["dgx-a100"].with_devices(32)
    assert C.ring_channels(sys, [0, 8, 16, 24]) == [[0, 8, 16, 24]]
    assert C.ring_channels(sys, [0, 1, 2, 3]) == [[0, 1, 2, 3]]
    assert C.ring_channels(sys, [0, 1, 8]) == [[0, 1, 8]]            # unequal per node


def test_rings_cross_on_rails():
    """Each ring goes from a node's device to the same local rank of the next node."""
    sys = PRESETS["dgx-a100"].with_devices(32)
    rings = C.ring_channels(sys, list(range(32)))
    assert len(rings) == 8
    for ring in rings:
        hops = [(ring[i], ring[(i + 1) % 32]) for i in range(32)]
        across = [(a, b) for a, b in hops if a // 8 != b // 8]
        assert len(across) == 4 and all(a % 8 == b % 8 for a, b in across)
    outs = sorted(a for ring in rings for i, a in enumerate(ring) if a // 8 != ring[(i + 1) % 32] // 8)
    assert outs == list(range(32))              # every NIC sends for exactly one ring


def test_nics_per_node_above_devices_is_refused():
    with pytest.raises(HwsimError, match="nics_per_node"):
        _system(2, 3, 100, 10)

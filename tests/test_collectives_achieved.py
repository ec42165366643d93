"""Collectives at NCCL's achieved rates: each fabric moves a published fraction of its line rate.

Expected values are written here from the published nccl-tests figures (NVIDIA engineers'
statements: ~230 GB/s of A100 NVLink's 300, 370 of H100 NVLink's 450, 24 of HDR's 25 and 46-48 of
NDR's 50 GB/s per NIC) and the textbook ring, 2(n-1)/n S/B + 2(n-1) a; never read back from
the code under test.
"""

from __future__ import annotations

import pytest

from sim.system import collectives as C
from sim.system.topology import PRESETS, resolve_system
from validation.schema import load_rows
from validation.train import READER
from workloads.errors import HwsimError

A100, H100 = PRESETS["dgx-a100"], PRESETS["dgx-h100"]


def _ring(n: int, S: float, B: float, a: float) -> float:
    return 2 * (n - 1) / n * S / B + 2 * (n - 1) * a


@pytest.mark.parametrize("S", [1e6, 1e9])
def test_a100_nvlink_ring_runs_at_230_gbs(S):
    a = A100.intra.latency_us
    assert C.allreduce_us(A100, list(range(8)), S) == pytest.approx(_ring(8, S, 230e3, a), rel=1e-9)


def test_h100_all_gather_runs_at_370_gbs():
    S, a = 2e9, H100.intra.latency_us
    t = C.time_us(H100, lambda net: C.all_gather(net, list(range(8)), S))
    assert t == pytest.approx(7 / 8 * S / 370e3 + 7 * a, rel=1e-9)


@pytest.mark.parametrize("preset,gbs", [("dgx-a100", 24.0), ("dgx-h100", 47.0)])
def test_rails_across_nodes_run_at_the_nics_achieved_rate(preset, gbs):
    sys = PRESETS[preset].with_devices(32)
    a = sys.inter.latency_us                      # local rank 0 of 4 nodes: a ring over 4 NICs
    assert C.allreduce_us(sys, [0, 8, 16, 24], 4e8) == pytest.approx(_ring(4, 4e8, gbs * 1e3, a), rel=1e-9)


def test_the_torus_keeps_its_line_rate():
    tpu = PRESETS["tpu-pod"].with_devices(16)
    assert tpu.intra.bytes_per_us == 82e3


def _row(rid: str):
    return next(r for r in load_rows() if r.id == rid)


def test_busbw_reader_is_nccl_tests_definition():
    """busbw = 2 (n-1)/n S / t for an all-reduce. The time is NCCL's model of what it picks at
    4 GB on one node, ring Simple: 8.4 + 14 x 3.4 = 56 us of latency (NCCL 2.9.6's
    tuning.cc) plus the bytes at 230 GB/s bus bandwidth: the latency costs ~0.2%."""
    r = _row("coll-a100-nvlink-allreduce-8gpu-4g-busbw")
    S = 4294967296
    t = 56.0 + 1.75 * S / 230e3
    assert READER.measure(r) == pytest.approx(1.75 * S / t / 1e3, rel=1e-9)
    assert 229.0 < READER.measure(r) < 230.0


def test_fit_rows_name_the_constants_they_set_and_checks_are_evidence():
    rows = [r for r in load_rows() if r.quantity == "busbw_gbs"]
    fits = {r.id for r in rows if r.role == "fit"}
    assert fits == {"coll-a100-nvlink-allreduce-8gpu-busbw-fit", "coll-h100-nvlink-allgather-8gpu-busbw-fit",
                    "coll-hdr-ib-allreduce-1nic-busbw-fit", "coll-ndr-ib-allreduce-1nic-busbw-fit"}
    assert len([r for r in rows if r.role == "check"]) >= 3
    for r in rows:                                # the fit rows are reproduced (within the latency's share)
        if r.role == "fit":
            assert READER.measure(r) == pytest.approx(r.value, rel=2e-3), r.id


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2"])
def test_efficiency_outside_0_1_is_refused(tmp_path, bad):
    p = tmp_path / "s.yaml"
    p.write_text(f"base: dgx-a100\nintra: {{efficiency: {bad}}}\n")
    with pytest.raises(HwsimError, match="efficiency"):
        resolve_system(str(p))

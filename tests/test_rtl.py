"""RTL units co-simulated against the cycle-level models: random, edge-case and
model-derived stimuli; deliberately broken units are caught; Verilog export."""

import dataclasses
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rtl.cosim import verify_dot, verify_eie_pe, verify_systolic
from sim.eie import PRESETS as EIE, SparseLayer, encode, from_dense, synthetic, synthetic_activations
from sim.systolic import PRESETS as SYS


def _arch(R, C):
    return dataclasses.replace(SYS["systolic-32"], rows=R, cols=C)


@settings(max_examples=8, deadline=None)
@given(R=st.integers(1, 4), C=st.integers(1, 4), M=st.integers(1, 9), K=st.integers(1, 9), N=st.integers(1, 9),
       seed=st.integers(0, 1000))
def test_systolic_array_random(R, C, M, K, N, seed):
    rng = np.random.default_rng(seed)
    r = verify_systolic(rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N)), _arch(R, C))
    assert r.passed, r.first_mismatch


@settings(max_examples=6, deadline=None)
@given(R=st.integers(1, 4), C=st.integers(1, 4), M=st.integers(1, 9), K=st.integers(1, 9), N=st.integers(1, 9))
def test_rtl_fold_latency_is_the_timing_models(R, C, M, K, N):
    """With all operands positive a bottom-row output is non-zero exactly when it carries a
    product, so the RTL itself shows when each fold's last output leaves the array; that
    must be the fold latency the whole-workload timing uses (T + R + cols_used - 2)."""
    from sim.systolic.mapping import folds
    arch = _arch(R, C)
    rng = np.random.default_rng(R * 1000 + C * 100 + M * 10 + K + N)
    r = verify_systolic(rng.integers(1, 128, (M, K)), rng.integers(1, 128, (K, N)), arch)
    assert r.passed, r.first_mismatch
    measured = [int(np.flatnonzero(out.any(axis=1)).max()) + 1 for out in r.details["rtl_outputs"]]
    f = folds(M, N, K, arch)
    assert measured == f.latency.tolist()


def test_systolic_edge_cases():
    a = _arch(3, 4)
    for A, B in ((np.zeros((5, 6)), np.zeros((6, 7))),
                 (np.full((5, 6), -128), np.full((6, 7), -128)),      # largest products, int32 accumulate
                 (np.full((5, 6), 127), np.full((6, 7), -128))):
        r = verify_systolic(A, B, a)
        assert r.passed, r.first_mismatch


def test_systolic_resnet18_conv_tile():
    import torch
    from workloads.lower import lower
    from workloads.zoo.cnn import resnet18
    model, x = resnet18()
    wl = lower(model, x, keep_weights=True)
    w = wl["layer1.0.conv1"].operand("weight").values            # 64 x 64 x 3 x 3
    B = w.reshape(64, -1).T[:12, :8]                                  # an im2col K x N tile
    B = np.clip(np.round(B / np.abs(B).max() * 127), -128, 127).astype(np.int64)
    rng = np.random.default_rng(0)
    A = np.maximum(rng.integers(-128, 128, (10, 12)), 0)              # post-ReLU int8 activations
    r = verify_systolic(A, B, _arch(4, 4))
    assert r.passed, r.first_mismatch
    del torch


def test_broken_systolic_array_is_caught():
    rng = np.random.default_rng(1)
    r = verify_systolic(rng.integers(-8, 8, (6, 4)), rng.integers(-8, 8, (4, 3)), _arch(2, 3), delay_bug=True)
    assert not r.passed and "cycle" in r.first_mismatch


@pytest.mark.skipif(shutil.which("g++") is None, reason="the cxxrtl backend needs g++")
def test_cxxrtl_backend_agrees():
    rng = np.random.default_rng(2)
    A, B = rng.integers(-128, 128, (30, 7)), rng.integers(-128, 128, (7, 5))
    assert verify_systolic(A, B, _arch(3, 3), backend="cxxrtl").passed
    assert not verify_systolic(A, B, _arch(3, 3), backend="cxxrtl", delay_bug=True).passed


def _eie(P=4, regs=64):
    return dataclasses.replace(EIE["eie-64"], num_pes=P, act_regs=regs)


@settings(max_examples=8, deadline=None)
@given(rows=st.integers(1, 120), cols=st.integers(1, 40), wd=st.floats(0.02, 0.8), ad=st.floats(0.0, 1.0),
       depth=st.integers(1, 8), pe=st.integers(0, 3), seed=st.integers(0, 1000))
def test_eie_pe_random(rows, cols, wd, ad, depth, pe, seed):
    arch = dataclasses.replace(_eie(), queue_depth=depth)
    r = verify_eie_pe(synthetic(rows, cols, wd, seed), synthetic_activations(cols, ad, seed), arch, pe)
    assert r.passed, r.first_mismatch


def test_eie_pe_edge_cases():
    arch = _eie()
    # long zero runs: one non-zero per 40 rows of a PE forces padding zeros
    rows = np.arange(0, 256, 4 * 40)
    layer = SparseLayer((256, 3), np.concatenate([rows, rows]), np.array([0] * rows.size + [2] * rows.size),
                        np.full(2 * rows.size, 7, dtype=np.uint8), np.arange(16) * 100)
    assert encode(layer, 4).padding.sum() > 0
    acts = np.array([32767, 0, -32768])
    assert verify_eie_pe(layer, acts, arch, 0).passed
    # all-zero activations: nothing is broadcast
    assert verify_eie_pe(synthetic(40, 10, 0.3, 1), np.zeros(10, dtype=np.int64), arch, 2).passed


def test_eie_pe_alexnet_fc_slice():
    from workloads.zoo.cnn import alexnet
    model, _ = alexnet()
    w = model.classifier[6].weight.detach().numpy()[:120, :48].astype(np.float64)   # fc8 slice
    thr = np.quantile(np.abs(w), 0.9)
    layer = from_dense(np.where(np.abs(w) >= thr, w / np.abs(w).max(), 0.0))          # 10% kept, 4-bit shared
    r = verify_eie_pe(layer, synthetic_activations(48, 0.4, 3), _eie(), pe=1)
    assert r.passed, r.first_mismatch


def test_broken_eie_pe_is_caught():
    r = verify_eie_pe(synthetic(40, 30, 0.2, 1), synthetic_activations(30, 0.5, 1), _eie(), 1, bug="late-pop")
    assert not r.passed and "cycle" in r.first_mismatch


def test_dot_unit_bit_exact_and_broken_unit_caught():
    r = verify_dot(240, seed=5)
    assert r.passed, r.first_mismatch
    bad = verify_dot(240, seed=5, bug="truncate")
    assert not bad.passed and "cycle" in bad.first_mismatch


def test_dot_reference_specials():
    from sim.gpu.dot import dot4, f32
    one, inf, zero, nzero = 0x3C00, 0x7C00, 0x0000, 0x8000
    assert dot4([inf, 0, 0, 0], [zero, 0, 0, 0], 0) == 0x7FC00000           # inf x 0
    assert dot4([inf, inf, 0, 0], [one, one ^ 0x8000, 0, 0], 0) == 0x7FC00000  # +inf + -inf
    assert dot4([inf, 0, 0, 0], [one, 0, 0, 0], 0x3F800000) == 0x7F800000
    assert dot4([nzero] * 4, [one] * 4, 0x80000000) == 0x80000000             # all -0
    assert dot4([one] * 4, [one] * 4, 0x3F800000) == 0x40A00000                # 1 + 4 = 5
    assert f32(dot4([0x7BFF] * 4, [0x7BFF] * 4, 0)) == pytest.approx(4 * 65504.0 ** 2)


def test_rtl_refuses_what_it_does_not_implement():
    from workloads.errors import HwsimError
    A, B = np.ones((3, 3)), np.ones((3, 3))
    with pytest.raises(HwsimError, match="dataflow: the systolic array RTL supports the weight-stationary"):
        verify_systolic(A, B, dataclasses.replace(_arch(2, 2), dataflow="os"))
    with pytest.raises(HwsimError, match="at most 4096 PEs"):
        verify_systolic(A, B, _arch(100, 100))
    with pytest.raises(HwsimError, match="pipeline_depth"):
        verify_eie_pe(synthetic(8, 4, 0.5, 1), synthetic_activations(4, 1.0, 1),
                      dataclasses.replace(_eie(), pipeline_depth=3), 0)


def test_verilog_export_and_cli(tmp_path):
    from analysis.cli import main
    for unit in ("systolic", "eie-pe", "dot"):
        out = tmp_path / f"{unit}.v"
        assert main(["rtl", "export", unit, "-o", str(out), "--size", "2", "2"]) == 0
        text = out.read_text()
        assert "module" in text and "endmodule" in text
    assert main(["verify", "eie-pe", "--trials", "2", "--size", "2", "1"]) == 0

"""The trace format: round trip, validation, atomic save. No torch needed."""

import json

import numpy as np
import pytest

from workloads import TraceError, Workload
from workloads.build import conv_op, gemm_op, vector_op
from workloads.trace import Op, Operand


def _wl():
    rng = np.random.default_rng(0)
    vals = rng.standard_normal((8, 16)).astype(np.float32)
    vals[vals < 0.5] = 0
    cb = np.linspace(-1, 1, 16).astype(np.float32)
    w = Operand("weight", (8, 16), 4, "index", float((vals != 0).mean()), values=vals, codebook=cb)
    g = Op("fc", "gemm", "linear", {"M": 2, "N": 8, "K": 16}, (Operand("input", (2, 16), 8, "int", 0.5), w,
                                                                Operand("output", (2, 8), 32, "int")))
    return Workload("tiny", (conv_op("conv1", 1, 3, 8, 8, 4, 3, 3, pad=1), g,
                             vector_op("relu", "activation", "relu", 64)), batch=2, input_shape=(2, 3, 8, 8),
                    source="test", meta={"note": "x"})


def test_round_trip_is_exact(tmp_path):
    wl = _wl()
    p = wl.save(tmp_path / "t.json")
    assert (tmp_path / "t.npz").exists()
    back = Workload.load(p)
    assert back == wl
    w0, w1 = wl["fc"].operand("weight"), back["fc"].operand("weight")
    np.testing.assert_array_equal(w0.values, w1.values)
    np.testing.assert_array_equal(w0.codebook, w1.codebook)
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temporaries left


def test_gemm_views_and_macs():
    # conv: 1x3x8x8, 4 filters 3x3, pad 1 -> 8x8 output; im2col M=64, N=4, K=27
    c = conv_op("c", 1, 3, 8, 8, 4, 3, 3, pad=1)
    assert (c.gemm.M, c.gemm.N, c.gemm.K, c.gemm.count) == (64, 4, 27, 1)
    assert c.macs == 8 * 8 * 4 * 3 * 9
    # depthwise: 32 channels, stride 2, 16x16 -> 8x8; one 1-channel GEMM per group
    d = conv_op("dw", 1, 32, 16, 16, 32, 3, 3, stride=2, pad=1, groups=32)
    assert (d.gemm.M, d.gemm.N, d.gemm.K, d.gemm.count) == (64, 1, 9, 32)
    assert d.macs == 8 * 8 * 32 * 9
    assert gemm_op("g", 3, 5, 7, copies=4).macs == gemm_op("g", 3, 5, 7, steps=4).macs == 3 * 5 * 7 * 4
    assert gemm_op("g", 3, 5, 7, copies=2, steps=3).gemm.count == 6


def _corrupt(tmp_path, edit):
    p = _wl().save(tmp_path / "t.json")
    doc = json.loads(p.read_text())
    edit(doc)
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("ops"), "ops: missing"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d["ops"][1]["dims"].update(M=-3), "ops[1] (fc).dims.M"),
    (lambda d: d["ops"][1]["dims"].update(M="x"), "dims.M: must be an integer"),
    (lambda d: d["ops"][1]["operands"][0].update(density=1.5), "operands[0]"),
    (lambda d: d["ops"][1]["operands"][1].update(values="nope"), "values"),
    (lambda d: d["ops"][0]["dims"].update(P=7), "dims.P"),
    (lambda d: d["ops"][0].update(kind="fft"), "ops[0] (conv1).kind: unknown kind 'fft'; one of 'gemm', 'conv'"),
    (lambda d: d["ops"][2].update(name="fc"), "duplicate op name"),
    (lambda d: d["ops"][1]["operands"][0].update(bits=0), "bits"),
])
def test_corrupted_trace_is_rejected_with_the_field(tmp_path, edit, message):
    p = _corrupt(tmp_path, edit)
    with pytest.raises(TraceError) as e:
        Workload.load(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_unreadable_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"format": "hwsim-trace",')
    with pytest.raises(TraceError, match="not valid JSON"):
        Workload.load(p)
    with pytest.raises(TraceError, match="cannot read"):
        Workload.load(tmp_path / "missing.json")
    good = _wl().save(tmp_path / "g.json")
    (tmp_path / "g.npz").write_bytes(b"not a zip")
    with pytest.raises(TraceError, match="unreadable tensor file"):
        Workload.load(good)


def test_constructor_validation():
    with pytest.raises(TraceError, match="density"):
        Operand("input", (2,), 8, "int", -0.1)
    with pytest.raises(TraceError, match="groups"):
        conv_op("c", 1, 6, 8, 8, 4, 3, 3, groups=4)
    with pytest.raises(TraceError, match="a float operand"):
        Operand("input", (2,), 5, "float")


def test_sim_side_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, workloads, workloads.trace, workloads.spec, workloads.zoo.tpu, workloads.zoo.eie, sim; "
            "workloads.resolve('mlp0'); workloads.resolve('gemm:4,4,4'); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_strided_1x1_convolutions_input_gradient_reads_back(tmp_path):
    """col2im writes a 1x1 stride-2 convolution's input gradient into the whole input, four
    times the GEMM's M x N (a quarter of the pixels are touched, the rest are zeros): a
    training trace with one saves and loads (ResNet's downsample shortcuts were refused)."""
    import torch

    from workloads.lower import lower
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1, stride=2), torch.nn.ReLU())
    x = torch.zeros(2, 4, 6, 6, requires_grad=True)      # so that its gradient is computed
    wl = lower(net, x, train=True)
    dgrad = next(op for op in wl.ops if op.name.endswith(".dgrad"))
    g = dgrad.gemm
    assert (g.M, g.N) == (2 * 3 * 3, 4) and dgrad.operand("output").numel == 2 * 4 * 6 * 6 == 4 * g.M * g.N
    assert Workload.load(wl.save(tmp_path / "t.json")) == wl

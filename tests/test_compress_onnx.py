"""ONNX weights in the trace and ONNX models compressed: densities and values of weights
given by hand (an initialiser, a Transpose and per-axis DequantizeLinear chain, an integer
weight with a zero point, external data), a Gemm pruned by hand, and a torch export
compressed as the torch model itself is."""

import json
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from analysis.cli import main  # noqa: E402
from workloads import HwsimError  # noqa: E402
from workloads.compress.job import compress_model  # noqa: E402
from workloads.compress.storage import relative_indices  # noqa: E402
from workloads.onnx_input import read_onnx  # noqa: E402


def _save(tmp_path, nodes, inits, x_shape, y_shape, name="m.onnx", external=False):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="w.bin", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


# a 4 -> 3 GEMM, x @ W with W (K=4, N=3) as MatMul takes it; magnitudes 1..12, no ties
W = np.array([[1, -7, 3], [-10, 5, -2], [4, 12, -9], [-6, 8, 11]], dtype=np.float32)


def _matmul(tmp_path, w=W, **kw):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    return _save(tmp_path, nodes, [numpy_helper.from_array(w, "w")], [2, 4], [2, 3], **kw)


def test_weight_density_and_values_in_the_trace_layout(tmp_path):
    w = W.copy()
    w[0, 0] = w[2, 1] = w[3, 2] = 0                  # 3 zeros of 12
    path = _matmul(tmp_path, w)
    fc = read_onnx(path).ops[0]
    assert fc.operand("weight").density == pytest.approx(9 / 12) and fc.operand("weight").values is None
    kept = read_onnx(path, keep_weights=True).ops[0].operand("weight")
    assert kept.shape == (3, 4)                       # the trace's (N, K)
    np.testing.assert_array_equal(kept.values, w.T)
    dense = _matmul(tmp_path, name="dense.onnx")
    assert read_onnx(dense, keep_weights="sparse").ops[0].operand("weight").values is None   # no zeros: not kept
    assert read_onnx(dense).ops[0].operand("weight").density == 1.0


def test_a_transposed_dequantised_weight_is_followed(tmp_path):
    # int8 weight stored (N, K), per-output-channel scales, transposed to (K, N) for MatMul
    q = np.array([[1, 0, -3, 4], [0, 0, 2, 0], [5, 6, 0, 7]], dtype=np.int8)
    scale = np.array([0.5, 2.0, 0.25], dtype=np.float32)
    zp = np.zeros(3, dtype=np.int8)
    nodes = [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["wd"], name="dq", axis=0),
             helper.make_node("Transpose", ["wd"], ["wt"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["x", "wt"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(q, "q"), numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")]
    fc = read_onnx(_save(tmp_path, nodes, inits, [2, 4], [2, 3]), keep_weights=True).ops[0]
    w = fc.operand("weight")
    assert w.density == pytest.approx(7 / 12)
    np.testing.assert_allclose(w.values, q * scale[:, None])     # back in (N, K), dequantised by hand


def test_an_integer_weight_counts_its_zero_point_as_zero(tmp_path):
    # MatMulInteger with uint8 B (K=2, N=3) and zero point 128: entries equal to 128 are zeros
    b = np.array([[128, 130, 128], [0, 128, 255]], dtype=np.uint8)
    nodes = [helper.make_node("MatMulInteger", ["x", "b", "", "bz"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 3])],
                              [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.uint8(128), "bz")])
    path = tmp_path / "int.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert read_onnx(path).ops[0].operand("weight").density == pytest.approx(3 / 6)


def test_external_weights_are_mapped_and_a_short_file_refused(tmp_path):
    w = W.copy()
    w[1] = 0
    path = _matmul(tmp_path, w, external=True)
    assert read_onnx(path).ops[0].operand("weight").density == pytest.approx(9 / 12)
    data = tmp_path / "w.bin"
    data.write_bytes(data.read_bytes()[:20])
    with pytest.raises(HwsimError, match="external data 'w.bin' holds 20 bytes, short of the 48"):
        read_onnx(path)


def test_a_gemm_pruned_and_quantised_by_hand(tmp_path):
    c = compress_model(str(_matmul(tmp_path)), prune=0.5, quant_bits=8, index_bits=4)
    # keep 6 of 12: magnitudes 7..12 survive (-7, -10, 12, -9, 8, 11)
    rep = c.report()["layers"]
    assert [r["name"] for r in rep] == ["fc"] and rep[0]["keep"] == 0.5 and rep[0]["weight_bits"] == 8
    w = c.trace().ops[0].operand("weight")
    mask = np.abs(W) >= 7
    np.testing.assert_array_equal(w.values != 0, mask.T)
    assert w.density == 0.5 and w.bits == 8 and w.dtype == "int"
    # int8 over [-10, 12]: scale 22/255, zero point round(10 / scale) = 116; each kept weight within scale / 2
    np.testing.assert_allclose(w.values[mask.T], W.T[mask.T], atol=22 / 255 / 2 + 1e-6)
    # storage in (N, K) order: W.T's rows [1 -10 4 -6], [-7 5 12 8], [3 -2 -9 11] keep flat positions
    # 1, 4, 6, 7, 10, 11: gaps 1 2 1 0 2 0, all under 4-bit indices, so no fillers; 6 x (8 + 4) + 256 x 32
    gaps, fillers = relative_indices(w.values != 0, 4)
    assert fillers == 0 and list(gaps) == [1, 2, 1, 0, 2, 0]
    assert rep[0]["bits_pq"] == pytest.approx((6 * 12 + 256 * 32) / 12)
    assert c.trace().source.startswith("compressed:onnx:")


def test_a_torch_export_compresses_as_the_torch_model_does(tmp_path):
    import torch

    from workloads.spec import torch_model

    torch.manual_seed(0)
    net, x = torch_model("lenet300")
    path = tmp_path / "lenet300.onnx"
    with warnings.catch_warnings():          # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (x,), str(path), dynamo=False, opset_version=17)
    torch.manual_seed(0)
    a = compress_model("lenet300", prune=0.9, share_bits=5).report()
    b = compress_model(str(path), prune=0.9, share_bits=5).report()
    assert [r["name"] for r in b["layers"]] == ["fc1.Gemm", "fc2.Gemm", "fc3.Gemm"]
    for ra, rb in zip(a["layers"], b["layers"]):
        assert {k: v for k, v in ra.items() if k != "name"} == {k: v for k, v in rb.items() if k != "name"}


def test_cli_compresses_an_onnx_model_and_simulates_the_result(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["compress", "examples/model/small_cnn.onnx", "--prune", "0.5", "--quant", "8", "-o", str(out),
                 "--format", "json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rep["layers"]] == ["conv1", "conv2_dw", "fc"] and "accuracy" not in rep["total"]
    assert main(["simulate", str(out), "--arch", "eie-64", "--format", "json"]) == 0
    ops = {o["name"]: o for o in json.loads(capsys.readouterr().out)["ops"]}
    assert ops["fc"]["macs"] == 2560
    assert main(["compress", "examples/model/small_cnn.onnx", "--prune", "0.5"]) == 0
    assert "accuracy not measured (an ONNX model is not run)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--train", "digits"], "is an ONNX model, which hwsim lowers but does not run"),
    (["--plan", "examples/plan.yaml"], "plan: unknown layer(s) fc1, fc2, fc3; this model's layers with weights: "
                                       "conv1, conv2_dw, fc"),
])
def test_what_an_onnx_model_cannot_be_given_is_refused(args, message, capsys):
    assert main(["compress", "examples/model/small_cnn.onnx", *args]) == 2
    assert message in capsys.readouterr().err


def test_simulate_compress_keeps_the_batch_and_refuses_lowering_options(capsys):
    assert main(["simulate", "lenet300", "--compress", "examples/plan.yaml", "--batch", "8", "--arch", "eie-64",
                 "--format", "json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total["macs"] == 8 * (784 * 300 + 300 * 100 + 100 * 10)
    assert main(["simulate", "lenet300", "--compress", "examples/plan.yaml", "--train", "--arch", "eie-64"]) == 2
    assert "--compress lowers the compressed model for inference" in capsys.readouterr().err


def test_a_weight_reshaped_and_squeezed_from_constants_keeps_its_values(tmp_path):
    # a (1, 12) initialiser reshaped to (4, 3) by a constant shape, unsqueezed and squeezed back
    flat = W.reshape(1, 12)
    flat[0, 5] = 0                                      # W[1, 2] (-2) pruned
    nodes = [helper.make_node("Reshape", ["wf", "shape"], ["w1"], name="r"),
             helper.make_node("Unsqueeze", ["w1", "ax"], ["w2"], name="u"),
             helper.make_node("Squeeze", ["w2", "ax"], ["w"], name="s"),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(flat, "wf"), numpy_helper.from_array(np.array([4, 3], dtype=np.int64), "shape"),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "ax")]
    w = read_onnx(_save(tmp_path, nodes, inits, [2, 4], [2, 3]), keep_weights=True).ops[0].operand("weight")
    assert w.density == pytest.approx(11 / 12)
    np.testing.assert_array_equal(w.values, flat.reshape(4, 3).T)


def test_external_data_whose_length_disagrees_with_its_dims_is_refused(tmp_path):
    path = _matmul(tmp_path, external=True)
    m = onnx.load(str(path), load_external_data=False)
    for e in m.graph.initializer[0].external_data:
        if e.key == "length":
            e.value = "40"
    onnx.save(m, str(path))
    with pytest.raises(HwsimError, match="external data length 40 is not the 48 bytes of its dims"):
        read_onnx(path)

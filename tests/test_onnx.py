"""ONNX models as MODEL: graphs built node by node with onnx.helper (numbers by hand), a
QDQ int8 model, a torch export checked against the torch lowering, and bad files."""

import os
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from analysis.cli import main  # noqa: E402
from workloads import HwsimError  # noqa: E402
from workloads.onnx_input import read_onnx  # noqa: E402


def _init(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.zeros(shape, dtype=dtype), name)


def _save(tmp_path, nodes, inits, x_shape, y_shape, name="m.onnx", x_type=TensorProto.FLOAT):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", x_type, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _small_cnn(tmp_path, batch="N"):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c2"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    inits = [_init("w1", (8, 3, 3, 3)), _init("w2", (8, 1, 3, 3)), _init("wf", (10, 8)), _init("bf", (10,))]
    return _save(tmp_path, nodes, inits, [batch, 3, 32, 32], [batch, 10])


def test_a_small_cnn_by_hand(tmp_path):
    wl = read_onnx(_small_cnn(tmp_path), batch=2)
    assert [o.name for o in wl.ops] == ["conv1", "relu1", "dw", "pool", "gap", "fc"]
    c1, relu, dw, pool, gap, fc = wl.ops
    # 3x3 stride 2 pad 1 on 32x32: 16x16 outputs; 2 images x 256 pixels x 8 filters x 27 taps
    assert (c1.dims["P"], c1.dims["Q"]) == (16, 16) and c1.macs == 2 * 256 * 8 * 27
    # depthwise: 8 groups of one channel, 9 taps each
    assert dw.dims["groups"] == 8 and dw.macs == 2 * 256 * 8 * 9
    # pooling reads 4 inputs per output; the global pool 8x8 = 64 per output
    assert pool.dims["elements"] == 2 * 8 * 8 * 8 and pool.dims["ops_per_element"] == 4
    assert gap.dims["elements"] == 2 * 8 and gap.dims["ops_per_element"] == 64
    # Flatten moves no data: the fc reads the global pool; transB: 8 -> 10 for 2 images
    assert fc.producers == ("gap",) and (fc.dims["M"], fc.dims["N"], fc.dims["K"]) == (2, 10, 8)
    assert relu.producers == ("conv1",) and wl.batch == 2 and wl.input_shape == (2, 3, 32, 32)
    assert all(o.operand("output").bits == 32 for o in wl.ops)


def test_qdq_int8_model_runs_at_int8(tmp_path):
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="dq"),
        helper.make_node("DequantizeLinear", ["wq", "s", "zpw"], ["wd"], name="dqw"),
        helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv"),
    ]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "zp"),
             numpy_helper.from_array(np.array(0, np.int8), "zpw"), _init("wq", (4, 2, 1, 1), np.int8)]
    wl = read_onnx(_save(tmp_path, nodes, inits, [1, 2, 5, 5], [1, 4, 5, 5]))
    conv = wl["conv"]
    assert conv.operand("weight").bits == 8 and conv.operand("input").bits == 8 and conv.operand("weight").dtype == "int"
    # the weight's DequantizeLinear folds away as constant; the activation's Q and DQ are element-wise ops
    assert [o.name for o in wl.ops] == ["q", "dq", "conv"] and conv.producers == ("dq",)


def test_a_torch_export_lowers_as_the_torch_model_does(tmp_path):
    import torch

    from workloads.spec import resolve
    from workloads.zoo import ZOO

    torch.set_num_threads(1)
    model, x = ZOO["resnet18"].load()(batch=1)
    path = tmp_path / "r18.onnx"
    with warnings.catch_warnings():          # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, opset_version=17)
    a, b = read_onnx(path), resolve("resnet18")
    gemm = lambda wl: [(o.kind, dict(o.dims)) for o in wl.ops if o.is_gemm]  # noqa: E731
    # both against PyTorch's own count of the same model and input (FlopCounterMode's FLOPs / 2)
    from torch.utils.flop_counter import FlopCounterMode
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        model.eval()(x)
    assert gemm(a) == gemm(b)
    assert sum(o.macs for o in a.ops) == sum(o.macs for o in b.ops) == fc.get_total_flops() // 2     # 1,814,073,344
    # the exporter folds each eval-mode BatchNorm into its conv: the ONNX trace has no norm ops
    assert not [o for o in a.ops if o.kind == "norm"] and len([o for o in b.ops if o.kind == "norm"]) == 20


def test_cli_lowers_and_simulates_an_onnx_file(tmp_path, capsys):
    path = _small_cnn(tmp_path)
    assert main(["lower", str(path), "--batch", "4", "-o", str(tmp_path / "t.json")]) == 0
    assert main(["simulate", str(path), "--arch", "tpu-v1"]) == 0
    assert "conv1" in capsys.readouterr().out


def test_bad_onnx_files_are_refused_in_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a protobuf at all" * 10)
    with pytest.raises(HwsimError, match="junk.onnx: not an ONNX model"):
        read_onnx(junk)
    nodes = [helper.make_node("Det", ["x"], ["y"], name="det")]
    odd = _save(tmp_path, nodes, [], [1, 4, 4], [1], name="odd.onnx")
    with pytest.raises(HwsimError, match=r"odd.onnx: node 'det' \(Det\): operator Det is not supported"):
        read_onnx(odd)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[0, 0, 1, 1])]
    asym = _save(tmp_path, nodes, [_init("w", (2, 1, 2, 2))], [1, 1, 4, 4], [1, 2, 4, 4], name="a.onnx")
    with pytest.raises(HwsimError, match="asymmetric pads"):
        read_onnx(asym)
    assert main(["simulate", str(odd), "--arch", "tpu-v1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "operator Det" in err
    assert main(["simulate", str(tmp_path / "none.onnx"), "--arch", "tpu-v1"]) == 2
    assert "model file not found" in capsys.readouterr().err


def small_cnn() -> "onnx.ModelProto":
    """examples/model/small_cnn.onnx: conv, depthwise conv, BN, pool and fc for 8x8 digits,
    seeded weights."""
    rng = np.random.default_rng(0)
    w = lambda name, *shape: numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2_dw", group=16, pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c2", "g", "b", "m", "v"], ["n2"], name="bn2"),
        helper.make_node("Relu", ["n2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    inits = [w("w1", 16, 1, 3, 3), w("b1", 16), w("w2", 16, 1, 3, 3), w("g", 16), w("b", 16), w("m", 16),
             numpy_helper.from_array(np.ones(16, np.float32), "v"), w("wf", 10, 16 * 4 * 4), w("bf", 10)]
    graph = helper.make_graph(nodes, "small_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hwsim-example")


def test_the_shipped_example_is_this_model():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "examples" / "model" / "small_cnn.onnx"
    assert shipped.read_bytes() == small_cnn().SerializeToString()
    wl = read_onnx(shipped, batch=8)
    assert [o.kind for o in wl.ops] == ["conv", "activation", "conv", "norm", "activation", "pool", "gemm"]
    assert sum(o.macs for o in wl.ops) == 8 * (64 * 16 * 9 + 64 * 16 * 9 + 10 * 256)


@pytest.mark.parametrize("name", ["mobilenet_v2", "lstm_lm"])
def test_torch_exports_of_a_cnn_and_an_lstm(tmp_path, name):
    import torch

    from workloads.spec import resolve
    from workloads.zoo import ZOO

    torch.set_num_threads(1)
    model, x = ZOO[name].load()()
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, opset_version=17)
    a, b = read_onnx(path), resolve(name)
    assert sum(o.macs for o in a.ops) == sum(o.macs for o in b.ops)
    if name == "lstm_lm":
        # each LSTM layer: the input GEMM over all 35 steps, the recurrent GEMM one step at a time
        steps = lambda wl: sorted((o.dims["M"], o.dims["N"], o.dims["K"], o.steps) for o in wl.ops if o.is_gemm)  # noqa: E731
        assert steps(a) == steps(b) == sorted([(35, 2600, 650, 1), (1, 2600, 650, 35)] * 2 + [(35, 10000, 650, 1)])
        hh = [o for o in a.ops if o.name.endswith(".hh")]
        assert all(o.producers == (o.name[:-3] + ".ih",) for o in hh)
    else:       # depthwise convs stay grouped
        assert sorted(o.dims["groups"] for o in a.ops if o.kind == "conv") == \
            sorted(o.dims["groups"] for o in b.ops if o.kind == "conv")


def _mm(tmp_path, nodes, name, w=None, opset=17):
    """A model around a 4 x 4 weight ``w`` (ones by default) read by the given nodes."""
    w = np.ones((4, 4), np.float32) if w is None else w
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(w, "w")])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


@pytest.mark.parametrize("make, words", [
    (lambda d: _mm(d, [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                       helper.make_node("Add", ["h", "y"], ["y"], name="loop")], "loop.onnx"),
     ["loop.onnx: node 'loop' (Add): reads its own output 'y' (a self-loop)", "fix the export"]),
    (lambda d: _mm(d, [helper.make_node("Add", ["x", "h"], ["a"], name="early"),
                       helper.make_node("MatMul", ["a", "w"], ["h"], name="mm"),
                       helper.make_node("Relu", ["h"], ["y"], name="r")], "cycle.onnx"),
     ["cycle.onnx: node 'early' (Add): reads 'h' before node 'mm' makes it", "cycle"]),
    (lambda d: _mm(d, [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                       helper.make_node("Add", ["h", "ghost"], ["y"], name="add")], "dangling.onnx"),
     ["dangling.onnx: node 'add' (Add): input 'ghost' is not a graph input, an initialiser or any node's output"]),
    (lambda d: _mm(d, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "new.onnx", opset=99),
     ["new.onnx: opset_import: ONNX opset 99 is not one this onnx package knows", "export with opset_version <="]),
    (lambda d: _mm(d, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "nan.onnx",
                   w=np.where(np.eye(4) > 0, np.nan, 1).astype(np.float32)),
     ["nan.onnx: node 'mm' (MatMul): weight 'w' has 4 NaN or infinite values of 16", "finite weights"]),
])
@pytest.mark.parametrize("arch", ["tpu-v1", "eie-64"])
def test_a_broken_graph_is_refused_not_lowered_without_its_edge(tmp_path, capsys, make, words, arch):
    """Each of these lowered (a self-loop, a cycle and a dangling input as a graph without
    that edge, opset 99 through a shape inference that knows none of its nodes, NaN weights
    on EIE) and answered."""
    path = make(tmp_path)
    assert main(["simulate", str(path), "--arch", arch]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwsim: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)


def _external(tmp_path, location):
    from onnx.external_data_helper import set_external_data

    m = onnx.load(str(_mm(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "inline.onnx")))
    t = m.graph.initializer[0]
    (tmp_path / "w.bin").write_bytes(t.raw_data)
    set_external_data(t, location=location)
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    (tmp_path / "sub").mkdir(exist_ok=True)
    path = tmp_path / "sub" / "m.onnx"
    path.write_bytes(m.SerializeToString())
    return path


def test_external_data_outside_the_model_folder_is_refused(tmp_path, capsys):
    """External data pointing outside the model's folder was dropped without a word."""
    assert main(["simulate", str(_external(tmp_path, "../w.bin")), "--arch", "tpu-v1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.onnx: initialiser 'w': external data '../w.bin' lies outside the model's " \
        "folder" in err and "keep the data file beside the model" in err, err
    (tmp_path / "sub" / "w.bin").write_bytes((tmp_path / "w.bin").read_bytes())
    assert main(["simulate", str(_external(tmp_path, "w.bin")), "--arch", "tpu-v1"]) == 0        # beside it: fine
    (tmp_path / "sub" / "w.bin").unlink()
    assert main(["simulate", str(_external(tmp_path, "w.bin")), "--arch", "tpu-v1"]) == 2
    assert "external data 'w.bin': no such file beside the model" in capsys.readouterr().err


def test_a_fifo_given_as_a_model_is_refused_by_name(tmp_path, capsys):
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    assert main(["simulate", str(fifo), "--arch", "tpu-v1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.onnx: is not a regular file" in err, err

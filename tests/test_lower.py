"""Lowering real torch models: MACs against published totals and hand counts, RNN steps,
pruning density, quantized bits, control flow, user model files."""

import warnings

import pytest
import torch
from torch import nn

from workloads import HwsimError, resolve
from workloads.lower import LoweringError, lower
from workloads.zoo.lenet import LeNet5, LeNet300

# Published multiply-accumulates for one 224x224 image: torchvision's model documentation
# (its "GFLOPS" column counts multiply-adds; pytorch.org/vision/stable/models.html)
PUBLISHED_GMACS = {"alexnet": 0.714, "vgg16": 15.47, "googlenet": 1.50, "resnet18": 1.814,
                   "resnet50": 4.09, "mobilenet_v2": 0.30}


@pytest.mark.parametrize("name", list(PUBLISHED_GMACS))
def test_zoo_macs_match_published_within_1pct(name):
    wl = resolve(name)
    assert wl.macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.01)


def test_resnet18_hand_counts():
    wl = resolve("resnet18")
    conv1 = wl["conv1"]  # 3x224x224, 64 7x7 filters, stride 2, pad 3 -> 112x112
    assert conv1.macs == 112 * 112 * 64 * 3 * 7 * 7
    assert wl["layer1.0.conv2"].gemm.K == 64 * 9
    assert wl["fc"].macs == 512 * 1000
    assert wl["layer2.0.downsample.0"].dims["stride_h"] == 2
    # the density of the ReLU output feeding layer1.0.conv2 is that of the real tensor: torch's
    # own, from a forward hook on the conv with the zoo's input (eval mode, as lowering runs it)
    from workloads.zoo import ZOO
    model, x = ZOO["resnet18"].load()(batch=1)
    seen = []
    hook = model.layer1[0].conv2.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with torch.no_grad():
        model.eval()(x)
    hook.remove()
    h = seen[0]
    assert h.shape == (1, 64, 56, 56)
    assert wl["layer1.0.conv2"].operand("input").density == int((h != 0).sum()) / h.numel()   # 85266 / 200704


def test_activation_density_is_measured_from_the_real_tensor():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    x = torch.randn(5, 16)
    h = torch.relu(model[0](x))
    wl = lower(model, x)
    assert wl["2"].operand("input").density == pytest.approx(float((h != 0).float().mean()))


def test_mobilenet_depthwise_is_exact():
    wl = resolve("mobilenet_v2")
    dw = [op for op in wl.ops if op.kind == "conv" and op.dims["groups"] > 1]
    assert len(dw) == 17
    first = dw[0]  # 32 channels at 112x112, 3x3 depthwise
    assert first.dims["groups"] == first.dims["C"] == 32
    assert first.macs == 112 * 112 * 32 * 9


def test_lstm_has_one_input_gemm_and_per_step_recurrent_gemms():
    T, B = 35, 2
    wl = resolve("lstm_lm", batch=B, seq_len=T)
    ih, hh = wl["lstm.weight_ih_l0"], wl["lstm.weight_hh_l0"]
    assert (ih.gemm.M, ih.gemm.N, ih.gemm.K, ih.copies, ih.steps) == (T * B, 4 * 650, 650, 1, 1)
    assert (hh.gemm.M, hh.gemm.N, hh.gemm.K, hh.copies, hh.steps) == (B, 4 * 650, 650, 1, T)
    gemm_macs = 2 * (T * B * 2600 * 650 + T * B * 2600 * 650) + T * B * 10000 * 650
    assert wl.macs == gemm_macs
    # the first step multiplies the all-zero initial state: 34 of 35 steps see a non-zero h
    assert hh.operand("input").density == pytest.approx(34 / 35, abs=0.01)


def test_gru_gates():
    wl = resolve("gru", seq_len=10)
    hh = wl["gru.weight_hh_l1"]
    assert (hh.gemm.M, hh.gemm.N, hh.gemm.K, hh.copies, hh.steps) == (1, 3 * 512, 512, 1, 10)


def test_pruned_model_shows_real_density():
    import torch.nn.utils.prune as prune
    m = LeNet300()
    prune.l1_unstructured(m.fc1, "weight", amount=0.9)
    prune.l1_unstructured(m.fc2, "weight", amount=0.5)
    wl = lower(m, torch.randn(2, 1, 28, 28))
    assert wl["fc1"].operand("weight").density == pytest.approx(0.1, abs=1 / (784 * 300))
    assert wl["fc2"].operand("weight").density == pytest.approx(0.5, abs=1 / 30000)
    assert [op.name for op in wl.ops if op.is_gemm] == ["fc1", "fc2", "fc3"]  # the mask multiply is not an op


def _quant_wrapper(net):
    from torch.ao.quantization import DeQuantStub, QuantStub

    class Q(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.net, self.dq = QuantStub(), net, DeQuantStub()

        def forward(self, x):
            return self.dq(self.net(self.q(x)))
    return Q()


def test_quantized_models_show_real_bits():
    from torch.ao import quantization as tq
    warnings.filterwarnings("ignore")
    # dynamic int8
    dq = tq.quantize_dynamic(LeNet300().eval(), {nn.Linear}, dtype=torch.qint8)
    wl = lower(dq, torch.randn(2, 1, 28, 28))
    assert {(op.operand("weight").bits, op.operand("input").bits) for op in wl.ops if op.is_gemm} == {(8, 8)}
    # static int8 (weights inside packed params)
    q = _quant_wrapper(LeNet5()).eval()
    q.qconfig = tq.get_default_qconfig("fbgemm")
    tq.prepare(q, inplace=True)
    q(torch.randn(4, 1, 28, 28))
    tq.convert(q, inplace=True)
    wl = lower(q, torch.randn(2, 1, 28, 28))
    gemms = [op for op in wl.ops if op.is_gemm]
    assert [op.name for op in gemms] == ["net.conv1", "net.conv2", "net.fc1", "net.fc2"]
    assert all(op.operand("weight").bits == 8 and op.operand("input").bits == 8 for op in gemms)
    assert wl["net.conv2"].macs == 2 * 8 * 8 * 50 * 20 * 25  # batch 2
    # QAT fake quant: bits = log2(quant_max - quant_min + 1); fbgemm weights are qint8 -128..127
    qat = _quant_wrapper(LeNet5()).train()
    qat.qconfig = tq.get_default_qat_qconfig("fbgemm")
    tq.prepare_qat(qat, inplace=True)
    qat(torch.randn(4, 1, 28, 28))
    wl = lower(qat, torch.randn(2, 1, 28, 28))
    conv1 = wl["net.conv1"]
    assert conv1.operand("weight").bits == 8
    fq = qat.net.conv1.activation_post_process if hasattr(qat.net.conv1, "activation_post_process") else None
    qrange = qat.q.activation_post_process.quant_max - qat.q.activation_post_process.quant_min + 1
    assert conv1.operand("input").bits == (qrange - 1).bit_length()
    del fq


def test_dynamic_quantized_lstm():
    from torch.ao import quantization as tq
    warnings.filterwarnings("ignore")

    class L(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(32, 64, 2, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]
    m = tq.quantize_dynamic(L().eval(), {nn.LSTM}, dtype=torch.qint8)
    wl = lower(m, torch.randn(3, 7, 32))
    hh = wl["lstm.weight_hh_l1"]
    assert (hh.gemm.M, hh.gemm.N, hh.gemm.K, hh.copies, hh.steps) == (3, 256, 64, 1, 7)
    assert hh.operand("weight").bits == 8
    assert wl.macs == 3 * 7 * 256 * (32 + 64 + 64 + 64)


def test_control_flow_lowers_the_taken_branch():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 100)

        def forward(self, x):
            return self.a(x) if x.sum() > 0 else self.b(x)
    m = Branchy()
    assert [op.name for op in lower(m, torch.ones(1, 8)).ops] == ["sum", "a"]  # the test itself is an op
    assert [op.name for op in lower(m, -torch.ones(1, 8)).ops] == ["sum", "b"]


def test_keep_weights_stores_values(tmp_path):
    m = LeNet300()
    wl = lower(m, torch.randn(1, 1, 28, 28), keep_weights=True)
    w = wl["fc2"].operand("weight")
    assert w.shape == (100, 300)
    assert (w.values == m.fc2.weight.detach().numpy()).all()
    back = type(wl).load(wl.save(tmp_path / "l.json"))
    assert (back["fc2"].operand("weight").values == w.values).all()


def test_unsupported_op_is_named():
    class Weird(nn.Module):
        def forward(self, x):
            return torch.fft.fft(x)
    with pytest.raises(LoweringError, match="fft"):
        lower(Weird(), torch.randn(4))


def test_user_model_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("import torch\nfrom torch import nn\n"
                 "def make(batch=1):\n    return nn.Linear(10, 20), torch.randn(batch, 10)\n")
    wl = resolve(f"{f}:make", batch=3)
    assert wl.macs == 3 * 10 * 20 and wl.batch == 3
    with pytest.raises(HwsimError, match="no callable"):
        resolve(f"{f}:nothere")


def test_adhoc_specs():
    assert resolve("gemm:2,3,4:fp16").ops[0].operand("input").bits == 16
    assert resolve("conv:1,3,32,32,8,3,3,1,1").macs == 32 * 32 * 8 * 27
    for bad in ("gemm:1,2", "gemm:1,x,3", "conv:1,3,4,4,8,5,5", "gemm:1,2,3:fp7", "nonsense"):
        with pytest.raises(HwsimError):
            resolve(bad)


def test_an_embedding_lookup_reads_the_rows_it_gathers(tmp_path):
    """A 1000 x 16 table looked up by 2 x 5 token ids reads 10 rows of 16 and the 10 ids, not
    the table's 16,000 elements (trace_ops.GATHER_OPS); the table stays its source operand,
    and the trace round-trips through JSON with it."""
    from sim.gpu import PRESETS as GPUS
    from workloads.trace import Workload

    m = torch.nn.Embedding(1000, 16)
    wl = lower(m, torch.randint(0, 1000, (2, 5)))
    (op,) = [o for o in wl.ops if o.op == "embedding"]
    assert op.dims["inputs"] == 2 * 5 * 16 + 2 * 5 and op.operand("input").shape == (1000, 16)
    assert Workload.load(wl.save(tmp_path / "emb.json")).ops == wl.ops
    r = GPUS["a100"].simulate(wl).ops[0]
    bytes_per = r.accesses["dram.output.writes"] / (2 * 5 * 16)      # the op's element width
    assert r.accesses["dram.input.reads"] == pytest.approx((2 * 5 * 16 + 2 * 5) * bytes_per)

"""Transformers and training steps: attention in every stock form, the transformer zoo
against PyTorch's FlopCounterMode and published counts, training-step FLOPs against
Narayanan et al.'s formulas, optimizers against PyTorch's own, memory against the
standard per-parameter counts, GPT-3 175B on the meta device, and bad input."""

import functools
import io
import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from analysis.cli import main
from sim.registry import presets, simulate
from workloads import HwsimError
from workloads.lower import lower
from workloads.memory import footprint
from workloads.spec import Lowering, resolve
from workloads.training import OPTIMIZERS


def counted_macs(model, inputs, train=False) -> int:
    """PyTorch's own count (math attention backend), the reference for every model."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    fc = FlopCounterMode(display=False)
    model.train(train)
    ctx = torch.enable_grad() if train else torch.no_grad()
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)      # its fused kernels are invisible to the counter
    try:
        with ctx, sdpa_kernel(SDPBackend.MATH), fc:
            out = model(*inputs)
            if train:
                logits = out.reshape(-1, out.shape[-1])
                F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=out.device)).backward()
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    return fc.get_total_flops() // 2


class SDPA(nn.Module):
    def __init__(self, d=64, heads=4):
        super().__init__()
        self.qkv, self.out, self.h = nn.Linear(d, 3 * d), nn.Linear(d, d), heads

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = (t.view(B, L, self.h, D // self.h).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        return self.out(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, L, D))


class MHA(nn.Module):
    def __init__(self, d=64, heads=4):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def _stock():
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2)
    return [("TransformerEncoder", enc), ("MultiheadAttention", MHA()), ("scaled_dot_product_attention", SDPA())]


@pytest.mark.parametrize("name, model", _stock(), ids=[n for n, _ in _stock()])
def test_stock_attention_lowers_in_both_forms_and_runs_everywhere(name, model):
    """The three stock forms failed on aten::_native_multi_head_attention and the CPU flash
    kernel. Unfused: QK^T and PV as batched GEMMs (heads as copies) with PyTorch's MACs;
    fused: one attention op per call, the same MACs."""
    x = torch.randn(2, 16, 64)
    want = counted_macs(model, x)
    unfused = lower(model, x)
    assert unfused.macs == want
    bmm = [o for o in unfused.ops if o.op == "bmm"]
    assert bmm and all(o.copies == 2 * 4 for o in bmm)               # batch x heads
    fused = lower(model, x, attention="fused")
    att = [o for o in fused.ops if o.kind == "attention"]
    assert len(att) == len(bmm) // 2 and fused.macs == want
    assert all((o.dims["H"], o.dims["Lq"], o.dims["Lk"], o.dims["E"]) == (4, 16, 16, 16) for o in att)
    for preset in presets():
        for wl in (unfused, fused):
            r = simulate(wl, preset)
            assert r.cycles > 0 and r.macs == want


def lowered(spec: str, seq_len: int | None = None, how: Lowering | None = None):
    """``resolve(spec, seq_len=..., how=...)``, once per arguments in this process: a zoo
    transformer that several tests read (none changes it) is lowered once."""
    return _lowered(spec, seq_len, how or Lowering())


_lowered = functools.lru_cache(maxsize=None)(lambda spec, seq_len, how: resolve(spec, seq_len=seq_len, how=how))


SMALL = {"gpt2": dict(seq_len=16), "bert-base": dict(seq_len=16), "llama-tiny": dict(seq_len=16),
         "gpt2-xl": dict(seq_len=8), "gpt3-175b": dict(seq_len=8), "llama3-8b": dict(seq_len=8),
         "vit-b16": {}, "moe-tiny": dict(seq_len=16), "mixtral-8x7b": dict(seq_len=8),
         "deepseek-moe-16b": dict(seq_len=8)}


@pytest.mark.parametrize("name", list(SMALL))
def test_transformer_zoo_macs_equal_pytorchs_count(name):
    from workloads.spec import _call_factory
    from workloads.zoo import ZOO
    kw = SMALL[name]
    model, x = _call_factory(ZOO[name].load(), name, None, kw.get("seq_len"))
    assert lowered(name, kw.get("seq_len")).macs == counted_macs(model, x)


def test_new_models_simulate_on_every_machine():
    """Every preset runs transformers, inference and training steps (short sequences;
    benchmarks/transformer_presets.py runs every zoo transformer on every preset)."""
    for spec, seq, how in (("bert-base", 16, Lowering()), ("llama-tiny", 32, Lowering(attention="fused")),
                           ("gpt:2,128,4,64,1000", None, Lowering(train=True)),
                           ("gpt:2,128,4,64,1000", None, Lowering(train=True, attention="fused",
                                                                  precision="bf16-mixed"))):
        wl = lowered(spec, seq, how)
        for preset in presets():
            r = simulate(wl, preset)
            assert r.cycles >= r.critical_path_cycles > 0
            assert {o.phase for o in r.ops} == ({"forward"} if not how.train else {"forward", "backward", "optimizer"})


def test_published_counts_bert_and_vit():
    # BERT-base at 128 tokens: 22.5 GFLOPs (Sun et al., MobileBERT, ACL 2020, Table 3)
    assert resolve("bert-base").macs == pytest.approx(22.5e9 / 2, rel=0.01)
    # ViT-B/16: 17.56 G multiply-adds and 86,567,656 parameters (torchvision's model documentation)
    from workloads.zoo.transformer import param_count, vit_b16
    assert lowered("vit-b16").macs == pytest.approx(17.56e9, rel=0.001)
    assert param_count(vit_b16()[0]) == 86_567_656


def test_llama3_405b_has_the_published_parameters():
    # Llama Team, "The Llama 3 Herd of Models" (arXiv:2407.21783), Table 3: 126 layers of 16,384, FFN
    # 53,248, 128 query / 8 key-value heads (of 128 dims), vocabulary 128,256: by hand, per layer the
    # q and o projections, k and v of 8 x 128, three SwiGLU matrices and two RMSNorm gains, plus the
    # untied embedding and head and the final norm; the model is named "405B"
    h, kv, f, v = 16384, 8 * 128, 53248, 128256
    by_hand = 126 * (2 * h * h + 2 * h * kv + 3 * h * f + 2 * h) + 2 * v * h + h
    from workloads.zoo.transformer import llama3_405b, param_count
    assert param_count(llama3_405b(seq_len=8)[0]) == by_hand
    assert by_hand == pytest.approx(405e9, rel=0.005)


# ---- training steps against Narayanan et al. (SC 2021) -----------------------------------------------
B, S, L, H, V = 2, 64, 2, 128, 1000
GPT = f"gpt:{L},{H},4,{S},{V}"


def test_gpt_forward_and_training_flops_match_the_formulas():
    fwd = resolve(GPT, batch=B).macs
    assert fwd == 12 * B * S * L * H ** 2 * (1 + S / (6 * H) + V / (12 * L * H))       # eq. 3, forward MACs
    step = resolve(GPT, batch=B, how=Lowering(train=True))
    by = {p: sum(o.macs for o in step.ops if o.phase == p) for p in ("forward", "backward", "optimizer")}
    assert by["backward"] == 2 * by["forward"] and by["optimizer"] == 0             # a step is 3x the forward
    full = resolve(GPT, batch=B, how=Lowering(train=True, recompute="full"))
    flops = 2 * sum(o.macs for o in full.ops)
    assert flops == 96 * B * S * L * H ** 2 * (1 + S / (6 * H) + V / (16 * L * H))  # with full recomputation
    # and the common 6 x parameters x tokens, plus attention, within 2% (biases, norms, positions)
    from workloads.zoo.transformer import gpt, param_count
    n = param_count(gpt(GPT)[0]) - S * H                                          # without positions
    approx = 6 * n * B * S + 12 * B * S ** 2 * L * H
    assert 2 * (by["forward"] + by["backward"]) == pytest.approx(approx, rel=0.02)


def test_backward_ops_are_named_after_their_forward_ops():
    step = resolve(GPT, batch=B, how=Lowering(train=True))
    names = {o.name: o for o in step.ops}
    for layer in ("h.0.attn.qkv", "h.1.mlp.up", "lm_head"):
        d, w = names[f"{layer}.dgrad"], names[f"{layer}.wgrad"]
        f = names[layer]
        assert (d.phase, w.phase) == ("backward", "backward")
        assert d.macs == w.macs == f.macs                                           # both as big as the forward
        assert d.operand("weight") is not None and w.operand("weight") is None
        # dW = dY^T X reads what the forward read (X) and a gradient; dX = dY W reads a gradient
        assert set(f.producers) <= set(w.producers)
        assert any(names[p].phase == "backward" for p in w.producers)
        assert all(names[p].phase == "backward" for p in d.producers)
    # the first GEMM reads the embeddings, which need a gradient: it has a dgrad too
    assert "h.0.attn.qkv.dgrad" in names
    conv = lower(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2)),
                 torch.randn(2, 3, 12, 12), train=True)
    c1, c1w, c1d = conv["2"], conv["2.wgrad"], conv["2.dgrad"]
    g = c1.gemm
    assert (c1d.gemm.M, c1d.gemm.N, c1d.gemm.K) == (g.M, g.K, g.N)                 # dY @ W^T on the im2col view
    assert (c1w.gemm.M, c1w.gemm.N, c1w.gemm.K) == (g.K, g.N, g.M)                 # X_col^T @ dY
    assert "0.dgrad" not in {o.name for o in conv.ops}                              # the input needs no gradient


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_work_is_what_pytorch_dispatches(name):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if any(isinstance(a, torch.Tensor) and a.numel() == 1000 for a in args):
                Count.n += 1
            return func(*args, **(kwargs or {}))
    p = nn.Parameter(torch.randn(1000))
    p.grad = torch.randn(1000)
    make = {"sgd": lambda: torch.optim.SGD([p], lr=0.1, momentum=0.9, foreach=False),
            "adam": lambda: torch.optim.Adam([p], lr=0.1, foreach=False),
            "adamw": lambda: torch.optim.AdamW([p], lr=0.1, weight_decay=0.01, foreach=False)}[name]
    opt = make()
    opt.step()                                   # states exist from here on
    with Count():
        opt.step()
    assert OPTIMIZERS[name].ops_per_element == Count.n
    step = resolve(GPT, batch=B, how=Lowering(train=True, optimizer=name))
    upd = [o for o in step.ops if o.phase == "optimizer"]
    n_params = sum(o.dims["elements"] for o in upd)
    from workloads.zoo.transformer import gpt, param_count
    assert n_params == param_count(gpt(GPT)[0])
    assert all(o.dims["ops_per_element"] == Count.n and o.producers for o in upd)


@pytest.mark.parametrize("precision, optimizer, per_param", [
    ("fp16-mixed", "adam", 16), ("bf16-mixed", "adamw", 16),   # 2 + 2 + 12 (ZeRO, SC 2020, Sec. 3.1)
    ("fp32", "adam", 16), ("fp32", "sgd", 12),                  # 4 + 4 + 8 (m, v) / 4 + 4 + 4 (momentum)
])
def test_memory_per_parameter(precision, optimizer, per_param):
    f = footprint(resolve(GPT, batch=B, how=Lowering(train=True, precision=precision, optimizer=optimizer)))
    assert (f["weights_bytes"] + f["gradients_bytes"] + f["optimizer_bytes"]) / f["params"] == per_param
    assert f["peak_bytes"] > f["weights_bytes"] + f["gradients_bytes"] + f["optimizer_bytes"]


def test_recomputation_trades_memory_for_work():
    steps = {r: resolve(GPT, batch=B, how=Lowering(train=True, recompute=r, precision="bf16-mixed"))
             for r in ("none", "selective", "full")}
    act = {r: footprint(w)["activations_bytes"] for r, w in steps.items()}
    macs = {r: sum(o.macs for o in w.ops) for r, w in steps.items()}
    assert act["none"] > act["selective"] > act["full"]
    assert macs["none"] < macs["selective"] < macs["full"]
    sel = [o for o in steps["selective"].ops if o.name.endswith(".recompute")]
    # selective: QK^T and PV GEMMs, the mask and the softmax of each layer, nothing with a weight
    assert sorted({o.op for o in sel}) == sorted({"bmm", "tril", "where", "add", "_safe_softmax"})
    assert not any(o.operand("weight") for o in sel)
    assert macs["selective"] - macs["none"] == L * 2 * B * 4 * S * S * (H // 4)


def test_mixed_precision_follows_autocast():
    step = resolve(GPT, batch=B, how=Lowering(train=True, precision="fp16-mixed"))
    n = {o.name: o for o in step.ops}
    assert all(x.bits == 16 for x in n["h.0.attn.qkv"].operands)                   # GEMMs: fp16
    assert all(x.bits == 16 for x in n["h.0.attn.qkv.dgrad"].operands)             # and their gradients
    assert n["h.0.ln1"].operand("output").bits == 32                              # layer norm: fp32
    sm = next(o for o in step.ops if o.op == "_safe_softmax" and o.phase == "forward")
    assert sm.operand("output").bits == 32                                         # softmax: fp32
    qk = next(o for o in step.ops if o.op == "bmm" and o.phase == "forward")
    assert qk.operand("output").bits == 16
    assert "loss.scale" in n                                                       # fp16 scales the loss
    assert all(o.dims["ops_per_element"] == 7 + 1 + 2 for o in step.ops if o.phase == "optimizer")
    fp8 = resolve(GPT, batch=B, how=Lowering(train=True, precision="fp8-mixed"))
    qkv = next(o for o in fp8.ops if o.name == "h.0.attn.qkv")
    assert (qkv.operand("input").bits, qkv.operand("weight").bits, qkv.operand("output").bits) == (8, 8, 16)
    assert "loss.scale" not in {o.name for o in fp8.ops}


def test_kv_cache_decode():
    spec = "gpt:2,64,4,64,100"
    wl = resolve(spec, seq_len=8, how=Lowering(decode=4))
    qk = [o for o in wl.ops if o.op == "bmm" and o.name.startswith("model.h.0.")][::2]
    assert [o.gemm.N for o in qk] == [8, 9, 10, 11, 12]          # prefill, then one more cached key per step
    assert [o.gemm.M for o in qk] == [8, 1, 1, 1, 1]
    f = footprint(wl)
    assert f["kv_cache_bytes"] == 2 * 2 * 1 * 4 * 12 * 16 * 4      # K and V x layers x batch x heads x tokens x dim
    from workloads.zoo.transformer import gpt
    model, x = gpt(spec, 1, 8, 4)
    assert wl.macs == counted_macs(model, x)


def test_gpt3_175b_training_step_on_the_meta_device(capsys):
    assert main(["memory", "gpt3-175b", "--train", "--precision", "fp16-mixed", "--format", "json"]) == 0
    f = json.loads(capsys.readouterr().out)
    assert f["params"] == pytest.approx(175e9, rel=0.005)          # Brown et al. 2020, Table 2.1
    assert f["weights_bytes"] == 2 * f["params"] and f["optimizer_bytes"] == 12 * f["params"]
    assert f["activations_bytes"] > 0 and f["peak_bytes"] > 16 * f["params"]


@pytest.mark.parametrize("model, args", [("bert-base", ["--seq-len", "16", "--batch", "2"]),
                                         ("resnet50", ["--batch", "2"])])
def test_training_steps_report_by_phase_on_a100(model, args, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", model, "--arch", "a100", "--train", *args, "-o", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    ph = s["phases"]
    assert set(ph) == {"forward", "backward", "optimizer"} and s["training"]
    assert ph["backward"]["macs"] == pytest.approx(2 * ph["forward"]["macs"], rel=0.02)  # dgrad + wgrad (no dgrad of the input)
    assert sum(p["time_us"] for p in ph.values()) == pytest.approx(s["time_us"])
    assert sum(p["energy_pj"] for p in ph.values()) == pytest.approx(s["energy_pj"])
    printed = capsys.readouterr().out
    assert "uJ per sample (training step)" in printed and "samples/s" in printed and "backward" in printed
    ops = pd.read_csv(out / "ops.csv")
    assert set(ops.phase) == {"forward", "backward", "optimizer"}


@pytest.mark.parametrize("args, message", [
    (["lower", "gpt:2,100,3"], "3 heads do not divide hidden size 100"),
    (["lower", "gpt2", "--seq-len", "2000"], "longer than the model's 1024 positions"),
    (["lower", "gpt2", "--precision", "fp64-mixed"], "--precision: unknown 'fp64-mixed'"),
    (["lower", "bert-base", "--decode", "3"], "has no decode steps"),
    (["lower", "gpt:2,64,4", "--recompute", "full"], "--recompute applies to a training step"),
    (["lower", "mlp0", "--train"], "need a torch model"),
    (["lower", "gpt:2,64,x"], "use gpt:LAYERS,HIDDEN,HEADS"),
])
def test_bad_input(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_lower_train_from_the_cli(capsys):
    assert main(["lower", "lenet300", "--train", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    rows = df[df.name != "TOTAL"]
    assert set(rows.phase) == {"forward", "backward", "optimizer"}
    assert "fc1.dgrad" not in set(rows.name)             # the image needs no gradient
    assert rows[rows.phase == "backward"].macs.sum() == 2 * rows[rows.phase == "forward"].macs.sum() - \
        rows[rows.name == "fc1"].macs.sum()

"""FP8 training as Transformer Engine runs it (``--precision fp8-hybrid``, ``workloads.fp8``,
``analysis.train_fp8``): which GEMMs run in FP8, the cast kernels' bytes, the activations
kept and the memory per device, each counted by hand on small shapes."""

from __future__ import annotations

import dataclasses

import pytest

from analysis import train as T
from analysis import train_fp8 as F8
from sim.registry import resolve_arch
from sim.system.topology import PRESETS
from workloads import HwsimError
from workloads.fp8 import layer_weights
from workloads.memory import footprint
from workloads.spec import Lowering, resolve
from workloads.zoo.shapes import family

GPT = "gpt:2,64,4"          # h 64, 4 heads, MLP 256, 2 layers
B, S = 2, 16                # 32 tokens
H, FFN, T_ = 64, 256, B * S
LINEARS = ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")


def _step(precision: str, attention: str = "fused", recompute: str = "none", model: str = GPT):
    return resolve(model, batch=B, seq_len=S, how=Lowering(train=True, precision=precision, attention=attention,
                                                           recompute=recompute))


def _bits(op, *roles):
    return tuple(op.operand(r).bits for r in roles)


@pytest.mark.parametrize("attention", ["fused", "unfused"])
def test_the_blocks_linear_layers_run_fp8_and_nothing_else(attention):
    wl = _step("fp8-hybrid", attention)
    n = {op.name: op for op in wl.ops}
    assert wl.meta["precision"] == "fp8-hybrid"
    for layer in ("h.0", "h.1"):
        for lin in LINEARS:
            g = f"{layer}.{lin}"
            assert _bits(n[g], "input", "weight", "output") == (8, 8, 16)              # E4M3 x E4M3 -> bf16
            assert _bits(n[g + ".dgrad"], "input", "weight", "output") == (8, 8, 16)   # E5M2 x E4M3 -> bf16
            assert _bits(n[g + ".wgrad"], "input", "input2", "output") == (8, 8, 16)   # E4M3 x E5M2 -> bf16
    fp8 = {op.name for op in wl.ops if op.is_gemm and any(o.bits == 8 for o in op.operands)}
    assert fp8 == {f"{lay}.{lin}{s}" for lay in ("h.0", "h.1") for lin in LINEARS for s in ("", ".dgrad", ".wgrad")}
    # the core attention, the LM head and the embedding stay bf16
    assert all(o.bits == 16 for op in wl.ops if op.kind == "attention" or op.op.startswith("bmm") for o in op.operands
               if o.dtype == "float")
    assert all(o.bits == 16 for nm in ("lm_head", "lm_head.dgrad", "lm_head.wgrad") for o in n[nm].operands)
    # the rest is bf16-o2's trace, widths included
    o2 = {op.name: op for op in _step("bf16-o2", attention).ops}
    for name, op in o2.items():
        if name in n and not any(name.startswith(f"{lay}.{lin}") for lay in ("h.0", "h.1") for lin in LINEARS) \
                and not name.startswith(("h.0.ln", "h.1.ln")):
            assert n[name] == op, name


def test_the_cast_kernels_and_their_bytes_on_h100():
    wl = _step("fp8-hybrid")
    casts = {op.name: op for op in wl.ops if op.op in ("cast_transpose", "transpose")}
    per_layer = {   # elements, by hand: weights out x in, activations tokens x features
        "attn.qkv.fp8_weight": 3 * H * H, "attn.proj.fp8_weight": H * H, "mlp.up.fp8_weight": FFN * H,
        "mlp.down.fp8_weight": H * FFN,
        "ln1.fp8_transpose": T_ * H, "ln2.fp8_transpose": T_ * H,           # the norms write FP8 themselves
        "attn.attention.fp8_cast": T_ * H, "mlp.gelu.fp8_cast": T_ * FFN,    # proj's and down's inputs
        "mlp.down.grad_1": T_ * H, "mlp.up.grad_1": T_ * FFN, "attn.proj.grad_1": T_ * H,
        "attn.qkv.grad_2": T_ * 3 * H,                                       # output gradients (E5M2)
    }
    assert sorted(casts) == sorted(f"{lay}.{k}" for lay in ("h.0", "h.1") for k in per_layer)
    assert sum(per_layer[k] for k in per_layer if k.endswith("fp8_weight")) == 12 * H * H
    res = resolve_arch("h100").simulate(wl)
    acc = {o.name: o.accesses for o in res.ops}
    for name, op in casts.items():
        n = per_layer[name.split(".", 2)[2]]
        assert op.dims["elements"] == op.dims["inputs"] == n
        # cast+transpose: 2 bytes read, two 1-byte FP8 copies written; transpose of an FP8 norm output: 1 + 1
        read, written = (2 * n, 2 * n) if op.op == "cast_transpose" else (n, n)
        assert (acc[name]["dram.input.reads"], acc[name]["dram.output.writes"]) == (read, written), name


def test_activations_kept_in_fp8_where_te_keeps_them():
    """Per layer, by hand (32 tokens): each norm's output was kept in bf16 for its Linear's
    weight gradient (2 x 32 x 64 bytes) and is now kept as the FP8 transpose (1 x 32 x 64);
    the GeLU output likewise (2 -> 1 byte x 32 x 256); the attention output stays in bf16
    (FlashAttention's backward reads it) and its FP8 transpose is kept beside it (+32 x 64)."""
    a8 = footprint(_step("fp8-hybrid"))["activations_bytes"]
    a16 = footprint(_step("bf16-o2"))["activations_bytes"]
    per_layer = -T_ * H - T_ * H + T_ * H - T_ * FFN
    assert a8 - a16 == 2 * per_layer == -20480


def test_full_recomputation_recasts_the_inputs_not_the_weights():
    wl = _step("fp8-hybrid", recompute="full")
    n = {op.name: op for op in wl.ops}
    assert "h.0.ln1.fp8_transpose.recompute" in n and "h.0.attn.attention.fp8_cast.recompute" in n
    assert not any(nm.endswith(".fp8_weight.recompute") for nm in n)
    assert n["h.0.attn.qkv.wgrad"].producers[0] == "h.0.ln1.fp8_transpose.recompute"
    assert n["h.0.mlp.down.wgrad"].producers[0] == "h.0.mlp.gelu.fp8_cast.recompute"


@pytest.mark.parametrize("model", [GPT, "llama-tiny"])
def test_layer_weights_are_the_lowered_layers(model):
    wl = _step("fp8-hybrid", model=model)
    lowered = sorted((op.name[len("h.0."):-len(".fp8_weight")], op.operand("input").shape)
                     for op in wl.ops if op.name.startswith("h.0.") and op.name.endswith(".fp8_weight"))
    fam = family(model, S)
    assert fam is not None
    assert lowered == sorted(layer_weights(fam.cfg))


TINY = "gpt:4,128,4,64,1000"     # h 128: 12 h^2 = 196,608 FP8 weights per layer


def _job(**kw) -> T.Job:
    base = dict(model=TINY, system=PRESETS["dgx-h100"].with_devices(8), tp=2, pp=2, dp=2, global_batch=16,
                microbatch=2, recompute="none", precision="fp8-hybrid")
    return T.Job(**{**base, **kw})


def test_memory_per_device_adds_the_fp8_weight_copies():
    """2 layers per stage x 12 h^2 / tp FP8 weights x 2 bytes (row-wise and transposed)."""
    r8 = T.run(_job())
    r16 = T.run(_job(precision="bf16-o2"))
    extra = 2 * 2 * 12 * 128 ** 2 // 2
    assert extra == 393216
    assert r8.step.memory["weights_bytes"] - r16.step.memory["weights_bytes"] == extra
    assert r8.step.memory["total_bytes"] == pytest.approx(sum(v for k, v in r8.step.memory.items()
                                                               if k != "total_bytes"))


def test_the_weight_casts_are_charged_once_per_step():
    """m microbatches give back (1 - 1/m) of each layer's weight casts, as simulated in the
    tensor-parallel shard of the lowered trace."""
    job = _job(global_batch=16)                          # m = 16 / (2 x 2) = 4
    model = T.Model(job, cache=False)
    _, _, shard = model.regions(2, 2, "none")
    res = model.device.simulate(shard)
    wc = sum(o.time_us for o in res.ops if o.name.startswith("h.0.") and o.name.endswith(".fp8_weight"))
    assert F8.weight_cast_us(model, 2) == pytest.approx(wc, rel=1e-12)
    one = T.Model(_job(global_batch=4), cache=False).chunks(_job(global_batch=4))      # m = 1
    four = model.chunks(job)
    assert [a.fwd_us - b.fwd_us for a, b in zip(one, four)] == pytest.approx([(1 - 1 / 4) * 2 * wc] * 2)
    assert [a.bwd_us for a in one] == pytest.approx([b.bwd_us for b in four])


def test_the_amax_reductions_per_microbatch(monkeypatch):
    """Per chunk and microbatch an all-reduce over the tp x dp ranks of 4 bytes x 3 amaxes x
    4 TE modules per layer forward (48 L bytes), 4 x 2 x 4 (32 L) backward."""
    job = _job(dp=2, tp=2)
    model = T.Model(job, cache=False)
    calls = []
    comms = model.collectives(job.system)
    real = comms.run
    monkeypatch.setattr(comms, "run", lambda kind, group, nbytes: calls.append((kind, len(group), nbytes))
                        or real(kind, group, nbytes))
    F8.amax_us(job, model, 2)
    assert calls == [("allreduce", 4, 96.0), ("allreduce", 4, 64.0)]


def test_the_fast_path_is_the_reference_to_the_bit(monkeypatch):
    out = []
    for ref in (False, True):
        if ref:
            monkeypatch.setenv("HWSIM_TRAIN_REFERENCE", "1")
        else:
            monkeypatch.delenv("HWSIM_TRAIN_REFERENCE", raising=False)
        model = T.Model(_job(), cache=True)
        monkeypatch.delenv("HWSIM_TRAIN_REFERENCE", raising=False)
        r = T.run(_job(), model)
        out.append((repr(r.summary()), repr(r.step.memory)))
    assert out[0] == out[1]


@pytest.mark.parametrize("kw, message", [
    (dict(zero=3), "--precision fp8-hybrid with --zero 3"),
    (dict(system=PRESETS["dgx-a100"].with_devices(8)), "a100-80gb has no FP8 tensor cores"),
    (dict(model="lenet300", tp=1, pp=1, dp=8, global_batch=8, microbatch=1), "modelled for zoo transformers"),
])
def test_what_fp8_hybrid_does_not_model_is_refused(kw, message):
    with pytest.raises(HwsimError, match=message):
        T.run(_job(**kw))


def test_other_precisions_keep_their_chunk_key():
    j = _job(precision="bf16-o2")
    assert F8.chunk_key(j) == () and not F8.applies(j)
    assert T._chunk_key(j) == T._chunk_key(dataclasses.replace(j, global_batch=32, dp=1))


def test_memory_counts_the_fp8_weight_copies_by_hand():
    """``hwsim memory``'s footprint: fp8-hybrid holds bf16-o2's weights plus TE's FP8 copies,
    2 bytes per parameter of the blocks' Linear layers. gpt:2,128,4 (MLP 512): per layer
    qkv 128 x 384 + proj 128 x 128 + up 128 x 512 + down 512 x 128 = 196,608, two layers."""
    from workloads.memory import footprint
    from workloads.spec import Lowering, resolve
    spec = "gpt:2,128,4,64,1000"
    fp8 = footprint(resolve(spec, how=Lowering(train=True, precision="fp8-hybrid")))
    bf16 = footprint(resolve(spec, how=Lowering(train=True, precision="bf16-o2")))
    assert fp8["weights_bytes"] - bf16["weights_bytes"] == 2 * 2 * 196_608
    assert fp8["gradients_bytes"] == bf16["gradients_bytes"] and fp8["optimizer_bytes"] == bf16["optimizer_bytes"]

"""Mixture-of-experts decoders (workloads.zoo.moe): the published parameter counts, routing
checked against a token-by-token loop, the expert GEMMs' shapes and MACs by hand, training
steps and every machine."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from sim.registry import presets, simulate
from workloads import HwsimError
from workloads.spec import Lowering, resolve
from workloads.zoo.moe import MoE, capacity
from workloads.zoo.shapes import DEEPSEEK_MOE_16B, MIXTRAL_8X7B, MOE_TINY, Config


@pytest.mark.parametrize("cfg,total,active", [
    (MIXTRAL_8X7B, 46.7e9, 12.9e9),        # Jiang et al., 2024, Sec. 2 ("47B", "13B active"); Mistral's 46.7B / 12.9B
    (DEEPSEEK_MOE_16B, 16.4e9, 2.8e9),     # Dai et al., 2024, Table 2 / Sec. 5.1.1
])
def test_parameter_counts_are_the_published_ones(cfg, total, active):
    assert cfg.params() == pytest.approx(total, rel=0.005)
    assert cfg.active_params() == pytest.approx(active, rel=0.015)


def _loop(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """The layer token by token, each through its top-k experts as separate MLPs (no buffers,
    no scatter): what the batched, static-shape forward must compute when nothing is dropped."""
    cfg = moe.cfg
    out = []
    for t in x.reshape(-1, x.shape[-1]):
        p = F.softmax(moe.router(t), -1)
        w, e = torch.topk(p, cfg.top_k)
        if cfg.renorm_top_k:
            w = w / w.sum()
        y = torch.zeros_like(t)
        for wi, ei in zip(w, e):
            hid = F.silu(t @ moe.w_gate[ei]) * (t @ moe.w_up[ei])
            y = y + wi * (hid @ moe.w_down[ei])
        if moe.shared is not None:
            y = y + moe.shared(t)
        out.append(y)
    return torch.stack(out).view(x.shape)


@pytest.mark.parametrize("shared,renorm", [(0, True), (2, False)])
def test_routing_equals_a_token_by_token_loop(shared, renorm):
    # capacity factor experts / k: every expert has a slot for every token, so none is dropped
    cfg = Config(1, 32, 4, seq=64, vocab=50, act="swiglu", norm="rmsnorm", bias=False, experts=6, top_k=2,
                 expert_mlp=16, shared_experts=shared, renorm_top_k=renorm, capacity_factor=3.0)
    torch.manual_seed(0)
    moe = MoE(cfg)
    moe.reset_parameters()
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        assert torch.allclose(moe(x), _loop(moe, x), atol=1e-5)


def test_tokens_past_capacity_are_dropped_in_arrival_order():
    """Every token prefers expert 0 (its router column is large): with 2 slots per expert
    (4 tokens x top-1 / 2 experts, factor 1) tokens 0 and 1 go through expert 0, tokens 2
    and 3 are dropped there and their output is zero."""
    cfg = Config(1, 8, 2, seq=8, vocab=10, act="swiglu", bias=False, experts=2, top_k=1, expert_mlp=4,
                 capacity_factor=1.0)
    moe = MoE(cfg)
    moe.reset_parameters()
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0].fill_(1.0)
        x = torch.ones(1, 4, 8)
        y = moe(x)
    assert capacity(cfg, 4) == 2
    assert torch.count_nonzero(y[0, :2]) > 0 and torch.count_nonzero(y[0, 2:]) == 0


def test_capacity_by_hand():
    cfg = replace(MOE_TINY, capacity_factor=1.25)
    assert capacity(cfg, 128) == math.ceil(1.25 * 128 * 2 / 4) == 80
    assert capacity(MOE_TINY, 128) == 64            # dropless: tokens x k / experts rows each
    assert capacity(replace(MOE_TINY, experts=3), 10) == 7     # ceil(20 / 3)


def test_expert_gemms_and_macs_by_hand():
    """moe-tiny (2 layers x 256, 8/2 heads, 4 SwiGLU experts of 512, top 2, vocab 1000) at
    1 x 128 tokens: each MoE layer's experts are three bmm of 4 copies of 64 x 512 x 256 or
    64 x 256 x 512 (64 = 128 x 2 / 4 rows each), and the trace's MACs are the sum by hand."""
    wl = resolve("moe-tiny")
    experts = [op for op in wl.ops if op.name.startswith("h.0.mlp.w_")]
    assert sorted((op.name, op.dims["M"], op.dims["N"], op.dims["K"], op.copies) for op in experts) == [
        ("h.0.mlp.w_down", 64, 256, 512, 4), ("h.0.mlp.w_gate", 64, 512, 256, 4), ("h.0.mlp.w_up", 64, 512, 256, 4)]
    T, h, kv, hd, heads, E, f, V = 128, 256, 2 * 32, 32, 8, 4, 512, 1000
    attn = T * h * h + T * (2 * kv) * h + 2 * heads * T * T * hd + T * h * h
    moe = T * E * h + 3 * E * 64 * f * h
    assert wl.macs == 2 * (attn + moe) + T * V * h


def test_the_router_cannot_pick_more_experts_than_there_are():
    with pytest.raises(HwsimError, match="top_k"):
        replace(MOE_TINY, top_k=5)
    with pytest.raises(HwsimError, match="capacity_factor"):
        replace(MOE_TINY, capacity_factor=0.0)
    with pytest.raises(HwsimError, match="dense_layers"):
        replace(MOE_TINY, dense_layers=2)


def test_mixtral_lowers_on_the_meta_device_with_its_published_weights():
    """Mixtral at 1 x 16 tokens: the trace's GEMM weights are the model's 46.7B parameters
    less the norms' and the token embedding's (a lookup, not a GEMM); the MACs are the active
    weights per token plus attention's."""
    wl = resolve("mixtral-8x7b", seq_len=16)
    weights = sum(w.numel for w in (op.operand("weight") for op in wl.ops) if w is not None)
    norms = (2 * MIXTRAL_8X7B.layers + 1) * MIXTRAL_8X7B.hidden
    assert weights == MIXTRAL_8X7B.params() - norms - MIXTRAL_8X7B.vocab * MIXTRAL_8X7B.hidden
    # per token: the active weights but the embedding's, plus causal attention's score MACs
    T, cfg = 16, MIXTRAL_8X7B
    dense_per_token = cfg.active_params() - norms - cfg.vocab * cfg.hidden
    # top-2 of 8 over 16 tokens: 4 rows per expert, which is exactly the tokens' 2 experts each
    scores = cfg.layers * 2 * cfg.heads * T * T * cfg.head_dim
    assert wl.macs == T * dense_per_token + scores


def test_deepseek_first_layer_is_dense_and_the_rest_route():
    wl = resolve("deepseek-moe-16b", seq_len=8)
    names = {op.name for op in wl.ops}
    assert "h.0.mlp.up" in names and "h.0.mlp.router" not in names
    assert "h.1.mlp.router" in names and "h.1.mlp.shared.up" in names
    up = next(op for op in wl.ops if op.name == "h.1.mlp.shared.up")
    assert up.dims["N"] == 2 * 1408                     # the two shared experts as one MLP


def test_training_steps_and_every_machine():
    inference = resolve("moe-tiny", seq_len=32)
    train = resolve("moe-tiny", seq_len=32, how=Lowering(train=True))
    grads = {op.name for op in train.ops if op.phase == "backward"}
    assert {"h.0.mlp.w_up.wgrad", "h.0.mlp.w_up.dgrad", "h.0.mlp.router.wgrad", "h.0.mlp.topk.grad"} <= grads
    for preset in presets():
        for wl in (inference, train):
            r = simulate(wl, preset)
            assert r.cycles >= r.critical_path_cycles > 0


def test_tensor_parallelism_of_experts_is_refused_not_split_silently(capsys):
    """Splitting grouped experts over a tensor-parallel group needs expert parallelism's
    all-to-all, not modelled yet: --tp 2 is refused in one line, and a search keeps tp 1."""
    from analysis.cli import main
    from workloads.shard import tensor_parallel
    with pytest.raises(HwsimError, match="--tp 2: .*w_gate multiplies by a batch of weight matrices"):
        tensor_parallel(resolve("moe-tiny", seq_len=32, how=Lowering(train=True)), 2)
    assert main(["train", "moe-tiny", "--global-batch", "8", "--tp", "2", "--seq-len", "32"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use --tp 1" in err

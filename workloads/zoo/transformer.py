"""Transformers in plain torch.nn: GPT-2 and a GPT family, BERT, a Llama-style decoder and
ViT-B/16, with prefill and KV-cache decode.

Attention goes through ``F.scaled_dot_product_attention``, which the lowering runs unfused
(math backend) or as one fused op. Models too big to materialise (their parameters over
``MATERIALIZE_BYTES``), or whose forward is over ``MATERIALIZE_MACS`` (a large batch x
sequence), are built on PyTorch's meta device: shapes without data, so GPT-3 175B lowers in
seconds; their densities are declared (1.0), not measured. The others are
built there too but get real weights module by module as they run (:func:`_build`).

Shapes:
* GPT-2 (Radford et al., 2019): 124M = 12 layers x 768, 12 heads; 355M = 24 x 1024, 16;
  774M = 36 x 1280, 20; 1.5B = 48 x 1600, 25; vocabulary 50,257, context 1,024, learned
  positions, pre-LayerNorm, GELU MLP of 4h, LM head tied to the token embedding.
* ``gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB]``: the same architecture at any size (the shape of
  Narayanan et al., SC 2021, Table 1 takes vocabulary 51,200 and sequence 2,048).
* GPT-3 175B (Brown et al., 2020, Table 2.1): 96 layers x 12,288, 96 heads, context 2,048.
* BERT (Devlin et al., 2019): base 12 x 768, 12 heads; large 24 x 1024, 16; vocabulary
  30,522, 512 positions, 2 segment types, post-LayerNorm, GELU MLP of 4h, a tanh pooler.
* Llama-style decoder (Touvron et al., 2023): RMSNorm, SwiGLU MLP, rotary position
  embeddings, grouped-query attention (Ainslie et al., 2023), no biases, untied head; the
  default is Llama 3 8B's shape (Meta's model card: 32 x 4096, 32 query and 8 key/value
  heads, MLP 14,336, vocabulary 128,256); ``llama3-405b`` is Llama 3 405B's shape (Llama
  Team, 2024, Table 3: 126 x 16,384, 128 query and 8 key/value heads, FFN 53,248), sequence
  8,192; ``llama-tiny`` is the same design at 2 x 256.
* Mixture-of-experts decoders (:mod:`workloads.zoo.moe`): Mixtral 8x7B (Jiang et al., 2024)
  and DeepSeekMoE 16B (Dai et al., 2024), shapes and sources in :mod:`workloads.zoo.shapes`;
  ``moe-tiny`` is Mixtral's design at 2 x 256 with 4 experts.
* ViT-B/16 (Dosovitskiy et al., 2021): 16x16 patches of a 224x224 image, 12 x 768,
  12 heads, MLP 3,072, a class token, 1,000 classes.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from dataclasses import replace

from ..errors import HwsimError
from .lazy import materialize_lazily, on_meta
from .moe import MoE
from .shapes import (BERT_BASE, BERT_LARGE, DEEPSEEK_MOE_16B, GPT2, GPT3_175B, LLAMA3_8B, LLAMA3_405B, LLAMA_TINY, MATERIALIZE_BYTES,
                     MATERIALIZE_MACS, MIXTRAL_8X7B, MOE_TINY, VIT_B16, Config, Family, family, gpt_config)

__all__ = ["MATERIALIZE_BYTES", "MATERIALIZE_MACS", "Config", "RMSNorm", "rope", "Attention", "MLP", "Block",
           "Decoder", "Generate", "BERT", "ViT", "GPT2", "GPT3_175B", "LLAMA3_8B", "LLAMA_TINY", "BERT_BASE",
           "BERT_LARGE", "VIT_B16", "decoder", "gpt2", "gpt_config", "gpt", "gpt3", "llama", "llama3_405b", "bert", "vit_b16",
           "param_count", "gpt2_medium", "gpt2_large", "gpt2_xl", "bert_large", "llama_tiny", "mixtral", "deepseek_moe", "moe_tiny", "Family", "family",
           "build"]

class RMSNorm(nn.Module):
    """x / rms(x) * g (Zhang and Sennrich, 2019), written out so every step lowers."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _norm(cfg: Config) -> nn.Module:
    return RMSNorm(cfg.hidden) if cfg.norm == "rmsnorm" else nn.LayerNorm(cfg.hidden)


def rope(x: torch.Tensor, pos0: int) -> torch.Tensor:
    """Rotary position embedding (Su et al., 2021) of x[B, H, L, D] for positions pos0.. ."""
    d = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    t = torch.arange(pos0, pos0 + x.shape[-2], device=x.device, dtype=torch.float32)
    ang = torch.outer(t, inv)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        kv = (cfg.kv_heads or cfg.heads) * cfg.head_dim
        if cfg.kv_heads and cfg.kv_heads != cfg.heads:
            self.q = nn.Linear(cfg.hidden, cfg.hidden, bias=cfg.bias)
            self.kv = nn.Linear(cfg.hidden, 2 * kv, bias=cfg.bias)
        else:
            self.qkv = nn.Linear(cfg.hidden, cfg.hidden + 2 * kv, bias=cfg.bias)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden, bias=cfg.bias)

    def forward(self, x, cache=None):
        c = self.cfg
        B, L, _ = x.shape
        hkv = c.kv_heads or c.heads
        if hasattr(self, "qkv"):
            q, k, v = self.qkv(x).split([c.hidden, hkv * c.head_dim, hkv * c.head_dim], -1)
        else:
            q = self.q(x)
            k, v = self.kv(x).chunk(2, -1)
        q = q.view(B, L, c.heads, c.head_dim).transpose(1, 2)
        k = k.view(B, L, hkv, c.head_dim).transpose(1, 2)
        v = v.view(B, L, hkv, c.head_dim).transpose(1, 2)
        past = cache.get(id(self)) if cache is not None else None
        pos0 = past[0].shape[-2] if past is not None else 0
        if c.pos == "rope":
            q, k = rope(q, pos0), rope(k, pos0)
        if past is not None:
            k, v = torch.cat([past[0], k], -2), torch.cat([past[1], v], -2)
        if cache is not None:
            cache[id(self)] = (k, v)
        # a prefill is causal; a decode step's one query sees every cached key
        y = F.scaled_dot_product_attention(q, k, v, is_causal=c.causal and L > 1, enable_gqa=hkv != c.heads)
        return self.proj(y.transpose(1, 2).reshape(B, L, c.hidden))


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.act = cfg.act
        if cfg.act == "swiglu":
            self.gate = nn.Linear(cfg.hidden, cfg.mlp_width, bias=cfg.bias)
        self.up = nn.Linear(cfg.hidden, cfg.mlp_width, bias=cfg.bias)
        self.down = nn.Linear(cfg.mlp_width, cfg.hidden, bias=cfg.bias)

    def forward(self, x):
        if self.act == "swiglu":
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm (GPT, Llama) or post-norm (BERT) transformer layer."""

    def __init__(self, cfg: Config, post_norm: bool = False, moe: bool = False):
        super().__init__()
        self.ln1, self.attn, self.ln2 = _norm(cfg), Attention(cfg), _norm(cfg)
        self.mlp = MoE(cfg) if moe else MLP(cfg)
        self.post_norm = post_norm

    def forward(self, x, cache=None):
        if self.post_norm:
            x = self.ln1(x + self.attn(x, cache))
            return self.ln2(x + self.mlp(x))
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


class Decoder(nn.Module):
    """GPT / Llama-style decoder-only language model; ``forward(tokens)`` gives logits."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab, cfg.hidden)
        if cfg.pos == "learned":
            self.wpe = nn.Embedding(cfg.seq, cfg.hidden)
        self.h = nn.ModuleList(Block(cfg, moe=bool(cfg.experts) and i >= cfg.dense_layers) for i in range(cfg.layers))
        self.ln_f = _norm(cfg)
        if cfg.tie:      # shares the embedding: no second vocab x hidden matrix, not even for a moment
            self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, bias=False, device="meta")
            self.lm_head.weight = self.wte.weight
        else:
            self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)

    def forward(self, tokens, cache=None):
        L = tokens.shape[1]
        pos0 = 0
        if cache is not None and cache:
            pos0 = next(iter(cache.values()))[0].shape[-2]
        if pos0 + L > self.cfg.seq:
            raise HwsimError(f"sequence of {pos0 + L} tokens is longer than the model's {self.cfg.seq} positions; "
                             "use a shorter --seq-len (or fewer --decode steps)")
        x = self.wte(tokens)
        if self.cfg.pos == "learned":
            x = x + self.wpe(torch.arange(pos0, pos0 + L, device=tokens.device))
        for blk in self.h:
            x = blk(x, cache)
        return self.lm_head(self.ln_f(x))


class Generate(nn.Module):
    """Prefill a prompt, then ``steps`` decode steps of one token each with a KV cache."""

    def __init__(self, model: Decoder, steps: int):
        super().__init__()
        self.model, self.steps = model, steps

    def forward(self, tokens):
        cache: dict = {}
        logits = self.model(tokens, cache)
        for _ in range(self.steps):
            nxt = logits[:, -1:].argmax(-1) if not logits.is_meta else tokens[:, -1:]
            logits = self.model(nxt, cache)
        return logits


class BERT(nn.Module):
    """BERT encoder with a pooler; ``forward(tokens)`` gives the pooled [CLS] vector."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.word = nn.Embedding(cfg.vocab, cfg.hidden)
        self.position = nn.Embedding(cfg.seq, cfg.hidden)
        self.segment = nn.Embedding(2, cfg.hidden)
        self.ln = nn.LayerNorm(cfg.hidden)
        self.layers = nn.ModuleList(Block(cfg, post_norm=True) for _ in range(cfg.layers))
        self.pooler = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, tokens):
        L = tokens.shape[1]
        if L > self.cfg.seq:
            raise HwsimError(f"sequence of {L} tokens is longer than BERT's {self.cfg.seq} positions; "
                             "use --seq-len of at most that")
        pos = torch.arange(L, device=tokens.device)
        x = self.ln(self.word(tokens) + self.position(pos) + self.segment(torch.zeros_like(tokens)))
        for layer in self.layers:
            x = layer(x)
        return torch.tanh(self.pooler(x[:, 0]))


class ViT(nn.Module):
    """ViT-B/16: patch embedding (a 16x16 stride-16 conv), class token, pre-norm encoder, head."""

    def __init__(self, cfg: Config, image: int = 224, patch: int = 16, classes: int = 1000):
        super().__init__()
        self.cfg = cfg
        n = (image // patch) ** 2
        self.patch = nn.Conv2d(3, cfg.hidden, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.hidden))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, cfg.hidden))
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, classes)

    def reset_parameters(self) -> None:
        """The class token and position embeddings (its own parameters) start at zero."""
        nn.init.zeros_(self.cls)
        nn.init.zeros_(self.pos)

    def forward(self, img):
        x = self.patch(img).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln(x[:, 0]))


def _build(cls, cfg: Config, *args, meta: bool = False, tokens: int = 1):
    """The model and whether it stays on the meta device. A model that fits is built on
    the meta device too, and each module's parameters are made real just before its
    forward (initialised as the module's ``reset_parameters`` does, seeded by the
    parameter's name, so every run sees the same values) and dropped after it unless
    autograd needs them: inference holds one layer's weights at a time, so that GPT-2
    medium or BERT-large lowers in well under 1 GB while its densities are measured."""
    meta = meta or cfg.params() * 4 > MATERIALIZE_BYTES or cfg.params() * tokens > MATERIALIZE_MACS
    with on_meta():
        model = cls(cfg, *args)
    if not meta:
        materialize_lazily(model)
    return model, meta


def _tokens(batch: int, seq: int, vocab: int, meta: bool):
    if meta:
        return torch.zeros(batch, seq, dtype=torch.long, device="meta")
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(2))


def decoder(cfg: Config, batch: int = 1, seq_len: int | None = None, decode: int = 0, meta: bool = False):
    if batch < 1:
        raise HwsimError(f"--batch must be >= 1, got {batch}")
    seq = seq_len or cfg.seq
    if seq + decode > cfg.seq:
        raise HwsimError(f"--seq-len {seq} plus {decode} decode steps is longer than the model's {cfg.seq} "
                         "positions; shorten one of them")
    model, meta = _build(Decoder, cfg, meta=meta, tokens=batch * (seq + decode))
    x = _tokens(batch, seq, cfg.vocab, meta)
    return (Generate(model, decode) if decode else model), x


def gpt2(size: str = "124m", batch: int = 1, seq_len: int | None = None, decode: int = 0):
    L, h, a = GPT2[size]
    return decoder(Config(L, h, a), batch, seq_len, decode)


def gpt(spec: str, batch: int = 1, seq_len: int | None = None, decode: int = 0):
    """A GPT of the shape ``gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB]`` names (see :func:`gpt_config`)."""
    return decoder(gpt_config(spec), batch, seq_len, decode)


def gpt3(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return decoder(GPT3_175B, batch, seq_len, decode)


def llama(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return decoder(LLAMA3_8B, batch, seq_len or 2048, decode)


def bert(size: str = "base", batch: int = 1, seq_len: int | None = None):
    cfg = BERT_BASE if size == "base" else BERT_LARGE
    model, meta = _build(BERT, cfg, tokens=batch * (seq_len or 128))
    return model, _tokens(batch, seq_len or 128, cfg.vocab, meta)


def vit_b16(batch: int = 1):
    model, meta = _build(ViT, VIT_B16, tokens=batch * VIT_B16.seq)
    if meta:
        return model, torch.zeros(batch, 3, 224, 224, device="meta")
    return model, torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def gpt2_medium(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return gpt2("355m", batch, seq_len, decode)


def gpt2_large(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return gpt2("774m", batch, seq_len, decode)


def gpt2_xl(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return gpt2("1.5b", batch, seq_len, decode)


def bert_large(batch: int = 1, seq_len: int | None = None):
    return bert("large", batch, seq_len)


def llama3_405b(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return decoder(LLAMA3_405B, batch, seq_len or LLAMA3_405B.seq, decode)


def llama_tiny(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return decoder(LLAMA_TINY, batch, seq_len or 128, decode)


def mixtral(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return decoder(MIXTRAL_8X7B, batch, seq_len or 2048, decode)


def deepseek_moe(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return decoder(DEEPSEEK_MOE_16B, batch, seq_len or 2048, decode)


def moe_tiny(batch: int = 1, seq_len: int | None = None, decode: int = 0):
    return decoder(MOE_TINY, batch, seq_len or 128, decode)


def build(fam: Family, layers: int, batch: int, seq_len: int | None = None, meta: bool = True):
    """``fam``'s model with ``layers`` layers and its input, on the meta device by default
    (shapes are all parallel training needs)."""
    cfg = replace(fam.cfg, layers=layers)
    if fam.kind == "decoder":
        return decoder(cfg, batch, seq_len or fam.default_seq, meta=meta)
    if fam.kind == "bert":
        model, on_meta = _build(BERT, cfg, meta=meta)
        return model, _tokens(batch, seq_len or fam.default_seq, cfg.vocab, on_meta)
    model, on_meta = _build(ViT, cfg, meta=meta)
    img = torch.empty(batch, 3, 224, 224, device="meta") if on_meta else \
        torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    return model, img

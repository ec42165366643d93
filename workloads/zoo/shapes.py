"""The zoo transformers' shapes, without torch: each model's :class:`Config` (layers, width,
heads, vocabulary and design choices; their sources are in :mod:`workloads.zoo.transformer`)
and the :class:`Family` that parallel training plans with, so that a training run whose
lowered layer is cached never imports torch. The models themselves (``torch.nn``) are in
:mod:`workloads.zoo.transformer`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import HwsimError

__all__ = ["MATERIALIZE_BYTES", "MATERIALIZE_MACS", "Config", "GPT2", "GPT3_175B", "LLAMA3_8B", "LLAMA_TINY",
           "BERT_BASE", "BERT_LARGE", "VIT_B16", "MIXTRAL_8X7B", "DEEPSEEK_MOE_16B", "MOE_TINY", "gpt_config", "Family", "family"]

MATERIALIZE_BYTES = 2 * 1024 ** 3     # above this (fp32 parameters) a model is built on the meta device
# Above this many multiply-accumulates in one forward (about parameters x tokens), the
# forward's arithmetic would take longer than its lowering is worth (a named assumption:
# lowering ran ResNet-50 at batch 64, 262 GMAC, in 18 s on the project's 2-core machine, about
# 15 GMAC/s, so 1e11 is some 7 s), and the model stays on the meta device too: shapes exact,
# densities declared (1.0). BERT-large at batch 8 x 384 tokens is 1e12.
MATERIALIZE_MACS = 1e11


@dataclass(frozen=True)
class Config:
    layers: int
    hidden: int
    heads: int
    seq: int = 1024                  # positions the model supports
    vocab: int = 50257
    kv_heads: int | None = None      # grouped-query attention: fewer key/value heads
    mlp: int | None = None           # MLP width (default 4 x hidden)
    norm: str = "layernorm"          # layernorm | rmsnorm
    act: str = "gelu"                # gelu | swiglu
    pos: str = "learned"             # learned | rope
    bias: bool = True
    tie: bool = True                 # LM head shares the token embedding
    causal: bool = True
    # mixture of experts (workloads.zoo.moe): 0 experts is a dense MLP in every layer
    experts: int = 0                 # routed experts per MoE layer
    top_k: int = 2                   # experts each token is routed to
    expert_mlp: int | None = None    # each expert's MLP width (default: mlp_width)
    shared_experts: int = 0          # experts every token goes through (DeepSeekMoE), as one MLP
    dense_layers: int = 0            # the first layers keep a dense MLP of mlp_width (DeepSeekMoE)
    capacity_factor: float | None = None   # None: dropless; else each expert takes cf x tokens x k / experts
    renorm_top_k: bool = False       # the k routing weights divided by their sum (Mixtral)
    ep: int = 1                      # expert parallelism: this device holds experts / ep of them
    # with ep > 1 and dropless routing: the busiest expert-parallel device's routed rows over
    # the group's mean (1: balanced); the device lowered is the busiest (workloads.zoo.moe)
    load_imbalance: float = 1.0

    def __post_init__(self) -> None:
        for f in ("layers", "hidden", "heads", "seq", "vocab"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise HwsimError(f"transformer {f}: must be a positive integer, got {v!r}")
        if self.hidden % self.heads:
            raise HwsimError(f"transformer heads: {self.heads} heads do not divide hidden size {self.hidden}; "
                             "pick heads so that hidden / heads is a whole head dimension")
        kv = self.kv_heads or self.heads
        if kv < 1 or self.heads % kv:
            raise HwsimError(f"transformer kv_heads: {kv} key/value heads must divide the {self.heads} query heads")
        if self.pos == "rope" and (self.hidden // self.heads) % 2:
            raise HwsimError("transformer heads: rotary embeddings need an even head dimension")
        if self.experts:
            if not 1 <= self.top_k <= self.experts:
                raise HwsimError(f"transformer top_k: {self.top_k} must be between 1 and the {self.experts} experts")
            if not 0 <= self.dense_layers < self.layers:
                raise HwsimError(f"transformer dense_layers: {self.dense_layers} must leave at least one of the "
                                 f"{self.layers} layers an MoE layer")
            if self.capacity_factor is not None and not self.capacity_factor > 0:
                raise HwsimError(f"transformer capacity_factor: must be positive, got {self.capacity_factor!r}")
        if not isinstance(self.ep, int) or self.ep < 1 or (self.experts or 1) % self.ep:
            raise HwsimError(f"--ep {self.ep}: expert parallelism splits the {self.experts} experts evenly; "
                             "use a divisor of the expert count (1 for a dense model)")
        imb = self.load_imbalance
        if isinstance(imb, bool) or not isinstance(imb, (int, float)) or not 1 <= imb < float("inf"):
            raise HwsimError(f"--expert-imbalance: the busiest expert-parallel device's routed tokens over the mean, "
                             f">= 1, got {imb!r}")
        if imb > 1 and (self.ep < 2 or self.capacity_factor is not None):
            raise HwsimError("--expert-imbalance applies to dropless routing over expert-parallel devices (--ep 2 "
                             "or more, no capacity factor, which caps the busiest expert instead)")

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.experts else 0

    @property
    def expert_width(self) -> int:
        return self.expert_mlp or self.mlp_width

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def mlp_width(self) -> int:
        return self.mlp or 4 * self.hidden

    def params(self) -> int:
        """Parameters (as built here), for choosing the device before building."""
        h, kv = self.hidden, (self.kv_heads or self.heads) * self.head_dim
        attn = h * (h + 2 * kv) + h * h + (2 * h + 2 * kv if self.bias else 0)
        mats = 3 if self.act == "swiglu" else 2

        def mlp_of(width: int) -> int:
            return mats * h * width + ((width + h) if self.bias else 0)
        mlp = mlp_of(self.mlp_width)
        norms = (2 if self.norm == "layernorm" else 1) * 2 * h
        emb = self.vocab * h + (self.seq * h if self.pos == "learned" else 0)
        head = 0 if self.tie else self.vocab * h
        dense = self.layers - self.moe_layers
        moe = h * self.experts + self.experts * mlp_of(self.expert_width) + \
            (mlp_of(self.shared_experts * self.expert_width) if self.shared_experts else 0)
        return dense * (attn + mlp + norms) + self.moe_layers * (attn + moe + norms) + emb + head + \
            (2 if self.norm == "layernorm" else 1) * h

    def active_params(self) -> int:
        """Parameters one token runs through: every expert but its ``top_k`` routed ones left out."""
        if not self.experts:
            return self.params()
        mats = 3 if self.act == "swiglu" else 2
        idle = (self.experts - self.top_k) * (mats * self.hidden * self.expert_width +
                                              ((self.expert_width + self.hidden) if self.bias else 0))
        return self.params() - self.moe_layers * idle


GPT2 = {"124m": (12, 768, 12), "355m": (24, 1024, 16), "774m": (36, 1280, 20), "1.5b": (48, 1600, 25)}
GPT3_175B = Config(96, 12288, 96, seq=2048, vocab=50257)
LLAMA3_8B = Config(32, 4096, 32, seq=8192, vocab=128256, kv_heads=8, mlp=14336, norm="rmsnorm", act="swiglu",
                   pos="rope", bias=False, tie=False)
# Llama 3 405B (Llama Team, "The Llama 3 Herd of Models", arXiv:2407.21783, Table 3): 126 layers of
# model dimension 16,384, FFN dimension 53,248, 128 attention heads, 8 key/value heads; Table 3
# rounds the vocabulary to 128,000, the released config.json (meta-llama/Llama-3.1-405B) has
# 128,256 entries, as the 8B's does; pre-trained at 8,192 tokens (Sec. 3.4.1).
LLAMA3_405B = replace(LLAMA3_8B, layers=126, hidden=16384, heads=128, kv_heads=8, mlp=53248)
LLAMA_TINY = replace(LLAMA3_8B, layers=2, hidden=256, heads=8, kv_heads=2, mlp=688, vocab=1000, seq=512)
BERT_BASE = Config(12, 768, 12, seq=512, vocab=30522, causal=False)
BERT_LARGE = replace(BERT_BASE, layers=24, hidden=1024, heads=16)
VIT_B16 = Config(12, 768, 12, seq=197, vocab=1, causal=False)
# Mixtral 8x7B (Jiang et al., "Mixtral of Experts", arXiv:2401.04088, Table 1): 32 layers of
# dim 4096, 32 heads (head_dim 128), 8 key/value heads, hidden_dim 14336, vocabulary 32000,
# context 32768, 8 experts, top 2 (the k gates renormalised: a softmax over the top-k logits);
# SwiGLU experts, RMSNorm, RoPE, untied head. Published: 46.7B parameters, 12.9B active.
MIXTRAL_8X7B = Config(32, 4096, 32, seq=32768, vocab=32000, kv_heads=8, mlp=14336, norm="rmsnorm", act="swiglu",
                      pos="rope", bias=False, tie=False, experts=8, top_k=2, renorm_top_k=True)
# DeepSeekMoE 16B (Dai et al., "DeepSeekMoE", arXiv:2401.06066, Sec. 5.1.1 and Appendix A):
# 28 layers of 2048, 16 heads (head dim 128), the first layer a dense FFN (intermediate 10944),
# the others 2 shared + 64 routed experts of intermediate 1408, 6 routed per token; vocabulary
# 102400, context 4096; SwiGLU, RMSNorm, RoPE, untied head. Published: 16.4B parameters,
# 2.8B active.
DEEPSEEK_MOE_16B = Config(28, 2048, 16, seq=4096, vocab=102400, mlp=10944, norm="rmsnorm", act="swiglu", pos="rope",
                          bias=False, tie=False, experts=64, top_k=6, expert_mlp=1408, shared_experts=2,
                          dense_layers=1)
MOE_TINY = replace(MIXTRAL_8X7B, layers=2, hidden=256, heads=8, kv_heads=2, mlp=512, vocab=1000, seq=512, experts=4)


def gpt_config(spec: str) -> Config:
    """``gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB]`` (SEQ default 2048, VOCAB 51200 as Megatron)."""
    body = spec.partition(":")[2]
    try:
        vals = [int(v) for v in body.split(",")]
    except ValueError:
        raise HwsimError(f"bad model {spec!r}: use gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB] with integers") from None
    if len(vals) not in (3, 4, 5):
        raise HwsimError(f"bad model {spec!r}: use gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB]")
    L, h, a = vals[:3]
    return Config(L, h, a, seq=vals[3] if len(vals) > 3 else 2048, vocab=vals[4] if len(vals) > 4 else 51200)


@dataclass(frozen=True)
class Family:
    """A zoo transformer as parallel training sees it: its shape and how to build it with
    fewer layers (every layer is the same, so one layer's costs stand for all of them)."""

    cfg: Config
    kind: str                    # decoder | bert | vit
    block: str                   # the prefix of layer i's ops: f"{block}.{i}."
    default_seq: int

    def padded(self, tp: int) -> "Family":
        """The vocabulary padded as Megatron-LM pads it for ``tp``-way tensor parallelism: to a
        multiple of 128 x tp (``--make-vocab-size-divisible-by 128``; ``_vocab_size_with_padding``
        in Megatron-LM's tokenizer), so the vocabulary-parallel embedding and head split evenly.
        ViT's classifier has no vocabulary and is left as it is."""
        if self.kind == "vit":
            return self
        m = 128 * tp
        return replace(self, cfg=replace(self.cfg, vocab=-(-self.cfg.vocab // m) * m))

    @property
    def tokens_per_sample(self) -> int:
        return self.default_seq if self.kind != "vit" else 197


def family(spec: str, seq_len: int | None = None) -> Family | None:
    """The Family of a zoo transformer name or a gpt: spec (None for other models)."""
    if spec.startswith("gpt:"):
        cfg = gpt_config(spec)
        return Family(cfg, "decoder", "h", seq_len or cfg.seq)
    table = {"gpt2": Config(*GPT2["124m"]), "gpt2-medium": Config(*GPT2["355m"]), "gpt2-large": Config(*GPT2["774m"]),
             "gpt2-xl": Config(*GPT2["1.5b"]), "gpt3-175b": GPT3_175B, "llama3-8b": LLAMA3_8B,
             "llama3-405b": LLAMA3_405B, "llama-tiny": LLAMA_TINY, "mixtral-8x7b": MIXTRAL_8X7B, "moe-tiny": MOE_TINY}
    if spec in table:          # (deepseek-moe-16b's dense first layer is not one of the others: no Family)
        cfg = table[spec]
        return Family(cfg, "decoder", "h", seq_len or (2048 if spec in ("llama3-8b", "mixtral-8x7b") else
                                                       128 if spec in ("llama-tiny", "moe-tiny") else cfg.seq))
    if spec in ("bert-base", "bert-large"):
        cfg = BERT_BASE if spec == "bert-base" else BERT_LARGE
        return Family(cfg, "bert", "layers", seq_len or 128)
    if spec == "vit-b16":
        return Family(VIT_B16, "vit", "layers", 197)
    return None

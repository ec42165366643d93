"""Mixed precision as ``torch.autocast`` applies it, as a pass over a trace's graph.

Autocast's documented op lists (PyTorch, "Automatic Mixed Precision package", CUDA op
reference) decide each forward op's precision:

* **lower precision**: matrix products and convolutions (``mm``, ``bmm``, ``addmm``,
  ``linear``, ``conv*``, attention): inputs, weights and output in the low-precision
  type (fp16, bf16; FP8 GEMM inputs with 16-bit outputs for ``fp8-mixed``, the formats of
  Micikevicius et al., "FP8 Formats for Deep Learning", 2022, applied to every GEMM-like op
  with no casts: an upper bound; ``fp8-hybrid`` below is how they are run at scale);
* **float32**: softmax, log-softmax, layer/group norm, exp, log, pow, sum, cumsum,
  rsqrt, reciprocal and the losses: computed and returned in fp32;
* **everything else** runs in the widest type among its inputs (element-wise ops,
  activations, pooling, batch norm).

A gradient op keeps the precision of the forward op it differentiates (autocast does not
act in backward; gradients flow in the forward tensors' types). Mixed-precision training
keeps the model's weights and gradients in 16 bits and fp32 master weights in the
optimizer (Micikevicius et al., "Mixed Precision Training", ICLR 2018); fp16 adds loss
scaling (the loss multiplied by a scale, gradients unscaled and checked before the
update), bf16 and FP8 recipes do not need it. ``fp32`` leaves the trace as lowered.

``fp16-o2`` and ``bf16-o2`` are the other way large models are trained: the model itself
cast to 16 bits (Apex's O2 level; Megatron-LM's ``--fp16``/``--bf16``; DeepSpeed's fp16
and bf16 modes), with fp32 master weights in the optimizer. Every tensor is 16-bit,
norms and softmax included (their kernels accumulate in fp32 and return 16 bits), except
the loss, which Megatron-LM computes on fp32 logits (``vocab_parallel_cross_entropy``
casts them). This is what Korthikanti et al. (2022) count activations in.

``fp8-hybrid`` is FP8 training as it is run at scale: Megatron-LM/NeMo with Transformer
Engine (``--bf16 --fp8-format hybrid``, delayed scaling). The model is ``bf16-o2``; only the
Linear layers of its repeated blocks run FP8 GEMMs (E4M3 forward, E5M2 gradients), with the
cast and transpose kernels TE runs around them (:mod:`workloads.fp8`); attention, the
embedding and the LM head stay bf16. ``fp8-mixed`` is the autocast-style upper bound instead:
every GEMM-like op (attention and the head included) takes FP8 inputs, with no casts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import HwsimError
from .trace import Op, Operand, Workload

__all__ = ["Policy", "POLICIES", "FP8_RECIPES", "NAMES", "LOWER_KINDS", "FP32_OPS", "LOSS_OPS", "policy", "apply"]


@dataclass(frozen=True)
class Policy:
    name: str
    gemm_in: int           # bits of GEMM inputs and weights
    gemm_out: int          # bits of GEMM outputs
    low: int               # the 16-bit type's width for other low-precision tensors
    loss_scaling: bool
    master_weights: bool   # fp32 master copy in the optimizer
    tensor_core: str       # the GPU tensor-core type its GEMMs run on
    model_bits: int = 32   # the model's own tensors: 32 under autocast, 16 when the model is cast (O2)
    te_fp8: bool = False   # the blocks' Linear layers in FP8 as Transformer Engine runs them (workloads.fp8)

    @property
    def weight_bits(self) -> int:
        return self.gemm_out if self.master_weights else 32


POLICIES = {
    "fp32": Policy("fp32", 32, 32, 32, False, False, "tf32"),
    "fp16-mixed": Policy("fp16-mixed", 16, 16, 16, True, True, "fp16"),
    "bf16-mixed": Policy("bf16-mixed", 16, 16, 16, False, True, "bf16"),
    "fp8-mixed": Policy("fp8-mixed", 8, 16, 16, False, True, "fp8"),
    "fp16-o2": Policy("fp16-o2", 16, 16, 16, True, True, "fp16", model_bits=16),
    "bf16-o2": Policy("bf16-o2", 16, 16, 16, False, True, "bf16", model_bits=16),
}
# FP8 recipes: bf16-o2's widths, then workloads.fp8's pass sets the FP8 Linear layers' to 8 bits and
# adds Transformer Engine's casts. The tensor-core type (the peak MFU is taken against) is that of the
# FP8 GEMMs, as fp8-mixed's.
FP8_RECIPES = {
    "fp8-hybrid": Policy("fp8-hybrid", 16, 16, 16, False, True, "fp8", model_bits=16, te_fp8=True),
}
NAMES = (*POLICIES, *FP8_RECIPES)

LOWER_KINDS = ("gemm", "conv", "attention")
FP32_OPS = frozenset((
    "_softmax", "_safe_softmax", "softmax", "_log_softmax", "native_layer_norm", "native_group_norm", "exp", "log", "pow", "sum",
    "cumsum", "rsqrt", "reciprocal", "mse_loss", "nll_loss_forward", "nll_loss2d_forward",
    "binary_cross_entropy_with_logits", "_fused_rms_norm",
))
LOSS_OPS = frozenset(("_log_softmax", "nll_loss_forward", "nll_loss2d_forward", "mse_loss",
                      "binary_cross_entropy_with_logits"))


def policy(name: str) -> Policy:
    got = POLICIES.get(name) or FP8_RECIPES.get(name)
    if got is None:
        raise HwsimError(f"unknown precision {name!r}; one of {', '.join(NAMES)}")
    return got


def _forward_of(op: Op, by_name: dict[str, Op]) -> Op | None:
    """The forward op a gradient op differentiates (its name is FORWARD.dgrad/.wgrad/.grad...)."""
    stem = op.name
    while "." in stem:
        stem = stem.rsplit(".", 1)[0]
        f = by_name.get(stem)
        if f is not None and f.phase == "forward":
            return f
    return None


def apply(wl: Workload, name: str) -> Workload:
    """The trace with every float operand's width set as autocast would run it (``fp8-hybrid``:
    as ``bf16-o2``, then Transformer Engine's FP8 Linear layers, :mod:`workloads.fp8`)."""
    pol = policy(name)
    if pol.te_fp8:
        from .fp8 import transformer_engine
        wl = transformer_engine(apply(wl, "bf16-o2"))
        return replace(wl, meta={**wl.meta, "precision": pol.name})
    if pol.name == "fp32":
        return replace(wl, meta={**wl.meta, "precision": "fp32"})
    out_bits: dict[str, int] = {}
    by_name = {op.name: op for op in wl.ops}
    ops = []
    # the N identical blocks share their operands, so each operand at a new width is made
    # (and checked) once: keyed by the operand, its density's type and sign (1 == 1.0 and
    # 0.0 == -0.0, which are written apart) and the width; one with values is made each time
    made: dict[tuple[Operand, type, float, int], Operand] = {}

    def at(o: Operand, bits: int) -> Operand:
        if o.bits == bits:
            return o
        if o.values is not None or o.codebook is not None:
            return replace(o, bits=bits)
        key = (o, type(o.density), math.copysign(1.0, o.density), bits)
        new = made.get(key)
        if new is None:
            new = made[key] = replace(o, bits=bits)
        return new
    for op in wl.ops:
        src = op if op.phase == "forward" else (_forward_of(op, by_name) or op)
        ins = [out_bits[p] for p in op.producers if p in out_bits]      # float outputs only
        if src.kind in LOWER_KINDS:
            gin, gout = pol.gemm_in, pol.gemm_out
        elif pol.model_bits < 32:                   # the model cast: 16 bits but for the loss
            gin, gout = None, 32 if src.op in LOSS_OPS else pol.model_bits
        elif src.op in FP32_OPS:
            gin, gout = None, 32
        else:
            gin, gout = None, max(ins, default=pol.low if op.phase != "forward" else 32)
        widest_in = max(ins, default=32)

        def width(o: Operand) -> Operand:
            if o.dtype != "float":
                return o
            if o.role == "output":
                bits = gout
            elif gin is not None:
                bits = gin
            else:
                bits = widest_in
            return at(o, bits)
        operands = tuple(width(o) for o in op.operands)
        same = all(a is b for a, b in zip(operands, op.operands))
        new = op if same else replace(op, operands=operands)
        out = new.operand("output")
        if out is None or out.dtype == "float":
            out_bits[op.name] = out.bits if out is not None else gout
        ops.append(new)
    return replace(wl, ops=tuple(ops), meta={**wl.meta, "precision": pol.name})

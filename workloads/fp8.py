"""FP8 training as Transformer Engine (TE) runs it under Megatron-LM and NeMo: the
``fp8-hybrid`` precision (Megatron-LM's ``--bf16 --fp8-format hybrid``, delayed scaling), a
pass over a trace that :func:`workloads.precision.apply` has already cast to ``bf16-o2``.

Which GEMMs run in FP8: the Linear layers of the model's repeated blocks (Megatron-Core's
GPT layer spec builds ``linear_qkv``, ``linear_proj``, ``linear_fc1`` and ``linear_fc2`` from
TE modules: ``megatron/core/models/gpt/gpt_layer_specs.py``) in all three GEMMs: the forward
(E4M3 activations x E4M3 weights), the input gradient and the weight gradient (E5M2 output
gradients: the hybrid format, ``Format.HYBRID`` in ``transformer_engine/common/recipe``);
each writes 16 bits. The core attention (QK^T, softmax, PV or FlashAttention) stays bf16
(TE's ``fp8_dpa`` is off by default), and so do the embedding and the LM head (Megatron's
``output_layer`` is ``tensor_parallel.ColumnParallelLinear``, not a TE module, except for
MXFP8 on Blackwell: ``megatron/core/models/gpt/gpt_model.py``).

The kernels the FP8 GEMMs need, as element-wise ops (``op`` is TE's kernel), from TE's
``module/linear.py`` and ``module/layernorm_linear.py`` (Hopper's FP8 GEMMs take both
operands K-major, so every FP8 operand is kept row-wise for one GEMM and column-wise, i.e.
transposed, for another):

* ``P.fp8_cast`` (``cast_transpose``): a GEMM input that a non-norm op P wrote is read in
  bf16 and written twice in FP8, row-wise for the forward GEMM and transposed for the
  weight gradient: 2 + 1 + 1 bytes per element. The transposed copy is what the backward
  keeps (1 byte per element where bf16 kept 2); the row-wise one is freed after the GEMM.
* a norm feeding FP8 GEMMs (TE's LayerNormLinear) writes its output in FP8 itself (the
  fused norm kernel, ``Impl::FULLY_FUSED`` in ``pytorch/csrc/extensions/normalization.cpp``)
  and ``P.fp8_transpose`` (``transpose``, ``nvte_transpose`` after the norm in
  ``common/normalization/layernorm/ln_api.cpp``) makes the transposed copy: 1 + 1 bytes per
  element. The norm's output is then no longer kept for the backward: the trace's edge from
  the norm's own backward to its output (standing for the mean and rstd, 8 bytes per token,
  not counted) is dropped.
* ``G.fp8_weight`` (``cast_transpose``): each FP8 weight cast row-wise and transposed, once
  per step (TE recasts the weight only on the first microbatch, ``is_first_microbatch``,
  and keeps both copies: 2 bytes per parameter beside the bf16 weight). It feeds the
  forward GEMM only, so it is not counted as an activation; ``analysis.train_fp8`` counts
  the copies as weights and charges the cast once per step.
* ``G.grad_N`` (``cast_transpose``): the output gradient of each FP8 Linear cast to E5M2,
  row-wise for the input gradient and transposed for the weight gradient (2 + 1 + 1 bytes
  per element), named as the Linear's other backward ops are so that tensor parallelism
  shards it as the gradient it is.

Each cast is one memory-bound kernel: ``inputs`` and ``elements`` are the bf16 elements it
reads and the two FP8 copies it writes count as one bf16-sized element each (the device
models price a vector op's bytes at its input's width); its output operand is the one FP8
copy that lives on (n bytes). A cast does ``CAST_OPS_PER_ELEMENT`` = 3 vector operations per
element, counted as the trace counts aten's ``mul``, ``abs`` and ``maximum`` (one each): TE's
cast-transpose kernel multiplies by the scale and keeps ``fmaxf(fabsf(x), amax)``
(``transformer_engine/common/transpose/cast_transpose.cu``); a transpose moves data only (1).
The fused norm is priced as the bf16 norm it replaces (its FP8 write, 1 byte less per
element, is not taken off).

Not modelled: TE's FP8 all-gather of a row-parallel Linear's output gradient under sequence
parallelism (the trace's all-gather stays bf16), FP8 attention (``fp8_dpa``), FP8 parameters
(``--fp8-param-gather``) and current or block scaling recipes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import HwsimError
from .shard import forward_name
from .trace import Op, Operand, Workload

if TYPE_CHECKING:
    from .zoo.shapes import Config

__all__ = ["AMAX_HISTORY_LEN", "FWD_AMAXES", "BWD_AMAXES", "TE_MODULES_PER_LAYER", "CAST_OPS_PER_ELEMENT",
           "fp8_linears", "layer_weights", "weight_cast", "transformer_engine"]

# DelayedScaling's defaults (transformer_engine/common/recipe/__init__.py: amax_history_len=1024,
# amax_compute_algo="max"); NeMo's GPT-3 configs set the same (NVIDIA/NeMo-Framework-Launcher,
# launcher_scripts/conf/training/gpt3/175b.yaml: fp8_amax_history_len 1024, fp8_amax_compute_algo max).
# Megatron-LM's own default is 1, "most_recent" (megatron/core/transformer/transformer_config.py).
AMAX_HISTORY_LEN = 1024
# amaxes each TE module records (transformer_engine/pytorch/module/base.py: num_gemms * 3 forward:
# input, weight, output; num_gemms * 2 backward: output gradient, input gradient)
FWD_AMAXES = 3
BWD_AMAXES = 2
# TE modules per transformer layer in Megatron-Core's GPT layer spec (gpt_layer_specs.py): linear_qkv,
# linear_proj, linear_fc1, linear_fc2 (q/k/v and gate/up are one fused module each)
TE_MODULES_PER_LAYER = 4
# x * scale, fabsf(x), fmaxf(., amax) per element (transformer_engine/common/transpose/cast_transpose.cu)
CAST_OPS_PER_ELEMENT = 3
RECOMPUTE = ".recompute"


def _base(name: str) -> str:
    return name[:-len(RECOMPUTE)] if name.endswith(RECOMPUTE) else name


def _in_block(name: str, blocks: list[str]) -> bool:
    return any(name.startswith(b + ".") for b in blocks)


def fp8_linears(wl: Workload) -> list[str]:
    """The forward GEMMs that run in FP8: those with a weight inside the model's repeated
    blocks (Transformer Engine's Linear layers); the embedding and the head lie outside."""
    blocks = list(wl.meta.get("blocks") or [])
    return [op.name for op in wl.ops if op.phase == "forward" and op.kind == "gemm"
            and op.operand("weight") is not None and _in_block(op.name, blocks)]


def layer_weights(cfg: "Config") -> tuple[tuple[str, tuple[int, int]], ...]:
    """The FP8 Linear layers' weights (out x in) of one dense layer of a zoo transformer, named
    relative to the layer, as ``workloads.zoo.transformer`` builds them (``Attention``, ``MLP``);
    ``tests/test_fp8_training.py`` checks them against a lowered layer."""
    h, w = cfg.hidden, cfg.mlp_width
    kv = (cfg.kv_heads or cfg.heads) * cfg.head_dim
    attn = [("attn.q", (h, h)), ("attn.kv", (2 * kv, h))] if cfg.kv_heads and cfg.kv_heads != cfg.heads \
        else [("attn.qkv", (h + 2 * kv, h))]
    mlp = ([("mlp.gate", (w, h))] if cfg.act == "swiglu" else []) + [("mlp.up", (w, h)), ("mlp.down", (h, w))]
    return tuple(attn + [("attn.proj", (h, h))] + mlp)


def _cast(name: str, op: str, shape: tuple[int, ...], bits_in: int, phase: str, producers: tuple[str, ...],
          module: str, ops_per_element: int = CAST_OPS_PER_ELEMENT) -> Op:
    n = 1
    for s in shape:
        n *= int(s)
    return Op(name=name, kind="elementwise", op=op, phase=phase, module=module, producers=producers,
              dims={"elements": n, "inputs": n, "ops_per_element": ops_per_element},
              operands=(Operand("input", shape, bits_in, "float"), Operand("output", shape, 8, "float")))


def weight_cast(gemm: str, shape: tuple[int, ...], module: str = "Linear") -> Op:
    """The once-per-step FP8 cast of an FP8 Linear's bf16 weight (row-wise and transposed)."""
    return _cast(f"{gemm}.fp8_weight", "cast_transpose", shape, 16, "forward", (), module)


def _is_norm(op: Op) -> bool:
    return op.kind == "norm" or op.module.endswith("Norm")


def transformer_engine(wl: Workload) -> Workload:
    """The bf16-o2 training trace ``wl`` with its blocks' Linear layers in FP8 and TE's casts
    (see the module docstring)."""
    linears = set(fp8_linears(wl))
    if not linears:
        raise HwsimError(f"--precision fp8-hybrid runs the Linear layers of a model's repeated blocks in FP8 "
                         f"(Transformer Engine); {wl.name} has none; use bf16-o2")
    by_name = {op.name: op for op in wl.ops}
    consumers = wl.consumers()
    instances = {n for n in by_name if _base(n) in linears and by_name[n].kind == "gemm"
                 and (n in linears or n.endswith(RECOMPUTE))}
    inst_inputs = {i: by_name[i].producers for i in instances}
    recomputed = {_base(i) for i in instances if i.endswith(RECOMPUTE)}

    # a norm that only FP8 GEMMs read (and, in the backward, their weight gradients and its own
    # backward) writes FP8 itself (TE's LayerNormLinear)
    def fused_norm(p: str) -> bool:
        op = by_name.get(p)
        if op is None or not _is_norm(op):
            return False
        for c in consumers[p]:
            if by_name[c].phase == "forward" or c.endswith(RECOMPUTE):
                if c not in instances:
                    return False
            elif not (forward_name(c) in linears and c.endswith(".wgrad")) and forward_name(c) != _base(p):
                return False
        return True

    norms = {p for i in instances for p in inst_inputs[i] if fused_norm(p)}

    def cast_name(p: str, instance: str) -> str:
        suffix = RECOMPUTE if instance.endswith(RECOMPUTE) else ""
        return f"{_base(p)}.{'fp8_transpose' if p in norms else 'fp8_cast'}{suffix}"

    # wgrad's input-side producers -> the cast of the instance the backward reads (the recomputed one if any)
    def input_cast(g: str, p: str) -> str:
        inst = g + RECOMPUTE if g in recomputed else g
        cands = [q for q in inst_inputs[inst] if _base(q) == _base(p)]
        return cast_name(cands[0], inst) if cands else cast_name(p, g)

    input_side = {g: {q for i in instances if _base(i) == g for q in inst_inputs[i]} |
                  {q + RECOMPUTE for i in instances if _base(i) == g for q in inst_inputs[i]} for g in linears}
    taken = set(by_name)
    grad_cast: dict[str, str] = {}
    for g in sorted(linears):
        k = 1
        while f"{g}.grad_{k}" in taken:
            k += 1
        grad_cast[g] = f"{g}.grad_{k}"
        taken.add(grad_cast[g])

    made: set[str] = set()
    out: list[Op] = []

    def emit(op: Op) -> None:
        if op.name not in made:
            made.add(op.name)
            out.append(op)

    def at8(op: Op, roles: tuple[str, ...]) -> tuple[Operand, ...]:
        return tuple(replace(o, bits=8) if o.role in roles and o.dtype == "float" else o for o in op.operands)

    for op in wl.ops:
        fwd = forward_name(op.name)
        if op.name in instances:
            x = op.operand("input")
            assert x is not None
            prods = []
            for p in op.producers:
                c = cast_name(p, op.name)
                src = by_name[p]
                emit(_cast(c, "transpose" if p in norms else "cast_transpose", x.shape, 8 if p in norms else 16,
                           op.phase, (p,), src.module, 1 if p in norms else CAST_OPS_PER_ELEMENT))
                prods.append(p if p in norms else c)
            if op.name in linears:                     # the weight: cast once per step, for the forward
                w = op.operand("weight")
                assert w is not None
                wc = weight_cast(op.name, w.shape, op.module)
                emit(wc)
                prods.append(wc.name)
            out.append(replace(op, operands=at8(op, ("input", "weight")), producers=tuple(prods)))
            continue
        if op.name in norms:                           # the fused norm writes FP8
            out.append(replace(op, operands=at8(op, ("output",))))
            continue
        if fwd in linears and op.name in (fwd + ".dgrad", fwd + ".wgrad"):
            side = input_side[fwd]
            grads = tuple(p for p in op.producers if p not in side)
            gy = op.operand("input") if op.name.endswith(".dgrad") else op.operand("input2")
            assert gy is not None
            emit(_cast(grad_cast[fwd], "cast_transpose", gy.shape, 16, "backward", grads, op.module))
            prods = [input_cast(fwd, p) for p in op.producers if p in side] + [grad_cast[fwd]]
            roles = ("input", "weight") if op.name.endswith(".dgrad") else ("input", "input2")
            out.append(replace(op, operands=at8(op, roles), producers=tuple(dict.fromkeys(prods))))
            continue
        if op.phase == "backward" and any(p in norms and _base(p) == fwd for p in op.producers):
            # a norm's own backward reads its mean and rstd, not its (now FP8, not kept) output
            out.append(replace(op, producers=tuple(p for p in op.producers if not (p in norms and _base(p) == fwd))))
            continue
        out.append(op)
    return replace(wl, ops=tuple(out))

"""Tensor (intra-layer) model parallelism as a transform of a training-step trace: the ops
one of ``t`` devices runs, and the collectives that hold them together.

**Transformers** (Shoeybi et al., Megatron-LM, 2019, Sec. 3): the first GEMM of attention
(Q/K/V) and of the MLP (up, gate) is column-parallel (each device computes 1/t of its
outputs: 1/t of the heads, 1/t of the MLP width), the second (the attention's output
projection, the MLP's down projection) row-parallel (1/t of its inputs), so everything in
between (per-head attention, the activation) is split too, and layer norms, residual
adds and dropout outside are replicated. Per layer and microbatch that costs two
all-reduces of the layer's output in the forward (after each row-parallel GEMM) and two
in the backward (the input gradient of each column-parallel group); recomputed forwards
repeat theirs. The vocabulary is split too: the embedding (one all-reduce of its output
in the forward) and the LM head (one of its input gradient in the backward), and with it
the loss's softmax over the vocabulary.

**Sequence parallelism** (Korthikanti et al., "Reducing Activation Recomputation in Large
Transformer Models", MLSys 2023, Sec. 4.2.2), for transformers: what plain tensor
parallelism replicates (layer norms, residual adds, dropout, the position embedding) is
split along the sequence instead, so its work and its saved activations are 1/t per device;
each all-reduce becomes a reduce-scatter (after a row-parallel GEMM, and of a
column-parallel group's input gradient) and an all-gather (of a column-parallel group's
input in the forward, of a row-parallel GEMM's and of the vocabulary-parallel embedding's
output gradient in the backward), the same bytes on a ring. The extra all-gather of the input that Megatron repeats in the backward
for the weight gradient is overlapped with the input-gradient GEMM (Sec. 4.2.2), so it is
not on the critical path here.

**Other models** (Krizhevsky, "One weird trick", 2014: model parallelism by output
channels): every layer with weights computes 1/t of its output channels, so the ops on
its output are split too; the next layer needs all channels, so each such layer's output
is all-gathered in the forward and its input gradient all-reduced in the backward.

Gradient ops follow their forward op: a column-parallel GEMM's dgrad splits its reduction
(its forward's N) and its wgrad its rows; a row-parallel GEMM's dgrad and wgrad split the
forward's K.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .errors import HwsimError
from .trace import VECTOR_KINDS, Op, Workload

__all__ = ["COLUMN", "GRAD", "ROW", "SPLIT", "VOCAB_PARAMS", "Comm", "forward_name", "tensor_parallel"]

COLUMN = re.compile(r"(^|\.)(attn\.(qkv|q|kv)|mlp\.(up|gate)|lm_head)$")
ROW = re.compile(r"(^|\.)(attn\.proj|mlp\.down)$")
SPLIT = re.compile(r"(^|\.)(attn|mlp)\.")
GRAD = re.compile(r"\.(dgrad|wgrad|grad|bgrad)(_\d+)?$")
VOCAB_PARAMS = re.compile(r"(^|\.)(wte|lm_head|word)\.weight$")


@dataclass(frozen=True)
class Comm:
    """A collective one microbatch needs, per tensor-parallel group."""

    phase: str          # forward | backward (recomputation counts as backward)
    kind: str           # allreduce | all_gather | reduce_scatter
    nbytes: float
    at: str             # the op it follows


def forward_name(name: str) -> str:
    """The forward op a gradient or recomputed op belongs to."""
    base = name[:-len(".recompute")] if name.endswith(".recompute") else name
    return GRAD.sub("", base)


def _div(v: int, t: int, what: str, op: Op) -> int:
    if v % t:
        raise HwsimError(f"tensor parallelism {t} does not divide {what} = {v} of op {op.name!r}; "
                         f"pick --tp dividing the model's heads and widths")
    return v // t


def _output_bytes(op: Op) -> float:
    o = op.operand("output")
    return o.nbytes * op.copies if o is not None else 0.0


def tensor_parallel(wl: Workload, t: int, sequence: bool = False) -> tuple[Workload, list[Comm]]:
    """The ops one of ``t`` tensor-parallel devices runs, and its collectives; ``sequence``:
    with sequence parallelism (transformers only)."""
    if t == 1:
        return wl, []
    experts = next((op.name for op in wl.ops if op.phase == "forward" and op.kind == "gemm" and op.copies > 1
                    and op.operand("weight") is not None), None)
    if experts is not None:
        raise HwsimError(f"--tp {t}: {wl.name}'s {experts} multiplies by a batch of weight matrices (a mixture of "
                         "experts' grouped experts), which tensor parallelism here would split without the expert "
                         "parallelism's all-to-all dispatch and combine (not modelled yet); use --tp 1, so that "
                         "every data-parallel replica holds every expert")
    megatron = any(ROW.search(op.name) for op in wl.ops)
    if sequence and not megatron:
        raise HwsimError(f"sequence parallelism splits a transformer's layer norms, dropout and residual adds "
                         f"along the sequence (Korthikanti et al., 2022); {wl.name} has no Megatron-style "
                         "attention and MLP layers to pair it with")
    by_name = {op.name: op for op in wl.ops}
    ops, comms = [], []
    for op in wl.ops:
        fwd_name = forward_name(op.name)
        fwd = by_name.get(fwd_name, op)
        if op.phase == "optimizer":
            ops.append(_param(op, t, megatron))
            continue
        if megatron:
            role = "col" if COLUMN.search(fwd_name) else "row" if ROW.search(fwd_name) else \
                "split" if SPLIT.search(fwd_name) or fwd_name.startswith("loss.") else "rep"
            if fwd_name == "wte" and fwd.op == "embedding":
                role = "rep"
            elif sequence and role == "rep" and fwd.kind in VECTOR_KINDS:
                role = "split"          # along the sequence: the same 1/t of its elements
        else:
            role = "col" if fwd.operand("weight") is not None and fwd.is_gemm else "split"
        new = _shard(op, fwd, role, t)
        ops.append(new)
        recompute = op.name.endswith(".recompute")
        phase = "backward" if (op.phase == "backward") else "forward"
        if megatron:
            reduce = "reduce_scatter" if sequence else "allreduce"
            if role == "row" and op.is_gemm and (op.phase == "forward" or recompute):
                comms.append(Comm(phase, reduce, _output_bytes(op), op.name))
            if op.name == fwd_name + ".dgrad" and role == "col" and not _shares_input(fwd_name, by_name):
                comms.append(Comm("backward", reduce, _output_bytes(op), op.name))
            if fwd_name == "wte" and op.phase == "forward" and op.op == "embedding":
                comms.append(Comm("forward", reduce, _output_bytes(op), op.name))
            if sequence and role == "col" and op.is_gemm and (op.phase == "forward" or recompute) \
                    and not _shares_input(fwd_name, by_name):
                comms.append(Comm(phase, "all_gather", _input_bytes(op), op.name))
            if sequence and ((role == "row" and op.name == fwd_name + ".dgrad") or
                             (fwd_name == "wte" and op.op == "embedding_dense_backward")):
                # the conjugate of a reduce-scatter: the output gradient gathered along the sequence
                comms.append(Comm("backward", "all_gather", _output_bytes(fwd), op.name))
        elif role == "col":
            if op.phase == "forward" or recompute:
                comms.append(Comm(phase, "all_gather", _output_bytes(op), op.name))
            if op.name == fwd_name + ".dgrad":
                comms.append(Comm("backward", "allreduce", _output_bytes(op), op.name))
    return replace(wl, ops=tuple(ops), meta={**wl.meta, "tensor_parallel": t}), comms


def _input_bytes(op: Op) -> float:
    i = op.operand("input")
    return i.nbytes * op.copies if i is not None else 0.0


def _shares_input(fwd_name: str, by_name: dict[str, Op]) -> bool:
    """A column-parallel GEMM reading the same input as an earlier one (Llama's kv after q,
    an MLP's up after gate) adds its input gradient into that one's: one all-reduce."""
    if fwd_name.endswith(".attn.kv"):
        return fwd_name[:-2] + "q" in by_name
    if fwd_name.endswith(".mlp.up"):
        return fwd_name[:-2] + "gate" in by_name
    return False


def _out_elements(op: Op) -> int:
    d = op.dims
    if op.kind == "gemm":
        return d["M"] * d["N"] * op.copies
    if op.kind == "conv":
        return d["K"] * op.copies
    if op.kind == "attention":
        return d["H"] * op.copies
    return d.get("elements", 1) * op.copies


def _shard(op: Op, fwd: Op, role: str, t: int) -> Op:
    """The op on one device, its output operand cut to its share (activation memory and the
    collectives' sizes are counted from it)."""
    new = _shard_dims(op, fwd, role, t)
    if new is op:
        return op
    before, after = _out_elements(op) // op.copies, _out_elements(new) // new.copies
    out = op.operand("output")
    if out is None or after == before or after == 0 or before % after:
        return new
    k = before // after
    shape = list(out.shape)
    for i in reversed(range(len(shape))):         # cut the last axis the share divides
        if shape[i] % k == 0:
            shape[i] //= k
            break
    else:
        return new
    return replace(new, operands=tuple(replace(o, shape=tuple(shape)) if o.role == "output" else o
                                       for o in new.operands))


def _shard_dims(op: Op, fwd: Op, role: str, t: int) -> Op:
    if role == "rep":
        return op
    d = dict(op.dims)
    if op.kind == "attention":
        d["H"] = _div(d["H"], t, "heads", op)
        d["Hkv"] = _div(d["Hkv"], t, "key/value heads", op)
        return replace(op, dims=d)
    if op.kind == "conv":
        if d["groups"] > 1:
            for k in ("C", "K", "groups"):
                d[k] = _div(d[k], t, k, op)
        else:
            d["K"] = _div(d["K"], t, "output channels", op)
        return replace(op, dims=d)
    if op.kind == "gemm":
        if role == "split":                       # per-head attention GEMMs: heads are copies
            if op.copies % t == 0:
                return replace(op, copies=op.copies // t)
            d["N"] = _div(d["N"], t, "N", op)
            return replace(op, dims=d)
        suffix = op.name[len(forward_name(op.name)):]
        grad = suffix.lstrip(".").split("_")[0].split(".")[0]
        if fwd.kind == "conv":               # a conv's gradient GEMMs (see lowering/gemm.py's conv_backward)
            if fwd.dims["groups"] > 1:       # grouped: the groups are the copies, split them
                return replace(op, copies=_div(op.copies, t, "groups", op))
            ck = {"dgrad": "K", "wgrad": "N"}.get(grad, "N")    # dgrad reduces over, wgrad makes, K_out
            d[ck] = _div(d[ck], t, ck, op)
            return replace(op, dims=d)
        # the dimension that is the forward's output (col) or input (row) features
        key = {("col", ""): "N", ("col", "dgrad"): "K", ("col", "wgrad"): "M",
               ("row", ""): "K", ("row", "dgrad"): "N", ("row", "wgrad"): "N"}.get((role, grad))
        if key is None:
            key = "N"
        d[key] = _div(d[key], t, key, op)
        return replace(op, dims=d)
    if op.kind in ("elementwise", "activation", "pool", "norm", "softmax"):
        if role == "row":
            return op                             # a row-parallel layer's bias (and its gradient): replicated
        return replace(op, dims={**d, "elements": max(1, d["elements"] // t), "inputs": max(1, d["inputs"] // t)})
    return op


def _param(op: Op, t: int, megatron: bool) -> Op:
    """An optimizer update of a split parameter works on 1/t of it."""
    pname = op.name[len("optimizer."):]
    layer = pname.rsplit(".", 1)[0]
    split = (COLUMN.search(layer) is not None or (ROW.search(layer) is not None and pname.endswith(".weight"))
             or VOCAB_PARAMS.search(pname) is not None) if megatron else True
    if not split:
        return op
    d = dict(op.dims)
    return replace(op, dims={**d, "elements": max(1, d["elements"] // t), "inputs": max(1, d["inputs"] // t)})

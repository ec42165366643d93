"""The dispatch capture: a ``TorchDispatchMode`` that sees every aten (and ``quantized::``)
op with its real tensors, routes it to its handler (GEMM-like, attention, vector, or one
that moves no data) and names each backward op after the forward op it differentiates."""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..aten_ops import FAKE_QUANT, IGNORED_OPS, NON_GEMM_OPS
from ..errors import LoweringError
from ..trace_ops import GATHER_OPS
from .attention import SDPA_KERNELS, sdpa_kernel
from .events import Event
from .gemm import GEMM_HANDLERS, conv_backward, quantized_rnn
from .recorder import Recorder
from .tensors import storage_key, tensors

__all__ = ["Capture", "on_op"]


class Capture(TorchDispatchMode):
    """While active, every op runs through :func:`on_op` of the lowering ``lw``."""

    def __init__(self, lw: Recorder):
        super().__init__()
        self.lw = lw

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        return on_op(self.lw, func, args, kwargs or {})


def on_op(lw: Recorder, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``func`` and record it (unless inside a fused op)."""
    if lw.silent:
        return lw.run(func, args, kwargs)
    reads = lw.reads(args, kwargs)
    n_events = len(lw.events)
    lw.fresh = not _schema(func).mutable
    out = _dispatch(lw, func, args, kwargs, reads)
    # a forward op that made an autograd node: its backward ops will be named after it
    seq = torch._C._autograd._get_sequence_nr()
    if seq != lw.last_seq and torch._C._current_autograd_node() is None:
        if len(lw.events) > n_events:
            lw.fwd_by_seq[seq - 1] = lw.events[-1]
        elif len(reads) == 1:                        # a view: its gradient belongs to its source
            lw.fwd_by_seq[seq - 1] = lw.events[next(iter(reads))]
    lw.last_seq = seq
    return out


class _Schema(NamedTuple):
    """What the dispatch reads of an op's schema, read once per op (each read of
    ``func._schema`` and its arguments builds new objects)."""

    full: str              # e.g. aten::convolution, quantized::linear
    ns: str
    key: str               # the name without ``aten::``
    names: tuple[str, ...]
    mutable: bool


_SCHEMAS: dict[Any, _Schema] = {}


def _schema(func: Any) -> _Schema:
    s = _SCHEMAS.get(func)
    if s is None:
        schema = func._schema
        full = schema.name
        ns, _, short = full.partition("::")
        s = _SCHEMAS[func] = _Schema(full, ns, short if ns == "aten" else full,
                                     tuple(a.name for a in schema.arguments), schema.is_mutable)
    return s


def _bind(names: tuple[str, ...], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    d = dict(zip(names, args))
    d.update(kwargs)
    return d


def _dispatch(lw: Recorder, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reads: frozenset[int]) -> Any:
    schema = _schema(func)
    full, ns, key = schema.full, schema.ns, schema.key
    bound = _bind(schema.names, args, kwargs)

    if key in FAKE_QUANT:
        out = func(*args, **kwargs)
        qmin, qmax = bound.get("quant_min"), bound.get("quant_max")
        res = out[0] if isinstance(out, (tuple, list)) else out
        src = next((v for v in bound.values() if isinstance(v, torch.Tensor)), None)
        if qmin is not None and qmax is not None and isinstance(res, torch.Tensor):
            k = storage_key(res)
            if k is not None:
                lw.bits_of[k] = max(1, math.ceil(math.log2(int(qmax) - int(qmin) + 1)))
                hit = lw.params.get(storage_key(src) or -1) if src is not None else None
                if hit:  # a fake-quantised weight is still that weight
                    lw.params[k] = hit
        lw.wrote(out, reads)
        return out

    if key == "convolution_backward":
        return conv_backward(lw, func, args, kwargs, bound)
    if key in SDPA_KERNELS:
        return sdpa_kernel(lw, func, args, kwargs, bound, key.endswith("_backward"))
    handler = GEMM_HANDLERS.get(key)
    if handler is not None:
        pre = handler(lw, bound)  # inspects inputs before the op may mutate them
        out = lw.run(func, args, kwargs)
        res = out[0] if isinstance(out, (tuple, list)) else out
        ev = lw.add(pre(res), reads)
        lw.wrote(out, frozenset((ev.id,)))
        lw.gemm_in_call[-1] = True
        return out
    if key in NON_GEMM_OPS:
        return _vector(lw, func, args, kwargs, bound, key, reads)
    if key in ("quantized_lstm", "quantized_gru"):
        last = quantized_rnn(lw, bound, reads)
        lw.gemm_in_call[-1] = True
        out = func(*args, **kwargs)
        lw.wrote(out, frozenset((last,)))
        return out
    if key in IGNORED_OPS or ns == "prim":
        out = lw.run(func, args, kwargs)
        if schema.mutable:           # in-place fills and copies carry what they read
            lw.wrote(out, reads)
        else:                        # copies carry their source's tag; views alias it already
            inputs = {storage_key(t) for t in tensors((args, kwargs))}
            lw.wrote([t for t in tensors((out,)) if storage_key(t) not in inputs], reads)
        return out
    if key == "_native_multi_head_attention":
        raise LoweringError("aten::_native_multi_head_attention is the fast path of nn.MultiheadAttention, "
                            "which lowering switches off; call the module rather than the op")
    path, mod = lw.stack[-1]
    raise LoweringError(
        f"unsupported operation {full} in module {path or '<root>'!r} ({type(mod).__name__}); "
        "hwsim lowers convolutions, matmuls, attention, RNNs and the common element-wise, pooling, "
        "normalisation and softmax ops and their gradients. Add it to workloads.aten_ops.NON_GEMM_OPS "
        "(as a vector op) or IGNORED_OPS (if it moves no data) to lower this model")


def _vector(lw: Recorder, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Mapping[str, Any],
            key: str, reads: frozenset[int]) -> Any:
    """An element-wise, pooling, normalisation or softmax op (or its gradient)."""
    ins = [v for v in bound.values() if isinstance(v, torch.Tensor)]
    if key in ("cat", "stack", "quantized::cat"):
        ins = [t for v in bound.values() if isinstance(v, (list, tuple)) for t in v
               if isinstance(t, torch.Tensor)]
    in_ops = [lw.operand("input" if i == 0 else "input2", t) for i, t in enumerate(ins[:2])]
    out = lw.in_place(bound) if key == "_log_softmax_backward_data" and lw.in_place is not None \
        and lw.private(bound.get("output")) else None
    if out is None:
        out = lw.run(func, args, kwargs)
    if ins and all(storage_key(t) in lw.static for t in ins):
        lw.wrote(out, frozenset())      # a weight prepared from parameters (prune's mask)
        return out
    res = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(res, torch.Tensor):
        lw.wrote(out, reads)
        return out
    # a gather reads the rows it gathers and its indices, not its whole source (trace_ops.GATHER_OPS)
    in_elems = res.numel() + sum(t.numel() for t in ins[1:]) if key in GATHER_OPS \
        else sum(t.numel() for t in ins)
    kind, per = NON_GEMM_OPS[key]
    if kind in ("pool", "activation") and ins:  # max/relu of k-bit values stay k-bit
        b = lw.bits_of.get(storage_key(ins[0]) or -1)
        if b is not None:
            lw.bits_of[storage_key(res) or -1] = b
    if kind == "pool" and res.numel():
        per = max(1, round((ins[0].numel() if ins else res.numel()) / res.numel()))
    opname = key.replace("quantized::", "q_").rstrip("_")
    fwd = lw.backward_of()
    if fwd is False:
        name, mtype = lw.here(opname)
        phase, op = "forward", opname
    else:
        name, mtype, _ = lw.grad_name(fwd or None, "grad", opname)
        phase, op = "backward", opname
    ev = lw.add(Event(
        base=name, kind=kind, op=op, dims={"elements": res.numel(), "inputs": in_elems, "ops_per_element": per},
        operands=in_ops + [lw.operand("output", res)], module=mtype, phase=phase), reads)
    lw.wrote(out, frozenset((ev.id,)))
    return out

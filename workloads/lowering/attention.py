"""Attention as one op: ``attention="fused"`` turns every ``scaled_dot_product_attention``
call into one ``attention`` op forward and one backward (the math inside runs without being
recorded), and PyTorch's own fused kernels, where a model reaches them, become one too."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .events import Event
from .recorder import Recorder

__all__ = ["ATTENTION_MODES", "SDPA_KERNELS", "FusedSDPA", "attention_event", "sdpa_kernel"]

ATTENTION_MODES = ("unfused", "fused")

SDPA_KERNELS = frozenset(f"_scaled_dot_product_{k}_attention{suffix}" for k in ("flash", "efficient", "cudnn")
                         for suffix in ("", "_backward")) | {"_scaled_dot_product_flash_attention_for_cpu",
                                                               "_scaled_dot_product_flash_attention_for_cpu_backward"}


def attention_event(lw: Recorder, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: Any, causal: bool,
                    backward: bool, reads: frozenset[int], base: str | None = None) -> Event:
    """Record one ``attention`` op of queries ``q``, keys ``k`` and values ``v``."""
    B = math.prod(int(s) for s in q.shape[:-3]) if q.dim() > 3 else 1
    H, Lq, E = (int(s) for s in q.shape[-3:])
    Hkv, Lk, Ev = int(k.shape[-3]), int(k.shape[-2]), int(v.shape[-1])
    dims = {"B": B, "H": H, "Hkv": Hkv, "Lq": Lq, "Lk": Lk, "E": E, "Ev": Ev,
            "causal": int(causal), "backward": int(backward)}
    if base is None:
        base, mtype = lw.here("attention")
    else:
        stem = lw.events[next(iter(reads))] if reads else None
        mtype = stem.module if stem is not None else ""
    lw.silent += 1             # measuring densities runs ops too: not part of the model
    try:
        ops = [lw.operand("input", q), lw.operand("input2", k), lw.operand("input3", v),
               lw.operand("output", out if isinstance(out, torch.Tensor) else out[0])]
    finally:
        lw.silent -= 1
    return lw.add(Event(base=base, kind="attention", op="sdpa_grad" if backward else "sdpa", dims=dims,
                        operands=ops, module=mtype, phase="backward" if backward else "forward"), reads)


def sdpa_kernel(lw: Recorder, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                b: Mapping[str, Any], backward: bool) -> Any:
    """One of PyTorch's fused attention kernels (reached when a module calls attention
    from inside another function): one ``attention`` op, forward or backward."""
    out = func(*args, **kwargs)
    q, k, v = b["query"], b["key"], b["value"]
    causal = bool(b.get("is_causal", False))
    if backward:
        fwd = lw.backward_of() or None
        base = f"{fwd.base}.grad" if fwd else "attention.grad"
        ev = attention_event(lw, q, k, v, out, causal, True, lw.reads(args, kwargs), base=base)
    else:
        ev = attention_event(lw, q, k, v, out, causal, False, lw.reads(q, k, v, b.get("attn_mask")))
    lw.wrote(out, frozenset((ev.id,)))
    return out


class _FusedAttention(torch.autograd.Function):
    """Fused attention for the lowering: computes with the math kernel, records one op."""

    @staticmethod
    def forward(ctx: Any, lw: Recorder, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None, dropout_p: float, causal: bool, scale: float | None,
                gqa: bool) -> torch.Tensor:
        reads = lw.reads(q, k, v, mask)
        lw.silent += 1
        try:
            with torch.no_grad():
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal,
                                                     scale=scale, enable_gqa=gqa)
        finally:
            lw.silent -= 1
        ev = attention_event(lw, q, k, v, out, causal, False, reads)
        lw.wrote(out, frozenset((ev.id,)))
        ctx.lw, ctx.ev, ctx.args = lw, ev, (mask, dropout_p, causal, scale, gqa)
        ctx.save_for_backward(q, k, v)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        lw, ev = ctx.lw, ctx.ev
        q, k, v = ctx.saved_tensors
        mask, dropout_p, causal, scale, gqa = ctx.args
        reads = lw.reads(q, k, v, grad) | {ev.id}
        lw.silent += 1
        try:
            with torch.enable_grad():
                qq, kk, vv = (t.detach().requires_grad_(True) for t in (q, k, v))
                out = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask, dropout_p=dropout_p,
                                                     is_causal=causal, scale=scale, enable_gqa=gqa)
                dq, dk, dv = torch.autograd.grad(out, (qq, kk, vv), grad)
        finally:
            lw.silent -= 1
        bev = attention_event(lw, q, k, v, dq, causal, True, frozenset(reads), base=f"{ev.base}.grad")
        lw.wrote((dq, dk, dv), frozenset((bev.id,)))
        return None, dq, dk, dv, None, None, None, None, None


def _attention(lw: Recorder, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
               dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
               enable_gqa: bool = False) -> Any:
    """``scaled_dot_product_attention`` as one fused ``attention`` op (and one for its
    gradient); the math inside runs without being recorded."""
    return _FusedAttention.apply(lw, q, k, v, attn_mask, dropout_p, bool(is_causal), scale, bool(enable_gqa))


class FusedSDPA(TorchFunctionMode):
    """While active, ``scaled_dot_product_attention`` is recorded as one op (``attention="fused"``)."""

    def __init__(self, lw: Recorder):
        super().__init__()
        self.lw = lw

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and not self.lw.silent:
            return _attention(self.lw, *args, **kwargs)
        return func(*args, **kwargs)

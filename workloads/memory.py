"""Memory footprint of a trace: by category, and the peak over the run from the graph.

Training (a trace from ``workloads.training.training_step``):

* ``weights_bytes``: parameters at the width the model computes with (fp32, or 16 bits
  under mixed precision); under ``fp8-hybrid`` also Transformer Engine's FP8 copies of the
  FP8 layers' weights, row-wise and transposed (2 bytes per parameter, :mod:`workloads.fp8`);
* ``gradients_bytes``: one gradient per parameter at the same width;
* ``optimizer_bytes``: the optimizer's fp32 states (SGD momentum 1, Adam/AdamW 2 per
  parameter) plus, under mixed precision, the fp32 master weights. Mixed-precision Adam
  thus holds 2 + 2 + 12 = 16 bytes per parameter (Rajbhandari et al., ZeRO, SC 2020,
  Sec. 3.1);
* ``activations_bytes``: outputs of forward ops that a backward op reads (what autograd
  keeps for backward), after recomputation;
* ``peak_bytes``: the most held at once as the ops run in order: weights, gradients and
  optimizer states throughout, plus every op output from the moment it is written until
  its last reader has run.

Inference: weights, the activations live at once (the same liveness walk), and the KV
cache a decode keeps (``kv_cache_bytes``, included in the activations' peak).
"""

from __future__ import annotations

from typing import Any

from .precision import policy
from .trace import Op, Workload

__all__ = ["CATEGORIES", "output_bytes", "footprint"]

CATEGORIES = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "kv_cache_bytes",
              "peak_bytes")


def output_bytes(op: Op) -> float:
    """Bytes an op writes (all copies; steps overwrite one buffer)."""
    o = op.operand("output")
    return o.nbytes * op.copies if o is not None else 0.0


def _weights(wl: Workload) -> tuple[int, float]:
    """(parameters, bytes at the width the ops read them) from the trace's weight operands."""
    seen: dict[tuple, float] = {}
    n = 0
    for op in wl.ops:
        w = op.operand("weight")
        if w is None or op.phase != "forward":
            continue
        key = (op.name.split(".wgrad")[0], w.shape)
        if key not in seen:
            seen[key] = w.nbytes
            n += w.numel
    return n, sum(seen.values())


def footprint(wl: Workload) -> dict[str, Any]:
    """The categories above (bytes) and ``params``."""
    training = "optimizer" in wl.meta or any(op.phase != "forward" for op in wl.ops)
    pol = policy(wl.meta.get("precision", "fp32"))
    if "parameters" in wl.meta:
        params = sum(_n(info["shape"]) for info in wl.meta["parameters"].values())
        weights = params * (pol.weight_bits / 8)
    else:
        params, weights = _weights(wl)
    if pol.te_fp8:      # Transformer Engine's FP8 copies of those weights (row-wise and transposed) beside them
        fp8 = {op.name: w.numel for op in wl.ops if op.phase == "forward" and op.is_gemm
               and (w := op.operand("weight")) is not None and w.bits == 8}
        weights += 2 * sum(fp8.values())
    consumers = wl.consumers()
    phase = {op.name: op.phase for op in wl.ops}
    kept = sum(output_bytes(op) for op in wl.ops
               if op.phase == "forward" and any(phase[c] != "forward" for c in consumers[op.name]))
    out: dict[str, Any] = {"model": wl.name, "params": params, "precision": pol.name, "weights_bytes": weights}
    if training:
        opt = wl.meta.get("optimizer", "adam")
        from .training import optimizer
        states = optimizer(opt).states + (1 if pol.master_weights else 0)
        out.update(gradients_bytes=params * pol.weight_bits / 8, optimizer_bytes=params * 4 * states,
                   optimizer=opt, recompute=wl.meta.get("recompute", "none"), activations_bytes=kept)
        static = weights + out["gradients_bytes"] + out["optimizer_bytes"]
    else:
        out.update(gradients_bytes=0.0, optimizer_bytes=0.0, activations_bytes=_peak_live(wl))
        static = weights
    kv = wl.meta.get("kv_cache_elements", 0)
    out["kv_cache_bytes"] = kv * pol.low / 8 if pol.name != "fp32" else kv * 4
    out["peak_bytes"] = static + _peak_live(wl)
    return out


def _n(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _peak_live(wl: Workload) -> float:
    """The largest total of op outputs alive at once, running the ops in order."""
    index = {op.name: i for i, op in enumerate(wl.ops)}
    last = {op.name: i for i, op in enumerate(wl.ops)}
    for i, op in enumerate(wl.ops):
        for p in op.producers:
            last[p] = max(last[p], i)
    free_at: dict[int, float] = {}
    live = peak = 0.0
    for i, op in enumerate(wl.ops):
        b = output_bytes(op)
        live += b
        peak = max(peak, live)
        free_at[last[op.name]] = free_at.get(last[op.name], 0.0) + b
        live -= free_at.pop(i, 0.0)
    del index
    return peak

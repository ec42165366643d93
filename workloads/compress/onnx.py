"""Compressing an ONNX model: its weights go through the same pipeline as a torch model's.

The ONNX file lowers to a trace with its weights' values (:func:`workloads.onnx_input.read_onnx`
with ``keep_weights``); every forward convolution and GEMM whose weight has values becomes
a bias-free ``nn.Conv2d`` / ``nn.Linear`` at the op's name (weights on the meta device
first, so nothing is initialised twice), the plan prunes, shares or quantises them as it
would a torch model's (:func:`workloads.compress.plan.compress`), and each op of the trace
gets its compressed weight back: the measured density, the values, the codebook or width.

An ONNX model is not run here (there is no ONNX runtime among hwsim's dependencies), so
nothing is retrained, accuracy is not measured, and activations keep the density the trace
declares; ``act_bits`` sets the inputs' width in the trace without calibration.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import HwsimError
from ..trace import Op, Workload
from .plan import CompressionResult, Plan, compress, compressed_op

__all__ = ["compress_onnx", "weight_layers"]


def weight_layers(wl: Workload) -> dict[str, Op]:
    """The trace's forward convolutions and GEMMs whose weights have values, by op name."""
    out = {}
    for op in wl.ops:
        w = op.operand("weight")
        if op.phase == "forward" and op.kind in ("conv", "gemm") and w is not None and w.values is not None:
            out[op.name] = op
    return out


def _holder(layers: dict[str, Op]) -> Any:
    """A torch module with one bias-free layer per op, at the op's name as its module path."""
    import torch
    from torch import nn

    root = nn.Module()
    for name in sorted(layers, key=lambda n: n.count(".")):      # a parent path before its children
        parts = name.split(".")
        if not all(parts):
            raise HwsimError(f"layer {name!r}: an empty part in its name cannot be a module path; rename the "
                             "ONNX node")
        parent = root
        for p in parts[:-1]:
            if not hasattr(parent, p) or not isinstance(getattr(parent, p), nn.Module):
                parent.add_module(p, nn.Module())
            parent = getattr(parent, p)
        op = layers[name]
        w = op.operand("weight")
        assert w is not None and w.values is not None
        with torch.device("meta"):
            if op.kind == "conv":
                d = op.dims
                m: nn.Module = nn.Conv2d(d["C"], d["K"], (d["R"], d["S"]), groups=d["groups"], bias=False)
            else:
                m = nn.Linear(w.shape[1], w.shape[0], bias=False)
        m.weight = nn.Parameter(torch.from_numpy(np.array(w.values, dtype=np.float32).reshape(w.shape)),
                                requires_grad=False)
        if hasattr(parent, parts[-1]):                 # a container made for a deeper name: keep its children
            for cn, child in getattr(parent, parts[-1]).named_children():
                m.add_module(cn, child)
        parent.add_module(parts[-1], m)
    return root


def compress_onnx(wl: Workload, plan: Plan, quant_bits: int | None = None,
                  act_bits: int | None = None, seed: int = 0) -> tuple[CompressionResult, Workload]:
    """Compress the weights of ``wl`` (an ONNX model's trace with weight values) by ``plan``;
    the result (storage per layer, no accuracy) and the compressed trace."""
    layers = weight_layers(wl)
    unknown = sorted(set(plan.layers) - set(layers))
    if unknown:
        raise HwsimError(f"plan: unknown layer(s) {', '.join(unknown)}; this model's layers with weights: "
                         f"{', '.join(layers) or 'none'}")
    if not layers:
        raise HwsimError(f"{wl.name}: no convolution or GEMM with constant weights to compress")
    net = _holder(layers)
    res = compress(net, plan, quant_bits=quant_bits, seed=seed)
    weights = {n: m.weight.detach().numpy() for n, m in net.named_modules() if n in layers}
    res = replace(res, model=None, act_bits=act_bits)
    ops = []
    for op in wl.ops:
        if op.name in layers:
            v = np.ascontiguousarray(weights[op.name], dtype=np.float32)
            w = op.operand("weight")
            assert w is not None
            nw = replace(w, density=int(np.count_nonzero(v)) / v.size, values=v.reshape(w.shape))
            op = replace(op, operands=tuple(nw if o.role == "weight" else o for o in op.operands))
        ops.append(compressed_op(op, res))
    return res, replace(wl.with_ops(ops), source=f"compressed:{wl.source}")

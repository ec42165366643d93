"""Epilogue fusion: which element-wise ops run inside the GEMM or convolution before them.

Inference libraries (cuDNN's fused conv-bias-activation, CUTLASS epilogues, TensorRT's
layer fusion) apply a bias, an inference batch norm (a per-channel scale and shift), an
activation and a residual add to the accumulator tile before it is stored, so those ops
launch no kernel, and their input never round-trips through DRAM. A chain of such ops
fuses into a tensor-core GEMM or convolution of the forward pass when each op:

* is an activation, an inference batch norm, or an element-wise add/sub/mul/div;
* has as many outputs as the GEMM (the tile it is applied to) and the same steps;
* reads the GEMM (or the op before it in the chain), which nothing else reads (else that
  intermediate must be stored anyway).

A second operand of an add (a residual) or of a mul is read from DRAM by the epilogue.
A training step (a trace with a backward phase) is not fused at all: an eager training
step launches every op, and its batch norm reduces over the batch. Nor are ops after a
reduction (softmax, layer norm, pooling) or after a CUDA-core depthwise conv.
"""

from __future__ import annotations

import typing
from collections import defaultdict
from typing import Literal

from workloads.trace import Op, Workload

__all__ = ["EPILOGUE_ELEMENTWISE", "Fusion", "FUSIONS", "epilogues", "chains"]

EPILOGUE_ELEMENTWISE = ("add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_")
Fusion = Literal["epilogue", "none"]
FUSIONS: tuple[Fusion, ...] = typing.get_args(Fusion)


def _fusable(op: Op) -> bool:
    if op.phase != "forward" or op.is_gemm:
        return False
    if op.kind == "activation":
        return True
    if op.kind == "norm":
        return "batch" in op.op and "backward" not in op.op        # inference batch norm
    return op.kind == "elementwise" and op.op.lower() in EPILOGUE_ELEMENTWISE


def _host(op: Op) -> bool:
    """A GEMM that runs on the tensor cores in the forward pass."""
    if not op.is_gemm or op.phase != "forward":
        return False
    g = op.gemm
    assert g is not None
    return not (op.kind == "conv" and g.N < 8 and op.dims["groups"] > 1)     # depthwise: CUDA cores


def _outputs(op: Op) -> int:
    o = op.operand("output")
    n = 1
    for s in o.shape if o is not None else ():
        n *= s
    return n * (op.copies if op.is_gemm and o is not None and len(o.shape) == 2 else 1)


def epilogues(workload: Workload) -> dict[str, str]:
    """``{fused op: the GEMM whose epilogue runs it}`` for every op that fuses."""
    if any(op.phase != "forward" for op in workload.ops):
        return {}
    readers: dict[str, list[str]] = defaultdict(list)
    for op in workload.ops:
        for p in op.producers:
            readers[p].append(op.name)
    by_name = {op.name: op for op in workload.ops}
    host_of: dict[str, str] = {}
    for op in workload.ops:
        if not _fusable(op) or not op.producers:
            continue
        for p in op.producers:
            src = by_name.get(p)
            if src is None or readers[p] != [op.name]:
                continue
            host = by_name[host_of[p]] if p in host_of else (src if _host(src) else None)
            if host is None or host.steps != op.steps or op.dims["elements"] * op.copies != _outputs(host):
                continue
            host_of[op.name] = host.name
            break
    return host_of


def chains(fused: dict[str, str]) -> dict[str, list[str]]:
    """``{GEMM: the ops fused into it, in order}``."""
    out: dict[str, list[str]] = defaultdict(list)
    for op, host in fused.items():
        out[host].append(op)
    return dict(out)

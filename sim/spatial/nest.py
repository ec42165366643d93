"""A GEMM-like op as the loop nest a spatial mapping tiles.

Eight dimensions, named as ZigZag and Timeloop name them: ``G`` groups (a grouped or
depthwise conv's groups, a bmm's batch, the op's copies), ``B`` batch, ``K`` output
channels, ``C`` input channels, ``OY``/``OX`` output rows/columns, ``FY``/``FX`` filter
rows/columns. A GEMM ``C[M,N] = A[M,K] @ B[K,N]`` is the nest with ``OX = M``, ``C = K``,
``K = N`` and the rest 1. Each operand depends on a subset of the dimensions; a loop
over any other dimension reuses its tile. The input's extent along a spatial axis is a
sliding window: ``(OY - 1) * stride + (FY - 1) * dilation + 1`` rows, less the rows a
stride longer than the window skips, never more than the tensor has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from workloads.trace import Op

__all__ = ["DIMS", "OPERANDS", "RELEVANT", "REDUCTION", "Nest", "window", "of_op"]

DIMS = ("G", "B", "K", "C", "OY", "OX", "FY", "FX")
OPERANDS = ("input", "weight", "output")
RELEVANT = {"weight": frozenset({"G", "K", "C", "FY", "FX"}),
            "input": frozenset({"G", "B", "C", "OY", "OX", "FY", "FX"}),
            "output": frozenset({"G", "B", "K", "OY", "OX"})}
REDUCTION = frozenset({"C", "FY", "FX"})


@dataclass(frozen=True)
class Nest:
    """Extents of the eight dimensions, plus the conv geometry the input's window needs."""

    sizes: Mapping[str, int]
    stride_y: int = 1
    stride_x: int = 1
    dil_y: int = 1
    dil_x: int = 1
    # the input tensor's rows and columns, unpadded (windows are clipped to them: a conv's zero
    # padding is not stored, as ZigZag 3.9.1 clips, zigzag/workload/layer_node.py calc_tensor_dim)
    in_h: int = 1
    in_w: int = 1

    @property
    def macs(self) -> int:
        n = 1
        for d in DIMS:
            n *= self.sizes[d]
        return n

    def footprint(self, operand: str, ext: Mapping[str, int]) -> int:
        """Elements of ``operand`` a tile with these extents (dim -> extent; missing: 1) touches."""
        e = {d: ext.get(d, 1) for d in DIMS}
        if operand == "weight":
            return e["G"] * e["K"] * e["C"] * e["FY"] * e["FX"]
        if operand == "output":
            return e["G"] * e["B"] * e["K"] * e["OY"] * e["OX"]
        return e["G"] * e["B"] * e["C"] * window(e["OY"], e["FY"], self.stride_y, self.dil_y, self.in_h) \
            * window(e["OX"], e["FX"], self.stride_x, self.dil_x, self.in_w)


def window(outs: int, taps: int, stride: int, dil: int, size: int) -> int:
    """Input rows (or columns) ``outs`` consecutive outputs read through ``taps`` filter
    taps: the span of their windows, less the rows a stride larger than the window skips
    (a 1x1 stride-2 conv reads every other row); exact for dilation 1."""
    return min(size, (outs - 1) * stride + (taps - 1) * dil + 1, outs * taps)


def of_op(op: Op) -> Nest:
    """The nest of one step of a trace op (``gemm`` or ``conv``; copies and conv groups on ``G``)."""
    d = op.dims
    if op.kind == "conv":
        g = d.get("groups", 1)
        sizes = {"G": g * op.copies, "B": d["N"], "K": d["K"] // g, "C": d["C"] // g, "OY": d["P"], "OX": d["Q"],
                 "FY": d["R"], "FX": d["S"]}
        return Nest(sizes, d.get("stride_h", 1), d.get("stride_w", 1), d.get("dil_h", 1), d.get("dil_w", 1),
                    d["H"], d["W"])
    gemm = op.gemm
    assert gemm is not None, "of_op takes gemm and conv ops"
    sizes = {"G": gemm.copies, "B": 1, "K": gemm.N, "C": gemm.K, "OY": 1, "OX": gemm.M, "FY": 1, "FX": 1}
    return Nest(sizes, in_h=1, in_w=gemm.M)

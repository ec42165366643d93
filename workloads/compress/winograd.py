"""Winograd minimal filtering F(m x m, 3 x 3) for 3x3 stride-1 convolutions (Lavin & Gray,
CVPR 2016): ``Y = A^T [ (G g G^T) . (B^T d B) ] A`` per tile, (m+2)^2 multiplies per tile
and channel pair instead of 9 m^2 (2.25x fewer for m = 2, 4x for m = 4).

``conv2d`` is a functional implementation (numpy, float64) checked against direct
convolution; ``lower`` rewrites a trace's eligible convs into the transformed workload
(input transform, (m+2)^2 batched GEMMs of tiles x C by C x K, output transform).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import HwsimError
from ..trace import Op, Operand, Workload, rewire

__all__ = ["BT2", "G2", "AT2", "BT4", "G4", "AT4", "MATRICES", "multiplies", "conv2d", "eligible", "lower"]

# F(2x2, 3x3)
BT2 = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G2 = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT2 = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
# F(4x4, 3x3)
BT4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
AT4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
               dtype=np.float64)
MATRICES = {2: (BT2, G2, AT2), 4: (BT4, G4, AT4)}


def multiplies(m: int, tiles: int, C: int, K: int) -> tuple[int, int]:
    """(Winograd, direct) multiplies for ``tiles`` output tiles of m x m."""
    a = m + 2
    return tiles * C * K * a * a, tiles * C * K * m * m * 9


def conv2d(x: np.ndarray, w: np.ndarray, m: int = 2, pad: int = 1) -> np.ndarray:
    """3x3, stride-1 convolution (cross-correlation, as torch) of x (N,C,H,W) by w (K,C,3,3)."""
    if m not in MATRICES:
        raise HwsimError(f"Winograd tile m must be 2 or 4, got {m}")
    if w.shape[2:] != (3, 3):
        raise HwsimError(f"Winograd F(m, 3x3) needs 3x3 filters, got {w.shape[2:]}")
    BT, G, AT = MATRICES[m]
    a = m + 2
    N, C, H, W_ = x.shape
    K = w.shape[0]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    P, Q = xp.shape[2] - 2, xp.shape[3] - 2
    th, tw = math.ceil(P / m), math.ceil(Q / m)
    xp = np.pad(xp, ((0, 0), (0, 0), (0, th * m + 2 - xp.shape[2]), (0, tw * m + 2 - xp.shape[3])))
    U = np.einsum("ij,kcjl,ml->kcim", G, w.astype(np.float64), G)              # K,C,a,a
    # input tiles: N, C, th, tw, a, a (overlapping by 2)
    idx_h = (np.arange(th) * m)[:, None] + np.arange(a)[None, :]
    idx_w = (np.arange(tw) * m)[:, None] + np.arange(a)[None, :]
    d = xp[:, :, idx_h[:, :, None, None], idx_w[None, None, :, :]]               # N,C,th,a,tw,a
    d = d.transpose(0, 1, 2, 4, 3, 5)
    V = np.einsum("ij,nctsjl,ml->nctsim", BT, d, BT)                             # N,C,th,tw,a,a
    Mt = np.einsum("kcim,nctsim->nktsim", U, V)                                  # the (m+2)^2 GEMMs
    Y = np.einsum("ij,nktsjl,ml->nktsim", AT, Mt, AT)                            # N,K,th,tw,m,m
    Y = Y.transpose(0, 1, 2, 4, 3, 5).reshape(N, K, th * m, tw * m)
    return Y[:, :, :P, :Q]


def eligible(op: Op) -> bool:
    d = op.dims
    return (op.kind == "conv" and d["R"] == 3 and d["S"] == 3 and d["stride_h"] == 1 and d["stride_w"] == 1
            and d["dil_h"] == 1 and d["dil_w"] == 1 and d["groups"] == 1)


def lower(wl: Workload, m: int = 2) -> Workload:
    """Rewrite every 3x3 stride-1 conv into its Winograd form; other ops are kept."""
    if m not in MATRICES:
        raise HwsimError(f"Winograd tile m must be 2 or 4, got {m}")
    a = m + 2
    ops = []
    renamed: dict[str, str] = {}
    for op in wl.ops:
        if not eligible(op):
            ops.append(op)
            continue
        d = op.dims
        tiles = d["N"] * math.ceil(d["P"] / m) * math.ceil(d["Q"] / m)
        x, w = op.operand("input"), op.operand("weight")
        bits, dtype = (x.bits, x.dtype) if x else (32, "float")
        C, K = d["C"], d["K"]
        ops.append(Op(f"{op.name}.wino_in", "elementwise", "winograd_input_transform",
                      {"elements": tiles * C * a * a, "inputs": d["N"] * C * d["H"] * d["W"],
                       "ops_per_element": 2 * a}, module=op.module, copies=op.copies, steps=op.steps,
                      producers=op.producers, phase=op.phase,
                      operands=(Operand("input", (d["N"] * C * d["H"] * d["W"],), bits, dtype, x.density if x else 1.0),
                                Operand("output", (tiles * C * a * a,), bits, dtype, 1.0))))
        ops.append(Op(f"{op.name}.wino_gemm", "gemm", "winograd_gemm", {"M": tiles, "N": K, "K": C},
                      copies=a * a * op.copies, steps=op.steps, module=op.module, phase=op.phase,
                      producers=(f"{op.name}.wino_in",),
                      operands=(Operand("input", (tiles, C), bits, dtype, 1.0),
                                Operand("weight", (K, C), w.bits if w else bits, w.dtype if w else dtype,
                                        w.density if w else 1.0),
                                Operand("output", (tiles, K), bits, dtype, 1.0))))
        ops.append(Op(f"{op.name}.wino_out", "elementwise", "winograd_output_transform",
                      {"elements": d["N"] * K * d["P"] * d["Q"], "inputs": tiles * K * a * a,
                       "ops_per_element": 2 * a}, module=op.module, copies=op.copies, steps=op.steps,
                      producers=(f"{op.name}.wino_gemm",), phase=op.phase,
                      operands=(Operand("input", (tiles * K * a * a,), bits, dtype, 1.0),
                                Operand("output", (d["N"] * K * d["P"] * d["Q"],), bits, dtype, 1.0))))
        renamed[op.name] = f"{op.name}.wino_out"
    return Workload(name=f"{wl.name}+winograd{m}", ops=tuple(rewire(ops, renamed)), batch=wl.batch, input_shape=wl.input_shape,
                    source=wl.source, meta={**wl.meta, "winograd": m})

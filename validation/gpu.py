"""GPU rows: cuBLAS GEMMs and GEMVs, FlashAttention kernels and whole networks on the
tensor-core presets (``sim/gpu``).

Models:

* ``gemm:M,N,K`` (C[M,N] = A[M,K] B[K,N], 2MNK FLOPs), option ``precision``;
* ``attention:B,H,L,E``: one fused self-attention (FlashAttention), options ``causal``,
  ``backward`` (0, 1, or ``both``: forward then backward), ``precision``; TFLOP/s in
  FlashAttention's own convention (its benchmark script): forward 4·B·H·L²·E, halved when
  causal, backward 2.5x the forward; ``kernel`` (``fa2``, ``fa3``; default ``auto``: FA3 on
  Hopper) where the source ran another kernel than the default (``GPUArch.attention_kernel``);
* a zoo model or ``gpt:...``, options ``batch``, ``seq_len``, ``precision``, ``layout``
  (``nchw`` for PyTorch's default, as the H200 networks were measured), ``fuse``
  (``none`` for eager PyTorch) and ``train=1`` (a training step: forward, backward, optimizer).

Every model takes ``launch`` (``graph``, the default, or ``eager``: how the kernels were
launched, ``GPUArch.launch``) and ``power`` (``sustained``, the default: the run in a loop at
the board's power limit, or ``burst``: a run of a few dozen calls from a cool card, at the
nominal clock; ``GPUArch.power``), each as the row's source says it ran.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from workloads.errors import HwsimError

from .base import Reader, Unsupported, evaluation, opt_int, opt_str
from .schema import Row

__all__ = ["READER", "attention_workload"]

QUANTITIES = {
    "tflops": ("TFLOP/s", "TOP/s"), "time_us": ("us",), "latency_ms": ("ms",), "samples_per_s": ("samples/s",),
    "tokens_per_s": ("tokens/s",), "ms_per_token": ("ms",), "energy_mj": ("mJ",), "power_w": ("W",),
}
OPTIONS = frozenset({"precision", "causal", "backward", "batch", "seq_len", "layout", "fuse", "train", "decode",
                     "launch", "power", "kernel"})


def _ints(spec: str, n: int, row: Row) -> list[int]:
    try:
        vals = [int(v) for v in spec.split(":", 1)[1].split(",")]
    except ValueError:
        vals = []
    if len(vals) != n or min(vals) < 1:
        raise HwsimError(f"{row.where}: model {row.model!r}: expected {n} positive integers after the colon")
    return vals


def attention_workload(B: int, H: int, L: int, E: int, causal: int, backward: int, bits: int = 16):
    """One fused self-attention op (Lq = Lk = L, Ev = E) as a one-op trace."""
    from workloads.trace import Op, Operand, Workload
    dims = {"B": B, "H": H, "Hkv": H, "Lq": L, "Lk": L, "E": E, "Ev": E, "causal": causal, "backward": backward}
    shape = (B, H, L, E)
    op = Op("attention", "attention", "sdpa", dims,
            operands=tuple(Operand(r, shape, bits, "float") for r in ("input", "input2", "input3", "output")),
            phase="backward" if backward else "forward")
    return Workload(name=f"attention:{B},{H},{L},{E}", ops=(op,), batch=B, input_shape=shape, source="adhoc")


def _design(row: Row) -> Any:
    from sim.registry import resolve_arch
    desc = resolve_arch(row.design)
    changes = {f: v for f, v in (("layout", opt_str(row, "layout")), ("fusion", opt_str(row, "fuse")),
                                 ("launch", opt_str(row, "launch")), ("power", opt_str(row, "power")),
                                 ("attention_kernel", opt_str(row, "kernel"))) if v}
    return dataclasses.replace(desc, **changes) if changes else desc


def measure(row: Row) -> float:
    prec = opt_str(row, "precision")
    kw: dict[str, Any] = {"precision": prec} if prec else {}
    if opt_int(row, "decode", 0):
        raise Unsupported("decode steps of a cached LLM at a given context are not a case the GPU reader builds yet")
    if row.model.startswith("gemm:"):
        M, N, K = _ints(row.model, 3, row)
        s = evaluation(f"gemm:{M},{N},{K}", _design(row), **kw).summary()
        flops = 2.0 * M * N * K
    elif row.model.startswith("attention:"):
        B, H, L, E = _ints(row.model, 4, row)
        causal = opt_int(row, "causal", 0) or 0
        passes = {"0": (0,), "1": (1,), "both": (0, 1)}.get(opt_str(row, "backward", "0") or "0")
        if passes is None:
            raise HwsimError(f"{row.where}: options.backward must be 0, 1 or both (forward and backward)")
        import hwsim
        parts = [hwsim.simulate(attention_workload(B, H, L, E, causal, b), _design(row), **kw).summary()
                 for b in passes]
        s = {"time_us": sum(p["time_us"] for p in parts), "batch": B,
             "energy_pj": sum(p["energy_pj"] for p in parts)}
        s["power_w"] = s["energy_pj"] * 1e-6 / s["time_us"]
        flops = 4.0 * B * H * L * L * E / (2 if causal else 1) * sum(2.5 if b else 1.0 for b in passes)
    else:
        train = bool(opt_int(row, "train", 0))
        if train:
            raise Unsupported("a whole training step of a network on one GPU (data loading, optimizer kernels) "
                              "is not read here yet; training rows go to the train domain")
        batch, seq = opt_int(row, "batch"), opt_int(row, "seq_len")
        s = evaluation(row.model, _design(row), batch=batch, seq_len=seq, **kw).summary()
        flops = 2.0 * s["macs"]
    t_s = s["time_us"] * 1e-6
    q = row.quantity
    if q == "tflops":
        return flops / t_s / 1e12
    if q == "time_us":
        return s["time_us"]
    if q == "latency_ms":
        return s["time_us"] / 1e3
    if q == "samples_per_s":
        return s["batch"] / t_s
    if q == "energy_mj":
        return s["energy_pj"] / 1e9
    if q == "power_w":
        return s["power_w"]
    raise Unsupported(f"{q} is not computed for this GPU case")


READER = Reader("gpu", QUANTITIES, OPTIONS, measure)

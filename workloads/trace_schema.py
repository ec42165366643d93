"""The trace format's vocabulary: its version, the op kinds and the dims each needs, operand
roles and dtypes, phases, and the checks every part of the trace shares (see
:mod:`workloads.trace` for what they mean; the file's documents are declared from it in
:mod:`workloads.trace_doc`). Imports neither torch nor the trace's classes."""

from __future__ import annotations

import re

import numpy as np

from .errors import TraceError

__all__ = ["TRACE_FORMAT", "TRACE_VERSION", "READABLE_VERSIONS", "GEMM_KINDS", "VECTOR_KINDS", "KINDS", "ROLES",
           "DTYPES", "PHASES", "GEMM_DIMS", "CONV_DIMS", "VECTOR_DIMS", "ATTENTION_DIMS", "REQUIRED_DIMS",
           "ZERO_OK_DIMS", "OPERAND_BITS", "FLOAT_BITS", "GEMM_OPERANDS", "need", "is_positive_int", "structure_nm", "conv_output_size"]

TRACE_FORMAT = "hwsim-trace"
TRACE_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

GEMM_KINDS = ("gemm", "conv")
VECTOR_KINDS = ("elementwise", "activation", "pool", "norm", "softmax")
KINDS = GEMM_KINDS + ("attention",) + VECTOR_KINDS
ROLES = ("input", "weight", "bias", "output", "input2", "input3")
DTYPES = ("float", "int", "fixed", "index")
PHASES = ("forward", "backward", "optimizer")

GEMM_DIMS = ("M", "N", "K")
CONV_DIMS = ("N", "C", "H", "W", "K", "R", "S", "P", "Q",
             "stride_h", "stride_w", "pad_h", "pad_w", "dil_h", "dil_w", "groups")
VECTOR_DIMS = ("elements", "inputs", "ops_per_element")
ATTENTION_DIMS = ("B", "H", "Hkv", "Lq", "Lk", "E", "Ev", "causal", "backward")
REQUIRED_DIMS: dict[str, tuple[str, ...]] = {"gemm": GEMM_DIMS, "conv": CONV_DIMS, "attention": ATTENTION_DIMS,
                                             **{k: VECTOR_DIMS for k in VECTOR_KINDS}}
ZERO_OK_DIMS = {"pad_h", "pad_w", "causal", "backward"}     # dims that may be 0 in a GEMM or attention op
OPERAND_BITS = (1, 64)              # an operand's width, bits (a float one: FLOAT_BITS)
FLOAT_BITS = (8, 16, 32, 64)

# The operands a GEMM-like op read from a file must have: the two it multiplies, each a
# tuple of the roles that may play it (a linear layer's weight, or a bmm's second input).
GEMM_OPERANDS: dict[str, tuple[tuple[str, ...], ...]] = {"gemm": (("input",), ("weight", "input2")),
                                                          "conv": (("input",), ("weight",))}


def need(cond: bool, where: str, msg: str) -> None:
    """Raise ``TraceError("WHERE: MSG")`` unless ``cond``."""
    if not cond:
        raise TraceError(f"{where}: {msg}")


def is_positive_int(v: object) -> bool:
    """An integer >= 1 (a Python or numpy integer, not a bool)."""
    return bool(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1)


def structure_nm(spec: str) -> tuple[int, int] | None:
    """``"N:M"`` -> (N, M), or None when it is not a structured-sparsity pattern."""
    m = re.fullmatch(r"(\d+):(\d+)", spec)
    if not m:
        return None
    n, mm = int(m.group(1)), int(m.group(2))
    return (n, mm) if 1 <= n < mm <= 64 else None


def conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1

"""The trace format's vocabulary: its version, the op kinds and the dims each needs, operand
roles and dtypes, phases, and the checks every part of the trace shares (see
:mod:`workloads.trace` for what they mean). Imports neither torch nor the trace's classes."""

from __future__ import annotations

import re

import numpy as np

from .errors import TraceError

__all__ = ["TRACE_FORMAT", "TRACE_VERSION", "READABLE_VERSIONS", "GEMM_KINDS", "VECTOR_KINDS", "KINDS", "ROLES",
           "DTYPES", "PHASES", "GEMM_DIMS", "CONV_DIMS", "VECTOR_DIMS", "ATTENTION_DIMS", "REQUIRED_DIMS",
           "ZERO_OK_DIMS", "OPERAND_BITS", "FLOAT_BITS", "TOP_FIELDS", "json_schema", "OP_FIELDS", "OPERAND_FIELDS", "GEMM_OPERANDS", "need", "is_positive_int", "structure_nm", "conv_output_size"]

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
ZERO_OK_DIMS = {"pad_h", "pad_w", "causal", "backward"}
OPERAND_BITS = (1, 64)              # an operand's width, bits (a float one: FLOAT_BITS)
FLOAT_BITS = (8, 16, 32, 64)     # dims that may be 0 in a GEMM or attention op

# The keys each object of a trace file may hold, by format version (anything else is refused:
# a misspelt key would otherwise leave its field at the default). Version 1 had one ``repeat``
# and no graph, and its tensors were the .npz beside it; version 3 added ``structure``.
_TOP_V1 = frozenset({"format", "version", "name", "batch", "input_shape", "source", "meta", "ops"})
_OP_V1 = frozenset({"name", "kind", "op", "module", "repeat", "dims", "operands"})
_OP_V2 = frozenset({"name", "kind", "op", "module", "phase", "copies", "steps", "producers", "dims", "operands"})
_OPERAND_V1 = frozenset({"role", "shape", "bits", "dtype", "density", "values", "codebook"})
TOP_FIELDS: dict[int, frozenset[str]] = {1: _TOP_V1, 2: _TOP_V1 | {"tensors"}, 3: _TOP_V1 | {"tensors"}}
OP_FIELDS: dict[int, frozenset[str]] = {1: _OP_V1, 2: _OP_V2, 3: _OP_V2}
OPERAND_FIELDS: dict[int, frozenset[str]] = {1: _OPERAND_V1, 2: _OPERAND_V1, 3: _OPERAND_V1 | {"structure"}}

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


def json_schema(version: int = TRACE_VERSION) -> dict[str, object]:
    """The JSON Schema of a trace file of ``version``, from this module's vocabulary (for
    editors and other tools; the reader checks more: the graph, conv output sizes, shapes
    against dims, tensors against the ``.npz``)."""
    need(version in READABLE_VERSIONS, "version", f"one of {', '.join(map(str, READABLE_VERSIONS))}, got {version!r}")
    count = {"type": "integer", "minimum": 1}
    props: dict[str, dict[str, object]] = {
        "role": {"enum": list(ROLES)}, "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "bits": {"type": "integer", "minimum": OPERAND_BITS[0], "maximum": OPERAND_BITS[1]}, "dtype": {"enum": list(DTYPES)},
        "density": {"type": "number", "minimum": 0, "maximum": 1},
        "values": {"type": "string", "description": "key of the tensor in the .npz the trace names"},
        "codebook": {"type": "string", "description": "key of the codebook in the .npz (dtype index)"},
        "structure": {"type": "string", "pattern": r"^(\d+:\d+)?$", "description": "N:M structured sparsity"},
    }
    operand = {"type": "object", "additionalProperties": False,
               "required": ["role", "shape", "bits", "dtype", "density"],
               "properties": {k: v for k, v in props.items() if k in OPERAND_FIELDS[version]}}
    by_kind = [{"if": {"properties": {"kind": {"const": k}}},
                "then": {"properties": {"dims": {"required": list(dims)}}}} for k, dims in REQUIRED_DIMS.items()]
    op_props: dict[str, object] = {
        "name": {"type": "string", "minLength": 1}, "kind": {"enum": list(KINDS)}, "op": {"type": "string"},
        "module": {"type": "string"}, "phase": {"enum": list(PHASES)}, "copies": count, "steps": count,
        "repeat": count, "producers": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "dims": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "operands": {"type": "array", "items": operand},
    }
    required = ["name", "kind", "op", "dims", "operands"] + \
        (["repeat"] if version == 1 else ["phase", "copies", "steps", "producers"])
    op = {"type": "object", "additionalProperties": False, "required": required, "allOf": by_kind,
          "properties": {k: v for k, v in op_props.items() if k in OP_FIELDS[version]}}
    top: dict[str, object] = {
        "format": {"const": TRACE_FORMAT}, "version": {"const": version}, "name": {"type": "string", "minLength": 1},
        "batch": count, "input_shape": {"type": "array", "items": {"type": "integer"}},
        "source": {"type": "string"}, "meta": {"type": "object"},
        "tensors": {"type": "string", "pattern": r"^[^/\\]+\.npz$", "description": "the .npz beside the trace"},
        "ops": {"type": "array", "minItems": 1, "items": op},
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"hwsim trace, format version {version}", "type": "object", "additionalProperties": False,
            "required": ["format", "version", "name", "batch", "input_shape", "ops"],
            "properties": {k: v for k, v in top.items() if k in TOP_FIELDS[version]}}


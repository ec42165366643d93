"""Operand precisions of the tensor-core GPU model and their storage: bytes per element."""

from __future__ import annotations

__all__ = ["PRECISION_BYTES"]

PRECISION_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5}

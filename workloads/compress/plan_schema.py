"""The compression plan file, declared (``hwsim schema plan`` prints it as JSON Schema)::

    default: {keep: 0.1, weight_bits: 5, index_bits: 4}
    layers:
      features.0: {keep: 0.84, weight_bits: 8}

Imports no torch, so that the schema and the checks come without it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..trace_schema import structure_nm

__all__ = ["MAX_BITS", "LayerPlan", "PlanDoc"]

MAX_BITS = 32        # weights are fp32 before compression: more bits store nothing more


class LayerPlan(BaseModel):
    """One layer's compression (or the plan's default for every layer); what is left out
    comes from the default, then from no compression."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    keep: float = Field(default=1.0, gt=0, le=1, description="the fraction of weights kept by magnitude pruning")
    weight_bits: int = Field(default=32, ge=1, le=MAX_BITS,
                             description="shared-weight (codebook index) width; a weight is stored in at most 32 "
                                         "bits, fp32")
    index_bits: int = Field(default=4, ge=1, le=MAX_BITS, description="the sparse format's relative-index width")
    structure: str = Field(default="none", description="'N:M' structured sparsity (e.g. '2:4', what sparse tensor cores "
                                               "run) instead of keep, or 'none'")

    @field_validator("structure")
    @classmethod
    def _structure(cls, v: str) -> str:
        if v != "none" and structure_nm(v) is None:
            raise ValueError(f"must be 'N:M' with integers 1 <= N < M <= 64 (e.g. '2:4') or 'none', got {v!r}")
        return v

    def given(self) -> dict[str, Any]:
        """The settings the file names."""
        return self.model_dump(exclude_unset=True)


class PlanDoc(BaseModel):
    """A compression plan: a default for every layer and per-layer settings over it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    default: LayerPlan = LayerPlan()
    layers: dict[str, LayerPlan] = Field(default_factory=dict, description="layer name -> its settings")

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, v: Any) -> Any:
        """``default:`` or ``layers:`` with nothing after it means none."""
        return {k: ({} if x is None else x) for k, x in v.items()} if isinstance(v, dict) else v

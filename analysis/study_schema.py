"""The study file (``hwsim sweep STUDY.yaml``), declared (``hwsim schema study`` prints it)::

    name: systolic-size
    models: [resnet18, {model: lstm_lm, batch: 4}]
    base: systolic-32
    grid: {rows: [8, 16, 32], dataflow: [ws, os], trace.weight_bits: [8, 16]}
    random: {samples: 50, seed: 0}
    energy_table: horowitz45

The declaration holds each field's type and range; what depends on the base design (which
grid keys are its fields, whether a point is a valid design) is checked by
:func:`analysis.sweep.load_study` once the base is resolved.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["TRACE_KEYS", "EVAL_KEYS", "ModelEntry", "Random", "Grid", "StudyDoc"]

TRACE_KEYS = ("trace.weight_density", "trace.weight_bits", "trace.act_bits")
Mapping = Literal["fixed", "search"]
Objective = Literal["edp", "latency", "energy"]
# how each point is evaluated (``hwsim simulate --mapping/--objective``), not the design
EVAL_KEYS: dict[str, tuple[str, ...]] = {"mapping": ("fixed", "search"), "objective": ("edp", "latency", "energy")}

Bits = Annotated[int, Ge(1), Le(32)]           # a trace operand's width after the rewrite
Density = Annotated[float, Gt(0), Le(1)]


class ModelEntry(BaseModel):
    """A model of the study, with its batch and sequence length where they are not the default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    model: str = Field(min_length=1, description="a MODEL as hwsim simulate takes it")
    batch: int | None = Field(default=None, ge=1)
    seq_len: int | None = Field(default=None, ge=1)


class Random(BaseModel):
    """A seeded sample of the grid instead of all of it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    samples: int = Field(ge=1)
    seed: int = 0


class Grid(BaseModel):
    """The values each parameter takes: the trace rewrites and evaluation choices declared
    here, and any field of the base design (each a non-empty list)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, populate_by_name=True)

    weight_density: list[Density] | None = Field(default=None, alias="trace.weight_density", min_length=1)
    weight_bits: list[Bits] | None = Field(default=None, alias="trace.weight_bits", min_length=1)
    act_bits: list[Bits] | None = Field(default=None, alias="trace.act_bits", min_length=1)
    mapping: list[Mapping] | None = Field(default=None, min_length=1)
    objective: list[Objective] | None = Field(default=None, min_length=1)

    def values(self) -> dict[str, list[Any]]:
        """Every parameter (by its name in the file) -> its values."""
        given = self.model_dump(by_alias=True, exclude_none=True, exclude=set(self.model_extra or {}))
        return {**given, **(self.model_extra or {})}


def _name_or_entry(schema: dict[str, Any]) -> None:
    """A file may write a model as its name (``models: [mlp0]``)."""
    schema["items"] = {"anyOf": [{"type": "string", "minLength": 1}, schema["items"]]}


def _one_model_schema(schema: dict[str, Any]) -> None:
    """``model: NAME`` may stand for ``models: [NAME]``."""
    schema["properties"]["model"] = {"type": "string", "minLength": 1, "description": "short for models: [NAME]"}
    schema["required"] = [r for r in schema["required"] if r != "models"]
    schema["oneOf"] = [{"required": ["models"]}, {"required": ["model"]}]


class StudyDoc(BaseModel):
    """A what-if study: models x a grid over a base design."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, json_schema_extra=_one_model_schema)

    name: str | None = Field(default=None, min_length=1, description="default: the file's stem")
    models: list[ModelEntry] = Field(min_length=1, description="names, or {model, batch, seq_len}",
                                     json_schema_extra=_name_or_entry)
    base: str = Field(min_length=1, description="a preset, an arch YAML file (relative to the study) or "
                                                "zigzag:HARDWARE.yaml[:MAPPING.yaml]")
    grid: Grid
    random: Random | None = None
    energy_table: str | None = Field(default=None, description="a table name or file; default: the base "
                                                               "design's own")

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, v: Any) -> Any:
        """``model: NAME`` is short for ``models: [NAME]``, and a model ``NAME`` for ``{model: NAME}``."""
        if isinstance(v, dict) and "model" in v and "models" not in v:
            v = {**v, "models": [v["model"]]}
            del v["model"]
        if isinstance(v, dict) and isinstance(v.get("models"), list):
            v = {**v, "models": [{"model": m} if isinstance(m, str) else m for m in v["models"]]}
        return v

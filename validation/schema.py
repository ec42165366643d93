"""The validation corpus's rows and tolerances: declared schemas, read with one-line errors.

A row is one published measurement (or one output of a peer tool, recorded with its call):
the case as hwsim takes it (``model``, ``design``, ``options``), the ``quantity`` and its
published ``value`` and ``unit``, the ``source`` a reviewer can follow, the ``conditions``
it was measured under, and its ``role``: ``check`` (counts in the accuracy figures) or
``fit`` (a constant of hwsim was derived from it, so it never counts as evidence).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workloads.errors import HwsimError

__all__ = ["DOMAINS", "COLUMNS", "Row", "Tolerance", "load_rows", "load_tolerances", "DATA"]

DOMAINS = ("systolic", "spatial", "eie", "gpu", "train", "compression", "energy")
COLUMNS = ("id", "domain", "model", "design", "options", "quantity", "value", "unit", "role", "source",
           "conditions", "note")
DATA = Path(__file__).parent / "data"

Domain = Literal["systolic", "spatial", "eie", "gpu", "train", "compression", "energy"]


class Row(BaseModel):
    """One published measurement, as a CSV row of ``validation/data/``."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    domain: Domain
    model: str = Field(min_length=1)
    design: str = ""
    options: Mapping[str, str] = Field(default_factory=dict)
    quantity: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    value: float = Field(gt=0, allow_inf_nan=False)
    unit: str = Field(min_length=1)
    role: Literal["check", "fit"] = "check"
    source: str = Field(min_length=8)
    conditions: str = ""
    note: str = ""
    file: str = ""
    line: int = 0

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, v: object) -> Mapping[str, str]:
        """``key=value`` pairs separated by spaces, each key once."""
        if isinstance(v, Mapping):
            return MappingProxyType(dict(v))
        if not isinstance(v, str):
            raise ValueError("options: a string of key=value pairs")
        out: dict[str, str] = {}
        for part in v.split():
            k, eq, val = part.partition("=")
            if not eq or not re.fullmatch(r"[a-z][a-z0-9_]*", k) or not val:
                raise ValueError(f"options: {part!r} is not key=value (keys in lower case)")
            if k in out:
                raise ValueError(f"options: {k} given twice")
            out[k] = val
        return MappingProxyType(out)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else self.id

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)


class Tolerance(BaseModel):
    """What a domain's accuracy must be for ``hwsim validate --check`` (and the test tier) to
    pass: the geomean of model/published inside ``geomean``, the mean absolute error at most
    ``mape_max`` percent, and at least ``within25_min`` of the points within 25%."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    geomean: tuple[float, float]
    mape_max: float = Field(gt=0)
    within25_min: float = Field(ge=0, le=1)
    min_points: int = Field(ge=1)
    why: str = Field(min_length=1)

    @field_validator("geomean")
    @classmethod
    def _band(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= 1 <= v[1]:
            raise ValueError("geomean: [low, high] with 0 < low <= 1 <= high")
        return v


def _message(e: ValidationError) -> str:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "row"
    return f"{field}: {err['msg']}"


def read_rows(text: str, name: str) -> list[Row]:
    """The rows of one CSV text; a bad row is refused in one line naming the file, line and field."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise HwsimError(f"{name}: the header must be exactly {','.join(COLUMNS)}")
    rows = []
    for rec in reader:
        line = reader.line_num
        if None in rec or any(v is None for v in rec.values()):
            raise HwsimError(f"{name}:{line}: expected {len(COLUMNS)} fields; quote a field that holds a comma")
        try:
            rows.append(Row.model_validate({**rec, "file": name, "line": line}))
        except ValidationError as e:
            raise HwsimError(f"{name}:{line}: {_message(e)}") from None
    return rows


def load_rows(data: Path = DATA) -> list[Row]:
    """Every row of every ``*.csv`` under ``data``, ids unique across files."""
    rows: list[Row] = []
    seen: dict[str, str] = {}
    for path in sorted(data.glob("*.csv")):
        for r in read_rows(path.read_text(encoding="utf-8"), path.name):
            if r.id in seen:
                raise HwsimError(f"{r.where}: id {r.id!r} is also at {seen[r.id]}; ids must be unique")
            seen[r.id] = r.where
            rows.append(r)
    return rows


def load_tolerances(path: Path = DATA / "tolerances.yaml") -> Mapping[str, Tolerance]:
    """Per-domain tolerances (``validation/data/tolerances.yaml``)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise HwsimError(f"{path.name}: not YAML ({e})") from None
    if not isinstance(raw, dict) or set(raw) - set(DOMAINS):
        raise HwsimError(f"{path.name}: a mapping of domain -> tolerance, domains among {', '.join(DOMAINS)}")
    out = {}
    for d, t in raw.items():
        try:
            out[d] = Tolerance(**t)
        except (ValidationError, TypeError) as e:
            msg = _message(e) if isinstance(e, ValidationError) else str(e)
            raise HwsimError(f"{path.name}: {d}.{msg}") from None
    return MappingProxyType(out)

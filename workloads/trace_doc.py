"""The trace file's documents, declared (pydantic, strict): the keys, types and ranges of the
top level, an op and an operand in each readable format version, from the vocabulary of
:mod:`workloads.trace_schema`. :func:`parse` reads a document with one-line errors (a
misspelt key named with the nearest field, a key of a later version said to be one); the
JSON Schema (``hwsim schema trace``) is these models'. What spans fields (the graph, conv
output sizes, shapes against dims, tensors against the ``.npz``) is checked by the trace's
own classes as they are built (:mod:`workloads.trace_ops`, :mod:`workloads.trace_graph`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from annotated_types import Ge
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import TraceError
from .fields import check_known
from .trace_schema import (DTYPES, FLOAT_BITS, KINDS, OPERAND_BITS, PHASES, READABLE_VERSIONS, REQUIRED_DIMS, ROLES,
                           TRACE_FORMAT, TRACE_VERSION, need)

__all__ = ["DOCS", "TraceDoc", "json_schema", "parse"]

Count = Annotated[int, Field(ge=1)]
Name = Annotated[str, Field(min_length=1)]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class OperandV1(_Doc):
    """One operand: its role, shape, storage width, element type and measured density; the
    keys of its real values and codebook in the ``.npz`` beside the trace."""

    role: Literal[ROLES]                              # type: ignore[valid-type]
    shape: list[Annotated[int, Ge(0)]]
    bits: Annotated[int, Field(ge=OPERAND_BITS[0], le=OPERAND_BITS[1],
                               description=f"a float operand is {', '.join(map(str, FLOAT_BITS))} bits")]
    dtype: Literal[DTYPES]                            # type: ignore[valid-type]
    density: Annotated[float, Field(ge=0, le=1, description="the fraction of non-zeros")]
    values: str | None = Field(None, description="key of the tensor in the .npz the trace names")
    codebook: str | None = Field(None, description="key of the codebook in the .npz (dtype index)")


class OperandV3(OperandV1):
    structure: Annotated[str, Field(pattern=r"^(\d+:\d+)?$", description="N:M structured sparsity along K")] = ""


class _OpBase(_Doc):
    name: Name
    kind: Literal[KINDS]                              # type: ignore[valid-type]
    op: str
    module: str = ""
    dims: dict[str, Annotated[int, Ge(0)]]


class OpV1(_OpBase):
    repeat: Count
    operands: list[OperandV1]


class _OpV2Base(_OpBase):
    phase: Literal[PHASES]                            # type: ignore[valid-type]
    copies: Count
    steps: Count
    producers: Annotated[list[str], Field(json_schema_extra={"uniqueItems": True})]


class OpV2(_OpV2Base):
    operands: list[OperandV1]


class OpV3(_OpV2Base):
    operands: list[OperandV3]


class _TraceBase(_Doc):
    format: Literal["hwsim-trace"]
    name: Name
    batch: Count
    input_shape: list[int]
    source: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


Tensors = Annotated[str, Field(pattern=r"^[^/\\]+\.npz$", description="the .npz beside the trace")] | None


class TraceV1(_TraceBase):
    version: Literal[1]
    ops: Annotated[list[OpV1], Field(min_length=1)]


class TraceV2(_TraceBase):
    version: Literal[2]
    tensors: Tensors = None
    ops: Annotated[list[OpV2], Field(min_length=1)]


class TraceV3(_TraceBase):
    version: Literal[3]
    tensors: Tensors = None
    ops: Annotated[list[OpV3], Field(min_length=1)]


TraceDoc = TraceV1 | TraceV2 | TraceV3
DOCS: dict[int, type[TraceV1] | type[TraceV2] | type[TraceV3]] = {1: TraceV1, 2: TraceV2, 3: TraceV3}
assert tuple(DOCS) == READABLE_VERSIONS and TRACE_FORMAT == "hwsim-trace"


def parse(doc: object, where: str) -> TraceDoc:
    """``doc`` as its version's declared document; errors name ``where`` (the file), the op
    (``ops[3] (fc1)``) and the field."""
    if not isinstance(doc, dict):
        raise TraceError(f"{where}: the top level must be a JSON object")
    need(doc.get("format") == TRACE_FORMAT, f"{where}: format", f"expected {TRACE_FORMAT!r}, got {doc.get('format')!r}")
    ver = doc.get("version")
    need(ver in READABLE_VERSIONS and not isinstance(ver, bool), f"{where}: version",
         f"this hwsim reads trace versions {', '.join(map(str, READABLE_VERSIONS))}, the file has {ver!r}")
    model = DOCS[int(ver)]      # type: ignore[arg-type]
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise TraceError(f"{where}: {_message(model, e, doc)}") from None


def _message(model: type[BaseModel], e: ValidationError, doc: dict) -> str:
    from .declared import first_error, message

    err = first_error(e)
    loc = err["loc"]
    if err["type"] == "extra_forbidden":
        key, at = str(loc[-1]), loc[:-1]
        later = [v for v in DOCS if v > doc["version"] and key in _fields(DOCS[v], at)]
        prefix = _label(_path(at), doc)
        if later:
            return (f"{prefix + '.' if prefix else ''}{key}: unknown field; {key} was added in trace version "
                    f"{later[0]}, this file is version {doc['version']}; write the trace again with this hwsim")
        try:
            check_known([key], _fields(model, at), f"{prefix}." if prefix else "", error=TraceError)
        except TraceError as known:
            return str(known)
    return _label(message(model, e), doc)


def _fields(model: type[BaseModel], at: tuple[int | str, ...]) -> list[str]:
    """The field names of the object ``at`` points to in ``model``'s documents."""
    from .declared import fields_at
    return fields_at(model, at)


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))


def _label(text: str, doc: dict) -> str:
    """``ops[3]...`` -> ``ops[3] (fc1)...``: the op named as well as numbered."""
    def named(m: re.Match[str]) -> str:
        i = int(m.group(1))
        ops = doc.get("ops")
        name = ops[i].get("name") if isinstance(ops, list) and i < len(ops) and isinstance(ops[i], dict) else None
        return f"ops[{i}] ({name})" if isinstance(name, str) and name else m.group(0)
    return re.sub(r"^ops\[(\d+)\]", named, text, count=1)


def json_schema(version: int = TRACE_VERSION) -> dict[str, object]:
    """The JSON Schema of a trace file of ``version`` (for editors and other tools): the
    declared document, with the dims each op kind needs."""
    need(version in READABLE_VERSIONS, "version", f"one of {', '.join(map(str, READABLE_VERSIONS))}, got {version!r}")
    schema = DOCS[version].model_json_schema()
    op = schema["$defs"][f"OpV{version}"]
    op["allOf"] = [{"if": {"properties": {"kind": {"const": k}}},
                    "then": {"properties": {"dims": {"required": list(dims)}}}} for k, dims in REQUIRED_DIMS.items()]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema,
            "title": f"hwsim trace, format version {version}"}

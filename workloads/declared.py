"""Reading a document against a declared schema (a pydantic model), with one-line errors.

The model declares the types, ranges and keys once; this turns its first validation error
into the project's message, ``FILE: FIELD: must be ..., got V`` (a misspelt key named with
the nearest field, :func:`workloads.fields.check_known`), so every reader of a declared
file speaks alike::

    p.yaml: layers.fc1.keep: must be a number in (0, 1], got 1.5
"""

from __future__ import annotations

import typing
from typing import Any, TypeVar

from annotated_types import Ge, Gt, Le, Lt

from .errors import HwsimError
from .fields import check_known

__all__ = ["fields_at", "first_error", "message", "validate"]

if typing.TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="BaseModel")


def validate(model: type[M], doc: object, where: str) -> M:
    """``model`` validated from ``doc``; errors raise :class:`HwsimError` naming ``where``
    (the file) and the field."""
    from pydantic import ValidationError
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise HwsimError(f"{where}: {message(model, e)}") from None


def first_error(e: ValidationError) -> Any:
    """The error to report: an unknown key before the others (a misspelt key is why its
    field reads as missing), else the first."""
    errs = e.errors()
    return next((x for x in errs if x["type"] == "extra_forbidden"), errs[0])


def message(model: type[BaseModel], e: ValidationError) -> str:
    """``FIELD: what it must be, got V`` for :func:`first_error` of ``e``."""
    err = first_error(e)
    loc = err["loc"]
    path = _path(loc)
    if err["type"] == "extra_forbidden":
        fields = fields_at(model, loc[:-1])
        try:
            check_known([loc[-1]], fields, f"{_path(loc[:-1])}." if len(loc) > 1 else "")
        except HwsimError as known:
            return str(known)
    got = err.get("input")
    base, bounds, note = _declared(model, loc)
    if base in (int, float) and err["type"] != "missing":
        note = f" ({note})" if note else ""
        return f"{path}: must be {_rule(base, bounds)}, got {got!r}{note}"[:300]
    if err["type"] == "missing":
        return f"{path}: missing; add it" + (f" ({note})" if note else "")
    if err["type"] == "literal_error":
        field = str(loc[-1]) if loc and isinstance(loc[-1], str) else "value"
        expected = str(err.get("ctx", {}).get("expected", "")).replace(" or ", ", ")
        note = f" ({note})" if note else ""
        if "," not in expected:         # one allowed value: the field is fixed (a capability hwsim lacks)
            return f"{path}: must be {expected}, got {got!r}{note}"[:300]
        return f"{path}: unknown {field} {got!r}; one of {expected}{note}"[:300]
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif err["type"] != "missing":
        msg = f"{msg[0].lower()}{msg[1:]}, got {got!r}"
    return f"{path}: {msg}"[:300] if path else msg[:300]


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _step(annotation: Any, key: int | str) -> Any:
    """The type one level down ``annotation`` at ``key`` (a model's field, a dict's value,
    a list's item), or None."""
    from pydantic import BaseModel
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        f = fields.get(str(key)) or next((x for x in fields.values() if x.alias == key), None)
        return f.annotation if f is not None else None
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (dict, typing.Mapping) and len(args) == 2:
        return args[1]
    if typing.get_origin(annotation) in (list, tuple) and args:
        return args[0]
    return None


def fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the object ``loc`` points to in ``model``'s documents."""
    from pydantic import BaseModel
    t: Any = model
    for key in loc:
        t = _step(t, key)
    t = _unwrap(t)
    return list(t.model_fields) if isinstance(t, type) and issubclass(t, BaseModel) else []


def _unwrap(t: Any) -> Any:
    """``X`` of ``X | None``."""
    while typing.get_origin(t) is typing.Union or type(t).__name__ == "UnionType":
        inner = [a for a in typing.get_args(t) if a is not type(None)]
        t = inner[0] if len(inner) == 1 else None
    return t


def _declared(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[Any, list[Any], str]:
    """(the declared scalar type, its bounds, its description) of what ``loc`` ends at: a
    model's field, or an item of a list field (``grid.trace.weight_bits[0]``)."""
    from pydantic import BaseModel
    t: Any = model
    for key in loc[:-1]:
        t = _step(t, key)
    t = _unwrap(t)
    last = loc[-1] if loc else None
    if isinstance(t, type) and issubclass(t, BaseModel):
        by_name = {**{f.alias: f for f in t.model_fields.values() if f.alias}, **t.model_fields}
        info = by_name.get(str(last))
        if info is None:
            return None, [], ""
        return _unwrap(info.annotation), list(info.metadata), info.description or ""
    item_of_dict = isinstance(last, str) and typing.get_origin(t) is dict      # a mapping's value: dims.M
    if item_of_dict or (isinstance(last, int) and typing.get_origin(t) is list):
        item = typing.get_args(t)[-1]
        if typing.get_origin(item) is typing.Annotated:
            base, *bounds = typing.get_args(item)
            return base, bounds, ""
        return item, [], ""
    return None, [], ""


def _rule(t: Any, bounds: list[Any]) -> str:
    """``an integer in 1..32`` or ``a number in (0, 1]`` from a numeric type and its bounds."""
    lo: Any = None
    hi: Any = None
    lo_open = hi_open = False
    for m in bounds:
        if isinstance(m, Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, Ge):
            lo = m.ge
        elif isinstance(m, Lt):
            hi, hi_open = m.lt, True
        elif isinstance(m, Le):
            hi = m.le
    kind = "an integer" if t is int else "a number"

    def g(v: Any) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"
    if lo is None and hi is None:
        return kind
    if t is int and not lo_open and not hi_open and lo is not None and hi is not None:
        return f"{kind} in {lo}..{hi}"
    if lo is not None and hi is not None:
        return f"{kind} in {'(' if lo_open else '['}{g(lo)}, {g(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{kind} {'>' if lo_open else '>='} {g(lo)}"
    return f"{kind} {'<' if hi_open else '<='} {g(hi)}"

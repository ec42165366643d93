"""Shared machinery for hardware descriptions: field validation, immutable mappings, YAML
overrides.

A description is a frozen dataclass; its ``__post_init__`` calls :func:`check_fields`,
which checks every field against its annotation (an ``int`` field refuses ``True`` and
``2.5``, a ``bool`` field refuses ``1`` and ``"no"``, a ``float`` must be finite, a mapping
is copied into a :class:`FrozenMap`), then the class checks ranges. Presets are instances
with a ``source`` naming the paper or table they come from; a user YAML file names a
``base`` preset and overrides fields one by one.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import typing
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Mapping, TypeVar

from annotated_types import Ge, Gt, Le, Lt

from workloads.errors import HwsimError
from workloads.fields import check_known

__all__ = ["FrozenMap", "Positive", "PositiveInt", "NonNegative", "NonNegativeInt", "Nm", "Clock", "Rate", "need", "check_fields", "known_fields", "check_known_fields",
           "override", "file_schema", "load_yaml_arch"]

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable, picklable mapping (for mapping-valued description fields)."""

    __slots__ = ("_d",)
    _d: dict[K, V]

    def __init__(self, items: Mapping[K, V] | typing.Iterable[tuple[K, V]] = ()) -> None:
        object.__setattr__(self, "_d", dict(items))

    def __getitem__(self, key: K) -> V:
        return self._d[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        return hash(frozenset(self._d.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a FrozenMap cannot be changed")

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"

    def __reduce__(self) -> tuple[type[FrozenMap[K, V]], tuple[dict[K, V]]]:
        return (FrozenMap, (self._d,))


def need(cond: bool, field: str, msg: str) -> None:
    if not cond:
        raise HwsimError(f"{field}: {msg}")


def _kind(v: Any) -> str:
    return f"{type(v).__name__} {v!r}"[:80]


# Ranges declared with the field's type (``rows: PositiveInt``): :func:`check_fields` enforces
# them and ``hwsim schema`` writes them into the JSON Schema (pydantic reads annotated_types).
Positive = Annotated[float, Gt(0)]
PositiveInt = Annotated[int, Gt(0)]
NonNegative = Annotated[float, Ge(0)]
NonNegativeInt = Annotated[int, Ge(0)]
# a CMOS node in nm: the energy model's range (analysis.energy.NODE_RANGE_NM; a test holds them equal)
Nm = Annotated[float, Ge(1), Le(1000)]
# MHz. Policy bounds, far beyond any design (1 kHz to 1 THz), so that times stay finite
Clock = Annotated[float, Ge(1e-3), Le(1e6)]
# a rate (bytes or bits per cycle, GB/s, FMAs per clock): policy bounds for the same reason
Rate = Annotated[float, Ge(1e-6), Le(2 ** 50)]


def check_fields(obj: Any) -> None:
    """Check every dataclass field of ``obj`` against its annotation; freeze mappings.

    Annotations understood: ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``,
    ``Mapping[str, X]`` with X one of those, each optionally ``Annotated`` with
    annotated_types bounds (``Gt``, ``Ge``, ``Lt``, ``Le``); others are left to the class.
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        t = hints.get(f.name)
        if typing.get_origin(t) is typing.ClassVar:
            continue
        if typing.get_origin(t) in (collections.abc.Mapping, dict) or t in (Mapping, dict):
            need(isinstance(v, Mapping), f.name, f"must be a mapping, got {_kind(v)}")
            args = typing.get_args(t)
            items = {}
            for k, x in v.items():
                need(isinstance(k, str), f"{f.name}.{k}", "keys must be strings")
                if len(args) == 2:
                    _check_scalar(x, args[1], f"{f.name}.{k}")
                items[k] = x
            object.__setattr__(obj, f.name, FrozenMap(items))
        else:
            _check_scalar(v, t, f.name)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def _check_scalar(v: Any, t: Any, name: str) -> None:
    if typing.get_origin(t) is Annotated:
        base, *bounds = typing.get_args(t)
        _check_scalar(v, base, name)
        if base in (int, float):
            for b in bounds:
                _check_bound(v, b, name)
        return
    if typing.get_origin(t) is Literal:
        choices = typing.get_args(t)
        need(v in choices and isinstance(v, str) == all(isinstance(c, str) for c in choices), name,
             f"must be one of {', '.join(map(str, choices))}, got {v!r}")
        return
    if t is bool:
        need(isinstance(v, bool), name, f"must be true or false, got {_kind(v)}")
    elif t is int:
        need(isinstance(v, int) and not isinstance(v, bool), name, f"must be an integer, got {_kind(v)}")
    elif t is float:
        need(isinstance(v, (int, float)) and not isinstance(v, bool), name, f"must be a number, got {_kind(v)}")
        need(math.isfinite(v), name, f"must be finite, got {v!r}")
    elif t is str:
        need(isinstance(v, str), name, f"must be a string, got {_kind(v)}")


def _check_bound(v: Any, b: Any, name: str) -> None:
    if isinstance(b, Gt):
        need(v > b.gt, name, "must be a positive number, got " + repr(v) if b.gt == 0 else f"must be > {b.gt:g}, got {v!r}")
    elif isinstance(b, Ge):
        need(v >= b.ge, name, f"must be >= {b.ge:g}, got {v!r}")
    elif isinstance(b, Lt):
        need(v < b.lt, name, f"must be < {b.lt:g}, got {v!r}")
    elif isinstance(b, Le):
        need(v <= b.le, name, f"must be <= {b.le:g}, got {v!r}")


def known_fields(cls: type) -> frozenset[str]:
    """The fields a description of class ``cls`` has (what a YAML file may set)."""
    return frozenset(f.name for f in dataclasses.fields(cls))


def check_known_fields(cls: type, values: Mapping[str, Any], where: str, within: str = "") -> None:
    """Refuse a key of ``values`` that is not a field of ``cls``, naming the nearest one
    (``a.yaml: rwos: unknown field 'rwos' for SystolicArch; did you mean rows?``); ``within``
    is the field that holds ``values`` (``intra``: ``a.yaml: intra.kidn: ...``)."""
    check_known(values, known_fields(cls), f"{where}: {within}." if within else f"{where}: ", owner=cls.__name__)


def override(base: Any, values: Mapping[str, Any], where: str = "override") -> Any:
    """``base`` with fields replaced from ``values``; unknown fields are named."""
    check_known_fields(type(base), values, where)
    try:
        return dataclasses.replace(base, **dict(values))
    except HwsimError as e:
        raise HwsimError(f"{where}: {e}") from None
    except TypeError as e:
        raise HwsimError(f"{where}: {e}") from None


def file_schema(cls: type, presets: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The JSON Schema of a YAML file ``{base: PRESET, FIELD: VALUE, ...}`` over ``cls``
    (what :func:`load_yaml_arch` reads): ``base`` one of ``presets``; every field optional
    (the preset gives the rest), typed and bounded as ``cls`` declares it; no other key. A
    field whose value is a description (a system's fabric) takes only the fields it changes.
    A field's ``metadata["json_schema"]`` replaces what its type says where a file may
    write it otherwise (``"C,K"`` for an unrolling pair)."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(cls).json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    props: dict[str, Any] = schema["properties"]
    sample = next(iter(presets.values()), None)
    for f in dataclasses.fields(cls):
        if "json_schema" in f.metadata:
            props[f.name] = dict(f.metadata["json_schema"])
        inner = getattr(sample, f.name, None)
        if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            defs.get(type(inner).__name__, {}).pop("required", None)     # merged into the preset's
    for d in defs.values():
        if d.get("type") == "object":
            d["additionalProperties"] = False
    for p in props.values():
        p.pop("default", None)            # the preset's value, not the class's, is the default
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"hwsim {what} file: {cls.__name__} fields over a preset",
        "description": " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()),
        "type": "object",
        "properties": {"base": {"enum": sorted(presets), "description": f"the {what} preset this file changes"},
                       **props},
        "required": ["base"],
        "additionalProperties": False,
    }
    if defs:
        out["$defs"] = defs
    return out


def load_yaml_arch(path: str | Path, presets: Mapping[str, Any], what: str = "architecture") -> Any:
    """Read ``{base: PRESET, FIELD: VALUE, ...}`` and return the overridden description. A
    mapping given for a field that is itself a description (a system's fabric) overrides
    only the fields it names."""
    from workloads.yamlio import load_yaml_lines, located

    p = Path(path)
    doc, lines = load_yaml_lines(p, what)
    with located(p, lines):
        return _arch(p, doc, presets)


def _arch(p: Path, doc: Any, presets: Mapping[str, Any]) -> Any:
    if not isinstance(doc, dict):
        raise HwsimError(f"{p}: expected a mapping with 'base' and fields to override")
    base = doc.pop("base", None)
    if not isinstance(base, str) or base not in presets:
        raise HwsimError(f"{p}: base: must name a preset ({', '.join(presets)}), got {base!r}")
    doc.setdefault("name", p.stem)
    table = doc.get("energy_table")
    if isinstance(table, str) and table.endswith((".yaml", ".yml")) and not Path(table).is_absolute():
        doc["energy_table"] = str(p.parent / table)      # a table file beside the design
    b = presets[base]
    for k, v in doc.items():
        inner = getattr(b, k, None)
        if isinstance(v, dict) and dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            check_known_fields(type(inner), v, str(p), within=k)
            merged = {**dataclasses.asdict(inner), **v}
            if "source" in merged and "source" not in v:     # say what no longer is the source's
                merged["source"] = f"{merged['source']} (overridden in {p.name}: {', '.join(sorted(v))})"
            doc[k] = merged
    return override(b, doc, where=str(p))

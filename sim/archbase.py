"""Shared machinery for hardware descriptions: validation helpers and YAML overrides.

A description is a frozen dataclass validated in ``__post_init__``. Presets are
instances with a ``source`` naming the paper or table they come from; a user YAML file
names a ``base`` preset and overrides fields one by one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from workloads.errors import HwsimError


def need(cond: bool, field: str, msg: str) -> None:
    if not cond:
        raise HwsimError(f"{field}: {msg}")


def positive(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        need(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, n,
             f"must be a positive number, got {v!r}")


def override(base, values: Mapping[str, Any], where: str = "override"):
    """``base`` with fields replaced from ``values``; unknown fields are named."""
    fields = {f.name: f for f in dataclasses.fields(base)}
    for k in values:
        if k not in fields:
            raise HwsimError(f"{where}: unknown field {k!r} for {type(base).__name__}; "
                             f"known: {', '.join(sorted(fields))}")
    try:
        return dataclasses.replace(base, **dict(values))
    except HwsimError as e:
        raise HwsimError(f"{where}: {e}") from None
    except TypeError as e:
        raise HwsimError(f"{where}: {e}") from None


def load_yaml_arch(path: str | Path, presets: Mapping[str, Any]):
    """Read ``{base: PRESET, FIELD: VALUE, ...}`` and return the overridden description."""
    from workloads.yamlio import load_yaml

    p = Path(path)
    doc = load_yaml(p, "architecture")
    if not isinstance(doc, dict):
        raise HwsimError(f"{p}: expected a mapping with 'base' and fields to override")
    base = doc.pop("base", None)
    if base not in presets:
        raise HwsimError(f"{p}: base: must name a preset ({', '.join(presets)}), got {base!r}")
    doc.setdefault("name", p.stem)
    return override(presets[base], doc, where=str(p))

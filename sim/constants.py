"""A model constant with where its value comes from, so that ``hwsim archs --sources`` can
list every number a result rests on: published (a datasheet, a paper, a library's source),
measured (a measurement file or a stated run), a modelling choice, a named assumption
(nothing published or measured fixes it), a policy (a limit hwsim sets itself), or a
calibration (fitted to rows the validation corpus marks ``fit``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Constant"]

KINDS = ("published", "measured", "modelling choice", "assumption", "policy", "calibration")


@dataclass(frozen=True)
class Constant:
    name: str          # module.NAME, or Class.field for a default that presets inherit
    value: Any
    kind: str          # one of KINDS
    source: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"constant {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

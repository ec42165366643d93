"""JSON Schemas of the files hwsim reads, for editors' completion and other tools
(``hwsim schema KIND``). Each comes from the declaration the reader checks against: a
machine family's description class (its fields' types, ``Annotated`` bounds and
``Literal`` choices), the system description, the trace format's vocabulary
(:func:`workloads.trace_doc.json_schema`), the pydantic models of the compression plan,
the study and the energy table, and ZigZag's hardware and mapping files as ZigZag declares
them (:mod:`sim.spatial.zigzag_schema`), and SCALE-Sim 3.0.0's config
(:mod:`sim.scalesim.config_schema`)."""

from __future__ import annotations

import json
from typing import Any

from workloads.errors import HwsimError

__all__ = ["kinds", "schema"]

def kinds() -> tuple[str, ...]:
    """``arch`` (any family's file), each machine family's own, ``system``, ``trace``, ``plan``, ``study``,
    ``energy``, and the peers' files hwsim reads (``zigzag-hardware``, ``zigzag-mapping``,
    ``scalesim-config``)."""
    from sim.registry import families
    return ("arch", *families(), "system", "trace", "plan", "study", "energy", "zigzag-hardware", "zigzag-mapping",
            "scalesim-config")


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``kind`` file."""
    from sim.archbase import file_schema
    from sim.registry import families

    fams = families()
    if kind in fams:
        cls, presets = fams[kind]
        return file_schema(cls, presets, f"{kind} architecture")
    if kind == "arch":
        return _one_of({f: file_schema(c, p, f"{f} architecture") for f, (c, p) in fams.items()})
    if kind == "system":
        from sim.system.topology import PRESETS, System
        return file_schema(System, PRESETS, "system")
    if kind == "trace":
        from workloads.trace_doc import json_schema
        return json_schema()
    if kind == "energy":
        from .energy_schema import EnergyTableDoc
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **EnergyTableDoc.model_json_schema(),
                "title": "hwsim energy table (--energy-table)"}
    if kind == "study":
        from .study_schema import StudyDoc
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **StudyDoc.model_json_schema(),
                "title": "hwsim study (hwsim sweep)"}
    if kind == "plan":
        from workloads.compress.plan_schema import PlanDoc
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **PlanDoc.model_json_schema(),
                "title": "hwsim compression plan"}
    if kind in ("zigzag-hardware", "zigzag-mapping"):
        from sim.spatial.zigzag_schema import json_schema as zigzag
        return zigzag(kind.split("-")[1])
    if kind == "scalesim-config":
        from sim.scalesim.config_schema import json_schema as scalesim
        return scalesim()
    raise HwsimError(f"schema: unknown kind {kind!r}; one of {', '.join(kinds())}")


def _one_of(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One schema accepting any of ``parts`` (a file's ``base`` picks the family), their
    ``$defs`` hoisted to the top, where their references point."""
    defs: dict[str, Any] = {}
    for family, s in parts.items():
        s = dict(s)
        s.pop("$schema", None)
        for name, d in s.pop("$defs", {}).items():
            if name in defs and json.dumps(defs[name], sort_keys=True) != json.dumps(d, sort_keys=True):
                raise HwsimError(f"schema: two families declare different {name!r}")
            defs[name] = d
        defs[family] = s
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "hwsim architecture file: a preset (base) and the fields to change",
            "oneOf": [{"$ref": f"#/$defs/{f}"} for f in parts], "$defs": defs}

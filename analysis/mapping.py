"""Per-op mapping search: each op of a workload in the mapping family that serves it best.

A design that can run several mapping families (a systolic array's dataflows ws, os and
is: ``mapping_families()`` on the machine) simulates the workload once per family; every
op then takes the family with the lowest objective for that op:

* ``latency``: its cycles;
* ``energy``: its energy (the design's energy table, priced as ``hwsim simulate`` prices it);
* ``edp``: energy x cycles.

Ties go to the family listed first (ws, os, is), so the choice is deterministic; ops are
independent of each other's family (each op's operands come from and go to the same SRAMs
or DRAM whatever the family), so the per-op optimum is the workload's optimum. The ops
run in their chosen families on the workload's schedule. The spatial unrolling and tiling
inside a family are the family's own (``sim/systolic/mapping.py``), not searched.

A machine that searches its mappings itself (its ``simulate`` takes an ``objective``: a
spatial design, ``sim.spatial.search``) is asked to, with this objective.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.machine import HasMappingFamilies, NamesItsMapping
from sim.registry import options
from sim.result import SimResult, run_ops
from workloads.errors import HwsimError
from workloads.trace import Workload

from .energy import EnergyTable, machine_op_prices, op_energy

__all__ = ["OBJECTIVES", "Choice", "families", "search"]

OBJECTIVES = ("edp", "latency", "energy")


@dataclass(frozen=True)
class Choice:
    op: str
    family: str
    score: float              # the objective of the chosen family
    scores: dict              # family -> objective


def families(arch) -> dict:
    """The design's mapping families (none for a design that searches its own), or a
    refusal where it has one mapping."""
    if not isinstance(arch, HasMappingFamilies) and "objective" in options(arch):
        return {}
    if not isinstance(arch, HasMappingFamilies):
        raise HwsimError(f"--mapping search: {arch.family} designs ({arch.name}) have one mapping; "
                         "search needs a design with mapping families (a systolic array) or its own search "
                         "(a spatial design)")
    return dict(arch.mapping_families())


def search(workload: Workload, arch, table: EnergyTable, objective: str = "edp", progress=None,
           **sim_kw) -> tuple[SimResult, list[Choice]]:
    """``workload`` on ``arch`` with each op in its best mapping family (see the module)."""
    if objective not in OBJECTIVES:
        raise HwsimError(f"--objective: must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if "objective" in options(arch):        # the machine searches its own mappings (a spatial design)
        res = arch.simulate(workload, objective=objective, progress=progress, **sim_kw)
        levels = arch.memory_levels()
        own = []
        for r in res.ops:
            e = op_energy(r, levels, table, arch.static_power_w, 1.0, machine_op_prices(arch)).total_pj
            score = {"latency": float(r.cycles), "energy": e, "edp": e * r.cycles}[objective]
            own.append(Choice(r.name, r.extra.mapping if isinstance(r.extra, NamesItsMapping) else "", score, {}))
        return res, own
    variants = families(arch)
    levels = arch.memory_levels()
    runs = {name: v.simulate(workload, **sim_kw) for name, v in variants.items()}
    chosen, choices = {}, []
    for i, op in enumerate(workload.ops):
        scores = {}
        for name, res in runs.items():
            r = res.ops[i]
            e = op_energy(r, levels, table, variants[name].static_power_w, 1.0,
                          machine_op_prices(variants[name])).total_pj
            scores[name] = {"latency": float(r.cycles), "energy": e, "edp": e * r.cycles}[objective]
        best = min(scores, key=lambda n: (scores[n], list(variants).index(n)))
        chosen[op.name] = runs[best].ops[i]
        choices.append(Choice(op.name, best, scores[best], scores))
    return run_ops(workload, arch, lambda op: chosen[op.name], progress), choices

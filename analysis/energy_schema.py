"""The energy table file (``--energy-table FILE.yaml``), declared (``hwsim schema energy``).

Per-operation energies (pJ by ``add|mul.TYPE``), SRAM energy per 64-bit access by capacity,
DRAM energy per bit by technology, or, instead of SRAM points, levels priced relative to one
MAC (Eyeriss's table). :func:`analysis.energy.table_from_dict` reads a document through it.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from sim.archbase import Nm

__all__ = ["SramPoint", "EnergyTableDoc"]

Pj = Annotated[float, Gt(0)]
Volts = Annotated[float, Gt(0), Le(5)]
OpName = Annotated[str, StringConstraints(pattern=r"^[a-z]+\.[A-Za-z0-9_]+$")]      # add.int8, mul.fp16


class SramPoint(BaseModel):
    """One SRAM size and its energy per 64-bit access (the table interpolates between points)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    capacity_kib: Pj
    pj_per_64b: Pj


class EnergyTableDoc(BaseModel):
    """An energy table: what one operation and one access cost at a technology node."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    technology_nm: Nm
    vdd_v: Annotated[float, Ge(0), Le(5)] = Field(default=0.0, description="supply voltage the energies were "
                                                                           "measured at; 0: the node's nominal")
    source: str = Field(min_length=1)
    ops: dict[OpName, Pj] = Field(min_length=1, description="pJ per operation, by add|mul.TYPE")
    sram: list[SramPoint] = Field(default_factory=list)
    dram_pj_per_bit: dict[str, Pj] = Field(default_factory=dict, description="pJ per bit, by DRAM technology")
    levels_relative: dict[str, Pj] = Field(default_factory=dict, description="a level's access energy in MACs")
    relative_to_mac: Annotated[float, Ge(0)] = Field(default=0.0, description="pJ of the MAC levels_relative "
                                                                             "counts in")
    relative_mac_node_nm: Nm = 45.0
    relative_mac_vdd_v: Volts = 0.9

    @model_validator(mode="after")
    def _levels_priced(self) -> EnergyTableDoc:
        if not self.sram and not self.levels_relative:
            raise ValueError("sram: needs capacity points (or levels_relative with relative_to_mac)")
        if self.levels_relative and not self.relative_to_mac:
            raise ValueError("relative_to_mac: needed with levels_relative (pJ of one MAC)")
        return self

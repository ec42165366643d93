"""ZigZag 3.9's hardware and mapping files, declared (pydantic, strict).

The keys, types and patterns are ZigZag's own (``zigzag/parser/accelerator_validator.py``
and ``mapping_validator.py`` of zigzag-dse 3.9.1), so every stock design reads and a
misspelt key is refused with the nearest field. Where hwsim needs more than ZigZag
requires, the field says so: a memory's ``r_cost``/``w_cost`` and the array's
``unit_energy`` must be given (ZigZag may extract them with CACTI, hwsim does not), and
``is_imc`` must be false (in-memory-compute arrays are not modelled). Fields ZigZag reads
for reports hwsim does not make (``area``, ``unit_area``, ``latency``, ``mem_type``, port
``allocation``, ``dataflows``, ``temporal_ordering``) are accepted as ZigZag declares them
and do not change hwsim's answer; a mapping entry's ``spatial_mapping_hint`` names the loops
searched on the dimensions its ``spatial_mapping`` leaves out (the reader says which apply:
:mod:`sim.spatial.zigzag`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Hardware", "Mapping", "MappingEntry", "Memory", "OperationalArray", "Port", "json_schema"]

Dim = Annotated[str, Field(pattern=r"^D\d$")]
Cost = Annotated[float, Ge(0), Le(1e18)]
Unrolling = Annotated[str, Field(pattern=r"^[A-Z]+\d*, \d+$", description="'DIM, FACTOR', e.g. 'K, 32'")]
Axis = Literal["D1", "D2", "D3", "D4"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Port(_Doc):
    name: Annotated[str, Field(pattern=r"^[r]?[w]?_port_\d+$")]
    type: Literal["read", "write", "read_write"]
    bandwidth_min: Annotated[int, Ge(0)]
    bandwidth_max: Annotated[int, Gt(0), Le(2 ** 20), Field(description="bits per cycle")]
    allocation: list[Annotated[str, Field(pattern=r"^(I[12]|O), (fh|tl|fl|th)$")]]


class Memory(_Doc):
    size: Annotated[int, Ge(1), Field(description="bits")]
    r_cost: Annotated[Cost, Field(description="pJ per read of the first read port's bandwidth_max bits; hwsim "
                                              "needs it given (no CACTI cost extraction)")]
    w_cost: Annotated[Cost, Field(description="pJ per write of the first write port's bandwidth_max bits; hwsim "
                                              "needs it given (no CACTI cost extraction)")]
    area: float | None = None
    latency: int
    mem_type: str = "sram"
    auto_cost_extraction: Annotated[Literal[False], Field(
        description="CACTI cost extraction is not run by hwsim: give r_cost and w_cost")] = False
    operands: Annotated[list[Literal["I1", "I2", "O"]], Field(min_length=1)]
    ports: Annotated[list[Port], Field(min_length=1)]
    served_dimensions: list[Dim]
    force_double_buffering: bool = False


class OperationalArray(_Doc):
    dimensions: list[Dim]
    is_imc: Annotated[Literal[False], Field(
        description="in-memory-compute arrays are not modelled; use a digital array")] = False
    systolic_dimensions: list[Dim] = []
    sizes: list[Annotated[int, Gt(0), Le(2 ** 16)]]
    input_precision: Annotated[list[int], Field(min_length=2, max_length=2)] | None = None
    unit_energy: Annotated[Cost, Field(description="pJ per MAC; hwsim needs it given")]
    unit_area: float | None = None
    imc_type: Literal["analog", "digital"] | None = None
    adc_resolution: float | None = 0
    bit_serial_precision: float | None = None


class Hardware(_Doc):
    """A ZigZag hardware description (``zigzag/inputs/hardware/*.yaml``)."""

    name: str
    memories: Annotated[dict[str, Memory], Field(min_length=1)]
    operational_array: OperationalArray
    dataflows: dict[Axis, list[Unrolling]] | None = None


class Links(_Doc):
    O: str                                                     # noqa: E741 (ZigZag's key)
    W: str
    I: str                                                     # noqa: E741


class MappingEntry(_Doc):
    """One entry of a ZigZag mapping file: ``default``, an op type or a layer's name."""

    name: str
    spatial_mapping: dict[Axis, list[Unrolling]] | None = None
    memory_operand_links: Links | None = None
    spatial_mapping_hint: dict[Axis, list[str]] | None = None
    temporal_ordering: list[Annotated[list[str | int], Field(min_length=2, max_length=2,
                                                             description="[LOOP, FACTOR or '*']")]] | None = None


class Mapping(_Doc):
    """A ZigZag mapping file: a list of entries (wrapped, to be validated as one document)."""

    entries: list[MappingEntry]


def json_schema(kind: str) -> dict[str, object]:
    """The JSON Schema of a ZigZag ``hardware`` or ``mapping`` file."""
    from pydantic import TypeAdapter
    schema = Hardware.model_json_schema() if kind == "hardware" else TypeAdapter(list[MappingEntry]).json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema,
            "title": f"ZigZag 3.9 {kind} file, as hwsim reads it"}

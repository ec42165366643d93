"""SCALE-Sim 3.0.0's ``.cfg`` file, declared (pydantic, strict): one model per section.

The sections and keys are SCALE-Sim's own: those ``scalesim/scale_config.py``
(``scale_config.read_conf_file``) reads, and those its sample configs (``configs/*.cfg``)
carry that it does not read, so every stock config that hwsim can run reads and a misspelt
key is refused with the nearest field. A ``.cfg`` value is text; each field converts it as
SCALE-Sim does (``int(...)`` for a number, ``getboolean`` for a custom-layout flag, the exact
text ``True`` for ``UseRamulatorTrace``, ``true`` in any case for the sparsity flags), so a
valid file means to hwsim what it means to SCALE-Sim.

Keys hwsim does not use are accepted where they cannot change its answer: the request
buffers (read only with Ramulator traces), the SRAM bank ports (only with custom layouts),
the sparsity settings (only with sparsity support), ``TopologyCsvLoc`` (``hwsim scalesim
-t`` names the topology, and SCALE-Sim takes its ``-t`` over the config's), the bank
counts the sample configs carry and SCALE-Sim never reads. What hwsim cannot honour is
refused on the field, with the reason: Ramulator traces, sparsity support, custom layouts.
Keys are read without regard to case (configparser's rule); sections by their exact name.
"""

from __future__ import annotations

import configparser
from typing import Annotated, Any, Callable, Literal

from annotated_types import Ge, Le
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["ArchitecturePresets", "General", "Layout", "NetworkPresets", "RunPresets", "SECTIONS", "ScaleSimDoc",
           "Sparsity", "USER_LAYOUT", "json_schema"]


def _int(text: object) -> object:
    """The integer Python's ``int`` reads from ``text`` (SCALE-Sim's ``int(config.get(...))``);
    other text is left for the strict integer check to refuse."""
    if isinstance(text, str):
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _items(text: object) -> object:
    """``10,20`` -> ``['10', '20']`` (SCALE-Sim splits on commas); empty text is no items."""
    if isinstance(text, str):
        return [x.strip() for x in text.split(",")] if text.strip() else []
    return text


def _getboolean(text: object) -> object:
    """configparser's ``getboolean``: 1/yes/true/on, 0/no/false/off in any case; other text
    is left for the strict boolean check to refuse."""
    if isinstance(text, str):
        return configparser.ConfigParser.BOOLEAN_STATES.get(text.strip().lower(), text)
    return text


def _text_is(true: str, fold: bool) -> Callable[[object], object]:
    """SCALE-Sim's test of a flag's text: on exactly for ``true`` (``fold``: in any case),
    off for any other text."""
    def read(text: object) -> object:
        if isinstance(text, str):
            return (text.strip().lower() if fold else text.strip()) == true
        return text
    return read


def _refuse(reason: str) -> AfterValidator:
    """A flag hwsim cannot honour: refused, with ``reason``, when on."""
    def check(on: bool) -> bool:
        if on:
            raise ValueError(reason)
        return on
    return AfterValidator(check)


Int = BeforeValidator(_int)
Count = Annotated[int, Ge(1), Int]          # the bound before the text's reading: JSON Schema's minimum
Address = Annotated[int, Ge(0), Int, Field(description="a word address")]
Flag = BeforeValidator(_getboolean)
RAMULATOR = "Ramulator traces are not supported; set False"
SPARSITY = "sparsity is not supported in compatibility mode; set false"
CUSTOM_LAYOUT = "custom layouts are not supported; set False"
USER_LAYOUT = ("IfmapSRAMBankBandwidth", "FilterSRAMBankBandwidth", "IfmapSRAMBankNum", "FilterSRAMBankNum")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class General(_Section):
    """``[general]``."""

    run_name: str


class RunPresets(_Section):
    """``[run_presets]``: how the DRAM interface's bandwidth is set."""

    InterfaceBandwidth: Annotated[Literal["USER", "CALC"], Field(
        description="USER reads Bandwidth and the [layout] banks; CALC finds a bandwidth that never stalls")]
    UseRamulatorTrace: Annotated[bool, BeforeValidator(_text_is("True", fold=False)), _refuse(RAMULATOR), Field(
        description=f"on only for the exact text True, as SCALE-Sim reads it; {RAMULATOR}",
        json_schema_extra={"const": False})] = False


class ArchitecturePresets(_Section):
    """``[architecture_presets]``: the array, its SRAMs and their address spaces."""

    ArrayHeight: Annotated[Count, Field(description="PE rows")]
    ArrayWidth: Annotated[Count, Field(description="PE columns")]
    IfmapSramSzkB: Annotated[Count, Field(description="ifmap SRAM, KiB")]
    FilterSramSzkB: Annotated[Count, Field(description="filter SRAM, KiB")]
    OfmapSramSzkB: Annotated[Count, Field(description="ofmap SRAM, KiB")]
    IfmapOffset: Address
    FilterOffset: Address
    OfmapOffset: Address
    Dataflow: Annotated[Literal["ws", "os", "is"], Field(
        description="weight, output or input stationary")]
    Bandwidth: Annotated[list[Count], BeforeValidator(_items), Field(
        description="DRAM words per cycle, comma-separated; USER mode reads the first")] = []
    ReadRequestBuffer: Annotated[Count, Field(
        description="DRAM read request queue; SCALE-Sim uses it only with Ramulator traces")] = 60
    WriteRequestBuffer: Annotated[Count, Field(
        description="DRAM write request queue; SCALE-Sim uses it only with Ramulator traces")] = 60
    MemoryBanks: Annotated[Count, Field(
        description="in SCALE-Sim's configs/scale.cfg and sparsity.cfg; SCALE-Sim 3.0.0 does not read it")] = 1
    OnChipMemoryBanks: Annotated[Count, Field(
        description="in SCALE-Sim's configs/eyeriss.cfg; SCALE-Sim 3.0.0 does not read it")] = 1
    OnChipMemoryBankPorts: Annotated[Count, Field(
        description="in SCALE-Sim's configs/eyeriss.cfg; SCALE-Sim 3.0.0 does not read it")] = 2
    TopologyCsvLoc: Annotated[str, Field(
        description="SCALE-Sim 3.0.0 reads the topology here (not from [network_presets]) when a "
                    "[network_presets] section is present; hwsim scalesim takes -t")] = ""


class Layout(_Section):
    """``[layout]``: the ifmap and filter SRAM banks (their bandwidth and count are read in
    USER mode, which needs them given; the defaults are SCALE-Sim's) and the custom layouts."""

    IfmapCustomLayout: Annotated[bool, Flag, _refuse(CUSTOM_LAYOUT), Field(
        description=CUSTOM_LAYOUT, json_schema_extra={"const": False})] = False
    FilterCustomLayout: Annotated[bool, Flag, _refuse(CUSTOM_LAYOUT), Field(
        description=CUSTOM_LAYOUT, json_schema_extra={"const": False})] = False
    IfmapSRAMBankBandwidth: Annotated[Count, Field(
        description="ifmap words per cycle from DRAM, a multiple of IfmapSRAMBankNum; USER mode needs it")] = 10
    FilterSRAMBankBandwidth: Annotated[Count, Field(
        description="filter words per cycle from DRAM, a multiple of FilterSRAMBankNum; USER mode needs it")] = 10
    IfmapSRAMBankNum: Annotated[Count, Field(description="ifmap SRAM banks; USER mode needs it")] = 10
    FilterSRAMBankNum: Annotated[Count, Field(description="filter SRAM banks; USER mode needs it")] = 10
    IfmapSRAMBankPort: Annotated[Count, Field(
        description="ports per ifmap bank; SCALE-Sim uses it only with custom layouts")] = 2
    FilterSRAMBankPort: Annotated[Count, Field(
        description="ports per filter bank; SCALE-Sim uses it only with custom layouts")] = 2


class Sparsity(_Section):
    """``[sparsity]``: SCALE-Sim's structured weight sparsity (refused when on; the other
    keys are read by SCALE-Sim only when it is)."""

    SparsitySupport: Annotated[bool, BeforeValidator(_text_is("true", fold=True)), _refuse(SPARSITY), Field(
        description=f"on only for the text true in any case, as SCALE-Sim reads it; {SPARSITY}",
        json_schema_extra={"const": False})] = False
    SparseRep: Literal["ellpack_block", "csr", "csc"] = "ellpack_block"
    OptimizedMapping: Annotated[bool, BeforeValidator(_text_is("true", fold=True))] = False
    BlockSize: Annotated[Count, Field(description="M of N:M")] = 4
    RandomNumberGeneratorSeed: Annotated[int, Ge(0), Le(2 ** 32 - 1), Int, Field(
        description="numpy's seed for the sparse weights")] = 40


class NetworkPresets(_Section):
    """``[network_presets]``, which SCALE-Sim writes with the topology's path."""

    TopologyCsvLoc: Annotated[str, Field(
        description="the topology's path in double quotes; hwsim scalesim takes -t (SCALE-Sim takes its -t "
                    "over this)")] = ""


class ScaleSimDoc(BaseModel):
    """A SCALE-Sim 3.0.0 config as ``hwsim scalesim`` reads it: each section an object of
    its keys (the file writes ``Key: value`` lines under ``[section]``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    general: General
    run_presets: RunPresets
    architecture_presets: ArchitecturePresets
    layout: Layout = Layout()
    sparsity: Sparsity = Sparsity()
    network_presets: NetworkPresets = NetworkPresets()

    @model_validator(mode="after")
    def _user_mode(self) -> ScaleSimDoc:
        """USER mode reads the DRAM bandwidth and the ifmap and filter banks (that each bank
        gets an equal share of its operand's bandwidth is checked where the banks are
        built, :mod:`.read_buffer`, as SCALE-Sim asserts it there)."""
        if self.run_presets.InterfaceBandwidth == "USER":
            if not self.architecture_presets.Bandwidth:
                raise ValueError("[architecture_presets] Bandwidth: missing or empty; InterfaceBandwidth USER reads it")
            for key in USER_LAYOUT:
                if key not in self.layout.model_fields_set:
                    raise ValueError(f"[layout] {key}: missing; InterfaceBandwidth USER reads it")
        return self


SECTIONS: dict[str, type[_Section]] = {"general": General, "run_presets": RunPresets,
                                       "architecture_presets": ArchitecturePresets, "layout": Layout,
                                       "sparsity": Sparsity, "network_presets": NetworkPresets}
assert list(SECTIONS) == list(ScaleSimDoc.model_fields)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a SCALE-Sim 3.0.0 config as hwsim reads it (for ``hwsim schema``):
    the sections' models, and what USER mode needs."""
    schema = ScaleSimDoc.model_json_schema()
    schema["if"] = {"properties": {"run_presets": {"properties": {"InterfaceBandwidth": {"const": "USER"}}}}}
    schema["then"] = {"required": ["layout"], "properties": {
        "architecture_presets": {"required": ["Bandwidth"], "properties": {"Bandwidth": {"minItems": 1}}},
        "layout": {"required": list(USER_LAYOUT)}}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema,
            "title": "SCALE-Sim 3.0.0 config (.cfg), as hwsim scalesim reads it"}

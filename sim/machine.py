"""The ``Machine`` interface: what every hardware model offers the rest of hwsim.

A machine is its frozen hardware description (a dataclass per family: ``SystolicArch``,
``EIEArch``, ``GPUArch``). What differs between machines lives on the machine, so that
``analysis/`` never branches on a family or a preset name:

* ``simulate(workload, *, progress=None, <keyword-only options>)`` -> :class:`~sim.result.SimResult`;
  options are explicit keyword-only parameters (an unknown one is an error).
* ``memory_levels()``: what each ``level`` in a result's access keys is (kind, capacity,
  DRAM technology), for the energy model.
* ``static_power_w``: power drawn whatever the machine does (idle/leakage), added over
  a run's time by the energy model; 0 means the figures are dynamic energy only.
* ``peaks(precision)``: compute and bandwidth ceilings (for rooflines).
* ``occupancy(result)``: the fraction of the machine one op holds while it runs; ops whose
  occupancies sum to at most 1 may run at the same time when the graph allows it. A
  machine that runs one op at a time returns 1.0 for every op (its time is the sum of its
  ops' times).
* ``describe()``: the description as plain data (for reports).
* ``memory_capacity_bytes``: the device's memory (HBM, DRAM), checked when a training
  configuration is placed on it; 0 where a design does not say.

Optional capabilities are small Protocols of their own, which ``analysis/`` tests with
``isinstance`` (never ``getattr``): :class:`PricesItsOwnOps`, :class:`NamesItsEnergyModel`,
:class:`HasEnergyTable`, :class:`HasCycleCounters`, :class:`HasKernelOptions` (with the
machine's own words for the report), :class:`HasMappingFamilies` and :class:`DeclaresSparsity`.

A new machine is one package ``sim/<family>/`` exporting ``ARCH`` (its description class,
which implements this Protocol) and ``PRESETS``, plus one line in ``sim.registry.FAMILIES``
(or a call to ``sim.registry.register`` from outside the package).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:
    from workloads.trace import Op, Workload

    from .result import OpResult, SimResult

__all__ = ["LEVEL_KINDS", "Progress", "MemoryLevel", "Peaks", "Machine", "PricesItsOwnOps", "NamesItsEnergyModel",
           "HasEnergyTable", "HasCycleCounters", "HasKernelOptions", "LaunchesKernels", "HasMappingFamilies", "SPARSITY", "DeclaresSparsity",
           "NamesItsMapping",
           "describe_fields"]

LEVEL_KINDS = ("rf", "sram", "noc", "dram")
Progress = Callable[["Op"], None]


@dataclass(frozen=True)
class MemoryLevel:
    """One level of a machine's memory, as the energy model prices it.

    ``kind``: ``rf`` (register files, scratchpads), ``sram``, ``noc`` (on-chip network),
    ``dram``. ``capacity_bytes`` sizes on-chip storage (energy grows with capacity);
    ``technology`` names the DRAM type in the energy table (``ddr3``, ``lpddr``, ``hbm2``,
    ``gddr``). ``read_pj_per_byte`` / ``write_pj_per_byte``: the design's own prices (a
    design described with per-access energies, as ZigZag and Accelergy describe one);
    None: the energy table prices the level by its kind and capacity.
    """

    kind: str
    capacity_bytes: float = 0.0
    technology: str = ""
    read_pj_per_byte: float | None = None
    write_pj_per_byte: float | None = None

    def __post_init__(self) -> None:
        from workloads.errors import HwsimError
        if self.kind not in LEVEL_KINDS:
            raise HwsimError(f"memory level kind must be one of {', '.join(LEVEL_KINDS)}, got {self.kind!r}")
        for n in ("read_pj_per_byte", "write_pj_per_byte"):
            v = getattr(self, n)
            if v is not None and not (isinstance(v, (int, float)) and 0 <= v < float("inf")):
                raise HwsimError(f"memory level {n}: must be a finite number of pJ >= 0, got {v!r}")

    @property
    def on_chip(self) -> bool:
        return self.kind != "dram"


@dataclass(frozen=True)
class Peaks:
    """Ceilings of a machine at one precision: MACs per second, and bytes per second per
    memory level that has a bandwidth (``dram`` where the machine models one)."""

    precision: str
    macs_per_s: float
    bytes_per_s: Mapping[str, float] = field(default_factory=dict)

    @property
    def ops_per_s(self) -> float:
        """2 x MACs/s: the convention of rooflines and TOPS figures (a MAC is two ops)."""
        return 2 * self.macs_per_s


@runtime_checkable
class Machine(Protocol):
    family: ClassVar[str]
    uses_weight_values: ClassVar[bool]     # simulates real weight values when a trace keeps them

    @property
    def name(self) -> str: ...

    @property
    def clock_mhz(self) -> float: ...

    @property
    def technology_nm(self) -> float: ...

    @property
    def static_power_w(self) -> float: ...

    @property
    def source(self) -> str: ...

    @property
    def memory_capacity_bytes(self) -> float:
        """Device memory for weights, activations and optimizer state (0: not modelled)."""
        ...

    def simulate(self, workload: Workload, *, progress: Progress | None = None) -> SimResult: ...

    def memory_levels(self) -> Mapping[str, MemoryLevel]: ...

    def peaks(self, precision: str | None = None) -> Peaks: ...

    def occupancy(self, result: OpResult) -> float: ...

    @property
    def precision_policy(self) -> str:
        """One sentence: what precision a trace's ops run at on this machine, and where its
        activations live (stated in summaries and by `hwsim archs`)."""
        ...

    def describe(self) -> dict[str, Any]: ...


# ---- optional capabilities: small Protocols that analysis/ tests with isinstance ------------
@runtime_checkable
class PricesItsOwnOps(Protocol):
    """A machine that prices some of its operations itself (pJ per event, e.g. a calibrated
    GPU's tensor-core FMA); the energy table prices the rest."""

    def op_prices(self) -> Mapping[str, float]: ...


@runtime_checkable
class NamesItsEnergyModel(Protocol):
    """A machine that says in one line where its own prices come from (reports print it)."""

    @property
    def energy_model(self) -> str: ...


@runtime_checkable
class HasEnergyTable(Protocol):
    """A design that names the energy table it is priced with ("" for the default)."""

    @property
    def energy_table(self) -> str: ...


@runtime_checkable
class HasCycleCounters(Protocol):
    """A machine that splits a run's cycles the way its hardware counters do (TPU v1's Table 3)."""

    def cycle_counters(self, result: SimResult) -> dict[str, float]: ...


@runtime_checkable
class HasKernelOptions(Protocol):
    """A machine whose kernels can fuse epilogues and take an activation layout (a GPU), with
    its own words for the report."""

    @property
    def fusion(self) -> str: ...

    @property
    def layout(self) -> str: ...

    def kernel_note(self) -> str: ...


@runtime_checkable
class LaunchesKernels(Protocol):
    """A machine whose every op is a kernel a host framework launches (a GPU under PyTorch):
    ``launch_us`` is the time each launch adds on the device. A training step's framework
    terms (``sim.system.framework``: host-bound launches, the optimizer's host loop) apply to
    such a machine only; compiled-graph machines (a TPU under XLA) issue no per-op launch."""

    @property
    def launch_us(self) -> float: ...


@runtime_checkable
class HasMappingFamilies(Protocol):
    """A machine with several fixed mapping families (dataflows) that ``--mapping search``
    tries per op."""

    def mapping_families(self) -> Mapping[str, Any]: ...


SPARSITY = ("weight_density", "act_density", "weight_structure")


@runtime_checkable
class DeclaresSparsity(Protocol):
    """A machine that says which of a trace's sparsity it turns into fewer cycles or less
    energy (of :data:`SPARSITY`: zero weights or activations skipped, N:M-structured weights
    on sparse tensor cores); an op's other sparsity runs, and is priced, as dense. Reports
    name what each op used and what was left unused; a study refuses to sweep a density the
    machine would ignore."""

    @property
    def sparsity_exploited(self) -> frozenset[str]: ...


@runtime_checkable
class NamesItsMapping(Protocol):
    """A machine's per-op statistics (``OpResult.extra``) that name the mapping the op ran in
    (a spatial design's searched loop nest)."""

    mapping: str


def describe_fields(arch: Any, **derived: Any) -> dict[str, Any]:
    """Every field of a description as plain data, plus the family and derived figures."""
    import dataclasses
    out: dict[str, Any] = {"family": arch.family}
    for f in dataclasses.fields(arch):
        v = getattr(arch, f.name)
        out[f.name] = dict(v) if isinstance(v, Mapping) else v
    out.update(derived)
    return out

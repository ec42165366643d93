"""Systolic-array hardware description and presets.

Bandwidth is in bytes per cycle; SRAM sizes in KiB; ``word_bits`` is the operand width
the array is built for (narrower operands gain nothing, wider ones run at a fraction of
the rate: ``rate = (word_bits / a_bits) * (word_bits / w_bits)`` for multiples of it).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Mapping

from annotated_types import Gt, Le

from ..archbase import Clock, NonNegative, Rate, NonNegativeInt, Nm, PositiveInt, check_fields, need
from ..machine import MemoryLevel, Peaks, describe_fields
from .counters import table3
from .program import PCIE3_X16_BYTES_PER_S

if TYPE_CHECKING:
    from workloads.trace import Workload

    from ..machine import Progress
    from ..result import OpResult, SimResult

__all__ = ["DATAFLOWS", "ENGINES", "PE_REG_ROLES", "SystolicArch", "PRESETS", "ARCH"]

Dataflow = Literal["ws", "os", "is"]
DATAFLOWS: tuple[Dataflow, ...] = typing.get_args(Dataflow)
# policy bounds, far beyond any design, so that cycle arithmetic stays in int64
Capacity = Annotated[float, Gt(0), Le(2 ** 30)]
Bits = Annotated[int, Gt(0), Le(128)]
ENGINES = ("fast", "cycles")


PE_REG_ROLES = ("input", "weight", "output")

# each operand SRAM, what it holds and the field giving one word's width: it must hold one
# array edge. (Not the accumulators: the model runs a streamed chunk of a single row when no
# more fit, outer_tiles' t_max >= 1, so any ofmap_sram_kib > 0 works.)
SRAM_UNITS = (("ifmap_sram_kib", "inputs", "word_bits"), ("filter_sram_kib", "weights", "word_bits"))


@dataclass(frozen=True)
class SystolicArch:
    """A systolic array with three SRAMs and one DRAM channel; implements ``sim.machine.Machine``.

    One op runs at a time (the array and its vector lanes serve one op), so a workload's
    time is the sum of its ops' times. Dependent steps (an RNN's recurrent GEMM) keep their
    weights in the weight SRAM when all of them fit, as the TPU does for LSTMs.
    """

    family: ClassVar[str] = "systolic"
    uses_weight_values: ClassVar[bool] = False

    name: str = "systolic-32"
    rows: PositiveInt = 32
    cols: PositiveInt = 32
    dataflow: Dataflow = "ws"
    clock_mhz: Clock = 1000.0
    word_bits: Bits = 8
    acc_bits: Bits = 32
    ifmap_sram_kib: Capacity = 64
    filter_sram_kib: Capacity = 64
    ofmap_sram_kib: Capacity = 64
    dram_bw_bytes_per_cycle: Rate = 10.0
    prefetch_depth: Annotated[int, Gt(0), Le(2 ** 30)] = 2           # buffered fold loads (2 = double buffering; TPU weight FIFO: 4)
    ifmap_on_chip: bool = False       # activations already resident (TPU unified buffer, fed by the host)
    # Read_Weights runs ahead of the matrix unit across ops (decoupled access/execute, Jouppi et
    # al. 2017 Sec. 2): an op's first prefetch_depth folds load while the array is still busy
    # with earlier ops or waits for the host. False: an op's loads start when it does, each
    # layer on its own (as SCALE-Sim runs layers).
    decoupled_weight_reads: bool = False
    # the host link in bytes per cycle (0: not modelled): an op that reads the workload's input
    # first waits for it to arrive (Read_Host_Memory; Table 3's input stalls), and an op whose
    # output nothing reads sends it back (Write_Host_Memory), the array idle meanwhile
    host_link_bytes_per_cycle: NonNegative = 0.0
    vector_lanes: NonNegativeInt = 0             # element ops per cycle for non-GEMM ops (0: one per column)
    dram_type: str = "ddr3"           # the DRAM technology the energy table prices
    dram_gib: NonNegative = 0.0             # off-chip memory capacity (0: not modelled)
    static_power_w: NonNegative = 0.0       # idle power over the run's time; 0: dynamic energy only
    # per-PE register files as energy levels: operand role (input, weight, output) -> bytes
    # per PE; each MAC reads its input/weight from its register and reads and writes its
    # partial sum (acc_bits) in the output register. Empty: registers not priced.
    pe_reg_bytes: Mapping[str, float] = field(default_factory=dict)
    # the energy table this design is priced with unless a command names one (a built-in
    # name or a YAML file; in an arch file, relative to it); "": the default, horowitz45
    energy_table: str = ""
    technology_nm: Nm = 45
    source: str = "SCALE-Sim default configuration (32x32, 64 KiB SRAMs, 10 words/cycle)"

    def __post_init__(self) -> None:
        check_fields(self)
        # one product of two word_bits operands is 2 x word_bits wide (int8 x int8: 16 bits); an
        # accumulator narrower than that cannot hold even one, let alone the sum of K of them
        need(self.acc_bits >= 2 * self.word_bits, "acc_bits",
             f"{self.acc_bits} bits cannot hold one product of two {self.word_bits}-bit operands "
             f"({2 * self.word_bits} bits); use at least 2 x word_bits = {2 * self.word_bits} "
             f"(accumulating K products needs more: the presets use 32)")
        for sram, unit, bits in SRAM_UNITS:
            self._check_sram_holds_an_edge(sram, unit, getattr(self, bits))
        need(bool(self.name), "name", "must not be empty")
        for role, size in self.pe_reg_bytes.items():
            need(role in PE_REG_ROLES, f"pe_reg_bytes.{role}", f"must be one of {', '.join(PE_REG_ROLES)}")
            need(0 < size <= 2 ** 20, f"pe_reg_bytes.{role}", f"must be bytes per PE in (0, 1 MiB], got {size!r}")

    def _check_sram_holds_an_edge(self, sram: str, unit: str, bits: int) -> None:
        """The array takes (or gives) one array edge of words per cycle: max(rows, cols) of
        them, whatever the dataflow (a mapping search runs every dataflow on one design), and
        each SRAM is double buffered (the model fills one half while the array reads the
        other), so each half must hold at least one edge: 2 x max(rows, cols) x bits / 8 bytes."""
        edge = max(self.rows, self.cols)
        low = 2 * edge * bits / 8
        have = getattr(self, sram) * 1024
        need(have >= low, sram,
             f"{getattr(self, sram):g} KiB ({have:g} bytes) cannot hold one array edge of {unit}: each half of "
             f"the double buffer must hold max(rows, cols) = {edge} words of {bits} bits, so the SRAM needs at least "
             f"{low / 1024:g} KiB ({low:g} bytes)")

    def mapping_families(self) -> dict[str, "SystolicArch"]:
        """This design in each dataflow its array can run (the mapping families a per-op
        search chooses among, ``analysis.mapping``), in the order ties are broken."""
        return {df: replace(self, dataflow=df) for df in DATAFLOWS}

    @property
    def sparsity_exploited(self) -> frozenset[str]:
        """None: the array multiplies every weight and activation, zero or not (TPU v1)."""
        return frozenset()

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def lanes(self) -> int:
        return self.vector_lanes or self.cols

    def rate(self, a_bits: int, w_bits: int) -> float:
        """MACs per PE per cycle for these operand widths (1, 1/2, 1/4, ...)."""
        slow = max(1, -(-a_bits // self.word_bits)) * max(1, -(-w_bits // self.word_bits))
        return 1.0 / slow

    @property
    def peak_tops(self) -> float:
        return self.peaks().ops_per_s / 1e12

    # ---- the Machine interface ------------------------------------------------------
    def simulate(self, workload: Workload, *, engine: str = "fast", quantize_float: bool = True,
                 progress: Progress | None = None) -> SimResult:
        """Run ``workload``: ``engine`` "fast" (the fold recurrence) or "cycles" (the cycle
        stepper; identical results, slower); ``quantize_float`` runs float operands at the
        array's native integer width (the TPU runs quantized models), else at their width."""
        from .simulate import simulate
        need(engine in ENGINES, "engine", f"must be one of {', '.join(ENGINES)}, got {engine!r}")
        need(isinstance(quantize_float, bool), "quantize_float", f"must be true or false, got {quantize_float!r}")
        return simulate(workload, self, engine=engine, quantize_float=quantize_float, progress=progress)

    @property
    def memory_capacity_bytes(self) -> float:
        return self.dram_gib * 2 ** 30

    def memory_levels(self) -> Mapping[str, MemoryLevel]:
        regs = {f"pe_{role}_reg": MemoryLevel("rf", size) for role, size in self.pe_reg_bytes.items()}
        return {**regs, "ifmap_sram": MemoryLevel("sram", self.ifmap_sram_kib * 1024),
                "filter_sram": MemoryLevel("sram", self.filter_sram_kib * 1024),
                "ofmap_sram": MemoryLevel("sram", self.ofmap_sram_kib * 1024),
                "dram": MemoryLevel("dram", technology=self.dram_type)}

    def peaks(self, precision: str | None = None) -> Peaks:
        """Peak at the native width (``int{word_bits}``) or, for ``intB``, at that width's rate."""
        bits = self.word_bits
        if precision:
            need(precision.startswith("int") and precision[3:].isdigit(), "precision",
                 f"a systolic array computes intB, got {precision!r}")
            bits = int(precision[3:])
        rate = self.rate(bits, bits)
        return Peaks(f"int{bits}", self.pes * rate * self.clock_mhz * 1e6,
                     {"dram": self.dram_bw_bytes_per_cycle * self.clock_mhz * 1e6})

    def occupancy(self, result: OpResult) -> float:
        return 1.0

    @property
    def precision_policy(self) -> str:
        """What precision the trace's ops run at here (stated in summaries and `hwsim archs`)."""
        where = ("in the activation SRAM, inputs and outputs alike" if self.ifmap_on_chip
                 else "read from and written to DRAM")
        return (f"GEMM operands as int{self.word_bits} (float traces quantised; integer operands keep their "
                f"width, wider ones stream at a fraction of the rate), int{self.acc_bits} accumulation; "
                f"element-wise ops at int{self.word_bits} on the vector lanes; activations {where}. "
                "Change word_bits in an arch YAML to run wider.")

    def describe(self) -> dict[str, Any]:
        return describe_fields(self, pes=self.pes, peak_tops=self.peak_tops, ops_overlap="one op at a time",
                               precision_policy=self.precision_policy)

    def cycle_counters(self, result: SimResult) -> dict[str, float]:
        """Where the whole run's cycles went, as the TPU paper's Table 3 counts them
        (``counters.table3``; percent of the makespan), for summaries and reports."""
        return {k: v for k, v in table3(result, self.pes, self.host_link_bytes_per_cycle > 0).items()
                if v is not None and k != "TOPS"}


PRESETS = {
    "tpu-v1": SystolicArch(
        name="tpu-v1", rows=256, cols=256, dataflow="ws", clock_mhz=700.0, word_bits=8, acc_bits=32,
        ifmap_sram_kib=24 * 1024, filter_sram_kib=4 * 64, ofmap_sram_kib=4 * 1024,
        dram_bw_bytes_per_cycle=34e9 / 700e6, prefetch_depth=4, ifmap_on_chip=True, vector_lanes=256,
        technology_nm=28, static_power_w=28.0, dram_gib=8, decoupled_weight_reads=True,
        host_link_bytes_per_cycle=PCIE3_X16_BYTES_PER_S / 700e6,
        source="Jouppi et al., ISCA 2017: 256x256 int8 MACs at 700 MHz, 24 MiB unified buffer, 4 MiB "
               "accumulators, weight FIFO of four 64 KiB tiles, 34 GB/s DDR3 (Table 2, Sec. 2); "
               "idle power 28 W per die (Table 2); 8 GiB of DDR3; 256 vector lanes: the activation unit "
               "taken at the matrix unit's rate, one 256-value row per cycle (Sec. 2: the matrix unit reads "
               "and writes 256 values per clock; the paper gives no separate activation rate); Read_Weights "
               "decoupled from the matrix unit (Sec. 2); host link PCIe Gen3 x16 (Sec. 2; its rate: "
               "sim.systolic.program.PCIE3_X16_BYTES_PER_S)"),
    "systolic-16": SystolicArch(name="systolic-16", rows=16, cols=16, clock_mhz=500.0, ifmap_sram_kib=32,
                                filter_sram_kib=32, ofmap_sram_kib=16, dram_bw_bytes_per_cycle=4.0,
                                source="edge array in the style of Eyeriss/SCALE-Sim edge configs (16x16, 80 KiB)"),
    "systolic-32": SystolicArch(),   # the defaults above
    "systolic-128": SystolicArch(name="systolic-128", rows=128, cols=128, ifmap_sram_kib=6144,
                                 filter_sram_kib=6144, ofmap_sram_kib=2048, dram_bw_bytes_per_cycle=50.0,
                                 source="SCALE-Sim google.cfg-like configuration (128x128, 6 MiB SRAMs)"),
}

ARCH = SystolicArch

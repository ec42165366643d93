"""EIE hardware description (Han et al., "EIE: Efficient Inference Engine on Compressed
Deep Neural Network", ISCA 2016: Sec. IV and VI, Tables II and V)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Mapping

from annotated_types import Gt, Le

from ..archbase import Clock, NonNegative, NonNegativeInt, Nm, Positive, PositiveInt, check_fields, need
from ..machine import MemoryLevel, Peaks, describe_fields
from .dram import DRAM_GBPS, DRAM_STREAMING, DramStreaming

if TYPE_CHECKING:
    from workloads.trace import Workload

    from ..machine import Progress
    from ..result import OpResult, SimResult

__all__ = ["DRAM_GBPS", "DRAM_STREAMING", "ENGINES", "EIEArch", "PRESETS", "ARCH"]

ENGINES = ("fast", "cycles")


@dataclass(frozen=True)
class EIEArch:
    """An EIE array; implements ``sim.machine.Machine``.

    One layer runs at a time (the PEs share the activation broadcast), so a workload's time
    is the sum of its ops' times. A layer's encoded weights and pointers are meant to live
    in the PEs' SRAMs; what does not fit (per PE, in pass order, the entries and pointers
    beyond each SRAM's capacity) is read from DRAM at ``dram_gbps`` for every vector and
    charged DRAM energy; ``dram_streaming`` says whether the PEs wait for it (``stalled``,
    the default: the paper's I/O mode), compute while it loads (``pipelined``) or the loads
    are not timed (``untimed``), see :mod:`sim.eie.dram`. Cycles spent waiting on DRAM are
    ``stall_cycles``; PEs waiting for activations (load imbalance) are ``starved_cycles``.
    """

    family: ClassVar[str] = "eie"
    uses_weight_values: ClassVar[bool] = True

    name: str = "eie-64"
    num_pes: PositiveInt = 64
    clock_mhz: Clock = 800.0
    queue_depth: PositiveInt = 8                 # activation FIFO entries per PE
    spmat_sram_bytes: PositiveInt = 128 * 1024   # per PE, 64-bit wide
    ptr_sram_bytes: PositiveInt = 32 * 1024      # per PE, two banks of 16-bit pointers
    act_sram_bytes: PositiveInt = 2 * 1024       # per PE
    act_regs: PositiveInt = 64                   # destination activation registers per PE (16-bit)
    spmat_width_bits: PositiveInt = 64           # one read returns 8 (v, z) entries
    index_bits: Annotated[int, Gt(0), Le(16)] = 4                  # virtual weight index (16-entry codebook)
    zero_run_bits: PositiveInt = 4               # relative row index
    pointer_bits: PositiveInt = 16
    act_bits: PositiveInt = 16                   # 16-bit fixed point
    weight_bits: PositiveInt = 16                # codebook entries, 16-bit fixed point
    weight_frac_bits: NonNegativeInt = 12           # radix point of codebook values
    pipeline_depth: PositiveInt = 4              # lookup | multiply | add | write
    dram_type: str = "lpddr"             # the DRAM technology the energy table prices
    dram_gbps: Positive = DRAM_GBPS      # GB/s the DMA reads DRAM at (named assumption: sim.eie.dram)
    dram_streaming: DramStreaming = "stalled"   # how DRAM loads and compute overlap (sim.eie.dram)
    # The paper's 590 mW for EIE-64 (Table II) is total power with no static share published:
    # EIE results are dynamic energy only.
    static_power_w: NonNegative = 0.0
    technology_nm: Nm = 45
    source: str = "Han et al., ISCA 2016, Sec. IV and VI (64 PEs, 800 MHz, 45 nm)"

    def __post_init__(self) -> None:
        check_fields(self)
        need(self.index_bits + self.zero_run_bits <= self.spmat_width_bits, "spmat_width_bits",
             "must hold at least one (index, zero-run) entry")
        # A PE's pointers p[j], p[j+1] delimit column j's entries on it. Rows are interleaved
        # (row r on PE r % num_pes) and a row batch is num_pes x act_regs rows, so a column has at
        # most act_regs entries on a PE (each entry, padding zeros included, takes a row of
        # its own): a pointer must count 0..act_regs at least. (Addressing the whole 128 KiB
        # SRAM would take 18 bits, more than the paper's 16: pointers are not that wide.)
        low = self.act_regs.bit_length()
        need(self.pointer_bits >= low, "pointer_bits",
             f"{self.pointer_bits} bit{'' if self.pointer_bits == 1 else 's'} cannot address the up to {self.act_regs} entries one column has on a PE "
             f"(act_regs = {self.act_regs} rows per PE per row batch); use at least {low} bits")
        need(self.weight_frac_bits < self.weight_bits, "weight_frac_bits",
             f"must be in [0, weight_bits), got {self.weight_frac_bits}")

    @property
    def sparsity_exploited(self) -> frozenset[str]:
        """Zero weights are not stored and zero activations not broadcast (Han et al., 2016)."""
        return frozenset({"weight_density", "act_density"})

    @property
    def entry_bits(self) -> int:
        return self.index_bits + self.zero_run_bits

    @property
    def entries_per_read(self) -> int:
        return self.spmat_width_bits // self.entry_bits

    @property
    def spmat_capacity(self) -> int:
        """(v, z) entries one PE's sparse-matrix SRAM holds."""
        return self.spmat_sram_bytes * 8 // self.entry_bits

    @property
    def ptr_capacity(self) -> int:
        """Column pointers one PE's pointer SRAM holds (columns + 1 per tile)."""
        return self.ptr_sram_bytes * 8 // self.pointer_bits

    @property
    def max_zero_run(self) -> int:
        return int(2 ** self.zero_run_bits) - 1

    @property
    def codebook_size(self) -> int:
        return int(2 ** self.index_bits)

    # ---- the Machine interface ------------------------------------------------------
    @property
    def memory_capacity_bytes(self) -> float:
        return 0.0            # DRAM capacity is not modelled (layers that do not fit the SRAMs stream from it)


    def simulate(self, workload: Workload, *, seed: int = 0, max_vectors: int = 8, engine: str = "fast",
                 max_nonzeros: int = 200_000_000, progress: Progress | None = None) -> SimResult:
        """Run ``workload``: synthetic weights (where the trace keeps none) and activations
        are drawn from ``seed``; an op with more than ``max_vectors`` activation vectors
        simulates that many and scales; ``engine`` "fast" (the recurrence) or "cycles";
        a sparse layer with more than ``max_nonzeros`` non-zeros is refused (encoding one
        takes about 40 bytes per non-zero; dense layers take a closed form and no limit)."""
        from .simulate import simulate
        need(isinstance(max_nonzeros, int) and not isinstance(max_nonzeros, bool) and max_nonzeros >= 1,
             "max_nonzeros", f"must be an integer >= 1, got {max_nonzeros!r}")
        need(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed",
             f"must be an integer >= 0, got {seed!r}")
        need(isinstance(max_vectors, int) and not isinstance(max_vectors, bool) and max_vectors >= 1,
             "max_vectors", f"must be an integer >= 1, got {max_vectors!r}")
        need(engine in ENGINES, "engine", f"must be one of {', '.join(ENGINES)}, got {engine!r}")
        return simulate(workload, self, seed=seed, max_vectors=max_vectors, engine=engine,
                        max_nonzeros=max_nonzeros, progress=progress)

    def memory_levels(self) -> Mapping[str, MemoryLevel]:
        return {"spmat_sram": MemoryLevel("sram", self.spmat_sram_bytes),
                "ptr_sram": MemoryLevel("sram", self.ptr_sram_bytes),
                "act_sram": MemoryLevel("sram", self.act_sram_bytes),
                "act_rf": MemoryLevel("rf", self.act_regs * self.act_bits / 8),
                "codebook_rf": MemoryLevel("rf", self.codebook_size * self.weight_bits / 8),
                "queue_rf": MemoryLevel("rf", self.queue_depth * 4),
                "dram": MemoryLevel("dram", technology=self.dram_type)}

    def peaks(self, precision: str | None = None) -> Peaks:
        """One MAC per PE per cycle (64 PEs x 800 MHz = 51.2 G MACs/s: the paper's 102 GOP/s,
        Sec. VI); DRAM at ``dram_gbps`` unless its loads are untimed."""
        p = precision or f"fixed{self.act_bits}"
        need(p == f"fixed{self.act_bits}", "precision", f"{self.name} computes fixed{self.act_bits}, not {p!r}")
        bw = {} if self.dram_streaming == "untimed" else {"dram": self.dram_gbps * 1e9}
        return Peaks(p, self.num_pes * self.clock_mhz * 1e6, bw)

    def occupancy(self, result: OpResult) -> float:
        return 1.0

    @property
    def precision_policy(self) -> str:
        """What precision the trace's ops run at here (stated in summaries and `hwsim archs`)."""
        return (f"activations in {self.act_bits}-bit fixed point, weights as {self.index_bits}-bit indices into a "
                f"codebook of {self.weight_bits}-bit fixed-point values ({self.weight_frac_bits} fraction bits), "
                "whatever the trace's precision; activations live in the PEs' SRAM and registers.")

    def describe(self) -> dict[str, Any]:
        return describe_fields(self, peak_gmacs=self.num_pes * self.clock_mhz / 1e3, ops_overlap="one op at a time",
                               precision_policy=self.precision_policy)


PRESETS = {
    "eie-64": EIEArch(),
    "eie-256": EIEArch(name="eie-256", num_pes=256, clock_mhz=1200.0, technology_nm=28,
                       source="Han et al., ISCA 2016, Table V (256 PEs projected to 28 nm, 1200 MHz)"),
}

ARCH = EIEArch

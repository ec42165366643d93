"""EIE hardware description (Han et al., "EIE: Efficient Inference Engine on Compressed
Deep Neural Network", ISCA 2016; see shared/reference/eie.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ..archbase import need, positive


@dataclass(frozen=True)
class EIEArch:
    name: str = "eie-64"
    num_pes: int = 64
    clock_mhz: float = 800.0
    queue_depth: int = 8                 # activation FIFO entries per PE
    spmat_sram_bytes: int = 128 * 1024   # per PE, 64-bit wide
    ptr_sram_bytes: int = 32 * 1024      # per PE, two banks of 16-bit pointers
    act_sram_bytes: int = 2 * 1024       # per PE
    act_regs: int = 64                   # destination activation registers per PE (16-bit)
    spmat_width_bits: int = 64           # one read returns 8 (v, z) entries
    index_bits: int = 4                  # virtual weight index (16-entry codebook)
    zero_run_bits: int = 4               # relative row index
    pointer_bits: int = 16
    act_bits: int = 16                   # 16-bit fixed point
    weight_bits: int = 16                # codebook entries, 16-bit fixed point
    weight_frac_bits: int = 12           # radix point of codebook values
    pipeline_depth: int = 4              # lookup | multiply | add | write
    technology_nm: int = 45
    source: str = "Han et al., ISCA 2016, Sec. IV and VI (64 PEs, 800 MHz, 45 nm)"

    def __post_init__(self):
        positive(self, "num_pes", "clock_mhz", "queue_depth", "spmat_sram_bytes", "ptr_sram_bytes",
                 "act_regs", "spmat_width_bits", "index_bits", "zero_run_bits", "pointer_bits", "act_bits",
                 "weight_bits", "pipeline_depth")
        for n in ("num_pes", "queue_depth", "act_regs", "pipeline_depth", "index_bits", "zero_run_bits"):
            need(isinstance(getattr(self, n), int), n, f"must be an integer, got {getattr(self, n)!r}")
        need(self.index_bits + self.zero_run_bits <= self.spmat_width_bits, "spmat_width_bits",
             "must hold at least one (index, zero-run) entry")
        need(0 <= self.weight_frac_bits < self.weight_bits, "weight_frac_bits",
             f"must be in [0, weight_bits), got {self.weight_frac_bits}")

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
        return 2 ** self.zero_run_bits - 1

    @property
    def codebook_size(self) -> int:
        return 2 ** self.index_bits


PRESETS = {
    "eie-64": EIEArch(),
    "eie-256": EIEArch(name="eie-256", num_pes=256, clock_mhz=1200.0, technology_nm=28,
                       source="Han et al., ISCA 2016, Table V (256 PEs projected to 28 nm, 1200 MHz)"),
}

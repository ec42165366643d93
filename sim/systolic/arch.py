"""Systolic-array hardware description and presets.

Bandwidth is in bytes per cycle; SRAM sizes in KiB; ``word_bits`` is the operand width
the array is built for (narrower operands gain nothing, wider ones run at a fraction of
the rate: ``rate = (word_bits / a_bits) * (word_bits / w_bits)`` for multiples of it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..archbase import need, positive

DATAFLOWS = ("ws", "os", "is")


@dataclass(frozen=True)
class SystolicArch:
    name: str = "systolic-32"
    rows: int = 32
    cols: int = 32
    dataflow: str = "ws"
    clock_mhz: float = 1000.0
    word_bits: int = 8
    acc_bits: int = 32
    ifmap_sram_kib: float = 64
    filter_sram_kib: float = 64
    ofmap_sram_kib: float = 64
    dram_bw_bytes_per_cycle: float = 10.0
    prefetch_depth: int = 2           # buffered fold loads (2 = double buffering; TPU weight FIFO: 4)
    ifmap_on_chip: bool = False       # activations already resident (TPU unified buffer, fed by the host)
    vector_lanes: int = 0             # element ops per cycle for non-GEMM ops (0: one per column)
    technology_nm: int = 45
    source: str = "SCALE-Sim default configuration (32x32, 64 KiB SRAMs, 10 words/cycle)"

    def __post_init__(self):
        positive(self, "rows", "cols", "clock_mhz", "word_bits", "acc_bits", "ifmap_sram_kib",
                 "filter_sram_kib", "ofmap_sram_kib", "dram_bw_bytes_per_cycle", "prefetch_depth")
        for n in ("rows", "cols", "prefetch_depth", "word_bits", "acc_bits"):
            need(isinstance(getattr(self, n), int), n, f"must be an integer, got {getattr(self, n)!r}")
        need(self.dataflow in DATAFLOWS, "dataflow", f"must be one of {', '.join(DATAFLOWS)}, got {self.dataflow!r}")
        need(isinstance(self.vector_lanes, int) and self.vector_lanes >= 0, "vector_lanes",
             f"must be an integer >= 0, got {self.vector_lanes!r}")

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
        return 2 * self.pes * self.clock_mhz * 1e6 / 1e12


PRESETS = {
    "tpu-v1": SystolicArch(
        name="tpu-v1", rows=256, cols=256, dataflow="ws", clock_mhz=700.0, word_bits=8, acc_bits=32,
        ifmap_sram_kib=24 * 1024, filter_sram_kib=4 * 64, ofmap_sram_kib=4 * 1024,
        dram_bw_bytes_per_cycle=34e9 / 700e6, prefetch_depth=4, ifmap_on_chip=True, vector_lanes=256,
        technology_nm=28,
        source="Jouppi et al., ISCA 2017: 256x256 int8 MACs at 700 MHz, 24 MiB unified buffer, 4 MiB "
               "accumulators, weight FIFO of four 64 KiB tiles, 34 GB/s DDR3 (Table 2, Sec. 2)"),
    "systolic-16": SystolicArch(name="systolic-16", rows=16, cols=16, clock_mhz=500.0, ifmap_sram_kib=32,
                                filter_sram_kib=32, ofmap_sram_kib=16, dram_bw_bytes_per_cycle=4.0,
                                source="edge array in the style of Eyeriss/SCALE-Sim edge configs (16x16, 80 KiB)"),
    "systolic-32": SystolicArch(),
    "systolic-128": SystolicArch(name="systolic-128", rows=128, cols=128, ifmap_sram_kib=6144,
                                 filter_sram_kib=6144, ofmap_sram_kib=2048, dram_bw_bytes_per_cycle=50.0,
                                 source="SCALE-Sim google.cfg-like configuration (128x128, 6 MiB SRAMs)"),
}

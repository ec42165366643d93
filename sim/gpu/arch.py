"""Tensor-core GPU descriptions (shared/reference/gpus.md, with the NVIDIA whitepapers).

``tc_fma_per_clk`` is the dense FMA rate of one tensor core per clock, per input
precision; a precision missing from it is not supported by that generation's tensor
cores. Bandwidths are per second at the preset's clock; ``l2_bytes_per_clk`` is the
whole-chip L2 read bandwidth per clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from workloads.errors import HwsimError

from ..archbase import need, positive

PRECISION_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5}


@dataclass(frozen=True)
class GPUArch:
    name: str
    sms: int
    tcs_per_sm: int
    tc_fma_per_clk: Mapping[str, int]
    clock_mhz: float
    dram_gbs: float
    dram_latency_cycles: int
    l2_mib: float
    l2_bytes_per_clk: int
    smem_per_sm_kib: int
    regs_per_sm: int = 65536            # 32-bit registers
    max_ctas_per_sm: int = 32
    max_threads_per_sm: int = 2048
    fp32_lanes_per_sm: int = 64         # CUDA-core FMA lanes (depthwise convs, non-GEMM math)
    mma_shape: str = ""
    pipeline_stages: int = 3            # global->shared software pipeline depth
    kernel_overhead_us: float = 2.0     # launch + prologue that no overlap hides
    technology_nm: float = 7
    generation: str = ""
    source: str = ""

    def __post_init__(self):
        positive(self, "sms", "tcs_per_sm", "clock_mhz", "dram_gbs", "l2_mib", "l2_bytes_per_clk", "smem_per_sm_kib",
                 "regs_per_sm", "max_ctas_per_sm", "fp32_lanes_per_sm", "pipeline_stages")
        need(self.dram_latency_cycles >= 0, "dram_latency_cycles", f"must be >= 0, got {self.dram_latency_cycles}")
        need(self.kernel_overhead_us >= 0, "kernel_overhead_us", f"must be >= 0, got {self.kernel_overhead_us}")
        need(bool(self.tc_fma_per_clk), "tc_fma_per_clk", "needs at least one precision")
        for p, v in self.tc_fma_per_clk.items():
            need(p in PRECISION_BYTES, "tc_fma_per_clk", f"unknown precision {p!r}; one of {', '.join(PRECISION_BYTES)}")
            need(isinstance(v, (int, float)) and v > 0, f"tc_fma_per_clk.{p}", f"must be > 0, got {v!r}")

    def check_precision(self, precision: str) -> None:
        if precision not in self.tc_fma_per_clk:
            raise HwsimError(f"precision {precision!r} is not supported by {self.name}'s tensor cores; "
                             f"supported: {', '.join(self.tc_fma_per_clk)}")

    def peak_tflops(self, precision: str = "fp16") -> float:
        """Dense tensor-core peak: SMs x TCs x FMA/clk x 2 x clock."""
        self.check_precision(precision)
        return self.sms * self.tcs_per_sm * self.tc_fma_per_clk[precision] * 2 * self.clock_mhz * 1e6 / 1e12

    def sm_fma_per_clk(self, precision: str) -> float:
        self.check_precision(precision)
        return self.tcs_per_sm * self.tc_fma_per_clk[precision]

    @property
    def dram_bytes_per_clk(self) -> float:
        return self.dram_gbs * 1e9 / (self.clock_mhz * 1e6)

    @property
    def ridge_flop_per_byte(self) -> float:
        return self.peak_tflops("fp16") * 1e12 / (self.dram_gbs * 1e9)


PRESETS = {
    "v100": GPUArch(
        name="v100", technology_nm=12, generation="volta", sms=80, tcs_per_sm=8, tc_fma_per_clk={"fp16": 64}, clock_mhz=1530,
        dram_gbs=900, dram_latency_cycles=600, l2_mib=6, l2_bytes_per_clk=2048, smem_per_sm_kib=96,
        fp32_lanes_per_sm=64, mma_shape="m8n8k4 (HMMA.884)", pipeline_stages=2,
        source="V100 SXM2: 80 SMs x 8 TCs x 64 FP16 FMA/clk at 1530 MHz = 125.3 TFLOPS, 900 GB/s HBM2, 6 MB L2, "
               "96 KB smem (shared/reference/gpus.md); L2 2048 B/clk and ~600-cycle DRAM latency: assumed from "
               "the Volta/Ampere whitepapers and microbenchmark papers"),
    "t4": GPUArch(
        name="t4", technology_nm=12, generation="turing", sms=40, tcs_per_sm=8, tc_fma_per_clk={"fp16": 64, "int8": 128, "int4": 256},
        clock_mhz=1590, dram_gbs=320, dram_latency_cycles=600, l2_mib=4, l2_bytes_per_clk=1024,
        smem_per_sm_kib=64, fp32_lanes_per_sm=64, mma_shape="m16n8k8 (HMMA.1688)", pipeline_stages=2,
        source="T4: 40 SMs x 8 TCs, 65 TFLOPS FP16 / 130 TOPS INT8 / 260 TOPS INT4 at 1590 MHz, 320 GB/s GDDR6, "
               "4 MB L2 (shared/reference/gpus.md); smem 64 KB/SM, L2 1024 B/clk: assumed (Turing whitepaper)"),
    "a100": GPUArch(
        name="a100", technology_nm=7, generation="ampere", sms=108, tcs_per_sm=4,
        tc_fma_per_clk={"fp16": 256, "bf16": 256, "tf32": 128, "int8": 512, "int4": 1024}, clock_mhz=1410,
        dram_gbs=1555, dram_latency_cycles=700, l2_mib=40, l2_bytes_per_clk=5120, smem_per_sm_kib=164,
        fp32_lanes_per_sm=64, mma_shape="m16n8k16 (HMMA.16816)", pipeline_stages=3,
        source="A100 40GB: 108 SMs x 4 TCs x 256 FP16 FMA/clk at 1410 MHz = 311.9 TFLOPS (TF32 156, INT8 624), "
               "1555 GB/s, 40 MB L2, 164 KB smem (shared/reference/gpus.md); L2 5120 B/clk: Ampere whitepaper"),
    "h100": GPUArch(
        name="h100", technology_nm=4, generation="hopper", sms=132, tcs_per_sm=4,
        tc_fma_per_clk={"fp16": 512, "bf16": 512, "tf32": 256, "fp8": 1024, "int8": 1024}, clock_mhz=1830,
        dram_gbs=3350, dram_latency_cycles=800, l2_mib=50, l2_bytes_per_clk=5120, smem_per_sm_kib=228,
        fp32_lanes_per_sm=128, mma_shape="wgmma m64nNk16 (N = 8..256)", pipeline_stages=4,
        source="H100 SXM5: 132 SMs x 4 TCs x 512 FP16 FMA/clk at 1830 MHz = 989.4 TFLOPS (FP8 1979, TF32 494.7), "
               "3.35 TB/s HBM3, 50 MB L2, 228 KB smem (shared/reference/gpus.md); L2 5120 B/clk assumed"),
}

# H200: H100 compute with faster, larger HBM3e
PRESETS["h200"] = replace(
    PRESETS["h100"], name="h200", dram_gbs=4800,
    source="H200 SXM: H100 compute with 4.8 TB/s HBM3e, 141 GB (shared/reference/gpus.md)")

"""Tensor-core GPUs (V100, T4, A100, H100, H200): tiles and the CUTLASS kernel each runs,
occupancy, waves, a per-CTA software pipeline against shared L2/DRAM bandwidth whose main loop
is stepped cycle by cycle on one SM (``sim.gpu.sm``), with an event-driven reference;
whole-workload simulation."""

from .arch import ARCH, PRECISION_BYTES, PRESETS, GPUArch
from .constants import CONSTANTS
from .gemm import TILES, GemmTiming, gemm_time
from .simulate import GPUStats, simulate, simulate_op

__all__ = ["ARCH", "CONSTANTS", "PRECISION_BYTES", "PRESETS", "GPUArch", "GPUStats", "TILES", "GemmTiming", "gemm_time",
           "simulate", "simulate_op"]

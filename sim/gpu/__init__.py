"""Tensor-core GPUs (V100, T4, A100, H100, H200): tiles, occupancy, waves, a per-CTA
software pipeline against shared L2/DRAM bandwidth; whole-workload simulation."""

from .arch import PRECISION_BYTES, PRESETS, GPUArch
from .gemm import TILES, GemmTiming, gemm_time
from .simulate import simulate, simulate_op

__all__ = ["PRECISION_BYTES", "PRESETS", "GPUArch", "TILES", "GemmTiming", "gemm_time", "simulate", "simulate_op"]

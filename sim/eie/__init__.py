"""EIE, the Efficient Inference Engine (Han et al., ISCA 2016): encoding, cycle-level
simulation and whole-workload runs."""

from .arch import ARCH, PRESETS, EIEArch
from .encode import SparseLayer, decode, encode, from_dense, synthetic, synthetic_activations
from .engine import pass_timing, reference_output, run_layer, simulate_cycles
from .simulate import CONSTANTS, EIEStats, simulate, simulate_op

__all__ = ["ARCH", "CONSTANTS", "PRESETS", "EIEArch", "EIEStats", "SparseLayer", "decode", "encode", "from_dense", "synthetic",
           "synthetic_activations", "pass_timing", "reference_output", "run_layer", "simulate_cycles",
           "simulate", "simulate_op"]

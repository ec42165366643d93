"""TPU-style systolic arrays: register-level array model, fold mapping, fold/DRAM timing
(a cycle-stepping reference and a fast recurrence), whole-workload simulation."""

from .arch import ARCH, DATAFLOWS, PRESETS, SystolicArch
from .array import run_gemm
from .mapping import folds
from .simulate import CONSTANTS, SystolicStats, simulate, simulate_op
from .timing import schedule, schedule_cycles

__all__ = ["ARCH", "CONSTANTS", "DATAFLOWS", "PRESETS", "SystolicArch", "SystolicStats", "run_gemm", "folds", "simulate",
           "simulate_op", "schedule", "schedule_cycles"]

"""hwsim's model side: the workload trace (the IR), PyTorch lowering, the model zoo,
compression passes and SCALE-Sim topology interop.

Importing this package does not import torch; ``workloads.lower`` does.
"""

from .errors import HwsimError, TraceError
from .spec import resolve
from .trace import TRACE_VERSION, Gemm, Op, Operand, Workload

__all__ = ["HwsimError", "TraceError", "TRACE_VERSION", "Gemm", "Op", "Operand", "Workload", "resolve", "lower"]


def __getattr__(name):
    if name == "lower":
        from .lower import lower
        return lower
    raise AttributeError(name)

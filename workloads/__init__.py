"""hwsim's model side: the workload trace (the IR), PyTorch lowering, the model zoo,
compression passes and SCALE-Sim topology interop.

Importing this package is cheap: the trace types, ``resolve`` and ``lower`` load on first
use, and only ``lower`` imports torch.
"""

from .errors import HwsimError, TraceError

__all__ = ["HwsimError", "TraceError", "TRACE_VERSION", "Gemm", "Op", "Operand", "Workload", "resolve", "lower"]


def __getattr__(name):
    if name in ("TRACE_VERSION", "Gemm", "Op", "Operand", "Workload"):
        from . import trace
        return getattr(trace, name)
    if name == "resolve":
        from .spec import resolve
        return resolve
    if name == "lower":
        from .lower import lower
        return lower
    raise AttributeError(name)

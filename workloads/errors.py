"""The one error type hwsim raises for bad user input.

Every message names the offending field (or file, line, op) and, where there is one,
the fix. The CLI turns it into a one-line message and exit code 2.
"""

__all__ = ["HwsimError", "LoweringError", "TraceError"]


class HwsimError(ValueError):
    """Bad input: an unknown model, a malformed trace, an impossible config."""


class TraceError(HwsimError):
    """A trace file or object that does not follow the trace format."""


class LoweringError(HwsimError):
    """The model uses an operation the lowering cannot represent."""

"""What one request may cost, checked before the work is done.

A machine estimates the memory and time a request needs from its shape alone (a GEMM's
folds, an EIE layer's passes, a GPU kernel's waves, a SCALE-Sim layer's demand matrices) and
calls :func:`need` before it allocates or loops. Over a limit, the request is refused in one
line with the estimate, the limit and how to raise it, never a MemoryError or a hang.

Limits come from ``HWSIM_MAX_MEMORY`` and ``HWSIM_MAX_TIME`` (the CLI's ``hwsim --max-memory
16G --max-time 1h``, which sets them for its sweep workers too) or :func:`limited`. A time
limit given so (not the default) also bounds the wall-clock time of the user's own code
(:mod:`workloads.usercode`), which cannot be estimated from a shape.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass
from typing import Iterator

from workloads.errors import HwsimError

__all__ = ["DEFAULT_MAX_MEMORY_BYTES", "DEFAULT_MAX_TIME_S", "Limits", "parse_bytes", "parse_seconds", "limits",
           "limited", "size_text", "time_text", "need"]

DEFAULT_MAX_MEMORY_BYTES = 4 * 2 ** 30   # policy: 4x the peak of any zoo model on any preset (under 1 GB)
DEFAULT_MAX_TIME_S = 600.0               # policy: a single request answers within ten minutes

_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "kb": 2 ** 10, "kib": 2 ** 10, "m": 2 ** 20, "mb": 2 ** 20, "mib": 2 ** 20,
          "g": 2 ** 30, "gb": 2 ** 30, "gib": 2 ** 30, "t": 2 ** 40, "tb": 2 ** 40, "tib": 2 ** 40}
_TIME = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}


@dataclass(frozen=True)
class Limits:
    """The limits in force; ``time_given``: ``max_time_s`` was set (not the default), so it
    also stops the user's code after that long."""

    max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES
    max_time_s: float = DEFAULT_MAX_TIME_S
    time_given: bool = False


def parse_bytes(text: str, where: str = "--max-memory") -> float:
    """``"16G"``, ``"512MiB"``, ``"2e9"`` -> bytes (powers of two for K/M/G/T)."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    try:
        v = float(m.group(1)) * _UNITS[unit] if m else math.nan
    except (ValueError, KeyError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise HwsimError(f"{where}: expected a size such as 8G or 512M, got {text!r}")
    return v


def parse_seconds(text: str, where: str = "--max-time") -> float:
    """``"90"``, ``"10m"``, ``"2h"`` -> seconds."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", str(text))
    try:
        v = float(m.group(1)) * _TIME[m.group(2).lower()] if m else math.nan
    except (ValueError, KeyError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise HwsimError(f"{where}: expected a duration such as 90, 10m or 2h, got {text!r}")
    return v


_override: list[Limits] = []


def limits() -> Limits:
    """The limits in force: :func:`limited`'s, else the environment's, else the defaults."""
    if _override:
        return _override[-1]
    mem, t = os.environ.get("HWSIM_MAX_MEMORY"), os.environ.get("HWSIM_MAX_TIME")
    return Limits(parse_bytes(mem, "HWSIM_MAX_MEMORY") if mem else DEFAULT_MAX_MEMORY_BYTES,
                  parse_seconds(t, "HWSIM_MAX_TIME") if t else DEFAULT_MAX_TIME_S, time_given=bool(t))


@contextlib.contextmanager
def limited(max_memory_bytes: float | None = None, max_time_s: float | None = None) -> Iterator[Limits]:
    cur = limits()
    new = Limits(cur.max_memory_bytes if max_memory_bytes is None else max_memory_bytes,
                 cur.max_time_s if max_time_s is None else max_time_s,
                 time_given=cur.time_given or max_time_s is not None)
    _override.append(new)
    try:
        yield new
    finally:
        _override.pop()


def size_text(nbytes: float) -> str:
    for unit, f in (("TB", 2 ** 40), ("GB", 2 ** 30), ("MB", 2 ** 20), ("KB", 2 ** 10)):
        if nbytes >= f:
            return f"{nbytes / f:.3g} {unit}"
    return f"{nbytes:.0f} B"


def time_text(s: float) -> str:
    if s >= 86400 * 365:
        return f"{s / (86400 * 365):.3g} years"
    for unit, f in (("days", 86400), ("h", 3600), ("min", 60)):
        if s >= f:
            return f"{s / f:.3g} {unit}"
    return f"{s:.3g} s"


def need(what: str, *, nbytes: float = 0.0, seconds: float = 0.0) -> None:
    """Refuse ``what`` if its estimated memory or time is over the limits in force."""
    lim = limits()
    if nbytes > lim.max_memory_bytes:
        raise HwsimError(f"{what} would take about {size_text(nbytes)} of memory; the limit is "
                         f"{size_text(lim.max_memory_bytes)}; raise it with hwsim --max-memory SIZE (or "
                         f"HWSIM_MAX_MEMORY) or make the request smaller")
    if seconds > lim.max_time_s:
        raise HwsimError(f"{what} would take about {time_text(seconds)}; the limit is {time_text(lim.max_time_s)}; "
                         f"raise it with hwsim --max-time DURATION (or HWSIM_MAX_TIME) or make the request smaller")

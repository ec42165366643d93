"""Progress hooks, torch-free so that the CLI can set them without importing torch:
``ON_OP`` holds a callable that ``workloads.lower`` calls with the number of ops recorded
so far; ``STEP`` one that long loops elsewhere (a training search's configurations, an
EIE study's layers, SCALE-Sim layers) call once per step through :func:`step`. The CLI
shows both as tqdm counters on terminals."""

from __future__ import annotations

import contextvars
from typing import Callable

__all__ = ["ON_OP", "STEP", "step"]

ON_OP: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar("ON_OP", default=None)
STEP: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("STEP", default=None)


def step() -> None:
    """One more step done (nothing unless a caller set ``STEP``)."""
    f = STEP.get()
    if f is not None:
        f()

"""A progress hook for long lowerings, torch-free so that the CLI can set it without
importing torch: ``ON_OP`` holds a callable that ``workloads.lower`` calls with the number
of ops recorded so far (the CLI shows it as a tqdm counter)."""

from __future__ import annotations

import contextvars
from typing import Callable

ON_OP: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar("ON_OP", default=None)

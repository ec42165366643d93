"""Progress on stderr for long runs: tqdm counters and bars, shown on terminals only (a pipe
or a test's captured stream gets nothing, and tqdm is not even imported)."""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["counting", "op_bar", "stderr_is_terminal"]


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def counting(desc: str, unit: str, hook: contextvars.ContextVar[Any] | None = None) -> Iterator[None]:
    """A tqdm counter (stderr, terminals only; made at the first step, so nothing shows when
    nothing runs) fed while the body runs through a ``workloads.progress`` hook: ``STEP``
    (one call per step, the default) or ``ON_OP`` (called with the count so far)."""
    from workloads.progress import STEP

    hook = hook or STEP
    bar: Any = None

    if not stderr_is_terminal():         # tqdm would hide itself; do not even import it
        yield
        return

    def tick(n: int | None = None) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(desc=desc, unit=unit, leave=False, disable=None, file=sys.stderr)
        bar.update(1 if n is None else n - bar.n)

    token = hook.set(tick)
    try:
        yield
    finally:
        hook.reset(token)
        if bar is not None:
            bar.close()


@contextlib.contextmanager
def op_bar(desc: str, total: int | None = None) -> Iterator[Callable[[Any], None]]:
    """A tqdm bar of ops (of ``total``, where known) on stderr (hidden when not a terminal); yields the
    per-op callback a simulator's ``progress`` option takes."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="op", leave=False, disable=None, file=sys.stderr)
    try:
        yield lambda op: bar.update(1)
    finally:
        bar.close()

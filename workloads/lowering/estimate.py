"""What lowering a zoo model on real tensors will cost, estimated from shapes before it runs.

A zoo model lowered on real tensors (not the meta device) allocates its example input and
every activation, and records each op; at ``--batch 1000000`` or ``--seq-len 1000000000``
that is terabytes or days. :func:`check` runs the model once at its default size on the
meta device (shapes only: no memory, milliseconds), measures its example input, its largest
op (inputs and outputs, weights excluded) and its op count, and scales them to the request:
activations grow with batch x sequence length, ops with the sequence length (an RNN records
each time step). Over ``hwsim --max-memory`` or ``--max-time`` the request is refused in one
line (``sim.budget.need``), before anything is allocated.

The coefficients are named assumptions, measured on the project's 2-core machine (busy): the
lowering holds about twice its largest op's tensors (the op's own, and the copies torch takes
to count a small tensor's nonzeros; large ones are counted without copies, so it errs high), records an op in about half a millisecond, and reads real tensors at
about 4 s per GiB (``lstm_lm --seq-len 3500``: 107k ops in 46 s, 0.69 GB; ``gru --seq-len
5000``: 161k ops in 42 s; ``lstm_lm --batch 1000``: 3.4 GB in 18 s, estimated 2.8 GB;
``lenet300 --batch 1000000``: 5.7 GB in 29 s, estimated 11 GB).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .tensors import storage_key, tensors

__all__ = ["Probe", "check", "probe", "LIVE_FACTOR", "SECONDS_PER_OP", "SECONDS_PER_BYTE"]

LIVE_FACTOR = 2.0                  # bytes held per byte of the largest op's tensors
SECONDS_PER_OP = 5e-4              # recording one op
SECONDS_PER_BYTE = 4.0 / 2 ** 30   # measuring real tensors


@dataclass(frozen=True)
class Probe:
    """A model at its default size, measured on the meta device."""

    batch: int                 # the factory's default batch
    seq_len: int | None        # its default sequence length (None: it takes none)
    input_bytes: int           # the example input
    op_bytes: int              # the largest op's input and output tensors, weights excluded
    ops: int                   # aten ops one forward runs


class _Measure(TorchDispatchMode):
    def __init__(self, weights: set[int]) -> None:
        super().__init__()
        self.weights, self.largest, self.ops = weights, 0, 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        seen: set[int] = set()
        size = 0
        for t in tensors((args, tuple((kwargs or {}).values()), out)):
            key = storage_key(t)
            if key is None or key in self.weights or key in seen:
                continue
            seen.add(key)
            size += t.numel() * t.element_size()
        self.largest = max(self.largest, size)
        return out


def _default(f: Callable[..., Any], name: str) -> Any:
    p = inspect.signature(f).parameters.get(name)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


_PROBES: dict[str, Probe] = {}


def probe(name: str, factory: Callable[..., Any]) -> Probe:
    """Measure ``factory()`` (a zoo factory: ``f(batch=.., seq_len=..) -> (module, input)``)
    at its defaults on the meta device; remembered by ``name``."""
    if name in _PROBES:
        return _PROBES[name]
    batch = int(_default(factory, "batch") or 1)
    seq = _default(factory, "seq_len")
    from ..zoo.lazy import on_meta
    with on_meta():
        module, example = factory()
    inputs = example if isinstance(example, tuple) else (example,)
    weights = {k for k in (storage_key(t) for t in (*module.parameters(), *module.buffers())) if k is not None}
    m = _Measure(weights)
    with torch.no_grad(), m:
        module(*inputs)
    found = Probe(batch, int(seq) if seq else None, sum(t.numel() * t.element_size() for t in tensors(inputs)),
                  m.largest, m.ops)
    _PROBES[name] = found
    return found


def check(name: str, factory: Callable[..., Any], batch: int | None, seq_len: int | None) -> None:
    """Refuse lowering ``name`` on real tensors at ``batch`` and ``seq_len`` (None: the
    model's own) where the estimate is over the limits; a request no larger than the model's
    default size is not probed."""
    from sim.budget import need

    b0, s0 = int(_default(factory, "batch") or 1), _default(factory, "seq_len")
    rows = (batch or b0) / b0
    steps = (seq_len or s0) / s0 if s0 else 1.0
    if rows * steps <= 1:
        return
    p = probe(name, factory)
    nbytes = rows * steps * (p.input_bytes + LIVE_FACTOR * p.op_bytes)
    seconds = p.ops * steps * SECONDS_PER_OP + nbytes * SECONDS_PER_BYTE
    shown = ", ".join(f"{k} {v:,}" for k, v in (("--batch", batch), ("--seq-len", seq_len)) if v is not None)
    need(f"lowering {name} at {shown} (on real tensors: {math.ceil(p.ops * steps):,} ops)", nbytes=nbytes,
         seconds=seconds)

"""The events a lowering records (one an op, with the ids of the events it reads), the
folding of consecutive repetitions of a block of them, and their naming as trace ops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..trace import Op, Operand

__all__ = ["Event", "fold", "resolve", "to_ops"]


@dataclass
class Event:
    base: str            # name stem (module path or path.param)
    kind: str
    op: str
    dims: dict[str, int]
    operands: list[Operand]
    module: str
    copies: int = 1
    steps: int = 1
    id: int = -1
    producers: set[int] = field(default_factory=set)
    phase: str = "forward"
    has_weight: bool = False

    def signature(self) -> tuple[Any, ...]:
        return (self.base, self.kind, self.op, self.phase, tuple(sorted(self.dims.items())),
                tuple((o.role, o.shape, o.bits, o.dtype) for o in self.operands))


def fold(events: list[Event], alias: dict[int, int], max_period: int = 64) -> list[Event]:
    """Fold consecutive repetitions of a block of identical ops into one block.

    An LSTM over T steps emits the same per-step block T times; it becomes one block whose
    ops have ``steps`` multiplied by T, because step t+1 reads step t's output. Repetitions
    that read nothing of each other (the same layer on independent inputs) multiply
    ``copies`` instead. Densities are averaged over the repetitions. ``alias`` maps the id
    of every folded-away event to the event that stands for it.
    """
    sigs_all: dict[tuple[Any, ...], int] = {}
    sig = [sigs_all.setdefault(e.signature(), len(sigs_all)) for e in events]
    out: list[Event] = []
    i, n = 0, len(events)
    while i < n:
        best_p, best_r = 1, 1
        for p in range(1, min(max_period, (n - i) // 2) + 1):
            if sig[i + p] != sig[i]:
                continue
            period = sig[i:i + p]
            r = 1
            while sig[i + r * p:i + (r + 1) * p] == period:
                r += 1
            if r >= 2 and r * p > best_r * best_p:
                best_p, best_r = p, r
        block = events[i:i + best_p]
        if best_r > 1:
            its = [events[i + k * best_p:i + (k + 1) * best_p] for k in range(best_r)]
            where = {e.id: (k, j) for k, it in enumerate(its) for j, e in enumerate(it)}
            dependent = any(where.get(resolve(alias, x), (k, 0))[0] < k
                            for k, it in enumerate(its) for e in it for x in e.producers)
            merged = []
            for j, e in enumerate(block):
                reps = [it[j] for it in its]
                prods: set[int] = set()
                for k, x in ((k, resolve(alias, x)) for k, r in enumerate(reps) for x in r.producers):
                    if x not in where:
                        prods.add(x)                      # from outside the block
                    elif where[x][0] == k and where[x][1] < j:
                        prods.add(block[where[x][1]].id)  # earlier in the same repetition
                    # else: the loop-carried edge, which 'steps' expresses
                for rep in reps[1:]:
                    alias[rep.id] = e.id
                dens = [sum(x.operands[k].density for x in reps) / best_r for k in range(len(e.operands))]
                ops = [Operand(o.role, o.shape, o.bits, o.dtype, d, o.values, o.codebook)
                       for o, d in zip(e.operands, dens)]
                copies, steps = (e.copies, e.steps * best_r) if dependent else (e.copies * best_r, e.steps)
                merged.append(Event(e.base, e.kind, e.op, e.dims, ops, e.module, copies, steps, e.id, prods,
                                    e.phase, e.has_weight))
            block = fold(merged, alias, max_period) if best_p > 1 else merged
        out.extend(block)
        i += best_p * best_r
    return out


def resolve(alias: dict[int, int], x: int) -> int:
    """The event that stands for event ``x`` after folding."""
    while x in alias:
        x = alias[x]
    return x


def to_ops(events: list[Event], alias: dict[int, int]) -> tuple[list[Op], dict[int, str]]:
    """The trace ops of folded ``events`` (a name used twice gets ``_1``, ``_2``, ...) and
    each event id's op name."""
    used: dict[str, int] = {}
    names: dict[int, str] = {}
    ops = []
    for e in events:
        name = e.base
        if name in used:
            used[name] += 1
            name = f"{e.base}_{used[e.base]}"
            while name in used:
                used[e.base] += 1
                name = f"{e.base}_{used[e.base]}"
        used.setdefault(name, 0)
        names[e.id] = name
        prods = sorted({resolve(alias, x) for x in e.producers} - {e.id})
        ops.append(Op(name=name, kind=e.kind, op=e.op, dims=e.dims, operands=tuple(e.operands),
                      copies=e.copies, steps=e.steps, producers=tuple(names[x] for x in prods if x in names),
                      phase=e.phase, module=e.module))
    return ops, names

"""The trace's graph: the producer edges between the ops of a workload (acyclic, ops in a
topological order), the passes that rewire them, and version 1's migration to a graph."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable, Iterator, Mapping, Sequence

from .trace_ops import Op
from .trace_schema import need

__all__ = ["migrate_v1", "chain", "rewire", "check_graph"]


_RECURRENT = re.compile(r"^(?P<module>.*)\.weight_hh_l\d+(_reverse)?$")


def migrate_v1(ops: list[Op]) -> list[Op]:
    """Version 1 -> 2. v1 had one ``repeat`` (read into ``copies``) and no graph.

    * A recurrent GEMM (hwsim 0.1 named it ``MODULE.weight_hh_lN``) repeated T times ran T
      dependent steps: ``steps = T``. Another op of that module whose repeat is a multiple
      of T ran once or more per step (the cell's gates): ``steps = T``, ``copies =
      repeat / T``. Every other repeat (a bmm's batch, Winograd's GEMMs, a stack of the
      final states) meant independent copies and stays so.
    * v1 ran ops in list order, so each op's producer is the op before it.
    """
    steps_of: dict[str, int] = {}
    for op in ops:
        m = _RECURRENT.match(op.name)
        if m and op.kind == "gemm":
            steps_of[m["module"]] = op.copies
    out: list[Op] = []
    for i, op in enumerate(ops):
        copies, steps = op.copies, 1
        module = next((mod for mod in steps_of if op.name.startswith(mod + ".")), None)
        if module is not None:
            T = steps_of[module]
            if T > 1 and copies % T == 0:
                copies, steps = copies // T, T
        out.append(replace(op, copies=copies, steps=steps, producers=(ops[i - 1].name,) if i else ()))
    return out


def chain(ops: Iterable[Op]) -> list[Op]:
    """``ops`` as a sequence: each op reads the one before it (hand-built layer stacks)."""
    out: list[Op] = []
    for op in ops:
        out.append(replace(op, producers=(out[-1].name,) if out else ()))
    return out


def rewire(ops: Iterable[Op], renamed: Mapping[str, str]) -> list[Op]:
    """Point producers at new names after a pass replaced op ``old`` by ops ending in ``new``."""
    return [replace(op, producers=tuple(dict.fromkeys(renamed.get(p, p) for p in op.producers)))
            if any(p in renamed for p in op.producers) else op for op in ops]


def check_graph(ops: Sequence[Op]) -> None:
    """The ops are Ops with unique names, each producer names an op of the workload, and the
    ops are in a topological order (no cycle; a producer stands before its consumers)."""
    index: dict[str, int] = {}
    for i, op in enumerate(ops):
        need(isinstance(op, Op), f"ops[{i}]", f"expected an Op, got {type(op).__name__}")
        need(op.name not in index, f"ops[{i}].name", f"duplicate op name {op.name!r}; names must be unique")
        index[op.name] = i
    later = []
    for i, op in enumerate(ops):
        for p in op.producers:
            need(p in index, f"ops[{i}] ({op.name}).producers",
                 f"names {p!r}, which is not an op of this workload")
            if index[p] > i:
                later.append(i)
    if later:
        cycle = _find_cycle(ops, index)
        need(cycle is None, f"ops[{index[cycle[0]]}] ({cycle[0]}).producers" if cycle else "ops",
             "the graph has a cycle: " + " -> ".join(cycle or []) + "; a recurrence is expressed by 'steps'")
        i = later[0]
        need(False, f"ops[{i}] ({ops[i].name}).producers",
             "reads an op listed after it; ops must be stored in an order the model could run them")


def _find_cycle(ops: Sequence[Op], index: Mapping[str, int]) -> list[str] | None:
    """A cycle through the producer edges, as a list of names (first == last), or None."""
    state = [0] * len(ops)          # 0 new, 1 on the stack, 2 done
    for root in range(len(ops)):
        if state[root]:
            continue
        stack: list[tuple[int, Iterator[str]]] = [(root, iter(ops[root].producers))]
        path = [root]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            j = index[nxt]
            if state[j] == 1:
                names = [ops[k].name for k in path[path.index(j):]]
                return names + [ops[j].name]
            if state[j] == 0:
                state[j] = 1
                stack.append((j, iter(ops[j].producers)))
                path.append(j)
    return None

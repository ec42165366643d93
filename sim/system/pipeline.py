"""Pipeline-parallel schedules, simulated: the bubble is what the simulation leaves idle.

A model is cut into ``p x v`` chunks (virtual stages); chunk c runs on device c mod p, so
each device holds v chunks (Narayanan et al., SC 2021, Sec. 2.2: the interleaved
schedule). A microbatch's forward goes through the chunks in order, its backward in
reverse; between devices the activation (or its gradient) is sent point to point. Each
device runs its tasks in the schedule's order, one at a time, each as soon as its input
has arrived:

* ``gpipe`` (Huang et al., 2019): every forward, then every backward;
* ``1f1b`` (PipeDream-Flush, Narayanan et al., 2021): ``p - d - 1`` warm-up forwards on
  device d, then one forward and one backward in turn, then the remaining backwards;
* ``interleaved`` (v > 1 chunks per device): Megatron-LM's order of microbatch-chunks, in
  groups of p microbatches per chunk, with ``(p - d - 1) x 2 + (v - 1) x p`` warm-up
  forwards; it needs the microbatch count to be a multiple of p.

The result has every task's start and end, the idle time, and the most microbatch
activations each chunk holds at once (forwards done whose backward has not).

``simulate_events`` runs the devices as simpy processes; ``simulate`` computes the same
schedule as a recurrence (each task starts at the later of its device coming free and its
input arriving), tens of times faster for long pipelines. ``tests/test_system.py`` checks
the two agree task by task on random stages, microbatches, schedules and costs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, NamedTuple

import simpy

from workloads.errors import HwsimError

from ..archbase import FrozenMap

from .network import ProcessBody

__all__ = ["SCHEDULES", "Task", "PipelineRun", "order", "simulate", "simulate_events"]

SCHEDULES = ("gpipe", "1f1b", "interleaved")


class Task(NamedTuple):
    """One forward (F) or backward (B) of one microbatch in one chunk, as it ran."""

    device: int
    chunk: int          # virtual stage, 0..p*v-1
    mb: int
    kind: str           # F | B
    start_us: float
    end_us: float


@dataclass(frozen=True)
class PipelineRun:
    """A simulated schedule. Per device: busy time, when its last backward ended, when its
    last task ended, and the backwards of the last microbatch (each of its chunks' last,
    in the order they ended: they release the chunk's gradients)."""

    tasks: tuple[Task, ...]                        # every task as it ran (none when not recorded)
    makespan_us: float
    busy_us: tuple[float, ...]
    last_backward_end_us: tuple[float, ...]
    inflight: FrozenMap[int, int]                  # chunk -> most microbatches held at once
    device_end_us: tuple[float, ...]
    final_backwards: tuple[tuple[Task, ...], ...]

    def bubble_us(self, device: int) -> float:
        return self.makespan_us - self.busy_us[device]


def order(schedule: str, p: int, m: int, v: int, d: int) -> list[tuple[str, int, int]]:
    """Device d's tasks as (kind, chunk, microbatch), in the order it runs them."""
    if schedule == "gpipe":
        return [("F", c, mb) for mb in range(m) for c in range(d, p * v, p)] + \
               [("B", c, mb) for mb in range(m) for c in reversed(range(d, p * v, p))]
    if schedule == "1f1b" and v == 1:
        w = min(p - d - 1, m)
        seq = [("F", d, i) for i in range(w)]
        for i in range(m - w):
            seq += [("F", d, w + i), ("B", d, i)]
        return seq + [("B", d, i) for i in range(m - w, m)]
    if schedule in ("1f1b", "interleaved"):
        if m % p:
            raise HwsimError(f"the interleaved schedule needs the microbatches ({m}) to be a multiple of the "
                             f"pipeline stages ({p})")
        total = m * v

        def fwd(k: int) -> tuple[str, int, int]:
            local = (k // p) % v
            return ("F", local * p + d, (k // (p * v)) * p + k % p)

        def bwd(k: int) -> tuple[str, int, int]:
            local = v - 1 - (k // p) % v
            return ("B", local * p + d, (k // (p * v)) * p + k % p)
        w = min((p - d - 1) * 2 + (v - 1) * p, total)
        seq = [fwd(k) for k in range(w)]
        for i in range(total - w):
            seq += [fwd(w + i), bwd(i)]
        return seq + [bwd(i) for i in range(total - w, total)]
    raise HwsimError(f"unknown schedule {schedule!r}; one of {', '.join(SCHEDULES)}")


def simulate(p: int, m: int, v: int, schedule: str, fwd_us: Callable[[int], float], bwd_us: Callable[[int], float],
             send_us: Callable[[int, int, str], float], record: bool = True) -> PipelineRun:
    """Run every device's task order. ``fwd_us(chunk)``, ``bwd_us(chunk)``: one microbatch's
    time in a chunk; ``send_us(from_chunk, to_chunk, kind)``: the point-to-point transfer.

    Each device takes its tasks in order as far as their inputs have been computed, in
    sweeps over the devices, until every task has run (or none can: a deadlock). A search
    asks for the same pipeline under many settings that do not change it (ZeRO stages 0-2,
    data-parallel degrees), so runs are remembered by their inputs. ``record=False`` keeps
    only the tasks that end each chunk's backwards (``final_backwards``), not every task
    (a search does not draw timelines)."""
    if schedule == "interleaved" and v < 2:
        raise HwsimError("the interleaved schedule needs at least 2 chunks per device (interleaved:V, V >= 2)")
    n = p * v
    return _run(p, m, v, schedule, tuple(fwd_us(c) for c in range(n)), tuple(bwd_us(c) for c in range(n)),
                tuple(send_us(c, c + 1, "F") for c in range(n - 1)),
                (0.0,) + tuple(send_us(c, c - 1, "B") for c in range(1, n)), record)


class _Plan(NamedTuple):
    """What a schedule's task orders fix, whatever the costs: per device its tasks as
    (is a forward, chunk, microbatch, index chunk x m + microbatch), and the most microbatches
    each chunk holds at once."""

    tasks: tuple[tuple[tuple[bool, int, int, int], ...], ...]
    inflight: FrozenMap[int, int]


@functools.lru_cache(maxsize=256)    # a search asks for one order under many stage costs
def _plan(schedule: str, p: int, m: int, v: int) -> _Plan:
    n = p * v
    seqs = [order(schedule, p, m, v, d) for d in range(p)]
    most = {c: 0 for c in range(n)}
    for d in range(p):              # a chunk's forwards and backwards all run on its device, in its order
        held = {c: 0 for c in range(d, n, p)}
        for kind, c, _ in seqs[d]:
            held[c] += 1 if kind == "F" else -1
            most[c] = max(most[c], held[c])
    return _Plan(tuple(tuple((kind == "F", c, mb, c * m + mb) for kind, c, mb in seq) for seq in seqs), FrozenMap(most))


@functools.lru_cache(maxsize=32)     # a search asks for one pipeline under its ZeRO stages in a row
def _run(p: int, m: int, v: int, schedule: str, fdur: tuple[float, ...], bdur: tuple[float, ...],
         fsend: tuple[float, ...], bsend: tuple[float, ...], record: bool = True) -> PipelineRun:
    n = p * v
    plan = _plan(schedule, p, m, v)
    seqs = plan.tasks
    # per (chunk, microbatch), at index chunk * m + mb: when the input activation (F) or the
    # output gradient (B) is there; None until the task that produces it has run
    arrive_f: list[float | None] = [0.0] * m + [None] * ((n - 1) * m)
    arrive_b: list[float | None] = [None] * (n * m)
    pos = [0] * p
    free = [0.0] * p
    busy = [0.0] * p
    last_b = [0.0] * p
    finals: list[list[Task]] = [[] for _ in range(p)]
    tasks: list[Task] = []
    left = sum(len(q) for q in seqs)
    last_mb = m - 1
    while left:
        moved = 0
        for d in range(p):
            seq, i, t, b, lb = seqs[d], pos[d], free[d], busy[d], last_b[d]
            size = len(seq)
            while i < size:
                fwd, c, mb, at = seq[i]
                if fwd:
                    got = arrive_f[at]
                    if got is None:
                        break
                    start = t if t > got else got
                    t = start + fdur[c]
                    b += fdur[c]
                    if c + 1 < n:
                        arrive_f[at + m] = t + fsend[c]
                    else:                       # the loss: the last chunk's backward starts from its forward
                        arrive_b[at] = t
                    if record:
                        tasks.append(Task(d, c, mb, "F", start, t))
                else:
                    got = arrive_b[at]
                    if got is None:
                        break
                    start = t if t > got else got
                    t = start + bdur[c]
                    b += bdur[c]
                    lb = t
                    if c > 0:
                        arrive_b[at - m] = t + bsend[c]
                    if record or mb == last_mb:
                        task = Task(d, c, mb, "B", start, t)
                        if record:
                            tasks.append(task)
                        if mb == last_mb:
                            finals[d].append(task)
                i += 1
            moved += i - pos[d]
            left -= i - pos[d]
            pos[d], free[d], busy[d], last_b[d] = i, t, b, lb
        if not moved:
            ran = sum(pos)
            raise HwsimError(f"the {schedule} schedule deadlocked ({ran} of {2 * n * m} tasks ran)")
    return PipelineRun(tuple(tasks), max(free), tuple(busy), tuple(last_b), plan.inflight, tuple(free),
                       tuple(tuple(sorted(f, key=lambda t: t.end_us)) for f in finals))


def simulate_events(p: int, m: int, v: int, schedule: str, fwd_us: Callable[[int], float],
                    bwd_us: Callable[[int], float], send_us: Callable[[int, int, str], float]) -> PipelineRun:
    """The same as :func:`simulate`, every device a simpy process waiting on its inputs."""
    if schedule == "interleaved" and v < 2:
        raise HwsimError("the interleaved schedule needs at least 2 chunks per device (interleaved:V, V >= 2)")
    n = p * v
    env = simpy.Environment()
    ready = {(k, c, mb): env.event() for k in "FB" for c in range(n) for mb in range(m)}
    tasks: list[Task] = []
    busy = [0.0] * p
    last_b = [0.0] * p
    end = [0.0] * p
    finals: list[list[Task]] = [[] for _ in range(p)]
    held = {c: 0 for c in range(n)}
    most = {c: 0 for c in range(n)}

    def deliver(ev: simpy.Event, delay: float) -> ProcessBody:
        yield env.timeout(delay)
        ev.succeed()

    def device(d: int, seq: list[tuple[str, int, int]]) -> ProcessBody:
        for kind, c, mb in seq:
            if kind == "F" and c > 0:
                yield ready[("F", c, mb)]
            if kind == "B":      # the last chunk starts its backward from its own forward (the loss)
                yield ready[("B", c, mb)] if c < n - 1 else done_f[(c, mb)]
            start = env.now
            dur = fwd_us(c) if kind == "F" else bwd_us(c)
            yield env.timeout(dur)
            tasks.append(Task(d, c, mb, kind, start, env.now))
            busy[d] += dur
            end[d] = env.now
            if kind == "B" and mb == m - 1:
                finals[d].append(tasks[-1])
            if kind == "F":
                done_f[(c, mb)].succeed()
                held[c] += 1
                most[c] = max(most[c], held[c])
                if c + 1 < n:
                    env.process(deliver(ready[("F", c + 1, mb)], send_us(c, c + 1, "F")))
            else:
                held[c] -= 1
                last_b[d] = env.now
                if c > 0:
                    env.process(deliver(ready[("B", c - 1, mb)], send_us(c, c - 1, "B")))

    done_f = {(c, mb): env.event() for c in range(n) for mb in range(m)}
    for d in range(p):
        env.process(device(d, order(schedule, p, m, v, d)))
    env.run()
    if len(tasks) != 2 * n * m:
        raise HwsimError(f"the {schedule} schedule deadlocked ({len(tasks)} of {2 * n * m} tasks ran)")
    return PipelineRun(tuple(tasks), env.now, tuple(busy), tuple(last_b), FrozenMap(most), tuple(end),
                       tuple(tuple(f) for f in finals))

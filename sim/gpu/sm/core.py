"""One SM stepped cycle by cycle: warp schedulers, tensor pipes, the shared-memory port.

The SM has ``sim.gpu.sm.isa.SMSPS`` sub-partitions; warp ``i`` of the resident CTAs
(numbered CTA by CTA) lives on sub-partition ``i mod 4``, as the hardware assigns warp
slots. Each cycle every sub-partition's scheduler issues at most one instruction: the first warp
that can issue, in round-robin order from the one after the warp it issued last (loose
round robin, GPGPU-Sim's ``lrr``; NVIDIA does not publish its policy, so this is an
assumption, one that lets resident CTAs share the tensor pipes evenly). A warp issues in order;
its next instruction can issue once

* its operands are ready: an MMA's fragment registers (``ldmatrix`` results) and its
  accumulator (the previous MMA on it, one MMA latency after that issued);
* its unit is free: the sub-partition's tensor pipe is busy ``interval`` cycles per MMA
  (a ``wgmma`` occupies the pipes of all four warps of its warpgroup, each issuing its own);
  a fractional interval (a measured rate) accumulates, and the pipe takes the next
  instruction in the cycle its backlog ends;
* what it waits for has happened: ``cp.async.wait_group`` (its copies, all but the newest
  ``n`` groups, landed in shared memory), a CTA barrier (every warp of the CTA arrived),
  an mbarrier (a TMA stage full, or released by every consumer warp).

**Shared memory** is one port of ``smem_bytes_per_clk`` per cycle (32 banks x 4 bytes, or a
T4's 16 load/store units x 4 bytes), shared by fragment loads,
stores and the writes of arriving copies: a request takes the port's free bytes cycle by
cycle from the cycle it reaches the port (a load: when issued; a copy: when its data
arrive from L2), in the order requests were issued; a load's data are ready the measured
shared-memory latency after it starts. A global load or copy's data arrive the card's L2
latency after issue (TMA: plus its measured extra); how the L2 and DRAM keep up with all
SMs together is the wave model's part (``sim.gpu.gemm``), not this core's.

The loop visits only the cycles on which some warp can issue (every other cycle nothing
changes): the state between two visits is fixed, so this is the cycle-by-cycle schedule
(``tests/test_gpu_sm.py`` checks a small CTA against a hand-derived one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workloads.errors import HwsimError

from . import isa
from .isa import TensorOp
from .program import TENSOR_OPS, CtaProgram, Op

__all__ = ["CoreTiming", "Issue", "step"]

_inf = math.inf


@dataclass(frozen=True)
class Issue:
    """One issued instruction: the cycle, the warp, its sub-partition and its opcode."""
    cycle: int
    warp: int
    smsp: int
    opcode: int


@dataclass(frozen=True)
class CoreTiming:
    marks: tuple[tuple[int, ...], ...]    # per CTA, per K step: the cycle its warps all passed the step's last MMA
    cycles: int                           # the last instruction's issue cycle + 1
    tensor_busy: tuple[float, ...]        # per sub-partition, cycles its tensor pipe was busy
    smem_bytes: int                       # bytes through the shared-memory port
    tensor_issues: tuple[tuple[int, ...], ...] = ()   # per sub-partition, the cycles tensor instructions issued
    trace: tuple[Issue, ...] = ()


class _Port:
    """The shared-memory port: ``rate`` bytes per cycle, taken greedily from a request's
    arrival cycle onward. Full cycles are skipped through a union-find of "the next cycle
    that may have room", so a request costs the cycles it uses, not the backlog it waits."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.used: dict[int, int] = {}
        self.skip: dict[int, int] = {}      # a full cycle -> a later cycle to look from
        self.bytes = 0

    def _free(self, c: int) -> int:
        skip = self.skip
        path = []
        while c in skip:
            path.append(c)
            c = skip[c]
        for p in path:
            skip[p] = c
        return c

    def take(self, cycle: int, nbytes: int) -> tuple[int, int]:
        """(first cycle the request moves data, cycle after its last byte)."""
        self.bytes += nbytes
        start = -1
        left = nbytes
        used = self.used
        c = self._free(cycle)
        while True:
            u = used.get(c, 0)
            n = min(self.rate - u, left)
            used[c] = u + n
            left -= n
            if start < 0:
                start = c
            if used[c] >= self.rate:
                self.skip[c] = c + 1
            if left <= 0:
                return start, c + 1
            c = self._free(c + 1)


def step(cta: CtaProgram, ctas: int, op: TensorOp, smem_latency: int, smem_bytes_per_clk: int, global_latency: int,
         tma_latency: int, *, trace: bool = False, max_cycles: int = 10_000_000) -> CoreTiming:
    """Run ``ctas`` copies of ``cta`` together on one SM until every warp has finished."""
    SMSPS = isa.SMSPS
    MMA, LDSM, LDGSTS, COMMIT, WAIT, BAR, LDG, STS = Op.MMA, Op.LDSM, Op.LDGSTS, Op.COMMIT, Op.WAIT, Op.BAR, Op.LDG, Op.STS
    TMA, WAIT_FULL, WG_COMMIT, WG_WAIT, ARRIVE_EMPTY, WAIT_EMPTY, MARK = (Op.TMA, Op.WAIT_FULL, Op.WG_COMMIT, Op.WG_WAIT,
                                                                          Op.ARRIVE_EMPTY, Op.WAIT_EMPTY, Op.MARK)
    port = _Port(smem_bytes_per_clk)
    progs = [w for _ in range(ctas) for w in cta.warps]
    nw = len(progs)
    per_cta = len(cta.warps)
    cta_of = [i // per_cta for i in range(nw)]
    smsp_of = [i % SMSPS for i in range(nw)]
    pc = [0] * nw
    tens = [False] * nw             # the warp's next instruction needs its sub-partition's tensor pipe
    ready = [0.0] * nw              # earliest cycle the warp's next instruction's dependencies allow
    frag = [[0.0, 0.0] for _ in range(nw)]          # fragment registers, per parity
    acc: list[dict[int, float]] = [{} for _ in range(nw)]
    gload = [0.0] * nw              # LDG data in registers (pipelined kernels)
    groups: list[list[float]] = [[] for _ in range(nw)]     # cp.async / wgmma groups' completion cycles
    open_group = [0.0] * nw
    tensor_free = [0.0] * SMSPS      # the tensor pipe's backlog ends here: it accepts in cycle floor(this)
    tensor_busy = [0.0] * SMSPS
    tensor_issues: list[list[int]] = [[] for _ in range(SMSPS)]
    last = [-1] * SMSPS             # per sub-partition: the position (in its warps) issued last
    slots = [list(range(s, nw, SMSPS)) for s in range(SMSPS)]
    bar_wait: dict[int, list[int]] = {}            # CTA -> warps waiting at its barrier
    bar_count = [0] * ctas
    events: dict[tuple[str, int, int], float] = {}  # (kind, CTA, step) -> cycle (full / empty)
    waiters: dict[tuple[str, int, int], list[int]] = {}
    empty_count: dict[tuple[int, int], int] = {}
    ksteps = max((ins[1] for ins in cta.warps[-1] if ins[0] == MARK), default=-1) + 1
    marks = [[0] * ksteps for _ in range(ctas)]
    issued: list[Issue] = []

    def prepare(w: int, now: float) -> None:
        """Skip markers, then set when warp ``w``'s next instruction's dependencies are met."""
        prog = progs[w]
        while pc[w] < len(prog) and prog[pc[w]][0] == MARK:
            c = cta_of[w]
            k = prog[pc[w]][1]
            marks[c][k] = max(marks[c][k], int(now))
            pc[w] += 1
        if pc[w] >= len(prog):
            ready[w] = _inf
            tens[w] = False
            return
        code, a, b, _ = prog[pc[w]]
        tens[w] = code in TENSOR_OPS
        r = now
        if code == MMA:
            r = max(r, frag[w][b], acc[w].get(a, 0.0))
        elif code == STS:
            r = max(r, gload[w])
        elif code in (WAIT, WG_WAIT):
            g = groups[w]
            if len(g) > a:
                r = max(r, max(g[: len(g) - a]))
        elif code in (WAIT_FULL, WAIT_EMPTY):
            key = ("full" if code == WAIT_FULL else "empty", cta_of[w], a)
            if key in events:
                r = max(r, events[key])
            else:
                waiters.setdefault(key, []).append(w)
                r = _inf
        ready[w] = r

    def fire(key: tuple[str, int, int], when: float) -> None:
        events[key] = when
        for v in waiters.pop(key, []):
            ready[v] = max(when, float(pc_cycle[v]))

    pc_cycle = [0] * nw        # the cycle after each warp's last issue (one instruction per warp per cycle)
    for w in range(nw):
        prepare(w, 0.0)
    t = 0
    done = 0
    finished = [False] * nw
    for w in range(nw):
        if ready[w] == _inf and pc[w] >= len(progs[w]):
            finished[w] = True
            done += 1
    while done < nw:
        if t > max_cycles:
            raise HwsimError(f"the SM core ran past {max_cycles:,} cycles; the CTA program does not finish")
        for s in range(SMSPS):
            pick = -1
            mine = slots[s]
            n_mine = len(mine)
            start = (last[s] + 1) % n_mine if n_mine else 0
            for j in range(n_mine):          # loose round robin from the warp after the last issued
                w = mine[(start + j) % n_mine]
                if ready[w] <= t and (not tens[w] or tensor_free[s] < t + 1):
                    pick = w
                    last[s] = (start + j) % n_mine
                    break
            if pick < 0:
                continue
            w = pick
            code, a, b, c = progs[w][pc[w]]
            if trace:
                issued.append(Issue(t, w, s, code))
            if code in TENSOR_OPS:
                tensor_free[s] = max(tensor_free[s], float(t)) + op.interval
                tensor_busy[s] += op.interval
                tensor_issues[s].append(t)
                if code == MMA:
                    acc[w][a] = t + op.latency
                else:
                    open_group[w] = max(open_group[w], t + op.latency)
            elif code == LDSM:
                start, _ = port.take(t, c)
                if b:
                    frag[w][a] = 0.0
                frag[w][a] = max(frag[w][a], start + smem_latency)
            elif code == LDGSTS:
                _, end = port.take(t + global_latency, a)
                open_group[w] = max(open_group[w], end)
            elif code == LDG:
                gload[w] = max(gload[w], t + global_latency)
            elif code == STS:
                port.take(t, a)
            elif code in (COMMIT, WG_COMMIT):
                groups[w].append(open_group[w])
                open_group[w] = 0.0
            elif code == TMA:
                _, end = port.take(t + tma_latency, b)
                fire(("full", cta_of[w], a), float(end))
            pc[w] += 1
            pc_cycle[w] = t + 1
            if code == BAR:
                ci = cta_of[w]
                bar_count[ci] += 1
                waiting = bar_wait.setdefault(ci, [])
                waiting.append(w)
                if bar_count[ci] == cta.consumer_warps:
                    for v in waiting:
                        prepare(v, float(t + 1))
                    bar_wait[ci] = []
                    bar_count[ci] = 0
                else:
                    ready[w] = _inf
            elif code == ARRIVE_EMPTY:
                key = (cta_of[w], a)
                empty_count[key] = empty_count.get(key, 0) + 1
                prepare(w, float(t + 1))
                if empty_count[key] == cta.consumer_warps:
                    fire(("empty", cta_of[w], a), float(t + 1))
            else:
                prepare(w, float(t + 1))
            if pc[w] >= len(progs[w]):
                finished[w] = True
                done += 1
        if done >= nw:
            break
        nxt = _inf
        for w in range(nw):
            r = ready[w]
            if tens[w] and r < tensor_free[smsp_of[w]] // 1:
                r = tensor_free[smsp_of[w]] // 1
            if r < nxt:
                nxt = r
        if nxt == _inf:
            raise HwsimError("the SM core deadlocked: every unfinished warp waits on an event that no warp will cause")
        t = max(t + 1, int(math.ceil(nxt)))
    return CoreTiming(tuple(tuple(m) for m in marks), t + 1, tuple(tensor_busy), port.bytes,
                      tuple(tuple(x) for x in tensor_issues), tuple(issued))

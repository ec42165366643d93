"""ZeRO-3's schedule as first written (``sim.system.zero.schedule`` before it was made
faster): kept as the reference the fast one is checked against (``tests/test_train_speed.py``),
and run instead of it under ``HWSIM_TRAIN_REFERENCE=1`` (``analysis.train_cache.fast``)."""

from __future__ import annotations

from typing import Callable

from workloads.errors import HwsimError

from .zero import ZeroConfig, ZeroSeq

__all__ = ["schedule"]


def schedule(seq: ZeroSeq, cfg: ZeroConfig, gather_us: Callable[[float], float],
             reduce_us: Callable[[float], float], gather_host: Callable[[float], float] | None = None,
             reduce_host: Callable[[float], float] | None = None) -> tuple[float, float]:
    """(forward us, backward us) of one microbatch, step by step (see the module docstring);
    ``gather_us(params)``, ``reduce_us(params)``: a collective's time alone; ``gather_host``,
    ``reduce_host``: the host's time to issue one (modelled with ``fetch_sync``)."""
    if cfg.granularity == "layer":
        seq = seq.by_layer()
    steps = [(u, c, False) for u, c in seq.fwd] + list(seq.bwd)
    nf = len(seq.fwd)
    params = seq.params
    keep = _keeps(steps, params, cfg.max_reuse_params)
    tensored = cfg.per_tensor or cfg.persist_params > 0

    def gathered(u: int) -> list[float]:      # the tensors a fetch of unit u gathers
        if not tensored:
            return [params[u]]
        return [x for x in seq.tensors_of(u) if not x < cfg.persist_params]

    def size(u: int) -> float:
        if not tensored:
            return params[u]
        total = 0.0
        for x in gathered(u):
            total += x
        return total

    resident = [tensored and not gathered(u) for u in range(len(params))]
    state = [2 if r else 0 for r in resident]     # 0 released, 1 in flight, 2 gathered
    live = 0.0                         # parameters gathered or in flight
    gq: list[list[float]] = []         # all-gathers in flight: [unit, work left (us alone)]
    rq: list[float] = []               # reduce-scatters: work left
    pending = 0.0                      # gradients in the open bucket
    pend: list[float] = []             # its tensors (per tensor)
    t = fwd_end = 0.0
    i, busy_until = 0, -1.0            # the step computing (busy_until >= 0 while it runs)
    arrived = -1                       # the last step whose gathers were issued
    waiting = False                    # (fetch_sync) step i waits for the device
    handles = False                    # (fetch_sync) gathers issued since the device last synchronised
    unsynced: set[int] = set()         # (fetch_sync) their units, in flight to DeepSpeed until then
    hosted = cfg.fetch_sync and gather_host is not None and reduce_host is not None
    host_free = 0.0                    # (hosted) when the host has issued what it was issuing
    flushq: list[tuple[float, float]] = []    # (hosted) buckets waiting for an idle reduction stream

    def work(u: int) -> float:                # a unit's gathers one after another, alone
        if cfg.per_tensor:
            w = 0.0
            for x in gathered(u):
                w += gather_us(x)
            return w
        return gather_us(size(u))

    def issue_us(u: int) -> float:            # the host's time to issue a unit's gathers
        assert gather_host is not None
        xs = gathered(u) if cfg.per_tensor else [size(u)]
        h = 0.0
        for x in xs[:-1]:                     # each after the previous one is done
            h += gather_us(x)
        return h + gather_host(xs[-1]) if xs else 0.0

    def gather(u: int) -> None:
        nonlocal live
        state[u] = 1
        live += size(u)
        gq.append([float(u), work(u)])
        if cfg.fetch_sync:
            unsynced.add(u)

    def prefetch(i: int) -> tuple[bool, float]:
        """The next units not gathered, within the budgets; whether any was issued, and the
        host's time to issue them (each unit's after the previous units' are done)."""
        budget = min(cfg.max_live_params - live, cfg.prefetch_params)
        inflight = 0.0
        issued: list[int] = []
        j = i + 1
        while j < len(steps) and budget > 0 and (inflight < budget or inflight == 0):
            v = steps[j][0]
            if v >= 0 and state[v] == 0:
                gather(v)
                issued.append(v)
                inflight += size(v)
                if inflight >= budget:
                    break
            j += 1
        h = 0.0
        if hosted and issued:
            for v in issued[:-1]:
                h += work(v)
            h += issue_us(issued[-1])
        return bool(issued), h

    def submit(w: float, h: float, now: float) -> None:
        """A bucket's reduce-scatters: when hosted, issued once the reduction stream is idle."""
        nonlocal host_free
        if not hosted:
            rq.append(w)
        elif rq:
            flushq.append((w, h))
        else:
            host_free = max(host_free, now) + h
            rq.append(w)

    def host_of(xs: list[float]) -> float:
        h = 0.0
        if hosted:
            assert reduce_host is not None
            for x in xs:
                h += reduce_host(x)
        return h

    def reduce_bucket(now: float) -> None:
        nonlocal pend
        w = 0.0
        for x in pend:
            w += reduce_us(x)
        submit(w, host_of(pend), now)
        pend = []

    while True:
        host_busy = hosted and (host_free > t or bool(flushq))
        if busy_until < 0 and i < len(steps) and not host_busy:
            u = steps[i][0]
            if arrived < i:              # the compute reaches step i: fetch it and prefetch
                arrived = i
                if cfg.fetch_sync:
                    waiting = u >= 0 and (state[u] != 2 or u in unsynced)
                    if not waiting and not handles:
                        handles, h = prefetch(i)
                        if hosted:
                            host_free = t + h
                else:
                    if u >= 0 and state[u] == 0:
                        gather(u)
                    prefetch(i)
            if cfg.fetch_sync:
                if waiting and not gq and not rq:       # the device is idle
                    if state[u] == 0:
                        gather(u)
                        if hosted:
                            host_free = t + issue_us(u)
                    else:
                        waiting = False
                        unsynced.clear()
                        handles, h = prefetch(i)
                        if hosted:
                            host_free = t + h
                if not waiting:
                    busy_until = max(t, host_free) + steps[i][1]
            elif u < 0 or state[u] == 2:
                busy_until = t + steps[i][1]
        shared = (1 if gq else 0) + (1 if rq else 0)
        nxt = [x for x in (busy_until if busy_until >= 0 else None,
                           t + gq[0][1] * shared if gq else None,
                           t + rq[0] * shared if rq else None,
                           host_free if hosted and busy_until < 0 and i < len(steps) and host_free > t else None)
               if x is not None]
        if not nxt:
            break
        t_next = min(nxt)
        dt = t_next - t
        if gq:
            gq[0][1] -= dt / shared
        if rq:
            rq[0] -= dt / shared
        t = t_next
        if gq and gq[0][1] <= 1e-9 * max(1.0, t):
            state[int(gq.pop(0)[0])] = 2
        if rq and rq[0] <= 1e-9 * max(1.0, t):
            rq.pop(0)
            if flushq:                 # the host, waiting for the reduction stream, issues the next bucket
                w, h = flushq.pop(0)
                submit(w, h, t)
        if busy_until >= 0 and busy_until <= t:
            u, _, grads = steps[i]
            busy_until = -1.0
            if u >= 0 and not keep[i] and not resident[u]:
                state[u] = 0
                live -= size(u)
            if grads and u >= 0:
                for p in (seq.tensors_of(u) if cfg.per_tensor else (params[u],)):
                    if pending > 0 and pending + p > cfg.reduce_bucket_params:
                        if cfg.per_tensor:
                            reduce_bucket(t)
                        else:
                            submit(reduce_us(pending), host_of([pending]), t)
                        pending = 0.0
                    pending += p
                    pend.append(p)
                    if cfg.reduce_bucket_params <= 0:
                        if cfg.per_tensor:
                            reduce_bucket(t)
                        else:
                            submit(reduce_us(pending), host_of([pending]), t)
                        pending = 0.0
                if not cfg.per_tensor:
                    pend = []
            i += 1
            if i == nf:
                fwd_end = t
            if i == len(steps) and pending > 0:     # the backward's end flushes the last bucket
                if cfg.per_tensor:
                    reduce_bucket(t)
                else:
                    submit(reduce_us(pending), host_of([pending]), t)
                pending = 0.0
    if i < len(steps):
        raise HwsimError("ZeRO-3 schedule stalled: a step's parameters were never gathered")
    return fwd_end, t - fwd_end


def _keeps(steps: list[tuple[int, float, bool]], params: tuple[float, ...], reuse: float) -> list[bool]:
    """Per step: whether its unit stays gathered after it (used again before ``reuse``
    parameters of other units have run)."""
    out = []
    for i, (u, _, _) in enumerate(steps):
        if u < 0:
            out.append(False)
            continue
        seen: set[int] = set()
        dist = 0.0
        kept = False
        for v, _, _ in steps[i + 1:]:
            if v == u:
                kept = True
                break
            if v >= 0 and v not in seen:
                seen.add(v)
                dist += params[v]
                if dist >= reuse:
                    break
        out.append(kept and dist < reuse)
    return out

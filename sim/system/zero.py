"""ZeRO-3's schedule over a chunk's layers, step by step (Rajbhandari et al., "ZeRO: Memory
Optimizations Toward Training Trillion Parameter Models", SC 2020, Sec. 5-7).

With ZeRO-3 every device holds 1/dp of each weight; before a module runs, its weights are
all-gathered over the data-parallel group, and released after it (unless used again soon);
after a module's backward its gradients are reduce-scattered, each device keeping its share.
A microbatch is a sequence of steps: the forward's modules in order, then the backward's
(recomputation included) as the trace runs them. One device is simulated, as events:

* **compute** runs the steps one after another; a step starts when the previous has ended
  and its module's weights are gathered;
* **all-gathers** run one at a time on their own stream, in the order issued. When the
  compute reaches a step it issues its module's gather (if not gathered nor in flight) and
  prefetches the next modules not gathered, while the parameters in flight stay under
  ``prefetch_params`` (at least one module) and those gathered under ``max_live_params``
  (DeepSpeed's ``PartitionedParameterCoordinator.fetch_sub_module``);
* after a step, its module is released unless the parameters of the modules run before its
  next use are under ``max_reuse_params``;
* **reduce-scatters** run one at a time on a stream of their own: a module's gradients join
  the bucket when its last backward step ends; a bucket that would pass
  ``reduce_bucket_params`` is sent first (DeepSpeed stage 3's ``__add_grad_to_ipg_bucket``);
  the last bucket is sent when the backward ends, and the microbatch ends when it is done
  (DeepSpeed waits for its reduce stream at the end of every backward);
* an all-gather and a reduce-scatter in flight together cross the same ports (every device's
  NVLink and NIC, both directions, as rings), so each moves at half its rate alone: the
  max-min fair share of a link between two flows that ``sim.system.network`` gives
  (processor sharing; latency shared alike, a named simplification).

DeepSpeed as Narayanan et al. measured it in spring 2021 (``DEEPSPEED_2021``: v0.3.12 to
v0.5.4, before the coalesced all-gathers of microsoft/DeepSpeed#1188) differs in three ways,
each a field of :class:`ZeroConfig`:

* ``per_tensor``: every parameter tensor is all-gathered by a collective of its own
  (``partition_parameters.py``: ``_all_gather`` calls ``_allgather_param`` per parameter) and
  its gradient reduce-scattered by one of its own (``_reduce_scatter_gradients``), so each
  tensor pays the collective's latency; a bucket of gradients fills tensor by tensor;
* ``persist_params``: tensors under ``stage3_param_persistence_threshold`` elements are never
  partitioned (``persistent_parameters``): not gathered, not released (their gradients are
  still reduce-scattered);
* ``fetch_sync``: a module whose parameters are fetched, or still in flight, waits for the
  whole device (``fetch_sub_module``: every in-flight handle, then ``torch.cuda.synchronize()``,
  which also waits for the reduce-scatters in flight; ``_allgather_param`` synchronises
  before each gather too); only then are the next modules prefetched, and a module whose
  parameters are at hand prefetches only with no gather in flight
  (``prefetch_next_sub_modules``). A prefetched parameter stays in flight to DeepSpeed
  (``ZeroParamStatus.INFLIGHT``) until a fetch synchronises, even once its gather is done,
  so fetching it synchronises the device.

With ``list_collectives`` (DeepSpeed 2021 on PyTorch 1.8) the host's time to issue each
collective (``gather_host``, ``reduce_host``: its per-rank Python loop and copies,
``sim.system.framework``) is on the host's own timeline: a step's compute starts only once
the host has issued the prefetch before it (its kernels are launched after the pre-forward
hook returns; with several tensors, each gather after the previous one completed, as
``_allgather_param`` synchronises first); a bucket of gradients is issued only once the
reduction stream is idle (``reduce_ipg_grads``: ``reduction_stream.synchronize()``), and the
next step waits for the host to have issued it.

Each collective's time alone comes from the collective model (``Collectives.affine``: NCCL's
model at the bus bandwidth of the group's rings). ``schedule`` returns the forward's and the
backward's time, communication exposed included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from workloads.errors import HwsimError

__all__ = ["ZeroConfig", "ZeroSeq", "PRESETS", "DEEPSPEED", "DEEPSPEED_2021", "MEGATRON_DEEPSPEED", "FSDP", "schedule",
           "resolve", "module_steps", "chain", "RegionSteps"]


@dataclass(frozen=True)
class ZeroConfig:
    """How a ZeRO-3 implementation gathers, keeps and reduces (counts in parameters)."""

    name: str
    granularity: Literal["module", "layer"]   # what is gathered as one: each module, or each layer
    prefetch_params: float                   # in flight ahead of the compute (at least one unit)
    max_live_params: float                   # gathered at most (no prefetch beyond)
    max_reuse_params: float                  # kept gathered if used again within this many
    reduce_bucket_params: float              # gradients reduce-scattered per bucket (0: each unit's alone)
    source: str = ""
    per_tensor: bool = False                 # a collective per tensor (else per unit)
    persist_params: float = 0.0              # tensors under this many elements stay gathered
    fetch_sync: bool = False                 # a fetch waits for the device; prefetch only with nothing in flight
    # collectives issued in PyTorch 1.8's list form with a Python loop over the ranks
    # (sim.system.framework): the host's time to issue them is modelled where fetch_sync holds
    list_collectives: bool = False


DEEPSPEED = ZeroConfig(
    "deepspeed", "module", 5e7, 1e9, 1e9, 5e8,
    "DeepSpeed's defaults (deepspeed/runtime/zero/config.py, DeepSpeedZeroConfig): stage3_prefetch_bucket_size "
    "5e7, stage3_max_live_parameters 1e9, stage3_max_reuse_distance 1e9, reduce_bucket_size 5e8; overlap_comm "
    "on for stage 3; parameters fetched per submodule by the module hooks (partitioned_param_coordinator.py)")
FSDP = ZeroConfig(
    "fsdp", "layer", 1.0, float("inf"), 0.0, 0.0,
    "PyTorch FSDP's defaults (torch.distributed.fsdp.FullyShardedDataParallel): FULL_SHARD with each "
    "transformer layer one FSDP unit (the auto-wrap policy of its tutorials, an assumption), "
    "reshard_after_forward, backward_prefetch=BACKWARD_PRE and the forward's all-gathers issued ahead by the CPU "
    "(limit_all_gathers: one unit ahead, prefetch_params 1 here), each unit's gradients reduce-scattered after its backward")
MEGATRON_DEEPSPEED = ZeroConfig(
    "megatron-deepspeed", "module", 5e7, 3e9, 3e9, 9e7,
    "the ZeRO-3 config of DeepSpeed's Megatron GPT examples (microsoft/Megatron-DeepSpeed examples_deepspeed, "
    "DeepSpeedExamples Megatron-LM-v1.1.5-ZeRO3 ds_zero_stage_3_config): stage3_max_live_parameters 3e9, "
    "stage3_max_reuse_distance 3e9, stage3_prefetch_bucket_size 5e7, reduce_bucket_size 9e7, overlap_comm true")
DEEPSPEED_2021 = ZeroConfig(
    "deepspeed-2021", "module", 5e7, 1e9, 1e9, 5e8,
    "DeepSpeed v0.3.14 (2021-04-08), its ZeRO-3 from v0.3.12 (March 2021) to the coalesced gathers of #1188 "
    "(October 2021): deepspeed/runtime/zero/constants.py defaults stage3_prefetch_bucket_size 5e7, "
    "stage3_max_live_parameters 1e9, stage3_max_reuse_distance 1e9, reduce_bucket_size 5e8, "
    "stage3_param_persistence_threshold 1e5; partition_parameters.py gathers (_allgather_param) and reduce-scatters "
    "(_reduce_scatter_gradient) one parameter at a time (contiguous_gradients true, as DeepSpeedExamples' "
    "Megatron-LM-v1.1.5-ZeRO3 ds_zero_stage_3_config sets it; false would all-reduce buckets); stage3.py's "
    "fetch_sub_module synchronises the device; torch.distributed's list-form all_gather/reduce_scatter with a "
    "per-rank Python loop (sim.system.framework)",
    per_tensor=True, persist_params=1e5, fetch_sync=True, list_collectives=True)
PRESETS = {c.name: c for c in (DEEPSPEED, DEEPSPEED_2021, MEGATRON_DEEPSPEED, FSDP)}


def resolve(name: str) -> ZeroConfig:
    if name not in PRESETS:
        raise HwsimError(f"unknown ZeRO-3 implementation {name!r}; one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class ZeroSeq:
    """One microbatch of a chunk as ZeRO-3 runs it: each unit's parameters and layer, the
    forward steps (unit or -1 for none, compute us) and the backward's (unit, compute us,
    whether the unit's gradients are complete after it); each unit's tensors (elements
    each; none given: each unit one tensor)."""

    params: tuple[float, ...]
    layer: tuple[int, ...]
    fwd: tuple[tuple[int, float], ...]
    bwd: tuple[tuple[int, float, bool], ...]
    tensors: tuple[tuple[float, ...], ...] = ()

    def tensors_of(self, u: int) -> tuple[float, ...]:
        return self.tensors[u] if self.tensors else (self.params[u],)

    def by_layer(self) -> "ZeroSeq":
        """The same with each layer one unit (its modules' steps in a row merged)."""
        n = max(self.layer, default=-1) + 1
        params = [0.0] * n
        tensors: list[tuple[float, ...]] = [()] * n
        for u, p in enumerate(self.params):
            params[self.layer[u]] += p
            tensors[self.layer[u]] += self.tensors_of(u)

        def merge(steps: list[tuple[int, float, bool]]) -> list[tuple[int, float, bool]]:
            out: list[tuple[int, float, bool]] = []
            for u, c, g in steps:
                lu = self.layer[u] if u >= 0 else -1
                if out and out[-1][0] == lu:
                    out[-1] = (lu, out[-1][1] + c, g)
                else:
                    out.append((lu, c, g))
            return out
        fwd = merge([(u, c, False) for u, c in self.fwd])
        bwd = merge(list(self.bwd))
        # a layer's gradients are complete after its last backward step
        last = {u: i for i, (u, _, _) in enumerate(bwd)}
        return ZeroSeq(tuple(params), tuple(range(n)), tuple((u, c) for u, c, _ in fwd),
                       tuple((u, c, last.get(u) == i and u >= 0) for i, (u, c, _) in enumerate(bwd)),
                       tuple(tensors))


def schedule(seq: ZeroSeq, cfg: ZeroConfig, gather_us: Callable[[float], float],
             reduce_us: Callable[[float], float], gather_host: Callable[[float], float] | None = None,
             reduce_host: Callable[[float], float] | None = None) -> tuple[float, float]:
    """(forward us, backward us) of one microbatch, step by step (see the module docstring);
    ``gather_us(params)``, ``reduce_us(params)``: a collective's time alone; ``gather_host``,
    ``reduce_host``: the host's time to issue one (modelled with ``fetch_sync``). The same
    arithmetic in the same order as ``sim.system.zero_reference.schedule``, the first version
    (``tests/test_train_speed.py`` checks they agree to the bit), with fewer lookups."""
    if cfg.granularity == "layer":
        seq = seq.by_layer()
    steps = [(u, c, False) for u, c in seq.fwd] + list(seq.bwd)
    units = [s[0] for s in steps]
    n = len(steps)
    nf = len(seq.fwd)
    params = seq.params
    keep = _keeps(steps, params, cfg.max_reuse_params)
    max_live, prefetch, bucket = cfg.max_live_params, cfg.prefetch_params, cfg.reduce_bucket_params
    per_tensor, sync = cfg.per_tensor, cfg.fetch_sync
    hosted = sync and gather_host is not None and reduce_host is not None
    gp, gwork, resident = _gathers(seq, cfg, gather_us)
    gsync = _gather_sync(seq, cfg, gather_us, gather_host) if hosted and gather_host is not None else []
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
    unsynced: set[int] = set()         # (fetch_sync) their units: in flight to DeepSpeed until then
    host_free = 0.0                    # (hosted) when the host has issued what it was issuing
    flushq: list[tuple[float, float]] = []    # (hosted) buckets waiting for an idle reduction stream

    def ahead(i: int) -> float:        # prefetch the next units not gathered, within the budgets
        nonlocal live                  # (returns the host's time to issue them, when hosted)
        budget = min(max_live - live, prefetch)
        inflight = h = 0.0
        last = -1
        j = i + 1
        while j < n and budget > 0 and (inflight < budget or inflight == 0):
            v = units[j]
            if v >= 0 and state[v] == 0:
                state[v] = 1
                live += gp[v]
                gq.append([float(v), gwork[v]])
                inflight += gp[v]
                if sync:
                    unsynced.add(v)
                if hosted:
                    if last >= 0:
                        h += gwork[last]
                    last = v
                if inflight >= budget:
                    break
            j += 1
        if last >= 0:
            h += gsync[last]
        return h

    def submit(w: float, h: float, now: float) -> None:   # a bucket's reduce-scatters
        nonlocal host_free
        if not hosted:
            rq.append(w)
        elif rq:
            flushq.append((w, h))
        else:
            host_free = (host_free if host_free > now else now) + h
            rq.append(w)

    def flush(now: float) -> None:     # the open bucket, one collective per tensor
        nonlocal pend
        w = h = 0.0
        for x in pend:
            w += reduce_us(x)
            if hosted and reduce_host is not None:
                h += reduce_host(x)
        submit(w, h, now)
        pend = []

    while True:
        if busy_until < 0 and i < n and not (hosted and (host_free > t or flushq)):
            u = units[i]
            if arrived < i:              # the compute reaches step i: fetch it and prefetch
                arrived = i
                if sync:
                    waiting = u >= 0 and (state[u] != 2 or u in unsynced)
                    if not waiting and not handles:
                        k = len(gq)
                        h = ahead(i)
                        handles = len(gq) > k
                        if hosted:
                            host_free = t + h
                else:
                    if u >= 0 and state[u] == 0:
                        state[u] = 1
                        live += gp[u]
                        gq.append([float(u), gwork[u]])
                    ahead(i)
            if sync:
                if waiting and not gq and not rq:
                    if state[u] == 0:        # gathered now, on an idle device
                        state[u] = 1
                        live += gp[u]
                        gq.append([float(u), gwork[u]])
                        unsynced.add(u)
                        if hosted:
                            host_free = t + gsync[u]
                    else:
                        waiting = False
                        unsynced.clear()
                        h = ahead(i)
                        handles = len(gq) > 0
                        if hosted:
                            host_free = t + h
                if not waiting:
                    busy_until = (host_free if host_free > t else t) + steps[i][1]
            elif u < 0 or state[u] == 2:
                busy_until = t + steps[i][1]
        shared = (1 if gq else 0) + (1 if rq else 0)
        t_next = busy_until if busy_until >= 0 else None     # the first of the earliest, as min() takes
        if gq:
            x = t + gq[0][1] * shared
            if t_next is None or x < t_next:
                t_next = x
        if rq:
            x = t + rq[0] * shared
            if t_next is None or x < t_next:
                t_next = x
        if hosted and busy_until < 0 and i < n and host_free > t and (t_next is None or host_free < t_next):
            t_next = host_free
        if t_next is None:
            break
        dt = t_next - t
        if gq:
            gq[0][1] -= dt / shared
        if rq:
            rq[0] -= dt / shared
        t = t_next
        tol = 1e-9 * (t if t > 1.0 else 1.0)       # max(1.0, t)
        if gq and gq[0][1] <= tol:
            state[int(gq.pop(0)[0])] = 2
        if rq and rq[0] <= tol:
            rq.pop(0)
            if flushq:                 # the host, waiting for the reduction stream, issues the next bucket
                w, h = flushq.pop(0)
                submit(w, h, t)
        if busy_until >= 0 and busy_until <= t:
            u, _, grads = steps[i]
            busy_until = -1.0
            if u >= 0 and not keep[i] and not resident[u]:
                state[u] = 0
                live -= gp[u]
            if grads and u >= 0:
                if per_tensor:
                    for p in seq.tensors_of(u):
                        if pending > 0 and pending + p > bucket:
                            flush(t)
                            pending = 0.0
                        pending += p
                        pend.append(p)
                        if bucket <= 0:
                            flush(t)
                            pending = 0.0
                else:
                    p = params[u]
                    if pending > 0 and pending + p > bucket:
                        submit(reduce_us(pending), reduce_host(pending) if hosted and reduce_host else 0.0, t)
                        pending = 0.0
                    pending += p
                    if bucket <= 0:
                        submit(reduce_us(pending), reduce_host(pending) if hosted and reduce_host else 0.0, t)
                        pending = 0.0
            i += 1
            if i == nf:
                fwd_end = t
            if i == n and pending > 0:     # the backward's end flushes the last bucket
                if per_tensor:
                    flush(t)
                else:
                    submit(reduce_us(pending), reduce_host(pending) if hosted and reduce_host else 0.0, t)
                pending = 0.0
    if i < n:
        raise HwsimError("ZeRO-3 schedule stalled: a step's parameters were never gathered")
    return fwd_end, t - fwd_end


def _gathers(seq: ZeroSeq, cfg: ZeroConfig, gather_us: Callable[[float], float]
             ) -> tuple[list[float], list[float], list[bool]]:
    """Per unit: the parameters a fetch gathers (its tensors of at least ``persist_params``
    elements), that gather's time (per tensor, one collective each, in order), and whether
    it is resident (persistence leaves it nothing to gather)."""
    if not cfg.per_tensor and cfg.persist_params <= 0:
        return list(seq.params), [gather_us(p) for p in seq.params], [False] * len(seq.params)
    gp, work, resident = [], [], []
    for u in range(len(seq.params)):
        mine = [x for x in seq.tensors_of(u) if not x < cfg.persist_params]
        total = w = 0.0
        for x in mine:
            total += x
            w += gather_us(x)
        gp.append(total)
        work.append(w if cfg.per_tensor else gather_us(total))
        resident.append(not mine)
    return gp, work, resident


def _gather_sync(seq: ZeroSeq, cfg: ZeroConfig, gather_us: Callable[[float], float],
                 gather_host: Callable[[float], float]) -> list[float]:
    """Per unit: the host's time to issue its fetch, each gather after the previous one is
    done (``_allgather_param`` synchronises the device first): the collectives before the
    last alone, then the last one's issue (0 for a resident unit)."""
    out = []
    for u in range(len(seq.params)):
        mine = [x for x in seq.tensors_of(u) if not x < cfg.persist_params] if cfg.per_tensor or \
            cfg.persist_params > 0 else [seq.params[u]]
        if not cfg.per_tensor and mine:
            total = 0.0
            for x in mine:
                total += x
            mine = [total]
        h = 0.0
        for x in mine[:-1]:
            h += gather_us(x)
        out.append(h + gather_host(mine[-1]) if mine else 0.0)
    return out


def _keeps(steps: list[tuple[int, float, bool]], params: tuple[float, ...], reuse: float) -> list[bool]:
    """Per step: whether its unit stays gathered after it (used again before ``reuse``
    parameters of other units have run). Only the steps up to the unit's next use are
    looked at (a unit not used again is released), adding the same parameters in the same
    order as the reference's scan."""
    units = [s[0] for s in steps]
    n = len(units)
    nxt = [-1] * n                     # the unit's next step (-1: none, or no unit)
    last: dict[int, int] = {}
    for i in range(n - 1, -1, -1):
        u = units[i]
        if u >= 0:
            nxt[i] = last.get(u, -1)
            last[u] = i
    out = [False] * n
    for i in range(n):
        j = nxt[i]
        if j < 0:
            continue
        seen: set[int] = set()
        dist = 0.0
        kept = True
        for k in range(i + 1, j):
            v = units[k]
            if v >= 0 and v not in seen:
                seen.add(v)
                dist += params[v]
                if dist >= reuse:
                    kept = False
                    break
        out[i] = kept and dist < reuse
    return out


# a region's (a layer's) steps: (each tensor "module.param" -> elements, forward steps, backward steps by module)
RegionSteps = tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]


def module_steps(ops: Sequence[tuple[str, str, float, str]], param_elements: Sequence[tuple[str, float]],
                 forward_of: Callable[[str], str]) -> dict[str, RegionSteps]:
    """Per region, its modules' steps from a trace's ops ``(name, phase, us, region)`` in run
    order: a forward op runs in the module it names if that module has parameters
    (``param_elements``: ``(module.param, elements)``), else in the module before it; a
    backward or recomputed op in its forward op's module (``forward_of``); consecutive ops
    of one module are one step ("" for ops before any module). The region's tensors are
    listed module by module (sorted), each module's in the order given."""
    params: dict[str, list[tuple[str, float]]] = {}
    for pname, n in param_elements:
        params.setdefault(pname.rsplit(".", 1)[0], []).append((pname, n))
    unit_of: dict[str, str] = {}
    acc: dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]] = {}
    carry: dict[str, str] = {}

    def add(steps: list[tuple[str, float]], mod: str, us: float) -> None:
        if steps and steps[-1][0] == mod:
            steps[-1] = (mod, steps[-1][1] + us)
        else:
            steps.append((mod, us))
    for name, phase, us, region in ops:
        fwd, bwd = acc.setdefault(region, ([], []))
        if phase == "forward":
            mod = name if name in params else carry.get(region, "")
            carry[region] = mod
            unit_of[name] = mod
            add(fwd, mod, us)
        elif phase == "backward":
            add(bwd, unit_of.get(forward_of(name), ""), us)
    out: dict[str, RegionSteps] = {}
    for region, (fwd, bwd) in acc.items():
        mods = {m for m, _ in fwd + bwd if m}
        out[region] = (tuple(t for m in sorted(mods) for t in params[m]), tuple(fwd), tuple(bwd))
    return out


def chain(parts: Sequence[tuple[RegionSteps, float, float]]) -> ZeroSeq:
    """A chunk's microbatch from its regions in model order, each with the time its
    forward's and its backward's tensor-parallel collectives add (to its last step): the
    forwards in order, then the backwards in reverse, every region's modules units of
    their own (their tensors kept), each region a layer."""
    params: list[float] = []
    layer: list[int] = []
    ids: list[dict[str, int]] = []
    tensors: list[tuple[float, ...]] = []
    for k, ((mods, _, _), _, _) in enumerate(parts):
        ids.append({})
        for name, p in mods:                   # a module's tensors in a row
            m = name.rsplit(".", 1)[0]
            if m not in ids[k]:
                ids[k][m] = len(params)
                params.append(0.0)
                tensors.append(())
                layer.append(k)
            u = ids[k][m]
            params[u] += p
            tensors[u] += (p,)

    def steps(k: int, which: int, extra: float) -> list[tuple[int, float]]:
        region = parts[k][0][1] if which == 1 else parts[k][0][2]
        got = [(ids[k].get(m, -1) if m else -1, us) for m, us in region]
        if got and extra:
            got[-1] = (got[-1][0], got[-1][1] + extra)
        return got
    fwd = [s for k in range(len(parts)) for s in steps(k, 1, parts[k][1])]
    bwd = [s for k in reversed(range(len(parts))) for s in steps(k, 2, parts[k][2])]
    last = {u: i for i, (u, _) in enumerate(bwd)}
    return ZeroSeq(tuple(params), tuple(layer), tuple(fwd),
                   tuple((u, us, u >= 0 and last[u] == i) for i, (u, us) in enumerate(bwd)), tuple(tensors))

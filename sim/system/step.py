"""One training step of a parallel configuration on a system, from per-chunk costs.

Devices are numbered as Megatron-LM places ranks: tensor-parallel ranks innermost (one
node), then data-parallel, then pipeline stages: device = stage x (dp x tp) + replica x tp
+ tp_rank. Every replica and tensor rank of a stage does the same work, so the step is the
pipeline of one replica (``sim.system.pipeline``) plus, per stage:

* **data parallel**: the gradients of the stage's last backward are synchronised in
  buckets of 25 MB (PyTorch DDP's default ``bucket_cap_mb``) as the backward produces them,
  one bucket after another on the stage's data-parallel group (all-reduce; with ZeRO a
  reduce-scatter, and an all-gather of the updated parameters after the optimizer).
  What outlasts the backward is exposed;
* **ZeRO** (Rajbhandari et al., SC 2020): stage 1 shards the optimizer states over the
  data-parallel group, stage 2 also the gradients, stage 3 also the weights, which are
  then all-gathered for every microbatch's forward and backward (exposed where the
  gathering outlasts the compute it overlaps);
* **the optimizer**: the stage's update on each device's share of the parameters;
* **the framework** (``sim.system.framework``): host time the devices wait for, shown apart
  (``StepResult.framework``): ZeRO-3's list collectives issued per rank (DeepSpeed 2021),
  passes whose kernels the host launches slower than they run, the optimizer's per-tensor
  host loop, data loading (off unless set).

Memory per device: weights, gradients and optimizer states of its chunks (after ZeRO),
and each chunk's activations times the most microbatches it holds at once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeAlias

from workloads.errors import HwsimError

from . import collectives as coll
from . import nccl
from . import zero as z3
from .framework import DS2021_GATHER, DS2021_REDUCE, HOST, Host
from .pipeline import SCHEDULES, PipelineRun, simulate
from .topology import System

__all__ = [
    "BUCKET_BYTES", "Parallel", "ChunkCost", "StepResult", "GroupShape", "Collectives", "step", "bucket_walk", "buckets_end", "fits_message",
]

BUCKET_BYTES = 25 * 2 ** 20     # PyTorch DistributedDataParallel's default bucket_cap_mb = 25


@dataclass(frozen=True)
class Parallel:
    dp: int
    tp: int
    pp: int
    microbatch: int
    microbatches: int            # per data-parallel replica per step
    schedule: str = "1f1b"
    v: int = 1                   # chunks per device (the interleaved schedule)
    zero: int = 0
    # ZeRO 1/2: the parameters' all-gather after the optimizer hidden under the next step's
    # forward, bucket by bucket (Megatron-Core's --overlap-param-gather)
    overlap_param_gather: bool = False
    zero3: str = "deepspeed"     # ZeRO-3's implementation: a preset of ``sim.system.zero``

    def __post_init__(self) -> None:
        for f in ("dp", "tp", "pp", "microbatch", "microbatches", "v"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise HwsimError(f"{f}: must be an integer >= 1, got {v!r}")
        if self.schedule not in SCHEDULES:
            raise HwsimError(f"schedule: one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.zero not in (0, 1, 2, 3):
            raise HwsimError(f"zero: must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.zero3 not in z3.PRESETS:
            raise HwsimError(f"zero3: one of {', '.join(z3.PRESETS)}, got {self.zero3!r}")
        if self.overlap_param_gather and self.zero not in (1, 2):
            raise HwsimError("overlap_param_gather: the parameters are all-gathered after the optimizer step only "
                             f"with ZeRO 1 or 2 (a distributed optimizer), not zero {self.zero}")

    @property
    def devices(self) -> int:
        return self.dp * self.tp * self.pp

    def device(self, stage: int, replica: int = 0, tp_rank: int = 0) -> int:
        return stage * self.dp * self.tp + replica * self.tp + tp_rank

    def dp_group(self, stage: int, tp_rank: int = 0) -> list[int]:
        """``device(stage, r, tp_rank)`` for every replica r, in order."""
        first = self.device(stage, 0, tp_rank)
        return list(range(first, first + self.dp * self.tp, self.tp))

    def tp_group(self, stage: int, replica: int = 0) -> list[int]:
        return [self.device(stage, replica, t) for t in range(self.tp)]


@dataclass(frozen=True)
class ChunkCost:
    """One chunk (virtual stage) for one microbatch on one device."""

    fwd_us: float                 # forward, tensor-parallel communication included
    bwd_us: float                 # backward (and recomputation), communication included
    fwd_comm_us: float            # of which tensor-parallel communication
    bwd_comm_us: float
    act_bytes: float              # activations kept for the backward, per microbatch
    params: float                 # parameters on one device
    optimizer_us: float           # one device updating all of ``params``
    send_bytes: float             # the activation passed to the next chunk per microbatch
    weight_bytes: float = 2.0     # bytes per parameter: weights,
    grad_bytes: float = 2.0       # gradients,
    state_bytes: float = 12.0     # optimizer states (master weights included)
    # one microbatch module by module, as ZeRO-3 gathers and reduces it (None: the chunk as one)
    zero_seq: z3.ZeroSeq | None = None
    fwd_kernels: int = 0          # kernels the host launches per microbatch, forward (0: not counted)
    bwd_kernels: int = 0          # and backward (recomputation included)
    tensors: int = 0              # parameter tensors the optimizer steps (0: not counted)


@dataclass
class StepResult:
    step_us: float
    compute_us: float             # the slowest device's compute (tensor-parallel communication excluded)
    comm_us: float                # exposed communication (tensor parallel, data parallel, ZeRO)
    bubble_us: float              # pipeline idle time of that device
    optimizer_us: float
    memory: dict[str, float]      # bytes per category on the fullest device
    capacity_bytes: float
    pipeline: PipelineRun
    spans: list[tuple[str, str, float, float]] = field(default_factory=list)   # (track, name, start, end)
    framework_us: float = 0.0     # host time the slowest device waits for (sim.system.framework)
    # its terms: zero3_collectives, launch, optimizer, data_loading
    framework: dict[str, float] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.capacity_bytes <= 0 or self.memory["total_bytes"] <= self.capacity_bytes


# a group's size, its devices per node (sorted), on a torus the devices themselves (else False), and
# how many NICs it reaches the network through (0 on one node)
GroupShape: TypeAlias = tuple[int, tuple[int, ...], bool | tuple[int, ...], int]


class Collectives:
    """Collective times on a system, each worked out once per distinct (kind, group, size).

    On a GPU system (a switch fabric) an all-reduce, all-gather or reduce-scatter takes what
    NCCL's own model says of the (algorithm, protocol) it picks (``sim.system.nccl``: its
    latency per step and per protocol), at the bus bandwidth of hwsim's Simple rings over the
    group's links (one ring per NIC, simulated once per group shape with the fabrics'
    latencies left out: NCCL's model charges its own). On a torus, and for point-to-point
    sends, the transfers are simulated with the fabrics' latencies."""

    def __init__(self, system: System, reference: bool = False):
        """``reference``: ZeRO-3 schedules by ``sim.system.zero_reference`` (the first version)."""
        self.sys = system
        self.reference = reference
        self.cache: dict[tuple[str, GroupShape, int], float] = {}      # (kind, group shape, bytes) -> us
        self.shapes: dict[tuple[int, ...], GroupShape] = {}
        # ZeRO-3 (fwd, bwd) per chunk and group, and their framework (host) parts
        self.zero3: dict[tuple[object, ...], tuple[tuple[float, float], tuple[float, float]]] = {}
        self.keep: list[z3.ZeroSeq] = []
        self.busbw: dict[tuple[str, GroupShape], float] = {}          # NCCL's Simple ring bus bandwidth, GB/s
        self.nccl = system.intra.kind == "switch"
        self._tuning: tuple[str, bool] | None = None

    def zero3_us(self, ch: "ChunkCost", group: Sequence[int], impl: str) -> tuple[float, float]:
        """A chunk's forward and backward per microbatch under ZeRO-3 (``sim.system.zero``):
        compute with the all-gathers and reduce-scatters it exposes, and the host time of
        issuing them where the implementation's host is modelled (:meth:`zero3_framework_us`)."""
        return self._zero3(ch, group, impl)[0]

    def zero3_framework_us(self, ch: "ChunkCost", group: Sequence[int], impl: str) -> tuple[float, float]:
        """Of :meth:`zero3_us`, what the framework's host adds: the same schedule with the
        collectives' per-rank loops and copies (``sim.system.framework``) less without them."""
        return self._zero3(ch, group, impl)[1]

    def _zero3(self, ch: "ChunkCost", group: Sequence[int], impl: str
               ) -> tuple[tuple[float, float], tuple[float, float]]:
        seq = ch.zero_seq or z3.ZeroSeq((ch.params,), (0,), ((0, ch.fwd_us),), ((0, ch.bwd_us, True),))
        key = (id(seq), impl, self._shape(group), ch.weight_bytes, ch.grad_bytes)
        if key not in self.zero3:
            gather, reduce = self.affine("all_gather", group), self.affine("reduce_scatter", group)
            if self.reference:
                from .zero_reference import schedule
            else:
                schedule = z3.schedule
            cfg = z3.resolve(impl)
            wb, gb = ch.weight_bytes, ch.grad_bytes
            plain = schedule(seq, cfg, lambda p: gather(p * wb), lambda p: reduce(p * gb))
            full = plain
            if cfg.list_collectives and cfg.fetch_sync and self.nccl and len(group) > 1:
                from .topology import device_of
                n, dev = len(group), device_of(self.sys)
                ag, rs = DS2021_GATHER, DS2021_REDUCE
                full = schedule(seq, cfg, lambda p: ag.stream_us(gather(p * wb), n, p * wb, dev),
                                lambda p: rs.stream_us(reduce(p * gb), n, p * gb, dev),
                                lambda p: ag.host_us(n), lambda p: rs.host_us(n))
            self.zero3[key] = (full, (full[0] - plain[0], full[1] - plain[1]))
            self.keep.append(seq)            # its id stays its own
        return self.zero3[key]

    def affine(self, kind: str, group: Sequence[int]) -> Callable[[float], float]:
        """A collective's time as a function of its bytes. Under NCCL an all-gather's or a
        reduce-scatter's candidates are rings, each affine in the bytes (its latency plus
        bytes over its bandwidth): the least of the three protocols'. Otherwise (a torus)
        from two simulated sizes: each ring step is the latency plus transfers of bytes / n
        sharing the links, so the time is affine in the bytes (``tests/test_zero.py`` checks
        both against :meth:`run`)."""
        if len(group) < 2:
            return lambda nbytes: 0.0
        if self.nccl and kind in ("all_gather", "reduce_scatter"):
            shape = self._shape(group)
            bw = self.busbw_gbs(kind, group)
            gen, amd = self.tuning()
            lines = [(c.latency_us, 1 / (1e3 * c.bandwidth_gbs))
                     for c in nccl.candidates(kind, 2.0 ** 30, shape[0], len(shape[1]), bw, gen, amd)]

            def least(nbytes: float) -> float:
                if nbytes <= 0:
                    return 0.0
                best = lines[0][0] + nbytes * lines[0][1]
                for lat, inv in lines[1:]:
                    t = lat + nbytes * inv
                    if t < best:
                        best = t
                return best
            return least
        lo, hi = 2.0 ** 20, 2.0 ** 30
        t_lo, t_hi = self.run(kind, group, lo), self.run(kind, group, hi)
        slope = (t_hi - t_lo) / (hi - lo)
        return lambda nbytes: 0.0 if nbytes <= 0 else t_lo + (nbytes - lo) * slope

    def _shape(self, group: Sequence[int]) -> GroupShape:
        """What a collective's time depends on: the group's size, how it falls on nodes, how
        many NICs it reaches through (on a torus, the devices themselves)."""
        g = tuple(group)
        if g not in self.shapes:
            nodes: dict[int, int] = {}
            for d in g:
                node = self.sys.node_of(d)
                nodes[node] = nodes.get(node, 0) + 1
            nics = len({self.sys.nic_of(d) for d in g}) if self.sys.nodes > 1 else 0
            self.shapes[g] = (len(g), tuple(sorted(nodes.values())), self.sys.intra.kind == "torus2d" and g, nics)
        return self.shapes[g]

    def tuning(self) -> tuple[str, bool]:
        """What NCCL's model reads of the system: the GPUs' generation, whether the hosts are AMD."""
        if self._tuning is None:
            from .topology import device_of
            self._tuning = (str(getattr(device_of(self.sys), "generation", "")), self.sys.host_cpu == "amd")
        return self._tuning

    def busbw_gbs(self, kind: str, group: Sequence[int]) -> float:
        """The bus bandwidth (GB/s) of NCCL's Simple rings over ``group``: hwsim's rings (one per
        NIC) on the system's links with the fabrics' latencies left out, at 1 GiB (alone on
        the network the time is then linear in the bytes)."""
        key = (kind, self._shape(group))
        if key not in self.busbw:
            fn = {"allreduce": coll.ring_allreduce, "reduce_scatter": coll.reduce_scatter,
                  "all_gather": coll.all_gather}[kind]
            s = self.sys
            bare = dataclasses.replace(s, intra=dataclasses.replace(s.intra, latency_us=0.0),
                                       inter=None if s.inter is None else dataclasses.replace(s.inter, latency_us=0.0))
            size = 2.0 ** 30
            t = coll.time_us(bare, lambda net: fn(net, list(group), size, exact=False))
            n = len(group)
            self.busbw[key] = (2 if kind == "allreduce" else 1) * (n - 1) / n * size / t / 1e3
        return self.busbw[key]

    def run(self, kind: str, group: Sequence[int], nbytes: float) -> float:
        """The time of one collective alone on the system (see the class docstring; simulated
        rings repeat their first step's time: the same on an idle network, see ``collectives``)."""
        if len(group) < 2 or nbytes <= 0:
            return 0.0
        key = (kind, self._shape(group), round(nbytes))
        if key not in self.cache:
            if kind not in ("allreduce", "reduce_scatter", "all_gather", "p2p"):
                raise HwsimError(f"unknown collective {kind!r}")
            if kind != "p2p" and self.nccl:
                shape = self._shape(group)
                gen, amd = self.tuning()
                self.cache[key] = nccl.tuned(kind, nbytes, shape[0], len(shape[1]), self.busbw_gbs(kind, group),
                                             gen, amd).time_us
            elif kind == "allreduce":
                self.cache[key] = coll.time_us(self.sys, lambda net: coll.ring_allreduce(net, list(group), nbytes,
                                                                                          exact=False))
            elif kind in ("reduce_scatter", "all_gather"):
                fn = coll.reduce_scatter if kind == "reduce_scatter" else coll.all_gather
                self.cache[key] = coll.time_us(self.sys, lambda net: fn(net, list(group), nbytes, exact=False))
            else:
                self.cache[key] = coll.time_us(self.sys, lambda net: coll.p2p(net, group[0], group[1], nbytes))
        return self.cache[key]


def step(system: System, par: Parallel, chunks: Sequence[ChunkCost], capacity_bytes: float,
         comms: Collectives | None = None, timeline: bool = False, host: Host = HOST) -> StepResult:
    """Simulate one step of ``par`` (``chunks``: pp x v costs in model order; ``host``: the
    framework's host costs, ``sim.system.framework``)."""
    if len(chunks) != par.pp * par.v:
        raise HwsimError(f"{len(chunks)} chunk costs for {par.pp} stages x {par.v} chunks")
    if par.devices > system.devices:
        raise HwsimError(f"dp x tp x pp = {par.devices} devices; the system has {system.devices}")
    comms = comms or Collectives(system)
    p, v, m = par.pp, par.v, par.microbatches

    def send(a: int, b: int, kind: str) -> float:
        src, dst = par.device(a % p), par.device(b % p)
        return comms.run("p2p", [src, dst], chunks[a].send_bytes if kind == "F" else chunks[b].send_bytes) \
            if src != dst else 0.0

    # ZeRO-3: every microbatch gathers the weights module by module and reduce-scatters its
    # gradients (``sim.system.zero``); what that exposes lengthens the chunk's passes
    passes = [(ch.fwd_us, ch.bwd_us) for ch in chunks]
    host_us = [0.0] * len(chunks)    # per chunk and microbatch: the framework's host time in its passes
    zero3 = par.zero == 3 and par.dp > 1
    if zero3:
        passes = [comms.zero3_us(ch, par.dp_group(c % p), par.zero3) for c, ch in enumerate(chunks)]
        host_us = [sum(comms.zero3_framework_us(ch, par.dp_group(c % p), par.zero3)) for c, ch in enumerate(chunks)]
    launch_us = [0.0] * len(chunks)  # a pass takes at least its kernels' host launches
    for c, ch in enumerate(chunks):
        f, b = passes[c]
        hf, hb = ch.fwd_kernels * host.op_us, ch.bwd_kernels * host.op_us
        if hf > f or hb > b:
            launch_us[c] = max(hf - f, 0.0) + max(hb - b, 0.0)
            passes[c] = (max(f, hf), max(b, hb))
    run = simulate(p, m, v, par.schedule, lambda c: passes[c][0], lambda c: passes[c][1], send, record=timeline)
    spans: list[tuple[str, str, float, float]] = []
    if timeline:          # a task's tensor-parallel collectives are drawn together at its end
        for t in run.tasks:
            ch = chunks[t.chunk]
            comm = min(ch.fwd_comm_us if t.kind == "F" else ch.bwd_comm_us, t.end_us - t.start_us)
            spans.append((f"stage {t.device}: compute", f"{t.kind}{t.mb} chunk {t.chunk}", t.start_us, t.end_us - comm))
            if comm > 0:
                spans.append((f"stage {t.device}: tensor-parallel collectives", f"{t.kind}{t.mb} chunk {t.chunk}",
                              t.end_us - comm, t.end_us))
            nxt = t.chunk + 1 if t.kind == "F" else t.chunk - 1
            if 0 <= nxt < len(chunks) and nxt % p != t.device:
                spans.append((f"link stage {t.device} -> {nxt % p}", f"{t.kind}{t.mb} {'activation' if t.kind == 'F' else 'gradient'}",
                              t.end_us, t.end_us + send(t.chunk, nxt, t.kind)))
    # per stage: (end, compute, comm, bubble, optimizer), memory, framework terms
    results: list[tuple[tuple[float, float, float, float, float], dict[str, float], dict[str, float]]] = []
    pipe_end = run.device_end_us
    for d in range(p):
        mine = [c for c in range(len(chunks)) if c % p == d]
        # the last backward of each of the device's chunks releases its gradients
        lasts = run.final_backwards[d]
        dp_end = run.last_backward_end_us[d]
        if par.dp > 1 and not zero3:      # (ZeRO-3 reduces every microbatch, in its passes)
            group = par.dp_group(d)
            kind = "allreduce" if par.zero == 0 else "reduce_scatter"
            free = 0.0
            for t in lasts:
                ch = chunks[t.chunk]
                total = ch.params * ch.grad_bytes
                n = max(1, math.ceil(total / BUCKET_BYTES))
                bucket_us = comms.run(kind, group, total / n)
                if timeline:
                    for k, (s, free) in enumerate(bucket_walk(free, t.start_us, t.end_us, n, bucket_us)):
                        spans.append((f"stage {d}: data-parallel {kind}", f"bucket {k}", s, free))
                else:
                    free = buckets_end(free, t.start_us, t.end_us, n, bucket_us)
            dp_end = max(dp_end, free)
        opt = sum(chunks[c].optimizer_us for c in mine) / (par.dp if par.zero >= 1 else 1)
        frame = {"zero3_collectives": sum(host_us[c] for c in mine) * m, "launch": sum(launch_us[c] for c in mine) * m,
                 "optimizer": sum(chunks[c].tensors for c in mine) * host.optimizer_tensor_us,
                 "data_loading": host.data_loading_us}
        gather = 0.0
        if par.zero in (1, 2) and par.dp > 1:
            gather = sum(comms.run("all_gather", par.dp_group(d), chunks[c].params * chunks[c].weight_bytes)
                         for c in mine)
            if par.overlap_param_gather:        # the first bucket waits; the rest run under a forward pass
                buckets = max(1, math.ceil(sum(chunks[c].params * chunks[c].weight_bytes for c in mine) /
                                           BUCKET_BYTES))
                gather = max(gather / buckets, gather - sum(chunks[c].fwd_us for c in mine))
        tail = frame["optimizer"] + frame["data_loading"]     # the host's, after the last backward
        end = dp_end + opt + gather + tail
        if timeline:
            spans.append((f"stage {d}: compute", "optimizer", dp_end, dp_end + opt))
            if gather:
                spans.append((f"stage {d}: data-parallel all_gather", "parameters", dp_end + opt,
                              dp_end + opt + gather))
            if tail:
                spans.append((f"stage {d}: framework (host)", "optimizer host, data loading", end - tail, end))
        tp_comm = sum((chunks[c].fwd_comm_us + chunks[c].bwd_comm_us) * m for c in mine)
        in_passes = frame["zero3_collectives"] + frame["launch"]
        exposed = sum(passes[c][0] - chunks[c].fwd_us + passes[c][1] - chunks[c].bwd_us for c in mine) * m - in_passes
        compute = run.busy_us[d] - tp_comm - exposed - in_passes
        results.append(((end, compute, tp_comm + exposed + (dp_end - pipe_end[d]) + gather, pipe_end[d] - run.busy_us[d],
                         opt), _memory(par, chunks, mine, run), frame))
    worst_r = max(results, key=lambda r: r[0][0])
    fullest = max(results, key=lambda r: r[1]["total_bytes"])[1]
    return StepResult(*worst_r[0], fullest, capacity_bytes, run, spans, sum(worst_r[2].values()), worst_r[2])


def bucket_walk(free: float, start_us: float, end_us: float, n: int, bucket_us: float) -> list[tuple[float, float]]:
    """The (start, end) of each of ``n`` gradient buckets that a backward running from
    ``start_us`` to ``end_us`` fills evenly (bucket k is ready at the end of its share),
    synchronised one after another on a link that is free from ``free``."""
    out = []
    for k in range(n):
        s = max(start_us + (k + 1) / n * (end_us - start_us), free)
        free = s + bucket_us
        out.append((s, free))
    return out


def buckets_end(free: float, start_us: float, end_us: float, n: int, bucket_us: float) -> float:
    """When :func:`bucket_walk`'s last bucket ends, in closed form. Each bucket ends at
    ``max(ready_k, previous end) + b``; unrolled, the last ends at ``max(free + n b,
    max_k(ready_k + (n - k) b))``, and ``ready_k + (n - k) b`` is linear in k, so its
    maximum is at the first or the last bucket."""
    d = end_us - start_us
    return max(free + n * bucket_us, start_us + 1 / n * d + n * bucket_us, start_us + d + bucket_us)


def _memory(par: Parallel, chunks: Sequence[ChunkCost], mine: list[int], run: PipelineRun) -> dict[str, float]:
    w = g = o = a = 0.0
    for c in mine:
        ch = chunks[c]
        w += ch.params * ch.weight_bytes / (par.dp if par.zero >= 3 else 1)
        g += ch.params * ch.grad_bytes / (par.dp if par.zero >= 2 else 1)
        o += ch.params * ch.state_bytes / (par.dp if par.zero >= 1 else 1)
        a += ch.act_bytes * run.inflight.get(c, 0)
    return {"weights_bytes": w, "gradients_bytes": g, "optimizer_bytes": o, "activations_bytes": a,
            "total_bytes": w + g + o + a}


def fits_message(mem: dict[str, float], capacity: float) -> str:
    gib = 2 ** 30
    parts = ", ".join(f"{k[:-6]} {v / gib:.1f}" for k, v in mem.items() if k != "total_bytes")
    return f"needs {mem['total_bytes'] / gib:.1f} GiB per device ({parts} GiB) of {capacity / gib:.1f} GiB"


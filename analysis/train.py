"""Training at scale: a model's training step split over a system's devices by data, tensor
and pipeline parallelism (and ZeRO), timed and sized.

Every device's compute comes from its own simulator on its shard of the training-step
trace: the model is lowered for one microbatch (``workloads.spec``), its tensor-parallel
shard taken (``workloads.shard``) and simulated on the system's device; the pipeline,
the collectives and the optimizer are then simulated on the system (``sim.system``).
Nothing here is fitted to a published throughput.

Zoo transformers are lowered with one layer (their layers are identical; the costs of
one stand for all), other models whole, cut into chunks at their repeated blocks. A zoo
transformer's or a ``gpt:`` shape's per-region costs are kept on disk beside the trace cache
(``analysis.train_cache``), so that a later run reads them instead of the trace.

Reported per step: time; samples and tokens per second; TFLOP/s per device counting the
model's FLOPs as Megatron-LM does (Narayanan et al., SC 2021, eq. 3: 96 B s l h^2
(1 + s/6h + V/16lh) with full recomputation, 72 B s l h^2 (1 + s/6h + V/12lh) without;
3x the forward for other models) and the hardware FLOPs the devices really execute; MFU
(model FLOPs without recomputation over the devices' peak, as Chowdhery et al., PaLM,
2022, define it); the split into compute, exposed communication, pipeline bubble and
optimizer; memory per device by category.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from sim.machine import LaunchesKernels
from sim.system.framework import HOST
from sim.system.step import ChunkCost, Collectives, Parallel, StepResult, fits_message, step
from sim.system.topology import System, device_of
from sim.system.zero import PRESETS as ZERO3, ZeroSeq, chain
from workloads.errors import HwsimError
from workloads.progress import step as progress_step
from workloads.precision import policy
from workloads.shard import tensor_parallel
from workloads.trace import Workload
from workloads.training import optimizer as optimizer_model

from . import train_cache, train_fp8, train_moe
from .train_cache import fast
from .train_regions import Region, assign, regions_of

RECOMPUTES = ("none", "selective", "full")


@dataclass(frozen=True)
class Job:
    """What to run: the model, the system and the parallel configuration."""

    model: str
    system: System
    tp: int
    pp: int
    dp: int
    global_batch: int
    microbatch: int
    recompute: str = "full"
    schedule: str = "1f1b"            # 1f1b | gpipe | interleaved:V
    zero: int = 0
    precision: str = "bf16-o2"
    attention: str = "unfused"
    optimizer: str = "adam"
    seq_len: int | None = None
    # layers of each of the pp x v chunks, in model order (None: an even split where the
    # layers divide, else the balanced partition, :func:`partition`)
    stage_layers: tuple[int, ...] | None = None
    sequence_parallel: bool = False     # Korthikanti et al. 2022 (workloads.shard); nothing to split at tp 1
    tp_comm_overlap: bool = False       # each tensor-parallel collective pipelined with its GEMM (overlapped_us)
    overlap_param_gather: bool = False  # ZeRO 1/2: the parameter all-gather under the next forward (sim.system.step)
    zero3: str = "deepspeed"            # ZeRO-3's implementation (sim.system.zero.PRESETS)
    ep: int = 1                         # expert parallelism of a mixture of experts (analysis.train_moe)
    data_loading_ms: float = 0.0        # host time per step the data loader does not hide (sim.system.framework)
    expert_imbalance: float = 1.0       # the busiest expert-parallel device's routed rows over the mean

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def chunks_per_device(self) -> int:
        return int(self.schedule.split(":")[1]) if self.schedule.startswith("interleaved") else 1

    def check(self) -> None:
        for f in ("tp", "pp", "dp", "global_batch", "microbatch", "ep"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise HwsimError(f"--{f.replace('_', '-')}: must be an integer >= 1, got {v!r}")
        if self.recompute not in RECOMPUTES:
            raise HwsimError(f"--recompute: one of {', '.join(RECOMPUTES)}, got {self.recompute!r}")
        if self.schedule not in ("1f1b", "gpipe") and not (
                self.schedule.startswith("interleaved:") and self.schedule[12:].isdigit() and int(self.schedule[12:]) >= 2):
            raise HwsimError(f"--schedule: 1f1b, gpipe or interleaved:V (V >= 2), got {self.schedule!r}")
        if self.stage_layers is not None:
            n = self.pp * self.chunks_per_device
            if len(self.stage_layers) != n or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                                                  for c in self.stage_layers):
                raise HwsimError(f"--stage-layers: {n} counts >= 1 (one per stage{' chunk' if n > self.pp else ''}: "
                                 f"pp {self.pp} x {self.chunks_per_device} chunks), got "
                                 f"{','.join(map(str, self.stage_layers))}")
        if self.schedule.startswith("interleaved") and self.pp < 2:
            raise HwsimError(f"--schedule {self.schedule}: interleaving splits each pipeline stage into chunks; it "
                             "needs --pp 2 or more")
        if self.seq_len is not None and (isinstance(self.seq_len, bool) or self.seq_len < 1):
            raise HwsimError(f"--seq-len: must be an integer >= 1, got {self.seq_len!r}")
        if self.tp_comm_overlap and not self.sequence_parallel:
            raise HwsimError("--tp-comm-overlap pipelines the all-gathers and reduce-scatters of sequence parallelism "
                             "with their GEMMs; add --sequence-parallel (Megatron-LM requires it too)")
        if not isinstance(self.data_loading_ms, (int, float)) or isinstance(self.data_loading_ms, bool) or \
                not 0 <= self.data_loading_ms < float("inf"):
            raise HwsimError(f"--data-loading-ms: a time >= 0 per step, got {self.data_loading_ms!r}")
        if self.zero not in (0, 1, 2, 3):
            raise HwsimError(f"--zero: 0, 1, 2 or 3, got {self.zero!r}")
        if self.zero3 not in ZERO3:
            raise HwsimError(f"--zero3: one of {', '.join(ZERO3)}, got {self.zero3!r}")
        if self.overlap_param_gather and self.zero not in (1, 2):
            raise HwsimError(f"--overlap-param-gather hides the parameter all-gather of a distributed optimizer; it "
                             f"needs --zero 1 or 2 (got --zero {self.zero})")
        if self.tp_comm_overlap and self.tp < 2:
            raise HwsimError(f"--tp-comm-overlap overlaps tensor-parallel collectives; it needs --tp 2 or more "
                             f"(got --tp {self.tp})")
        try:
            pol = policy(self.precision)
        except HwsimError as e:
            raise HwsimError(f"--precision: {e}") from None
        if pol.te_fp8:
            train_fp8.check_system(self.system)
        if self.devices > self.system.devices:
            raise HwsimError(f"dp x tp x pp = {self.dp} x {self.tp} x {self.pp} = {self.devices} devices; the system "
                             f"has {self.system.devices}")
        if self.tp > self.system.devices_per_node and self.system.intra.kind != "torus2d":
            raise HwsimError(f"--tp {self.tp} spans nodes; tensor parallelism needs the node's fabric "
                             f"(at most {self.system.devices_per_node})")
        if self.global_batch % (self.dp * self.microbatch):
            raise HwsimError(f"--global-batch {self.global_batch} is not a multiple of dp x microbatch = "
                             f"{self.dp} x {self.microbatch}")


class Model:
    """Costs of a model's regions on a device, for each (microbatch, tp, recompute), simulated once."""

    def __init__(self, job: Job, cache: bool = False):
        """``cache``: keep the lowered training steps in the trace cache (``workloads.cache``)."""
        from workloads.zoo.shapes import family
        self.job = job
        self.use_cache = cache
        self.family = family(job.model, job.seq_len)
        self.device = device_of(job.system)
        self.fast = fast()                                    # memoised paths (train_cache.fast)
        self.comms = Collectives(job.system, reference=not self.fast)
        self.smaller: dict[System, Collectives] = {}           # collectives on the first devices of the system
        self.cache: dict[tuple, tuple[list[str], dict[str, Region], Workload] | HwsimError] = {}
        self.lowered: dict[tuple, Workload] = {}
        self.chunk_costs: dict[tuple, tuple[ChunkCost, ...]] = {}
        self.splits: dict[tuple, tuple[int, ...]] = {}       # the same key -> layers per chunk
        self.stored: dict[tuple, tuple[list[str], dict[str, Region]]] = {}   # costs from the disk cache
        self.fp8_memo: dict[tuple, float] = {}                # fp8-hybrid's per-step kernels (train_fp8)

    @property
    def layers(self) -> int:
        return self.family.cfg.layers if self.family else 0

    def costs(self, microbatch: int, tp: int, recompute: str,
              sequence: bool = False, ep: int = 1) -> tuple[list[str], dict[str, Region]]:
        """(block names in model order, region name -> cost): :meth:`regions` without the
        trace, read from the cost cache on disk (``analysis.train_cache``) where the model is a
        zoo transformer or a ``gpt:`` shape and the cache is on, else simulated."""
        key = (microbatch, tp, recompute, sequence, ep)
        if key in self.stored:
            return self.stored[key]
        fields = self._cost_fields(microbatch, tp, recompute, sequence, ep) if key not in self.cache else None
        got = train_cache.load(fields) if fields is not None else None
        if got is None:
            blocks, regions, _ = self.regions(microbatch, tp, recompute, sequence, ep)
            got = (blocks, regions)
            if fields is not None:
                train_cache.store(fields, blocks, regions)
        self.stored[key] = got
        return got

    def _cost_fields(self, microbatch: int, tp: int, recompute: str, sequence: bool,
                     ep: int = 1) -> dict[str, Any] | None:
        """The cost cache's key for these costs, or None where they are not cached: a model
        that is not a zoo transformer or a ``gpt:`` shape (its trace cache key alone names its
        source), ``--no-cache``, ``HWSIM_TRAIN_REFERENCE=1``, or a device whose description does
        not print as its fields."""
        if not (self.fast and self.use_cache and self.family is not None):
            return None
        dev = f"{type(self.device).__module__}.{type(self.device).__qualname__}: {self.device!r}"
        if " at 0x" in dev:
            return None
        j = self.job
        return {"model": j.model, "family": repr(self.family.padded(tp)), "seq_len": j.seq_len,
                "microbatch": microbatch, "tp": tp, "sequence_parallel": sequence, "recompute": recompute,
                "precision": j.precision, "attention": j.attention, "optimizer": j.optimizer, "device": dev,
                **({"ep": ep, "expert_imbalance": j.expert_imbalance} if ep > 1 else {})}

    def regions(self, microbatch: int, tp: int, recompute: str,
                sequence: bool = False, ep: int = 1) -> tuple[list[str], dict[str, Region], Workload]:
        """(block names in model order, region name -> cost, the one-device trace);
        ``sequence``: with sequence parallelism; ``ep``: expert parallelism (its all-to-alls
        join the tensor-parallel collectives, :mod:`analysis.train_moe`)."""
        key = (microbatch, tp, recompute, sequence, ep)
        if key in self.cache:
            got = self.cache[key]
            if isinstance(got, HwsimError):
                raise got
            return got
        try:
            wl = self._lower(microbatch, recompute, tp, ep)
            shard, comms = tensor_parallel(wl, tp, sequence)
            comms = comms + (train_moe.a2a_comms(shard, self.job.expert_imbalance) if ep > 1 else [])
        except HwsimError as e:          # remembered: the search asks again
            self.cache[key] = e
            raise
        from sim.gpu.sm.mainloop import keep_on_disk
        with keep_on_disk(self.use_cache):      # cache=False (--no-cache, or a worker told so): nothing on disk
            res = self.device.simulate(shard)
        if self.family:
            prefix = f"{self.family.block}.0."
            blocks = [prefix[:-1]]
        else:
            blocks = list(wl.meta.get("blocks") or [])
        names = assign(shard, blocks)
        regions = regions_of(shard, res, comms, names, blocks)
        self.cache[key] = out = (blocks, regions, shard)
        return out

    def vocab(self, tp: int) -> int:
        """The vocabulary as the job runs it (padded for tensor parallelism)."""
        assert self.family is not None
        return self.family.padded(tp).cfg.vocab

    def _lower(self, microbatch: int, recompute: str, tp: int, ep: int = 1) -> Workload:
        """The one-device training-step trace of one microbatch; lowered once for every tp
        that pads the vocabulary alike."""
        from workloads.spec import Lowering, _lower, resolve
        how = Lowering(train=True, recompute=recompute, precision=self.job.precision, attention=self.job.attention,
                       optimizer=self.job.optimizer)
        if self.family:
            fam = self.family.padded(tp)
            if ep > 1:
                fam = dataclasses.replace(fam, cfg=dataclasses.replace(fam.cfg, ep=ep,
                                                                      load_imbalance=self.job.expert_imbalance))
            key = (microbatch, recompute, fam.cfg.vocab, ep)
            if key not in self.lowered:
                def make() -> Workload:
                    from workloads.zoo.transformer import build
                    made = build(fam, 1, microbatch, self.job.seq_len)
                    return _lower(self.job.model, made, f"zoo:{self.job.model}", False, how)
                if self.use_cache:          # the padded vocabulary is part of what was lowered
                    from workloads.cache import cached, trace_key
                    self.lowered[key] = cached(trace_key(f"{self.job.model}#vocab={fam.cfg.vocab}"
                                                         + (f"#ep={ep}#imb={fam.cfg.load_imbalance:g}" if ep > 1
                                                            else ""), microbatch,
                                                         self.job.seq_len, False, how), make)
                else:
                    self.lowered[key] = make()
            return self.lowered[key]
        key = (microbatch, recompute, 0, 1)
        if key not in self.lowered:
            self.lowered[key] = resolve(self.job.model, batch=microbatch, seq_len=self.job.seq_len, how=how,
                                        cache=self.use_cache)
        return self.lowered[key]

    def chunks(self, job: Job) -> tuple[ChunkCost, ...]:
        """The pp x v chunk costs in model order; the same for every dp, ZeRO stage and
        schedule of a chunk count, so worked out once for them all."""
        key = _chunk_key(job)
        if key not in self.chunk_costs:
            self.chunk_costs[key] = self._chunks(job, key)
        return self.chunk_costs[key]

    def split(self, job: Job) -> tuple[int, ...]:
        """The layers (blocks) of each of the job's chunks, in model order."""
        self.chunks(job)
        return self.splits[_chunk_key(job)]

    def _chunks(self, job: Job, key: tuple) -> tuple[ChunkCost, ...]:
        blocks, regions = self.costs(job.microbatch, job.tp, job.recompute, job.sequence_parallel, job.ep)
        n = job.pp * job.chunks_per_device
        order = self._layer_regions(blocks)
        if len(order) - 2 < n:
            raise HwsimError(f"{job.model} has {len(order) - 2} blocks; {job.pp} stages x {job.chunks_per_device} "
                             f"chunks need at least {n}")
        per = len(order) - 2
        comm = self._comm_of(job, regions)
        counts = self.stage_counts(job, per, n, regions, order, comm)
        self.splits[key] = tuple(counts)
        bounds = [sum(counts[:i]) for i in range(n + 1)]
        pol = policy(job.precision)
        opt = optimizer_model(job.optimizer)
        state = 4 * opt.states + (4 if pol.master_weights else 0)
        seqs: dict[tuple[str, ...], ZeroSeq] = {}      # chunks of the same regions share their ZeRO-3 steps
        eager = isinstance(self.device, LaunchesKernels)
        out = []
        for c in range(n):
            parts = order[1 + bounds[c]:1 + bounds[c + 1]]
            if c == 0:
                parts = [order[0]] + parts
            if c == n - 1:
                parts = parts + [order[-1]]
            rs = [regions[r] for r in parts]
            fc = sum(comm(r, "forward") for r in parts)
            bc = sum(comm(r, "backward") for r in parts)
            zero_seq = None
            if job.zero == 3:
                named = tuple(parts)
                if named not in seqs or not self.fast:
                    seqs[named] = chain([(regions[r].steps, comm(r, "forward"), comm(r, "backward")) for r in parts])
                zero_seq = seqs[named]
            out.append(ChunkCost(
                fwd_us=sum(r.fwd_us for r in rs) + fc, bwd_us=sum(r.bwd_us for r in rs) + bc, fwd_comm_us=fc,
                bwd_comm_us=bc, act_bytes=sum(r.act_bytes for r in rs), params=sum(r.params for r in rs),
                optimizer_us=sum(r.optimizer_us for r in rs), send_bytes=rs[-1].out_bytes,
                # the host's eager launches and optimizer loop (sim.system.framework): PyTorch on GPUs
                fwd_kernels=sum(r.fwd_kernels for r in rs) if eager else 0,
                bwd_kernels=sum(r.bwd_kernels for r in rs) if eager else 0,
                tensors=sum(r.tensors for r in rs) if eager else 0,
                weight_bytes=pol.weight_bits / 8, grad_bytes=pol.weight_bits / 8, state_bytes=state,
                zero_seq=zero_seq))
        return train_fp8.adjust(job, self, out, counts) if pol.te_fp8 else tuple(out)

    def collectives(self, sys: System) -> Collectives:
        """The collectives on ``sys`` (the job's system, or its first devices): each smaller
        system's kept on the fast path, made afresh for every step on the reference path."""
        if self.comms.sys == sys:
            return self.comms
        if not self.fast:
            return Collectives(sys, reference=True)
        if sys not in self.smaller:
            self.smaller[sys] = Collectives(sys)
        return self.smaller[sys]

    def _comm_of(self, job: Job, regions: dict[str, Region]) -> Callable[[str, str], float]:
        """``(region name, phase) -> _comm_us``; each region's worked out once on the fast path
        (every layer of a transformer is the same region)."""
        if not self.fast:
            return lambda r, phase: self._comm_us(job, regions[r], phase)
        memo: dict[tuple[str, str], float] = {}

        def comm(r: str, phase: str) -> float:
            got = memo.get((r, phase))
            if got is None:
                got = memo[(r, phase)] = self._comm_us(job, regions[r], phase)
            return got
        return comm

    def stage_counts(self, job: Job, per: int, n: int, regions: dict[str, Region], order: list[str],
                     comm: Callable[[str, str], float] | None = None) -> list[int]:
        """The blocks (layers) of each of the ``n`` chunks: as ``--stage-layers`` states; an even
        split where they divide; else the split that balances each chunk's forward and backward
        time, the embedding on the first and the head on the last (:func:`partition`)."""
        if job.stage_layers is not None:
            if sum(job.stage_layers) != per:
                raise HwsimError(f"--stage-layers: {'+'.join(map(str, job.stage_layers))} = {sum(job.stage_layers)} "
                                 f"layers; {job.model} has {per}")
            return list(job.stage_layers)
        if per % n == 0:
            return [per // n] * n
        if not self.family:         # blocks of unequal cost: the nearest even split
            return [round((i + 1) * per / n) - round(i * per / n) for i in range(n)]

        cu = comm or self._comm_of(job, regions)

        def cost(name: str) -> float:
            r = regions[name]
            return r.fwd_us + r.bwd_us + cu(name, "forward") + cu(name, "backward")
        extra = [0.0] * n
        extra[0] += cost(order[0])
        extra[-1] += cost(order[-1])
        return partition(per, extra, cost(order[1]))

    def _layer_regions(self, blocks: list[str]) -> list[str]:
        if self.family:
            return ["pre"] + blocks * self.layers + ["post"]
        return ["pre"] + blocks + ["post"]

    def _comm_us(self, job: Job, r: Region, phase: str) -> float:
        """The exposed time of a region's tensor-parallel collectives in ``phase``, within the
        node's first tp devices (every tp group of a node sees the same fabric): each whole,
        or with ``tp_comm_overlap`` pipelined with the GEMM it follows (:func:`overlapped_us`)."""
        group = list(range(job.tp))
        n_fwd = len(r.fwd_comm)
        part = slice(0, n_fwd) if phase == "forward" else slice(n_fwd, None)
        sizes = r.fwd_comm if phase == "forward" else r.bwd_comm
        out = 0.0
        for b, k, g in zip(sizes, r.comm_kinds[part], r.comm_gemm_us[part]):
            if k == "all_to_all":         # expert parallelism's dispatch and combine, over its group
                out += train_moe.a2a_us(self.comms.sys, job.ep, b)
                continue
            c = self.comms.run(k, group, b)
            out += overlapped_us(c, g, job.tp) if job.tp_comm_overlap and g > 0 else c
        return out


def overlapped_us(comm_us: float, gemm_us: float, n: int) -> float:
    """What a collective adds to the GEMM it is pipelined with (Megatron-Core's
    ``--tp-comm-overlap`` through Transformer Engine's userbuffers; the decomposition of
    Wang et al., "Overlap Communication with Dependent Computation via Decomposition in
    Large Deep Learning Models", ASPLOS 2023): the GEMM is cut into ``n`` (the tensor-parallel
    degree) chunks along its rows and the collective into its ``n - 1`` ring steps, each
    step moving the next chunk while the current one multiplies, so the pair takes
    ``g/n + (n - 1) max(g/n, c/(n - 1))``. A chunk is assumed to run at the whole GEMM's
    rate, and the transfers to take no SMs from it (copy-engine ring exchange): named
    assumptions."""
    if n < 2:
        return comm_us
    g, c = gemm_us, comm_us
    return g / n + (n - 1) * max(g / n, c / (n - 1)) - g


def _chunk_key(job: Job) -> tuple:
    """What a job's chunk costs depend on: the same for every dp, ZeRO stage and schedule of
    one chunk count."""
    return (job.microbatch, job.tp, job.recompute, job.pp, job.chunks_per_device, job.precision, job.optimizer,
            job.stage_layers, job.sequence_parallel, job.tp_comm_overlap, job.zero == 3, job.ep,
            *train_fp8.chunk_key(job))


def partition(layers: int, extra_us: list[float], layer_us: float) -> list[int]:
    """Layers of equal cost ``layer_us`` over chunks that also carry ``extra_us`` (the
    embedding on the first, the head on the last), each at least one layer, minimising the
    slowest chunk: one layer at a time to the chunk that stays fastest with it (optimal for
    equal items; Megatron-DeepSpeed and DeepSpeed's pipeline give the first and last stages
    fewer layers for the same reason)."""
    n = len(extra_us)
    if layers < n:
        raise HwsimError(f"{layers} layers cannot fill {n} pipeline chunks (each needs a layer); use fewer stages")
    counts = [1] * n
    for _ in range(layers - n):
        c = min(range(n), key=lambda i: (extra_us[i] + (counts[i] + 1) * layer_us, i))
        counts[c] += 1
    return counts


@dataclass
class TrainResult:
    job: Job
    step: StepResult
    samples_per_s: float
    tokens_per_s: float | None       # transformers only
    tflops_per_gpu: float            # Megatron's model FLOPs (recomputation counted when used)
    hardware_tflops_per_gpu: float   # FLOPs the devices execute
    mfu: float
    model_flops: float
    chosen: dict[str, Any] = field(default_factory=dict)
    stage_layers: tuple[int, ...] = ()     # layers (blocks) of each pipeline chunk, in model order

    def summary(self) -> dict[str, Any]:
        s, j = self.step, self.job
        gib = 2 ** 30
        return {
            "model": j.model, "system": j.system.name, "device": j.system.device, "devices": j.devices, "dp": j.dp, "tp": j.tp, "pp": j.pp,
            "microbatch": j.microbatch, "microbatches": j.global_batch // (j.dp * j.microbatch),
            "global_batch": j.global_batch, "recompute": j.recompute, "schedule": j.schedule, "zero": j.zero,
            **({"ep": j.ep, "expert_imbalance": j.expert_imbalance} if j.ep > 1 else {}),
            "sequence_parallel": j.sequence_parallel and j.tp > 1, "tp_comm_overlap": j.tp_comm_overlap and j.tp > 1,
            "precision": j.precision, "step_time_s": s.step_us * 1e-6, "samples_per_s": self.samples_per_s,
            "tokens_per_s": self.tokens_per_s, "tflops_per_gpu": self.tflops_per_gpu,
            "hardware_tflops_per_gpu": self.hardware_tflops_per_gpu, "mfu": self.mfu,
            "compute_s": s.compute_us * 1e-6, "exposed_comm_s": s.comm_us * 1e-6, "bubble_s": s.bubble_us * 1e-6,
            "optimizer_s": s.optimizer_us * 1e-6, "framework_s": s.framework_us * 1e-6,
            "framework_terms_s": {k: v * 1e-6 for k, v in s.framework.items()},
            "memory_per_gpu_gib": {k[:-6]: v / gib for k, v in s.memory.items()},
            "capacity_gib": s.capacity_bytes / gib, "fits": s.fits, "stage_layers": list(self.stage_layers), **({"chosen": self.chosen} if self.chosen else {}),
        }


def run(job: Job, model: Model | None = None, timeline: bool = False) -> TrainResult:
    job.check()
    model = model or Model(job)
    if model.family is not None:
        cfg = model.family.cfg
        kv = cfg.kv_heads or cfg.heads
        if cfg.heads % job.tp or kv % job.tp:
            raise HwsimError(f"--tp {job.tp}: tensor parallelism splits the attention heads; {job.model} has "
                             f"{cfg.heads} query and {kv} key/value heads, so tp must divide both")
    if train_fp8.applies(job):
        train_fp8.check(job, model)
    train_moe.check(job, model)
    chunks = model.chunks(job)
    m = job.global_batch // (job.dp * job.microbatch)
    par = Parallel(job.dp, job.tp, job.pp, job.microbatch, m, "interleaved" if job.chunks_per_device > 1 else
                   job.schedule, job.chunks_per_device, job.zero, job.overlap_param_gather, job.zero3)
    sys = job.system.with_devices(job.devices) if job.devices < job.system.devices else job.system
    host = dataclasses.replace(HOST, data_loading_us=job.data_loading_ms * 1e3)
    res = step(sys, par, chunks, model.device.memory_capacity_bytes, model.collectives(sys), timeline=timeline,
               host=host)
    if train_fp8.applies(job):
        res = train_fp8.with_weight_copies(res, job, model, model.split(job))
    t = res.step_us * 1e-6
    tokens = model.family.tokens_per_sample if model.family else 1
    flops, flops_plain = _model_flops(job, model)
    blocks, regions = model.costs(job.microbatch, job.tp, job.recompute, job.sequence_parallel, job.ep)
    hw = 2 * sum(regions[r].macs for r in model._layer_regions(blocks)) * m / job.pp   # one device's step
    peak = _peak_ops_per_s(job.precision, model.device)
    return TrainResult(job, res, job.global_batch / t, job.global_batch * tokens / t if model.family else None,
                       flops / t / job.devices / 1e12,
                       hw / t / 1e12, flops_plain / t / job.devices / peak, flops, stage_layers=model.split(job))


def _peak_ops_per_s(precision: str, device: Any) -> float:
    """The device's peak at the tensor-core type the policy's GEMMs run at, or, where the
    device has no such type (a systolic array, an A100 asked for FP8), its own peak."""
    try:
        return device.peaks(policy(precision).tensor_core).ops_per_s
    except HwsimError:
        return device.peaks().ops_per_s


def _model_flops(job: Job, model: Model) -> tuple[float, float]:
    """(Megatron's model FLOPs per step as run, the same without recomputation)."""
    f = model.family
    B = job.global_batch
    if f is not None and f.kind == "decoder" and not f.cfg.experts:     # a mixture of experts: from its trace
        s, l, h, V = f.tokens_per_sample, f.cfg.layers, f.cfg.hidden, model.vocab(job.tp)   # padded, as Megatron counts
        with_rc = 96 * B * s * l * h ** 2 * (1 + s / (6 * h) + V / (16 * l * h))
        plain = 72 * B * s * l * h ** 2 * (1 + s / (6 * h) + V / (12 * l * h))
        return (with_rc if job.recompute == "full" else plain), plain
    blocks, regions = model.costs(job.microbatch, 1, "none")
    fwd = sum(regions[r].fwd_macs for r in model._layer_regions(blocks))
    plain = 3 * 2 * fwd * B / job.microbatch
    return plain, plain


# ---- choosing what the user left open, and the search ----------------------------------------------
def candidates(job: Job, microbatch: int | None, recompute: str | None, schedule: str | None,
               model: Model, even: bool = False) -> list[Job]:
    """The settings left open, each valid combination. Interleaved chunks split the layers
    unevenly only where the stages already do (pp does not divide them); ``even``: never
    (what a search tries)."""
    if model.family and model.layers < job.pp:
        raise HwsimError(f"{job.model} has {model.layers} layers; --pp {job.pp} stages need one each at least")
    per_replica = job.global_batch // job.dp if job.global_batch % job.dp == 0 else 0
    if not per_replica:
        raise HwsimError(f"--global-batch {job.global_batch} does not split over dp = {job.dp} replicas")
    bs = [microbatch] if microbatch else [b for b in (1, 2, 4, 8, 16) if per_replica % b == 0]
    rcs = [recompute] if recompute else list(RECOMPUTES)
    scheds = [schedule] if schedule else (["1f1b"] + ([f"interleaved:{v}" for v in (2, 4)] if job.pp > 1 else []))
    out = []
    for b, rc, sc in itertools.product(bs, rcs, scheds):
        j = dataclasses.replace(job, microbatch=b, recompute=rc, schedule=sc)
        if sc.startswith("interleaved"):
            v = int(sc.split(":")[1])
            m = per_replica // b
            uneven = bool(model.family and model.layers % (job.pp * v))
            if m % job.pp or (model.family and model.layers < job.pp * v) or \
                    (uneven and (even or model.layers % job.pp == 0)):   # uneven chunks only where stages are too
                continue
        if job.stage_layers is not None and len(job.stage_layers) != job.pp * j.chunks_per_device:
            continue                  # the stated split is for another chunk count
        out.append(j)
    return out


def best(jobs: list[Job], model: Model) -> tuple[TrainResult | None, list[TrainResult]]:
    """The fastest configuration that fits, and every result."""
    results = []
    errors = []
    for j in jobs:
        try:
            results.append(run(j, model))
        except HwsimError as e:
            errors.append(e)
    if not results and errors:
        raise errors[0]                   # the same for every setting: the model or the system
    fitting = [r for r in results if r.step.fits]
    return (min(fitting, key=lambda r: r.step.step_us) if fitting else None), results


def tensor_degrees(job: Job, model: Model, devices: int) -> list[int]:
    """The tensor-parallel degrees a search tries: within a node, dividing the devices and
    the heads (any degree for other models: their layers refuse what they cannot split)."""
    heads = model.family.cfg.heads if model.family else 0
    return [t for t in (1, 2, 4, 8, 16) if t <= job.system.devices_per_node and devices % t == 0
            and (heads % t == 0)]


def search(job: Job, model: Model, devices: int | None = None, tps: list[int] | None = None) -> list[TrainResult]:
    """Every valid (dp, tp, pp, microbatch, recompute, schedule, zero) on ``devices`` (default:
    the system's; ``tps``: only these tensor-parallel degrees), fastest first
    (configurations that do not fit last)."""
    n = devices or job.system.devices
    results = []
    for tp in tps if tps is not None else tensor_degrees(job, model, n):
        for pp in [p for p in range(1, n // tp + 1) if (n // tp) % p == 0 and (not model.family or model.layers % p == 0)]:
            dp = n // (tp * pp)
            if job.global_batch % dp:
                continue
            for zero, ep in itertools.product((0, 1, 2, 3) if dp > 1 else (0,), train_moe.degrees(job, model, dp)):
                base = dataclasses.replace(job, tp=tp, pp=pp, dp=dp, zero=zero, ep=ep,
                                           overlap_param_gather=job.overlap_param_gather and zero in (1, 2),
                                           tp_comm_overlap=job.tp_comm_overlap and tp > 1)
                for j in candidates(base, None, None, None, model, even=True):
                    progress_step()
                    try:
                        results.append(run(j, model))
                    except HwsimError:
                        continue
    return sorted(results, key=rank)


def rank(r: TrainResult) -> tuple:
    """Fitting first, fastest first; ties in a fixed order (so that a search reproduces)."""
    j = r.job
    return (not r.step.fits, r.step.step_us, j.dp, j.tp, j.pp, j.microbatch, j.recompute, j.schedule, j.zero)


def _search_part(job: Job, devices: int, tp: int, cache: bool = False) -> list[dict[str, Any]]:
    """One tensor-parallel degree's share of a search, as summaries (what a worker returns);
    ``cache`` the command's (its Model keeps GPUs' stepped SM main loops off disk without it)."""
    return [r.summary() for r in search(job, Model(job, cache), devices, [tp])]


def search_summaries(job: Job, model: Model, devices: int, workers: int = 1,
                     cluster: str | None = None) -> list[dict[str, Any]]:
    """:func:`search`'s results as summaries, the tensor-parallel degrees spread over local
    processes (``workers``) or a Dask cluster (``cluster``: ``"local"`` or an address), as
    sweeps are. Each part evaluates its distinct stages once."""
    tps = tensor_degrees(job, model, devices)
    if cluster is None and workers <= 1:
        return [r.summary() for r in search(job, model, devices, tps)]
    parts: list[list[dict[str, Any]]] = []
    if cluster:
        from dask.distributed import Client, LocalCluster
        lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) \
            if cluster == "local" else None
        client = Client(lc if lc else cluster)
        try:
            parts = client.gather([client.submit(_search_part, job, devices, t, model.use_cache, pure=False)
                                   for t in tps])
        finally:
            client.close()
            if lc:
                lc.close()
    else:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=workers) as ex:
            parts = list(ex.map(_search_part, [job] * len(tps), [devices] * len(tps), tps,
                                [model.use_cache] * len(tps)))
    rows = [r for part in parts for r in part]
    return sorted(rows, key=lambda s: (not s["fits"], s["step_time_s"], s["dp"], s["tp"], s["pp"], s["microbatch"],
                                       s["recompute"], s["schedule"], s["zero"]))


def fits_or_refuse(r: TrainResult) -> None:
    if not r.step.fits:
        raise HwsimError(f"{r.job.model} with dp {r.job.dp}, tp {r.job.tp}, pp {r.job.pp}, microbatch "
                         f"{r.job.microbatch}, recompute {r.job.recompute}, zero {r.job.zero} does not fit: it "
                         + fits_message(r.step.memory, r.step.capacity_bytes))


def perfetto(r: TrainResult) -> dict:
    """The step as a Chrome/Perfetto trace: a process per pipeline stage (its tp x dp devices
    run alike), with a track for compute, for its tensor-parallel and data-parallel
    collectives, and for each link it sends activations or gradients over."""
    tracks: dict[str, tuple[int, int]] = {}
    events: list[dict[str, Any]] = []
    for track, name, start, end in r.step.spans:
        if track not in tracks:
            stage = int(re.search(r"stage (\d+)", track).group(1))  # type: ignore[union-attr]
            tracks[track] = (stage, len(tracks) + 1)
        pid, tid = tracks[track]
        events.append({"name": name, "ph": "X", "ts": start, "dur": max(end - start, 0.0), "pid": pid, "tid": tid,
                       "cat": "compute" if track.endswith("compute") else "comm"})
    j = r.job
    events += [{"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": track}}
               for track, (pid, tid) in tracks.items()]
    events += [{"name": "process_name", "ph": "M", "pid": s, "args": {"name": f"stage {s} ({j.tp * j.dp} devices: "
                                                                            f"tp {j.tp} x dp {j.dp})"}}
               for s in sorted({pid for pid, _ in tracks.values()})]
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"model": j.model, "system": j.system.name, "step_time_us": r.step.step_us}}


__all__ = ["partition", "Job", "Model", "run", "search", "search_summaries", "best", "candidates", "perfetto", "fits_or_refuse"]

"""What FP8 training (``--precision fp8-hybrid``: Megatron-LM/NeMo with Transformer Engine,
delayed scaling; :mod:`workloads.fp8`) adds to a parallel training step beyond the one
microbatch its per-layer costs are simulated for.

* **The weight casts run once per step.** TE casts each FP8 weight (row-wise and transposed)
  on the first microbatch of a step and reuses the copies for the rest
  (``is_first_microbatch``, which Megatron-Core's schedules set). The one-microbatch trace
  holds one cast per weight, so each layer's forward gives back ``(1 - 1/m)`` of its casts'
  time over the step's ``m`` microbatches.
* **The amax reductions.** Megatron-Core wraps each model chunk's forward in one
  ``fp8_autocast`` (``megatron/core/transformer/transformer_block.py``, for delayed
  scaling); TE all-reduces (MAX) the chunk's amaxes over the tensor- and data-parallel group
  (``get_amax_reduction_group`` in ``megatron/core/parallel_state.py``) when the autocast is
  left, and the output gradients' amaxes in the backward of the chunk's first FP8 module
  (``reduce_and_update_fp8_tensors`` in ``transformer_engine/pytorch/quantization.py``;
  ``async_op=False``: on the critical path), each followed by one fused kernel that rolls
  the amax history and computes the scales (``fused_amax_and_scale_update_after_reduction``).
  Per microbatch and chunk of L layers: an all-reduce of 4 x ``FWD_AMAXES`` x
  ``TE_MODULES_PER_LAYER`` x L bytes (48 L) in the forward and 4 x 2 x 4 x L (32 L) in the
  backward, and a kernel over ``AMAX_HISTORY_LEN`` x that many fp32 values (4 KiB per amax:
  for 12 layers 576 KiB forward, 384 KiB backward). Both are simulated: the all-reduce on
  the system's collective model (a few hundred bytes: its latency, about 14 us within a
  DGX H100 and about 0.5 ms over 1,024 devices as rings), the kernel on the device.
* **The FP8 weight copies** (row-wise and transposed, 2 bytes per FP8 parameter) sit beside
  the bf16 weights on every device, whatever the ZeRO stage 1 or 2 shards; they are added
  to the weights of the fullest device (exact where every device holds as many layers).

Refused: ZeRO-3 (TE's caching of gathered FP8 weights is not modelled), models that are not
zoo transformers or ``gpt:`` shapes (the per-layer weights come from the shape), and
mixtures of experts (TE's grouped GEMMs are not modelled).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, Sequence

from sim.system.step import ChunkCost, StepResult
from sim.system.topology import System, device_of
from workloads.errors import HwsimError
from workloads.fp8 import (AMAX_HISTORY_LEN, BWD_AMAXES, FWD_AMAXES, TE_MODULES_PER_LAYER, layer_weights,
                           weight_cast)
from workloads.precision import policy
from workloads.trace import Op, Operand, Workload

if TYPE_CHECKING:
    from .train import Job, Model

__all__ = ["applies", "check", "check_system", "chunk_key", "adjust", "with_weight_copies", "weight_cast_us", "fp8_params"]


def applies(job: "Job") -> bool:
    return policy(job.precision).te_fp8


@functools.lru_cache(maxsize=None)
def check_system(system: System) -> None:
    """Refuse a device without FP8 tensor cores (before a search tries every configuration)."""
    try:
        device_of(system).peaks("fp8")
    except HwsimError:
        raise HwsimError(f"--precision fp8-hybrid runs FP8 GEMMs; {system.name}'s {system.device} has no FP8 tensor "
                         "cores; use bf16-o2, or a system of Hopper GPUs (--system dgx-h100)") from None


def check(job: "Job", model: "Model") -> None:
    """Refuse what fp8-hybrid does not model (one line each)."""
    if job.zero == 3:
        raise HwsimError("--precision fp8-hybrid with --zero 3: Transformer Engine's FP8 weight copies of gathered "
                         "weights are not modelled; use --zero 0, 1 or 2")
    if model.family is None:
        raise HwsimError(f"--precision fp8-hybrid is modelled for zoo transformers and gpt: shapes (their layers' "
                         f"weights come from the shape); {job.model} is neither; use bf16-o2")
    if model.family.cfg.experts:
        raise HwsimError(f"--precision fp8-hybrid: {job.model} is a mixture of experts, whose FP8 grouped GEMMs "
                         "are not modelled; use bf16-o2")


def microbatches(job: "Job") -> int:
    return job.global_batch // (job.dp * job.microbatch)


def chunk_key(job: "Job") -> tuple:
    """What fp8-hybrid's chunk costs depend on beyond the others': the microbatches per step
    (the weight casts) and the data-parallel degree (the amax all-reduce's group)."""
    return (microbatches(job), job.dp) if applies(job) else ()


def fp8_params(model: "Model", tp: int) -> int:
    """FP8 weight elements of one layer on one of ``tp`` devices (each split 1/tp, as the
    trace's shard splits the weight casts)."""
    assert model.family is not None
    return sum(max(1, _numel(shape) // tp) for _, shape in layer_weights(model.family.cfg))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _times(model: "Model", ops: list[Op]) -> list[float]:
    res = model.device.simulate(Workload("fp8-step", tuple(ops)))
    return [o.time_us for o in res.ops]


def weight_cast_us(model: "Model", tp: int) -> float:
    """One layer's weight casts on one of ``tp`` devices, as the trace's shard runs them."""
    key = ("weights", tp)
    if key not in model.fp8_memo:
        assert model.family is not None
        ops = []
        for name, shape in layer_weights(model.family.cfg):
            op = weight_cast(name, shape)
            n = max(1, op.dims["elements"] // tp)
            ops.append(dataclasses.replace(op, dims={**op.dims, "elements": n, "inputs": n}))
        model.fp8_memo[key] = sum(_times(model, ops))
    return model.fp8_memo[key]


def _update_us(model: "Model", amaxes: int) -> float:
    """The fused amax-history and scale update over ``amaxes`` amaxes of ``AMAX_HISTORY_LEN``
    fp32 values each (read and written once): priced as a vector op of twice as many 16-bit
    elements, the width the device models price element-wise ops at."""
    key = ("update", amaxes)
    if key not in model.fp8_memo:
        n = 2 * AMAX_HISTORY_LEN * amaxes
        op = Op("fp8.amax_update", "elementwise", "amax_and_scale_update", {"elements": n, "inputs": n,
                                                                              "ops_per_element": 1},
                operands=(Operand("input", (n,), 16, "float"), Operand("output", (n,), 16, "float")))
        model.fp8_memo[key] = _times(model, [op])[0]
    return model.fp8_memo[key]


def amax_us(job: "Job", model: "Model", layers: int) -> tuple[float, float, float, float]:
    """(forward all-reduce, forward update, backward all-reduce, backward update) of one
    chunk of ``layers`` layers for one microbatch."""
    sys = job.system.with_devices(job.devices) if job.devices < job.system.devices else job.system
    group = list(range(job.tp * job.dp))            # the first stage's tensor- and data-parallel ranks
    comms = model.collectives(sys)
    fwd, bwd = FWD_AMAXES * TE_MODULES_PER_LAYER * layers, BWD_AMAXES * TE_MODULES_PER_LAYER * layers
    return (comms.run("allreduce", group, 4.0 * fwd), _update_us(model, fwd),
            comms.run("allreduce", group, 4.0 * bwd), _update_us(model, bwd))


def adjust(job: "Job", model: "Model", chunks: Sequence[ChunkCost], counts: Sequence[int]) -> tuple[ChunkCost, ...]:
    """The chunk costs with the weight casts once per step and the amax reductions added."""
    m = microbatches(job)
    wc = weight_cast_us(model, job.tp)
    out = []
    for ch, layers in zip(chunks, counts):
        far, fup, bar, bup = amax_us(job, model, layers)
        out.append(dataclasses.replace(
            ch, fwd_us=ch.fwd_us - (1 - 1 / m) * layers * wc + far + fup, fwd_comm_us=ch.fwd_comm_us + far,
            bwd_us=ch.bwd_us + bar + bup, bwd_comm_us=ch.bwd_comm_us + bar))
    return tuple(out)


def with_weight_copies(res: StepResult, job: "Job", model: "Model", counts: Sequence[int]) -> StepResult:
    """``res`` with the FP8 weight copies (2 bytes per FP8 parameter) of the device holding
    the most layers added to its weights."""
    per_layer = 2.0 * fp8_params(model, job.tp)
    most = max(sum(counts[c] for c in range(len(counts)) if c % job.pp == d) for d in range(job.pp))
    extra = per_layer * most
    mem: dict[str, Any] = dict(res.memory)
    mem["weights_bytes"] += extra
    mem["total_bytes"] += extra
    return dataclasses.replace(res, memory=mem)

"""Training rows: one step of a model split over a multi-GPU system (``hwsim train``,
``analysis.train``), as published runs configured it.

Options are ``hwsim train``'s: ``gpus``, ``nodes``, ``tp``, ``pp``, ``dp``, ``global_batch``,
``microbatch``, ``recompute``, ``schedule``, ``zero``, ``precision``, ``seq_len``; what a row
leaves open (microbatch, recomputation, schedule) is picked as the fastest that fits, as
``hwsim train`` does; ``sequence_parallel=1`` is ``--sequence-parallel`` and
``tp_comm_overlap=1`` ``--tp-comm-overlap``, ``overlap_param_gather=1``
``--overlap-param-gather``, ``zero3=NAME`` ``--zero3 NAME``, ``attention=fused|unfused``
``--attention`` (default unfused, as ``hwsim train``).
Quantities: ``tflops_per_gpu`` (Megatron's model FLOPs per GPU per second),
``step_time_s``, ``tokens_per_s``, ``mfu_percent`` and ``memory_gib_per_gpu``.

``busbw_gbs`` is one collective alone, as nccl-tests measures it (``validation/data/collectives.csv``):
``model`` names it (``all_reduce``, ``all_gather``, ``reduce_scatter``), ``design`` the system,
``gpus`` its size, ``bytes`` the buffer (nccl-tests' ``size``) and ``per_node`` how many of each
node's devices take part (the first ones; default all). The model's time t is that of the
collective model the training step uses (``sim.system.step.Collectives``) and the bus bandwidth
is nccl-tests' (its ``doc/PERFORMANCE.md``): 2 (n-1)/n S / t for an all-reduce, (n-1)/n S / t for
the others.
"""

from __future__ import annotations

from typing import Any

from .base import Reader, Unsupported, opt_int, opt_str
from .schema import Row

__all__ = ["READER"]

QUANTITIES = {"tflops_per_gpu": ("TFLOP/s",), "step_time_s": ("s",), "tokens_per_s": ("tokens/s",),
              "mfu_percent": ("%",), "memory_gib_per_gpu": ("GiB", "GB")}
INTS = ("gpus", "nodes", "tp", "pp", "dp", "global_batch", "microbatch", "zero", "seq_len")
OPTIONS = frozenset(INTS + ("recompute", "schedule", "precision", "zero3", "attention", "sequence_parallel", "tp_comm_overlap",
                             "overlap_param_gather", "context_parallel", "bytes", "per_node"))
QUANTITIES["busbw_gbs"] = ("GB/s",)
COLLECTIVES = {"all_reduce": ("allreduce", 2), "all_gather": ("all_gather", 1), "reduce_scatter": ("reduce_scatter", 1)}


def busbw_gbs(row: Row) -> float:
    """nccl-tests' bus bandwidth of one collective on a system, from the collective model."""
    from sim.system.step import Collectives
    from sim.system.topology import resolve_system
    if row.model not in COLLECTIVES:
        raise Unsupported(f"collective {row.model!r} is not one of {', '.join(COLLECTIVES)}")
    kind, factor = COLLECTIVES[row.model]
    gpus, nbytes = opt_int(row, "gpus"), opt_int(row, "bytes")
    if gpus is None or nbytes is None:
        raise Unsupported("a collective row needs gpus and bytes")
    system = resolve_system(row.design or "dgx-a100").with_devices(gpus)
    per_node = opt_int(row, "per_node", system.devices_per_node) or system.devices_per_node
    group = [d for d in range(system.devices) if d % system.devices_per_node < per_node]
    n = len(group)
    t_us = Collectives(system).run(kind, group, float(nbytes))
    return factor * (n - 1) / n * nbytes / t_us / 1e3


def measure(row: Row) -> float:
    if row.quantity == "busbw_gbs":
        return busbw_gbs(row)
    if (opt_int(row, "context_parallel", 1) or 1) > 1:
        raise Unsupported("context parallelism is not modelled")
    if "global_batch" not in row.options:
        raise Unsupported("the source gives no global batch")
    import hwsim
    kw: dict[str, Any] = {k: opt_int(row, k) for k in INTS if k in row.options}
    kw.update({k: opt_str(row, k) for k in ("recompute", "schedule", "precision", "zero3", "attention")
               if k in row.options})
    kw["sequence_parallel"] = bool(opt_int(row, "sequence_parallel", 0))
    kw["tp_comm_overlap"] = bool(opt_int(row, "tp_comm_overlap", 0))
    kw["overlap_param_gather"] = bool(opt_int(row, "overlap_param_gather", 0))
    s = hwsim.train(row.model, system=row.design or "dgx-a100", **kw).summary()
    q = row.quantity
    if q == "tflops_per_gpu":
        return float(s["tflops_per_gpu"])
    if q == "step_time_s":
        return float(s["step_time_s"])
    if q == "tokens_per_s":
        if s["tokens_per_s"] is None:
            raise Unsupported(f"{row.model} has no tokens")
        return float(s["tokens_per_s"])
    if q == "mfu_percent":
        return 100.0 * float(s["mfu"])
    if q == "memory_gib_per_gpu":
        gib = float(s["memory_per_gpu_gib"]["total"])
        return gib * (2 ** 30 / 1e9 if row.unit == "GB" else 1.0)
    raise Unsupported(f"{q} is not computed for training")


READER = Reader("train", QUANTITIES, OPTIONS, measure)

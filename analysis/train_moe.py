"""Expert parallelism for mixture-of-experts training (``hwsim train --ep N``).

With expert parallelism (Lepikhin et al., "GShard", ICLR 2021; Megatron-Core's
``--expert-model-parallel-size``) the ``experts`` of each MoE layer are split over ``ep``
data-parallel replicas, which form the expert-parallel group: each holds ``experts / ep`` of
them (:mod:`workloads.zoo.moe` lowers its layer so), and the tokens go to their experts and
back by two all-to-alls per MoE layer in the forward (dispatch, combine) and two in the
backward (their gradients), and again where the forward is recomputed.

Each all-to-all moves a device's ``tokens x top_k`` routed rows (``hidden`` wide, at the
activations' width): every device sends ``1 / ep`` of them to each device of its group
(``sim.system.collectives.all_to_all``, simulated once per group and size). The group is
``ep`` consecutive replicas; with tensor parallelism 1 (which MoE models need here) those are
consecutive devices, so within a node up to its size. Routing is balanced by default (the
auxiliary load-balancing loss of Switch and GShard keeps it near even; a capacity factor,
where the model has one, bounds the busiest expert's rows); ``--expert-imbalance F`` (the
busiest device's routed rows over the group's mean, MaxVio + 1 in Wang et al., 2024,
arXiv:2408.15664) runs the busiest device: its experts compute ``F`` times the mean's rows
(``workloads.zoo.moe``) and its all-to-alls receive ``F`` times the mean's bytes, which the
others wait for.

Left out: the expert weights' gradients are all-reduced over the ``dp / ep`` replicas that
hold the same experts, where the step all-reduces every gradient over the ``dp`` replicas
(the same bytes per device on a ring of more ranks).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from sim.system.topology import System
from workloads.errors import HwsimError
from workloads.shard import Comm, forward_name
from workloads.trace import Workload

if TYPE_CHECKING:
    from .train import Job, Model

__all__ = ["check", "degrees", "a2a_comms", "a2a_us", "experts_of"]

# the ops of workloads.zoo.moe that the all-to-alls stand beside: the dispatch's scatter into
# the experts' buffers, the combine's gather out of them
DISPATCH, COMBINE = "mlp.index_add", "mlp.index_select"


def experts_of(model: "Model") -> int:
    return model.family.cfg.experts if model.family is not None else 0


def check(job: "Job", model: "Model") -> None:
    """Refuse an expert-parallel degree that does not apply or does not split."""
    e = experts_of(model)
    if job.expert_imbalance != 1.0:
        cf = model.family.cfg.capacity_factor if model.family is not None else None
        if not e or cf is not None:
            raise HwsimError(f"--expert-imbalance: {job.model} is not a dropless mixture of experts "
                             "(mixtral-8x7b, moe-tiny); leave the option out")
    if job.ep == 1:
        return
    if not e:
        raise HwsimError(f"--ep {job.ep}: expert parallelism splits the experts of a zoo MoE decoder whose layers "
                         f"are all MoE layers (mixtral-8x7b, moe-tiny); {job.model} is not one (deepseek-moe-16b's "
                         "dense first layer is not modelled with it); use --ep 1")
    if e % job.ep:
        raise HwsimError(f"--ep {job.ep}: {job.model}'s {e} experts do not split evenly; use a divisor of {e}")
    if job.dp % job.ep:
        raise HwsimError(f"--ep {job.ep}: the expert-parallel group is made of data-parallel replicas; dp = {job.dp} "
                         f"is not a multiple of it")
    if job.ep > job.system.devices_per_node:
        raise HwsimError(f"--ep {job.ep}: the expert-parallel group stays within a node of "
                         f"{job.system.devices_per_node} devices here")
    if job.zero == 3:
        raise HwsimError("--ep with --zero 3: gathering sharded experts is not modelled; use --zero 0, 1 or 2")


def degrees(job: "Job", model: "Model", dp: int) -> list[int]:
    """The expert-parallel degrees a search tries at ``dp`` replicas: the one asked for, or
    (``--ep 1``, the default) every degree that splits the experts and the replicas within a
    node (1 for a dense model)."""
    e = experts_of(model)
    if job.ep > 1 or not e:
        return [job.ep]
    return [d for d in range(1, min(e, dp, job.system.devices_per_node) + 1) if e % d == 0 and dp % d == 0]


def a2a_comms(wl: Workload, imbalance: float = 1.0) -> list[Comm]:
    """The all-to-alls of a lowered training step's MoE layers: at each forward dispatch and
    combine, at their gradients, and at their recomputation (backward phase), each of the
    layer's routed rows (the combine's output), ``imbalance`` times them for the busiest device."""
    by_name = {op.name: op for op in wl.ops}
    out = []
    for op in wl.ops:
        base = forward_name(op.name).removesuffix(".recompute")
        if op.op not in ("index_add", "index_select") or not base.endswith((DISPATCH, COMBINE)):
            continue                  # (the gradients' other ops: slice_backward)
        rows = by_name[base.replace(DISPATCH, COMBINE)].operand("output")
        assert rows is not None
        out.append(Comm("forward" if op.phase == "forward" else "backward", "all_to_all", rows.nbytes * imbalance,
                        op.name))
    return out


@functools.lru_cache(maxsize=None)
def a2a_us(system: System, ep: int, nbytes: float) -> float:
    """One all-to-all of ``nbytes`` per device over the first ``ep`` devices, simulated on the
    system's links (``sim.system.collectives``: each device sends ``nbytes / ep`` to every
    other, all at once, sharing the links)."""
    from sim.system import collectives as coll
    if ep < 2 or nbytes <= 0:
        return 0.0
    return coll.time_us(system, lambda net: coll.all_to_all(net, list(range(ep)), nbytes))

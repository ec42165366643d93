"""A model's per-region costs on one device from its simulated training-step trace: the
layers before the first block (embeddings), each block, and what follows (the head and the
loss), as ``analysis.train`` plans a parallel step with them (and ``analysis.train_cache``
keeps them on disk)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.system.zero import RegionSteps, module_steps
from workloads.memory import output_bytes
from workloads.shard import Comm, forward_name
from workloads.trace import Workload

__all__ = ["Region", "regions_of", "assign"]


@dataclass(frozen=True)
class Region:
    """One part of a model for one microbatch on one device: the layers before the first
    block (embeddings), a block, or what follows (the head and the loss)."""

    fwd_us: float
    bwd_us: float
    fwd_comm: tuple[float, ...]      # bytes of each tensor-parallel collective, forward
    bwd_comm: tuple[float, ...]
    comm_kinds: tuple[str, ...]      # allreduce | all_gather | reduce_scatter, for fwd_comm + bwd_comm in order
    comm_gemm_us: tuple[float, ...]  # the GEMM each collective follows (0: none), for fwd_comm + bwd_comm in order
    act_bytes: float
    params: float
    optimizer_us: float
    out_bytes: float
    macs: float                      # all phases, on one device
    fwd_macs: float                  # the forward alone
    steps: RegionSteps = ((), (), ())  # its modules' steps, as ZeRO-3 gathers them (sim.system.zero)
    fwd_kernels: int = 0             # kernels the host launches (ops that take time), forward
    bwd_kernels: int = 0             # and backward, recomputation included
    tensors: int = 0                 # parameter tensors the optimizer steps


def assign(wl: Workload, blocks: list[str]) -> dict[str, str]:
    """op name -> region (pre, a block, post)."""
    out: dict[str, str] = {}
    seen_block = False
    by_fwd: dict[str, str] = {}
    for op in wl.ops:
        if op.phase == "optimizer":
            pname = op.name[len("optimizer."):]
            b = next((b for b in blocks if pname.startswith(b + ".")), None)
            out[op.name] = b or ("pre" if not _is_post_param(pname, wl) else "post")
            continue
        f = forward_name(op.name)
        if op.phase == "forward":
            b = next((b for b in blocks if f.startswith(b + ".")), None)
            if b is not None:
                seen_block = True
                region = b
            else:
                region = "post" if seen_block else "pre"
            by_fwd[f] = region
            out[op.name] = region
        else:
            out[op.name] = by_fwd.get(f) or next((b for b in blocks if f.startswith(b + ".")), "post")
    return out


def _is_post_param(pname: str, wl: Workload) -> bool:
    """A parameter used after the last block (the final norm, an untied head)."""
    layer = pname.rsplit(".", 1)[0]
    last_block = max((i for i, op in enumerate(wl.ops) if op.phase == "forward" and op.name.split(".")[0]
                      in {b.split(".")[0] for b in wl.meta.get("blocks", [])}), default=-1)
    for i, op in enumerate(wl.ops):
        if op.phase == "forward" and (op.name == layer or op.name.startswith(layer + ".")):
            return i > last_block
    return False


def regions_of(wl: Workload, res, comms: list[Comm], names: dict[str, str], blocks: list[str]) -> dict[str, Region]:
    times = {o.name: o.time_us for o in res.ops}
    consumers = wl.consumers()
    phase = {op.name: op.phase for op in wl.ops}
    acc: dict[str, dict[str, Any]] = {r: dict(fwd=0.0, bwd=0.0, fc=[], bc=[], kinds=[], act=0.0, params=0.0, opt=0.0,
                                              out=0.0, macs=0.0, fwd_macs=0.0, fk=0, bk=0, tensors=0)
                                 for r in ["pre", *blocks, "post"]}
    for op in wl.ops:
        a = acc[names[op.name]]
        launched = times[op.name] > 0            # an op fused into another's epilogue takes no launch
        if op.phase == "forward":
            a["fk"] += launched
            a["fwd"] += times[op.name]
            if any(phase[c] != "forward" for c in consumers[op.name]):
                a["act"] += output_bytes(op)
            a["out"] = output_bytes(op) if op.operand("output") is not None else a["out"]
        elif op.phase == "backward":
            a["bk"] += launched
            a["bwd"] += times[op.name]
        else:
            a["tensors"] += 1
            a["opt"] += times[op.name]
            a["params"] += op.dims["elements"]
        a["macs"] += op.macs
        if op.phase == "forward":
            a["fwd_macs"] += op.macs
    steps = module_steps([(op.name, op.phase, times[op.name], names[op.name]) for op in wl.ops],
                         [(op.name[len("optimizer."):], op.dims["elements"]) for op in wl.ops if op.phase == "optimizer"],
                         forward_name)
    gemms = {op.name for op in wl.ops if op.is_gemm}
    for c in comms:
        a = acc[names.get(c.at, "post")]
        a["fc" if c.phase == "forward" else "bc"].append((c.nbytes, c.kind, times[c.at] if c.at in gemms else 0.0))
    return {r: Region(a["fwd"], a["bwd"], tuple(x[0] for x in a["fc"]), tuple(x[0] for x in a["bc"]),
                      tuple(x[1] for x in a["fc"]) + tuple(x[1] for x in a["bc"]),
                      tuple(x[2] for x in a["fc"]) + tuple(x[2] for x in a["bc"]), a["act"], a["params"], a["opt"],
                      a["out"], a["macs"], a["fwd_macs"], steps.get(r, ((), (), ())), a["fk"], a["bk"], a["tensors"])
            for r, a in acc.items()}

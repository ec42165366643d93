"""A training step as a trace: what lowering with ``train=True`` records (forward, loss,
backward) plus activation recomputation, mixed precision and the optimizer update.

**Optimizer.** One element-wise op per parameter tensor, phase ``optimizer``, reading the
gradient (its producers are the ops that wrote it), the parameter and the optimizer state,
and writing the parameter and the state. The work per element is what PyTorch's
single-tensor implementations dispatch (counted in the tests): SGD with momentum 3
element-wise ops (``buf*m + g``, ``p - lr*buf``), Adam 7 (``lerp`` for the first moment,
``mul``, ``addcmul`` for the second, ``sqrt``, ``div``, ``add`` for the denominator,
``addcdiv`` for the update), AdamW 8 (plus the decoupled weight decay). Mixed precision
adds the master-weight copy back to 16 bits (1 op) and, for fp16, unscaling and the
finite check of the gradient (2 ops).

**Activation recomputation** (Chen et al., 2016; Korthikanti et al., 2022):
``full`` re-runs every block's forward (a transformer layer, a residual block: the
model's repeated blocks) just before the block's backward and keeps only the block
inputs; ``selective`` re-runs only the attention core (QK^T, softmax, dropout, PV),
whose Lq x Lk outputs dominate the activation memory. Recomputed ops are named
``NAME.recompute``, have phase ``backward``, and the block's gradient ops read them
instead of the forward's outputs. A fused ``attention`` op already recomputes its scores
in backward, so ``selective`` changes nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from .errors import HwsimError
from .precision import POLICIES, apply as apply_precision, policy
from .trace import Op, Operand, Workload

__all__ = ["RECOMPUTE", "Optimizer", "OPTIMIZERS", "optimizer", "parameters", "add_optimizer", "apply_recompute",
           "training_step"]

RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class Optimizer:
    name: str
    states: int             # fp32 state tensors per parameter
    ops_per_element: int


OPTIMIZERS = {"sgd": Optimizer("sgd", 1, 3), "adam": Optimizer("adam", 2, 7), "adamw": Optimizer("adamw", 2, 8)}


def optimizer(name: str) -> Optimizer:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise HwsimError(f"unknown optimizer {name!r}; one of {', '.join(OPTIMIZERS)}") from None


def parameters(wl: Workload) -> Mapping[str, dict]:
    params = wl.meta.get("parameters")
    if not params:
        raise HwsimError(f"{wl.name}: not a training trace (lower it with --train)")
    return params


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def add_optimizer(wl: Workload, name: str = "adam") -> Workload:
    """Append one update op per parameter (see the module docstring)."""
    opt = optimizer(name)
    pol = policy(wl.meta.get("precision", "fp32"))
    known = {op.name for op in wl.ops}
    per = opt.ops_per_element + (1 if pol.master_weights else 0) + (2 if pol.loss_scaling else 0)
    ops = list(wl.ops)
    for pname, info in parameters(wl).items():
        n = _numel(info["shape"])
        if n == 0:
            continue
        grad_bits = pol.weight_bits
        # read: gradient, fp32 parameter (the master copy under mixed precision), states
        reads = 1 + 1 + opt.states
        ops.append(Op(name=f"optimizer.{pname}", kind="elementwise", op=opt.name, phase="optimizer",
                      dims={"elements": n, "inputs": n * reads, "ops_per_element": per},
                      producers=tuple(p for p in info["grad"] if p in known),
                      operands=(Operand("input", (n,), grad_bits, "float"),
                                Operand("output", (n,), 32, "float"))))
    return replace(wl, ops=tuple(ops), meta={**wl.meta, "optimizer": opt.name})


# ---- recomputation ---------------------------------------------------------------------------------
def _attention_core(block_ops: list[Op], consumers: Mapping[str, list[str]], by_name: Mapping[str, Op]) -> set[str]:
    """The ops from each QK^T GEMM through the softmax to the PV GEMM (unfused attention)."""
    core: set[str] = set()
    inside = {op.name for op in block_ops}
    for op in block_ops:
        if op.op not in ("_softmax", "_safe_softmax", "softmax"):
            continue
        path = {op.name}
        frontier = [op.name]
        while frontier:                                   # back to the QK^T GEMM
            n = by_name[frontier.pop()]
            for p in n.producers:
                q = by_name[p]
                if q.phase == "forward" and q.name not in path and q.name in inside and q.kind != "norm":
                    path.add(q.name)
                    if q.kind != "gemm":
                        frontier.append(q.name)
        frontier = [op.name]
        while frontier:                                   # forward to the PV GEMM
            n = by_name[frontier.pop()]
            for c in consumers[n.name]:
                q = by_name[c]
                if q.phase == "forward" and q.name not in path:
                    path.add(q.name)
                    if q.kind != "gemm":
                        frontier.append(q.name)
        core |= {n for n in path if by_name[n].kind != "gemm" or by_name[n].operand("weight") is None}
    return core


def _owners(name: str, order: Mapping[str, int]) -> list[str]:
    """The blocks of ``order`` that op ``name`` lies in (it starts with the block's name and a
    dot), in that order: the block names that end where the op's name has a dot."""
    found = []
    i = name.find(".")
    while i >= 0:
        if name[:i] in order:
            found.append(name[:i])
        i = name.find(".", i + 1)
    return sorted(found, key=order.__getitem__) if len(found) > 1 else found


def apply_recompute(wl: Workload, mode: str) -> Workload:
    if mode not in RECOMPUTE:
        raise HwsimError(f"unknown recompute setting {mode!r}; one of {', '.join(RECOMPUTE)}")
    if mode == "none":
        return wl
    blocks = list(wl.meta.get("blocks") or [])
    if not blocks:
        raise HwsimError(f"{wl.name}: recompute needs the model's repeated blocks (none found); use --recompute none")
    by_name = {op.name: op for op in wl.ops}
    consumers = wl.consumers()
    order: dict[str, int] = {}
    for b in blocks:
        order.setdefault(b, len(order))
    members: dict[str, list[Op]] = {b: [] for b in order}     # each block's forward ops, in order
    for op in wl.ops:
        if op.phase == "forward":
            for b in _owners(op.name, order):
                members[b].append(op)
    chosen: dict[str, list[Op]] = {}
    for b, fwd in members.items():
        if mode == "selective":
            core = _attention_core(fwd, consumers, by_name)
            fwd = [op for op in fwd if op.name in core]
        if fwd:
            chosen[b] = fwd
    at = {b: i for i, b in enumerate(chosen)}
    ops: list[Op] = []
    done: set[str] = set()
    for op in wl.ops:
        if op.phase == "backward":
            for b in _owners(op.name, at):
                if b not in done:
                    done.add(b)
                    fwd = chosen[b]
                    names = {f.name for f in fwd}
                    for f in fwd:
                        ops.append(replace(f, name=f"{f.name}.recompute", phase="backward",
                                           producers=tuple(f"{p}.recompute" if p in names else p for p in f.producers)))
        ops.append(op)
    # a block's gradient ops read the recomputed activations (others keep what they saved)
    recomputed = {b: {f.name for f in fwd} for b, fwd in chosen.items()}

    def rewired(op: Op) -> Op:
        if op.phase != "backward" or op.name.endswith(".recompute"):
            return op
        owners = _owners(op.name, at)
        if not owners or not any(p in recomputed[owners[0]] for p in op.producers):
            return op
        names = recomputed[owners[0]]
        return replace(op, producers=tuple(f"{p}.recompute" if p in names else p for p in op.producers))
    return replace(wl, ops=tuple(rewired(op) for op in ops), meta={**wl.meta, "recompute": mode})


def training_step(wl: Workload, *, optimizer: str = "adam", recompute: str = "none",
                  precision: str = "fp32") -> Workload:
    """Recomputation, precision and the optimizer on a trace lowered with ``train=True``."""
    parameters(wl)
    if precision not in POLICIES:
        policy(precision)
    wl = apply_recompute(wl, recompute)
    wl = apply_precision(wl, precision)
    if policy(precision).loss_scaling:
        wl = _loss_scaling(wl)
    return add_optimizer(wl, optimizer)


def _loss_scaling(wl: Workload) -> Workload:
    """fp16: the loss is multiplied by the scale before backward (one element)."""
    ops = list(wl.ops)
    loss_ops = [i for i, op in enumerate(ops) if op.phase == "forward" and op.name.startswith("loss.")]
    if not loss_ops:
        return wl
    last = ops[loss_ops[-1]]
    scale = Op(name="loss.scale", kind="elementwise", op="mul", phase="forward", producers=(last.name,),
               dims={"elements": 1, "inputs": 1, "ops_per_element": 1},
               operands=(Operand("input", (1,), 32, "float"), Operand("output", (1,), 32, "float")))
    ops.insert(loss_ops[-1] + 1, scale)
    return replace(wl, ops=tuple(ops))

"""The state of one lowering: the module stack (module hooks name each op after its layer),
the parameters and the storage they live in, the events recorded so far and which tensors
each wrote (the graph), and the operands an op's tensors become."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Mapping

import torch

from ..progress import ON_OP
from ..trace import Operand
from .events import Event
from .kept import WeightFolder
from .metaops import MetaOps
from .tensors import DTYPE_BITS, View, nonzeros, real, storage_key, tensors

if TYPE_CHECKING:
    from ..zoo.lazy import Pager

__all__ = ["LOSS", "Recorder", "is_quant_helper"]


class _Loss(torch.nn.Module):
    """Stands on the module stack while the loss is computed, so its ops are ``loss.*``."""


LOSS = _Loss()


def is_quant_helper(mod: torch.nn.Module) -> bool:
    """Observers and fake-quant modules attached by QAT do not make a layer a container."""
    names = [t.__name__ for t in type(mod).__mro__]
    return any(n in ("FakeQuantizeBase", "ObserverBase") for n in names)


class Recorder:
    def __init__(self, model: torch.nn.Module, keep_weights: bool | str, density: float = 1.0):
        self.model = model
        self.keep_weights = keep_weights
        self.declared_density = density
        self.stack: list[tuple[str, torch.nn.Module]] = [("", model)]
        self.gemm_in_call: list[bool] = [False]
        self.params: dict[int, tuple[str, str]] = {}
        self.bits_of: dict[int, int] = {}
        self.events: list[Event] = []
        self.rnn_ctx: list[Any] = []
        self.silent = 0                    # > 0 inside a fused op: run, record nothing
        self.fresh = True                  # the op being dispatched writes new storage
        # storage -> [(view or None for all of it, ids of the events that wrote it)], oldest first
        self.made_by: dict[int, list[tuple[View | None, frozenset[int]]]] = {}
        # autograd: forward node sequence number -> the event it differentiates
        self.fwd_by_seq: dict[int, Event] = {}
        self.last_seq = torch._C._autograd._get_sequence_nr()
        self.paths = {id(m): p for p, m in model.named_modules()}
        # Storage of parameters and buffers: vector ops on these alone (prune's
        # weight_orig * weight_mask) prepare weights; they are not inference work.
        self.static: set[int] = set()
        self.late: list[list[tuple[int, str]]] = []   # per open module: parameters it made real (see pre_hook)
        self.on_param: list[Callable[[torch.Tensor], None]] = []     # told of each parameter made real late
        self.kept: WeightFolder | None = None  # where large kept weights go (set by lower)
        self.reloaded: dict[int, int] = {}  # storage the spill folder gave back -> events recorded then
        self.pager: Pager | None = None    # a training step's pager of weights (``Spill``)
        # a gradient computed over a private reloaded tensor (set by ``Spill`` while it runs)
        self.in_place: Callable[[Mapping[str, Any]], torch.Tensor | None] | None = None
        self.run = MetaOps()               # runs an op (on the meta device, once per distinct input)
        self.operands: dict[tuple[Any, ...], Operand] = {}    # operands without values, by what they hold
        for t in list(model.parameters()) + list(model.buffers()):
            k = storage_key(t)
            if k is not None:
                self.static.add(k)
        for path, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                k = storage_key(p)
                if k is not None:
                    self.params.setdefault(k, (path, pname))

    # ---- module hooks ------------------------------------------------------------
    def pre_hook(self, mod: torch.nn.Module, args: Any) -> None:
        path = self.paths.get(id(mod), type(mod).__name__.lower())
        self.stack.append((path, mod))
        self.gemm_in_call.append(False)
        # Parameters made real only now (a model materialised module by module): weights
        # from here on; forgotten after the forward if the module drops them again.
        late = []
        for pname, p in (mod.named_parameters(recurse=False) if isinstance(mod, torch.nn.Module) else ()):
            k = storage_key(p)
            if k is not None and k not in self.params:
                self.params[k] = (path, pname)
                self.static.add(k)
                late.append((k, pname))
                for seen in self.on_param:
                    seen(p)
        self.late.append(late)
        # Tensors a module computes for itself before forward (prune's weight_orig*mask).
        for pname in ("weight", "bias"):
            t = getattr(mod, pname, None)
            if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
                k = storage_key(t)
                if k is not None:
                    self.params[k] = (path, pname)
        if isinstance(mod, torch.nn.RNNBase):
            ctx = torch.backends.mkldnn.flags(enabled=False)
            ctx.__enter__()
            self.rnn_ctx.append(ctx)

    def post_hook(self, mod: torch.nn.Module, args: Any, out: Any) -> None:
        for k, pname in self.late.pop() if self.late else ():
            if storage_key(getattr(mod, pname)) != k:   # dropped: its storage may be reused by anything
                self.params.pop(k, None)
                self.static.discard(k)
        if isinstance(mod, torch.nn.RNNBase) and self.rnn_ctx:
            self.rnn_ctx.pop().__exit__(None, None, None)
        if len(self.stack) > 1:
            self.stack.pop()
            self.gemm_in_call.pop()

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Name the ops run inside after ``name`` (the loss)."""
        self.paths[id(LOSS)] = name
        self.pre_hook(LOSS, ())
        try:
            yield
        finally:
            self.post_hook(LOSS, (), None)

    def private(self, t: Any) -> bool:
        """Whether ``t`` is a saved tensor the spill folder gave back to the backward node now
        running (no event recorded since): a copy no one else reads, free to overwrite."""
        k = storage_key(t) if isinstance(t, torch.Tensor) else None
        return k is not None and self.reloaded.get(k) == len(self.events)

    # ---- operand helpers ---------------------------------------------------------
    def density(self, t: torch.Tensor) -> float:
        n = t.numel()
        if n == 0:
            return 0.0
        if t.is_meta:
            return self.declared_density
        return float(nonzeros(real(t))) / n

    def operand(self, role: str, t: torch.Tensor, shape: tuple[int, ...] | None = None,
                keep: bool | str = False) -> Operand:
        bits, dtype = DTYPE_BITS.get(t.dtype, (32, "float"))
        fq = self.bits_of.get(storage_key(t) or -1)
        if fq is not None:
            bits, dtype = fq, "int"
        values = None
        density = self.density(t)
        if keep and not t.is_meta and (keep is True or density < 1.0):    # "sparse": only with zeros
            # a view of the parameter where it is float32 and contiguous (no second copy of the
            # model in memory; nothing writes to the parameters once the step is recorded), or a
            # file written from it a slice at a time
            arr = real(t).detach().float().reshape(shape or tuple(t.shape))
            if self.kept is not None and arr.numel() * 4 >= self.kept.min_bytes:
                values = self.kept.write(arr)
            else:
                if self.pager is not None and self.pager.unit(storage_key(t) or -1) is not None:
                    arr = arr.clone()    # the weight's storage is emptied after its forward (and
                values = arr.numpy()     # .numpy() would pin it: numpy views a storage that cannot resize)
            values.flags.writeable = False
            return Operand(role=role, shape=tuple(shape or t.shape), bits=bits, dtype=dtype,
                           density=density, values=values)
        # one Operand (made and checked once) for every equal one: a model's N identical
        # blocks read tensors of the same shapes and widths (densities 1 == 1.0 and
        # 0.0 == -0.0 are told apart, as the trace writes them apart)
        key = (role, tuple(shape or t.shape), bits, dtype, type(density), math.copysign(1.0, density), density)
        op = self.operands.get(key)
        if op is None:
            op = self.operands[key] = Operand(role=role, shape=key[1], bits=bits, dtype=dtype, density=density)
        return op

    def weight_name(self, *candidates: Any) -> tuple[int, str] | None:
        """(position, name) of the first of ``candidates`` that is a parameter, named after
        its module (``path`` for a weight, ``path.param`` for another parameter)."""
        for i, t in enumerate(candidates):
            if isinstance(t, torch.Tensor):
                k = storage_key(t) or -1
                hit = self.params.get(k)
                if hit:
                    # a weight shared by several modules (a tied LM head) is named after the caller
                    path, mod = self.stack[-1]
                    own = getattr(mod, "weight", None)
                    if path and isinstance(own, torch.Tensor) and storage_key(own) == k:
                        return i, path
                    path, pname = hit
                    return i, path if pname == "weight" else f"{path}.{pname}" if path else pname
        return None

    def here(self, opname: str) -> tuple[str, str]:
        path, mod = self.stack[-1]
        leaf = all(is_quant_helper(c) for c in mod.children())
        # A leaf names its op after itself (relu, bn1), unless it is a GEMM layer whose
        # extra vector work (an LSTM's gates) then gets path.op.
        if leaf and path and not self.gemm_in_call[-1] and mod is not LOSS:
            return path, type(mod).__name__
        return (f"{path}.{opname}" if path else opname), type(mod).__name__

    def backward_of(self) -> Event | None | Literal[False]:
        """In backward: the forward event the running autograd node differentiates (None if
        it has none). False in forward."""
        node = torch._C._current_autograd_node()
        if node is None:
            return False
        return self.fwd_by_seq.get(node._sequence_nr())

    def grad_name(self, fwd: Event | None, suffix: str, fallback: str) -> tuple[str, str, str]:
        """(base, module, op) of a backward event."""
        if fwd is None:
            node = torch._C._current_autograd_node()
            return f"{node.name() if node else 'backward'}.{fallback}", "", fallback
        return f"{fwd.base}.{suffix}", fwd.module, f"{fwd.op}_{suffix}"

    # ---- the graph ---------------------------------------------------------------
    def add(self, ev: Event, reads: frozenset[int]) -> Event:
        ev.id = len(self.events)
        ev.producers = set(reads)
        self.events.append(ev)
        tick = ON_OP.get()
        if tick is not None:
            tick(ev.id + 1)
        return ev

    def reads(self, *values: Any) -> frozenset[int]:
        """Ids of the events that wrote the tensors among ``values`` (lists searched)."""
        out: set[int] = set()
        for t in tensors(values):
            k = storage_key(t)
            entries = self.made_by.get(k) if k else None
            if not entries:
                continue
            if entries[-1][0] is None:                   # the newest write covers the storage
                out |= entries[-1][1]
                continue
            view = View.of(t)
            for region, tag in reversed(entries):        # newest first
                if region is None or view is None or region.overlaps(view):
                    out |= tag
                    if region is None or region == view:
                        break                            # older writes are hidden by this one
        return frozenset(out)

    def wrote(self, out: Any, tag: frozenset[int]) -> None:
        for t in tensors((out,)):
            k = storage_key(t)
            if not k:
                continue
            # an op that mutates nothing wrote a new storage (whatever its strides): earlier
            # tags there belong to a freed tensor whose storage was reused
            view = None if self.fresh else View.of(t)
            if self.fresh or view is None or view.full:
                self.made_by[k] = [(None, tag)]
            else:                                        # an in-place op on part of a storage
                entries = [e for e in self.made_by.get(k, []) if e[0] != view]
                self.made_by[k] = entries + [(view, tag)]

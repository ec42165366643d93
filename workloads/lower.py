"""Lower a ``torch.nn.Module`` plus an example input into a :class:`~workloads.trace.Workload`.

The model runs once under a ``TorchDispatchMode`` that sees every aten (and
``quantized::``) operation with its real tensors, while module pre/post hooks keep a
stack of module paths so each op is named after the layer it belongs to. This handles
control flow, depthwise convs, ``torch.nn.utils.prune`` masks, dynamic/static int8
quantized modules (weights unpacked from their packed params), fake-quant/QAT modules
(bits from ``log2(quant_max - quant_min + 1)``) and LSTM/GRU (oneDNN is switched off
inside RNN modules only, so an LSTM becomes one input GEMM plus one recurrent GEMM per
time step).

**The graph** comes from tensor identity: every tensor an op writes is tagged with the op
that made it (views and copies carry their source's tag, in-place ops retag the part of
the storage they write), and an op's producers are the tags of the tensors it reads.
Consecutive repetitions of one block of identical ops (an RNN's time steps, a layer
applied in a loop) are folded into one block: into ``steps`` when a repetition reads an
earlier one's output (the loop-carried edge then lives in ``steps``), else ``copies``.

**Attention** runs through PyTorch's math backend (``attention="unfused"``): Q/K/V
projections, QK^T and PV as batched GEMMs with heads as copies, the mask, the softmax.
With ``attention="fused"`` every ``scaled_dot_product_attention`` call becomes one
``attention`` op (see ``workloads.trace``), forward and backward. PyTorch's
``nn.MultiheadAttention``/``nn.Transformer*`` fast path is switched off while lowering, so
stock layers take the same route.

**Training** (``train=True``): the model runs in train mode with gradients, a loss is
taken (``loss(output)``, default cross-entropy over the last dimension), and
``loss.backward()`` runs under the same dispatch mode. Each backward op is named after
the forward op it differentiates (autograd's sequence numbers link them): a GEMM's
input-gradient GEMM is ``NAME.dgrad``, its weight-gradient GEMM ``NAME.wgrad``, other
gradients ``NAME.grad``; all have phase ``backward``. The optimizer update and activation
recomputation are added by ``workloads.training``.

**Big models** lower on PyTorch's meta device (parameters with shapes and no data):
densities cannot be measured there and take the ``density`` given (1.0 by default).
Densities are otherwise measured from the real tensors: weights after masking,
activations as they arrive at the op.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .aten_ops import FAKE_QUANT, IGNORED_OPS, NON_GEMM_OPS
from .errors import HwsimError
from .progress import ON_OP
from .trace import Op, Operand, Workload, conv_output_size

__all__ = ["lower", "LoweringError", "NON_GEMM_OPS", "IGNORED_OPS", "ATTENTION_MODES"]

ATTENTION_MODES = ("unfused", "fused")


class LoweringError(HwsimError):
    """The model uses an operation the lowering cannot represent."""


_DTYPE_BITS = {
    torch.float32: (32, "float"), torch.float16: (16, "float"), torch.bfloat16: (16, "float"),
    torch.float64: (64, "float"), torch.int8: (8, "int"), torch.uint8: (8, "int"),
    torch.int16: (16, "int"), torch.int32: (32, "int"), torch.int64: (64, "int"),
    torch.bool: (1, "int"), torch.qint8: (8, "int"), torch.quint8: (8, "int"),
    torch.qint32: (32, "int"), torch.quint4x2: (4, "int"),
}
if hasattr(torch, "float8_e4m3fn"):
    _DTYPE_BITS[torch.float8_e4m3fn] = (8, "float")
    _DTYPE_BITS[torch.float8_e5m2] = (8, "float")


def _storage_key(t: torch.Tensor) -> int | None:
    """The identity of a tensor's storage (shared by its views; also on the meta device)."""
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError, AttributeError):
        return None


def _real(t: torch.Tensor) -> torch.Tensor:
    return t.dequantize() if t.is_quantized else t


@dataclass
class _Event:
    base: str            # name stem (module path or path.param)
    kind: str
    op: str
    dims: dict[str, int]
    operands: list[Operand]
    module: str
    copies: int = 1
    steps: int = 1
    id: int = -1
    producers: set[int] = field(default_factory=set)
    phase: str = "forward"
    has_weight: bool = False

    def signature(self) -> tuple:
        return (self.base, self.kind, self.op, self.phase, tuple(sorted(self.dims.items())),
                tuple((o.role, o.shape, o.bits, o.dtype) for o in self.operands))


@dataclass(frozen=True)
class _View:
    """The elements of a storage a tensor covers: offset, sizes and strides (in elements)."""

    offset: int
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    itemsize: int
    full: bool

    @classmethod
    def of(cls, t: torch.Tensor) -> "_View | None":
        try:
            n = t.untyped_storage().nbytes()
            full = (t.storage_offset() == 0 and t.is_contiguous() and t.numel() * t.element_size() == n)
            return cls(int(t.storage_offset()), tuple(t.shape), tuple(t.stride()), t.element_size(), full)
        except (RuntimeError, NotImplementedError):      # quantized and other opaque tensors
            return None

    def span(self) -> tuple[int, int]:
        lo = self.offset * self.itemsize
        hi = self.offset + sum((s - 1) * st for s, st in zip(self.sizes, self.strides) if s > 0)
        return lo, (hi + 1) * self.itemsize

    def runs(self) -> tuple[np.ndarray, int] | None:
        """The view as equal runs of contiguous bytes: (sorted run starts, run length), or None
        if it has more runs than is worth listing."""
        dims = [(s, st) for s, st in zip(self.sizes, self.strides) if s != 1]
        if any(s == 0 for s in self.sizes):
            return np.zeros(0, dtype=np.int64), 0
        run, inner = 1, len(dims)
        while inner and dims[inner - 1][1] == run:   # trailing dims that are contiguous
            run *= dims[inner - 1][0]
            inner -= 1
        outer = dims[:inner]
        if math.prod(s for s, _ in outer) > _MAX_RUNS:
            return None
        starts = np.array([self.offset], dtype=np.int64)
        for s, st in outer:
            starts = (starts[:, None] + np.arange(s, dtype=np.int64) * st).ravel()
        return np.sort(starts * self.itemsize), run * self.itemsize

    def overlaps(self, other: "_View") -> bool:
        (a0, a1), (b0, b1) = self.span(), other.span()
        if a1 <= b0 or b1 <= a0:
            return False
        ra, rb = self.runs(), other.runs()
        if ra is None or rb is None:
            return True                              # too many runs to list: the byte spans decide (conservative)
        (sa, la), (sb, lb) = ra, rb
        # a run [x, x + la) meets some run of the other iff one starts in (x - lb, x + la)
        lo = np.searchsorted(sb, sa - lb, side="right")
        hi = np.searchsorted(sb, sa + la, side="left")
        return bool((hi > lo).any())


_MAX_RUNS = 1 << 20   # runs up to which two strided views are compared exactly


class _Capture(TorchDispatchMode):
    def __init__(self, lowering: "_Lowering"):
        super().__init__()
        self.lw = lowering

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.lw.on_op(func, args, kwargs or {})


class _Loss(torch.nn.Module):
    """Stands on the module stack while the loss is computed, so its ops are ``loss.*``."""


class _Lowering:
    def __init__(self, model: torch.nn.Module, keep_weights: bool | str, density: float = 1.0):
        self.model = model
        self.keep_weights = keep_weights
        self.declared_density = density
        self.stack: list[tuple[str, torch.nn.Module]] = [("", model)]
        self.gemm_in_call: list[bool] = [False]
        self.params: dict[int, tuple[str, str]] = {}
        self.bits_of: dict[int, int] = {}
        self.events: list[_Event] = []
        self.rnn_ctx: list[Any] = []
        self.silent = 0                    # > 0 inside a fused op: run, record nothing
        self.fresh = True                  # the op being dispatched writes new storage
        # storage -> [(view or None for all of it, ids of the events that wrote it)], oldest first
        self.made_by: dict[int, list[tuple[_View | None, frozenset[int]]]] = {}
        # autograd: forward node sequence number -> the event it differentiates
        self.fwd_by_seq: dict[int, _Event] = {}
        self.last_seq = torch._C._autograd._get_sequence_nr()
        self.paths = {id(m): p for p, m in model.named_modules()}
        # Storage of parameters and buffers: vector ops on these alone (prune's
        # weight_orig * weight_mask) prepare weights; they are not inference work.
        self.static: set[int] = set()
        self.late: list[list] = []       # per open module: parameters it made real (see pre_hook)
        self.on_param: list[Callable[[torch.Tensor], None]] = []     # told of each parameter made real late
        self.keep_dir: Path | None = None  # kept weights of at least KEEP_ON_DISK_BYTES go there (lower)
        self.reloaded: dict[int, int] = {}  # storage the spill folder gave back -> events recorded then
        self.pager: Any = None             # a training step's pager of weights (``_Spill``)
        self.kept_files = 0
        for t in list(model.parameters()) + list(model.buffers()):
            k = _storage_key(t)
            if k is not None:
                self.static.add(k)
        for path, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                k = _storage_key(p)
                if k is not None:
                    self.params.setdefault(k, (path, pname))

    # ---- module hooks ------------------------------------------------------------
    def pre_hook(self, mod, args):
        path = self.paths.get(id(mod), type(mod).__name__.lower())
        self.stack.append((path, mod))
        self.gemm_in_call.append(False)
        # Parameters made real only now (a model materialised module by module): weights
        # from here on; forgotten after the forward if the module drops them again.
        late = []
        for pname, p in (mod.named_parameters(recurse=False) if isinstance(mod, torch.nn.Module) else ()):
            k = _storage_key(p)
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
                k = _storage_key(t)
                if k is not None:
                    self.params[k] = (path, pname)
        if isinstance(mod, torch.nn.RNNBase):
            ctx = torch.backends.mkldnn.flags(enabled=False)
            ctx.__enter__()
            self.rnn_ctx.append(ctx)

    def post_hook(self, mod, args, out):
        for k, pname in self.late.pop() if self.late else ():
            if _storage_key(getattr(mod, pname)) != k:   # dropped: its storage may be reused by anything
                self.params.pop(k, None)
                self.static.discard(k)
        if isinstance(mod, torch.nn.RNNBase) and self.rnn_ctx:
            self.rnn_ctx.pop().__exit__(None, None, None)
        if len(self.stack) > 1:
            self.stack.pop()
            self.gemm_in_call.pop()

    @contextlib.contextmanager
    def scope(self, name: str):
        """Name the ops run inside after ``name`` (the loss)."""
        self.paths[id(_LOSS)] = name
        self.pre_hook(_LOSS, ())
        try:
            yield
        finally:
            self.post_hook(_LOSS, (), None)

    def private(self, t: Any) -> bool:
        """Whether ``t`` is a saved tensor the spill folder gave back to the backward node now
        running (no event recorded since): a copy no one else reads, free to overwrite."""
        k = _storage_key(t) if isinstance(t, torch.Tensor) else None
        return k is not None and self.reloaded.get(k) == len(self.events)

    # ---- operand helpers ---------------------------------------------------------
    def density(self, t: torch.Tensor) -> float:
        n = t.numel()
        if n == 0:
            return 0.0
        if t.is_meta:
            return self.declared_density
        return float(torch.count_nonzero(_real(t))) / n

    def operand(self, role: str, t: torch.Tensor, shape=None, keep=False) -> Operand:
        bits, dtype = _DTYPE_BITS.get(t.dtype, (32, "float"))
        fq = self.bits_of.get(_storage_key(t) or -1)
        if fq is not None:
            bits, dtype = fq, "int"
        values = None
        density = self.density(t)
        if keep and not t.is_meta and (keep is True or density < 1.0):    # "sparse": only with zeros
            # a view of the parameter where it is float32 and contiguous (no second copy of the
            # model in memory; nothing writes to the parameters once the step is recorded), or a
            # file written from it a slice at a time
            arr = _real(t).detach().float().reshape(shape or tuple(t.shape))
            if self.keep_dir is not None and arr.numel() * 4 >= KEEP_ON_DISK_BYTES:
                values = self.to_disk(arr)
            else:
                if self.pager is not None and self.pager.unit(_storage_key(t) or -1) is not None:
                    arr = arr.clone()    # the weight's storage is emptied after its forward (and
                values = arr.numpy()     # .numpy() would pin it: numpy views a storage that cannot resize)
            values.flags.writeable = False
        return Operand(role=role, shape=tuple(shape or t.shape), bits=bits, dtype=dtype,
                       density=density, values=values)

    def to_disk(self, arr: torch.Tensor) -> np.ndarray:
        """``arr`` (float32) written to the kept-weights folder as a ``.npy`` file and mapped
        back read-only: the trace holds a large model's weights without holding them in
        memory (see ``lower``). It is written a slice at a time, so that a weight is never
        copied whole: a transposed view goes out in Fortran order."""
        assert self.keep_dir is not None
        self.kept_files += 1
        path = self.keep_dir / f"{self.kept_files}.npy"
        reverse = tuple(range(arr.dim() - 1, -1, -1))
        fortran = not arr.is_contiguous() and arr.dim() > 1 and arr.permute(*reverse).is_contiguous()
        flat = (arr.permute(*reverse) if fortran else arr.contiguous()).reshape(-1)
        buf = torch.empty(max(1, min(flat.numel(), KEEP_SLICE_BYTES // 4)), dtype=torch.float32)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": fortran,
                  "shape": tuple(arr.shape)}
        try:
            with open(path, "wb") as f:
                np.lib.format.write_array_header_1_0(f, header)
                for i in range(0, flat.numel(), buf.numel()):
                    n = min(buf.numel(), flat.numel() - i)
                    buf[:n].copy_(flat[i:i + n])          # one buffer, reused: no slice copies left on the heap
                    f.write(memoryview(buf[:n].numpy()))
        except OSError as e:
            raise HwsimError(f"lowering with kept weights: could not write them to {self.keep_dir} ({e}); free space "
                             "there or point TMPDIR at a larger disk") from None
        return np.load(path, mmap_mode="r")

    def weight_name(self, *tensors: torch.Tensor) -> tuple[int, str] | None:
        for i, t in enumerate(tensors):
            if isinstance(t, torch.Tensor):
                k = _storage_key(t) or -1
                hit = self.params.get(k)
                if hit:
                    # a weight shared by several modules (a tied LM head) is named after the caller
                    path, mod = self.stack[-1]
                    own = getattr(mod, "weight", None)
                    if path and isinstance(own, torch.Tensor) and _storage_key(own) == k:
                        return i, path
                    path, pname = hit
                    return i, path if pname == "weight" else f"{path}.{pname}" if path else pname
        return None

    def here(self, opname: str) -> tuple[str, str]:
        path, mod = self.stack[-1]
        leaf = all(_is_quant_helper(c) for c in mod.children())
        # A leaf names its op after itself (relu, bn1), unless it is a GEMM layer whose
        # extra vector work (an LSTM's gates) then gets path.op.
        if leaf and path and not self.gemm_in_call[-1] and mod is not _LOSS:
            return path, type(mod).__name__
        return (f"{path}.{opname}" if path else opname), type(mod).__name__

    def backward_of(self) -> _Event | None | bool:
        """In backward: the forward event the running autograd node differentiates (None if
        it has none). False in forward."""
        node = torch._C._current_autograd_node()
        if node is None:
            return False
        return self.fwd_by_seq.get(node._sequence_nr())

    def grad_name(self, fwd: _Event | None, suffix: str, fallback: str) -> tuple[str, str, str]:
        """(base, module, op) of a backward event."""
        if fwd is None:
            node = torch._C._current_autograd_node()
            return f"{node.name() if node else 'backward'}.{fallback}", "", fallback
        return f"{fwd.base}.{suffix}", fwd.module, f"{fwd.op}_{suffix}"

    # ---- the graph ---------------------------------------------------------------
    def add(self, ev: _Event, reads: frozenset[int]) -> _Event:
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
        for t in _tensors(values):
            k = _storage_key(t)
            entries = self.made_by.get(k) if k else None
            if not entries:
                continue
            view = _View.of(t)
            for region, tag in reversed(entries):        # newest first
                if region is None or view is None or region.overlaps(view):
                    out |= tag
                    if region is None or region == view:
                        break                            # older writes are hidden by this one
        return frozenset(out)

    def wrote(self, out: Any, tag: frozenset[int]) -> None:
        for t in _tensors((out,)):
            k = _storage_key(t)
            if not k:
                continue
            view = _View.of(t)
            # an op that mutates nothing wrote a new storage (whatever its strides): earlier
            # tags there belong to a freed tensor whose storage was reused
            if self.fresh or view is None or view.full:
                self.made_by[k] = [(None, tag)]
            else:                                        # an in-place op on part of a storage
                entries = [e for e in self.made_by.get(k, []) if e[0] != view]
                self.made_by[k] = entries + [(view, tag)]

    # ---- the dispatch handler ----------------------------------------------------
    def on_op(self, func, args, kwargs):
        if self.silent:
            return func(*args, **kwargs)
        reads = self.reads(args, kwargs)
        n_events = len(self.events)
        self.fresh = not func._schema.is_mutable
        out = self.dispatch(func, args, kwargs, reads)
        # a forward op that made an autograd node: its backward ops will be named after it
        seq = torch._C._autograd._get_sequence_nr()
        if seq != self.last_seq and torch._C._current_autograd_node() is None:
            if len(self.events) > n_events:
                self.fwd_by_seq[seq - 1] = self.events[-1]
            elif len(reads) == 1:                        # a view: its gradient belongs to its source
                self.fwd_by_seq[seq - 1] = self.events[next(iter(reads))]
        self.last_seq = seq
        return out

    def dispatch(self, func, args, kwargs, reads: frozenset[int]):
        schema = func._schema
        full = schema.name  # e.g. aten::convolution, quantized::linear
        ns, _, short = full.partition("::")
        key = short if ns == "aten" else full
        bound = _bind(schema, args, kwargs)

        if key in FAKE_QUANT:
            out = func(*args, **kwargs)
            qmin, qmax = bound.get("quant_min"), bound.get("quant_max")
            res = out[0] if isinstance(out, (tuple, list)) else out
            src = next((v for v in bound.values() if isinstance(v, torch.Tensor)), None)
            if qmin is not None and qmax is not None and isinstance(res, torch.Tensor):
                k = _storage_key(res)
                if k is not None:
                    self.bits_of[k] = max(1, math.ceil(math.log2(int(qmax) - int(qmin) + 1)))
                    hit = self.params.get(_storage_key(src) or -1) if src is not None else None
                    if hit:  # a fake-quantised weight is still that weight
                        self.params[k] = hit
            self.wrote(out, reads)
            return out

        if key == "convolution_backward":
            return self.conv_backward(func, args, kwargs, bound)
        if key in _SDPA_KERNELS:
            return self.sdpa_kernel(func, args, kwargs, bound, key.endswith("_backward"))
        handler = _GEMM_HANDLERS.get(key)
        if handler is not None:
            pre = handler(self, bound)  # inspects inputs before the op may mutate them
            out = func(*args, **kwargs)
            res = out[0] if isinstance(out, (tuple, list)) else out
            ev = self.add(pre(res), reads)
            self.wrote(out, frozenset((ev.id,)))
            self.gemm_in_call[-1] = True
            return out
        if key in NON_GEMM_OPS:
            return self.vector(func, args, kwargs, bound, key, reads)
        if key in ("quantized_lstm", "quantized_gru"):
            last = self.quantized_rnn(bound, reads)
            self.gemm_in_call[-1] = True
            out = func(*args, **kwargs)
            self.wrote(out, frozenset((last,)))
            return out
        if key in IGNORED_OPS or ns == "prim":
            out = func(*args, **kwargs)
            if schema.is_mutable:        # in-place fills and copies carry what they read
                self.wrote(out, reads)
            else:                        # copies carry their source's tag; views alias it already
                inputs = {_storage_key(t) for t in _tensors((args, kwargs))}
                self.wrote([t for t in _tensors((out,)) if _storage_key(t) not in inputs], reads)
            return out
        if key == "_native_multi_head_attention":
            raise LoweringError("aten::_native_multi_head_attention is the fast path of nn.MultiheadAttention, "
                                "which lowering switches off; call the module rather than the op")
        path, mod = self.stack[-1]
        raise LoweringError(
            f"unsupported operation {full} in module {path or '<root>'!r} ({type(mod).__name__}); "
            "hwsim lowers convolutions, matmuls, attention, RNNs and the common element-wise, pooling, "
            "normalisation and softmax ops and their gradients. Add it to workloads.aten_ops.NON_GEMM_OPS "
            "(as a vector op) or IGNORED_OPS (if it moves no data) to lower this model")

    def vector(self, func, args, kwargs, bound, key: str, reads: frozenset[int]):
        ins = [v for v in bound.values() if isinstance(v, torch.Tensor)]
        if key in ("cat", "stack", "quantized::cat"):
            ins = [t for v in bound.values() if isinstance(v, (list, tuple)) for t in v
                   if isinstance(t, torch.Tensor)]
        in_ops = [self.operand("input" if i == 0 else "input2", t) for i, t in enumerate(ins[:2])]
        in_elems = sum(t.numel() for t in ins)
        out = _log_softmax_backward_in_place(bound) if key == "_log_softmax_backward_data" \
            and self.private(bound.get("output")) else None
        if out is None:
            out = func(*args, **kwargs)
        if ins and all(_storage_key(t) in self.static for t in ins):
            self.wrote(out, frozenset())      # a weight prepared from parameters (prune's mask)
            return out
        res = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(res, torch.Tensor):
            self.wrote(out, reads)
            return out
        kind, per = NON_GEMM_OPS[key]
        if kind in ("pool", "activation") and ins:  # max/relu of k-bit values stay k-bit
            b = self.bits_of.get(_storage_key(ins[0]) or -1)
            if b is not None:
                self.bits_of[_storage_key(res) or -1] = b
        if kind == "pool" and res.numel():
            per = max(1, round((ins[0].numel() if ins else res.numel()) / res.numel()))
        opname = key.replace("quantized::", "q_").rstrip("_")
        fwd = self.backward_of()
        if fwd is False:
            name, mtype = self.here(opname)
            phase, op = "forward", opname
        else:
            name, mtype, _ = self.grad_name(fwd or None, "grad", opname)
            phase, op = "backward", opname
        ev = self.add(_Event(
            base=name, kind=kind, op=op, dims={"elements": res.numel(), "inputs": in_elems, "ops_per_element": per},
            operands=in_ops + [self.operand("output", res)], module=mtype, phase=phase), reads)
        self.wrote(out, frozenset((ev.id,)))
        return out

    # ---- GEMM-like ops -----------------------------------------------------------
    def quantized_rnn(self, b, reads: frozenset[int]) -> int:
        """A dynamically quantized LSTM/GRU runs as one fused op; rebuild its GEMMs from
        the module: per layer one input GEMM over all steps and one recurrent GEMM per step,
        int8 weights, activations quantized to 8 bits at run time. Hidden-state densities
        cannot be observed inside the fused op and are recorded as dense. Returns the id of
        the last layer's cell (what the op's outputs come from)."""
        path, mod = self.stack[-1]
        if getattr(mod, "bidirectional", False):
            raise LoweringError(f"{path}: bidirectional quantized RNNs are not supported")
        x = b["input"]
        T, B = (x.shape[1], x.shape[0]) if getattr(mod, "batch_first", False) else (x.shape[0], x.shape[1])
        weights = mod.get_weight()
        gates = 4 if getattr(mod, "mode", "LSTM") == "LSTM" else 3
        H = mod.hidden_size
        below = reads                 # what layer 0's input GEMM reads
        cell = None
        for layer in range(mod.num_layers):
            gemm_ids = []
            for kind in ("ih", "hh"):
                w = weights[f"weight_{kind}_l{layer}"]
                K = int(w.shape[1])
                M, steps = (T * B, 1) if kind == "ih" else (B, T)
                dens = self.density(x) if (kind == "ih" and layer == 0) else 1.0
                ev = self.add(_Event(
                    base=f"{path}.weight_{kind}_l{layer}", kind="gemm", op="linear",
                    dims={"M": M, "N": gates * H, "K": K}, module=type(mod).__name__, steps=steps,
                    operands=[Operand("input", (M, K), 8, "int", dens),
                              self.operand("weight", w, keep=self.keep_weights),
                              Operand("output", (M, gates * H), 32, "float", 1.0)], has_weight=True),
                    below if kind == "ih" else reads)   # step 0's hidden state is the op's input
                gemm_ids.append(ev.id)
            cell = self.add(_Event(
                base=f"{path}.cell_l{layer}", kind="activation", op="rnn_cell", module=type(mod).__name__,
                dims={"elements": B * H, "inputs": B * gates * H, "ops_per_element": 3 * gates}, steps=T,
                operands=[Operand("input", (B, gates * H), 32, "float", 1.0),
                          Operand("output", (B, H), 32, "float", 1.0)]), frozenset(gemm_ids))
            below = frozenset((cell.id,))
        assert cell is not None
        return cell.id

    def gemm_event(self, opname: str, a: torch.Tensor, b: torch.Tensor, batch: int = 1,
                   w_override: torch.Tensor | None = None, w_name: str | None = None):
        """A (batched) matmul a[..., M, K] @ b[..., K, N]; one side may be a weight."""
        M, K = int(a.shape[-2]), int(a.shape[-1])
        N = int(b.shape[-1])
        hit = self.weight_name(b) if w_name is None else (0, w_name)
        a_op = self.operand("input", a, shape=(M, K))           # one instance (the trace's convention)
        if w_override is not None:  # already in (N, K) layout
            b_op = self.operand("weight", w_override, keep=self.keep_weights)
        elif hit:  # a weight is stored out x in, (N, K), like nn.Linear
            b_op = self.operand("weight", b.transpose(-1, -2), keep=self.keep_weights)
        else:  # activation x activation: the right operand as it is, (K, N)
            b_op = self.operand("input2", b, shape=(K, N))
        fwd = self.backward_of()
        phase = "forward"
        if fwd is not False:                 # a gradient GEMM: named after its forward op
            suffix = "dgrad" if hit else "wgrad" if fwd and fwd.has_weight else "grad"
            base, mtype, opname = self.grad_name(fwd or None, suffix, opname)
            phase = "backward"
        elif hit and hit[1]:
            base, mtype = hit[1], type(self.stack[-1][1]).__name__
        else:
            base, mtype = self.here(opname)

        def finish(out: torch.Tensor) -> _Event:
            return _Event(base=base, kind="gemm", op=opname, dims={"M": M, "N": N, "K": K},
                          operands=[a_op, b_op, self.operand("output", out, shape=(M, N))], module=mtype,
                          copies=batch, phase=phase, has_weight=bool(hit) and phase == "forward")
        return finish

    def conv_event(self, opname, x, w, stride, padding, dilation, groups, w_name=None):
        if x.dim() == 3:  # conv1d as a conv2d with H = 1
            x4 = x.unsqueeze(2)
            w = w.unsqueeze(2)
            stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
        elif x.dim() == 4:
            x4 = x
        else:
            raise LoweringError(f"{opname}: only 1-D and 2-D convolutions are supported, "
                                f"got a {x.dim() - 2}-D one in module {self.stack[-1][0]!r}")
        N, C, H, W = (int(s) for s in x4.shape)
        K, _, R, S = (int(s) for s in w.shape)
        sh, sw = (int(s) for s in stride)
        ph, pw = (int(s) for s in padding)
        dh, dw = (int(s) for s in dilation)
        P, Q = conv_output_size(H, R, sh, ph, dh), conv_output_size(W, S, sw, pw, dw)
        hit = (0, w_name) if w_name else self.weight_name(w)
        base, mtype = (hit[1], type(self.stack[-1][1]).__name__) if hit and hit[1] else self.here(opname)
        in_op = self.operand("input", x4)
        w_op = self.operand("weight", w, keep=self.keep_weights)
        dims = {"N": N, "C": C, "H": H, "W": W, "K": K, "R": R, "S": S, "P": P, "Q": Q,
                "stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw, "dil_h": dh, "dil_w": dw,
                "groups": int(groups)}

        def finish(out: torch.Tensor) -> _Event:
            return _Event(base=base, kind="conv", op=opname, dims=dims, module=mtype, has_weight=True,
                          operands=[in_op, w_op, self.operand("output", out.reshape(N, K, P, Q))])
        return finish

    def conv_backward(self, func, args, kwargs, b):
        """A convolution's gradients as GEMMs on its im2col view (M = N*P*Q, Kd = C/g*R*S):
        the input gradient dY[M, K/g] @ W^T (Kd columns), the weight gradient
        X_col^T[Kd, M] @ dY (K/g columns), each once per group; the bias gradient a sum."""
        gy, x, w = b["grad_output"], b["input"], b["weight"]
        mask = list(b.get("output_mask") or (True, True, True))
        if b.get("transposed"):
            raise LoweringError("the gradient of a transposed convolution is not supported")
        fwd = self.backward_of() or None
        g = int(b["groups"])
        if x.dim() == 3:
            N, C, H, W, K, R, S = x.shape[0], x.shape[1], 1, x.shape[2], w.shape[0], 1, w.shape[2]
            P, Q = 1, gy.shape[2]
        else:
            N, C, H, W = (int(s) for s in x.shape)
            K, _, R, S = (int(s) for s in w.shape)
            P, Q = int(gy.shape[2]), int(gy.shape[3])
        M, Kd, Ng = N * P * Q, C // g * R * S, K // g
        out = func(*args, **kwargs)
        gx, gw, gb = out
        tags: list[frozenset[int]] = [frozenset(), frozenset(), frozenset()]
        specs = []
        if mask[0] and gx is not None:
            specs.append((0, "dgrad", {"M": M, "N": Kd, "K": Ng}, self.reads(gy),
                          [self.operand("input", gy), self.operand("weight", w), self.operand("output", gx)]))
        if mask[1] and gw is not None:
            specs.append((1, "wgrad", {"M": Kd, "N": Ng, "K": M}, self.reads(gy, x),
                          [self.operand("input", x), self.operand("input2", gy), self.operand("output", gw)]))
        for i, suffix, dims, reads, operands in specs:
            base, mtype, op = self.grad_name(fwd, suffix, "conv2d")
            ev = self.add(_Event(base=base, kind="gemm", op=op, dims=dims, operands=operands, module=mtype,
                                 copies=g, phase="backward"), reads)
            tags[i] = frozenset((ev.id,))
        if len(mask) > 2 and mask[2] and gb is not None:
            base, mtype, _ = self.grad_name(fwd, "bgrad", "sum")
            ev = self.add(_Event(base=base, kind="elementwise", op="sum", module=mtype, phase="backward",
                                 dims={"elements": K, "inputs": N * K * P * Q, "ops_per_element": M},
                                 operands=[self.operand("input", gy), self.operand("output", gb)]), self.reads(gy))
            tags[2] = frozenset((ev.id,))
        for t, tag in zip(out, tags):
            if t is not None:
                self.wrote(t, tag)
        return out

    # ---- fused attention ---------------------------------------------------------
    def sdpa_kernel(self, func, args, kwargs, b, backward: bool):
        """One of PyTorch's fused attention kernels (reached when a module calls attention
        from inside another function): one ``attention`` op, forward or backward."""
        out = func(*args, **kwargs)
        q, k, v = b["query"], b["key"], b["value"]
        causal = bool(b.get("is_causal", False))
        if backward:
            fwd = self.backward_of() or None
            base = f"{fwd.base}.grad" if fwd else "attention.grad"
            ev = self.attention_event(q, k, v, out, causal, True, self.reads(args, kwargs), base=base)
        else:
            ev = self.attention_event(q, k, v, out, causal, False, self.reads(q, k, v, b.get("attn_mask")))
        self.wrote(out, frozenset((ev.id,)))
        return out

    def attention(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        """``scaled_dot_product_attention`` as one fused ``attention`` op (and one for its
        gradient); the math inside runs without being recorded."""
        return _FusedAttention.apply(self, q, k, v, attn_mask, dropout_p, bool(is_causal), scale, bool(enable_gqa))

    def attention_event(self, q, k, v, out, causal: bool, backward: bool, reads: frozenset[int],
                        base: str | None = None) -> _Event:
        B = math.prod(int(s) for s in q.shape[:-3]) if q.dim() > 3 else 1
        H, Lq, E = (int(s) for s in q.shape[-3:])
        Hkv, Lk, Ev = int(k.shape[-3]), int(k.shape[-2]), int(v.shape[-1])
        dims = {"B": B, "H": H, "Hkv": Hkv, "Lq": Lq, "Lk": Lk, "E": E, "Ev": Ev,
                "causal": int(causal), "backward": int(backward)}
        if base is None:
            base, mtype = self.here("attention")
        else:
            stem = self.events[next(iter(reads))] if reads else None
            mtype = stem.module if stem is not None else ""
        self.silent += 1             # measuring densities runs ops too: not part of the model
        try:
            ops = [self.operand("input", q), self.operand("input2", k), self.operand("input3", v),
                   self.operand("output", out if isinstance(out, torch.Tensor) else out[0])]
        finally:
            self.silent -= 1
        return self.add(_Event(base=base, kind="attention", op="sdpa_grad" if backward else "sdpa", dims=dims,
                               operands=ops, module=mtype, phase="backward" if backward else "forward"), reads)


class _FusedAttention(torch.autograd.Function):
    """Fused attention for the lowering: computes with the math kernel, records one op."""

    @staticmethod
    def forward(ctx, lw, q, k, v, mask, dropout_p, causal, scale, gqa):
        reads = lw.reads(q, k, v, mask)
        lw.silent += 1
        try:
            with torch.no_grad():
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal,
                                                     scale=scale, enable_gqa=gqa)
        finally:
            lw.silent -= 1
        ev = lw.attention_event(q, k, v, out, causal, False, reads)
        lw.wrote(out, frozenset((ev.id,)))
        ctx.lw, ctx.ev, ctx.args = lw, ev, (mask, dropout_p, causal, scale, gqa)
        ctx.save_for_backward(q, k, v)
        return out

    @staticmethod
    def backward(ctx, grad):
        lw, ev = ctx.lw, ctx.ev
        q, k, v = ctx.saved_tensors
        mask, dropout_p, causal, scale, gqa = ctx.args
        reads = lw.reads(q, k, v, grad) | {ev.id}
        lw.silent += 1
        try:
            with torch.enable_grad():
                qq, kk, vv = (t.detach().requires_grad_(True) for t in (q, k, v))
                out = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask, dropout_p=dropout_p,
                                                     is_causal=causal, scale=scale, enable_gqa=gqa)
                dq, dk, dv = torch.autograd.grad(out, (qq, kk, vv), grad)
        finally:
            lw.silent -= 1
        bev = lw.attention_event(q, k, v, dq, causal, True, frozenset(reads), base=f"{ev.base}.grad")
        lw.wrote((dq, dk, dv), frozenset((bev.id,)))
        return None, dq, dk, dv, None, None, None, None, None


class _FusedSDPA(TorchFunctionMode):
    def __init__(self, lw: _Lowering):
        super().__init__()
        self.lw = lw

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and not self.lw.silent:
            return self.lw.attention(*args, **kwargs)
        return func(*args, **kwargs)


_LOSS = _Loss()
_SDPA_KERNELS = frozenset(f"_scaled_dot_product_{k}_attention{suffix}" for k in ("flash", "efficient", "cudnn")
                          for suffix in ("", "_backward")) | {"_scaled_dot_product_flash_attention_for_cpu",
                                                                "_scaled_dot_product_flash_attention_for_cpu_backward"}


def _log_softmax_backward_in_place(b: Mapping[str, Any]) -> torch.Tensor | None:
    """A log-softmax's input gradient written over ``output``, a saved tensor that the
    spill folder (``_Spill``) gave back to this backward node and that nothing else reads
    (the caller checks, :meth:`_Lowering.private`). A language model's loss otherwise
    holds three vocabulary-sized tensors at once (the gradient, the reloaded output and
    the result; 200 MB each for GPT-2 at 1,024 tokens), the peak of its training step.
    The op itself runs on blocks of rows (it works row by row, so the values are the same
    to the bit) and each block is copied over the rows of ``output`` it read. None where
    the output is not a contiguous tensor of the gradient's shape reduced over its last
    dimension: the op then runs as it is."""
    grad, output, dim = b.get("grad_output"), b.get("output"), b.get("dim")
    if not (isinstance(grad, torch.Tensor) and isinstance(output, torch.Tensor) and isinstance(dim, int)
            and output.dim() >= 1 and dim % output.dim() == output.dim() - 1 and output.is_contiguous()
            and output.dtype == grad.dtype and output.shape == grad.shape):
        return None
    width = output.shape[-1]
    rows_out, rows_grad = output.view(-1, width), grad.reshape(-1, width)
    step = max(1, _LOG_SOFTMAX_BLOCK_BYTES // max(1, width * output.element_size()))
    for r in range(0, rows_out.shape[0], step):
        rows_out[r:r + step] = torch.ops.aten._log_softmax_backward_data(
            rows_grad[r:r + step], rows_out[r:r + step], 1, b["input_dtype"])
    return output


# Rows of a log-softmax gradient computed at a time over a reloaded output (policy: a few MB)
_LOG_SOFTMAX_BLOCK_BYTES = 8 << 20


def _is_quant_helper(mod: torch.nn.Module) -> bool:
    """Observers and fake-quant modules attached by QAT do not make a layer a container."""
    names = [t.__name__ for t in type(mod).__mro__]
    return any(n in ("FakeQuantizeBase", "ObserverBase") for n in names)


def _bind(schema, args, kwargs) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for a, v in zip(schema.arguments, args):
        d[a.name] = v
    d.update(kwargs)
    return d


def _h_conv(lw: _Lowering, b):
    if b.get("transposed"):
        raise LoweringError(f"transposed convolution in module {lw.stack[-1][0]!r} is not supported; "
                            "express it as a convolution over the upsampled input")
    return lw.conv_event("conv2d", b["input"], b["weight"], b["stride"], b["padding"], b["dilation"],
                         b["groups"])


def _h_mm(lw, b):
    a, m = (b["self"], b["mat2"]) if "mat2" in b else (b["mat1"], b["mat2"])
    return lw.gemm_event("matmul", a, m)


def _h_addmm(lw, b):
    return lw.gemm_event("linear", b["mat1"], b["mat2"])


def _h_bmm(lw, b):
    a, m = (b["self"], b["mat2"]) if "self" in b else (b["batch1"], b["batch2"])
    return lw.gemm_event("bmm", a, m, batch=int(a.shape[0]))


def _h_qlinear(lw, b):
    x = b["X"] if "X" in b else next(v for v in b.values() if isinstance(v, torch.Tensor))
    packed = b.get("W_prepack", b.get("packed_weight"))
    w, _bias = packed.unpack()
    Kf = int(w.shape[1])
    x2 = x.reshape(-1, Kf)
    path = lw.stack[-1][0]
    fin = lw.gemm_event("linear", x2, _real(w).t(), w_override=w, w_name=path or "linear")

    def finish(out):
        ev = fin(out.reshape(x2.shape[0], -1))
        if not x.is_quantized:  # dynamic quantization: activations quantized to 8 bits at run time
            ev.operands[0] = Operand("input", ev.operands[0].shape, 8, "int", ev.operands[0].density)
        return ev
    return finish


def _h_qconv(lw, b):
    x = b["qx"] if "qx" in b else b[next(iter(b))]
    packed = b["packed_weight"]
    w, _bias = packed.unpack()
    return lw.conv_event("conv2d", x, w, packed.stride(), packed.padding(), packed.dilation(),
                         packed.groups(), w_name=lw.stack[-1][0] or "conv")


_GEMM_HANDLERS: dict[str, Callable] = {
    "convolution": _h_conv, "mm": _h_mm, "addmm": _h_addmm, "bmm": _h_bmm, "baddbmm": _h_bmm,
    "quantized::linear": _h_qlinear, "quantized::linear_relu": _h_qlinear,
    "quantized::linear_dynamic": _h_qlinear, "quantized::linear_relu_dynamic": _h_qlinear,
    "quantized::conv2d": _h_qconv, "quantized::conv2d_relu": _h_qconv,
    "quantized::conv1d": _h_qconv, "quantized::conv1d_relu": _h_qconv,
}


# ---- folding of repeated blocks ----------------------------------------------------------
def _fold(events: list[_Event], alias: dict[int, int], max_period: int = 64) -> list[_Event]:
    """Fold consecutive repetitions of a block of identical ops into one block.

    An LSTM over T steps emits the same per-step block T times; it becomes one block whose
    ops have ``steps`` multiplied by T, because step t+1 reads step t's output. Repetitions
    that read nothing of each other (the same layer on independent inputs) multiply
    ``copies`` instead. Densities are averaged over the repetitions. ``alias`` maps the id
    of every folded-away event to the event that stands for it.
    """
    sigs_all: dict[tuple, int] = {}
    sig = [sigs_all.setdefault(e.signature(), len(sigs_all)) for e in events]
    out: list[_Event] = []
    i, n = 0, len(events)
    while i < n:
        best_p, best_r = 1, 1
        for p in range(1, min(max_period, (n - i) // 2) + 1):
            if sig[i + p] != sig[i]:
                continue
            block = sig[i:i + p]
            r = 1
            while sig[i + r * p:i + (r + 1) * p] == block:
                r += 1
            if r >= 2 and r * p > best_r * best_p:
                best_p, best_r = p, r
        block = events[i:i + best_p]
        if best_r > 1:
            its = [events[i + k * best_p:i + (k + 1) * best_p] for k in range(best_r)]
            where = {e.id: (k, j) for k, it in enumerate(its) for j, e in enumerate(it)}
            dependent = any(where.get(_resolve(alias, x), (k, 0))[0] < k
                            for k, it in enumerate(its) for e in it for x in e.producers)
            merged = []
            for j, e in enumerate(block):
                reps = [it[j] for it in its]
                prods: set[int] = set()
                for k, x in ((k, _resolve(alias, x)) for k, r in enumerate(reps) for x in r.producers):
                    if x not in where:
                        prods.add(x)                      # from outside the block
                    elif where[x][0] == k and where[x][1] < j:
                        prods.add(block[where[x][1]].id)  # earlier in the same repetition
                    # else: the loop-carried edge, which 'steps' expresses
                for r in reps[1:]:
                    alias[r.id] = e.id
                dens = [sum(x.operands[k].density for x in reps) / best_r for k in range(len(e.operands))]
                ops = [Operand(o.role, o.shape, o.bits, o.dtype, d, o.values, o.codebook)
                       for o, d in zip(e.operands, dens)]
                copies, steps = (e.copies, e.steps * best_r) if dependent else (e.copies * best_r, e.steps)
                merged.append(_Event(e.base, e.kind, e.op, e.dims, ops, e.module, copies, steps, e.id, prods,
                                     e.phase, e.has_weight))
            block = _fold(merged, alias, max_period) if best_p > 1 else merged
        out.extend(block)
        i += best_p * best_r
    return out


def _resolve(alias: dict[int, int], x: int) -> int:
    while x in alias:
        x = alias[x]
    return x


def _to_ops(events: list[_Event], alias: dict[int, int]) -> tuple[list[Op], dict[int, str]]:
    used: dict[str, int] = {}
    names: dict[int, str] = {}
    ops = []
    for e in events:
        name = e.base
        if name in used:
            used[name] += 1
            name = f"{e.base}_{used[e.base]}"
            while name in used:
                used[e.base] += 1
                name = f"{e.base}_{used[e.base]}"
        used.setdefault(name, 0)
        names[e.id] = name
        prods = sorted({_resolve(alias, x) for x in e.producers} - {e.id})
        ops.append(Op(name=name, kind=e.kind, op=e.op, dims=e.dims, operands=tuple(e.operands),
                      copies=e.copies, steps=e.steps, producers=tuple(names[x] for x in prods if x in names),
                      phase=e.phase, module=e.module))
    return ops, names


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _tensors(v)
        elif isinstance(v, dict):
            yield from _tensors(tuple(v.values()))


def default_loss(output: Any) -> torch.Tensor:
    """Cross-entropy over the last dimension against class 0 (a classifier's or a language
    model's head), or the mean square of a single-value output."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, torch.Tensor):
        raise HwsimError("training needs a tensor output (or a loss function) to differentiate")
    if out.dim() >= 2 and out.shape[-1] > 1 and out.is_floating_point():
        logits = out.reshape(-1, out.shape[-1])
        return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=out.device))
    return out.float().pow(2).mean()


def blocks_of(model: torch.nn.Module) -> list[str]:
    """The repeated blocks of a model (transformer layers, residual blocks): the children
    of every ModuleList (of any length) or Sequential (of two or more) holding non-leaf
    modules of one class."""
    out = []
    for path, mod in model.named_modules():
        if isinstance(mod, (torch.nn.ModuleList, torch.nn.Sequential)):
            kids = list(mod.named_children())
            types = {type(c) for _, c in kids}
            least = 1 if isinstance(mod, torch.nn.ModuleList) else 2
            if len(kids) >= least and len(types) == 1 and any(True for _ in kids[0][1].children()):
                out.extend(f"{path}.{n}" if path else n for n, _ in kids)
    return out


def lower(model: torch.nn.Module, example_input: Any, name: str | None = None, *,
          batch: int | None = None, keep_weights: bool | str = False, source: str = "",
          meta: dict | None = None, train: bool = False, loss: Callable[[Any], torch.Tensor] | None = None,
          attention: str = "unfused", density: float = 1.0) -> Workload:
    """Run ``model`` once on ``example_input`` and return its workload trace.

    ``example_input`` is a tensor or a tuple of positional inputs. ``batch`` defaults to
    the first dimension of the first input. ``keep_weights`` stores the real weight
    tensors in the trace (for sparse simulators and compression accounting); ``"sparse"``
    stores only those with zeros (a dense tensor's values change no simulator's timing). ``train``
    records forward, loss and backward (add the optimizer with ``workloads.training``);
    ``loss(output)`` defaults to :func:`default_loss`. ``attention`` is ``unfused`` (QK^T,
    softmax and PV as separate ops) or ``fused`` (one ``attention`` op). ``density`` is
    the declared density of tensors on the meta device, which has no values to count.
    """
    if not isinstance(model, torch.nn.Module):
        raise HwsimError(f"lower() needs a torch.nn.Module, got {type(model).__name__}")
    if attention not in ATTENTION_MODES:
        raise HwsimError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {attention!r}")
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    first = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
    if first is None:
        raise HwsimError("lower() needs at least one tensor in example_input")
    lw = _Lowering(model, keep_weights, density)
    handles = []
    for _, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(lw.pre_hook))
        handles.append(mod.register_forward_hook(lw.post_hook))
    was_training = model.training
    fastpath = torch.backends.mha.get_fastpath_enabled()
    model.train(train)
    try:
        torch.backends.mha.set_fastpath_enabled(False)       # nn.MultiheadAttention's fused path
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.enable_grad() if train else torch.no_grad())
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message=".*TF32 acceleration.*")
            if attention == "unfused":
                from torch.nn.attention import SDPBackend, sdpa_kernel
                stack.enter_context(sdpa_kernel(SDPBackend.MATH))
            else:
                stack.enter_context(_FusedSDPA(lw))
            stack.enter_context(_Capture(lw))
            if keep_weights and KEEP_ON_DISK_BYTES is not None:
                # unlinked when the lowering ends; the trace's mappings of the files stay valid
                lw.keep_dir = Path(stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="hwsim-weights-", ignore_cleanup_errors=True)))
            spill = stack.enter_context(_Spill(lw, model, SPILL_MIN_BYTES, SPILL_KEEP_BYTES)) \
                if train and SPILL_MIN_BYTES is not None else None
            out = model(*inputs)
            if train:
                with lw.scope("loss"):
                    value = (loss or default_loss)(out)
                del out                    # backward does not read the output; a vocabulary's logits are big
                value.backward()
    finally:
        for h in handles:
            h.remove()
        while lw.rnn_ctx:
            lw.rnn_ctx.pop().__exit__(None, None, None)
        model.train(was_training)
        torch.backends.mha.set_fastpath_enabled(fastpath)
    alias: dict[int, int] = {}
    ops, names = _to_ops(_fold(lw.events, alias), alias)
    info = dict(meta or {})
    if train:
        info["parameters"] = _parameters(model, lw, alias, names, spill.grad_writers if spill else {})
        info.setdefault("blocks", blocks_of(model))
    return Workload(name=name or type(model).__name__.lower(), ops=tuple(ops),
                    batch=batch if batch is not None else int(first.shape[0]) if first.dim() else 1,
                    input_shape=tuple(first.shape), source=source or f"torch:{type(model).__name__}",
                    meta=info)


# A training step's lowering keeps the first SPILL_KEEP_BYTES of saved tensors in memory
# and spills later ones of at least SPILL_MIN_BYTES to a temporary folder (policies: a
# small model never touches the disk; a small tensor is not worth a file). None: nothing
# is spilled and gradients are kept until the end (the tests compare the two).
SPILL_MIN_BYTES: int | None = 1 << 20
SPILL_KEEP_BYTES = 16 << 20
# Kept weights (``keep_weights``) of at least KEEP_ON_DISK_BYTES are written to a temporary
# folder and mapped back read-only while a model is lowered, so a trace of a large model's
# weights does not hold them in memory (policy: a small tensor is not worth a file). None:
# kept weights stay in memory (the tests compare the two).
KEEP_ON_DISK_BYTES: int | None = 1 << 20
KEEP_SLICE_BYTES = 16 << 20      # written a slice of this size at a time (policy: a few MB)


class _Spill:
    """Keep the tensors autograd saves for backward in a temporary folder while a training
    step is lowered (beyond the first ``keep_bytes``), and read each back when its backward
    node runs: the lowering's memory then stops growing with the model's depth (Chen et
    al. 2016 trade recomputation for memory; here it is a disk round trip, exact to the bit, so
    every density the trace measures is unchanged). The whole storage is kept with the
    view's geometry, and the events that wrote it (and a fake-quant width) are carried
    over to the reloaded storage, so producers and operands are what they would have
    been. The folder is removed when the step is recorded. Gradients are dropped as soon
    as they are accumulated, once the events that wrote them are noted. A model that makes
    its weights real as it runs (``workloads.zoo.lazy``) empties them after each module's
    forward; a backward node that reads one gets it regenerated (:meth:`page_in`)."""

    def __init__(self, lw: "_Lowering", model: torch.nn.Module, min_bytes: int, keep_bytes: int) -> None:
        self.lw, self.model, self.min_bytes, self.keep_bytes = lw, model, min_bytes, keep_bytes
        self.n = 0
        self.kept = 0
        self.grad_writers: dict[int, frozenset[int]] = {}
        self._stack = contextlib.ExitStack()
        # a model that makes its weights real as it runs may page them out (workloads.zoo.lazy)
        self.pager = next((m._hwsim_pager for m in model.modules() if hasattr(m, "_hwsim_pager")), None)
        # paged-in module -> (events recorded when last unpacked, a storage key of it)
        self.resident: dict[int, tuple[int, int]] = {}

    def __enter__(self) -> "_Spill":
        import tempfile
        import weakref

        self.dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="hwsim-lower-")))
        self._stack.enter_context(torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack))
        self.hooked: weakref.WeakSet = weakref.WeakSet()
        for p in self.model.parameters():
            self.watch(p)
        self.lw.on_param.append(self.watch)              # a model that makes its weights real in forward
        self._stack.callback(self.lw.on_param.remove, self.watch)
        if self.pager is not None:
            self.pager.enabled, self.lw.pager = True, self.pager
            self._stack.callback(setattr, self.pager, "enabled", False)
            self._stack.callback(setattr, self.lw, "pager", None)
        return self

    def watch(self, p: torch.Tensor) -> None:
        if isinstance(p, torch.nn.Parameter) and p.requires_grad and not p.is_meta and p not in self.hooked:
            self.hooked.add(p)
            self._stack.callback(p.register_post_accumulate_grad_hook(self.accumulated).remove)

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def accumulated(self, p: torch.Tensor) -> None:
        if p.grad is not None:
            self.grad_writers[id(p)] = self.grad_writers.get(id(p), frozenset()) | self.lw.reads(p.grad)
            p.grad = None

    def pack(self, t: torch.Tensor) -> Any:
        key = _storage_key(t)
        if t.is_meta or key is None or key in self.lw.static or t.layout != torch.strided:
            return t
        nbytes = t.untyped_storage().nbytes()
        if nbytes < self.min_bytes or self.kept + nbytes <= self.keep_bytes:
            self.kept += nbytes
            return t
        self.n += 1
        path = self.dir / f"{self.n}.bin"
        self.lw.silent += 1                      # the copy out is not the model's work
        try:
            torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()).numpy().tofile(path)
        except OSError as e:
            raise HwsimError(f"lowering a training step: could not keep saved activations in {self.dir} ({e}); "
                             "free space there or point TMPDIR at a larger disk") from None
        finally:
            self.lw.silent -= 1
        return (path, t.dtype, t.size(), t.stride(), t.storage_offset(), t.requires_grad,
                list(self.lw.made_by.get(key, ())), self.lw.bits_of.get(key))

    def unpack(self, packed: Any) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            if self.pager is not None and self.pager.enabled:
                self.page_in(packed)
            return packed
        path, dtype, size, stride, offset, grad, written, bits = packed
        self.lw.silent += 1                      # nor is the copy back
        try:
            storage = torch.from_numpy(np.fromfile(path, dtype=np.uint8)).untyped_storage()
            t = torch.empty(0, dtype=dtype).set_(storage, offset, size, stride)
        finally:
            self.lw.silent -= 1
        key = _storage_key(t)
        if key is not None:              # a new storage: whatever a freed one at this key left is gone
            self.lw.reloaded[key] = len(self.lw.events)     # private to the node that unpacks it
            self.lw.made_by[key] = list(written)
            if bits is not None:
                self.lw.bits_of[key] = bits
            else:
                self.lw.bits_of.pop(key, None)
        return t.requires_grad_(grad) if grad and t.is_floating_point() else t

    def page_in(self, t: torch.Tensor) -> None:
        """Refill a paged-out weight that a backward node is about to read, after emptying
        the weights paged in for earlier nodes. A node unpacks all it saved before it runs
        an op, so a weight unpacked before the last recorded event belongs to a node that
        has finished."""
        assert self.pager is not None
        key = _storage_key(t)
        unit = self.pager.unit(key) if key is not None else None
        if unit is None:
            return
        now = len(self.lw.events)
        if self.pager.empty(key):
            for other, (mark, its_key) in list(self.resident.items()):
                if mark < now:
                    self.pager.release(its_key)
                    del self.resident[other]
            self.lw.silent += 1                  # regenerating values is not the model's work
            try:
                self.pager.refill(key)
            finally:
                self.lw.silent -= 1
        self.resident[unit] = (now, key)


def _parameters(model: torch.nn.Module, lw: _Lowering, alias: dict[int, int], names: dict[int, str],
                grad_writers: Mapping[int, frozenset[int]]) -> dict:
    """parameter name -> its shape, bits and the ops that wrote its gradient (noted when it
    was accumulated, or read from ``.grad`` after backward)."""
    out = {}
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        wrote = grad_writers.get(id(p), frozenset()) | (lw.reads(p.grad) if p.grad is not None else frozenset())
        writers = sorted({names[r] for r in (_resolve(alias, x) for x in wrote) if r in names})
        out[pname] = {"shape": [int(s) for s in p.shape], "bits": _DTYPE_BITS.get(p.dtype, (32, "float"))[0],
                      "grad": writers}
    return out

"""Lower a ``torch.nn.Module`` plus an example input into a :class:`~workloads.trace.Workload`.

The model runs once under a ``TorchDispatchMode`` that sees every aten (and
``quantized::``) operation with its real tensors, while module pre/post hooks keep a
stack of module paths so each op is named after the layer it belongs to. This handles
control flow, depthwise convs, ``torch.nn.utils.prune`` masks, dynamic/static int8
quantized modules (weights unpacked from their packed params), fake-quant/QAT modules
(bits from ``log2(quant_max - quant_min + 1)``) and LSTM/GRU (oneDNN is switched off
inside RNN modules only, so an LSTM becomes one input GEMM plus one recurrent GEMM per
time step).

The dependency graph comes from tensor identity: every tensor an op writes is tagged with
the op that made it (views and copies carry their source's tag, in-place ops retag their
storage), and an op's producers are the tags of the tensors it reads. Consecutive
repetitions of one block of identical ops (an RNN's time steps, a layer applied in a
loop) are folded into one block: into ``steps`` when a repetition reads an earlier one's
output (the loop-carried edge then lives in ``steps``, not in the graph), else into
``copies``.

Densities are measured from the real tensors: weights after masking, activations as
they arrive at the op.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .errors import HwsimError
from .trace import Op, Operand, Workload, conv_output_size

__all__ = ["lower", "LoweringError", "NON_GEMM_OPS", "IGNORED_OPS"]


class LoweringError(HwsimError):
    """The model uses an operation the lowering cannot represent."""


# aten op name -> (kind, vector ops per output element). Pool windows are computed.
NON_GEMM_OPS: dict[str, tuple[str, int]] = {
    **{n: ("activation", 1) for n in (
        "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardtanh", "hardtanh_", "gelu",
        "silu", "silu_", "leaky_relu", "leaky_relu_", "hardswish", "hardswish_", "hardsigmoid",
        "hardsigmoid_", "clamp", "clamp_", "clamp_min", "clamp_min_", "elu", "elu_", "threshold",
        "relu6", "log_sigmoid_forward", "softplus", "mish")},
    **{n: ("elementwise", 1) for n in (
        "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "rsub", "addcmul", "addcdiv",
        "neg", "exp", "log", "pow", "sqrt", "rsqrt", "reciprocal", "abs", "maximum", "minimum", "round", "floor",
        "where", "masked_fill", "masked_fill_", "cat", "stack", "embedding", "index_select",
        "constant_pad_nd", "quantize_per_tensor", "quantize_per_tensor_dynamic",
        "quantize_per_channel", "dequantize", "sum", "cumsum", "quantized::add",
        "quantized::add_relu", "quantized::mul", "quantized::cat", "quantized::add_scalar",
        "_fake_quantize_learnable_per_tensor_affine")},
    **{n: ("pool", 1) for n in (
        "max_pool2d_with_indices", "max_pool2d", "avg_pool2d", "_adaptive_avg_pool2d",
        "adaptive_max_pool2d", "mean", "amax", "quantized::max_pool2d", "max_pool1d",
        "avg_pool1d", "adaptive_avg_pool2d", "quantized_max_pool2d", "quantized_max_pool1d")},
    **{n: ("norm", 2) for n in (
        "_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit",
        "batch_norm")},
    "native_layer_norm": ("norm", 5),
    "native_group_norm": ("norm", 5),
    "_softmax": ("softmax", 3),
    "_log_softmax": ("softmax", 4),
}

# Operations that move no data worth costing (views, allocation, metadata) or whose
# work is accounted elsewhere (fake quantisation sets bits, it is not inference work).
IGNORED_OPS = frozenset((
    "view", "_unsafe_view", "transpose_", "t_", "squeeze_", "unsqueeze_", "as_strided_", "detach_", "reshape", "_reshape_alias", "t", "transpose", "permute", "expand",
    "squeeze", "unsqueeze", "flatten", "detach", "alias", "slice", "select", "split",
    "split_with_sizes", "chunk", "unsafe_split", "unsafe_chunk", "unsafe_split_with_sizes", "unbind", "clone", "copy_", "_to_copy", "contiguous",
    "as_strided", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
    "zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like",
    "fill_", "zero_", "lift_fresh", "lift_fresh_copy", "_local_scalar_dense", "scalar_tensor",
    "arange", "sym_size", "sym_stride", "is_nonzero", "item", "dropout", "native_dropout",
    "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
    "fake_quantize_per_tensor_affine_cachemask", "fake_quantize_per_channel_affine_cachemask",
    "_fake_quantize_per_tensor_affine_cachemask_tensor_qparams", "fused_moving_avg_obs_fake_quant",
    "_fused_moving_avg_obs_fq_helper", "aminmax", "_choose_qparams_per_tensor", "choose_qparams",
    "quantized::linear_prepack", "quantized::conv2d_prepack", "q_scale", "q_zero_point",
    "int_repr", "_make_per_tensor_quantized_tensor", "copy", "resize_", "set_", "_copy_from",
    "_has_compatible_shallow_copy_type", "_pack_padded_sequence", "view_as_real", "unfold",
    "min", "max", "isnan", "any", "all", "eq", "ne", "lt", "gt", "le", "ge", "_assert_async",
    "_cudnn_rnn_flatten_weight", "stride", "numel", "dim", "size",
))

_FAKE_QUANT = {n for n in IGNORED_OPS if "fake_quant" in n or "fq_helper" in n}

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
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


def _real(t: torch.Tensor) -> torch.Tensor:
    return t.dequantize() if t.is_quantized else t


def _density(t: torch.Tensor) -> float:
    n = t.numel()
    if n == 0:
        return 0.0
    r = _real(t)
    return float(torch.count_nonzero(r)) / n


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

    def signature(self) -> tuple:
        return (self.base, self.kind, self.op, tuple(sorted(self.dims.items())),
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

    def elements(self) -> np.ndarray:
        idx = np.array([self.offset * self.itemsize])
        for s, st in zip(self.sizes, self.strides):
            idx = (idx[:, None] + np.arange(s) * st * self.itemsize).ravel()
        return np.unique(idx)

    def overlaps(self, other: "_View") -> bool:
        (a0, a1), (b0, b1) = self.span(), other.span()
        if a1 <= b0 or b1 <= a0:
            return False
        if math.prod(self.sizes) > _EXACT_OVERLAP or math.prod(other.sizes) > _EXACT_OVERLAP:
            return True                              # large views: the byte spans decide (conservative)
        return bool(np.intersect1d(self.elements(), other.elements(), assume_unique=True).size)


_EXACT_OVERLAP = 1 << 18   # elements up to which two strided views are compared element by element


class _Capture(TorchDispatchMode):
    def __init__(self, lowering: "_Lowering"):
        super().__init__()
        self.lw = lowering

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        return self.lw.on_op(func, args, kwargs)


class _Lowering:
    def __init__(self, model: torch.nn.Module, keep_weights: bool):
        self.model = model
        self.keep_weights = keep_weights
        self.stack: list[tuple[str, torch.nn.Module]] = [("", model)]
        self.gemm_in_call: list[bool] = [False]
        self.params: dict[int, tuple[str, str]] = {}
        self.bits_of: dict[int, int] = {}
        self.events: list[_Event] = []
        self.rnn_ctx: list[Any] = []
        # storage -> [(view or None for all of it, ids of the events that wrote it)], oldest first
        self.made_by: dict[int, list[tuple[_View | None, frozenset[int]]]] = {}
        self.paths = {id(m): p for p, m in model.named_modules()}
        # Storage of parameters and buffers: vector ops on these alone (prune's
        # weight_orig * weight_mask) prepare weights; they are not inference work.
        self.static: set[int] = set()
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
        path = self.paths[id(mod)]
        self.stack.append((path, mod))
        self.gemm_in_call.append(False)
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
        if isinstance(mod, torch.nn.RNNBase) and self.rnn_ctx:
            self.rnn_ctx.pop().__exit__(None, None, None)
        if len(self.stack) > 1:
            self.stack.pop()
            self.gemm_in_call.pop()

    # ---- operand helpers ---------------------------------------------------------
    def operand(self, role: str, t: torch.Tensor, shape=None, keep=False) -> Operand:
        bits, dtype = _DTYPE_BITS.get(t.dtype, (32, "float"))
        fq = self.bits_of.get(_storage_key(t) or -1)
        if fq is not None:
            bits, dtype = fq, "int"
        values = None
        if keep:
            values = _real(t).detach().float().reshape(shape or tuple(t.shape)).numpy().copy()
        return Operand(role=role, shape=tuple(shape or t.shape), bits=bits, dtype=dtype,
                       density=_density(t), values=values)

    def weight_name(self, *tensors: torch.Tensor) -> tuple[int, str] | None:
        for i, t in enumerate(tensors):
            if isinstance(t, torch.Tensor):
                hit = self.params.get(_storage_key(t) or -1)
                if hit:
                    path, pname = hit
                    return i, path if pname == "weight" else f"{path}.{pname}" if path else pname
        return None

    def here(self, opname: str) -> tuple[str, str]:
        path, mod = self.stack[-1]
        leaf = all(_is_quant_helper(c) for c in mod.children())
        # A leaf names its op after itself (relu, bn1), unless it is a GEMM layer whose
        # extra vector work (an LSTM's gates) then gets path.op.
        if leaf and path and not self.gemm_in_call[-1]:
            return path, type(mod).__name__
        return (f"{path}.{opname}" if path else opname), type(mod).__name__

    # ---- the graph ---------------------------------------------------------------
    def add(self, ev: _Event, reads: frozenset[int]) -> _Event:
        ev.id = len(self.events)
        ev.producers = set(reads)
        self.events.append(ev)
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
            if view is None or view.full:
                self.made_by[k] = [(None, tag)]
            else:                                        # an in-place op on part of a storage
                entries = [e for e in self.made_by.get(k, []) if e[0] != view]
                self.made_by[k] = entries + [(view, tag)]

    # ---- the dispatch handler ----------------------------------------------------
    def on_op(self, func, args, kwargs):
        reads = self.reads(args, kwargs)
        out = self.dispatch(func, args, kwargs, reads)
        return out

    def dispatch(self, func, args, kwargs, reads: frozenset[int]):
        schema = func._schema
        full = schema.name  # e.g. aten::convolution, quantized::linear
        ns, _, short = full.partition("::")
        key = short if ns == "aten" else full
        bound = _bind(schema, args, kwargs)

        if key in _FAKE_QUANT:
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
            ins = [v for v in bound.values() if isinstance(v, torch.Tensor)]
            if key in ("cat", "stack", "quantized::cat"):
                ins = [t for v in bound.values() if isinstance(v, (list, tuple)) for t in v
                       if isinstance(t, torch.Tensor)]
            in_ops = [self.operand("input" if i == 0 else "input2", t) for i, t in enumerate(ins[:2])]
            in_elems = sum(t.numel() for t in ins)
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
                    self.bits_of[_storage_key(res)] = b
            if kind == "pool" and res.numel():
                per = max(1, round((ins[0].numel() if ins else res.numel()) / res.numel()))
            name, mtype = self.here(key.replace("quantized::", "q_").rstrip("_"))
            ev = self.add(_Event(
                base=name, kind=kind, op=key.replace("quantized::", "q_").rstrip("_"),
                dims={"elements": res.numel(), "inputs": in_elems, "ops_per_element": per},
                operands=in_ops + [self.operand("output", res)], module=mtype), reads)
            self.wrote(out, frozenset((ev.id,)))
            return out
        if key in ("quantized_lstm", "quantized_gru"):
            last = self.quantized_rnn(bound, reads)
            self.gemm_in_call[-1] = True
            out = func(*args, **kwargs)
            self.wrote(out, frozenset((last,)))
            return out
        if key in IGNORED_OPS or ns == "prim":
            out = func(*args, **kwargs)
            self.wrote(out, reads)       # views, copies, in-place fills carry what they read
            return out
        path, mod = self.stack[-1]
        raise LoweringError(
            f"unsupported operation {full} in module {path or '<root>'!r} ({type(mod).__name__}); "
            "hwsim lowers convolutions, matmuls, RNNs and the common element-wise, pooling, "
            "normalisation and softmax ops. Add it to workloads.lower.NON_GEMM_OPS (as a vector op) "
            "or IGNORED_OPS (if it moves no data) to lower this model")

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
        for layer in range(mod.num_layers):
            gemm_ids = []
            for kind in ("ih", "hh"):
                w = weights[f"weight_{kind}_l{layer}"]
                K = int(w.shape[1])
                M, steps = (T * B, 1) if kind == "ih" else (B, T)
                dens = _density(x) if (kind == "ih" and layer == 0) else 1.0
                ev = self.add(_Event(
                    base=f"{path}.weight_{kind}_l{layer}", kind="gemm", op="linear",
                    dims={"M": M, "N": gates * H, "K": K}, module=type(mod).__name__, steps=steps,
                    operands=[Operand("input", (M, K), 8, "int", dens),
                              self.operand("weight", w, keep=self.keep_weights),
                              Operand("output", (M, gates * H), 32, "float", 1.0)]),
                    below if kind == "ih" else reads)   # step 0's hidden state is the op's input
                gemm_ids.append(ev.id)
            cell = self.add(_Event(
                base=f"{path}.cell_l{layer}", kind="activation", op="rnn_cell", module=type(mod).__name__,
                dims={"elements": B * H, "inputs": B * gates * H, "ops_per_element": 3 * gates}, steps=T,
                operands=[Operand("input", (B, gates * H), 32, "float", 1.0),
                          Operand("output", (B, H), 32, "float", 1.0)]), frozenset(gemm_ids))
            below = frozenset((cell.id,))
        return cell.id

    def gemm_event(self, opname: str, a: torch.Tensor, b: torch.Tensor, batch: int = 1,
                   w_override: torch.Tensor | None = None, w_name: str | None = None):
        """A (batched) matmul a[..., M, K] @ b[..., K, N]; one side may be a weight."""
        M, K = int(a.shape[-2]), int(a.shape[-1])
        N = int(b.shape[-1])
        hit = self.weight_name(b) if w_name is None else (0, w_name)
        a_op = self.operand("input", a, shape=(batch, M, K) if batch > 1 else (M, K))
        if w_override is not None:  # already in (N, K) layout
            b_op = self.operand("weight", w_override, keep=self.keep_weights)
        elif hit:  # a weight is stored out x in, (N, K), like nn.Linear
            b_op = self.operand("weight", b.transpose(-1, -2), keep=self.keep_weights)
        else:  # activation x activation: the right operand as it is, (K, N)
            b_op = self.operand("input2", b, shape=(batch, K, N) if batch > 1 else (K, N))
        if hit and hit[1]:
            base, mtype = hit[1], type(self.stack[-1][1]).__name__
        else:
            base, mtype = self.here(opname)

        def finish(out: torch.Tensor) -> _Event:
            return _Event(base=base, kind="gemm", op=opname, dims={"M": M, "N": N, "K": K},
                          operands=[a_op, b_op, self.operand("output", out)], module=mtype,
                          copies=batch)
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
            return _Event(base=base, kind="conv", op=opname, dims=dims, module=mtype,
                          operands=[in_op, w_op, self.operand("output", out.reshape(N, K, P, Q))])
        return finish


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
                merged.append(_Event(e.base, e.kind, e.op, e.dims, ops, e.module, copies, steps, e.id, prods))
            block = _fold(merged, alias, max_period) if best_p > 1 else merged
        out.extend(block)
        i += best_p * best_r
    return out


def _resolve(alias: dict[int, int], x: int) -> int:
    while x in alias:
        x = alias[x]
    return x


def _to_ops(events: list[_Event], alias: dict[int, int]) -> list[Op]:
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
                      copies=e.copies, steps=e.steps, producers=tuple(names[x] for x in prods), module=e.module))
    return ops


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _tensors(v)
        elif isinstance(v, dict):
            yield from _tensors(tuple(v.values()))


def lower(model: torch.nn.Module, example_input: Any, name: str | None = None, *,
          batch: int | None = None, keep_weights: bool = False, source: str = "",
          meta: dict | None = None) -> Workload:
    """Run ``model`` once on ``example_input`` and return its workload trace.

    ``example_input`` is a tensor or a tuple of positional inputs. ``batch`` defaults to
    the first dimension of the first input. ``keep_weights`` stores the real weight
    tensors in the trace (for sparse simulators and compression accounting).
    """
    if not isinstance(model, torch.nn.Module):
        raise HwsimError(f"lower() needs a torch.nn.Module, got {type(model).__name__}")
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    first = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
    if first is None:
        raise HwsimError("lower() needs at least one tensor in example_input")
    lw = _Lowering(model, keep_weights)
    handles = []
    for _, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(lw.pre_hook))
        handles.append(mod.register_forward_hook(lw.post_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings(), _Capture(lw):
            warnings.filterwarnings("ignore", message=".*TF32 acceleration.*")
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        while lw.rnn_ctx:
            lw.rnn_ctx.pop().__exit__(None, None, None)
        model.train(was_training)
    alias: dict[int, int] = {}
    ops = _to_ops(_fold(lw.events, alias), alias)
    return Workload(name=name or type(model).__name__.lower(), ops=tuple(ops),
                    batch=batch if batch is not None else int(first.shape[0]) if first.dim() else 1,
                    input_shape=tuple(first.shape), source=source or f"torch:{type(model).__name__}",
                    meta=meta or {})


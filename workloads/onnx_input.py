"""ONNX models as workload traces: ``hwsim lower model.onnx`` (the ``onnx`` extra).

An exported model lowers without torch: ONNX's shape inference gives every tensor's
shape, the graph gives the edges, and each node becomes one trace op:

* ``Conv``, ``QLinearConv``, ``ConvInteger``: a conv op (groups, strides, symmetric pads,
  dilations); ``Gemm``, ``MatMul``, ``QLinearMatMul``, ``MatMulInteger``: a GEMM (leading
  batch dims of a ``MatMul`` with two activations are copies, as a ``bmm``); the right
  operand is a weight when it is constant (an initialiser, possibly through
  ``DequantizeLinear``, ``Transpose`` or ``Cast``); ``LSTM``, ``GRU``, ``RNN``: the input
  GEMM, the recurrent GEMM as one dependent step per time step, and the gate arithmetic;
* pooling, element-wise, activation, normalisation and softmax nodes: vector ops with the
  element operations per output of :mod:`workloads.aten_ops` for the same computation;
* nodes that move no data (``Reshape``, ``Flatten``, ``Squeeze``, ``Identity``,
  ``Dropout``, ...) and nodes whose inputs are all constant (shape arithmetic) are folded
  away: their consumers read their producers.

Precision: an operand's bits and type come from its tensor's ONNX element type, with a
tensor produced by ``QuantizeLinear`` (or a constant fed through ``DequantizeLinear``)
at its quantised width, so QDQ and QLinear models run as int8. Any other operator is
refused with its node's name; the model file is checked for size and format first.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from .build import conv_op, gemm_op, vector_op
from .errors import HwsimError
from .trace import Op, Workload, conv_output_size

__all__ = ["MAX_BYTES", "SUPPORTED", "read_onnx"]

MAX_BYTES = 2 << 30       # protobuf's own limit for one model file; a policy


# element type -> (bits, dtype); onnx.TensorProto's numbering
_TYPES = {1: (32, "float"), 2: (8, "int"), 3: (8, "int"), 4: (16, "int"), 5: (16, "int"), 6: (32, "int"),
          7: (64, "int"), 9: (8, "int"), 10: (16, "float"), 11: (64, "float"), 12: (32, "int"), 13: (64, "int"),
          16: (16, "float"), 17: (8, "float"), 18: (8, "float"), 19: (8, "float"), 20: (8, "float"),
          21: (4, "int"), 22: (4, "int")}

# op_type -> (trace kind, element operations per output element); as workloads.aten_ops
_VECTOR = {
    **{t: ("activation", 1) for t in ("Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "HardSigmoid",
                                      "HardSwish", "Gelu", "Softplus", "Softsign", "Clip", "PRelu", "Erf",
                                      "Mish", "ThresholdedRelu", "Celu")},
    **{t: ("elementwise", 1) for t in ("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Exp", "Log",
                                       "Neg", "Abs", "Min", "Max", "Sum", "Mean", "Where", "Concat", "Pad",
                                       "Gather", "Expand", "Tile", "Slice", "Split", "QuantizeLinear",
                                       "DequantizeLinear", "Floor", "Ceil", "Round", "Sign", "Equal", "Less",
                                       "Greater", "Not", "And", "Or", "Cos", "Sin", "CumSum", "Resize", "Upsample",
                                       "DepthToSpace", "SpaceToDepth")},
    **{t: ("pool", 1) for t in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
                                "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL2", "ArgMax", "ArgMin",
                                "LpPool")},
    "BatchNormalization": ("norm", 2),
    "InstanceNormalization": ("norm", 5),
    "LayerNormalization": ("norm", 5),
    "GroupNormalization": ("norm", 5),
    "SimplifiedLayerNormalization": ("norm", 4),
    "Softmax": ("softmax", 3),
    "LogSoftmax": ("softmax", 3),
}
# nodes that only relabel their input (views and no-ops at inference)
_PASS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Transpose", "Cast", "CastLike"}
_SHAPE = {"Shape", "Size", "Constant", "ConstantOfShape", "Range", "EyeLike"}
_CONV = {"Conv", "QLinearConv", "ConvInteger"}
_RNN = {"LSTM": 4, "GRU": 3, "RNN": 1}     # gates per hidden unit
_ML_FLOATS = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float4_e2m1fn"}
_MATMUL = {"Gemm", "MatMul", "QLinearMatMul", "MatMulInteger"}
SUPPORTED = sorted(_CONV | _MATMUL | set(_RNN) | set(_VECTOR) | _PASS | _SHAPE)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise HwsimError("reading .onnx models needs the onnx package: pip install 'hwsim[onnx]'") from None
    return onnx


def read_onnx(path: str | Path, batch: int | None = None, keep_weights: bool | str = False) -> Workload:
    """The trace of an ONNX model; ``batch`` replaces the first input's leading dimension.

    Each weight's density is measured from its values (:mod:`workloads.onnx_consts`), so a
    pruned export lowers sparse; ``keep_weights`` stores the values in the trace too, as
    :func:`workloads.lower.lower` does (``"sparse"``: only weights with zeros)."""
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    p = Path(path)
    data = _read(p)
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, OSError) as e:
        raise HwsimError(f"{p}: not an ONNX model ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    del data
    g = model.graph
    if not g.node:
        raise HwsimError(f"{p}: the graph has no nodes")
    _check_opset(model, p)
    _check_edges(g, p)
    _check_external(g, p)
    consts = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if not inputs:
        raise HwsimError(f"{p}: the graph has no inputs")
    first = inputs[0].type.tensor_type.shape
    if batch is not None and first.dim:
        first.dim[0].ClearField("dim_param")
        first.dim[0].dim_value = batch
    for i in inputs:                     # any other free dimension: 1
        for d in i.type.tensor_type.shape.dim:
            if not d.HasField("dim_value") or d.dim_value < 1:
                d.ClearField("dim_param")
                d.dim_value = 1
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:       # onnx raises its own InferenceError and others
        raise HwsimError(f"{p}: ONNX shape inference failed ({str(e).splitlines()[0]})") from None
    return _Graph(model.graph, p, keep_weights).workload(p.stem, f"onnx:{p.name}")


def _read(p: Path) -> bytes:
    """The model file's bytes: a regular file (a FIFO would hang, a device never end), at most
    :data:`MAX_BYTES` actually read."""
    import stat

    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise HwsimError(f"{p}: model file not found") from None
    except OSError as e:
        raise HwsimError(f"{p}: cannot read the model ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise HwsimError(f"{p}: is not a regular file (a folder, FIFO, device or socket); give the ONNX model as a file")
    try:
        with p.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise HwsimError(f"{p}: cannot read the model ({e.strerror or e})") from None
    if len(data) > MAX_BYTES:
        raise HwsimError(f"{p}: over {MAX_BYTES >> 30} GB is over ONNX's 2 GB limit for one file; keep the "
                         "weights as external data beside the model")
    return data


def _check_opset(model, p: Path) -> None:
    """The default domain's opset must be one this onnx package knows: its shape inference
    would otherwise infer nothing (or guess) for every node."""
    onnx = _onnx()
    known = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and not 1 <= o.version <= known:
            raise HwsimError(f"{p}: opset_import: ONNX opset {o.version} is not one this onnx package knows "
                             f"(1 to {known}); export with opset_version <= {known}")


def _check_edges(g, p: Path) -> None:
    """Every node input is a graph input, an initialiser or an earlier node's output, every
    tensor is made once, and every graph output is made: ONNX graphs are acyclic and listed
    in topological order (onnx.checker's rules), so a self-loop, a cycle or a dangling input
    is refused here rather than lowered as a graph without that edge."""
    made = {i.name: "a graph input" for i in g.input} | {t.name: "an initialiser" for t in g.initializer}
    later: dict[str, str] = {}
    for n in g.node:
        for o in n.output:
            if o:
                later.setdefault(o, n.name or n.op_type)
    for n in g.node:
        who = f"node {n.name or n.op_type!r} ({n.op_type})"
        for i in n.input:
            if not i or i in made:
                continue
            if i in n.output:
                raise HwsimError(f"{p}: {who}: reads its own output {i!r} (a self-loop); ONNX graphs are acyclic, "
                                 "a recurrence is a Loop or an RNN node; fix the export")
            if i in later:
                raise HwsimError(f"{p}: {who}: reads {i!r} before node {later[i]!r} makes it: the graph has a "
                                 "cycle or is not in topological order; fix the export (onnx.checker.check_model "
                                 "shows the same)")
            raise HwsimError(f"{p}: {who}: input {i!r} is not a graph input, an initialiser or any node's output "
                             "(a dangling edge); fix the export or add the input to the graph")
        for o in n.output:
            if not o:
                continue
            if o in made:
                raise HwsimError(f"{p}: {who}: output {o!r} is already {made[o]}; each tensor is made once "
                                 "(ONNX graphs are in SSA form); fix the export")
            made[o] = f"the output of node {n.name or n.op_type!r}"
    for o in g.output:
        if o.name not in made:
            raise HwsimError(f"{p}: graph output {o.name!r} is made by no node and is no input; fix the export")


def _check_external(g, p: Path) -> None:
    """Weights kept as external data must lie beside the model (in its folder or below), as
    regular files: hwsim reads only their shapes, but a location outside the folder (or
    missing) is a broken or hostile model, refused rather than dropped."""
    import os
    import stat

    onnx = _onnx()
    base = p.resolve().parent
    for t in g.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        loc = next((e.value for e in t.external_data if e.key == "location"), "")
        what = f"{p}: initialiser {t.name!r}: external data {loc!r}"
        if not loc:
            raise HwsimError(f"{what} has no location; fix the export (onnx.save_model(..., save_as_external_data=True))")
        f = (base / loc).resolve()
        if os.path.isabs(loc) or not f.is_relative_to(base):
            raise HwsimError(f"{what} lies outside the model's folder {base}; keep the data file beside the "
                             "model (a relative location without '..')")
        try:
            mode = f.stat().st_mode
        except OSError:
            raise HwsimError(f"{what}: no such file beside the model; copy it next to {p.name}") from None
        if not stat.S_ISREG(mode):
            raise HwsimError(f"{what} is not a regular file (a folder, FIFO or device); give the weights as a file")


class _Graph:
    def __init__(self, g, path: Path, keep_weights: bool | str = False):
        from .onnx_consts import Constants

        self.g, self.path, self.keep = g, path, keep_weights
        self.values = Constants(g, path, _onnx())
        self.shape: dict[str, tuple[int, ...]] = {}
        self.etype: dict[str, int] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            t = vi.type.tensor_type
            if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
                self.shape[vi.name] = tuple(int(d.dim_value) for d in t.shape.dim)
            self.etype[vi.name] = t.elem_type
        self.const: set[str] = set()
        self.inits = {t.name: t for t in g.initializer}
        for t in g.initializer:
            self.shape[t.name] = tuple(int(d) for d in t.dims)
            self.etype[t.name] = t.data_type
            self.const.add(t.name)
        self.bits: dict[str, tuple[int, str]] = {}       # quantised widths carried through Q/DQ
        self.made: dict[str, tuple[str, ...]] = {}       # tensor -> the ops whose output it is
        self.ops: list[Op] = []

    def fail(self, node, msg: str):
        raise HwsimError(f"{self.path}: node {node.name or node.op_type!r} ({node.op_type}): {msg}")

    def dims(self, node, name: str) -> tuple[int, ...]:
        if name not in self.shape:
            self.fail(node, f"the shape of {name!r} is unknown after shape inference; export with static shapes")
        return self.shape[name]

    def weight(self, node, name: str, zero: int | None = None) -> tuple[float, Any]:
        """A constant weight's measured density and its value (None when not computable:
        density 1.0, as declared). A weight with NaN or infinite values is refused: every op
        reading it would compute nothing meaningful, and a simulator that reads values (EIE)
        would count them. ``zero``: the input index of an integer weight's zero point (its
        value stands for 0)."""
        import numpy as np

        v = self.values.value(name) if name in self.const else None
        if v is None or v.size == 0:
            return 1.0, None
        zp = self.values.value(node.input[zero]) if zero is not None and len(node.input) > zero and \
            node.input[zero] else None
        if zp is not None and np.any(zp):
            if zp.size > 1 and node.op_type in _CONV:        # per output channel
                zp = zp.reshape((-1,) + (1,) * (v.ndim - 1))
            try:
                v = v.astype(np.int32) - zp.astype(np.int32)
            except ValueError:
                self.fail(node, f"zero point {node.input[zero]!r} {zp.shape} does not fit weight {name!r} {v.shape}")
        if v.dtype.kind == "f" or v.dtype.kind == "V" or str(v.dtype) in _ML_FLOATS:
            bad = int(v.size - np.count_nonzero(np.isfinite(np.asarray(v, dtype=np.float32))))
            if bad:
                self.fail(node, f"weight {name!r} has {bad:,} NaN or infinite value{'s' if bad > 1 else ''} of "
                                f"{v.size:,}; export the model with finite weights")
        return int(np.count_nonzero(v)) / v.size, v

    def with_weight(self, op: Op, density: float, value, layout=None) -> Op:
        """``op`` with its weight operand's measured density, and its value (in the trace's
        layout: ``layout(value)``) when weights are kept."""
        import numpy as np

        w = op.operand("weight")
        if w is None:
            return op
        keep = value is not None and (self.keep is True or (self.keep == "sparse" and density < 1))
        vals = None
        if keep:
            a = layout(value) if layout is not None else value
            if a is None:
                keep = False
            else:
                a = np.asarray(a)
                vals = np.ascontiguousarray(a.astype(np.float32) if a.dtype.kind not in "iu" else a)
        nw = replace(w, density=density, values=vals.reshape(w.shape) if vals is not None else None)
        return replace(op, operands=tuple(nw if o.role == "weight" else o for o in op.operands))

    def precision(self, name: str) -> tuple[int, str]:
        if name in self.bits:
            return self.bits[name]
        return _TYPES.get(self.etype.get(name, 1), (32, "float"))

    def producers(self, *names: str) -> tuple[str, ...]:
        out: list[str] = []
        for n in names:
            for m in self.made.get(n, ()):
                if m not in out:
                    out.append(m)
        return tuple(out)

    def unique(self, node, base: str) -> str:
        """The node's name as a trace op name (``/layer1/conv1/Conv`` -> ``layer1.conv1.Conv``)."""
        name = node.name.strip("/").replace("/", ".") or f"{base}_{len(self.ops)}"
        taken = {o.name for o in self.ops}
        k, cand = 1, name
        while cand in taken:
            k += 1
            cand = f"{name}_{k}"
        return cand

    def emit(self, node, op: Op) -> None:
        self.ops.append(op)
        for o in node.output:
            self.made[o] = (op.name,)

    def workload(self, name: str, source: str) -> Workload:
        for node in self.g.node:
            self.lower(node)
        if not self.ops:
            raise HwsimError(f"{self.path}: no operations to simulate after folding constants")
        first = next((i for i in self.g.input if i.name not in self.const), None)
        shape = self.shape.get(first.name, ()) if first is not None else ()
        return Workload(name=name, ops=tuple(self.ops), batch=int(shape[0]) if shape else 1,
                        input_shape=shape, source=source)

    # ---- one node ----------------------------------------------------------------------
    def lower(self, node) -> None:
        t = node.op_type
        live = [i for i in node.input if i and i not in self.const]
        if t in _SHAPE or (not live and t not in _CONV | _MATMUL):
            for o in node.output:                    # constant folding: shapes, constants
                self.const.add(o)
            self.values.made_by(node)
            if t == "DequantizeLinear" and node.input[0] in self.const:
                for o in node.output:
                    self.bits[o] = self.precision(node.input[0])
            return
        if t in _PASS:
            for o in node.output:
                self.made[o] = self.producers(*live)
                if node.input and node.input[0] in self.bits:
                    self.bits[o] = self.bits[node.input[0]]
            return
        if t in _CONV:
            return self.conv(node)
        if t in _MATMUL:
            return self.matmul(node)
        if t in _RNN:
            return self.rnn(node)
        if t in _VECTOR:
            return self.vector(node)
        self.fail(node, f"operator {t} is not supported; hwsim lowers convolutions, GEMMs, RNNs, pooling, "
                        "element-wise, normalisation and softmax nodes (the list: docs/formats.md, "
                        "workloads.onnx_input.SUPPORTED)")

    def attrs(self, node) -> dict:
        onnx = _onnx()
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def conv(self, node) -> None:
        t = node.op_type
        x, w = (node.input[0], node.input[3]) if t == "QLinearConv" else (node.input[0], node.input[1])
        a = self.attrs(node)
        xs, ws = self.dims(node, x), self.dims(node, w)
        density, value = self.weight(node, w, {"QLinearConv": 5, "ConvInteger": 3}.get(t))
        if len(xs) != 4 or len(ws) != 4:
            self.fail(node, f"only 2-D convolutions are supported (input {xs}, weight {ws})")
        N, C, H, W = xs
        K, Cg, R, S = ws
        group = int(a.get("group", 1))
        sh, sw = (int(v) for v in a.get("strides", (1, 1)))
        dh, dw = (int(v) for v in a.get("dilations", (1, 1)))
        pads = [int(v) for v in a.get("pads", (0, 0, 0, 0))]
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            out = self.dims(node, node.output[0])
            ph, pw = _same_pad(H, R, sh, dh, out[2]), _same_pad(W, S, sw, dw, out[3])
            if ph < 0 or pw < 0:
                self.fail(node, "auto_pad SAME with an odd total padding (uneven sides) is not supported")
        elif pads[0] != pads[2] or pads[1] != pads[3]:
            self.fail(node, f"asymmetric pads {pads} are not supported; pad the input with a Pad node")
        else:
            ph, pw = pads[0], pads[1]
        if Cg * group != C:
            self.fail(node, f"weight {ws} with group {group} does not match {C} input channels")
        xb, xd = self.precision(x)
        wb, wd = self.precision(w)
        bits, dtype = max(xb, wb), ("int" if xd == wd == "int" else "float")
        name = self.unique(node, "conv")
        op = conv_op(name, N, C, H, W, K, R, S, stride=sh, stride_w=sw, pad=ph, pad_w=pw, groups=group,
                     bits=bits, dtype=dtype, producers=self.producers(x))
        if (dh, dw) != (1, 1):
            P, Q = conv_output_size(H, R, sh, ph, dh), conv_output_size(W, S, sw, pw, dw)
            dilated = replace(op.operands[2], shape=(N, K, P, Q))
            op = replace(op, dims={**op.dims, "P": P, "Q": Q, "dil_h": dh, "dil_w": dw},
                         operands=(op.operands[0], op.operands[1], dilated))
        self.check_out(node, op.operands[2].shape)
        self.emit(node, self.with_weight(op, density, value))

    def matmul(self, node) -> None:
        t = node.op_type
        a_name, b_name = (node.input[0], node.input[3]) if t == "QLinearMatMul" else (node.input[0], node.input[1])
        at = self.attrs(node)
        A, B = self.dims(node, a_name), self.dims(node, b_name)
        if t == "Gemm":
            if len(A) != 2 or len(B) != 2:
                self.fail(node, f"Gemm needs 2-D operands, got {A} and {B}")
            M, K = (A[1], A[0]) if at.get("transA", 0) else A
            K2, N = (B[1], B[0]) if at.get("transB", 0) else B
            copies = 1
        else:
            if len(A) < 1 or len(B) < 1:
                self.fail(node, "MatMul of scalars")
            A2 = (1,) + A if len(A) == 1 else A
            B2 = B + (1,) if len(B) == 1 else B
            M, K, K2, N = A2[-2], A2[-1], B2[-2], B2[-1]
            lead_a, lead_b = A2[:-2], B2[:-2]
            if len(lead_b) == 0 or all(d == 1 for d in lead_b):   # x @ W: leading dims of A are rows
                M, copies = M * math.prod(lead_a), 1
            else:
                copies = max(math.prod(lead_a), math.prod(lead_b))
        if K != K2:
            self.fail(node, f"inner dimensions differ ({A} x {B})")
        weight = b_name in self.const
        density, value = self.weight(node, b_name, {"QLinearMatMul": 5, "MatMulInteger": 3}.get(t))
        ab, ad = self.precision(a_name)
        bb, bd = self.precision(b_name)
        bits, dtype = max(ab, bb), ("int" if ad == bd == "int" else "float")
        op = gemm_op(self.unique(node, "gemm"), M, N, K, copies=copies, bits=bits, dtype=dtype, weight=weight,
                     op="linear" if weight else "bmm",
                     producers=self.producers(*(n for n in (a_name, b_name) if n not in self.const)))
        if weight:      # the trace's weight is (N, K), one copy; ONNX's B is (K, N) unless Gemm's transB

            def layout(b):
                if t == "Gemm":
                    return b if at.get("transB", 0) else b.T
                if copies > 1:
                    return None
                return b.reshape(K, N).T
            op = self.with_weight(op, density, value, layout)
        self.emit(node, op)

    def rnn(self, node) -> None:
        """An ONNX LSTM/GRU/RNN as the torch lowering has one: the input GEMM over every
        time step at once, the recurrent GEMM one dependent step per time step (directions
        as copies), and each step's gate and cell arithmetic."""
        gates = _RNN[node.op_type]
        a = self.attrs(node)
        X, W = self.dims(node, node.input[0]), self.dims(node, node.input[1])
        (dw, _), (dr, _) = (self.weight(node, w) for w in node.input[1:3])
        if len(X) != 3 or len(W) != 3:
            self.fail(node, f"expected a 3-D input and weight, got {X} and {W}")
        seq, batch, feat = (X[1], X[0], X[2]) if int(a.get("layout", 0)) else X
        dirs, H = W[0], W[1] // gates
        bits, dtype = max(self.precision(node.input[0])[0], self.precision(node.input[1])[0]), "float"
        if self.precision(node.input[0])[1] == self.precision(node.input[1])[1] == "int":
            dtype = "int"
        base = self.unique(node, node.op_type.lower())
        ih = gemm_op(f"{base}.ih", seq * batch, gates * H, feat, copies=dirs, bits=bits, dtype=dtype,
                     producers=self.producers(node.input[0]))
        hh = gemm_op(f"{base}.hh", batch, gates * H, H, copies=dirs, steps=seq, bits=bits, dtype=dtype,
                     producers=(ih.name,))
        g = batch * gates * H
        add = vector_op(f"{base}.gates", "elementwise", "add", g, inputs=2 * g, copies=dirs, steps=seq, bits=bits,
                        dtype=dtype, producers=(hh.name,))
        act = vector_op(f"{base}.act", "activation", "sigmoid_tanh", g, copies=dirs, steps=seq, bits=bits,
                        dtype=dtype, producers=(add.name,))
        ih, hh = self.with_weight(ih, dw, None), self.with_weight(hh, dr, None)
        ops = [ih, hh, add, act]
        if gates > 1:     # LSTM c = f*c + i*g, h = o*tanh(c); GRU h = (1-z)*n + z*h: five per unit
            ops.append(vector_op(f"{base}.cell", "elementwise", "cell", batch * H, inputs=2 * batch * H,
                                 ops_per_element=5, copies=dirs, steps=seq, bits=bits, dtype=dtype,
                                 producers=(act.name,)))
        self.ops.extend(ops)
        for o in node.output:
            if o:
                self.made[o] = (ops[-1].name,)

    def vector(self, node) -> None:
        kind, per = _VECTOR[node.op_type]
        out = node.output[0]
        elements = math.prod(self.dims(node, out))
        ins = [i for i in node.input if i]
        inputs = sum(math.prod(self.shape.get(i, (1,))) for i in ins if i not in self.const) or elements
        if kind == "pool" and elements:
            per = max(1, round(inputs / elements))
        src = next((i for i in ins if i not in self.const), ins[0])
        if node.op_type == "QuantizeLinear":
            zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
            q = _TYPES.get(self.etype.get(zp, 2), (8, "int")) if zp else (8, "int")
            bits, dtype = q
            self.bits[out] = q
        else:
            bits, dtype = self.precision(src)
            if node.op_type == "DequantizeLinear" or (kind in ("pool", "activation") and src in self.bits):
                if src in self.bits:
                    self.bits[out] = self.bits[src]
        op = vector_op(self.unique(node, node.op_type.lower()), kind, node.op_type.lower(), max(elements, 1),
                       inputs=max(inputs, 1), ops_per_element=per, bits=bits, dtype=dtype,
                       producers=self.producers(*(i for i in ins if i not in self.const)))
        self.emit(node, op)

    def check_out(self, node, shape: tuple[int, ...]) -> None:
        got = self.shape.get(node.output[0])
        if got is not None and tuple(got) != tuple(shape):
            self.fail(node, f"output {got} differs from the convolution's {shape}")


def _same_pad(size: int, k: int, s: int, d: int, out: int) -> int:
    """One side of SAME padding; -1 when the total is odd (the sides differ)."""
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return -1 if total % 2 else total // 2

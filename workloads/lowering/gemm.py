"""GEMM-like ops: matmuls, convolutions (and their gradients as GEMMs), int8 quantized
linear and conv layers (weights unpacked from their packed params) and dynamically
quantized RNNs rebuilt from their module."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ..errors import LoweringError
from ..trace import Operand, conv_output_size
from .events import Event
from .recorder import Recorder
from .tensors import real

__all__ = ["GEMM_HANDLERS", "Finish", "conv_backward", "conv_event", "gemm_event", "quantized_rnn"]

# makes an op's event once its output is known (a handler inspects the inputs before the op runs)
Finish = Callable[[torch.Tensor], Event]


def quantized_rnn(lw: Recorder, b: Mapping[str, Any], reads: frozenset[int]) -> int:
    """A dynamically quantized LSTM/GRU runs as one fused op; rebuild its GEMMs from
    the module: per layer one input GEMM over all steps and one recurrent GEMM per step,
    int8 weights, activations quantized to 8 bits at run time. Hidden-state densities
    cannot be observed inside the fused op and are recorded as dense. Returns the id of
    the last layer's cell (what the op's outputs come from)."""
    path, module = lw.stack[-1]
    mod: Any = module         # a torch.ao dynamic quantized LSTM/GRU: get_weight() and its sizes
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
            dens = lw.density(x) if (kind == "ih" and layer == 0) else 1.0
            ev = lw.add(Event(
                base=f"{path}.weight_{kind}_l{layer}", kind="gemm", op="linear",
                dims={"M": M, "N": gates * H, "K": K}, module=type(mod).__name__, steps=steps,
                operands=[Operand("input", (M, K), 8, "int", dens),
                          lw.operand("weight", w, keep=lw.keep_weights),
                          Operand("output", (M, gates * H), 32, "float", 1.0)], has_weight=True),
                below if kind == "ih" else reads)   # step 0's hidden state is the op's input
            gemm_ids.append(ev.id)
        cell = lw.add(Event(
            base=f"{path}.cell_l{layer}", kind="activation", op="rnn_cell", module=type(mod).__name__,
            dims={"elements": B * H, "inputs": B * gates * H, "ops_per_element": 3 * gates}, steps=T,
            operands=[Operand("input", (B, gates * H), 32, "float", 1.0),
                      Operand("output", (B, H), 32, "float", 1.0)]), frozenset(gemm_ids))
        below = frozenset((cell.id,))
    assert cell is not None
    return cell.id


def gemm_event(lw: Recorder, opname: str, a: torch.Tensor, b: torch.Tensor, batch: int = 1,
               w_override: torch.Tensor | None = None, w_name: str | None = None) -> Finish:
    """A (batched) matmul a[..., M, K] @ b[..., K, N]; one side may be a weight."""
    M, K = int(a.shape[-2]), int(a.shape[-1])
    N = int(b.shape[-1])
    hit = lw.weight_name(b) if w_name is None else (0, w_name)
    a_op = lw.operand("input", a, shape=(M, K))           # one instance (the trace's convention)
    if w_override is not None:  # already in (N, K) layout
        b_op = lw.operand("weight", w_override, keep=lw.keep_weights)
    elif hit:  # a weight is stored out x in, (N, K), like nn.Linear
        b_op = lw.operand("weight", b.transpose(-1, -2), keep=lw.keep_weights)
    else:  # activation x activation: the right operand as it is, (K, N)
        b_op = lw.operand("input2", b, shape=(K, N))
    fwd = lw.backward_of()
    phase = "forward"
    if fwd is not False:                 # a gradient GEMM: named after its forward op
        suffix = "dgrad" if hit else "wgrad" if fwd and fwd.has_weight else "grad"
        base, mtype, opname = lw.grad_name(fwd or None, suffix, opname)
        phase = "backward"
    elif hit and hit[1]:
        base, mtype = hit[1], type(lw.stack[-1][1]).__name__
    else:
        base, mtype = lw.here(opname)

    def finish(out: torch.Tensor) -> Event:
        return Event(base=base, kind="gemm", op=opname, dims={"M": M, "N": N, "K": K},
                     operands=[a_op, b_op, lw.operand("output", out, shape=(M, N))], module=mtype,
                     copies=batch, phase=phase, has_weight=bool(hit) and phase == "forward")
    return finish


def conv_event(lw: Recorder, opname: str, x: torch.Tensor, w: torch.Tensor, stride: Any, padding: Any,
               dilation: Any, groups: Any, w_name: str | None = None) -> Finish:
    """A 1-D or 2-D convolution of ``x`` by weight ``w``."""
    if x.dim() == 3:  # conv1d as a conv2d with H = 1
        x4 = x.unsqueeze(2)
        w = w.unsqueeze(2)
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    elif x.dim() == 4:
        x4 = x
    else:
        raise LoweringError(f"{opname}: only 1-D and 2-D convolutions are supported, "
                            f"got a {x.dim() - 2}-D one in module {lw.stack[-1][0]!r}")
    N, C, H, W = (int(s) for s in x4.shape)
    K, _, R, S = (int(s) for s in w.shape)
    sh, sw = (int(s) for s in stride)
    ph, pw = (int(s) for s in padding)
    dh, dw = (int(s) for s in dilation)
    P, Q = conv_output_size(H, R, sh, ph, dh), conv_output_size(W, S, sw, pw, dw)
    hit = (0, w_name) if w_name else lw.weight_name(w)
    base, mtype = (hit[1], type(lw.stack[-1][1]).__name__) if hit and hit[1] else lw.here(opname)
    in_op = lw.operand("input", x4)
    w_op = lw.operand("weight", w, keep=lw.keep_weights)
    dims = {"N": N, "C": C, "H": H, "W": W, "K": K, "R": R, "S": S, "P": P, "Q": Q,
            "stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw, "dil_h": dh, "dil_w": dw,
            "groups": int(groups)}

    def finish(out: torch.Tensor) -> Event:
        return Event(base=base, kind="conv", op=opname, dims=dims, module=mtype, has_weight=True,
                     operands=[in_op, w_op, lw.operand("output", out.reshape(N, K, P, Q))])
    return finish


def conv_backward(lw: Recorder, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                  b: Mapping[str, Any]) -> Any:
    """A convolution's gradients as GEMMs on its im2col view (M = N*P*Q, Kd = C/g*R*S):
    the input gradient dY[M, K/g] @ W^T (Kd columns), the weight gradient
    X_col^T[Kd, M] @ dY (K/g columns), each once per group; the bias gradient a sum."""
    gy, x, w = b["grad_output"], b["input"], b["weight"]
    mask = list(b.get("output_mask") or (True, True, True))
    if b.get("transposed"):
        raise LoweringError("the gradient of a transposed convolution is not supported")
    fwd = lw.backward_of() or None
    g = int(b["groups"])
    if x.dim() == 3:
        N, C, H, W, K, R, S = x.shape[0], x.shape[1], 1, x.shape[2], w.shape[0], 1, w.shape[2]
        P, Q = 1, gy.shape[2]
    else:
        N, C, H, W = (int(s) for s in x.shape)
        K, _, R, S = (int(s) for s in w.shape)
        P, Q = int(gy.shape[2]), int(gy.shape[3])
    M, Kd, Ng = N * P * Q, C // g * R * S, K // g
    out = lw.run(func, args, kwargs)
    gx, gw, gb = out
    tags: list[frozenset[int]] = [frozenset(), frozenset(), frozenset()]
    specs = []
    if mask[0] and gx is not None:
        specs.append((0, "dgrad", {"M": M, "N": Kd, "K": Ng}, lw.reads(gy),
                      [lw.operand("input", gy), lw.operand("weight", w), lw.operand("output", gx)]))
    if mask[1] and gw is not None:
        specs.append((1, "wgrad", {"M": Kd, "N": Ng, "K": M}, lw.reads(gy, x),
                      [lw.operand("input", x), lw.operand("input2", gy), lw.operand("output", gw)]))
    for i, suffix, dims, reads, operands in specs:
        base, mtype, op = lw.grad_name(fwd, suffix, "conv2d")
        ev = lw.add(Event(base=base, kind="gemm", op=op, dims=dims, operands=operands, module=mtype,
                          copies=g, phase="backward"), reads)
        tags[i] = frozenset((ev.id,))
    if len(mask) > 2 and mask[2] and gb is not None:
        base, mtype, _ = lw.grad_name(fwd, "bgrad", "sum")
        ev = lw.add(Event(base=base, kind="elementwise", op="sum", module=mtype, phase="backward",
                          dims={"elements": K, "inputs": N * K * P * Q, "ops_per_element": M},
                          operands=[lw.operand("input", gy), lw.operand("output", gb)]), lw.reads(gy))
        tags[2] = frozenset((ev.id,))
    for t, tag in zip(out, tags):
        if t is not None:
            lw.wrote(t, tag)
    return out


# ---- the handlers: (lowering, bound arguments) -> what makes the event from the output ----
def _h_conv(lw: Recorder, b: Mapping[str, Any]) -> Finish:
    if b.get("transposed"):
        raise LoweringError(f"transposed convolution in module {lw.stack[-1][0]!r} is not supported; "
                            "express it as a convolution over the upsampled input")
    return conv_event(lw, "conv2d", b["input"], b["weight"], b["stride"], b["padding"], b["dilation"],
                      b["groups"])


def _h_mm(lw: Recorder, b: Mapping[str, Any]) -> Finish:
    a, m = (b["self"], b["mat2"]) if "mat2" in b else (b["mat1"], b["mat2"])
    return gemm_event(lw, "matmul", a, m)


def _h_addmm(lw: Recorder, b: Mapping[str, Any]) -> Finish:
    return gemm_event(lw, "linear", b["mat1"], b["mat2"])


def _h_bmm(lw: Recorder, b: Mapping[str, Any]) -> Finish:
    a, m = (b["self"], b["mat2"]) if "self" in b else (b["batch1"], b["batch2"])
    return gemm_event(lw, "bmm", a, m, batch=int(a.shape[0]))


def _h_qlinear(lw: Recorder, b: Mapping[str, Any]) -> Finish:
    x = b["X"] if "X" in b else next(v for v in b.values() if isinstance(v, torch.Tensor))
    packed = b.get("W_prepack", b.get("packed_weight"))
    w, _bias = packed.unpack()
    Kf = int(w.shape[1])
    x2 = x.reshape(-1, Kf)
    path = lw.stack[-1][0]
    fin = gemm_event(lw, "linear", x2, real(w).t(), w_override=w, w_name=path or "linear")

    def finish(out: torch.Tensor) -> Event:
        ev = fin(out.reshape(x2.shape[0], -1))
        if not x.is_quantized:  # dynamic quantization: activations quantized to 8 bits at run time
            ev.operands[0] = Operand("input", ev.operands[0].shape, 8, "int", ev.operands[0].density)
        return ev
    return finish


def _h_qconv(lw: Recorder, b: Mapping[str, Any]) -> Finish:
    x = b["qx"] if "qx" in b else b[next(iter(b))]
    packed = b["packed_weight"]
    w, _bias = packed.unpack()
    return conv_event(lw, "conv2d", x, w, packed.stride(), packed.padding(), packed.dilation(),
                      packed.groups(), w_name=lw.stack[-1][0] or "conv")


GEMM_HANDLERS: dict[str, Callable[[Recorder, Mapping[str, Any]], Finish]] = {
    "convolution": _h_conv, "mm": _h_mm, "addmm": _h_addmm, "bmm": _h_bmm, "baddbmm": _h_bmm,
    "quantized::linear": _h_qlinear, "quantized::linear_relu": _h_qlinear,
    "quantized::linear_dynamic": _h_qlinear, "quantized::linear_relu_dynamic": _h_qlinear,
    "quantized::conv2d": _h_qconv, "quantized::conv2d_relu": _h_qconv,
    "quantized::conv1d": _h_qconv, "quantized::conv1d_relu": _h_qconv,
}

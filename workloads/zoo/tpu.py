"""The six production workloads of the TPU v1 paper (Jouppi et al., ISCA 2017, Table 1), built
from their published layer counts, weight totals, batch sizes and "TPU ops per weight byte"
(MACs per weight byte per batch). Table 1's caption names the CNNs: CNN0 is DeepMind's AlphaGo
and CNN1 derives from Inception V2 (Sec. 3), so their layers follow those papers, sized to
Table 1's counts (derivations beside ``cnn0`` and ``cnn1``). The paper gives no shapes for the
MLPs and LSTMs: equal layers sized to the published weights. int8. Each FC and conv layer of
the MLPs and CNNs is followed by its ReLU (Table 1's nonlinear-function column; the TPU
applies it in its activation unit, Sec. 2), an op of its own; the LSTMs' sigmoid and tanh are
their vector layers.

| name  | layers             | weights | batch | ops/weight byte (published) |
|-------|--------------------|---------|-------|-----------------------------|
| MLP0  | 5 FC 2000x2000     | 20.0 M  | 200   | 200  (= batch: FC weights are used once per example) |
| MLP1  | 4 FC 1120x1120     | 5.0 M   | 168   | 168  |
| LSTM0 | 24 FC (2080->1040) + 34 vector | 51.9 M | 64 | 64 (LSTM weights are re-read every step) |
| LSTM1 | 37 FC (1360->680) + 19 vector  | 34.2 M | 96 | 96 |
| CNN0  | AlphaGo: 5x5 conv 48->247, 14 3x3 conv 247->247, 1x1 conv 247->1, at 19x19 | 8.0 M | 8 | 2888 = 8 x 361 |
| CNN1  | Inception V2's 69 convs and 13 pools at 356x356 + 4 FC (1024->5302, 3 x 5302x5302) | 100.0 M | 32 | 1759 (1750) |
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TypedDict

from ..build import conv_op, gemm_op, vector_op
from ..trace import Op, Workload, chain

__all__ = ["INT8", "SOURCE", "Precision", "cnn0", "cnn1", "lstm0", "lstm1", "mlp0", "mlp1"]


class Precision(TypedDict):
    """The ``bits`` and ``dtype`` keywords of the ``workloads.build`` op makers."""

    bits: int
    dtype: str


INT8: Precision = {"bits": 8, "dtype": "int"}
SOURCE = "Jouppi et al., ISCA 2017, Table 1 (shapes approximated; see workloads/zoo/tpu.py)"


def _relu(after: Op) -> Op:
    out = after.operand("output")
    assert out is not None
    return vector_op(f"{after.name}.relu", "activation", "relu", out.numel * after.copies, **INT8)


def _with_relu(layers: list[Op]) -> list[Op]:
    return [x for op in layers for x in (op, _relu(op))]


def _mlp(name: str, layers: int, width: int, batch: int) -> Workload:
    ops = _with_relu([gemm_op(f"fc{i}", batch, width, width, out_bits=8, **INT8) for i in range(layers)])
    return Workload(name=name, ops=tuple(chain(ops)), batch=batch, input_shape=(batch, width), source=SOURCE)


def _lstm(name: str, fc: int, vec: int, hidden: int, batch: int) -> Workload:
    ops: list[Op] = []
    for i in range(fc):
        ops.append(gemm_op(f"gate{i}", batch, hidden, 2 * hidden, op="lstm_gate", out_bits=8, **INT8))
        if i < vec:
            ops.append(vector_op(f"vec{i}", "activation", "sigmoid" if i % 2 else "tanh", batch * hidden, **INT8))
    for i in range(fc, vec):
        ops.append(vector_op(f"vec{i}", "elementwise", "mul", batch * hidden, **INT8))
    return Workload(name=name, ops=tuple(chain(ops)), batch=batch, input_shape=(batch, 2 * hidden), source=SOURCE)


def mlp0(batch: int = 200) -> Workload:
    return _mlp("MLP0", 5, 2000, batch)


def mlp1(batch: int = 168) -> Workload:
    return _mlp("MLP1", 4, 1120, batch)


def lstm0(batch: int = 64) -> Workload:
    return _lstm("LSTM0", 24, 34, 1040, batch)


def lstm1(batch: int = 96) -> Workload:
    return _lstm("LSTM1", 37, 19, 680, batch)


# ---- CNN0: AlphaGo (Table 1's caption names DeepMind AlphaGo) ---------------------------------
# Silver et al., "Mastering the game of Go with deep neural networks and tree search", Nature 2016:
# the policy network reads 48 feature planes of the 19 x 19 board; its first layer is a 5 x 5
# convolution of k filters, the hidden layers 3 x 3 convolutions of k filters, the last a 1 x 1
# convolution of one filter, all at 19 x 19 ("same" padding). Table 1 gives 16 conv layers and
# 8M weights: 25 x 48 k + 14 x 9 k^2 + k = 8.0M gives k = 247 (AlphaGo published 128-384).
GO_PLANES, GO_BOARD = 48, 19
CNN0_FILTERS = 247


def cnn0(batch: int = 8) -> Workload:
    k = CNN0_FILTERS
    layers = [conv_op("conv0", batch, GO_PLANES, GO_BOARD, GO_BOARD, k, 5, 5, pad=2, **INT8)]
    layers += [conv_op(f"conv{i}", batch, k, GO_BOARD, GO_BOARD, k, 3, 3, pad=1, **INT8) for i in range(1, 15)]
    layers.append(conv_op("conv15", batch, k, GO_BOARD, GO_BOARD, 1, 1, 1, **INT8))
    return Workload(name="CNN0", ops=tuple(chain(_with_relu(layers))), batch=batch,
                    input_shape=(batch, GO_PLANES, GO_BOARD, GO_BOARD), source=SOURCE)


# ---- CNN1: Inception V2 (Sec. 3: "one of our CNNs derives from Inception V2") -------------------
# Ioffe & Szegedy, "Batch Normalization", ICML 2015, Fig. 5: a 7 x 7/2 convolution (64), a 3 x 3
# max pool /2, a 1 x 1 (64) then 3 x 3 (192) convolution, a max pool /2, then ten Inception
# modules. A module: a 1 x 1 branch, a 1 x 1 reduce + 3 x 3, a 1 x 1 reduce + two 3 x 3, and a
# 3 x 3 pool + 1 x 1 projection (the two stride-2 modules, 3c and 4e, have neither 1 x 1 branch
# nor projection: their pool passes through). That is 69 convolutions and 13 pools (the final
# average pool included): Table 1 counts 72 convolutions, 13 pools and 4 FC layers, so the
# production model has 3 more convolutions than the paper names (left out here).
# (1x1, 3x3 reduce, 3x3, double 3x3 reduce, double 3x3, pool projection; 0 = none), stride
INCEPTION_V2 = (("3a", (64, 64, 64, 64, 96, 32), 1), ("3b", (64, 64, 96, 64, 96, 64), 1),
                ("3c", (0, 128, 160, 64, 96, 0), 2),
                ("4a", (224, 64, 96, 96, 128, 128), 1), ("4b", (192, 96, 128, 96, 128, 128), 1),
                ("4c", (160, 128, 160, 128, 160, 128), 1), ("4d", (96, 128, 192, 160, 192, 128), 1),
                ("4e", (0, 128, 192, 192, 256, 0), 2),
                ("5a", (352, 192, 320, 160, 224, 128), 1), ("5b", (352, 192, 320, 192, 224, 128), 1))
# The rest of Table 1's 100M weights are the 4 FC layers (Sec. 4: they run at an operational
# intensity of 32, the batch): 1024 (the pooled features) -> W, then three W x W, with
# 1024 W + 3 W^2 = 100M - the convolutions' weights. Table 1's 1750 MACs per weight byte at
# batch 32 fix the MACs per image (1750 x 100M / 32); the convolutions take what the FC
# layers leave, which sets the input size (the trunk's MACs grow as its square).
CNN1_WEIGHTS, CNN1_MACS_PER_WEIGHT_BYTE, CNN1_BATCH = 100e6, 1750, 32


def _inception_trunk(batch: int, size: int) -> list[Op]:
    """BN-Inception's convolutions and pools at a ``size`` x ``size`` input, each conv followed by
    its ReLU, branches reading their module's input (a DAG, not a chain)."""
    ops: list[Op] = []

    def conv(name: str, src: tuple[str, ...], cin: int, hw: int, cout: int, r: int, stride: int = 1) -> str:
        op = conv_op(name, batch, cin, hw, hw, cout, r, r, stride=stride, pad=r // 2, producers=src, **INT8)
        ops.extend((op, dataclasses.replace(_relu(op), producers=(name,))))
        return f"{name}.relu"

    def pool(name: str, src: tuple[str, ...], channels: int, hw_out: int) -> str:
        ops.append(vector_op(name, "pool", "max_pool2d", batch * channels * hw_out * hw_out, producers=src, **INT8))
        return name

    def half(n: int) -> int:           # a 3 x 3 (7 x 7) window at stride 2, padded by 1 (3)
        return -(-n // 2)

    hw = half(size)
    x = conv("conv1", (), 3, size, 64, 7, 2)
    x = pool("pool1", (x,), 64, half(hw))
    hw = half(hw)
    x = conv("conv2", (conv("conv2_reduce", (x,), 64, hw, 64, 1),), 64, hw, 192, 3)
    x = pool("pool2", (x,), 192, half(hw))
    hw, cin = half(hw), 192
    src: tuple[str, ...] = (x,)
    for name, (c1, c3r, c3, d3r, d3, proj), stride in INCEPTION_V2:
        out = half(hw) if stride == 2 else hw
        branches = []
        if c1:
            branches.append(conv(f"{name}.1x1", src, cin, hw, c1, 1))
        branches.append(conv(f"{name}.3x3", (conv(f"{name}.3x3_reduce", src, cin, hw, c3r, 1),), c3r, hw, c3, 3, stride))
        d = conv(f"{name}.d3x3_0", (conv(f"{name}.d3x3_reduce", src, cin, hw, d3r, 1),), d3r, hw, d3, 3)
        branches.append(conv(f"{name}.d3x3_1", (d,), d3, hw, d3, 3, stride))
        p = pool(f"{name}.pool", src, cin, out)
        branches.append(conv(f"{name}.proj", (p,), cin, out, proj, 1) if proj else p)
        cin = c1 + c3 + d3 + (proj or cin)
        hw, src = out, tuple(branches)
    pool("global_pool", src, cin, 1)
    return ops


def _weights(op: Op) -> int:
    w = op.operand("weight")
    return w.numel if w is not None else 0


def _fc_width(trunk_weights: float) -> int:
    """W of the FC layers 1024 -> W -> W -> W -> W holding the weights the trunk leaves."""
    rest = CNN1_WEIGHTS - trunk_weights
    return round((-1024 + math.sqrt(1024 ** 2 + 12 * rest)) / 6)


@functools.cache
def cnn1_input_size() -> int:
    """The input size whose trunk MACs, with the FC layers', give Table 1's MACs per image."""
    def trunk(size: int) -> tuple[float, float]:
        convs = [op for op in _inception_trunk(1, size) if op.is_gemm]
        return sum(op.macs for op in convs), sum(_weights(op) for op in convs)

    macs224, weights = trunk(224)
    fc = CNN1_WEIGHTS - weights                      # FC MACs per image = FC weights
    target = CNN1_MACS_PER_WEIGHT_BYTE * CNN1_WEIGHTS / CNN1_BATCH - fc
    guess = round(224 * math.sqrt(target / macs224))
    # the padded stride-2 layers round sizes up, so the nearest size is searched around the guess
    return min(range(guess - 8, guess + 9), key=lambda n: abs(trunk(n)[0] - target))


def cnn1(batch: int = CNN1_BATCH) -> Workload:
    size = cnn1_input_size()
    ops = _inception_trunk(batch, size)
    w = _fc_width(sum(_weights(op) for op in ops if op.is_gemm))
    src, cin = ops[-1].name, 1024
    for i in range(4):
        fc = gemm_op(f"fc{i}", batch, w, cin, out_bits=8, producers=(src,), **INT8)
        ops.extend((fc, dataclasses.replace(_relu(fc), producers=(fc.name,))))
        src, cin = f"{fc.name}.relu", w
    return Workload(name="CNN1", ops=tuple(ops), batch=batch, input_shape=(batch, 3, size, size), source=SOURCE)

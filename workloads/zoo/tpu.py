"""The six production workloads of the TPU v1 paper (Jouppi et al., ISCA 2017, Table 1),
approximated from their published layer counts, weight totals, batch sizes and
"TPU ops per weight byte". The paper gives no layer shapes, so each model uses equal
layers sized to match the published weights; int8. Layers run in sequence (each reads the
one before it). Each FC and conv layer of the MLPs and CNNs is followed by its ReLU (Table
1's nonlinear-function column; the TPU applies it in its activation unit, Sec. 2), an op
of its own; the LSTMs' sigmoid and tanh are their vector layers.

| name  | layers             | weights | batch | ops/weight byte (published) |
|-------|--------------------|---------|-------|-----------------------------|
| MLP0  | 5 FC 2000x2000     | 20.0 M  | 200   | 200  (= batch: FC weights are used once per example) |
| MLP1  | 4 FC 1120x1120     | 5.0 M   | 168   | 168  |
| LSTM0 | 24 FC (2080->1040) + 34 vector | 51.9 M | 64 | 64 (LSTM weights are re-read every step) |
| LSTM1 | 37 FC (1360->680) + 19 vector  | 34.2 M | 96 | 96 |
| CNN0  | 16 conv 3x3, 236 ch, 19x19 | 8.0 M | 8 | 2888 = 8 x 361 (19x19 outputs per weight) |
| CNN1  | 72 conv 3x3 256 ch (48 at 11x11, 24 at 12x12) + 4 FC 3792 + 13 pool | 100.0 M | 32 | 1750 |
"""

from __future__ import annotations

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


def cnn0(batch: int = 8) -> Workload:
    ops = _with_relu([conv_op(f"conv{i}", batch, 236, 19, 19, 236, 3, 3, pad=1, **INT8) for i in range(16)])
    return Workload(name="CNN0", ops=tuple(chain(ops)), batch=batch, input_shape=(batch, 236, 19, 19), source=SOURCE)


def cnn1(batch: int = 32) -> Workload:
    ops: list[Op] = []
    pools = 0
    for i in range(72):
        size = 12 if i < 24 else 11
        ops.extend(_with_relu([conv_op(f"conv{i}", batch, 256, size, size, 256, 3, 3, pad=1, **INT8)]))
        if i % 6 == 5 and pools < 13:
            ops.append(vector_op(f"pool{pools}", "pool", "max_pool2d", batch * 256 * size * size,
                                 ops_per_element=1, **INT8))
            pools += 1
    while pools < 13:
        ops.append(vector_op(f"pool{pools}", "pool", "max_pool2d", batch * 256 * 121, **INT8))
        pools += 1
    for i in range(4):
        ops.extend(_with_relu([gemm_op(f"fc{i}", batch, 3792, 3792, out_bits=8, **INT8)]))
    return Workload(name="CNN1", ops=tuple(chain(ops)), batch=batch, input_shape=(batch, 256, 12, 12), source=SOURCE)

"""The trace-native zoo entries against the papers' tables (no torch)."""

import pytest

from workloads import resolve
from workloads.zoo.eie import LAYERS

# TPU paper Table 1: weights (M), TPU ops / weight byte, batch
TPU_TABLE1 = {"mlp0": (20, 200, 200), "mlp1": (5, 168, 168), "lstm0": (52, 64, 64),
              "lstm1": (34, 96, 96), "cnn0": (8, 2888, 8), "cnn1": (100, 1750, 32)}
# GEMM and vector layers; CNN1 derives from Inception V2, whose 69 convolutions are 3 fewer than
# Table 1's 72 (workloads/zoo/tpu.py)
LAYER_COUNTS = {"mlp0": (5, 0), "mlp1": (4, 0), "lstm0": (24, 34), "lstm1": (37, 19), "cnn0": (16, 0), "cnn1": (73, 13)}


@pytest.mark.parametrize("name", list(TPU_TABLE1))
def test_tpu_workloads_match_table1(name):
    weights_m, ops_per_byte, batch = TPU_TABLE1[name]
    wl = resolve(name)
    assert wl.batch == batch
    gemms = [op for op in wl.ops if op.is_gemm]
    weights = sum(op.operand("weight").numel for op in gemms)
    assert weights / 1e6 == pytest.approx(weights_m, rel=0.01)
    assert all(op.operand("weight").bits == 8 for op in gemms)
    # ops per weight byte as the paper counts it: MACs per int8 weight byte per batch
    assert wl.macs / weights == pytest.approx(ops_per_byte, rel=0.02)
    vec = [op for op in wl.ops if not op.is_gemm and op.op != "relu"]
    assert (len(gemms), len(vec)) == LAYER_COUNTS[name]
    # each MLP and CNN layer's ReLU (Table 1's nonlinear function) reads that layer's output
    relus = [op for op in wl.ops if op.op == "relu"]
    assert len(relus) == (0 if name.startswith("lstm") else len(gemms))
    for r in relus:
        layer = wl[r.producers[0]]
        assert layer.is_gemm and r.dims["elements"] == layer.operand("output").numel


def test_eie_benchmarks_table3():
    wl = resolve("eie-benchmarks")
    assert [op.name for op in wl.ops] == ["alex6", "alex7", "alex8", "vgg6", "vgg7", "vgg8", "nt-we", "nt-wd", "nt-lstm"]
    for op, (name, k, n, wd, ad) in zip(wl.ops, LAYERS):
        assert op.operand("weight").shape == (n, k)
        assert op.operand("weight").density == wd
    assert wl["vgg6"].gemm.K == 25088 and wl["nt-lstm"].gemm.K == 1201

"""The original two-GPU AlexNet (alexnet-bvlc), as ZigZag 3.9.1's bundled alexnet.onnx and BVLC
Caffe define it: its layers' shapes and MACs by hand, PyTorch's own count, and ZigZag's file
layer for layer where ZigZag's inputs are installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workloads.spec import resolve

# (output pixels, filters per group, reduction per group, groups): 224x224 in, conv1 unpadded
# 11x11/4 -> 54; pool 3/2 -> 26; conv2 5x5 pad 2, 2 groups of 48 inputs; pool -> 12; conv3-5 3x3
LAYERS = {"features.0": (54 * 54, 96, 3 * 11 * 11, 1), "features.4": (26 * 26, 128, 48 * 25, 2),
          "features.8": (144, 384, 256 * 9, 1), "features.10": (144, 192, 192 * 9, 2),
          "features.12": (144, 128, 192 * 9, 2), "classifier.0": (1, 4096, 256 * 6 * 6, 1),
          "classifier.3": (1, 4096, 4096, 1), "classifier.6": (1, 1000, 4096, 1)}


@pytest.fixture(scope="module")
def lowered():
    """alexnet-bvlc lowered once (no cache: the lowering itself is what both tests read);
    neither test changes the trace."""
    return resolve("alexnet-bvlc")


def test_layers_and_macs_by_hand(lowered):
    wl = lowered
    ops = {op.name: op for op in wl.ops if op.is_gemm}
    assert set(ops) == set(LAYERS)
    for name, (m, n, k, g) in LAYERS.items():
        v = ops[name].gemm
        assert v is not None and (v.M, v.N, v.K, v.copies) == (m, n, k, g), name
    assert wl.macs == sum(m * n * k * g for m, n, k, g in LAYERS.values()) == 654_560_384
    assert sum(op.op == "avg_pool3d" for op in wl.ops) == 2          # the two LRNs' window sums


def test_pytorchs_own_count(lowered):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from workloads.zoo import ZOO
    model, x = ZOO["alexnet-bvlc"].load()(batch=1)
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        model.eval()(x)
    assert lowered.macs == fc.get_total_flops() // 2


@pytest.mark.skipif(not os.environ.get("ZIGZAG_INPUTS"), reason="ZigZag 3.9.1's inputs not installed (set ZIGZAG_INPUTS)")
def test_zigzags_alexnet_onnx_has_these_weights():
    onnx = pytest.importorskip("onnx")
    m = onnx.load(str(Path(os.environ["ZIGZAG_INPUTS"]) / "workload" / "alexnet.onnx"), load_external_data=False)
    shapes = [tuple(i.dims) for i in m.graph.initializer if len(i.dims) in (2, 4)]
    mine = [(n * g, k) for m_, n, k, g in LAYERS.values()]
    theirs = [(d[0], d[1] * (d[2] * d[3] if len(d) == 4 else 1)) for d in shapes]
    assert theirs == mine

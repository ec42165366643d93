"""A zoo model whose forward at the requested batch is large lowers on PyTorch's meta device:
the same ops, names and shapes as the real forward, densities declared (1.0) not measured."""

from __future__ import annotations

import workloads.spec as spec
import workloads.zoo.transformer as tr
from workloads.spec import resolve


def _shape(wl):
    return [(o.name, o.kind, dict(o.dims), o.copies, o.steps, o.producers) for o in wl.ops]


def test_a_big_cnn_batch_lowers_on_meta_with_the_real_shapes(monkeypatch):
    real = resolve("resnet18", batch=2)
    assert any(o.operand("input").density < 0.99 for o in real.ops if o.kind == "conv" and o.operand("input"))
    monkeypatch.setattr(spec, "MATERIALIZE_MACS", 1e9)          # 2 x 1.814 GMAC is over it now
    meta = resolve("resnet18", batch=2)
    assert _shape(meta) == _shape(real)
    assert all(x.density == 1.0 for o in meta.ops for x in o.operands)


def test_a_big_transformer_batch_lowers_on_meta_with_the_real_shapes(monkeypatch):
    real = resolve("bert-base", batch=2, seq_len=16)
    monkeypatch.setattr(tr, "MATERIALIZE_MACS", 1e6)
    meta = resolve("bert-base", batch=2, seq_len=16)
    assert _shape(meta) == _shape(real)

"""A training step's saved activations spilled to a temporary folder during lowering:
the trace is the same, to the byte, as when everything stays in memory."""

from __future__ import annotations

import tempfile

import pytest
import torch

import workloads.lower as L
from workloads.spec import Lowering, resolve


@pytest.mark.parametrize("spec, extra", [("lenet5", {}), ("gru", {}), ("llama-tiny", {"seq_len": 16}),
                                         ("gpt:2,64,4,16,128", {})])
def test_spilling_every_saved_tensor_changes_nothing(spec, extra, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(L, "SPILL_MIN_BYTES", None)
    monkeypatch.setattr(L, "SPILL_KEEP_BYTES", 0)
    torch.manual_seed(0)
    kept = resolve(spec, how=Lowering(train=True), cache=False, **extra)
    spilled_files = []
    real_pack = L._Spill.pack

    def pack(self, t):
        out = real_pack(self, t)
        if not isinstance(out, torch.Tensor):
            spilled_files.append(out[0])
        return out

    monkeypatch.setattr(L._Spill, "pack", pack)
    monkeypatch.setattr(L, "SPILL_MIN_BYTES", 0)            # every saved activation goes to disk
    torch.manual_seed(0)
    spilled = resolve(spec, how=Lowering(train=True), cache=False, **extra)
    assert spilled_files, "nothing was spilled"
    assert spilled.ops == kept.ops                           # names, dims, operands, densities, producers
    assert spilled.meta["parameters"] == kept.meta["parameters"]   # and who wrote each gradient
    assert not any(p.exists() for p in spilled_files)        # the folder is gone
    assert not list(tmp_path.glob("hwsim-lower-*"))


def test_gradients_are_dropped_once_noted():
    m = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 8))
    w = L.lower(m, torch.randn(256, 64), train=True)
    assert all(p.grad is None for p in m.parameters())
    assert w.meta["parameters"]["0.weight"]["grad"] == ["0.wgrad"]
    assert w.meta["parameters"]["2.bias"]["grad"] == ["2.grad"]

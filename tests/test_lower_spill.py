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


@pytest.mark.parametrize("spec", ["lenet300", "gpt:2,64,4,16,128"])
def test_kept_weights_on_disk_give_the_same_trace_and_file(spec, monkeypatch, tmp_path):
    """Kept weights mapped from a temporary folder: the same values as kept in memory, saved
    to an npz that np.load reads back equal, and the folder gone once the lowering ends."""
    import numpy as np

    from workloads.trace import Workload

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(L, "KEEP_ON_DISK_BYTES", None)
    torch.manual_seed(0)
    mem = resolve(spec, keep_weights=True, cache=False)
    monkeypatch.setattr(L, "KEEP_ON_DISK_BYTES", 1)           # every kept weight goes to disk
    torch.manual_seed(0)
    disk = resolve(spec, keep_weights=True, cache=False)
    assert not list(tmp_path.glob("hwsim-weights-*"))          # unlinked; the mappings stay valid
    pairs = [(a, b) for x, y in zip(mem.ops, disk.ops) for a, b in zip(x.operands, y.operands)]
    mapped = [b for a, b in pairs if b.values is not None]
    assert mapped and all(isinstance(b.values.base, np.memmap) or isinstance(b.values, np.memmap) for b in mapped)
    for a, b in pairs:
        assert a == b and (a.values is None) == (b.values is None)
        if a.values is not None:
            assert np.array_equal(a.values, b.values)
    mem.save(tmp_path / "mem.json")
    disk.save(tmp_path / "disk.json")
    x, y = np.load(tmp_path / "mem.npz"), np.load(tmp_path / "disk.npz")
    assert sorted(x.files) == sorted(y.files) and x.files
    for k in x.files:
        assert np.array_equal(x[k], y[k]) and x[k].dtype == y[k].dtype
    again = Workload.load(tmp_path / "disk.json")
    assert again.ops == disk.ops


def test_the_npz_writer_reads_back_as_savez_would(tmp_path, monkeypatch):
    """Every layout a kept tensor can have (C- or Fortran-ordered, strided, empty, mapped
    from disk, and larger than one slice) reads back with np.load as written."""
    import numpy as np

    from workloads import tensorfile

    rng = np.random.default_rng(0)
    np.save(tmp_path / "m.npy", rng.random((300, 7)).astype(np.float32))
    tensors = {"c": np.arange(12, dtype=np.float32).reshape(3, 4), "f": np.arange(6, dtype=np.int8).reshape(2, 3).T,
               "strided": np.arange(10)[::3], "empty": np.zeros((0, 4)), "big": rng.random(5000),
               "mapped": np.load(tmp_path / "m.npy", mmap_mode="r"), "mapped_t": np.load(tmp_path / "m.npy", mmap_mode="r").T}
    monkeypatch.setattr(tensorfile, "CHUNK_BYTES", 1000)    # several slices per array
    with open(tmp_path / "x.npz", "wb") as f:
        tensorfile.write_npz(f, tensors)
    z = np.load(tmp_path / "x.npz")
    assert sorted(z.files) == sorted(tensors)
    for k, v in tensors.items():
        assert z[k].dtype == v.dtype and z[k].shape == v.shape and np.array_equal(z[k], v), k


@pytest.mark.parametrize("spec, extra", [("gpt:2,64,4,16,128", {}), ("llama-tiny", {"seq_len": 16})])
@pytest.mark.parametrize("keep", [False, "sparse", True])
def test_paged_out_weights_give_the_same_training_trace(spec, extra, keep, monkeypatch, tmp_path):
    """A zoo transformer's weights emptied after their module's forward and regenerated
    when backward reads them: the same trace (and kept values) as weights held throughout,
    with every saved activation spilled so that the loss's gradient runs in place."""
    import numpy as np

    from workloads.zoo import lazy

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(L, "SPILL_MIN_BYTES", 0)
    monkeypatch.setattr(L, "SPILL_KEEP_BYTES", 0)
    monkeypatch.setattr(lazy, "PAGE_MIN_BYTES", 1 << 60)     # nothing is paged
    held = resolve(spec, keep_weights=keep, how=Lowering(train=True), cache=False, **extra)
    calls = {"release": 0, "refill": 0, "in_place": 0}
    real_release, real_refill, real_in_place = lazy.Pager.release, lazy.Pager.refill, L._log_softmax_backward_in_place

    def count(name, real):
        def wrapped(*a):
            out = real(*a)
            calls[name] += out is not None if name == "in_place" else 1
            return out
        return wrapped

    monkeypatch.setattr(lazy.Pager, "release", count("release", real_release))
    monkeypatch.setattr(lazy.Pager, "refill", count("refill", real_refill))
    monkeypatch.setattr(L, "_log_softmax_backward_in_place", count("in_place", real_in_place))
    monkeypatch.setattr(lazy, "PAGE_MIN_BYTES", 0)           # every module's weights are paged
    paged = resolve(spec, keep_weights=keep, how=Lowering(train=True), cache=False, **extra)
    assert calls["release"] and calls["refill"] and calls["in_place"] == 1, calls
    assert paged.ops == held.ops and paged.meta["parameters"] == held.meta["parameters"]
    for x, y in zip(held.ops, paged.ops):
        for a, b in zip(x.operands, y.operands):
            assert (a.values is None) == (b.values is None)
            if a.values is not None:
                assert np.array_equal(a.values, b.values)


def test_weights_are_empty_while_the_loss_runs(monkeypatch):
    """Between a module's forward and the backward node that reads them, a paged weight
    holds no memory: when the loss runs, no paged parameter has any bytes."""
    from workloads.zoo import lazy
    from workloads.zoo.transformer import gpt

    monkeypatch.setattr(lazy, "PAGE_MIN_BYTES", 0)
    model, tokens = gpt("gpt:2,64,4,16,128")
    seen = []

    def loss(out):
        params = list({id(p): p for p in model.parameters()}.values())
        seen.append([p.untyped_storage().nbytes() for p in params if not p.is_meta])
        return L.default_loss(out)

    w = L.lower(model, tokens, train=True, loss=loss)
    assert seen and seen[0] and all(n == 0 for n in seen[0])
    assert w.meta["parameters"]["wte.weight"]["grad"]        # the tied embedding's gradient was still noted


def test_the_log_softmax_gradient_in_place_equals_the_op():
    """Written over the output, block by block: the same bits as aten's kernel; refused
    (None) where the reduction is not over the last dimension or the output not contiguous."""
    for shape in [(64, 5000), (3, 7, 333), (2, 1)]:
        x, g = torch.randn(*shape), torch.randn(*shape)
        out = torch.log_softmax(x, -1)
        ref = torch.ops.aten._log_softmax_backward_data(g, out, -1, torch.float32)
        mine = out.clone()
        got = L._log_softmax_backward_in_place({"grad_output": g, "output": mine, "dim": -1,
                                                "input_dtype": torch.float32})
        assert got is not None and got.data_ptr() == mine.data_ptr() and torch.equal(got, ref)
    x = torch.randn(8, 6)
    out0 = torch.log_softmax(x, 0)
    assert L._log_softmax_backward_in_place({"grad_output": x, "output": out0.clone(), "dim": 0,
                                             "input_dtype": torch.float32}) is None
    t = torch.log_softmax(x.t(), -1)
    assert L._log_softmax_backward_in_place({"grad_output": t, "output": t.t().contiguous().t(), "dim": -1,
                                             "input_dtype": torch.float32}) is None

"""The lowering's fast paths give what the step-by-step ones gave, to the byte: nonzeros
counted by numpy, meta-device ops run once per distinct input (``MetaOps``), operands
made once per distinct content, and the precision pass making each new operand width once."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace

import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

import workloads.spec as spec
import workloads.zoo.transformer as tr
from workloads import precision, training
from workloads.lowering import metaops, recorder, tensors
from workloads.lowering.metaops import MetaOps
from workloads.lowering.tensors import _plain, nonzeros
from workloads.spec import Lowering, resolve
from workloads.trace import Operand, Workload

_SPECIAL = [0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-45, -1e-45, 5e-324, 65504.0]
_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16,
           torch.int32, torch.int64, torch.bool]


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from(_DTYPES), shape=st.lists(st.integers(0, 7), min_size=0, max_size=3),
       picks=st.lists(st.integers(0, len(_SPECIAL)), min_size=1, max_size=64), view=st.sampled_from(
           ["plain", "transposed", "strided", "offset", "expanded"]), seed=st.integers(0, 2 ** 16))
def test_nonzeros_counts_what_torch_counts(dtype, shape, picks, view, seed):
    """Every dtype (-0.0, NaN, subnormals; bfloat16 by its bits), every layout of a view."""
    g = torch.Generator().manual_seed(seed)
    n = math.prod(shape) if shape else 1
    vals = torch.tensor([_SPECIAL[p] if p < len(_SPECIAL) else float(torch.randn(1, generator=g))
                         for p in (picks * (n // len(picks) + 1))[:max(n, 1)]], dtype=torch.float64)
    base = (vals.to(dtype) if dtype.is_floating_point else
            torch.nan_to_num(vals, nan=0.0, posinf=3.0, neginf=-3.0).clamp(-100, 100).to(dtype))
    t = base[:n].reshape(shape) if shape else base[0]
    if view == "transposed" and t.dim() >= 2:
        t = t.transpose(0, -1)
    elif view == "strided" and t.dim() >= 1:
        t = t[..., ::2]
    elif view == "offset" and base.numel() > 1:
        t = base[1:]
    elif view == "expanded" and t.dim() >= 1 and t.shape[-1] >= 1:
        t = t[..., :1].expand(*t.shape[:-1], 3)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(tensors, "_SERIAL", 0)           # numpy counts even a small tensor
        assert nonzeros(t) == int(torch.count_nonzero(t))


def test_nonzeros_of_big_and_paged_tensors():
    """Chunked counting across chunk edges; the storage stays resizable (paged weights)."""
    t = torch.randn(7 * 28087)                # past three chunks, not a multiple of one
    t[::7] = 0
    t[-1] = -0.0
    assert nonzeros(t) == int(torch.count_nonzero(t))
    for big in (t.bfloat16(), t.reshape(-1, 7)[:, 1:].t(), t[::3]):     # bits; not contiguous
        assert nonzeros(big) == int(torch.count_nonzero(big))
    w = torch.nn.Parameter(torch.randn(256, 256))
    assert nonzeros(w) == 256 * 256
    w.untyped_storage().resize_(0)          # what the pager does after a module's forward
    assert not _plain(w) and nonzeros(torch.zeros(0)) == 0      # an emptied view is left to torch


def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, dtype=dtype, device="meta")


def _look(t):
    return (tuple(t.shape), t.stride(), t.dtype, t.storage_offset(), t.untyped_storage().nbytes(), t.is_meta)


@pytest.mark.parametrize("func, args, kwargs", [
    (torch.ops.aten.mul.Tensor, (_meta(2, 3), _meta(3)), {}),
    (torch.ops.aten.add.Tensor, (_meta(4, 1, 3).transpose(0, 2), _meta(1, 5, 1)), {"alpha": 2}),
    (torch.ops.aten.native_layer_norm.default, (_meta(2, 5, 8), [8], _meta(8), _meta(8), 1e-5), {}),
    (torch.ops.aten._softmax.default, (_meta(2, 4, 4), -1, False), {}),
    (torch.ops.aten.addmm.default, (_meta(6), _meta(3, 5), _meta(5, 6)), {}),
    (torch.ops.aten.native_dropout.default, (_meta(3, 3), 0.1, True), {}),
    (torch.ops.aten._to_copy.default, (_meta(2, 3),), {"dtype": torch.float16}),
    (torch.ops.aten.clone.default, (_meta(3, 4).t(),), {"memory_format": torch.contiguous_format}),
    (torch.ops.aten.cat.default, ([_meta(2, 3), _meta(4, 3)],), {}),
])
def test_meta_ops_make_what_the_kernel_makes(func, args, kwargs):
    """A remembered op's outputs: the kernel's sizes, strides, dtypes and storage sizes, in
    new storages of their own."""
    run = MetaOps()
    first = run(func, args, kwargs)
    again = run(func, args, kwargs)
    want = func(*args, **kwargs)
    outs = [o for o in (again if isinstance(again, tuple) else (again,))]
    wants = [o for o in (want if isinstance(want, tuple) else (want,))]
    assert [_look(o) for o in outs] == [_look(o) for o in wants]
    assert run.seen and all(v is not None for v in run.seen.values())
    keys = {o.untyped_storage()._cdata for o in outs}
    firsts = first if isinstance(first, tuple) else (first,)
    assert len(keys) == len(outs) and not keys & {o.untyped_storage()._cdata for o in firsts}


def test_meta_ops_run_what_they_cannot_remember():
    """Views, in-place ops, real tensors and other shapes run the kernel every time."""
    run = MetaOps()
    x = _meta(4, 6)
    assert run(torch.ops.aten.t.default, (x,), {}).untyped_storage()._cdata == x.untyped_storage()._cdata
    assert run(torch.ops.aten.add_.Tensor, (x, x), {}) is x
    real = torch.ones(3)
    assert run(torch.ops.aten.mul.Tensor, (real, real), {}).sum() == 3
    a = run(torch.ops.aten.mul.Tensor, (x, 2.0), {})
    b = run(torch.ops.aten.mul.Tensor, (_meta(5, 6), 2.0), {})
    assert (tuple(a.shape), tuple(b.shape)) == ((4, 6), (5, 6))
    assert not run.seen.get((torch.ops.aten.add_.Tensor,))


class _Forget(dict):
    """An operand memo that remembers nothing: every operand made afresh, as before."""

    def get(self, key, default=None):
        return default

    def __setitem__(self, key, value):
        pass


def _step_by_step(monkeypatch):
    """Lowering as it ran before the fast paths: every op's kernel, every operand made, every
    nonzero counted by torch."""
    monkeypatch.setattr(metaops.MetaOps, "__call__", lambda self, func, args, kwargs: func(*args, **kwargs))
    monkeypatch.setattr(recorder, "nonzeros", lambda t: int(torch.count_nonzero(t)))
    init = recorder.Recorder.__init__

    def forgetful(self, *a, **k):
        init(self, *a, **k)
        self.operands = _Forget()
    monkeypatch.setattr(recorder.Recorder, "__init__", forgetful)


def _doc(wl: Workload) -> str:
    doc, _ = wl.to_dict()
    return json.dumps(doc, sort_keys=True)


_CASES = [("gpt:2,64,4,16,128", {}, Lowering(train=True, precision="bf16-mixed", recompute="selective")),
          ("gpt:2,64,4,16,128", {}, Lowering(train=True, attention="fused", precision="fp16-mixed")),
          ("llama-tiny", {"seq_len": 16}, Lowering(decode=3, attention="fused")),
          ("lenet5", {}, Lowering(train=True)),
          ("gru", {}, Lowering())]


@pytest.mark.parametrize("meta", [False, True], ids=["real", "meta"])
def test_fast_lowering_is_the_step_by_step_one(meta, monkeypatch):
    """Zoo models, inference and training steps, real and on the meta device (where
    ``MetaOps`` remembers ops): the same trace, byte for byte."""
    if meta:
        monkeypatch.setattr(tr, "MATERIALIZE_MACS", 1.0)
        monkeypatch.setattr(spec, "MATERIALIZE_MACS", 1.0)
    cases = [c for c in _CASES if c[0] not in ("lenet5", "gru")] + [("resnet18", {"batch": 2}, Lowering())] \
        if meta else _CASES                       # (lenet5 and the GRU have no meta-device form)

    def lowered(s, kw, how):
        torch.manual_seed(0)             # stock RNN layers draw their weights from torch's generator
        return _doc(resolve(s, how=how, **kw))
    fast = [lowered(*case) for case in cases]
    with monkeypatch.context() as m:
        _step_by_step(m)
        slow = [lowered(*case) for case in cases]
    for (s, _, how), a, b in zip(cases, fast, slow):
        assert a == b, (s, how)


def _apply_step_by_step(wl: Workload, name: str) -> Workload:
    """``precision.apply`` as it was: every float operand and op made again."""
    pol = precision.policy(name)
    if pol.name == "fp32":
        return replace(wl, meta={**wl.meta, "precision": "fp32"})
    out_bits: dict[str, int] = {}
    by_name = {op.name: op for op in wl.ops}
    ops = []
    for op in wl.ops:
        src = op if op.phase == "forward" else (precision._forward_of(op, by_name) or op)
        ins = [out_bits[p] for p in op.producers if p in out_bits]
        if src.kind in precision.LOWER_KINDS:
            gin, gout = pol.gemm_in, pol.gemm_out
        elif pol.model_bits < 32:
            gin, gout = None, 32 if src.op in precision.LOSS_OPS else pol.model_bits
        elif src.op in precision.FP32_OPS:
            gin, gout = None, 32
        else:
            gin, gout = None, max(ins, default=pol.low if op.phase != "forward" else 32)
        widest_in = max(ins, default=32)

        def width(o: Operand) -> Operand:
            if o.dtype != "float":
                return o
            bits = gout if o.role == "output" else gin if gin is not None else widest_in
            return replace(o, bits=bits)
        new = replace(op, operands=tuple(width(o) for o in op.operands))
        out = new.operand("output")
        if out is None or out.dtype == "float":
            out_bits[op.name] = out.bits if out is not None else gout
        ops.append(new)
    return replace(wl, ops=tuple(ops), meta={**wl.meta, "precision": pol.name})


@pytest.mark.parametrize("name", list(precision.POLICIES))
def test_precision_pass_is_the_step_by_step_one(name):
    """Every policy on a training step, and on a trace whose equal operands differ in how
    their density is written (1 and 1.0, 0.0 and -0.0)."""
    wl = resolve("gpt:2,64,4,16,128", how=Lowering(train=True))
    doc, _ = wl.to_dict()
    for i, op in enumerate(doc["ops"]):
        for o in op["operands"]:
            if o.get("density") == 1.0:
                o["density"] = 1 if i % 2 else 1.0
            elif o.get("density") == 0.0:
                o["density"] = -0.0 if i % 2 else 0.0
    odd = Workload.from_dict(doc)
    for w in (wl, odd):
        assert _doc(precision.apply(w, name)) == _doc(_apply_step_by_step(w, name))


def _recompute_step_by_step(wl: Workload, mode: str) -> Workload:
    """``training.apply_recompute`` as it was: every block against every op by name."""
    blocks = list(wl.meta.get("blocks") or [])
    by_name = {op.name: op for op in wl.ops}
    consumers = wl.consumers()
    chosen: dict[str, list] = {}
    for b in blocks:
        fwd = [op for op in wl.ops if op.phase == "forward" and op.name.startswith(b + ".")]
        if mode == "selective":
            core = training._attention_core(fwd, consumers, by_name)
            fwd = [op for op in fwd if op.name in core]
        if fwd:
            chosen[b] = fwd
    ops: list = []
    done: set[str] = set()
    for op in wl.ops:
        if op.phase == "backward":
            for b, fwd in chosen.items():
                if b not in done and op.name.startswith(b + "."):
                    done.add(b)
                    names = {f.name for f in fwd}
                    for f in fwd:
                        ops.append(replace(f, name=f"{f.name}.recompute", phase="backward",
                                           producers=tuple(f"{p}.recompute" if p in names else p for p in f.producers)))
        ops.append(op)
    recomputed = {b: {f.name for f in fwd} for b, fwd in chosen.items()}

    def rewired(op):
        b = next((b for b in recomputed if op.name.startswith(b + ".")), None)
        if op.phase != "backward" or b is None or op.name.endswith(".recompute"):
            return op
        return replace(op, producers=tuple(f"{p}.recompute" if p in recomputed[b] else p for p in op.producers))
    return replace(wl, ops=tuple(rewired(op) for op in ops), meta={**wl.meta, "recompute": mode})


@functools.lru_cache(maxsize=None)
def _train(spec_: str) -> Workload:
    torch.manual_seed(0)
    return resolve(spec_, how=Lowering(train=True), **({"batch": 2} if spec_ == "resnet18" else {}))


def _prefixes(wl: Workload) -> list[str]:
    return sorted({op.name[:i] for op in wl.ops for i, c in enumerate(op.name) if c == "."})


@settings(max_examples=40, deadline=None)
@given(spec_=st.sampled_from(["gpt:2,64,4,16,128", "lenet5"]), mode=st.sampled_from(["selective", "full"]),
       data=st.data())
def test_recompute_is_the_step_by_step_one(spec_, mode, data):
    """The model's own blocks, and any list of names (nested, repeated, in any order)."""
    wl = _train(spec_)
    blocks = data.draw(st.one_of(st.just(list(wl.meta["blocks"])),
                                 st.lists(st.sampled_from(_prefixes(wl)), min_size=1, max_size=8)))
    assume(blocks)                  # none: refused before either looks (as it was)
    wl = replace(wl, meta={**wl.meta, "blocks": blocks})
    try:
        want = _doc(_recompute_step_by_step(wl, mode))
    except Exception as e:          # the same refusal (a name made twice)
        with pytest.raises(type(e)):
            training.apply_recompute(wl, mode)
        return
    assert _doc(training.apply_recompute(wl, mode)) == want


def test_recompute_of_the_zoo_is_the_step_by_step_one():
    for s in ("gpt:2,64,4,16,128", "resnet18"):
        wl = _train(s)
        for mode in ("selective", "full"):
            assert _doc(training.apply_recompute(wl, mode)) == _doc(_recompute_step_by_step(wl, mode))

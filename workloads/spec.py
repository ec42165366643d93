"""Resolve what a user names into a :class:`Workload`.

A MODEL argument may be a zoo name (``resnet18``), a saved trace (``net.json``), a
SCALE-Sim topology (``layers.csv``, conv or GEMM form), an ONNX model (``net.onnx``), a user
model (``path/to/file.py:factory`` where ``factory(batch=.., seq_len=..)`` returns
``(module, example_input)``; run as the user's code, see :mod:`workloads.usercode`), or an
ad-hoc shape for a quick what-if: ``gemm:M,N,K[:PRECISION]`` or
``conv:N,C,H,W,K,R,S[,stride,pad][:PRECISION]``, or a GPT of any shape,
``gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB]``. A torch model lowers for
inference or, with :class:`Lowering` ``train=True``, as a training step. Only lowering a
torch model imports torch.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .build import conv_op, gemm_op, precision_bits
from .errors import HwsimError
from .usercode import own_input_failure, user_code
from .trace import Workload
from .zoo import ZOO

__all__ = ["MATERIALIZE_MACS", "Lowering", "adhoc", "is_user_model", "resolve", "torch_model"]

_INT = r"\s*(-?\d+)\s*"


def _ints(text: str, spec: str, names: str) -> list[int]:
    parts = text.split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise HwsimError(f"bad shape {spec!r}: {names} must be integers") from None
    for n, v in zip(names.split(","), vals):
        if v < (0 if n.strip() == "pad" else 1):
            raise HwsimError(f"bad shape {spec!r}: {n.strip()} must be {'>= 0' if n.strip() == 'pad' else '>= 1'}, got {v}")
    return vals


def adhoc(spec: str, batch: int | None = None) -> Workload:
    """``gemm:M,N,K[:fp16]`` or ``conv:N,C,H,W,K,R,S[,stride,pad][:int8]`` as a one-op workload."""
    kind, _, rest = spec.partition(":")
    shape, _, prec = rest.partition(":")
    bits, dtype = precision_bits(prec) if prec else (32, "float")
    if batch is not None and kind in ("gemm", "conv"):
        where = "its rows M" if kind == "gemm" else "its first number N"
        raise HwsimError(f"--batch does not apply to {spec}: an ad-hoc shape states its own batch ({where}); "
                         "change the shape instead")
    if kind == "gemm":
        vals = _ints(shape, spec, "M,N,K")
        if len(vals) != 3:
            raise HwsimError(f"bad shape {spec!r}: expected gemm:M,N,K (three integers)")
        M, N, K = vals
        op = gemm_op("gemm", M, N, K, bits=bits, dtype=dtype)
        return Workload(name=spec, ops=(op,), batch=1, input_shape=(M, K), source="adhoc")
    if kind == "conv":
        vals = _ints(shape, spec, "N,C,H,W,K,R,S,stride,pad")
        if len(vals) not in (7, 8, 9):
            raise HwsimError(f"bad shape {spec!r}: expected conv:N,C,H,W,K,R,S[,stride,pad]")
        N, C, H, W, K, R, S = vals[:7]
        stride = vals[7] if len(vals) > 7 else 1
        pad = vals[8] if len(vals) > 8 else 0
        op = conv_op("conv", N, C, H, W, K, R, S, stride=stride, pad=pad, bits=bits, dtype=dtype)
        return Workload(name=spec, ops=(op,), batch=N, input_shape=(N, C, H, W), source="adhoc")
    raise HwsimError(f"bad ad-hoc workload {spec!r}: use gemm:M,N,K or conv:N,C,H,W,K,R,S[,stride,pad]")


def is_user_model(spec: str) -> bool:
    """Whether MODEL is ``file.py:factory``: the user's code, which hwsim runs."""
    return re.search(r"\.py:[A-Za-z_]\w*$", spec) is not None


def _user_factory_path(spec: str) -> Path:
    path = spec.rpartition(":")[0]
    p = Path(path)
    if not p.is_file():
        raise HwsimError(f"model file {path!r} not found")
    return p


def _user_factory(spec: str):
    p = _user_factory_path(spec)
    path, _, fname = spec.rpartition(":")
    modspec = importlib.util.spec_from_file_location(f"hwsim_user_{p.stem}", p)
    assert modspec is not None and modspec.loader is not None     # a .py file always has a source loader
    mod = importlib.util.module_from_spec(modspec)
    with user_code(p, "importing the model file"):
        modspec.loader.exec_module(mod)
    f = getattr(mod, fname, None)
    if not callable(f):
        raise HwsimError(f"{path}: no callable {fname!r} (expected factory() -> (module, example_input))")
    return f


def _call_factory(f, name: str, batch: int | None, seq_len: int | None, decode: int | None = None):
    params = inspect.signature(f).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    kw = {}
    for flag, key, value, why in (("--batch", "batch", batch, "takes no 'batch' argument; drop --batch"),
                                  ("--seq-len", "seq_len", seq_len, "has no sequence length; drop --seq-len"),
                                  ("--decode", "decode", decode, "has no decode steps (it is not a decoder); "
                                                                 "drop --decode")):
        if value is None:
            continue
        if key not in params and not takes_any:
            raise HwsimError(f"{name}: the model {why}")
        kw[key] = value
    return f(**kw)


@dataclass(frozen=True)
class Lowering:
    """How a torch model becomes a trace: inference or a training step, and its options."""

    train: bool = False
    attention: str = "unfused"
    optimizer: str = "adam"
    recompute: str = "none"
    precision: str = "fp32"
    decode: int | None = None

    def check(self) -> None:
        from .precision import policy
        from .training import RECOMPUTE, optimizer
        policy(self.precision)
        optimizer(self.optimizer)
        if self.attention not in ("unfused", "fused"):
            raise HwsimError(f"--attention must be unfused or fused, got {self.attention!r}")
        if self.recompute not in RECOMPUTE:
            raise HwsimError(f"--recompute must be one of {', '.join(RECOMPUTE)}, got {self.recompute!r}")
        if self.recompute != "none" and not self.train:
            raise HwsimError("--recompute applies to a training step; add --train")
        if self.decode is not None and (self.decode < 1):
            raise HwsimError(f"--decode must be >= 1, got {self.decode}")
        if self.decode and self.train:
            raise HwsimError("--decode is inference (one token at a time with a KV cache); drop --train")


def _lower(name: str, made, source: str, keep_weights: bool | str, how: Lowering) -> Workload:
    from .lower import lower  # imports torch
    try:
        module, example = made
    except (TypeError, ValueError):
        raise HwsimError(f"{name}: the factory must return (module, example_input)") from None
    meta = {**_kv_cache(module, example), **_tokens(module, example)}
    wl = lower(module, example, name=name, source=source, keep_weights=keep_weights, train=how.train,
               attention=how.attention, meta=meta)
    if how.train:
        from .training import training_step
        return training_step(wl, optimizer=how.optimizer, recompute=how.recompute, precision=how.precision)
    from .precision import apply
    return apply(wl, how.precision) if how.precision != "fp32" else wl


def _tokens(module, example) -> dict:
    """Tokens per sample of a model that reads token ids (an integer batch x sequence
    tensor): the sequence, and a decode's generated tokens; summaries then give energy per
    token and tokens per second."""
    import torch

    from .zoo.transformer import Generate
    if not isinstance(example, torch.Tensor) or example.dim() != 2 or example.is_floating_point() or \
            example.dtype == torch.bool:
        return {}
    return {"tokens_per_sample": int(example.shape[1]) + (module.steps if isinstance(module, Generate) else 0)}


def _kv_cache(module, example) -> dict:
    """A decode's KV cache: 2 x layers x batch x key/value heads x tokens x head dim elements."""
    from .zoo.transformer import Generate
    if not isinstance(module, Generate):
        return {}
    c = module.model.cfg
    batch, prompt = example.shape[0], example.shape[1]
    tokens = prompt + module.steps
    return {"kv_cache_elements": 2 * c.layers * batch * (c.kv_heads or c.heads) * tokens * c.head_dim,
            "decode_steps": module.steps, "prompt_tokens": prompt}


def resolve(spec: str, batch: int | None = None, seq_len: int | None = None,
            keep_weights: bool | str = False, how: Lowering | None = None, cache: bool = False) -> Workload:
    """Turn a MODEL argument into a workload (see the module docstring).

    With ``cache`` a torch model is lowered once and kept in the trace cache
    (:mod:`workloads.cache`); later calls with the same key read it back without torch.
    """
    how = how or Lowering()
    how.check()
    if batch is not None and batch < 1:
        raise HwsimError(f"--batch must be >= 1, got {batch}")
    if seq_len is not None and seq_len < 1:
        raise HwsimError(f"--seq-len must be >= 1, got {seq_len}")
    torch_model = spec.startswith("gpt:") or is_user_model(spec) or \
        (spec in ZOO and ZOO[spec].torch)
    if not torch_model:
        if (how.train or how.decode or how.attention != "unfused") and \
                (spec in ZOO or spec.startswith(("gemm:", "conv:")) or spec.endswith((".json", ".csv", ".onnx"))):
            raise HwsimError(f"{spec}: --train, --decode and --attention need a torch model (a zoo model, gpt:..., "
                             "or file.py:factory); this MODEL is a trace")
        wl = _trace(spec, batch, keep_weights)
        if how.precision != "fp32":
            from .precision import apply
            wl = apply(wl, how.precision)
        return wl
    if spec not in ZOO and not spec.startswith("gpt:"):
        _user_factory_path(spec)
    if cache:
        from .cache import cached, trace_key
        return cached(trace_key(spec, batch, seq_len, keep_weights, how),
                      lambda: _lower_torch(spec, batch, seq_len, keep_weights, how))
    return _lower_torch(spec, batch, seq_len, keep_weights, how)


def _lower_torch(spec: str, batch: int | None, seq_len: int | None, keep_weights: bool | str,
                 how: Lowering) -> Workload:
    if spec.startswith("gpt:"):
        from .zoo.transformer import gpt
        return _lower(spec, gpt(spec, batch or 1, seq_len, how.decode or 0), f"gpt:{spec[4:]}", keep_weights, how)
    if is_user_model(spec):
        path = Path(spec.rpartition(":")[0])
        f = _user_factory(spec)
        with user_code(path, f"calling {spec.rpartition(':')[2]}()"):
            made = _call_factory(f, spec, batch, seq_len, how.decode)
        with user_code(path, "running the model's forward"):
            try:
                return _lower(path.stem, made, f"user:{spec}", keep_weights, how)
            except Exception as e:
                mine = own_input_failure(e, path, made, how.train, f)
                if mine is None:
                    raise
                raise mine from e
    import torch

    entry = ZOO[spec]
    factory = entry.load()
    if entry.reference and not keep_weights and not how.train and \
            float(entry.reference) * 1e9 * (batch or 1) > MATERIALIZE_MACS:
        from .zoo.lazy import on_meta
        with on_meta():  # a big batch: shapes on the meta device, densities declared (1.0), nothing allocated
            made = _call_factory(factory, spec, batch, seq_len, how.decode)
        return _lower(spec, made, f"zoo:{spec}", keep_weights, how)
    if entry.module != "transformer":   # the transformers bound their own sizes (positions, the meta device)
        from .lowering.estimate import check
        check(spec, factory, batch, seq_len)
    try:
        made = _call_factory(factory, spec, batch, seq_len, how.decode)
        return _lower(spec, made, f"zoo:{spec}", keep_weights, how)
    except (MemoryError, RuntimeError) as e:    # the estimate's backstop: the allocator said no
        if not isinstance(e, MemoryError) and "allocate memory" not in str(e):
            raise
        shown = ", ".join(f"{k} {v:,}" for k, v in (("--batch", batch), ("--seq-len", seq_len)) if v is not None)
        raise HwsimError(f"lowering {spec}{' at ' + shown if shown else ''} ran out of memory on this machine; "
                         "make the request smaller") from None


def torch_model(spec: str, batch: int | None = None, seq_len: int | None = None) -> tuple[Any, Any]:
    """(module, example input) of a torch MODEL: a zoo entry that is a torch model, or
    ``file.py:factory`` (your code, run as such: its errors exit 2 naming file and line)."""
    if is_user_model(spec):
        path = Path(spec.rpartition(":")[0])
        f = _user_factory(spec)
        with user_code(path, f"calling {spec.rpartition(':')[2]}()"):
            return _call_factory(f, spec, batch, seq_len)
    entry = ZOO.get(spec)
    if entry is None or not entry.torch:
        torch_names = ", ".join(n for n, e in ZOO.items() if e.torch)
        raise HwsimError(f"{spec!r} is not a torch model: give one of the zoo's ({torch_names}) or file.py:factory")
    return _call_factory(entry.load(), spec, batch, seq_len)


# A zoo CNN whose forward at the requested batch is over this many multiply-accumulates (its
# published MACs per image x batch) lowers on PyTorch's meta device: the same ops and shapes
# in seconds, densities declared (1.0) instead of measured. The same rule as the
# transformers' (workloads.zoo.transformer.MATERIALIZE_MACS, a named assumption: about 7 s of
# lowering at the ~15 GMAC/s measured on the project's 2-core machine); ResNet-50 at batch 32
# is over it.
MATERIALIZE_MACS = 1e11


def _trace(spec: str, batch: int | None, keep_weights: bool | str = False) -> Workload:
    """A MODEL that is a trace already: an ad-hoc shape, a saved trace, a topology, a trace-native zoo entry."""
    if spec.startswith(("gemm:", "conv:")):
        return adhoc(spec, batch)
    if spec.endswith(".json"):
        return Workload.load(spec)
    if spec.endswith(".csv"):
        from .scalesim_topo import read_topology
        return read_topology(spec)
    if spec.endswith(".onnx"):
        from .onnx_input import read_onnx
        return read_onnx(spec, batch, keep_weights)
    entry = ZOO.get(spec)
    if entry is None:
        raise HwsimError(f"unknown model {spec!r}; run 'hwsim models' for the zoo, or give a trace .json, "
                         "a SCALE-Sim topology .csv, an ONNX model .onnx, file.py:factory, gpt:LAYERS,HIDDEN,HEADS, gemm:M,N,K or "
                         "conv:N,C,H,W,K,R,S")
    return _call_factory(entry.load(), spec, batch, None)

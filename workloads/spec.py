"""Resolve what a user names into a :class:`Workload`.

A MODEL argument may be a zoo name (``resnet18``), a saved trace (``net.json``), a
SCALE-Sim topology (``layers.csv``, conv or GEMM form), a user
model (``path/to/file.py:factory`` where ``factory(batch=.., seq_len=..)`` returns
``(module, example_input)``), or an ad-hoc shape for a quick what-if:
``gemm:M,N,K[:PRECISION]`` or ``conv:N,C,H,W,K,R,S[,stride,pad][:PRECISION]``.
Only lowering a torch model imports torch.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

from .build import conv_op, gemm_op, precision_bits
from .errors import HwsimError
from .trace import Workload
from .zoo import ZOO

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
    if kind == "gemm":
        vals = _ints(shape, spec, "M,N,K")
        if len(vals) != 3:
            raise HwsimError(f"bad shape {spec!r}: expected gemm:M,N,K (three integers)")
        M, N, K = vals
        op = gemm_op("gemm", M, N, K, bits=bits, dtype=dtype)
        return Workload(name=spec, ops=(op,), batch=batch or 1, input_shape=(M, K), source="adhoc")
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


def _user_factory(spec: str):
    path, _, fname = spec.rpartition(":")
    p = Path(path)
    if not p.is_file():
        raise HwsimError(f"model file {path!r} not found")
    modspec = importlib.util.spec_from_file_location(f"hwsim_user_{p.stem}", p)
    mod = importlib.util.module_from_spec(modspec)
    try:
        modspec.loader.exec_module(mod)
    except Exception as e:
        raise HwsimError(f"{path}: importing the model file failed: {type(e).__name__}: {e}") from None
    f = getattr(mod, fname, None)
    if not callable(f):
        raise HwsimError(f"{path}: no callable {fname!r} (expected factory() -> (module, example_input))")
    return f


def _call_factory(f, name: str, batch: int | None, seq_len: int | None):
    params = inspect.signature(f).parameters
    kw = {}
    if batch is not None:
        if "batch" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            raise HwsimError(f"{name}: the factory takes no 'batch' argument; drop --batch")
        kw["batch"] = batch
    if seq_len is not None:
        if "seq_len" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            raise HwsimError(f"{name}: the model has no sequence length; drop --seq-len")
        kw["seq_len"] = seq_len
    return f(**kw)


def _lower(name: str, made, source: str, keep_weights: bool) -> Workload:
    from .lower import lower  # imports torch
    try:
        module, example = made
    except (TypeError, ValueError):
        raise HwsimError(f"{name}: the factory must return (module, example_input)") from None
    return lower(module, example, name=name, source=source, keep_weights=keep_weights)


def resolve(spec: str, batch: int | None = None, seq_len: int | None = None,
            keep_weights: bool = False) -> Workload:
    """Turn a MODEL argument into a workload (see the module docstring)."""
    if batch is not None and batch < 1:
        raise HwsimError(f"--batch must be >= 1, got {batch}")
    if seq_len is not None and seq_len < 1:
        raise HwsimError(f"--seq-len must be >= 1, got {seq_len}")
    if spec.startswith(("gemm:", "conv:")):
        return adhoc(spec, batch)
    if spec.endswith(".json"):
        return Workload.load(spec)
    if spec.endswith(".csv"):
        from .scalesim_topo import read_topology
        return read_topology(spec)
    if re.search(r"\.py:[A-Za-z_]\w*$", spec):
        f = _user_factory(spec)
        return _lower(Path(spec.rpartition(":")[0]).stem, _call_factory(f, spec, batch, seq_len), f"user:{spec}",
                      keep_weights)
    entry = ZOO.get(spec)
    if entry is None:
        raise HwsimError(f"unknown model {spec!r}; run 'hwsim models' for the zoo, or give a trace .json, "
                         "a SCALE-Sim topology .csv, file.py:factory, gemm:M,N,K or conv:N,C,H,W,K,R,S")
    made = _call_factory(entry.load(), spec, batch, seq_len)
    if not entry.torch:
        return made
    return _lower(spec, made, f"zoo:{spec}", keep_weights)

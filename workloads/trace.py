"""The workload trace: the contract between the model side and the simulators.

A :class:`Workload` is an ordered list of :class:`Op`. Each op has a unique name (the
torch module path, e.g. ``layer1.0.conv2``), a ``kind``, integer ``dims`` and its
:class:`Operand` tensors (shape, bits, measured density, optionally the real values).

Kinds and their dims
--------------------
``gemm``
    ``M, N, K``: output is M x N, reduction over K (linear: M = batch rows, N = out
    features, K = in features). A ``weight`` operand is stored out x in, (N, K), as in
    ``nn.Linear``; a second activation operand (``input2``) is (K, N). ``repeat`` counts identical GEMMs (e.g. an LSTM's
    recurrent GEMM once per time step).
``conv``
    ``N, C, H, W`` (input), ``K, R, S`` (filters), ``P, Q`` (output), ``stride_h, stride_w,
    pad_h, pad_w, dil_h, dil_w, groups``. Its im2col GEMM view is ``M = N*P*Q``,
    ``N = K/groups``, ``K = C/groups*R*S``, once per group (so depthwise is exact).
``elementwise``, ``activation``, ``pool``, ``norm``, ``softmax``
    ``elements`` (output elements), ``inputs`` (input elements read) and
    ``ops_per_element`` (vector operations per output element, e.g. a pooling window).

File format (version 1)
-----------------------
``NAME.json``: ``{"format": "hwsim-trace", "version": 1, "name", "batch", "input_shape",
"source", "meta", "ops": [...]}``; real tensors live in ``NAME.npz`` beside it and are
referenced from an operand by key. This module does not import torch.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .errors import TraceError

TRACE_FORMAT = "hwsim-trace"
TRACE_VERSION = 1

GEMM_KINDS = ("gemm", "conv")
VECTOR_KINDS = ("elementwise", "activation", "pool", "norm", "softmax")
KINDS = GEMM_KINDS + VECTOR_KINDS
ROLES = ("input", "weight", "bias", "output", "input2")
DTYPES = ("float", "int", "fixed", "index")

GEMM_DIMS = ("M", "N", "K")
CONV_DIMS = ("N", "C", "H", "W", "K", "R", "S", "P", "Q",
             "stride_h", "stride_w", "pad_h", "pad_w", "dil_h", "dil_w", "groups")
VECTOR_DIMS = ("elements", "inputs", "ops_per_element")
_REQUIRED_DIMS = {"gemm": GEMM_DIMS, "conv": CONV_DIMS, **{k: VECTOR_DIMS for k in VECTOR_KINDS}}
_ZERO_OK = {"pad_h", "pad_w"}


@dataclass(frozen=True)
class Gemm:
    """A GEMM ``C[M,N] = A[M,K] @ B[K,N]`` executed ``count`` times."""

    M: int
    N: int
    K: int
    count: int = 1

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K * self.count


@dataclass(frozen=True)
class Operand:
    """One tensor of an op.

    ``bits`` is the storage width of one element: 32/16 (/8) for float, any width for
    int and fixed point, and the codebook index width for ``dtype == "index"`` (then
    ``codebook`` holds the shared values). ``density`` is the measured fraction of
    non-zeros of the real tensor. ``values``, when kept, is the real (decoded) tensor.
    """

    role: str
    shape: tuple[int, ...]
    bits: int = 32
    dtype: str = "float"
    density: float = 1.0
    values: np.ndarray | None = field(default=None, compare=False, repr=False)
    codebook: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        _check_operand(self, f"operand {self.role!r}")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> float:
        """Dense storage in bytes at ``bits`` per element."""
        return self.numel * self.bits / 8


@dataclass(frozen=True)
class Op:
    """One operation of a workload; see the module docstring for kinds and dims."""

    name: str
    kind: str
    op: str
    dims: Mapping[str, int]
    operands: tuple[Operand, ...] = ()
    repeat: int = 1
    module: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", {k: int(v) for k, v in dict(self.dims).items()})
        object.__setattr__(self, "operands", tuple(self.operands))
        _check_op(self, f"op {self.name!r}")

    def operand(self, role: str) -> Operand | None:
        for o in self.operands:
            if o.role == role:
                return o
        return None

    @property
    def is_gemm(self) -> bool:
        return self.kind in GEMM_KINDS

    @property
    def gemm(self) -> Gemm | None:
        """The GEMM view (im2col for convs), or None for vector ops."""
        d = self.dims
        if self.kind == "gemm":
            return Gemm(d["M"], d["N"], d["K"], self.repeat)
        if self.kind == "conv":
            g = d["groups"]
            return Gemm(d["N"] * d["P"] * d["Q"], d["K"] // g, d["C"] // g * d["R"] * d["S"], self.repeat * g)
        return None

    @property
    def macs(self) -> int:
        g = self.gemm
        return g.macs if g else 0

    @property
    def vector_ops(self) -> int:
        """Element operations of a non-GEMM op (all repeats)."""
        if self.is_gemm:
            return 0
        return self.dims["elements"] * self.dims["ops_per_element"] * self.repeat


@dataclass(frozen=True)
class Workload:
    """An ordered list of ops lowered from one model run (or built by hand)."""

    name: str
    ops: tuple[Op, ...]
    batch: int = 1
    input_shape: tuple[int, ...] = ()
    source: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    version: int = TRACE_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "meta", dict(self.meta))
        _check_workload(self)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __getitem__(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"no op named {name!r} in workload {self.name!r}")

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    def with_ops(self, ops) -> "Workload":
        return replace(self, ops=tuple(ops))

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per op (the columns of ``hwsim lower``)."""
        return [op_row(op) for op in self.ops]

    # ---- persistence -------------------------------------------------------------
    def to_dict(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The JSON document and the tensors it references by key."""
        tensors: dict[str, np.ndarray] = {}
        ops = []
        for i, op in enumerate(self.ops):
            operands = []
            for o in op.operands:
                od: dict[str, Any] = {"role": o.role, "shape": list(o.shape), "bits": o.bits,
                                      "dtype": o.dtype, "density": o.density}
                for what in ("values", "codebook"):
                    arr = getattr(o, what)
                    if arr is not None:
                        key = f"{i}.{o.role}.{what}"
                        tensors[key] = np.asarray(arr)
                        od[what] = key
                operands.append(od)
            ops.append({"name": op.name, "kind": op.kind, "op": op.op, "module": op.module,
                        "repeat": op.repeat, "dims": dict(op.dims), "operands": operands})
        doc = {"format": TRACE_FORMAT, "version": self.version, "name": self.name,
               "batch": self.batch, "input_shape": list(self.input_shape), "source": self.source,
               "meta": self.meta, "ops": ops}
        return doc, tensors

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (JSON) and, if any tensors are kept, ``path`` with ``.npz``.

        Both files are written to temporaries and renamed into place, so an interrupted
        save never leaves a half-written trace.
        """
        path = Path(path)
        if path.suffix != ".json":
            raise TraceError(f"{path}: a trace file name must end in .json")
        doc, tensors = self.to_dict()
        npz = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        if tensors:
            _atomic_write(npz, lambda f: np.savez_compressed(f, **tensors), binary=True)
        elif npz.exists():
            npz.unlink()
        _atomic_write(path, lambda f: json.dump(doc, f, indent=1), binary=False)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Workload":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise TraceError(f"{path}: cannot read trace ({e.strerror})") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
        npz = path.with_suffix(".npz")
        tensors: Mapping[str, np.ndarray] = {}
        if npz.exists():
            try:
                with np.load(npz, allow_pickle=False) as z:
                    tensors = {k: z[k] for k in z.files}
            except Exception as e:  # zip/format errors of many kinds
                raise TraceError(f"{npz}: unreadable tensor file ({e})") from None
        return cls.from_dict(doc, tensors, where=str(path))

    @classmethod
    def from_dict(cls, doc: Any, tensors: Mapping[str, np.ndarray] | None = None,
                  where: str = "trace") -> "Workload":
        tensors = tensors or {}
        _need(isinstance(doc, dict), where, "the top level must be a JSON object")
        _need(doc.get("format") == TRACE_FORMAT, f"{where}: format",
              f"expected {TRACE_FORMAT!r}, got {doc.get('format')!r}")
        ver = doc.get("version")
        _need(ver == TRACE_VERSION, f"{where}: version",
              f"this hwsim reads trace version {TRACE_VERSION}, the file has {ver!r}")
        ops_doc = _field(doc, "ops", list, where)
        ops = []
        for i, od in enumerate(ops_doc):
            w = f"{where}: ops[{i}]"
            _need(isinstance(od, dict), w, "must be an object")
            name = _field(od, "name", str, w)
            w = f"{where}: ops[{i}] ({name})"
            operands = []
            for j, pd in enumerate(_field(od, "operands", list, w)):
                pw = f"{w}.operands[{j}]"
                _need(isinstance(pd, dict), pw, "must be an object")
                arrays = {}
                for what in ("values", "codebook"):
                    key = pd.get(what)
                    if key is not None:
                        _need(key in tensors, f"{pw}.{what}",
                              f"references tensor {key!r}, which is missing from the .npz beside the trace")
                        arrays[what] = tensors[key]
                try:
                    operands.append(Operand(
                        role=_field(pd, "role", str, pw),
                        shape=tuple(_field(pd, "shape", list, pw)),
                        bits=_field(pd, "bits", int, pw),
                        dtype=_field(pd, "dtype", str, pw),
                        density=_field(pd, "density", (int, float), pw), **arrays))
                except TraceError as e:
                    role = pd.get("role")
                    raise TraceError(str(e).replace(f"operand {role!r}", pw, 1)) from None
            dims = _field(od, "dims", dict, w)
            for k, v in dims.items():
                _need(isinstance(v, int) and not isinstance(v, bool), f"{w}.dims.{k}",
                      f"must be an integer, got {v!r}")
            try:
                ops.append(Op(name=name, kind=_field(od, "kind", str, w), op=_field(od, "op", str, w),
                              dims=dims, operands=tuple(operands), repeat=_field(od, "repeat", int, w),
                              module=od.get("module", "")))
            except TraceError as e:
                raise TraceError(str(e).replace(f"op {name!r}", w, 1)) from None
        try:
            return cls(name=_field(doc, "name", str, where), ops=tuple(ops),
                       batch=_field(doc, "batch", int, where),
                       input_shape=tuple(_field(doc, "input_shape", list, where)),
                       source=doc.get("source", ""), meta=doc.get("meta", {}) or {})
        except TraceError as e:
            raise TraceError(f"{where}: {e}") from None


def op_row(op: Op) -> dict[str, Any]:
    """The per-op summary columns shared by ``hwsim lower`` and the simulators."""
    g = op.gemm
    w = op.operand("weight")
    a = op.operand("input")
    return {
        "name": op.name, "op": op.op, "kind": op.kind,
        "M": g.M if g else None, "N": g.N if g else None, "K": g.K if g else None,
        "repeat": g.count if g else op.repeat, "macs": op.macs,
        "weight_density": w.density if w else None, "act_density": a.density if a else None,
        "weight_bits": w.bits if w else None, "act_bits": a.bits if a else None,
    }


def conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


# ---- validation -----------------------------------------------------------------------
def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise TraceError(f"{where}: {msg}")


def _field(d: dict, key: str, typ, where: str):
    _need(key in d, f"{where}.{key}", "missing required field")
    v = d[key]
    ok = isinstance(v, typ) and not (isinstance(v, bool) and typ in (int, (int, float)))
    tname = typ.__name__ if isinstance(typ, type) else "number"
    _need(ok, f"{where}.{key}", f"expected {tname}, got {type(v).__name__} {v!r}"[:200])
    return v


def _check_operand(o: Operand, w: str) -> None:
    _need(o.role in ROLES, f"{w}.role", f"unknown role {o.role!r}; one of {', '.join(ROLES)}")
    _need(o.dtype in DTYPES, f"{w}.dtype", f"unknown dtype {o.dtype!r}; one of {', '.join(DTYPES)}")
    _need(all(s >= 0 for s in o.shape), f"{w}.shape", f"sizes must be >= 0, got {list(o.shape)}")
    _need(isinstance(o.bits, (int, np.integer)) and 1 <= o.bits <= 64, f"{w}.bits",
          f"must be an integer in 1..64, got {o.bits!r}")
    if o.dtype == "float":
        _need(o.bits in (8, 16, 32, 64), f"{w}.bits", f"a float operand is 8, 16, 32 or 64 bits, got {o.bits}")
    _need(isinstance(o.density, (int, float)) and 0.0 <= o.density <= 1.0 and not math.isnan(o.density),
          f"{w}.density", f"must be a fraction in [0, 1], got {o.density!r}")
    if o.values is not None:
        _need(tuple(np.shape(o.values)) == o.shape, f"{w}.values",
              f"shape {list(np.shape(o.values))} does not match the operand shape {list(o.shape)}")
    if o.codebook is not None:
        _need(o.dtype == "index", f"{w}.codebook", "a codebook needs dtype 'index'")
        _need(np.ndim(o.codebook) == 1 and len(o.codebook) <= 2 ** o.bits, f"{w}.codebook",
              f"must be 1-D with at most 2**bits = {2 ** o.bits} entries")


def _check_op(op: Op, w: str) -> None:
    _need(bool(op.name), f"{w}.name", "must not be empty")
    _need(op.kind in KINDS, f"{w}.kind", f"unknown kind {op.kind!r}; one of {', '.join(KINDS)}")
    _need(isinstance(op.repeat, int) and op.repeat >= 1, f"{w}.repeat", f"must be an integer >= 1, got {op.repeat!r}")
    d = op.dims
    for k in _REQUIRED_DIMS[op.kind]:
        _need(k in d, f"{w}.dims.{k}", f"missing (a {op.kind} op needs {', '.join(_REQUIRED_DIMS[op.kind])})")
        lo = 0 if (k in _ZERO_OK or op.kind in VECTOR_KINDS) else 1
        _need(d[k] >= lo, f"{w}.dims.{k}", f"must be >= {lo}, got {d[k]}")
    if op.kind == "conv":
        g = d["groups"]
        _need(d["C"] % g == 0 and d["K"] % g == 0, f"{w}.dims.groups",
              f"C={d['C']} and K={d['K']} must both be divisible by groups={g}")
        for out, size, k, s, p, dl in (("P", "H", "R", "stride_h", "pad_h", "dil_h"),
                                       ("Q", "W", "S", "stride_w", "pad_w", "dil_w")):
            want = conv_output_size(d[size], d[k], d[s], d[p], d[dl])
            _need(d[out] == want, f"{w}.dims.{out}",
                  f"is {d[out]} but {size}={d[size]}, {k}={d[k]}, stride={d[s]}, pad={d[p]}, "
                  f"dilation={d[dl]} give {want}")
    roles = [o.role for o in op.operands]
    _need(len(roles) == len(set(roles)), f"{w}.operands", f"duplicate roles {roles}")


def _check_workload(wl: Workload) -> None:
    _need(bool(wl.name), "name", "must not be empty")
    _need(isinstance(wl.batch, int) and wl.batch >= 1, "batch", f"must be an integer >= 1, got {wl.batch!r}")
    seen: set[str] = set()
    for i, op in enumerate(wl.ops):
        _need(isinstance(op, Op), f"ops[{i}]", f"expected an Op, got {type(op).__name__}")
        _need(op.name not in seen, f"ops[{i}].name", f"duplicate op name {op.name!r}; names must be unique")
        seen.add(op.name)


def _atomic_write(path: Path, write, binary: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

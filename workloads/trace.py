"""The workload trace: the contract between the model side and the simulators.

A :class:`Workload` is a graph of :class:`Op`: each op has a unique name (the torch module
path, e.g. ``layer1.0.conv2``), a ``kind``, integer ``dims``, its :class:`Operand` tensors
(shape, bits, measured density, optionally the real values) and the names of the ops whose
outputs it reads (``producers``). This module is the one place the format is defined; it
does not import torch.

Kinds and their dims
--------------------
``gemm``
    ``M, N, K``: output is M x N, reduction over K (linear: M = batch rows, N = out
    features, K = in features). A ``weight`` operand is stored out x in, (N, K), as in
    ``nn.Linear``; a second activation operand (``input2``) is (K, N).
``conv``
    ``N, C, H, W`` (input), ``K, R, S`` (filters), ``P, Q`` (output), ``stride_h, stride_w,
    pad_h, pad_w, dil_h, dil_w, groups``. Its im2col GEMM view is ``M = N*P*Q``,
    ``N = K/groups``, ``K = C/groups*R*S``, once per group (groups are copies).
``attention``
    One fused scaled-dot-product attention (FlashAttention-style: the Lq x Lk score matrix
    never goes to memory): ``B`` (batch), ``H`` query heads, ``Hkv`` key/value heads
    (fewer for grouped-query/multi-query attention), ``Lq``, ``Lk`` (query and key lengths;
    a KV cache makes ``Lk`` > ``Lq``), ``E``, ``Ev`` (head dims), ``causal`` (0/1) and
    ``backward`` (0/1). Work: the forward is QK^T (Lq x Lk x E) and PV (Lq x Ev x Lk) per
    head; the backward recomputes QK^T and does dV, dP, dQ, dK (Dao et al., FlashAttention,
    NeurIPS 2022, Alg. 4): ``Lq Lk (3E + 2Ev)`` MACs per head. MACs count the full score
    matrix (as Narayanan et al. and PyTorch's FlopCounterMode do); a machine may skip the
    blocks a causal mask zeroes. Compulsory traffic: Q, K, V and the output (and, backward,
    the output gradient, the row statistics and dQ, dK, dV), never the score matrix.
``elementwise``, ``activation``, ``pool``, ``norm``, ``softmax``
    ``elements`` (output elements), ``inputs`` (input elements read) and
    ``ops_per_element`` (vector operations per output element, e.g. a pooling window).

Repetition: copies and steps
----------------------------
``copies`` counts independent instances of the op that a machine may run together (one
batched kernel): a bmm's batch, attention heads, Winograd's (m+2)^2 GEMMs. ``steps``
counts dependent instances: step t+1 reads step t's output (an RNN's recurrent GEMM and
its cell ops), so they run one after another on every machine. An op does
``copies x steps`` instances in all; the operands and dims describe one instance.
The loop-carried edge of a recurrence is expressed by ``steps``, never as a producer, so
the graph stays acyclic.

The graph
---------
``producers`` names the ops (of the same workload) whose outputs this op reads; an op
with none reads only the workload's inputs and parameters. The graph must be acyclic;
ops are stored in an order the model ran them, which is a topological order.
``phase`` is ``forward``, ``backward`` or ``optimizer`` (what part of a training step the
op belongs to; inference traces are all ``forward``).

File format (version 3)
-----------------------
``NAME.json``: ``{"format": "hwsim-trace", "version": 3, "name", "batch", "input_shape",
"source", "meta", "tensors"?, "ops": [{"name", "kind", "op", "module", "phase", "copies", "steps",
"producers": [NAME, ...], "dims": {...}, "operands": [{"role", "shape", "bits", "dtype",
"density", "structure"?, "values"?, "codebook"?}]}]}``. Real tensors, when kept, live in the ``.npz``
file that ``tensors`` names (beside the trace) and are referenced from an operand by key.
Version 3 added ``structure`` (N:M structured sparsity; version 2 files are the same
without it, so an older hwsim refuses a v3 file rather than run its weights dense).
Version 1 files (one ``repeat`` field, no graph) are read and migrated (see
:func:`migrate_v1`); files are always written as version 3.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from .errors import HwsimError, TraceError
from .fileio import atomic_write

TRACE_FORMAT = "hwsim-trace"
TRACE_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

GEMM_KINDS = ("gemm", "conv")
VECTOR_KINDS = ("elementwise", "activation", "pool", "norm", "softmax")
KINDS = GEMM_KINDS + ("attention",) + VECTOR_KINDS
ROLES = ("input", "weight", "bias", "output", "input2", "input3")
DTYPES = ("float", "int", "fixed", "index")
PHASES = ("forward", "backward", "optimizer")

GEMM_DIMS = ("M", "N", "K")
CONV_DIMS = ("N", "C", "H", "W", "K", "R", "S", "P", "Q",
             "stride_h", "stride_w", "pad_h", "pad_w", "dil_h", "dil_w", "groups")
VECTOR_DIMS = ("elements", "inputs", "ops_per_element")
ATTENTION_DIMS = ("B", "H", "Hkv", "Lq", "Lk", "E", "Ev", "causal", "backward")
_REQUIRED_DIMS = {"gemm": GEMM_DIMS, "conv": CONV_DIMS, "attention": ATTENTION_DIMS,
                  **{k: VECTOR_DIMS for k in VECTOR_KINDS}}
_ZERO_OK = {"pad_h", "pad_w", "causal", "backward"}


@dataclass(frozen=True)
class Gemm:
    """A GEMM ``C[M,N] = A[M,K] @ B[K,N]``: ``copies`` independent instances per step, ``steps``
    dependent steps."""

    M: int
    N: int
    K: int
    copies: int = 1
    steps: int = 1

    @property
    def count(self) -> int:
        """Instances in all (copies x steps)."""
        return self.copies * self.steps

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K * self.count


@dataclass(frozen=True)
class Operand:
    """One tensor of an op (one instance of it, when the op has copies or steps).

    ``bits`` is the storage width of one element: 32/16 (/8) for float, any width for
    int and fixed point, and the codebook index width for ``dtype == "index"`` (then
    ``codebook`` holds the shared values). ``density`` is the measured fraction of
    non-zeros of the real tensor. ``structure`` is ``"N:M"`` when at most N of every M
    consecutive elements along the reduction (K) dimension are non-zero (2:4 for sparse
    tensor cores), ``""`` otherwise. ``values``, when kept, is the real (decoded) tensor.
    """

    role: str
    shape: tuple[int, ...]
    bits: int = 32
    dtype: str = "float"
    density: float = 1.0
    values: np.ndarray | None = field(default=None, compare=False, repr=False)
    codebook: np.ndarray | None = field(default=None, compare=False, repr=False)
    structure: str = ""

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
    """One operation of a workload; see the module docstring for kinds, dims, copies, steps."""

    name: str
    kind: str
    op: str
    dims: Mapping[str, int]
    operands: tuple[Operand, ...] = ()
    copies: int = 1
    steps: int = 1
    producers: tuple[str, ...] = ()
    phase: str = "forward"
    module: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", _FrozenDims({k: int(v) for k, v in dict(self.dims).items()}))
        object.__setattr__(self, "operands", tuple(self.operands))
        object.__setattr__(self, "producers", tuple(self.producers))
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
    def instances(self) -> int:
        """copies x steps."""
        return self.copies * self.steps

    @property
    def gemm(self) -> Gemm | None:
        """The GEMM view (im2col for convs, whose groups are copies), or None for vector ops."""
        d = self.dims
        if self.kind == "gemm":
            return Gemm(d["M"], d["N"], d["K"], self.copies, self.steps)
        if self.kind == "conv":
            g = d["groups"]
            return Gemm(d["N"] * d["P"] * d["Q"], d["K"] // g, d["C"] // g * d["R"] * d["S"], self.copies * g,
                        self.steps)
        return None

    @property
    def gemms(self) -> tuple[Gemm, ...]:
        """Every GEMM the op does: its GEMM view, or a fused attention's per-head GEMMs (heads
        as copies) in the order FlashAttention runs them; none for vector ops."""
        g = self.gemm
        if g is not None:
            return (g,)
        if self.kind != "attention":
            return ()
        d = self.dims
        c = self.copies * d["B"] * d["H"]
        qk = Gemm(d["Lq"], d["Lk"], d["E"], c, self.steps)
        pv = Gemm(d["Lq"], d["Ev"], d["Lk"], c, self.steps)
        if not d["backward"]:
            return (qk, pv)
        return (qk, Gemm(d["Lk"], d["Ev"], d["Lq"], c, self.steps), Gemm(d["Lq"], d["Lk"], d["Ev"], c, self.steps),
                Gemm(d["Lq"], d["E"], d["Lk"], c, self.steps), Gemm(d["Lk"], d["E"], d["Lq"], c, self.steps))

    @property
    def macs(self) -> int:
        return sum(g.macs for g in self.gemms)

    def unfused(self) -> tuple["Op", ...]:
        """A fused ``attention`` op as the ops a machine without a fused kernel runs: its
        GEMMs (activation x activation, heads as copies) and the softmax (forward) or its
        gradient (backward), in order, each reading the one before."""
        if self.kind != "attention":
            return (self,)
        d = self.dims
        q = self.operand("input")
        bits, dtype = (q.bits, q.dtype) if q is not None else (32, "float")
        parts: list[Op] = []
        for i, g in enumerate(self.gemms):
            parts.append(Op(f"{self.name}#gemm{i}", "gemm", "bmm", {"M": g.M, "N": g.N, "K": g.K},
                            copies=g.copies, steps=self.steps, phase=self.phase, module=self.module,
                            producers=(parts[-1].name,) if parts else (),
                            operands=(Operand("input", (g.M, g.K), bits, dtype), Operand("input2", (g.K, g.N), bits, dtype),
                                      Operand("output", (g.M, g.N), bits, dtype))))
            if i == 0:
                n = self.copies * d["B"] * d["H"] * d["Lq"] * d["Lk"]
                parts.append(Op(f"{self.name}#softmax", "softmax", "softmax_grad" if d["backward"] else "softmax",
                                {"elements": n, "inputs": n, "ops_per_element": 4 if d["backward"] else 3},
                                steps=self.steps, phase=self.phase, module=self.module, producers=(parts[-1].name,),
                                operands=(Operand("input", (n,), bits, dtype), Operand("output", (n,), bits, dtype))))
        return tuple(parts)

    @property
    def vector_ops(self) -> int:
        """Element operations of a non-GEMM op (all copies and steps)."""
        if self.is_gemm or self.kind == "attention":
            return 0
        return self.dims["elements"] * self.dims["ops_per_element"] * self.instances


class _FrozenDims(dict):
    """A dict that refuses changes (an op's dims are part of a frozen description)."""

    def _ro(self, *a, **k):
        raise TypeError("an op's dims are read-only; build a new Op with dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _ro

    def __reduce__(self):
        return (_FrozenDims, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


@dataclass(frozen=True)
class Workload:
    """A graph of ops lowered from one model run (or built by hand), in a topological order."""

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
        object.__setattr__(self, "version", TRACE_VERSION)
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

    def with_ops(self, ops: Iterable[Op]) -> "Workload":
        return replace(self, ops=tuple(ops))

    def consumers(self) -> dict[str, list[str]]:
        """op name -> names of the ops that read its output."""
        out: dict[str, list[str]] = {op.name: [] for op in self.ops}
        for op in self.ops:
            for p in op.producers:
                out[p].append(op.name)
        return out

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
                if o.structure:
                    od["structure"] = o.structure
                for what in ("values", "codebook"):
                    arr = getattr(o, what)
                    if arr is not None:
                        key = f"{i}.{o.role}.{what}"
                        tensors[key] = np.asarray(arr)
                        od[what] = key
                operands.append(od)
            ops.append({"name": op.name, "kind": op.kind, "op": op.op, "module": op.module, "phase": op.phase,
                        "copies": op.copies, "steps": op.steps, "producers": list(op.producers),
                        "dims": dict(op.dims), "operands": operands})
        doc = {"format": TRACE_FORMAT, "version": TRACE_VERSION, "name": self.name,
               "batch": self.batch, "input_shape": list(self.input_shape), "source": self.source,
               "meta": self.meta, "ops": ops}
        return doc, tensors

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (JSON) and, if any tensors are kept, ``path`` with ``.npz``.

        Both files are written to temporaries and renamed into place, so an interrupted
        save never leaves a half-written trace. A trace without tensors writes no ``.npz``
        and leaves any file of that name alone.
        """
        path = Path(path)
        if path.suffix != ".json":
            raise TraceError(f"{path}: a trace file name must end in .json")
        doc, tensors = self.to_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        if tensors:
            npz = path.with_suffix(".npz")
            if npz.exists() and not _names_tensors(path, npz.name):
                raise TraceError(f"{npz}: exists and is not the tensor file of a trace at {path.name}; the trace's "
                                 f"weights would replace it. Move it away or choose another -o")
            from .tensorfile import write_npz
            atomic_write(npz, lambda f: write_npz(f, tensors), binary=True)
            doc["tensors"] = npz.name
        atomic_write(path, lambda f: json.dump(doc, f, indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Workload":
        from .yamlio import read_text

        path = Path(path)
        try:
            text = read_text(path, "trace")            # size and UTF-8 checked, errors name the file
        except TraceError:
            raise
        except HwsimError as e:
            raise TraceError(str(e)) from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
        except RecursionError:
            raise TraceError(f"{path}: JSON nested too deeply to be a trace") from None
        tensors: Mapping[str, np.ndarray] = {}
        # v2 names its tensor file; v1 used the .npz beside the trace whenever there was one
        ref = doc.get("tensors") if isinstance(doc, dict) else None
        if isinstance(doc, dict) and doc.get("version") == 1:
            ref = path.with_suffix(".npz").name if path.with_suffix(".npz").exists() else None
        if ref is not None:
            if not isinstance(ref, str) or "/" in ref or "\\" in ref or not ref.endswith(".npz"):
                raise TraceError(f"{path}: tensors: must name a .npz file beside the trace, got {ref!r}")
            npz = path.with_name(ref)
            try:
                with np.load(npz, allow_pickle=False) as z:
                    tensors = {k: z[k] for k in z.files}
            except FileNotFoundError:
                raise TraceError(f"{path}: tensors: {ref} is missing; it holds the trace's weights") from None
            except Exception as e:  # zip/format errors of many kinds
                raise TraceError(f"{npz}: unreadable tensor file ({e})") from None
            for k, t in tensors.items():
                if t.dtype.kind == "f" and not np.isfinite(t).all():
                    bad = int(np.count_nonzero(~np.isfinite(t)))
                    raise TraceError(f"{npz}: tensor {k!r} holds {bad} NaN or infinite value(s); "
                                     f"a simulator cannot encode them")
                if t.dtype.kind not in "fiub":
                    raise TraceError(f"{npz}: tensor {k!r} has dtype {t.dtype}; expected numbers")
        return cls.from_dict(doc, tensors, where=str(path))

    @classmethod
    def from_dict(cls, doc: Any, tensors: Mapping[str, np.ndarray] | None = None,
                  where: str = "trace") -> "Workload":
        tensors = tensors or {}
        _need(isinstance(doc, dict), where, "the top level must be a JSON object")
        _need(doc.get("format") == TRACE_FORMAT, f"{where}: format",
              f"expected {TRACE_FORMAT!r}, got {doc.get('format')!r}")
        ver = doc.get("version")
        _need(ver in READABLE_VERSIONS and not isinstance(ver, bool), f"{where}: version",
              f"this hwsim reads trace versions {', '.join(map(str, READABLE_VERSIONS))}, the file has {ver!r}")
        ops_doc = _field(doc, "ops", list, where)
        _need(len(ops_doc) > 0, f"{where}: ops", "a trace needs at least one op")
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
                        _need(isinstance(key, str) and key in tensors, f"{pw}.{what}",
                              f"references tensor {key!r}, which is missing from the .npz beside the trace")
                        arrays[what] = tensors[key]
                try:
                    operands.append(Operand(
                        role=_field(pd, "role", str, pw),
                        shape=tuple(_int_list(pd, "shape", pw)),
                        bits=_field(pd, "bits", int, pw),
                        dtype=_field(pd, "dtype", str, pw),
                        density=_field(pd, "density", (int, float), pw),
                        structure=_field(pd, "structure", str, pw) if "structure" in pd else "", **arrays))
                except TraceError as e:
                    role = pd.get("role")
                    raise TraceError(str(e).replace(f"operand {role!r}", pw, 1)) from None
            dims = _field(od, "dims", dict, w)
            for k, v in dims.items():
                _need(isinstance(v, int) and not isinstance(v, bool), f"{w}.dims.{k}",
                      f"must be an integer, got {v!r}")
            if ver == 1:
                rep = {"copies": _field(od, "repeat", int, w), "steps": 1, "producers": (), "phase": "forward"}
            else:
                prods = _field(od, "producers", list, w)
                for k, p in enumerate(prods):
                    _need(isinstance(p, str), f"{w}.producers[{k}]", f"must be an op name, got {p!r}")
                rep = {"copies": _field(od, "copies", int, w), "steps": _field(od, "steps", int, w),
                       "producers": tuple(prods), "phase": _field(od, "phase", str, w)}
            module = od.get("module", "")
            _need(isinstance(module, str), f"{w}.module", f"must be a string, got {module!r}")
            try:
                ops.append(Op(name=name, kind=_field(od, "kind", str, w), op=_field(od, "op", str, w),
                              dims=dims, operands=tuple(operands), module=module, **rep))
                check_sizes(ops[-1], f"op {name!r}")
            except TraceError as e:
                raise TraceError(str(e).replace(f"op {name!r}", w, 1)) from None
        if ver == 1:
            ops = migrate_v1(ops)
        meta = doc.get("meta", {}) or {}
        _need(isinstance(meta, dict), f"{where}: meta", "must be an object")
        source = doc.get("source", "")
        _need(isinstance(source, str), f"{where}: source", "must be a string")
        try:
            return cls(name=_field(doc, "name", str, where), ops=tuple(ops),
                       batch=_field(doc, "batch", int, where),
                       input_shape=tuple(_int_list(doc, "input_shape", where)),
                       source=source, meta=meta)
        except TraceError as e:
            raise TraceError(f"{where}: {e}") from None


_RECURRENT = re.compile(r"^(?P<module>.*)\.weight_hh_l\d+(_reverse)?$")


def _names_tensors(path: Path, npz_name: str) -> bool:
    """Whether the trace at ``path`` (if any) names ``npz_name`` as its tensor file: only
    then is that file an earlier save's, safe to replace."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("tensors") == npz_name
    except (OSError, ValueError, AttributeError):
        return False


def migrate_v1(ops: list[Op]) -> list[Op]:
    """Version 1 -> 2. v1 had one ``repeat`` (read into ``copies``) and no graph.

    * A recurrent GEMM (hwsim 0.1 named it ``MODULE.weight_hh_lN``) repeated T times ran T
      dependent steps: ``steps = T``. Another op of that module whose repeat is a multiple
      of T ran once or more per step (the cell's gates): ``steps = T``, ``copies =
      repeat / T``. Every other repeat (a bmm's batch, Winograd's GEMMs, a stack of the
      final states) meant independent copies and stays so.
    * v1 ran ops in list order, so each op's producer is the op before it.
    """
    steps_of: dict[str, int] = {}
    for op in ops:
        m = _RECURRENT.match(op.name)
        if m and op.kind == "gemm":
            steps_of[m["module"]] = op.copies
    out: list[Op] = []
    for i, op in enumerate(ops):
        copies, steps = op.copies, 1
        module = next((mod for mod in steps_of if op.name.startswith(mod + ".")), None)
        if module is not None:
            T = steps_of[module]
            if T > 1 and copies % T == 0:
                copies, steps = copies // T, T
        out.append(replace(op, copies=copies, steps=steps, producers=(ops[i - 1].name,) if i else ()))
    return out


def chain(ops: Iterable[Op]) -> list[Op]:
    """``ops`` as a sequence: each op reads the one before it (hand-built layer stacks)."""
    out: list[Op] = []
    for op in ops:
        out.append(replace(op, producers=(out[-1].name,) if out else ()))
    return out


def rewire(ops: Iterable[Op], renamed: Mapping[str, str]) -> list[Op]:
    """Point producers at new names after a pass replaced op ``old`` by ops ending in ``new``."""
    return [replace(op, producers=tuple(dict.fromkeys(renamed.get(p, p) for p in op.producers)))
            if any(p in renamed for p in op.producers) else op for op in ops]


def op_row(op: Op) -> dict[str, Any]:
    """The per-op summary columns shared by ``hwsim lower`` and the simulators."""
    g = op.gemm or (op.gemms[0] if op.gemms else None)
    w = op.operand("weight")
    a = op.operand("input")
    return {
        "name": op.name, "op": op.op, "kind": op.kind, "phase": op.phase,
        "M": g.M if g else None, "N": g.N if g else None, "K": g.K if g else None,
        "copies": g.copies if g else op.copies, "steps": op.steps, "macs": op.macs,
        "weight_density": w.density if w else None, "act_density": a.density if a else None,
        "weight_bits": w.bits if w else None, "act_bits": a.bits if a else None,
        "producers": " ".join(op.producers),
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


def _int_list(d: dict, key: str, where: str) -> list[int]:
    v = _field(d, key, list, where)
    for k, x in enumerate(v):
        _need(isinstance(x, int) and not isinstance(x, bool), f"{where}.{key}[{k}]", f"must be an integer, got {x!r}")
    return v


def _posint(v: Any) -> bool:
    return bool(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1)


def structure_nm(spec: str) -> tuple[int, int] | None:
    """``"N:M"`` -> (N, M), or None when it is not a structured-sparsity pattern."""
    m = re.fullmatch(r"(\d+):(\d+)", spec)
    if not m:
        return None
    n, mm = int(m.group(1)), int(m.group(2))
    return (n, mm) if 1 <= n < mm <= 64 else None


def _check_operand(o: Operand, w: str) -> None:
    _need(o.role in ROLES, f"{w}.role", f"unknown role {o.role!r}; one of {', '.join(ROLES)}")
    _need(o.dtype in DTYPES, f"{w}.dtype", f"unknown dtype {o.dtype!r}; one of {', '.join(DTYPES)}")
    _need(all(s >= 0 for s in o.shape), f"{w}.shape", f"sizes must be >= 0, got {list(o.shape)}")
    _need(isinstance(o.bits, (int, np.integer)) and not isinstance(o.bits, bool) and 1 <= o.bits <= 64, f"{w}.bits",
          f"must be an integer in 1..64, got {o.bits!r}")
    if o.dtype == "float":
        _need(o.bits in (8, 16, 32, 64), f"{w}.bits", f"a float operand is 8, 16, 32 or 64 bits, got {o.bits}")
    _need(isinstance(o.density, (int, float)) and not isinstance(o.density, bool) and 0.0 <= o.density <= 1.0
          and not math.isnan(o.density), f"{w}.density", f"must be a fraction in [0, 1], got {o.density!r}")
    _need(isinstance(o.structure, str), f"{w}.structure", f"must be a string 'N:M' or '', got {o.structure!r}")
    if o.structure:
        nm = structure_nm(o.structure)
        _need(nm is not None, f"{w}.structure",
              f"must be 'N:M' with integers 1 <= N < M <= 64 (e.g. '2:4'), got {o.structure!r}")
        if nm is not None:
            _need(o.density <= nm[0] / nm[1] + 1e-9, f"{w}.structure",
                  f"{o.structure} keeps at most {nm[0] / nm[1]:.3g} of the elements, but density is {o.density:.3g}")
    if o.values is not None:
        _need(tuple(np.shape(o.values)) == o.shape, f"{w}.values",
              f"shape {list(np.shape(o.values))} does not match the operand shape {list(o.shape)}")
    if o.codebook is not None:
        _need(o.dtype == "index", f"{w}.codebook", "a codebook needs dtype 'index'")
        _need(np.ndim(o.codebook) == 1 and len(o.codebook) <= 2 ** o.bits, f"{w}.codebook",
              f"must be 1-D with at most 2**bits = {2 ** o.bits} entries")


def _check_op(op: Op, w: str) -> None:
    _need(isinstance(op.name, str) and bool(op.name), f"{w}.name", "must be a non-empty string")
    _need(op.kind in KINDS, f"{w}.kind", f"unknown kind {op.kind!r}; one of {', '.join(KINDS)}")
    _need(op.phase in PHASES, f"{w}.phase", f"unknown phase {op.phase!r}; one of {', '.join(PHASES)}")
    for f in ("copies", "steps"):
        _need(_posint(getattr(op, f)), f"{w}.{f}", f"must be an integer >= 1, got {getattr(op, f)!r}")
    for p in op.producers:
        _need(isinstance(p, str) and p != op.name, f"{w}.producers",
              f"must name other ops of the workload, got {p!r}" + (" (itself: a recurrence is expressed by "
                                                                     "'steps')" if p == op.name else ""))
    _need(len(set(op.producers)) == len(op.producers), f"{w}.producers", f"lists an op twice: {list(op.producers)}")
    d = op.dims
    for k in _REQUIRED_DIMS[op.kind]:
        _need(k in d, f"{w}.dims.{k}", f"missing (a {op.kind} op needs {', '.join(_REQUIRED_DIMS[op.kind])})")
        lo = 0 if (k in _ZERO_OK or op.kind in VECTOR_KINDS) else 1
        _need(d[k] >= lo, f"{w}.dims.{k}", f"must be >= {lo}, got {d[k]}")
    if op.kind == "attention":
        _need(d["Hkv"] >= 1 and d["H"] % d["Hkv"] == 0, f"{w}.dims.Hkv",
              f"query heads H={d['H']} must be a multiple of key/value heads Hkv={d['Hkv']}")
        for flag in ("causal", "backward"):
            _need(d[flag] in (0, 1), f"{w}.dims.{flag}", f"must be 0 or 1, got {d[flag]}")
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


def check_sizes(op: Op, w: str) -> None:
    """Every operand's shape agrees with the op's dims (a simulator reads the dims; a shape
    that disagrees means the trace says two different things). Checked on traces read from
    files: in a forward op the operands are the GEMM's (or the convolution's) tensors
    exactly; a backward GEMM may read a smaller tensor through im2col."""
    for o in op.operands:
        _check_size(op, o, w)


def _operand_elements(op: Op, role: str) -> tuple[int, str] | None:
    """The elements an operand of one instance of ``op`` holds by its dims, and the rule."""
    d = op.dims
    if op.kind == "gemm":
        M, N, K = d["M"], d["N"], d["K"]
        return {"weight": (N * K, "N x K"), "input": (M * K, "M x K"), "input2": (K * N, "K x N"),
                "output": (M * N, "M x N")}.get(role)
    if op.kind == "conv":
        return {"input": (d["N"] * d["C"] * d["H"] * d["W"], "N x C x H x W"),
                "weight": (d["K"] * (d["C"] // d["groups"]) * d["R"] * d["S"], "K x C/groups x R x S"),
                "output": (d["N"] * d["K"] * d["P"] * d["Q"], "N x K x P x Q")}.get(role)
    if op.kind in VECTOR_KINDS and role == "output":
        return d["elements"], "elements"
    return None


def _check_size(op: Op, o: Operand, w: str) -> None:
    n = math.prod(o.shape)
    if op.kind in VECTOR_KINDS and o.role in ("input", "input2"):
        _need(n <= op.dims["inputs"] * op.copies, f"{w}.dims.inputs",
              f"is {op.dims['inputs']} but the {o.role} operand alone has {n} elements (shape {list(o.shape)})")
        return
    want = _operand_elements(op, o.role)
    if want is None:
        return
    per = f"{want[1]} = {want[0]}" + (f" per copy ({op.copies} copies)" if op.copies > 1 else "")
    if op.kind == "gemm" and op.phase != "forward" and o.role != "weight":
        # a convolution's gradient GEMMs read and write tensors through im2col / col2im
        _need(n <= want[0] * op.copies, f"{w}.operands[{o.role}].shape",
              f"{list(o.shape)} holds {n} elements, more than the dims' {per}; fix the shape or the dims")
    else:    # one copy's tensor, or (as version 1 traces store them) all copies'
        _need(n in (want[0], want[0] * op.copies), f"{w}.operands[{o.role}].shape",
              f"{list(o.shape)} holds {n} elements but the dims give {per}; fix the shape or the dims")


def _check_workload(wl: Workload) -> None:
    _need(isinstance(wl.name, str) and bool(wl.name), "name", "must be a non-empty string")
    _need(_posint(wl.batch), "batch", f"must be an integer >= 1, got {wl.batch!r}")
    index: dict[str, int] = {}
    for i, op in enumerate(wl.ops):
        _need(isinstance(op, Op), f"ops[{i}]", f"expected an Op, got {type(op).__name__}")
        _need(op.name not in index, f"ops[{i}].name", f"duplicate op name {op.name!r}; names must be unique")
        index[op.name] = i
    later = []
    for i, op in enumerate(wl.ops):
        for p in op.producers:
            _need(p in index, f"ops[{i}] ({op.name}).producers",
                  f"names {p!r}, which is not an op of this workload")
            if index[p] > i:
                later.append(i)
    if later:
        cycle = _find_cycle(wl.ops, index)
        _need(cycle is None, f"ops[{index[cycle[0]]}] ({cycle[0]}).producers" if cycle else "ops",
              "the graph has a cycle: " + " -> ".join(cycle or []) + "; a recurrence is expressed by 'steps'")
        i = later[0]
        _need(False, f"ops[{i}] ({wl.ops[i].name}).producers",
              "reads an op listed after it; ops must be stored in an order the model could run them")


def _find_cycle(ops: tuple[Op, ...], index: Mapping[str, int]) -> list[str] | None:
    """A cycle through the producer edges, as a list of names (first == last), or None."""
    state = [0] * len(ops)          # 0 new, 1 on the stack, 2 done
    for root in range(len(ops)):
        if state[root]:
            continue
        stack: list[tuple[int, Iterator[str]]] = [(root, iter(ops[root].producers))]
        path = [root]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            j = index[nxt]
            if state[j] == 1:
                names = [ops[k].name for k in path[path.index(j):]]
                return names + [ops[j].name]
            if state[j] == 0:
                state[j] = 1
                stack.append((j, iter(ops[j].producers)))
                path.append(j)
    return None

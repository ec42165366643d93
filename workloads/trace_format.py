"""The trace file (format version 3, see :mod:`workloads.trace`): an op to and from its JSON
object, the ops of a document read and checked field by field (errors name the file, op and
field), and the ``.json`` and ``.npz`` files read and written whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, TypeVar, overload

import numpy as np

from .errors import HwsimError, TraceError
from .fields import check_known
from .fileio import atomic_write
from .trace_graph import migrate_v1
from .trace_ops import Op, Operand, Tensor, check_sizes
from .trace_schema import (GEMM_OPERANDS, OP_FIELDS, OPERAND_FIELDS, READABLE_VERSIONS, TOP_FIELDS, TRACE_FORMAT,
                           need)

__all__ = ["json_field", "int_list", "known_keys", "op_doc", "ops_from_doc", "read_trace", "write_trace"]

T = TypeVar("T")


@overload
def json_field(d: Mapping[str, object], key: str, typ: type[T], where: str) -> T: ...


@overload
def json_field(d: Mapping[str, object], key: str, typ: tuple[type[int], type[float]], where: str) -> float: ...


def json_field(d: Mapping[str, object], key: str, typ: type[object] | tuple[type[int], type[float]],
               where: str) -> object:
    """``d[key]``, which must be present and of type ``typ`` (a bool is not a number).
    Errors name ``WHERE.KEY`` (``WHERE KEY`` when ``where`` ends in a colon: the file)."""
    at = _at(where, key)
    need(key in d, at, "missing required field")
    v = d[key]
    ok = isinstance(v, typ) and not (isinstance(v, bool) and typ in (int, (int, float)))
    tname = typ.__name__ if isinstance(typ, type) else "number"
    need(ok, at, f"expected {tname}, got {type(v).__name__} {v!r}"[:200])
    return v


def int_list(d: Mapping[str, object], key: str, where: str) -> list[int]:
    """``d[key]``, which must be a list of integers."""
    v = json_field(d, key, list, where)
    for k, x in enumerate(v):
        need(isinstance(x, int) and not isinstance(x, bool), f"{_at(where, key)}[{k}]", f"must be an integer, got {x!r}")
    return v


def _at(where: str, key: str) -> str:
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def known_keys(d: Mapping[str, object], fields: Mapping[int, frozenset[str]], ver: int, where: str) -> None:
    """Refuse a key of ``d`` that is not a field of trace version ``ver`` (``fields``: the
    fields by version), naming the nearest field; one of a later version says so."""
    for k in d:
        if k not in fields[ver]:
            later = [v for v in sorted(fields) if v > ver and k in fields[v]]
            note = f"{k} was added in trace version {later[0]}, this file is version {ver}; " if later else ""
            check_known([k], fields[ver], f"{where} " if where.endswith(":") else f"{where}.", error=TraceError,
                        note=note)


def _check_gemm_operands(op: Op, where: str) -> None:
    """A GEMM-like op from a file has the two operands it multiplies (a simulator would
    otherwise price it with made-up widths and densities)."""
    want = GEMM_OPERANDS.get(op.kind, ())
    missing = [" or ".join(roles) for roles in want if all(op.operand(r) is None for r in roles)]
    need(not missing, f"{where}.operands",
         f"a {op.kind} op multiplies its {' and its '.join(' or '.join(r) for r in want)} operands; "
         f"missing {', and '.join(missing)} (roles given: {', '.join(o.role for o in op.operands) or 'none'}); "
         "add each with its role, shape, bits, dtype and density")


def op_doc(i: int, op: Op, tensors: dict[str, Tensor]) -> dict[str, Any]:
    """The JSON object of ``op``, the ``i``-th op; its operands' real tensors go to ``tensors``
    under the keys the object references them by."""
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
    return {"name": op.name, "kind": op.kind, "op": op.op, "module": op.module, "phase": op.phase,
            "copies": op.copies, "steps": op.steps, "producers": list(op.producers),
            "dims": dict(op.dims), "operands": operands}


def ops_from_doc(doc: object, tensors: Mapping[str, Tensor], where: str) -> list[Op]:
    """The ops of a trace document (any readable version; version 1 migrated), checked: the
    top level, its format and version, and every op and operand field."""
    if not isinstance(doc, dict):
        raise TraceError(f"{where}: the top level must be a JSON object")
    need(doc.get("format") == TRACE_FORMAT, f"{where}: format",
         f"expected {TRACE_FORMAT!r}, got {doc.get('format')!r}")
    ver = doc.get("version")
    need(ver in READABLE_VERSIONS and not isinstance(ver, bool), f"{where}: version",
         f"this hwsim reads trace versions {', '.join(map(str, READABLE_VERSIONS))}, the file has {ver!r}")
    assert isinstance(ver, int)
    known_keys(doc, TOP_FIELDS, ver, f"{where}:")
    ops_doc = json_field(doc, "ops", list, f"{where}:")
    need(len(ops_doc) > 0, f"{where}: ops", "a trace needs at least one op")
    ops = []
    for i, od in enumerate(ops_doc):
        w = f"{where}: ops[{i}]"
        need(isinstance(od, dict), w, "must be an object")
        name = json_field(od, "name", str, w)
        w = f"{where}: ops[{i}] ({name})"
        known_keys(od, OP_FIELDS, ver, w)
        operands = []
        for j, pd in enumerate(json_field(od, "operands", list, w)):
            pw = f"{w}.operands[{j}]"
            need(isinstance(pd, dict), pw, "must be an object")
            known_keys(pd, OPERAND_FIELDS, ver, pw)
            arrays = {}
            for what in ("values", "codebook"):
                key = pd.get(what)
                if key is not None:
                    need(isinstance(key, str) and key in tensors, f"{pw}.{what}",
                         f"references tensor {key!r}, which is missing from the .npz beside the trace")
                    arrays[what] = tensors[key]
            try:
                operands.append(Operand(
                    role=json_field(pd, "role", str, pw),
                    shape=tuple(int_list(pd, "shape", pw)),
                    bits=json_field(pd, "bits", int, pw),
                    dtype=json_field(pd, "dtype", str, pw),
                    density=json_field(pd, "density", (int, float), pw),
                    structure=json_field(pd, "structure", str, pw) if "structure" in pd else "",
                    **arrays))
            except TraceError as e:
                role = pd.get("role")
                raise TraceError(str(e).replace(f"operand {role!r}", pw, 1)) from None
        dims = json_field(od, "dims", dict, w)
        for k, v in dims.items():
            need(isinstance(v, int) and not isinstance(v, bool), f"{w}.dims.{k}",
                 f"must be an integer, got {v!r}")
        rep: dict[str, Any]
        if ver == 1:
            rep = {"copies": json_field(od, "repeat", int, w), "steps": 1, "producers": (), "phase": "forward"}
        else:
            prods = json_field(od, "producers", list, w)
            for k, p in enumerate(prods):
                need(isinstance(p, str), f"{w}.producers[{k}]", f"must be an op name, got {p!r}")
            rep = {"copies": json_field(od, "copies", int, w), "steps": json_field(od, "steps", int, w),
                   "producers": tuple(prods), "phase": json_field(od, "phase", str, w)}
        module = od.get("module", "")
        need(isinstance(module, str), f"{w}.module", f"must be a string, got {module!r}")
        try:
            ops.append(Op(name=name, kind=json_field(od, "kind", str, w), op=json_field(od, "op", str, w),
                          dims=dims, operands=tuple(operands), module=module, **rep))
            check_sizes(ops[-1], f"op {name!r}")
            _check_gemm_operands(ops[-1], f"op {name!r}")
        except TraceError as e:
            raise TraceError(str(e).replace(f"op {name!r}", w, 1)) from None
    if ver == 1:
        ops = migrate_v1(ops)
    return ops


def read_trace(path: Path) -> tuple[object, Mapping[str, Tensor]]:
    """The JSON document of the trace at ``path`` and the tensors of the ``.npz`` it names
    (version 1: the ``.npz`` beside it, if any), checked to be finite numbers."""
    from .yamlio import read_text

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
    tensors: Mapping[str, Tensor] = {}
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
    return doc, tensors


def write_trace(path: Path, doc: dict[str, Any], tensors: Mapping[str, Tensor]) -> None:
    """Write ``doc`` to ``path`` and, if there are tensors, ``path`` with ``.npz`` (named in
    ``doc``), each to a temporary renamed into place. An ``.npz`` of that name that is not
    this trace's earlier tensor file is refused, not replaced."""
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


def _names_tensors(path: Path, npz_name: str) -> bool:
    """Whether the trace at ``path`` (if any) names ``npz_name`` as its tensor file: only
    then is that file an earlier save's, safe to replace."""
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get("tensors") == npz_name)
    except (OSError, ValueError, AttributeError):
        return False

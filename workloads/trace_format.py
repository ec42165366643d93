"""The trace file (format version 3, see :mod:`workloads.trace`): an op to its JSON object,
the ops of a declared document (:mod:`workloads.trace_doc`) built and checked across fields
(errors name the file, op and field), and the ``.json`` and ``.npz`` files read and written
whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import HwsimError, TraceError
from .fileio import atomic_write
from .trace_graph import migrate_v1
from .trace_ops import Op, Operand, Tensor, check_sizes
from .trace_doc import OpV1, OpV2, OpV3, TraceDoc
from .trace_schema import GEMM_OPERANDS, need

__all__ = ["op_doc", "ops_from_doc", "read_trace", "write_trace"]

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


def ops_from_doc(doc: TraceDoc, tensors: Mapping[str, Tensor], where: str) -> list[Op]:
    """The ops of a declared trace document (:func:`workloads.trace_doc.parse`; version 1
    migrated), built and checked across fields: operand shapes against dims, the operands a
    GEMM multiplies, and the tensors the operands name."""
    ops = []
    ops_doc: list[OpV1 | OpV2 | OpV3] = list(doc.ops)
    for i, od in enumerate(ops_doc):
        w = f"{where}: ops[{i}] ({od.name})"
        operands = []
        for j, pd in enumerate(od.operands):
            pw = f"{w}.operands[{j}]"
            arrays = {}
            for what in ("values", "codebook"):
                key = getattr(pd, what)
                if key is not None:
                    need(key in tensors, f"{pw}.{what}",
                         f"references tensor {key!r}, which is missing from the .npz beside the trace")
                    arrays[what] = tensors[key]
            try:
                operands.append(Operand(role=pd.role, shape=tuple(pd.shape), bits=pd.bits, dtype=pd.dtype,
                                        density=pd.density, structure=getattr(pd, "structure", ""), **arrays))
            except TraceError as e:
                raise TraceError(str(e).replace(f"operand {pd.role!r}", pw, 1)) from None
        rep: dict[str, Any]
        if isinstance(od, OpV1):
            rep = {"copies": od.repeat, "steps": 1, "producers": (), "phase": "forward"}
        else:
            rep = {"copies": od.copies, "steps": od.steps, "producers": tuple(od.producers), "phase": od.phase}
        try:
            ops.append(Op(name=od.name, kind=od.kind, op=od.op, dims=dict(od.dims), operands=tuple(operands),
                          module=od.module, **rep))
            check_sizes(ops[-1], f"op {od.name!r}")
            _check_gemm_operands(ops[-1], f"op {od.name!r}")
        except TraceError as e:
            raise TraceError(str(e).replace(f"op {od.name!r}", w, 1)) from None
    if doc.version == 1:
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

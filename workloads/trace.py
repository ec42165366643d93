"""The workload trace: the contract between the model side and the simulators.

A :class:`Workload` is a graph of :class:`Op`: each op has a unique name (the torch module
path, e.g. ``layer1.0.conv2``), a ``kind``, integer ``dims``, its :class:`Operand` tensors
(shape, bits, measured density, optionally the real values) and the names of the ops whose
outputs it reads (``producers``). This module (with the ``trace_*`` modules it re-exports,
see below) is the one place the format is defined; none of them imports torch.

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
    ``elements`` (output elements), ``inputs`` (input elements read: a gather, ``GATHER_OPS``
    such as an embedding lookup, reads the rows it gathers and its indices, not its whole
    source operand) and ``ops_per_element`` (vector operations per output element, e.g. a
    pooling window).

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

Modules
-------
This module defines :class:`Workload`; the rest of the trace lives in modules of one concept
each, whose names stay importable from here: :mod:`workloads.trace_schema` (the vocabulary:
versions, kinds, roles, dims), :mod:`workloads.trace_ops` (:class:`Op`, :class:`Operand`,
:class:`Gemm`), :mod:`workloads.trace_graph` (producer edges and the passes on them) and
:mod:`workloads.trace_format` (the JSON and ``.npz`` files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .errors import TraceError
from .trace_format import op_doc, ops_from_doc, read_trace, write_trace
from .trace_graph import chain, check_graph, migrate_v1, rewire
from .trace_ops import Gemm, Op, Operand, Tensor, check_sizes, op_row
from .trace_schema import (ATTENTION_DIMS, CONV_DIMS, DTYPES, GEMM_DIMS, GEMM_KINDS, KINDS, PHASES,
                           READABLE_VERSIONS, ROLES, TRACE_FORMAT, TRACE_VERSION, VECTOR_DIMS, VECTOR_KINDS,
                           conv_output_size, is_positive_int, need, structure_nm)

__all__ = [
    "Workload",
    # re-exported: the vocabulary (trace_schema), ops (trace_ops), the graph (trace_graph)
    "TRACE_FORMAT", "TRACE_VERSION", "READABLE_VERSIONS", "GEMM_KINDS", "VECTOR_KINDS", "KINDS", "ROLES", "DTYPES",
    "PHASES", "GEMM_DIMS", "CONV_DIMS", "VECTOR_DIMS", "ATTENTION_DIMS", "conv_output_size", "structure_nm",
    "Tensor", "Gemm", "Operand", "Op", "op_row", "check_sizes", "migrate_v1", "chain", "rewire",
]


@dataclass(frozen=True)
class Workload:
    """A graph of ops lowered from one model run (or built by hand), in a topological order.

        >>> from workloads.build import gemm_op
        >>> fc = gemm_op("fc", 8, 10, 300)                  # M x K @ K x N: batch 8, 300 -> 10
        >>> wl = Workload("mine", (fc,), batch=8)
        >>> wl.macs == 8 * 10 * 300
        True
    """

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

    # ---- persistence (the file format: workloads.trace_format) --------------------
    def to_dict(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The JSON document and the tensors it references by key."""
        tensors: dict[str, Tensor] = {}
        ops = [op_doc(i, op, tensors) for i, op in enumerate(self.ops)]
        doc = {"format": TRACE_FORMAT, "version": TRACE_VERSION, "name": self.name,
               "batch": self.batch, "input_shape": list(self.input_shape), "source": self.source,
               "meta": self.meta, "ops": ops}
        return doc, tensors

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (JSON) and, if any tensors are kept, ``path`` with ``.npz``.

        Both files are written to temporaries and renamed into place, so an interrupted
        save never leaves a half-written trace. A trace without tensors writes no ``.npz``
        and leaves any file of that name alone.
        """
        path = Path(path)
        if path.suffix != ".json":
            raise TraceError(f"{path}: a trace file name must end in .json")
        doc, tensors = self.to_dict()
        write_trace(path, doc, tensors)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Workload":
        path = Path(path)
        doc, tensors = read_trace(path)
        return cls.from_dict(doc, tensors, where=str(path))

    @classmethod
    def from_dict(cls, doc: Any, tensors: Mapping[str, Tensor] | None = None,
                  where: str = "trace") -> "Workload":
        from .trace_doc import parse

        d = parse(doc, where)
        ops = ops_from_doc(d, tensors or {}, where)
        try:
            return cls(name=d.name, ops=tuple(ops), batch=d.batch, input_shape=tuple(d.input_shape), source=d.source,
                       meta=dict(d.meta))
        except TraceError as e:
            raise TraceError(f"{where}: {e}") from None


def _check_workload(wl: Workload) -> None:
    need(isinstance(wl.name, str) and bool(wl.name), "name", "must be a non-empty string")
    need(is_positive_int(wl.batch), "batch", f"must be an integer >= 1, got {wl.batch!r}")
    check_graph(wl.ops)
    # batch agrees with the ops: the samples are the input's rows, and each is worked on
    if wl.input_shape:
        need(wl.batch <= wl.input_shape[0], "batch",
             f"{wl.batch} samples, but the input (input_shape {list(wl.input_shape)}) has {wl.input_shape[0]} "
             f"row{'s' if wl.input_shape[0] != 1 else ''}; batch counts the samples the ops process: set it to "
             f"{wl.input_shape[0]} or lower, or lower the model at that batch")
    work = sum(op.macs + op.vector_ops for op in wl.ops)
    need(wl.batch <= work, "batch",
         f"{wl.batch} samples, but the ops do {work:,} operations in all (fewer than one per sample); set batch "
         "to the samples the ops process, or lower the model at that batch")

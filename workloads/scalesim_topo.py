"""SCALE-Sim topology CSVs to and from traces.

SCALE-Sim (v2/v3) reads two layer formats; every data row ends with a comma:

* conv: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
  Num Filter, Strides,`` (one stride for both axes; no padding, so the IFMAP is given
  padded; a name containing ``DP`` is a depthwise layer that SCALE-Sim splits per channel);
* GEMM: ``Layer, M, N, K,`` which SCALE-Sim runs as an M x K ifmap with N filters of 1 x K.

An optional last column ``N:M`` is SCALE-Sim's structured weight sparsity; it is read as
a weight density N/M. SCALE-Sim has no vector ops and no copies or steps: export skips
vector ops and writes one row per GEMM instance, and dilated or grouped (non-depthwise)
convs can only go out in GEMM form.

SCALE-Sim sizes an output as ``ceil((H - R + s) / s)``, one more than a convolution
produces when ``H - R`` is not a multiple of the stride. Export therefore writes the
padded input rows the output actually reads, ``(P - 1) * s + R``, and import keeps
SCALE-Sim's output size (so MACs agree with SCALE-Sim's report) with the rows it reads.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import HwsimError

if TYPE_CHECKING:          # the trace is imported where a Workload is made: `records` alone starts fast
    from .trace import Op, Workload

__all__ = ["CONV_HEADER", "GEMM_HEADER", "Record", "detect_form", "read_topology", "records", "topology_rows",
           "write_topology"]

CONV_HEADER = ["Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
               "Num Filter", "Strides"]
GEMM_HEADER = ["Layer", "M", "N", "K"]


def _fields(line: str) -> list[str]:
    parts = [p.strip() for p in line.strip().split(",")]
    if parts and parts[-1] == "":
        parts = parts[:-1]
    return parts


def detect_form(path: str | os.PathLike) -> str:
    """``'gemm'`` if the header has M, N, K columns, else ``'conv'``."""
    from .yamlio import read_text
    header = _fields(read_text(path, "SCALE-Sim topology").split("\n", 1)[0])
    return "gemm" if [h.upper() for h in header[1:4]] == ["M", "N", "K"] else "conv"


@dataclass(frozen=True)
class Record:
    """One validated topology row: ``vals`` are the integer fields after the name."""

    where: str          # "file:line" for error messages
    name: str
    vals: tuple[int, ...]
    density: float      # from the optional N:M sparsity column


def records(path: str | os.PathLike, form: str | None = None) -> tuple[str, list[Record]]:
    """The form and the validated rows of a SCALE-Sim topology (shared by the trace
    import here and the SCALE-Sim-compatible engine); errors name the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"{path}: topology file not found")
    forced = form is not None
    form = form or detect_form(path)
    if form not in ("conv", "gemm"):
        raise HwsimError(f"topology form must be 'conv' or 'gemm', got {form!r}")
    names = GEMM_HEADER if form == "gemm" else CONV_HEADER
    out = []
    from .yamlio import read_text
    for lineno, line in enumerate(read_text(path, "SCALE-Sim topology").splitlines()[1:], start=2):
        if not line.strip():
            continue
        f = _fields(line)
        where = f"{path}:{lineno}"
        if len(f) < len(names):
            raise HwsimError(f"{where}: expected {len(names)} fields ({', '.join(names)}), got {len(f)}")
        vals = []
        for n, v in zip(names[1:], f[1:len(names)]):
            try:
                x = int(v)
            except ValueError:
                raise HwsimError(f"{where}: field {n!r} must be an integer, got {v!r}") from None
            if x < 1:
                raise HwsimError(f"{where}: field {n!r} must be >= 1, got {x}")
            vals.append(x)
        density = 1.0
        if len(f) > len(names) and f[len(names)]:
            nm = f[len(names)].split(":")
            try:
                n_, m_ = int(nm[0]), int(nm[1])
                assert 0 < n_ <= m_
            except (ValueError, IndexError, AssertionError):
                hint = (f"; the row has {len(f)} fields: is it a {'conv' if form == 'gemm' else 'GEMM'} row? "
                        f"(the form is {form}{', forced by --gemm/--conv' if forced else ' from the header'})"
                        if len(f) > len(names) + 1 or not re.fullmatch(r"\s*\d+\s*:\s*\d+\s*", f[len(names)]) else "")
                raise HwsimError(f"{where}: sparsity must be N:M with 0 < N <= M, got {f[len(names)]!r}{hint}") from None
            density = n_ / m_
        if form == "conv" and (vals[2] > vals[0] or vals[3] > vals[1]):
            raise HwsimError(f"{where}: filter {vals[2]}x{vals[3]} is larger than the ifmap {vals[0]}x{vals[1]}")
        out.append(Record(where, f[0], tuple(vals), density))
    if not out:
        raise HwsimError(f"{path}: no layers (a header line and at least one layer row are needed)")
    return form, out


def read_topology(path: str | os.PathLike, form: str | None = None, bits: int = 8) -> "Workload":
    """Read a SCALE-Sim topology into a workload of conv (or GEMM) ops at ``bits`` (int)."""
    from .build import conv_op, gemm_op
    from .trace import Workload, chain

    path = Path(path)
    form, rows = records(path, form)
    ops: list[Op] = []
    for i, r in enumerate(rows, start=1):
        name = r.name or f"layer{i}"
        if any(o.name == name for o in ops):
            name = f"{name}@{r.where.rsplit(':', 1)[1]}"
        try:
            if form == "gemm":
                M, N, K = r.vals
                ops.append(gemm_op(name, M, N, K, bits=bits, dtype="int", weight_density=r.density))
            else:
                H, W, R, S, C, K, s = r.vals
                # SCALE-Sim's ofmap is ceil((H - R + s) / s); keep its output size (so MACs agree)
                # with the input rows that output really reads.
                H, W = (-(-(H - R + s) // s) - 1) * s + R, (-(-(W - S + s) // s) - 1) * s + S
                if "DP" in name:  # SCALE-Sim: C one-channel convs of K filters each
                    ops.append(conv_op(name, 1, C, H, W, C * K, R, S, stride=s, groups=C, bits=bits,
                                       dtype="int", weight_density=r.density))
                else:
                    ops.append(conv_op(name, 1, C, H, W, K, R, S, stride=s, bits=bits, dtype="int",
                                       weight_density=r.density))
        except HwsimError as e:
            raise HwsimError(f"{r.where}: {e}") from None
    first = ops[0].operand("input")
    assert first is not None          # conv_op and gemm_op make an input operand
    # a topology lists layers that run one after another
    return Workload(name=path.stem, ops=tuple(chain(ops)), batch=1, source=f"scalesim:{path.name}",
                    input_shape=first.shape)


def topology_rows(wl: "Workload", form: str = "conv") -> list[list]:
    """The rows (without header) of ``wl`` as a SCALE-Sim topology of the given form."""
    rows: list[list] = []
    for op in wl.ops:
        if not op.is_gemm:
            continue
        g = op.gemm
        assert g is not None              # a GEMM or conv op has its GEMM view
        if form == "gemm":
            for i in range(g.count):
                rows.append([op.name if g.count == 1 else f"{op.name}#{i}", g.M, g.N, g.K])
            continue
        d = op.dims
        if op.kind == "gemm":
            for i in range(g.count):  # an M x K ifmap with N filters of 1 x K, as SCALE-Sim does
                rows.append([op.name if g.count == 1 else f"{op.name}#{i}", g.M, g.K, 1, g.K, 1, g.N, 1])
            continue
        if d["stride_h"] != d["stride_w"] or d["dil_h"] != 1 or d["dil_w"] != 1:
            raise HwsimError(f"op {op.name!r}: SCALE-Sim's conv form has one stride and no dilation; "
                             "export with form 'gemm'")
        # The padded rows/columns the output reads: (P-1)*stride + R. Exact under SCALE-Sim's
        # ceil((H - R + s) / s) ofmap size, where H + 2*pad would add an output when
        # (H + 2*pad - R) is not a multiple of the stride.
        H, W = (d["P"] - 1) * d["stride_h"] + d["R"], (d["Q"] - 1) * d["stride_w"] + d["S"]
        groups = d["groups"]
        if groups == 1:
            rows.append([op.name, H, W, d["R"], d["S"], d["C"], d["K"], d["stride_h"]])
        elif groups == d["C"]:
            name = op.name if "DP" in op.name else f"{op.name}_DP"
            rows.append([name, H, W, d["R"], d["S"], d["C"], d["K"] // groups, d["stride_h"]])
        else:
            raise HwsimError(f"op {op.name!r}: grouped convolution (groups={groups}) has no SCALE-Sim conv form; "
                             "export with form 'gemm'")
        for _ in range(op.instances - 1):
            rows.append(list(rows[-1]))
    return rows


def write_topology(wl: "Workload", path: str | os.PathLike, form: str = "conv") -> Path:
    """Write ``wl`` as a SCALE-Sim topology CSV (atomically)."""
    from .fileio import atomic_write

    if form not in ("conv", "gemm"):
        raise HwsimError(f"topology form must be 'conv' or 'gemm', got {form!r}")
    if form == "conv" and wl.batch != 1 and any(op.kind == "conv" for op in wl.ops):
        raise HwsimError(f"{wl.name}: SCALE-Sim's conv form has no batch; lower with batch 1 or use form 'gemm'")
    rows = topology_rows(wl, form)
    header = GEMM_HEADER if form == "gemm" else CONV_HEADER
    text = ",".join(header) + ",\n" + "".join(",".join(str(x) for x in r) + ",\n" for r in rows)
    return atomic_write(path, text)

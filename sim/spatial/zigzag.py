"""Read ZigZag's hardware description (and, optionally, its mapping file) as a spatial design.

``--arch zigzag:HARDWARE.yaml`` or ``--arch zigzag:HARDWARE.yaml:MAPPING.yaml``, in the
format of ZigZag 3.9 (``zigzag/inputs/hardware/*.yaml``, Mei et al., IEEE TC 2021):

* ``operational_array``: two dimensions (rows ``D1``, columns ``D2``) and the MAC energy
  (``unit_energy``, pJ);
* ``memories``: each a level, innermost first as listed; ``size`` in bits; ``operands``
  I1/I2/O (the input, the weight and the output, as ZigZag's default operand links say,
  or the mapping file's ``memory_operand_links``); ``r_cost``/``w_cost`` pJ per access
  of the first read/write port's ``bandwidth_max`` bits; the read (write) bandwidth is
  the sum of the read (write) ports' ``bandwidth_max``, one ``read_write`` port alone is
  shared; ``served_dimensions: []`` is a per-PE memory, all dimensions a shared one;
  ``force_double_buffering`` is double buffering. The last memory is off-chip.
* the mapping file's ``default`` entry: its ``spatial_mapping`` is the one unrolling the
  search may use (the dimensions of ``D1`` on rows, of ``D2`` on columns); an entry named
  after a layer (its ONNX node name) or an op type (``Conv``, ``Gemm``, ``MatMul``) gives
  those ops their own; ``Add`` and ``Pooling`` entries are not applied (hwsim runs those
  ops on its vector lanes); temporal orderings are not imposed (hwsim searches them).

ZigZag's files state no clock and no process node: the design runs at a nominal 1 GHz
(cycles are what compare) and its non-GEMM ops, which the files do not price, are priced
by the energy table at 28 nm (choices, said in the design's ``source`` and here).

The files are read against ZigZag's own schema, declared in :mod:`sim.spatial.zigzag_schema`
(a misspelt key is refused with the nearest field). Not expressible, and refused with the
field named: more or fewer than two array dimensions, a memory that serves only some of
them, operands other than I1/I2/O, IMC arrays, costs left to CACTI. Operand widths are the workload's (8-bit for ZigZag's ONNX models) with partial
sums 16 bits wide, as ZigZag's ONNX parser sets them (twice the activation width).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar
from typing import Mapping as Mapping_

from pydantic import BaseModel

from workloads.errors import HwsimError

from .arch import ZIGZAG_SOURCE as SOURCE_PREFIX
from .arch import Level, SpatialArch
from .zigzag_schema import Hardware, Mapping, Port

M = TypeVar("M", bound=BaseModel)

__all__ = ["LINKS", "ROLE", "load", "split", "rebase", "ONNX_KINDS", "VECTOR_TYPES"]

LINKS = {"I1": "input", "I2": "weight", "O": "output"}          # ZigZag's default memory_operand_links
ROLE = {"I": "input", "W": "weight", "O": "output"}


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise HwsimError(f"{where}: {msg}")


def load(spec: str) -> SpatialArch:
    """``HARDWARE.yaml`` or ``HARDWARE.yaml:MAPPING.yaml`` (the part after ``zigzag:``)."""
    from workloads.yamlio import load_yaml_lines, located

    hw_path, map_path = split(spec)
    hw = Path(hw_path)
    doc, lines = load_yaml_lines(hw, "ZigZag hardware description")
    links = dict(LINKS)
    unrollings: tuple[tuple[str, str], ...] | None = None
    per_op: dict[str, str] = {}
    note = ""
    if map_path:
        mp = Path(map_path)
        mdoc, mlines = load_yaml_lines(mp, "ZigZag mapping description")
        with located(mp, mlines):
            links, unrollings, per_op, note = _mapping(mp, mdoc)
    with located(hw, lines):
        return _hardware(hw, doc, links, unrollings, per_op, note)


# how a design read from ZigZag's files says so in its source: its per-op entries follow ZigZag's
# rule (an entry naming a layer the workload lacks is unused), not hwsim's (refused)


def split(spec: str) -> tuple[str, str]:
    """``HARDWARE.yaml[:MAPPING.yaml]`` -> (hardware path, mapping path or "")."""
    hw, _, mp = spec.partition(".yaml:")
    return (hw + ".yaml", mp) if mp else (hw, "")


def rebase(spec: str, folder: Path) -> str:
    """The spec with relative paths taken from ``folder`` (a study file's folder)."""
    parts = [p if not p or Path(p).is_absolute() else str(folder / p) for p in split(spec)]
    return ":".join(p for p in parts if p)


ONNX_KINDS = {"Conv": "conv", "Gemm": "gemm", "MatMul": "gemm"}     # a ZigZag entry named by op type
VECTOR_TYPES = ("Add", "Pooling")       # ZigZag maps these on the array; hwsim runs them on its vector lanes


def _sides(where: str, sm: Mapping_[Any, list[str]] | None) -> tuple[str, str]:
    """The (rows, columns) unrolling of a declared ``spatial_mapping``: its loops' names joined."""
    _need(bool(sm), f"{where}.spatial_mapping", "must map D1 and/or D2 to lists of 'DIM, FACTOR'")
    assert sm is not None
    extra = sorted(set(sm) - {"D1", "D2"})
    _need(not extra, f"{where}.spatial_mapping.{extra[0] if extra else ''}",
          "hwsim's spatial arrays have two dimensions (D1 rows, D2 columns)")
    sides = ["*".join(u.split(",")[0].strip() for u in sm.get(axis) or []) or "G" for axis in ("D1", "D2")]
    return sides[0], sides[1]


def _validate(model: type[M], doc: Any, where: str) -> M:
    """``doc`` as the declared ``model``; a list document's errors name the entry by its index."""
    from pydantic import ValidationError

    from workloads.declared import message

    try:
        return model.model_validate(doc)
    except ValidationError as e:
        msg = re.sub(r"^entries\[(\d+)\]", r"\1", message(model, e))
        raise HwsimError(f"{where}: {msg}") from None


def _mapping(p: Path, doc: Any) -> tuple[dict[str, str], tuple[tuple[str, str], ...], dict[str, str], str]:
    _need(isinstance(doc, list), str(p), "expected a list of mapping entries (name, spatial_mapping, "
                                         "memory_operand_links)")
    m = _validate(Mapping, {"entries": doc}, str(p))
    entries = {e.name: (i, e) for i, e in enumerate(m.entries)}
    _need("default" in entries, str(p), "needs an entry named default (the mapping every layer uses)")
    i, e = entries["default"]
    where = f"{p}: {i}"
    sides = _sides(where, e.spatial_mapping)
    links = dict(LINKS)
    mol = e.memory_operand_links
    if mol is not None:
        links = {}
        for role, mem in mol.model_dump().items():
            _need(mem in LINKS, f"{where}.memory_operand_links.{role}",
                  f"must link {role} to one of {', '.join(LINKS)}, got {mem!r}")
            links[str(mem)] = ROLE[role]
    per_op: dict[str, str] = {}
    ignored = []
    for name, (j, entry) in entries.items():
        if name == "default":
            continue
        if name in VECTOR_TYPES:
            ignored.append(name)
            continue
        rows, cols = _sides(f"{p}: {j}", entry.spatial_mapping)
        # an op type (Conv) names every op of that kind; a layer's ONNX name (/layer1/layer1.0/conv1/Conv)
        # is the trace op's name as hwsim's ONNX reader writes it (layer1.layer1.0.conv1.Conv)
        per_op[ONNX_KINDS.get(name) or name.strip("/").replace("/", ".")] = f"{rows},{cols}"
    note = f"; mapping {p.name}: default unrolling {sides[0]}|{sides[1]}" + (
        f", per op: {', '.join(f'{k} {v}' for k, v in per_op.items())}" if per_op else "") + (
        f" (entries not applied, their ops run on the vector lanes: {', '.join(ignored)})" if ignored else "") + \
        "; temporal orderings are searched, not imposed"
    return links, (sides,), per_op, note


def _ports(where: str, ports: list[Port]) -> tuple[float, float, float, float, bool]:
    """(read bits, write bits, bits per priced read, bits per priced write, shared port)."""
    reads = [q.bandwidth_max for q in ports if q.type == "read"]
    writes = [q.bandwidth_max for q in ports if q.type == "write"]
    rw = [q.bandwidth_max for q in ports if q.type == "read_write"]
    if rw and not reads and not writes and len(rw) == 1:
        return rw[0], rw[0], rw[0], rw[0], True
    r_all, w_all = reads + rw, writes + rw
    _need(bool(r_all) and bool(w_all), f"{where}.ports", "needs a read and a write port (or a read_write one)")
    return sum(r_all), sum(w_all), r_all[0], w_all[0], False


def _hardware(p: Path, doc: Any, links: dict[str, str], unrollings: tuple[tuple[str, str], ...] | None,
              per_op: dict[str, str], note: str) -> SpatialArch:
    _need(isinstance(doc, dict), str(p), "expected a ZigZag hardware mapping (name, memories, operational_array)")
    hw = _validate(Hardware, doc, str(p))
    oa = hw.operational_array
    dims, sizes = oa.dimensions, oa.sizes
    _need(len(dims) == len(sizes) == 2, f"{p}: operational_array.dimensions",
          f"hwsim's spatial arrays have two dimensions (rows, columns); got {dims!r} of sizes {sizes!r}")
    levels = []
    names = list(hw.memories)
    for k, (name, m) in enumerate(hw.memories.items()):
        where = f"{p}: memories.{name}"
        missing = [o for o in m.operands if o not in links]
        _need(not missing, f"{where}.operands", f"{missing[0]!r} is not one of {', '.join(links)} (the mapping's "
                                                 "memory_operand_links)" if missing else "")
        roles = [links[o] for o in m.operands]
        _need(not m.served_dimensions or sorted(m.served_dimensions) == sorted(dims), f"{where}.served_dimensions",
              f"must be [] (one per PE) or all of {dims} (shared by the array); a memory shared along one "
              f"array axis only is not expressible, got {m.served_dimensions!r}")
        last = k == len(names) - 1
        rb, wb, r_unit, w_unit, shared = _ports(where, m.ports)
        safe = "".join(ch if ch.isalnum() else "_" for ch in str(name))
        levels.append(Level(safe, tuple(roles), 0.0 if last else m.size / 8, per_pe=not m.served_dimensions,
                            read_bits=float(rb), write_bits=float(wb), shared_port=shared,
                            read_pj=m.r_cost * rb / r_unit, write_pj=m.w_cost * wb / w_unit,
                            double_buffered=m.force_double_buffering,
                            kind="dram" if last else ("rf" if not m.served_dimensions else "sram")))
    kw: dict[str, Any] = {}
    if unrollings is not None:
        kw["unrollings"] = unrollings
    if per_op:
        kw["op_unrollings"] = per_op
    return SpatialArch(name=hw.name or p.stem, rows=sizes[0], cols=sizes[1], clock_mhz=1000.0, word_bits=8,
                       acc_bits=16, mac_pj=oa.unit_energy, levels=tuple(levels), objective="latency",
                       technology_nm=28, source=f"{SOURCE_PREFIX}{p}{note}; clock not stated there (1 GHz nominal), "
                                                "vector ops priced by the energy table at 28 nm", **kw)

"""Read ZigZag's hardware description (and, optionally, its mapping file) as a spatial design.

``--arch zigzag:HARDWARE.yaml`` or ``--arch zigzag:HARDWARE.yaml:MAPPING.yaml``, in the
format of ZigZag 3.9 (``zigzag/inputs/hardware/*.yaml``, Mei et al., IEEE TC 2021):

* ``operational_array``: its dimensions (two or more: the first is hwsim's rows, the
  second its columns, the rest ``extra_dims``) and the MAC energy (``unit_energy``, pJ);
* ``memories``: each a level, innermost first as listed; ``size`` in bits, per instance;
  ``operands`` I1/I2/O (the input, the weight and the output, as ZigZag's default operand
  links say, or the mapping file's ``memory_operand_links``); ``r_cost``/``w_cost`` pJ per
  access of the first read/write port's ``bandwidth_max`` bits; the read (write) bandwidth
  is the sum of the read (write) ports' ``bandwidth_max``, one ``read_write`` port alone is
  shared; ``served_dimensions`` are the level's ``served`` (one instance per combination of
  the other dimensions, ``sim.spatial.array``), widened as ZigZag widens them: a memory
  also serves what the memories below it of the same operand serve (ZigZag's
  ``SpatialMappingConversionStage`` hands each array dimension's loops to the first memory
  up the operand's hierarchy that serves it); ``force_double_buffering`` is double
  buffering. The last memory is off-chip and must (so widened) serve every dimension.
* the mapping file's ``default`` entry: its ``spatial_mapping`` is the one unrolling the
  search may use (each array dimension's loops on it, in the order listed; a factor below
  the dimension's size caps the loop, ``OX, 8`` on 32 columns: ``OX8``; a dimension left
  out is searched, as ZigZag's spatial mapping generator searches it: one unrolling per
  loop of its ``spatial_mapping_hint`` (else any loop) not unrolled elsewhere, the best kept
  per op); an entry named after a layer (its ONNX node name) or an op type
  (``Conv``, ``Gemm``, ``MatMul``) gives those ops their own, every dimension mapped (an
  op has one unrolling); ``Add`` and ``Pooling``
  entries are not applied (hwsim runs those ops on its vector lanes); temporal orderings
  are not imposed (hwsim searches them). An array of more than two dimensions needs the
  mapping file (hwsim's default unrollings have two sides).

ZigZag's files state no clock and no process node: the design runs at a nominal 1 GHz
(cycles are what compare) and its non-GEMM ops, which the files do not price, are priced
by the energy table at 28 nm (choices, said in the design's ``source`` and here).

The files are read against ZigZag's own schema, declared in :mod:`sim.spatial.zigzag_schema`
(a misspelt key is refused with the nearest field). Not expressible, and refused with the
field named: a one-dimensional array, a memory whose widened ``served_dimensions`` differ
between the operands it holds, loops other than a conv's or GEMM's (``gemm_l1``'s
``D0``-``D2``, a linalg workload's), a loop unrolled on two array dimensions, operands
other than I1/I2/O, IMC arrays, costs left to CACTI. Where ZigZag rounds a mapping's factor
to one that divides the layer (``check 3`` of its conversion stage), hwsim keeps the
factor and pads the last tile. Operand widths are the workload's (8-bit for ZigZag's ONNX
models) with partial sums 16 bits wide, as ZigZag's ONNX parser sets them (twice the
activation width).

The design counts as ZigZag 3.9.1's cost model counts (``zigzag/mapping/mapping.py``,
``zigzag/cost_model/cost_model.py``): ``pe_accumulator`` false (every MAC reads the partial
sum from the innermost output memory and writes it back), ``psum_reads`` "writes" (a
memory holding partial sums reads one back per write, the first included), ``operand_registers``
"pe" (an unchanged input or weight word is not read again: ZigZag's energy and timing count
the innermost memory's reads per period of the stationary loops below it, whatever its
port's width), ``port_words`` (each tile moved is rounded up to whole accesses of the port's
``bandwidth_min`` bits, priced ``r_cost`` per ``bandwidth_max``: ``read_access_bits``) and
``loading`` "overlapped" (ZigZag's on- and offloading). Left as hwsim has it: one price per
memory (the first port's; ZigZag prices each operand by the port allocated to it, which
differs where a memory's ports differ in width: gemm_l1_l3's l1 serves outputs through a
2048-bit port, inputs through 512-bit ones).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from typing import Mapping as Mapping_

from pydantic import BaseModel

from workloads.errors import HwsimError

from .arch import ZIGZAG_SOURCE as SOURCE_PREFIX
from .arch import MAX_EXTRA, Level, LevelKind, SpatialArch
from .array import dims_of
from .nest import DIMS
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
    with located(hw, lines):
        hwdoc = _hardware_doc(hw, doc)
    mapping = None
    if map_path:          # its sides follow the array's dimensions, so it is read after the hardware's
        mp = Path(map_path)
        mdoc, mlines = load_yaml_lines(mp, "ZigZag mapping description")
        with located(mp, mlines):
            mapping = _mapping(mp, mdoc, hwdoc)
    with located(hw, lines):
        return _hardware(hw, hwdoc, mapping)


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
MAX_SEARCHED = 64      # policy: unrollings a mapping's left-out dimensions may open to the search (8 x 7 on 2-D)


def _sides(where: str, sm: Mapping_[Any, list[str]] | None, dims: list[str], sizes: list[int]) -> tuple[str, ...]:
    """The unrolling of a declared ``spatial_mapping``: per array dimension (in the order the
    hardware lists them) its loops joined by ``*``, each capped where its factor is below the
    dimension's size; "" for a dimension the mapping leaves out."""
    sm = sm or {}
    extra = sorted(set(sm) - set(dims))
    _need(not extra, f"{where}.spatial_mapping.{extra[0] if extra else ''}",
          f"the array has no dimension {extra[0] if extra else ''} (its dimensions: {', '.join(dims)})")
    seen: dict[str, str] = {}
    sides = []
    for axis, size in zip(dims, sizes):
        terms = []
        for u in sm.get(axis) or []:
            loop, factor = (x.strip() for x in u.split(","))
            at = f"{where}.spatial_mapping.{axis}"
            _need(loop in DIMS, at, f"{loop!r} is not a loop of a conv or GEMM layer as ZigZag's ONNX parser names "
                                    f"them ({', '.join(DIMS)}); this mapping is written for another workload's loops")
            _need(loop not in seen, at, f"{loop} is unrolled on {seen.get(loop)} too; hwsim unrolls a loop on one "
                                        "array dimension")
            _need(int(factor) > 0, at, f"{loop}'s factor must be above 0, got {factor}")
            seen[loop] = axis
            terms.append(loop + (factor if int(factor) < size else ""))
        sides.append("*".join(terms))
    return tuple(sides)


def searched(where: str, sides: tuple[str, ...], dims: list[str],
             hint: Mapping_[Any, list[str]] | None = None) -> tuple[tuple[str, ...], ...]:
    """A mapping whose entry leaves array dimensions out, as hwsim's search takes it: one
    unrolling per choice of a loop for each, among the entry's ``spatial_mapping_hint`` for
    that dimension where it gives one, else among every loop (ZigZag's
    SpatialMappingGeneratorStage tries those on a left-out dimension, its hint completed by
    ``SpatialMappingHint.complete_with_defaults``), loops unrolled elsewhere excepted; the
    search keeps the best per op. A mapping that gives every dimension is its one unrolling."""
    hint = hint or {}
    for axis, loops in hint.items():
        bad = [d for d in loops if d not in DIMS]
        _need(not bad, f"{where}.spatial_mapping_hint.{axis}", f"{bad[0] if bad else ''!r} is not a loop of a conv "
              f"or GEMM layer ({', '.join(DIMS)})")
    out: list[tuple[str, ...]] = [()]
    given = {d for side in sides for d in dims_of(side)}
    for axis, side in zip(dims, sides):
        if side:
            out = [u + (side,) for u in out]
        else:
            out = [u + (d,) for u in out for d in hint.get(axis) or DIMS if d not in given and d not in u]
    _need(0 < len(out) <= MAX_SEARCHED, f"{where}.spatial_mapping",
          f"leaves {', '.join(d for d, x in zip(dims, sides) if not x)} out: {len(out)} unrollings to search, "
          f"{'none' if not out else f'over the {MAX_SEARCHED} hwsim searches'}; give those dimensions their loops "
          "(or a spatial_mapping_hint naming fewer)")
    return tuple(out)


def _validate(model: type[M], doc: Any, where: str) -> M:
    """``doc`` as the declared ``model``; a list document's errors name the entry by its index."""
    from pydantic import ValidationError

    from workloads.declared import message

    try:
        return model.model_validate(doc)
    except ValidationError as e:
        msg = re.sub(r"^entries\[(\d+)\]", r"\1", message(model, e))
        raise HwsimError(f"{where}: {msg}") from None


class _Map(NamedTuple):
    """What a mapping file says, as hwsim applies it."""

    links: dict[str, str]                  # ZigZag's memory operand -> hwsim's operand
    unrollings: tuple[tuple[str, ...], ...]    # the default entry's, its left-out dimensions searched
    per_op: dict[str, str]                 # op name or kind -> its own unrolling ("K,C,OX8")
    note: str                              # for the design's source


def _mapping(p: Path, doc: Any, hw: Hardware) -> _Map:
    _need(isinstance(doc, list), str(p), "expected a list of mapping entries (name, spatial_mapping, "
                                         "memory_operand_links)")
    m = _validate(Mapping, {"entries": doc}, str(p))
    dims, sizes = hw.operational_array.dimensions, hw.operational_array.sizes
    entries = {e.name: (i, e) for i, e in enumerate(m.entries)}
    _need("default" in entries, str(p), "needs an entry named default (the mapping every layer uses)")
    i, e = entries["default"]
    where = f"{p}: {i}"
    sides = _sides(where, e.spatial_mapping, dims, sizes)
    unrollings = searched(where, sides, dims, e.spatial_mapping_hint)
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
        own = _sides(f"{p}: {j}", entry.spatial_mapping, dims, sizes)
        _need(all(own), f"{p}: {j}.spatial_mapping", f"leaves {', '.join(d for d, x in zip(dims, own) if not x)} "
              f"out; an entry for some ops ({name}) maps every array dimension (hwsim gives an op one unrolling)")
        # an op type (Conv) names every op of that kind; a layer's ONNX name (/layer1/layer1.0/conv1/Conv)
        # is the trace op's name as hwsim's ONNX reader writes it (layer1.layer1.0.conv1.Conv)
        per_op[ONNX_KINDS.get(name) or name.strip("/").replace("/", ".")] = ",".join(own)
    left = [d for d, x in zip(dims, sides) if not x]
    note = f"; mapping {p.name}: default unrolling {'|'.join(x or '-' for x in sides)}" + (
        f" ({', '.join(left)} left out: searched over every loop not unrolled elsewhere, as ZigZag's spatial "
        "mapping generator does)" if left else "") + (
        f", per op: {', '.join(f'{k} {v}' for k, v in per_op.items())}" if per_op else "") + (
        f" (entries not applied, their ops run on the vector lanes: {', '.join(ignored)})" if ignored else "") + \
        "; temporal orderings are searched, not imposed"
    return _Map(links, unrollings, per_op, note)


class _Ports(NamedTuple):
    read_bits: float          # the read ports' bandwidth_max together
    write_bits: float
    read_unit: float          # the first read port's bandwidth_max: what r_cost is per
    write_unit: float
    read_access: float        # the first read port's bandwidth_min: the smallest access (port_words)
    write_access: float
    shared: bool


def _access(least: float, port: float) -> float:
    """A level's ``read_access_bits`` (``write_access_bits``): the port's bandwidth_min, 0
    (the whole port) where that is the port's width."""
    return 0.0 if least >= port else float(least)


def _ports(where: str, ports: list[Port]) -> _Ports:
    reads = [q for q in ports if q.type == "read"]
    writes = [q for q in ports if q.type == "write"]
    rw = [q for q in ports if q.type == "read_write"]
    if rw and not reads and not writes and len(rw) == 1:
        q = rw[0]
        return _Ports(q.bandwidth_max, q.bandwidth_max, q.bandwidth_max, q.bandwidth_max, q.bandwidth_min,
                      q.bandwidth_min, True)
    r_all, w_all = reads + rw, writes + rw
    _need(bool(r_all) and bool(w_all), f"{where}.ports", "needs a read and a write port (or a read_write one)")
    return _Ports(sum(q.bandwidth_max for q in r_all), sum(q.bandwidth_max for q in w_all), r_all[0].bandwidth_max,
                  w_all[0].bandwidth_max, r_all[0].bandwidth_min, w_all[0].bandwidth_min, False)


def _hardware_doc(p: Path, doc: Any) -> Hardware:
    """The hardware file, declared, with an array hwsim can hold (two or more dimensions)."""
    _need(isinstance(doc, dict), str(p), "expected a ZigZag hardware mapping (name, memories, operational_array)")
    hw = _validate(Hardware, doc, str(p))
    dims, sizes = hw.operational_array.dimensions, hw.operational_array.sizes
    _need(len(dims) == len(sizes) >= 2 and len(set(dims)) == len(dims), f"{p}: operational_array.dimensions",
          f"must name each of the array's dimensions once, as many as its sizes, at least two (a row of N MACs: "
          f"sizes [N, 1]); got {dims!r} of sizes {sizes!r}")
    _need(len(dims) - 2 <= MAX_EXTRA, f"{p}: operational_array.dimensions",
          f"hwsim's arrays have at most {MAX_EXTRA + 2} dimensions, got {len(dims)}")
    return hw


def _served(p: Path, hw: Hardware) -> list[list[str]]:
    """Each memory's served array dimensions, widened as ZigZag widens them (see the module),
    as hwsim names them (D1 the first listed, D2 the second, ...); the last must serve all."""
    dims = hw.operational_array.dimensions
    below: dict[str, set[str]] = {}
    out = []
    names = list(hw.memories)
    for k, (name, m) in enumerate(hw.memories.items()):
        at = f"{p}: memories.{name}.served_dimensions"
        bad = [d for d in m.served_dimensions if d not in dims]
        _need(not bad, at, f"{bad[0] if bad else ''} is not a dimension of the array ({', '.join(dims)})")
        wide: dict[str, set[str]] = {o: set(m.served_dimensions) | below.get(o, set()) for o in m.operands}
        sets = {frozenset(v) for v in wide.values()}
        _need(len(sets) == 1, at, "widened by the memories below it (ZigZag's rule), it serves different "
              f"dimensions for its operands ({'; '.join(f'{o}: {sorted(v)}' for o, v in wide.items())}); hwsim "
              "gives a level one set")
        below.update(wide)
        served = next(iter(sets))
        _need(k < len(names) - 1 or served == set(dims), at, f"the last memory (off-chip) must serve every dimension "
              f"of the array ({', '.join(dims)}), with those the memories below it serve; got {m.served_dimensions}")
        out.append([f"D{dims.index(d) + 1}" for d in dims if d in served])
    return out


def _hardware(p: Path, hw: Hardware, mapping: _Map | None) -> SpatialArch:
    oa = hw.operational_array
    dims, sizes = oa.dimensions, oa.sizes
    _need(mapping is not None or len(dims) == 2, f"{p}: operational_array.dimensions",
          f"an array of {len(dims)} dimensions needs a mapping file (zigzag:HARDWARE.yaml:MAPPING.yaml) whose default "
          "entry's spatial_mapping says what each dimension unrolls; hwsim's default unrollings have two sides")
    links = mapping.links if mapping is not None else dict(LINKS)
    served = _served(p, hw)
    levels = []
    names = list(hw.memories)
    for k, (name, m) in enumerate(hw.memories.items()):
        where = f"{p}: memories.{name}"
        missing = [o for o in m.operands if o not in links]
        _need(not missing, f"{where}.operands", f"{missing[0]!r} is not one of {', '.join(links)} (the mapping's "
                                                 "memory_operand_links)" if missing else "")
        roles = [links[o] for o in m.operands]
        last = k == len(names) - 1
        pt = _ports(where, m.ports)
        safe = "".join(ch if ch.isalnum() else "_" for ch in str(name))
        # a memory replicated along some dimension (a register, per PE or per group of PEs) is
        # priced as rf by the energy table where its costs are not given; one for the array as sram
        kind: LevelKind = "dram" if last else ("rf" if len(served[k]) < len(dims) else "sram")
        levels.append(Level(safe, tuple(roles), 0.0 if last else m.size / 8, served=tuple(served[k]),
                            read_bits=float(pt.read_bits), write_bits=float(pt.write_bits), shared_port=pt.shared,
                            read_pj=m.r_cost * pt.read_bits / pt.read_unit,
                            write_pj=m.w_cost * pt.write_bits / pt.write_unit,
                            read_access_bits=_access(pt.read_access, pt.read_bits),
                            write_access_bits=_access(pt.write_access, pt.write_bits),
                            double_buffered=m.force_double_buffering, kind=kind))
    kw: dict[str, Any] = {}
    if mapping is not None:
        kw["unrollings"] = mapping.unrollings
        if mapping.per_op:
            kw["op_unrollings"] = mapping.per_op
    note = mapping.note if mapping is not None else ""
    return SpatialArch(name=hw.name or p.stem, rows=sizes[0], cols=sizes[1], extra_dims=tuple(sizes[2:]),
                       clock_mhz=1000.0, word_bits=8, acc_bits=16, mac_pj=oa.unit_energy, levels=tuple(levels),
                       pe_accumulator=False, operand_registers="pe", port_words=True, loading="overlapped",
                       psum_reads="writes", objective="latency", technology_nm=28,
                       source=f"{SOURCE_PREFIX}{p}{note}; clock not stated there (1 GHz nominal), "
                              "vector ops priced by the energy table at 28 nm", **kw)

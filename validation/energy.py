"""Energy rows: per-operation and per-access energies, and the power of a machine running a
workload.

* ``design`` an energy table (``horowitz45``, ``han45``, ``eyeriss65``), optionally at
  ``node_nm``: model ``mul.int8`` / ``add.fp32`` / ``fma.fp16`` (``pj_per_op``),
  ``sram:8KiB`` (``pj_per_access_64b`` / ``_32b``), ``dram:hbm2`` (``pj_per_bit``),
  ``level:dram`` (``relative_energy_per_access``, in MACs). The table's own source rows are
  ``fit`` (the table *is* those numbers); rows from other papers at other nodes check the
  table and its node scaling.
* ``design`` a machine preset: model ``level:<name>`` (one of the machine's memory levels,
  ``pj_per_bit``), ``gemm.fp16`` (``pj_per_flop``: the dynamic and active energy of an
  8192^3 GEMM over its FLOPs, the machine's idle power left out), ``idle`` (``power_w``:
  the machine's static power), or a workload (``power_w``, ``frames_per_s``; options
  ``batch``, ``layer`` = one op, ``ops=conv`` = the convolutions only).
"""

from __future__ import annotations

import re

from analysis.energy import load_table
from sim.registry import presets, resolve_arch
from workloads.errors import HwsimError

from .base import Reader, Unsupported, evaluation, opt_int, opt_str
from .schema import Row

__all__ = ["READER"]

QUANTITIES = {"pj_per_op": ("pJ",), "pj_per_access_64b": ("pJ",), "pj_per_access_32b": ("pJ",),
              "relative_energy_per_access": ("x MAC",), "pj_per_bit": ("pJ/bit",), "pj_per_flop": ("pJ/FLOP",),
              "power_w": ("W", "mW"), "frames_per_s": ("frames/s",)}
OPTIONS = frozenset({"node_nm", "batch", "layer", "ops", "scope", "load", "unit", "component", "bound", "stat", "pes"})
TABLES = ("horowitz45", "han45", "eyeriss65")
# the zoo AlexNet's convolutions by the paper's names
ALEXNET_LAYERS = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8",
                  "conv5": "features.10"}
# the tables' names for the DRAM generations published figures name
DRAM_ALIASES = {"gddr5": "gddr", "lpddr2": "lpddr"}
GEMM_FOR_PJ_PER_FLOP = 8192   # a square GEMM large enough to be compute bound on every preset


def _table(row: Row):
    t = load_table(row.design)
    node = row.option("node_nm")
    return t.at_node(float(node)) if node else t


def _dram_pj_per_bit(t, model: str) -> float:
    kind = model.partition(":")[2]
    kind = DRAM_ALIASES.get(kind, kind)
    if kind not in t.dram_pj_per_bit:
        raise Unsupported(f"the {t.name} table has no DRAM type {kind!r}")
    return float(t.dram_pj_per_bit[kind])


def _from_table(row: Row) -> float:
    t, m, q = _table(row), row.model, row.quantity
    if q == "pj_per_op":
        return t.op_pj(m)
    if q in ("pj_per_access_64b", "pj_per_access_32b") and m.startswith("dram:"):
        return _dram_pj_per_bit(t, m) * (64 if q.endswith("64b") else 32)
    if q in ("pj_per_access_64b", "pj_per_access_32b"):
        hit = re.fullmatch(r"sram:(\d+(?:\.\d+)?)(KiB|MiB)", m)
        if not hit:
            raise Unsupported(f"{m}: an SRAM access needs a capacity (sram:8KiB, sram:1MiB)")
        cap = float(hit[1]) * (1024 if hit[2] == "KiB" else 1024 ** 2)
        pj = t.sram_pj_64b(cap) * t.scale
        return pj if q.endswith("64b") else pj / 2
    if q == "pj_per_bit":
        if opt_str(row, "component") not in (None, "total-incl-ecc"):
            raise Unsupported("hwsim prices a DRAM access whole, not by component (activation, movement, I/O)")
        return _dram_pj_per_bit(t, m)
    if q == "relative_energy_per_access":
        level = m.partition(":")[2]
        if level == "alu":
            return 1.0
        if level not in t.levels_relative:
            raise Unsupported(f"the {t.name} table has no level {level!r}")
        return t.levels_relative[level]
    raise Unsupported(f"{q} is not read from an energy table")


def _ops(row: Row, design) -> tuple[float, float, int]:
    """(time in us, energy in pJ, batch) of the ops a row names."""
    ev = evaluation(row.model, design, batch=opt_int(row, "batch"))
    df = ev.to_frame()
    layer, ops = opt_str(row, "layer"), opt_str(row, "ops")
    if layer is not None:
        name = ALEXNET_LAYERS.get(layer, layer) if row.model == "alexnet" else layer
        df = df[df["name"] == name]
        if df.empty:
            raise HwsimError(f"{row.where}: options.layer {layer!r} is not an op of {row.model}")
    elif ops == "conv":
        convs = {o.name for o in ev.workload.ops if o.kind == "conv"}
        df = df[df["name"].isin(convs)]
    elif ops is not None:
        raise HwsimError(f"{row.where}: options.ops must be conv")
    # the ops' own time (ops of a serial graph run one after another on these machines)
    return float(df["time_us"].sum()), float(df["energy_pj"].sum()), int(ev.workload.batch)


def _from_machine(row: Row) -> float:
    scope = opt_str(row, "scope")
    if scope not in (None, "die", "chip"):
        raise Unsupported(f"scope {scope}: hwsim models the accelerator, not its host server")
    if opt_int(row, "pes") is not None:
        raise Unsupported("a single PE's power: hwsim reports a design's power, not a PE's")
    desc = resolve_arch(row.design)
    q, m = row.quantity, row.model
    if m == "idle":
        if q != "power_w":
            raise HwsimError(f"{row.where}: model idle answers power_w only")
        return desc.static_power_w * (1e3 if row.unit == "mW" else 1.0)
    if m.startswith("level:"):
        levels = desc.memory_levels()
        lv = levels.get(m[6:])
        if lv is None:
            raise HwsimError(f"{row.where}: {row.design} has no memory level {m[6:]!r}; one of {', '.join(levels)}")
        if lv.read_pj_per_byte is None:
            raise Unsupported(f"{row.design} does not price its {m[6:]} itself (the energy table does)")
        return lv.read_pj_per_byte / 8
    if q == "pj_per_flop":
        kind, _, prec = m.partition(".")
        if kind != "gemm":
            raise Unsupported(f"{m}: only tensor-core GEMMs are modelled (no FP64 vector units)")
        n = GEMM_FOR_PJ_PER_FLOP
        s = evaluation(f"gemm:{n},{n},{n}", desc, precision=prec).summary()
        return (s["energy_pj"] - s["energy_static_pj"]) / (2.0 * n ** 3)
    t_us, pj, batch = _ops(row, desc)
    if q == "power_w":
        w = pj * 1e-12 / (t_us * 1e-6)
        return w * (1e3 if row.unit == "mW" else 1.0)
    if q == "frames_per_s":
        return batch / (t_us * 1e-6)
    raise Unsupported(f"{q} is not computed for a machine")


def measure(row: Row) -> float:
    if row.design in TABLES:
        return _from_table(row)
    if row.design not in presets():
        raise Unsupported(f"hwsim has no model of {row.design or 'this design'}")
    return _from_machine(row)


READER = Reader("energy", QUANTITIES, OPTIONS, measure)

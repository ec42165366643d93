"""Energy model: every simulator's access counts and operation counts, priced by a
technology table, per op, per memory level and per operand.

Tables are data (``analysis/tables/*.yaml``, or a user YAML of the same shape, in the
spirit of Accelergy's ERT): ``ops`` in pJ per operation (``add.int8``, ``mul.fp16``, ...),
``sram`` as pJ per 64-bit access at given capacities, ``dram_pj_per_bit`` per DRAM type,
or ``levels_relative`` (Eyeriss-style costs per 16-bit access relative to one MAC).

* **SRAM and register files** are priced by capacity, interpolating ``log(energy)``
  linearly in ``log(capacity)`` between the table's points (Horowitz's 8 KB / 32 KB / 1 MB
  give an exponent of ~0.5, so energy grows as the square root of capacity), and
  extrapolating the nearest segment beyond them (small register files, large buffers).
  Energy per byte is the 64-bit access energy / 8.
* **MACs** are a multiply plus an accumulate at the accumulator width: ``mac.int8`` =
  ``mul.int8 + add.int32``, ``mac.fp16`` = ``mul.fp16 + add.fp32`` (mixed precision);
  widths missing from a table scale with the square of the width (multipliers).
* **Technology scaling** to another node follows Dennard scaling of switched capacitance
  (C proportional to the feature size) with nominal supply voltages, E ~ C V^2 (Dennard
  et al., JSSC 1974); it is known to flatter wires and SRAM at the newest nodes.
* **Static energy**: a design's ``static_power_w`` (the TPU's published 28 W idle power;
  0 where a design is priced on dynamic energy only) over the run's time. Each op carries
  its share: its time, scaled so that the ops together carry the whole makespan.

What each access level is (its kind, capacity and DRAM technology) and the static power
come from the machine (``memory_levels()``, ``static_power_w``), never from its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from sim.machine import PricesItsOwnOps
from workloads.errors import HwsimError

from .technology import NODE_RANGE_NM, node_factor, vdd

if TYPE_CHECKING:
    from sim.machine import Machine, MemoryLevel
    from sim.result import OpResult, SimResult

__all__ = ["TABLES", "EnergyTable", "load_table", "table_from_dict", "OpEnergy", "op_energy",
           "prices_itself", "machine_op_prices", "energy_rows"]

TABLES = Path(__file__).parent / "tables"
@dataclass(frozen=True)
class EnergyTable:
    name: str
    technology_nm: float
    source: str
    ops: Mapping[str, float]
    sram: tuple[tuple[float, float], ...] = ()          # (capacity bytes, pJ per 64-bit access)
    dram_pj_per_bit: Mapping[str, float] = field(default_factory=dict)
    levels_relative: Mapping[str, float] = field(default_factory=dict)
    relative_to_mac: float = 0.0
    relative_mac_node_nm: float = 45.0
    relative_mac_vdd_v: float = 0.9       # Horowitz's figures (the usual MAC anchor) are at 45 nm and 0.9 V
    vdd_v: float = 0.0                    # the supply the figures hold at; 0: the node's nominal (analysis.technology)
    scale: float = 1.0                    # node scaling applied to every number, from ``written``
    written: tuple[float, float] = (0.0, 0.0)   # (nm, V) of the figures as written, once moved by at_node

    @property
    def supply_v(self) -> float:
        """The supply voltage the table's prices are at now."""
        return self.vdd_v or vdd(self.technology_nm)

    def at_node(self, node_nm: float) -> "EnergyTable":
        """The table's prices at another node and its nominal supply (E ~ L x Vdd^2)."""
        from dataclasses import replace
        if isinstance(node_nm, bool) or not isinstance(node_nm, (int, float)) or not math.isfinite(node_nm) \
                or not NODE_RANGE_NM[0] <= node_nm <= NODE_RANGE_NM[1]:
            raise HwsimError(f"technology node: must be a number of nm in {NODE_RANGE_NM[0]:g}..{NODE_RANGE_NM[1]:g} "
                             f"(a CMOS process node), got {node_nm!r}")
        base = self.written if self.written[0] else (self.technology_nm, self.supply_v)
        if float(node_nm) == base[0]:         # the figures' own node: their own supply, unscaled
            return replace(self, scale=1.0, technology_nm=base[0], vdd_v=base[1], written=base)
        return replace(self, scale=node_factor(base[0], node_nm, from_vdd=base[1]), technology_nm=float(node_nm),
                       vdd_v=0.0, written=base)

    # ---- prices ----------------------------------------------------------------------------
    def op_pj(self, key: str) -> float:
        """pJ of one operation: ``mul.int8``, ``mac.fp16``, ``vector.int16``, ``fma.fp16``..."""
        kind, _, dtype = key.partition(".")
        if kind in ("mac", "fma"):
            acc = "fp32" if dtype.startswith(("fp", "bf", "tf")) else "int32"
            return self.op_pj(f"mul.{dtype}") + self.op_pj(f"add.{acc}")
        if kind == "vector":
            return self.op_pj(f"add.{dtype}")
        if kind not in ("add", "mul"):
            raise HwsimError(f"energy table {self.name}: no price for operation {key!r}")
        dtype = {"bf16": "fp16", "tf32": "fp32", "fp64": "fp32"}.get(dtype, dtype)
        if f"{kind}.{dtype}" in self.ops:
            return self.ops[f"{kind}.{dtype}"] * self.scale
        family = "fp" if dtype.startswith("fp") else "int"
        try:
            bits = int(dtype[len(family):])
        except ValueError:
            raise HwsimError(f"energy table {self.name}: cannot price {key!r}") from None
        ref_bits = 16 if family == "fp" else 8
        base = self.ops.get(f"{kind}.{family}{ref_bits}")
        if base is None:
            raise HwsimError(f"energy table {self.name}: needs {kind}.{family}{ref_bits} to price {key!r}")
        power = 2 if kind == "mul" else 1
        return base * (bits / ref_bits) ** power * self.scale

    def mac_pj(self) -> float:
        return self.relative_to_mac * node_factor(self.relative_mac_node_nm, self.technology_nm,
                                                  from_vdd=self.relative_mac_vdd_v, to_vdd=self.supply_v)

    def level_pj_per_byte(self, kind: str, capacity_bytes: float = 0, dram: str = "ddr3") -> float:
        if self.levels_relative:
            rel = self.levels_relative.get("sram" if kind == "rf" and "rf" not in self.levels_relative else kind)
            if rel is None:
                raise HwsimError(f"energy table {self.name}: levels_relative has no {kind!r}")
            return rel * self.mac_pj() / 2          # per 16-bit access -> per byte
        if kind == "dram":
            if dram not in self.dram_pj_per_bit:
                raise HwsimError(f"energy table {self.name}: no DRAM type {dram!r}; has {', '.join(self.dram_pj_per_bit)}")
            # not node-scaled: a DRAM access costs what the DRAM device and its interface cost
            # (the table's figure per DRAM type), whatever process the accelerator's logic is in
            return self.dram_pj_per_bit[dram] * 8
        if kind == "noc":
            return self.sram_pj_64b(1024) / 8 * self.scale
        return self.sram_pj_64b(capacity_bytes) / 8 * self.scale

    def sram_pj_64b(self, capacity_bytes: float) -> float:
        pts = sorted(self.sram)
        if not pts:
            raise HwsimError(f"energy table {self.name}: no sram points")
        if len(pts) == 1:
            return pts[0][1]
        c = max(float(capacity_bytes), 1.0)
        i = 0
        while i < len(pts) - 2 and c > pts[i + 1][0]:
            i += 1
        (c0, e0), (c1, e1) = pts[i], pts[i + 1]
        alpha = math.log(e1 / e0) / math.log(c1 / c0)
        return e0 * (c / c0) ** alpha


def load_table(spec: str | Path = "horowitz45") -> EnergyTable:
    """A built-in table by name (horowitz45, han45, eyeriss65) or a YAML file."""
    p = Path(spec)
    if not p.suffix:
        p = TABLES / f"{spec}.yaml"
        if not p.exists():
            names = ", ".join(sorted(x.stem for x in TABLES.glob("*.yaml")))
            raise HwsimError(f"unknown energy table {spec!r}; built in: {names}; or a YAML file")
    from workloads.yamlio import load_yaml_lines, located

    doc, lines = load_yaml_lines(p, "energy table")
    with located(p, lines):
        return table_from_dict(doc, str(p))


def table_from_dict(doc: Any, where: str) -> EnergyTable:
    """An energy table from its document, checked against :class:`~analysis.energy_schema.EnergyTableDoc`."""
    from workloads.declared import validate

    from .energy_schema import EnergyTableDoc

    if not isinstance(doc, dict):
        raise HwsimError(f"{where}: an energy table is a mapping with name, technology_nm, source, ops, ...")
    t = validate(EnergyTableDoc, doc, where)
    return EnergyTable(name=t.name, technology_nm=t.technology_nm, source=t.source, ops=dict(t.ops),
                       sram=tuple((p.capacity_kib * 1024, p.pj_per_64b) for p in t.sram),
                       dram_pj_per_bit=dict(t.dram_pj_per_bit), levels_relative=dict(t.levels_relative),
                       relative_to_mac=t.relative_to_mac, relative_mac_node_nm=t.relative_mac_node_nm,
                       relative_mac_vdd_v=t.relative_mac_vdd_v, vdd_v=t.vdd_v)


@dataclass(frozen=True)
class OpEnergy:
    total_pj: float
    compute_pj: float
    static_pj: float
    by_level: Mapping[str, float]
    by_operand: Mapping[str, float]
    active_pj: float = 0.0      # power a busy chip draws beyond idle (``active.*`` ops, priced by the machine)


def op_energy(r: OpResult, levels: Mapping[str, MemoryLevel], table: EnergyTable, static_w: float = 0.0,
              static_scale: float = 1.0, op_prices: Mapping[str, float] | None = None) -> OpEnergy:
    """Energy of one ``OpResult``: accesses x per-byte level energy + ops x op energy +
    static power x the op's time x ``static_scale``; on-chip energies x the square of the
    voltage the op ran at (``OpResult.voltage``). A level's or an operation's own price
    (``MemoryLevel.read_pj_per_byte``, a machine's ``op_prices()``) wins over the table's."""
    by_level: dict[str, float] = {}
    by_operand: dict[str, float] = {}
    v2 = r.voltage ** 2             # on-chip dynamic energy at the voltage the op ran at (DRAM: its own rail)
    for key, nbytes in r.accesses.items():
        level, operand, direction = key.split(".")
        lv = levels.get(level)
        if lv is None:
            raise HwsimError(f"op {r.name!r}: access level {level!r} is not one of the machine's memory levels")
        own = lv.read_pj_per_byte if direction == "reads" else lv.write_pj_per_byte
        e = nbytes * (own if own is not None else table.level_pj_per_byte(lv.kind, lv.capacity_bytes, lv.technology))
        if lv.kind != "dram":
            e *= v2
        by_level[level] = by_level.get(level, 0.0) + e
        by_operand[operand] = by_operand.get(operand, 0.0) + e
    own_ops = op_prices or {}
    compute = active = 0.0
    for k, n in r.ops.items():
        if k.startswith("active."):
            if k not in own_ops:
                raise HwsimError(f"op {r.name!r}: {k!r} needs the machine's own price (op_prices)")
            active += n * own_ops[k] * v2
        else:
            compute += n * (own_ops[k] if k in own_ops else table.op_pj(k)) * v2
    static = static_w * r.time_us * static_scale * 1e6          # W x us = uJ = 1e6 pJ
    total = compute + active + static + sum(by_level.values())
    return OpEnergy(total, compute, static, by_level, by_operand, active)


def prices_itself(arch: Machine) -> bool:
    """Whether every memory level of ``arch`` carries its own price (the table prices none of them)."""
    return all(lv.read_pj_per_byte is not None for lv in arch.memory_levels().values())


def machine_op_prices(arch: Machine) -> Mapping[str, float]:
    """The operations a design prices itself (``op_prices()``, where it has one)."""
    return arch.op_prices() if isinstance(arch, PricesItsOwnOps) else {}


def energy_rows(result: SimResult, arch: Machine, table: EnergyTable) -> tuple[list[dict], dict]:
    """The result's rows with ``energy_pj`` and per-level/per-operand energy columns, and totals."""
    levels = arch.memory_levels()
    busy = result.busy_cycles
    scale = result.cycles / busy if busy else 1.0        # static energy covers the makespan once
    rows = []
    tot: dict[str, float] = {}
    for r in result.ops:
        e = op_energy(r, levels, table, arch.static_power_w, scale, machine_op_prices(arch))
        row = result.row(r)
        row["energy_pj"] = e.total_pj
        row["energy_compute_pj"] = e.compute_pj
        row["energy_static_pj"] = e.static_pj
        row["energy_active_pj"] = e.active_pj
        for lv in levels:
            row[f"energy_{lv}_pj"] = e.by_level.get(lv, 0.0)
        for opnd, v in e.by_operand.items():
            row[f"energy_{opnd}_pj"] = v
        rows.append(row)
        for k, v in row.items():
            if k.startswith("energy_"):
                tot[k] = tot.get(k, 0.0) + v
    return rows, tot

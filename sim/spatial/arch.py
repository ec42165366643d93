"""A spatial accelerator described by its memory hierarchy: an N-dimensional array of MACs
under an ordered list of memory levels, the way ZigZag and Timeloop describe one.

The array has ``rows`` (ZigZag's D1), ``cols`` (D2) and, for a deeper array, ``extra_dims``
(D3, D4, ...); its MACs are their product (``sim.spatial.array``). Each level names the
operands it holds (``input``, ``weight``, ``output``; one level may hold several, sharing
its capacity), its capacity, which array dimensions it is shared along (``served``, as
ZigZag's ``served_dimensions``: one instance per combination of the others; ``per_pe`` is
the short form of serving none, the default of serving all), its read and write ports
(bits per cycle per instance, one shared port or separate ones), its read and write
energy per access of a port's width, and whether it is double-buffered (then a tile
occupies half of it, and refills overlap compute). The last level is the off-chip memory
and holds every operand for the whole array. ``unrollings`` are the spatial mappings the
array supports: which loop dimension goes on each of its dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
import typing
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Mapping

from annotated_types import Ge, Gt, Le, Lt

from workloads.errors import HwsimError
from workloads.fields import check_known

from ..archbase import Clock, NonNegative, Rate, NonNegativeInt, Nm, check_fields, known_fields, need
from ..constants import Constant
from ..machine import MemoryLevel, Peaks, describe_fields
from .array import check_served, served_axes, served_text, unrolling
from .nest import OPERANDS

if TYPE_CHECKING:
    from workloads.trace import Workload

    from ..machine import Progress
    from ..result import OpResult, SimResult

__all__ = ["OBJECTIVES", "TIMINGS", "FAMILIES", "Level", "SpatialArch", "describe_level", "EYERISS_MAC_PJ",
           "CONSTANTS", "PRESETS", "ARCH"]

Objective = Literal["latency", "energy", "edp"]
Timing = Literal["analytical", "stepped"]
OperandRegisters = Literal["pe", "port", "none"]
Loading = Literal["tile", "overlapped", "roofline"]
Factors = Literal["padded", "divisors"]
PsumReads = Literal["revisits", "writes"]
OBJECTIVES: tuple[Objective, ...] = typing.get_args(Objective)
TIMINGS: tuple[Timing, ...] = typing.get_args(Timing)
FAMILIES = ("ws", "os", "is", "rs")     # named dataflows (sim.spatial.search.DATAFLOWS)
ZIGZAG_SOURCE = "ZigZag hardware file "   # how a design read from ZigZag's files (sim.spatial.zigzag) starts its source
Family = Literal["", "ws", "os", "is", "rs"]      # "": every mapping
LevelKind = Literal["rf", "sram", "noc", "dram"]  # sim.machine.LEVEL_KINDS, for the energy table
Amount = Annotated[float, Ge(0), Le(2 ** 50)]      # bytes, bits or pJ: policy bound for int64 arithmetic
_SIDE = r"\s*(?:[A-Z]+\d*(?:\*[A-Z]+\d*)*)?\s*"
_UNROLLING_SCHEMA = {"anyOf": [{"type": "string", "pattern": rf"^{_SIDE}(?:,{_SIDE})+$"},
                               {"type": "array", "items": {"type": "string"}, "minItems": 2}],
                     "description": "one side per array dimension: 'ROWDIMS,COLDIMS' such as 'C,K' or 'FY*C,OY'; "
                                    "'K,C,OX,OY' on a 4-D array; 'OX8' caps OX at 8"}
_UNROLLINGS_SCHEMA = {"type": "array", "items": _UNROLLING_SCHEMA, "minItems": 1}
MAX_EXTRA = 6            # policy: D3..D8 (ZigZag names dimensions D0-D9); no stock design has more than 4
MAX_PES = 2 ** 32        # policy: the bound rows x cols already has
MAX_BYPASSES = 6         # policy: (level, operand) pairs a search may bypass; it runs 2^n searches (64 at most)


@dataclass(frozen=True)
class Level:
    """One memory level (see the module). Energies are pJ per access of ``read_bits`` /
    ``write_bits``; a level without energies (0) is priced by the energy table by its
    ``kind`` and capacity."""

    name: str
    operands: tuple[str, ...]
    size_bytes: Amount = 0.0           # per instance (per PE when per_pe); 0 only for the off-chip level (unbounded)
    per_pe: bool = False               # one instance per PE: it serves no array dimension
    read_bits: Rate = 64.0             # read port width: bits per cycle, per instance (per PE when per_pe)
    write_bits: Rate = 64.0
    shared_port: bool = False          # one read/write port: reads and writes take turns
    read_pj: Amount = 0.0              # per read of read_bits
    write_pj: Amount = 0.0             # per write of write_bits
    # with the design's port_words: the bits of the smallest access (ZigZag's bandwidth_min), to
    # whole numbers of which each tile transfer is rounded up; 0: the port's whole width
    read_access_bits: Amount = 0.0
    write_access_bits: Amount = 0.0
    double_buffered: bool = False
    kind: LevelKind = "sram"
    # the array dimensions ("D1" rows, "D2" columns, "D3", ...) it is shared along, one instance
    # per combination of the others (ZigZag's served_dimensions); None: per_pe says (none or all)
    served: tuple[str, ...] | None = None
    # the operands the mapping search may keep out of this level (AccelForge's tensors.may_keep
    # less keep): per operand and op, the search tries the level holding it and bypassing it,
    # a bypassed operand's tiles then moving straight between the levels below and above
    bypass: tuple[str, ...] = field(default=(), metadata={"json_schema": {
        "type": "array", "items": {"enum": list(OPERANDS)}, "uniqueItems": True}})

    def __post_init__(self) -> None:
        check_fields(self)
        byp = self.bypass
        need(isinstance(byp, (list, tuple)) and all(isinstance(o, str) for o in byp), f"{self.name}.bypass",
             f"must be a list of the level's operands, got {byp!r}")
        need(all(o in self.operands for o in byp) and len(set(byp)) == len(byp), f"{self.name}.bypass",
             f"must list operands the level holds ({', '.join(self.operands)}), each once, got {list(byp)}")
        object.__setattr__(self, "bypass", tuple(byp))
        if self.served is not None:
            need(isinstance(self.served, (list, tuple)) and all(isinstance(a, str) for a in self.served),
                 f"{self.name}.served", f"must be a list of array dimensions (D1, D2, ...), got {self.served!r}")
            need(not (self.per_pe and self.served), f"{self.name}.served",
                 "a per-PE level (per_pe: true) serves no array dimension; give per_pe or served, not both")
            if not self.served:         # serving none is the per-PE level: one spelling of it
                object.__setattr__(self, "per_pe", True)
                object.__setattr__(self, "served", None)
            else:
                object.__setattr__(self, "served", tuple(self.served))
        need(bool(self.name) and self.name.replace("_", "").isalnum(), "name",
             f"must be letters, digits and _, got {self.name!r}")
        ops = tuple(self.operands) if isinstance(self.operands, (list, tuple)) else None
        need(ops is not None and len(ops) > 0, f"{self.name}.operands",
             f"must be a non-empty list of {', '.join(OPERANDS)}")
        assert ops is not None
        for o in ops:
            need(o in OPERANDS, f"{self.name}.operands", f"must be among {', '.join(OPERANDS)}, got {o!r}")
        need(len(set(ops)) == len(ops), f"{self.name}.operands", "lists an operand twice")
        object.__setattr__(self, "operands", ops)
        for way in ("read", "write"):
            acc, port = getattr(self, f"{way}_access_bits"), getattr(self, f"{way}_bits")
            need(acc <= port, f"{self.name}.{way}_access_bits", f"{acc:g} bits exceed the {way} port's {port:g}; an "
                 "access is at most the port's width (0: the whole port)")

    @property
    def access_bits(self) -> tuple[float, float]:
        """(read, write) bits of one access, as ``port_words`` rounds transfers to them."""
        return self.read_access_bits or self.read_bits, self.write_access_bits or self.write_bits

    @property
    def priced(self) -> bool:
        return self.read_pj > 0 or self.write_pj > 0

    def memory_level(self) -> MemoryLevel:
        return MemoryLevel(self.kind, self.size_bytes, "ddr3" if self.kind == "dram" else "",
                           read_pj_per_byte=self.read_pj / (self.read_bits / 8) if self.priced else None,
                           write_pj_per_byte=self.write_pj / (self.write_bits / 8) if self.priced else None)


def _level(v: Any, i: int) -> Level:
    if isinstance(v, Level):
        return v
    need(isinstance(v, Mapping), f"levels[{i}]", f"must be a mapping of a level's fields, got {type(v).__name__}")
    check_known(v, known_fields(Level), f"levels[{i}].")
    need("name" in v and "operands" in v, f"levels[{i}]", "needs name and operands")
    d = dict(v)
    if isinstance(d.get("operands"), list):
        d["operands"] = tuple(d["operands"])
    try:
        return Level(**d)
    except HwsimError as e:                 # name the field by its place in the file: levels[i].field
        msg, name = str(e), str(d.get("name"))
        for head in (f"{name}.", ""):
            field_, sep, rest = msg.partition(": ")
            if sep and field_.startswith(head) and "." not in field_[len(head):]:
                raise HwsimError(f"levels[{i}].{field_[len(head):]}: {rest}") from None
        raise


@dataclass(frozen=True)
class SpatialArch:
    """A MAC array under a described memory hierarchy (see the module); implements
    ``sim.machine.Machine``. Every GEMM-like op is mapped by a search over the design's
    unrollings and loop orders (``sim.spatial.search``), one op at a time."""

    family: ClassVar[str] = "spatial"
    uses_weight_values: ClassVar[bool] = False

    name: str = "spatial"
    rows: Annotated[int, Gt(0), Le(2 ** 16)] = 16      # the array's dimension D1
    cols: Annotated[int, Gt(0), Le(2 ** 16)] = 16      # D2
    # the sizes of D3, D4, ... for an array of more than two dimensions (ZigZag's 4-D
    # ascend_like: rows 16, cols 16, extra_dims [2, 2]); the MACs are the product of all
    extra_dims: tuple[int, ...] = field(default=(), metadata={"json_schema": {
        "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2 ** 16}, "maxItems": MAX_EXTRA}})
    clock_mhz: Clock = 200.0
    word_bits: Annotated[int, Gt(0), Le(64)] = 16     # operand width (float traces run at it)
    acc_bits: Annotated[int, Gt(0), Le(64)] = 32      # partial sums
    mac_pj: Annotated[float, Ge(0), Lt(1e6)] = 0.0    # per MAC at word_bits; 0: the energy table's price
    levels: tuple[Level, ...] = ()
    # spatial mappings: one side per array dimension (rows, columns, extra_dims), each a loop
    # dimension or several ("FY*C": filter rows, then as many input channels as the rest of
    # the side holds), each optionally capped ("OX8"); sim.spatial.array
    unrollings: tuple[tuple[str, ...], ...] = field(default=(("C", "K"), ("K", "C"), ("OX", "K"), ("K", "OX")),
                                                    metadata={"json_schema": _UNROLLINGS_SCHEMA})
    # per op: an op name (or a kind, conv or gemm) -> its own unrolling ("ROWDIMS,COLDIMS")
    op_unrollings: Mapping[str, str] = field(default_factory=dict)
    objective: Objective = "latency"         # what the mapping search minimises (ties: the other, then order)
    dataflow: Family = ""                 # search only this family (ws, os, is, rs); "": every mapping
    # how the chosen mapping's cycles are counted: "analytical" (cost.evaluate's roofline over
    # the ports, as ZigZag counts them) or "stepped" (sim.spatial.stepper: every transfer and
    # iteration in order, cycle-level; slower: seconds to tens of seconds for a network)
    timing: Timing = "analytical"
    # What a PE holds outside the declared levels (sim.spatial.cost: the access counts of each
    # operand's innermost level). pe_accumulator: the PE accumulates its partial sum in a
    # register of its own, so the innermost output level is written when the partial sum
    # leaves the PE and read when it comes back; false: every MAC reads the partial sum from
    # that level and writes it back, the first MAC of a fresh output writing only unless
    # psum_reads is "writes" (ZigZag 3.9.1's read-modify-write, zigzag/mapping/mapping.py).
    pe_accumulator: bool = True
    # operand_registers: "pe": the PE holds the input and weight words it multiplies in
    # registers of its own, so an operand's innermost level is read only when its word
    # changes (ZigZag 3.9.1 counts so too: with access_same_data_considered_as_no_access its
    # energy and timing take the innermost level's reads per period of the stationary loops
    # below it, zigzag/mapping/mapping.py calc_req_mem_bw_and_data_transfer_rate, whatever the
    # port's width); "port": a word stays at the innermost level's read port while unchanged
    # if that port delivers an instance's words for one cycle in one read, and is read every
    # MAC otherwise; "none": read every MAC
    operand_registers: OperandRegisters = "pe"
    # port_words: false: a level's accesses are priced by the bit (read_pj / read_bits per bit
    # moved); true: ZigZag 3.9.1's rule (zigzag/cost_model/cost_model.py, _calc_memory_access):
    # each tile moved into or out of one instance of a level is rounded up to whole accesses of
    # the level's read_access_bits / write_access_bits, priced read_pj x access / read_bits, so a
    # narrower operand pays a whole port word; the accesses then count those words' bytes
    port_words: bool = False
    # loading (timing: analytical): what crosses the level boundaries before the array starts
    # and after it stops. "tile": the array's first operands from the last level, and the last
    # output tile of the outermost on-chip level, whole; "overlapped": ZigZag 3.9.1's rule
    # (zigzag/cost_model/cost_model.py, calc_loading_single_port, calc_onloading_combined,
    # calc_offloading_combined): every boundary's first input tile and last output tile (the
    # slower of its two ports), except that a tile crossing once per layer streams in its
    # ports' idle cycles during the compute and adds only what they leave (at least the
    # innermost level's tile)
    # "roofline" (AccelForge 1.0's latency, sim.spatial.timeloop): the slowest component's own
    # time and nothing else: the array's temporal iterations (the MACs at their throughput) or
    # the busiest port of any level (every bit it reads and writes during the op, over its read
    # and write widths, per instance, one shared port taking both), whichever is longer; no
    # first-tile fill, no last-tile drain, no single-buffer refill stall. Analytical only: the
    # stepped engine counts fills and drains, so timing "stepped" with it is refused
    loading: Loading = "tile"
    # factors: which spatial factors the search may give a loop dimension. "padded": as much of
    # the array dimension as the loop has (at most its cap), the last tile of a loop that does
    # not divide evenly padded and run as a full one; "divisors" (AccelForge's mapper with a
    # fanout's min_usage 1, sim.spatial.timeloop): only factors that divide the loop's bound,
    # the largest such, so every spatial and temporal tile is whole (a 256-wide GEMM on a 14x12
    # array: 8x8 PEs)
    factors: Factors = "padded"
    # psum_reads: how often a level holding partial sums reads them back. "revisits": when an
    # output tile comes back for more of its reduction (not on its first visit); "writes":
    # ZigZag 3.9.1's count (zigzag/mapping/mapping.py, calc_req_mem_bw_and_data_transfer_rate:
    # rd_out_to_low copies wr_in_by_low where psum_flag): one read per write, the first
    # included, at every level with a reduction left above it, in time or across its
    # instances, and then at the partial-sum width
    psum_reads: PsumReads = "revisits"
    vector_lanes: NonNegativeInt = 0   # element ops per cycle for non-GEMM ops (0: one per column)
    static_power_w: NonNegative = 0.0
    dram_gib: NonNegative = 0.0
    energy_table: str = ""
    technology_nm: Nm = 65
    source: str = ""

    def __post_init__(self) -> None:
        check_fields(self)
        ex = self.extra_dims
        need(isinstance(ex, (list, tuple)) and len(ex) <= MAX_EXTRA and
             all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 2 ** 16 for v in ex), "extra_dims",
             f"must list at most {MAX_EXTRA} sizes (D3, D4, ...), each an integer from 1 to 65536, got {ex!r}")
        object.__setattr__(self, "extra_dims", tuple(ex))
        need(self.pes <= MAX_PES, "extra_dims", f"the array's {self.pes:,} MACs exceed {MAX_PES:,}")
        levels = self.levels
        need(isinstance(levels, (list, tuple)) and len(levels) >= 1, "levels",
             "must list the memory levels, innermost first, the off-chip memory last")
        lv = tuple(self._served(_level(v, i), i) for i, v in enumerate(levels))
        object.__setattr__(self, "levels", lv)
        names = [x.name for x in lv]
        need(len(set(names)) == len(names), "levels", f"level names must differ: {names}")
        top = lv[-1]
        need(set(top.operands) == set(OPERANDS) and not top.per_pe and top.served is None, f"levels[{len(lv) - 1}]",
             f"the last level ({top.name}) is the off-chip memory: it holds input, weight and output, for the array "
             "(every array dimension)")
        for i, x in enumerate(lv[:-1]):
            need(x.size_bytes > 0, f"levels[{i}].size_bytes", f"{x.name} needs a capacity in bytes")
            # a level holds at least one word of each of its operands (a partial sum is
            # acc_bits wide), in each half when double-buffered: else no mapping can use it
            word = sum(self.acc_bits if o == "output" else self.word_bits for o in x.operands)
            halves = 2 if x.double_buffered else 1
            need(x.size_bytes * 8 / halves >= word, f"levels[{i}].size_bytes",
                 f"{x.name}'s {x.size_bytes:g} bytes{' (two halves: double_buffered)' if halves == 2 else ''} cannot "
                 f"hold one word of each of its operands ({', '.join(x.operands)}: {word} bits at word_bits "
                 f"{self.word_bits}, acc_bits {self.acc_bits}); give it at least {halves * word / 8:g} bytes")
        need(not any(x.kind == "dram" for x in lv[:-1]), "levels", "only the last level may be kind dram")
        need(not top.bypass, f"levels[{len(lv) - 1}].bypass", f"the off-chip level ({top.name}) holds every "
             "operand; it cannot be bypassed")
        pairs = sum(len(x.bypass) for x in lv)
        need(pairs <= MAX_BYPASSES, "levels", f"{pairs} (level, operand) bypasses: the search tries every choice of "
             f"them (2^{pairs} searches); give at most {MAX_BYPASSES}")
        need(self.timing != "stepped" or not any(x.bypass for x in lv), "timing",
             "stepped steps one hierarchy; a level's bypass makes the search choose among several: leave bypass "
             "out or use timing analytical")
        self._check_nested(lv)
        n = len(self.array)
        un = self.unrollings
        need(isinstance(un, (list, tuple)) and len(un) >= 1, "unrollings", "must list at least one 'ROWDIM,COLDIM'")
        object.__setattr__(self, "unrollings", tuple(unrolling(u, f"unrollings[{i}]", n) for i, u in enumerate(un)))
        need(len(set(self.unrollings)) == len(self.unrollings), "unrollings", "lists an unrolling twice")
        if self.dataflow == "rs":
            from .search import row_stationary
            need(any(row_stationary(u) for u in self.unrollings), "dataflow",
                 "rs (row stationary) needs an unrolling of filter rows on the array's rows and output rows on its "
                 "columns ('FY,OY' or 'FY*C,OY') among unrollings; add one or choose ws, os or is")
        for k, v in self.op_unrollings.items():
            unrolling(v, f"op_unrollings.{k}", n)
        need(not (self.timing == "stepped" and self.loading == "roofline"), "loading",
             "roofline (no fill, no drain) is the analytical engine's count; timing stepped counts every fill and "
             "drain: use loading tile with it, or timing analytical")
        need(bool(self.name), "name", "must not be empty")

    def _served(self, x: Level, i: int) -> Level:
        """``x`` with its ``served`` checked against the array's dimensions; serving every one is
        the default (None), the one spelling of a level shared by the whole array."""
        if x.served is None:
            return x
        n = len(self.array)
        served = check_served(x.served, f"levels[{i}].served", n)
        return replace(x, served=None if len(served) == n else served)

    def _check_nested(self, lv: tuple[Level, ...]) -> None:
        """Each level serves every array dimension the level below it of each of its operands
        serves: tiles widen on the way out (a buffer shared by 16 PEs cannot feed a register
        shared by 32)."""
        n = len(self.array)
        below: dict[str, Level] = {}
        for x in lv:
            mine = served_axes(x, n)
            for o in x.operands:
                b = below.get(o)
                if b is not None and not served_axes(b, n) <= mine:
                    field_ = "per_pe" if x.served is None else "served"
                    need(False, f"{x.name}.{field_}",
                         f"a level must serve every array dimension the level below it serves ({o}: {b.name} serves "
                         f"{served_text(served_axes(b, n), n)}, {x.name} {served_text(mine, n)})")
                below[o] = x

    # ---- derived ----------------------------------------------------------------------
    @property
    def array(self) -> tuple[int, ...]:
        """The sizes of the array's dimensions D1 (rows), D2 (columns), D3, ..."""
        return (self.rows, self.cols) + tuple(self.extra_dims)

    @property
    def pes(self) -> int:
        return math.prod(self.array)

    @property
    def lanes(self) -> int:
        return self.vector_lanes or self.cols

    @property
    def top(self) -> Level:
        return self.levels[-1]

    def unrollings_for(self, name: str, kind: str) -> tuple[tuple[str, ...], ...]:
        """The unrollings the search may use for one op: its own (by name, then by kind),
        else the design's."""
        own = self.op_unrollings.get(name) or self.op_unrollings.get(kind)
        return (unrolling(own, f"op_unrollings.{name}", len(self.array)),) if own else self.unrollings

    def chain(self, operand: str) -> tuple[int, ...]:
        """Indices of the levels that hold ``operand``, innermost first."""
        return tuple(i for i, x in enumerate(self.levels) if operand in x.operands)

    def check_op_unrollings(self, workload: Workload) -> None:
        """Each ``op_unrollings`` entry names an op kind or an op of the workload: an entry
        naming neither (a misspelt layer, another model's layer) would otherwise be ignored
        silently. A design read from ZigZag's files keeps ZigZag's rule: its mapping may list
        layers of other models."""
        from workloads.trace_schema import KINDS

        if self.source.startswith(ZIGZAG_SOURCE):
            return
        names = {op.name for op in workload.ops}
        for k in self.op_unrollings:
            if k in KINDS or k in names:
                continue
            shown = ", ".join(op.name for op in workload.ops[:8]) + (", ..." if len(workload.ops) > 8 else "")
            raise HwsimError(f"op_unrollings.{k}: names no op of {workload.name} ({shown}) and no op kind "
                             f"({', '.join(KINDS)}) on design {self.name}; correct the name or remove the entry")

    @property
    def sparsity_exploited(self) -> frozenset[str]:
        """None: the cost model counts every MAC and access, zero or not."""
        return frozenset()

    # ---- the Machine interface ------------------------------------------------------
    def simulate(self, workload: Workload, *, objective: str = "", progress: Progress | None = None) -> SimResult:
        """Map every op by the search (``objective``: latency, energy or edp; default the
        design's) and return its cycles and accesses per level."""
        from .simulate import simulate
        return simulate(workload, replace(self, objective=typing.cast(Objective, objective or self.objective)),
                        progress=progress)      # the description checks the objective

    @property
    def memory_capacity_bytes(self) -> float:
        return self.dram_gib * 2 ** 30

    def memory_levels(self) -> Mapping[str, MemoryLevel]:
        return {x.name: x.memory_level() for x in self.levels}

    def op_prices(self) -> Mapping[str, float]:
        """The design's own price of a MAC (``mac.intB`` at its width), where it states one."""
        return {f"mac.int{self.word_bits}": self.mac_pj} if self.mac_pj else {}

    def peaks(self, precision: str | None = None) -> Peaks:
        top = self.top
        bw = top.read_bits / 8 if top.shared_port else (top.read_bits + top.write_bits) / 8
        return Peaks(f"int{self.word_bits}", self.pes * self.clock_mhz * 1e6, {"dram": bw * self.clock_mhz * 1e6})

    def occupancy(self, result: OpResult) -> float:
        return 1.0

    @property
    def precision_policy(self) -> str:
        return (f"GEMM operands as int{self.word_bits} (float traces quantised), int{self.acc_bits} partial sums; "
                f"every layer reads its operands from and writes its outputs to {self.top.name}")

    def describe(self) -> dict[str, Any]:
        d = describe_fields(self, pes=self.pes)
        d["levels"] = [describe_level(x) for x in self.levels]
        d["unrollings"] = [",".join(u) for u in self.unrollings]
        d["op_unrollings"] = dict(self.op_unrollings)
        return d


def describe_level(x: Level) -> dict[str, Any]:
    import dataclasses
    return {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}


def _eyeriss() -> SpatialArch:
    # Eyeriss (Chen, Krishna, Emer, Sze, JSSC 2017): 12x14 PEs, 16-bit fixed point, 200 MHz
    # in 65 nm; per-PE scratchpads of 12 ifmap, 224 filter and 24 psum 16-bit words; a
    # 108 KB global buffer for ifmaps and psums (filters go from DRAM to the PEs); a 64-bit
    # off-chip port. Energies per 16-bit access relative to a MAC, Chen/Emer/Sze ISCA 2016
    # Table IV: RF 1x, array (NoC) 2x, global buffer 6x, DRAM 200x. The MAC is anchored as
    # the eyeriss65 energy table anchors it: Horowitz's 16-bit multiply + 32-bit add at
    # 45 nm, 0.9 pJ, scaled to 65 nm by the energy model's node scaling.
    mac = EYERISS_MAC_PJ
    rf = dict(per_pe=True, read_bits=16, write_bits=16, read_pj=mac, write_pj=mac, kind="rf")
    return SpatialArch(
        name="eyeriss-like", rows=12, cols=14, clock_mhz=200.0, word_bits=16, acc_bits=16, mac_pj=mac,
        levels=(Level("ifmap_spad", ("input",), 12 * 2, **rf),   # type: ignore[arg-type]
                Level("filter_spad", ("weight",), 224 * 2, **rf),  # type: ignore[arg-type]
                Level("psum_spad", ("output",), 24 * 2, **rf),  # type: ignore[arg-type]
                Level("global_buffer", ("input", "output"), 108 * 1024, read_bits=64, write_bits=64,
                      read_pj=6 * mac * 4, write_pj=6 * mac * 4, double_buffered=False),
                Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, shared_port=True,
                      read_pj=200 * mac * 4, write_pj=200 * mac * 4, kind="dram")),
        unrollings=(("FY*C", "OY"), ("FY*K", "OY"), ("C", "K")), objective="latency", technology_nm=65,
        energy_table="eyeriss65",       # for what the levels do not price: the vector ops
        source="Eyeriss, Chen et al. JSSC 2017 (12x14 PEs, 108 KB global buffer, scratchpads 12/224/24 x 16 b, "
               "200 MHz, 65 nm); energies ISCA 2016 Table IV (RF 1x, buffer 6x, DRAM 200x a 16-bit MAC); "
               "row stationary as the unrollings FY*C or FY*K by OY (filter rows on PE rows, output rows on PE "
               "columns, and PE sets of other channels or filters side by side down the rows)")


# A 16-bit MAC at 65 nm: Horowitz (ISSCC 2014) 16-bit multiply + 32-bit add at 45 nm and 0.9 V,
# 0.9 pJ, scaled as the energy model scales nodes (E ~ L x Vdd^2) to 65 nm at the 1.0 V the
# eyeriss65 table states: 0.9 x (65/45) x (1.0/0.9)^2 = 1.605 pJ; the eyeriss65 table's anchor.
EYERISS_MAC_PJ = 0.9 * (65 / 45) * (1.0 / 0.9) ** 2

CONSTANTS: tuple[Constant, ...] = (
    Constant("arch.EYERISS_MAC_PJ", EYERISS_MAC_PJ, "published",
             "Horowitz's 45 nm 0.9 V 16-bit multiply + 32-bit add (ISSCC 2014) scaled to 65 nm and 1.0 V "
             "(E ~ L x Vdd^2; the 1.0 V is the eyeriss65 table's named assumption); the unit Eyeriss's Table IV "
             "relative energies multiply"),
)

def _zigzag_tpu_like() -> SpatialArch:
    # ZigZag 3.9.1's stock tpu_like.yaml (Mei et al., IEEE TC 2021), figure for figure (as
    # `--arch zigzag:examples/zigzag/tpu_like.yaml:examples/zigzag/tpu_like_mapping.yaml`
    # reads it): 32x32 MACs of 0.04 pJ; per PE a 128 B weight register file (0.095 pJ per
    # 8-bit access) and a 2 B output register (0.021 pJ per 16-bit access, two read and
    # two write ports); a 2 MB SRAM shared by inputs and outputs (2048-bit ports, 416.16 pJ
    # per read, 378.4 per write); DRAM on one 64-bit port (700 pJ per read, 750 per write).
    # Output channels on the rows, input channels on the columns (its mapping file).
    return SpatialArch(
        name="zigzag-tpu-like", rows=32, cols=32, clock_mhz=1000.0, word_bits=8, acc_bits=16, mac_pj=0.04,
        levels=(Level("rf_128B", ("weight",), 128, per_pe=True, read_bits=8, write_bits=8, read_pj=0.095,
                      write_pj=0.095, kind="rf"),
                Level("rf_2B", ("output",), 2, per_pe=True, read_bits=32, write_bits=32, read_pj=0.042,
                      write_pj=0.042, read_access_bits=16, write_access_bits=16, kind="rf"),
                Level("sram_2MB", ("input", "output"), 2 * 1024 * 1024, read_bits=2048, write_bits=2048,
                      read_pj=416.16, write_pj=378.4, read_access_bits=64, write_access_bits=64),
                Level("dram", ("input", "weight", "output"), 0, read_bits=64, write_bits=64, shared_port=True,
                      read_pj=700.0, write_pj=750.0, kind="dram")),
        unrollings=(("K", "C"),), objective="latency", technology_nm=28,
        # ZigZag's cost model's conventions, as sim.spatial.zigzag reads its designs
        pe_accumulator=False, operand_registers="pe", port_words=True, loading="overlapped", psum_reads="writes",
        source="ZigZag 3.9.1 inputs/hardware/tpu_like.yaml and inputs/mapping/tpu_like.yaml (Mei et al., IEEE TC "
               "2021); partial sums 16-bit as ZigZag's ONNX parser sets them; clock not stated there (1 GHz nominal)")


PRESETS: dict[str, SpatialArch] = {"eyeriss-like": _eyeriss(), "zigzag-tpu-like": _zigzag_tpu_like()}

ARCH = SpatialArch

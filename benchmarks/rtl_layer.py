"""ResNet-18's layer1.0.conv1 through the TPU-style tile (rtl/tpu_tile.py) on each backend:
outputs against numpy, fold starts, stalls and total cycles against sim/, and each backend's
simulation rate, and the tile's functional-coverage hits (rtl.tpu_tile.POINTS) over the folds
each backend ran. Writes benchmarks/data/rtl_layer.txt.

    python benchmarks/rtl_layer.py [ROWS COLS]      # default 16 16 (systolic-32 at that size)

Amaranth's simulator runs the layer's first folds only (rtl.layer.PYSIM_FOLDS; the whole
layer would take hours), partial sums compared; CXXRTL and Verilator run the whole layer.
A compiled backend's first run builds it with g++ (its time is listed, not in the rate).
"""

import os
import platform
import sys
from pathlib import Path

from rtl.layer import run_systolic_layer, small_arch
from rtl.tpu_tile import POINTS

MODEL, LAYER, SEED = "resnet18", "layer1.0.conv1", 0


def main() -> None:
    R, C = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (16, 16)
    arch = small_arch(R, C)
    out = [f"# python benchmarks/rtl_layer.py {R} {C}  ({platform.machine()}, {os.cpu_count()} CPUs, "
           f"Python {platform.python_version()}; the machine was shared with other jobs)",
           f"# {MODEL}:{LAYER} on {arch.name} (bandwidth {arch.dram_bw_bytes_per_cycle:g} B/cycle, prefetch depth "
           f"{arch.prefetch_depth}, activations in DRAM), seed {SEED}", "",
           "| backend | folds run | outputs compared | match | cycles RTL | cycles sim | stalls RTL | stalls sim | "
           "first mismatch | sim s | cycles/s | build s | note |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    cov = ["", "Coverage hits (rtl.tpu_tile.POINTS, over the folds each backend ran):", "",
           "| backend | " + " | ".join(POINTS) + " |", "|---|" + "---|" * len(POINTS)]
    for backend in ("amaranth", "cxxrtl", "verilator"):
        r = run_systolic_layer(MODEL, LAYER, arch, backend, SEED)
        print(r, flush=True)
        cov.append(f"| {backend} | " + " | ".join(f"{r.coverage.get(k, 0):,}" for k in POINTS) + " |")
        out.append(f"| {backend} | {r.folds_run} of {r.folds} | {r.outputs_compared:,} | {r.outputs_match} | "
                   f"{r.cycles_rtl:,} | {r.cycles_sim:,} | {r.stalls_rtl:,} | {r.stalls_sim:,} | "
                   f"{r.first_mismatch or '-'} | {r.seconds:.1f} | {r.cycles_per_s:,.0f} | {r.build_seconds:.0f} | "
                   f"{r.note or '-'} |")
    p = Path(__file__).parent / "data" / "rtl_layer.txt"
    p.write_text("\n".join(out + cov) + "\n")
    print(f"wrote {p}")


if __name__ == "__main__":
    main()

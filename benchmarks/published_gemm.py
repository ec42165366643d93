"""Held-out check of the GPU model against GEMM timings other people published for cards
nobody here measured (``benchmarks/data/published_gemm.csv``: card, preset, shape, type,
TFLOPS, source). Prints each row's model TFLOPS (kernel time, no launch gap), its error,
the model's power and whether the power limit bound it, then 8192^3 fp16 on every GPU
preset against its board power (the 60-100% of TDP check).

    python benchmarks/published_gemm.py > benchmarks/data/published_gemm_compare.txt
"""

import csv
from pathlib import Path

import hwsim
from sim.gpu import PRESETS

CSV = Path(__file__).parent / "data" / "published_gemm.csv"


def main() -> None:
    print(f"# python benchmarks/published_gemm.py (rows: {CSV.name})")
    print(f"{'card':32s} {'preset':6s} {'shape':18s} {'type':5s} {'published':>9s} {'model':>7s} {'error':>6s} "
          f"{'power':>6s} bound")
    with open(CSV) as f:
        for r in csv.DictReader(f):
            M, N, K = int(r["M"]), int(r["N"]), int(r["K"])
            ev = hwsim.simulate(f"gemm:{M},{N},{K}:{r['dtype']}", r["preset"])
            s = ev.summary()
            kernel_us = s["time_us"] - PRESETS[r["preset"]].kernel_overhead_us
            model = 2 * M * N * K / kernel_us / 1e6
            pub = float(r["tflops"])
            print(f"{r['card'][:32]:32s} {r['preset']:6s} {f'{M}x{N}x{K}':18s} {r['dtype']:5s} {pub:9.1f} "
                  f"{model:7.1f} {model / pub - 1:+6.0%} {s['power_w']:5.0f}W {ev.rows[0]['bound']}")
    print()
    print("8192^3 fp16 on each GPU preset: power against the board limit (tdp_w)")
    for name, arch in PRESETS.items():
        ev = hwsim.simulate("gemm:8192,8192,8192:fp16", name)
        s = ev.summary()
        print(f"  {name:10s} {s['time_us']:7.0f} us {2 * 8192 ** 3 / s['time_us'] / 1e6:5.0f} TFLOPS "
              f"{s['power_w']:5.0f} W of {arch.tdp_w:g} W ({s['power_w'] / arch.tdp_w:4.0%}), {ev.rows[0]['bound']}; "
              f"energy: {arch.energy_source}")


if __name__ == "__main__":
    main()

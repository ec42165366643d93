"""Compare the tensor-core model with measurements from gpu_matmul_timing.py.

    python benchmarks/gpu_compare.py benchmarks/data/NVIDIA_H100_80GB_HBM3_matmul.csv --arch h100

Prints per-shape measured vs predicted time and the median and worst relative error.
"""

import argparse
import statistics

import pandas as pd

from sim.gpu import PRESETS, gemm_time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--arch", required=True, choices=sorted(PRESETS))
    a = ap.parse_args()
    arch = PRESETS[a.arch]
    df = pd.read_csv(a.csv)
    pred = []
    for r in df.itertuples():
        t = gemm_time(int(r.M), int(r.N), int(r.K), arch, r.dtype)
        pred.append(t.cycles / arch.clock_mhz + arch.kernel_overhead_us)
    df["predicted_us"] = pred
    df["rel_error"] = (df.predicted_us - df.time_us) / df.time_us
    print(df[["dtype", "kind", "M", "N", "K", "time_us", "predicted_us", "rel_error"]].round(3).to_string(index=False))
    errs = [abs(e) for e in df.rel_error]
    print(f"median |error| {statistics.median(errs):.1%}, worst {max(errs):.1%}")


if __name__ == "__main__":
    main()

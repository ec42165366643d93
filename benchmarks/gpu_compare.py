"""Compare the tensor-core model with measurements from gpu_matmul_timing.py and
gpu_model_timing.py (run on a real GPU; their CSVs are in benchmarks/data/).

    python benchmarks/gpu_compare.py benchmarks/data/NVIDIA_H200_matmul.csv --arch h200 \\
        [--models benchmarks/data/NVIDIA_H200_models.csv]

Prints per-shape measured (CUDA-graph replay, so no host launch latency) vs predicted time,
the median and worst relative error, the GEMMs whose energy NVML read against the model's
energy, and, with --models, whole networks (CUDA-graph time and NVML energy per forward) vs
``hwsim simulate``. Nothing here is fitted: the model's constants are what sim/gpu says
(the h100/h200 per-event energies were fitted once, to two of the GEMM energy rows, by
analysis/gpu_calibration.py; those rows are marked "calibration", the rest are held out).
"""

import argparse
import dataclasses
import statistics

import pandas as pd

from analysis.gpu_calibration import CALIBRATION_SHAPES
from sim.gpu import PRESETS, gemm_time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--arch", required=True, choices=sorted(PRESETS))
    ap.add_argument("--models", default=None, help="the CSV of gpu_model_timing.py")
    a = ap.parse_args()
    arch = PRESETS[a.arch]
    df = pd.read_csv(a.csv)
    pred, splits = [], []
    for r in df.itertuples():
        dtype = {"float16": "fp16", "bfloat16": "bf16"}.get(r.dtype, r.dtype)    # torch's names
        t = gemm_time(int(r.M), int(r.N), int(r.K), arch, dtype)
        pred.append(t.cycles / arch.clock_mhz + arch.kernel_overhead_us)
        splits.append("stream-k" if t.stream_k else f"split-k {t.split_k}" if t.split_k > 1 else "tiles")
    df["predicted_us"] = pred
    df["kernel"] = splits
    df["rel_error"] = (df.predicted_us - df.time_us) / df.time_us
    print(df[["dtype", "kind", "M", "N", "K", "time_us", "predicted_us", "kernel", "rel_error"]].round(3)
          .to_string(index=False))
    errs = [abs(e) for e in df.rel_error]
    print(f"median |error| {statistics.median(errs):.1%}, worst {max(errs):.1%} over {len(errs)} GEMMs")

    import hwsim
    energy = df[df.energy_mj_per_gemm.notna()] if "energy_mj_per_gemm" in df else df.iloc[:0]
    if len(energy):
        print("\nGEMM energy: NVML (whole card, idle included) vs the model (energy_pj, static included)")
        for r in energy.itertuples():
            dtype = {"float16": "fp16", "bfloat16": "bf16"}.get(r.dtype, r.dtype)
            s = hwsim.simulate(f"gemm:{r.M},{r.N},{r.K}:{dtype}", a.arch).summary()
            model_mj = s["energy_pj"] / 1e9
            role = "calibration" if (r.M, r.N, r.K, dtype) in CALIBRATION_SHAPES else "held out"
            print(f"  {r.M}x{r.N}x{r.K} {dtype}: measured {r.energy_mj_per_gemm:8.2f} mJ ({r.avg_power_w:5.0f} W), "
                  f"model {model_mj:8.2f} mJ ({model_mj / 1e3 / (s['time_us'] * 1e-6):5.0f} W): "
                  f"{model_mj / r.energy_mj_per_gemm:.2f}x ({role})")
    if a.models:
        m = pd.read_csv(a.models)
        print("\nWhole networks, fp16, batch B: CUDA-graph time and NVML energy per forward vs hwsim simulate")
        for r in m[m["mode"] == "cuda graph"].itertuples():
            # the measurement ran PyTorch eager modules (captured in a CUDA graph): no epilogue
            # fusion, and NCHW activations (cuDNN transposes around each tensor-core conv)
            s = hwsim.simulate(r.model, dataclasses.replace(arch, fusion="none", layout="nchw"),
                               batch=int(r.batch)).summary()
            mj = s["energy_pj"] / 1e9
            print(f"  {r.model:<10} B={r.batch:<3} time: measured {r.time_us:8.1f} us, model {s['time_us']:8.1f} us "
                  f"({(s['time_us'] - r.time_us) / r.time_us:+.0%}); energy: measured {r.energy_mj:7.1f} mJ, "
                  f"model {mj:7.1f} mJ ({mj / r.energy_mj:.2f}x)")


if __name__ == "__main__":
    main()

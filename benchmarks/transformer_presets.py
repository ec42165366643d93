"""Every transformer of the zoo, inference and a training step, on every preset: that each
runs, how long it takes to simulate, and what comes out (time and energy per step).

    python benchmarks/transformer_presets.py [--out benchmarks/data/transformer_presets.csv]

Short sequences keep it to minutes on two cores (the big models are built on the meta
device); the output is recorded in benchmarks/data/.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from analysis.report import evaluate
from sim.registry import presets
from workloads.spec import Lowering, resolve

MODELS = (("gpt2", 32), ("gpt2-medium", 16), ("gpt2-large", 16), ("gpt2-xl", 16), ("gpt3-175b", 8),
          ("llama3-8b", 16), ("llama-tiny", 32), ("bert-base", 32), ("bert-large", 16), ("vit-b16", None))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/data/transformer_presets.csv")
    ap.add_argument("--models", nargs="*", default=None)
    a = ap.parse_args()
    rows = []
    for name, seq in MODELS:
        if a.models and name not in a.models:
            continue
        for train in (False, True):
            t = time.perf_counter()
            wl = resolve(name, seq_len=seq, how=Lowering(train=train, precision="bf16-mixed" if train else "fp32"))
            lower_s = time.perf_counter() - t
            for preset, arch in presets().items():
                t = time.perf_counter()
                try:
                    ev = evaluate(wl, arch)
                    s = ev.summary()
                    res = {"time_us": s["time_us"], "energy_uj": s["energy_pj"] / 1e6, "utilization": s["utilization"],
                           "status": "ok"}
                except Exception as e:          # a refusal is a result too: record it
                    res = {"status": f"{type(e).__name__}: {e}"[:160]}
                rows.append({"model": name, "seq": seq, "train": train, "ops": len(wl.ops), "gmacs": wl.macs / 1e9,
                             "preset": preset, "lower_s": round(lower_s, 2),
                             "simulate_s": round(time.perf_counter() - t, 2), **res})
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(a.out, index=False)
    print(df.groupby("preset").simulate_s.describe().round(2).to_string())
    print(f"{(df.status == 'ok').sum()} of {len(df)} runs ok; wrote {a.out}")


if __name__ == "__main__":
    main()

"""Ground truth for whole networks on the tensor-core model: time the zoo's ResNet-50 and
BERT-base forward passes on a real GPU.

Run on a machine with an NVIDIA GPU and a CUDA build of torch, from the repository root
(the zoo is plain torch.nn; nothing else of hwsim is imported):

    PYTHONPATH=. python benchmarks/gpu_model_timing.py [--out DIR]   # DIR/<card>_models.csv

PyTorch in fp16 (``module.half()``), inference (``eval``, ``no_grad``), cuDNN autotuning
on, one kernel per op (no fusion: what the unfused hwsim GPU model describes), timed two
ways: eager (the host launches every kernel, so a small batch measures the host as much as
the GPU) and as a CUDA graph replay (the kernels alone, back to back). CUDA events around
20 forwards after 5 warm-ups; the median is kept. For graph replays NVML's total-energy
counter is read over a ~3 s loop (mJ per forward, average W). ``--device cpu`` dry-runs the
script (float32, 2 repetitions, eager only) where no GPU is at hand.
"""

import argparse
import csv
import statistics
import sys
from pathlib import Path

import torch

from workloads.zoo import ZOO

MODELS = (("resnet50", (1, 32)), ("bert-base", (1, 32)))


def build(name: str, batch: int, device: str, dtype):
    module, x = ZOO[name].load()(batch=1)
    module.eval()
    with torch.enable_grad():
        module(x)                      # materialises and keeps weights built lazily (transformers)
    for m in module.modules():         # ... then the zoo's hooks that would drop them again
        m._forward_pre_hooks.clear()
        m._forward_hooks.clear()
    module.requires_grad_(False)
    x = x.repeat(batch, *([1] * (x.dim() - 1)))
    module = module.to(device=device, dtype=dtype)
    x = x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)
    return module, x


def time_ms(module, x, device: str, reps: int, warm: int) -> float:
    with torch.no_grad():
        for _ in range(warm):
            module(x)
        if device == "cpu":
            import time
            out = []
            for _ in range(reps):
                t0 = time.perf_counter()
                module(x)
                out.append((time.perf_counter() - t0) * 1e3)
            return statistics.median(out)
        torch.cuda.synchronize()
        out = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            module(x)
            e.record()
            torch.cuda.synchronize()
            out.append(s.elapsed_time(e))
    return statistics.median(out)


def graph_ms(module, x, reps: int, warm: int):
    """Median ms of a CUDA graph replay of one forward, and (mJ, W) per replay from NVML
    over a ~3 s loop (None where NVML cannot be read)."""
    from gpu_matmul_timing import capture, replay_energy, replay_ms

    with torch.no_grad():
        g = capture(lambda: module(x), warm)
    return replay_ms(g, reps), replay_energy(g)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "data"))
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: this script only runs where a GPU is at hand (--device cpu dry-runs it)")
    dtype, reps, warm = (torch.float16, 20, 5) if args.device == "cuda" else (torch.float32, 2, 1)
    card = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    torch.backends.cudnn.benchmark = True
    rows = []
    for name, batches in MODELS:
        for batch in batches:
            module, x = build(name, batch, args.device, dtype)
            ms = time_ms(module, x, args.device, reps, warm)
            base = {"card": card, "model": name, "batch": batch, "dtype": str(dtype).split(".")[-1]}
            rows.append({**base, "mode": "eager", "time_us": ms * 1e3, "energy_mj": "", "avg_power_w": "",
                         "torch": torch.__version__})
            print(rows[-1], flush=True)
            if args.device == "cuda":
                ms, energy = graph_ms(module, x, reps, warm)
                rows.append({**base, "mode": "cuda graph", "time_us": ms * 1e3,
                             "energy_mj": energy[0] if energy else "", "avg_power_w": energy[1] if energy else "",
                             "torch": torch.__version__})
                print(rows[-1], flush=True)
            del module, x
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{card.replace(' ', '_')}_models.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

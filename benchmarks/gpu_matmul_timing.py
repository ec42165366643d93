"""Ground truth for the tensor-core model: time torch.matmul on a real GPU.

Run on a machine with an NVIDIA GPU and a CUDA build of torch (not part of hwsim's own
install):

    python benchmarks/gpu_matmul_timing.py            # writes benchmarks/data/<card>_matmul.csv

Shapes: square 256..16384, skinny (M in 1..64 x 8192 x 8192), batch-1 LSTM-like
(M = 1, N = 4H, K = H); fp16 and bf16; CUDA events around 20 repetitions after 5
warm-ups; the median is kept.
"""

import csv
import statistics
import sys
from pathlib import Path

import torch


def shapes():
    for s in (256, 512, 1024, 2048, 4096, 8192, 16384):
        yield "square", s, s, s
    for m in (1, 8, 16, 32, 64):
        yield "skinny", m, 8192, 8192
    for h in (512, 1024, 2048, 4096):
        yield "lstm_step", 1, 4 * h, h


def time_ms(a, b, reps=20, warm=5):
    for _ in range(warm):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        torch.matmul(a, b)
        e.record()
        torch.cuda.synchronize()
        out.append(s.elapsed_time(e))
    return statistics.median(out)


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this script only runs where a GPU is at hand")
    card = torch.cuda.get_device_name(0)
    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        for kind, M, N, K in shapes():
            a = torch.randn(M, K, device="cuda", dtype=dtype)
            b = torch.randn(K, N, device="cuda", dtype=dtype)
            ms = time_ms(a, b)
            rows.append({"card": card, "dtype": str(dtype).split(".")[-1], "kind": kind, "M": M, "N": N, "K": K,
                         "time_us": ms * 1e3, "tflops": 2 * M * N * K / (ms * 1e-3) / 1e12})
            print(rows[-1])
    out = Path(__file__).parent / "data" / f"{card.replace(' ', '_')}_matmul.csv"
    out.parent.mkdir(exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

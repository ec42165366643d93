"""Ground truth for the tensor-core model: time (and, where NVML reads it, the energy of)
torch.matmul on a real GPU.

Run on a machine with an NVIDIA GPU and a CUDA build of torch (not part of hwsim's own
install):

    python benchmarks/gpu_matmul_timing.py [--out DIR]    # writes DIR/<card>_matmul.csv

Shapes: square 256..16384; skinny (M in 1..64 x 8192 x 8192) and thin-K shapes where
libraries pick split-K (M = 1..256, N = 1024..4096, K = 4096..16384); batch-1 LSTM-like
(M = 1, N = 4H, K = H). fp16 and bf16. ``time_us``: the GPU's time per GEMM, from CUDA events
around the replay of a CUDA graph of 20 back-to-back GEMMs (median of 10 replays after
warm-ups), so that the host's launch latency is not counted; ``time_us_eager``: CUDA events
around one eager call (median of 20), which on a small GEMM measures mostly the host. For a few shapes the GEMM also runs in a loop for about 3 s while NVML's
total-energy counter is read before and after (``energy_mj_per_gemm``, ``avg_power_w``);
the card's idle power and power limit go in a second file (``<card>_power.csv``).
"""

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

ENERGY_SHAPES = {(8192, 8192, 8192), (4096, 4096, 4096), (16384, 16384, 16384), (1, 8192, 8192), (64, 8192, 8192)}


def shapes():
    for s in (256, 512, 1024, 2048, 4096, 8192, 16384):
        yield "square", s, s, s
    for m in (1, 8, 16, 32, 64):
        yield "skinny", m, 8192, 8192
    for m in (1, 16, 64, 256):
        for n, k in ((1024, 4096), (1024, 16384), (4096, 16384)):
            yield "thin_k", m, n, k
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


def capture(fn, warm: int = 3):
    """A CUDA graph of ``fn()``, warmed up on a side stream first (as capture requires)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warm):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    for _ in range(warm):
        g.replay()
    torch.cuda.synchronize()
    return g


def replay_ms(g, reps: int) -> float:
    """Median ms of one replay of graph ``g``, from CUDA events around each of ``reps``."""
    out = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        g.replay()
        e.record()
        torch.cuda.synchronize()
        out.append(s.elapsed_time(e))
    return statistics.median(out)


def replay_energy(g, seconds: float = 3.0):
    """(mJ per replay, average W) from NVML's total-energy counter over a loop of replays;
    None where NVML cannot be read."""
    lib, h = nvml()
    if lib is None:
        return None
    torch.cuda.synchronize()
    e0, t0, n = lib.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            g.replay()
        n += 10
        torch.cuda.synchronize()
    e1, t1 = lib.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()
    return (e1 - e0) / n, (e1 - e0) / 1e3 / (t1 - t0)


def graph_time_ms(a, b, per_graph=20, reps=10):
    """Median ms per GEMM over replays of a CUDA graph of ``per_graph`` matmuls."""
    def many():
        for _ in range(per_graph):
            torch.matmul(a, b)
    g = capture(many)
    ms = replay_ms(g, reps) / per_graph
    del g
    return ms


def nvml():
    try:
        import pynvml
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception as e:  # no NVML: times only
        print(f"NVML unavailable ({e}); no energy readings")
        return None, None


def energy_per_gemm(a, b, lib, h, seconds=3.0):
    """mJ per GEMM and average W from NVML's total-energy counter over a ~3 s loop."""
    torch.cuda.synchronize()
    e0, t0, n = lib.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            torch.matmul(a, b)
        n += 10
        torch.cuda.synchronize()
    e1, t1 = lib.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()
    return (e1 - e0) / n, (e1 - e0) / 1e3 / (t1 - t0), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "data"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this script only runs where a GPU is at hand")
    card = torch.cuda.get_device_name(0)
    lib, h = nvml()
    power = {}
    if lib is not None:
        time.sleep(2.0)
        power = {"card": card, "idle_power_w": lib.nvmlDeviceGetPowerUsage(h) / 1e3,
                 "power_limit_w": lib.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3,
                 "sm_clock_max_mhz": lib.nvmlDeviceGetMaxClockInfo(h, lib.NVML_CLOCK_SM),
                 "mem_clock_max_mhz": lib.nvmlDeviceGetMaxClockInfo(h, lib.NVML_CLOCK_MEM),
                 "torch": torch.__version__, "cuda": torch.version.cuda}
        print(power)
    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        for kind, M, N, K in shapes():
            a = torch.randn(M, K, device="cuda", dtype=dtype)
            b = torch.randn(K, N, device="cuda", dtype=dtype)
            eager = time_ms(a, b)
            ms = graph_time_ms(a, b, per_graph=20 if M * N * K < 2 ** 36 else 4)
            row = {"card": card, "dtype": str(dtype).split(".")[-1], "kind": kind, "M": M, "N": N, "K": K,
                   "time_us": ms * 1e3, "time_us_eager": eager * 1e3, "tflops": 2 * M * N * K / (ms * 1e-3) / 1e12,
                   "energy_mj_per_gemm": "", "avg_power_w": "", "gemms_in_energy_loop": ""}
            if lib is not None and dtype == torch.float16 and (M, N, K) in ENERGY_SHAPES:
                mj, w, n = energy_per_gemm(a, b, lib, h)
                row.update(energy_mj_per_gemm=mj, avg_power_w=w, gemms_in_energy_loop=n)
            rows.append(row)
            print(row, flush=True)
            del a, b
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = card.replace(" ", "_")
    with open(out_dir / f"{stem}_matmul.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if power:
        with open(out_dir / f"{stem}_power.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(power))
            w.writeheader()
            w.writerow(power)
    print(f"wrote {out_dir / (stem + '_matmul.csv')}")


if __name__ == "__main__":
    main()

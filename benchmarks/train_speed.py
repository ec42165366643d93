"""``hwsim train``'s speed: the fast paths (per-layer costs cached on disk, memoised
collectives and ZeRO-3 schedules, ``analysis.train_cache``) against the reference path of the
same tree (``HWSIM_TRAIN_REFERENCE=1``: no cost cache, the first ZeRO-3 schedule, nothing
remembered beyond what ``hwsim train`` remembered before the fast paths), run side by side in
one session, each pair's output compared byte for byte.

* cold-after-first: a fresh ``hwsim train gpt:...`` process for several shapes, after one run
  of each shape (the first lowers the one-layer trace with torch, then caches the costs);
  the reference reads the same traces from the trace cache (as before the cost cache);
* the README's search, ``hwsim train gpt3-175b --nodes 128 --global-batch 1536 --search``;
* a search of about 10,000 configurations. ``--search`` enumerates (tp, pp, dp, ZeRO stage,
  microbatch, recomputation, schedule) for one system and global batch, at most some 2,000
  for GPT-3 175B, so the 10,000 are six such searches (node counts and global batches below)
  through the Python API (``analysis.train.search_summaries``, 2 worker processes), one
  process for all six, after one run of them (the costs cached).

Times are the median of ``--repeat`` runs, fast and reference alternating; "first run" is
the untimed run before them (it lowers and simulates only what the caches lack: after an
earlier run of the benchmark, nothing). The machine is
shared (2 cores); the load average at the start and end is recorded. Run:
``python benchmarks/train_speed.py [--repeat 3] [--skip-10k]``; writes
``benchmarks/data/train_speed.txt``. It uses the cache folder ``hwsim`` uses
(``$HWSIM_CACHE_DIR`` or the user cache directory).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HWSIM = str(Path(sys.executable).with_name("hwsim"))
OUT = ROOT / "benchmarks" / "data" / "train_speed.txt"

SINGLE = ("--gpus", "32", "--global-batch", "512")
SHAPES = (("gpt:24,2304,24", SINGLE), ("gpt:12,768,12", SINGLE), ("gpt:48,1600,25", SINGLE),
          ("gpt:32,4096,32", ("--gpus", "64", "--tp", "8", "--global-batch", "512")))
README_SEARCH = ("gpt3-175b", "--nodes", "128", "--global-batch", "1536", "--search")
SEARCHES_10K = ((64, 1536), (128, 1536), (256, 1536), (128, 3072), (256, 3072), (32, 768))   # (nodes, global batch)

SEARCH_10K_CODE = f"""
import hashlib, json, sys, time
t0 = time.perf_counter()
from analysis import train as T
from analysis.train_cli import build_job
rows = []
for nodes, gb in {SEARCHES_10K!r}:
    job, n = build_job(model="gpt3-175b", nodes=nodes, global_batch=gb, search=True)
    rows += T.search_summaries(job, T.Model(job, True), n, workers=2)
dt = time.perf_counter() - t0
print(len(rows), dt, hashlib.sha256(json.dumps(rows, default=float).encode()).hexdigest())
"""


def _env(reference: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HWSIM_TRAIN_REFERENCE", None)
    if reference:
        env["HWSIM_TRAIN_REFERENCE"] = "1"
    return env


def _run(argv: list[str], reference: bool) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=_env(reference), cwd=ROOT)
    dt = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr}")
    return dt, r.stdout


def _pair(argv: list[str], repeat: int) -> tuple[float, float, bool]:
    """(fast median s, reference median s, outputs identical), fast and reference alternating."""
    fast, ref, outs = [], [], set()
    for _ in range(repeat):
        for reference, times in ((False, fast), (True, ref)):
            dt, out = _run(argv, reference)
            times.append(dt)
            outs.add(out)
    return statistics.median(fast), statistics.median(ref), len(outs) == 1


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-10k", action="store_true", help="leave out the 10,000-configuration search")
    ap.add_argument("-o", "--out", default=str(OUT))
    a = ap.parse_args()
    lines = [f"# benchmarks/train_speed.py, {time.strftime('%Y-%m-%d %H:%M')}; python {platform.python_version()}, "
             f"{os.cpu_count()} CPUs, load average at start {_load()}",
             "# times: median of %d fresh processes each, fast and reference (HWSIM_TRAIN_REFERENCE=1) alternating;"
             % a.repeat, "# same: the two printed the same bytes", ""]

    def emit(line: str) -> None:
        print(line, flush=True)
        lines.append(line)
    emit(f"{'case':58} {'fast s':>8} {'ref s':>8} {'speedup':>8} same")
    for shape, args in SHAPES:
        argv = [HWSIM, "train", shape, *args]
        first, _ = _run(argv, False)           # the first: lowers (if the trace cache lacks it) and caches the costs
        _run(argv, True)
        f, r, same = _pair(argv, a.repeat)
        emit(f"{'train ' + shape + ' ' + ' '.join(args):58} {f:8.2f} {r:8.2f} {r / f:7.2f}x {same}"
             f"   (first run {first:.1f} s)")
    argv = [HWSIM, "train", *README_SEARCH]
    _run(argv, False)
    f, r, same = _pair(argv, a.repeat)
    emit(f"{'train ' + ' '.join(README_SEARCH):58} {f:8.2f} {r:8.2f} {r / f:7.2f}x {same}")
    if not a.skip_10k:
        argv = [sys.executable, "-c", SEARCH_10K_CODE]
        _run(argv, False)
        fast, ref, outs = [], [], set()
        for _ in range(max(1, a.repeat - 1)):
            for reference, times in ((False, fast), (True, ref)):
                _, out = _run(argv, reference)
                n, dt, digest = out.split()
                times.append(float(dt))
                outs.add((n, digest))
        n = next(iter(outs))[0]
        f, r = statistics.median(fast), statistics.median(ref)
        emit(f"{'search of ' + n + ' configurations, 2 workers (Python API)':58} {f:8.2f} {r:8.2f} {r / f:7.2f}x "
             f"{len(outs) == 1}")
        emit(f"  the six searches: gpt3-175b on dgx-a100, (nodes, global batch) = "
             f"{', '.join(map(str, SEARCHES_10K))}; times in process, imports included")
    emit("")
    emit(f"# load average at end {_load()}")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Whole-command speed and peak memory, measured in one run (not part of the tests).

    python benchmarks/speed.py [--parts commands,memory,sweep,scalesim] [--out benchmarks/data/speed.txt]

* ``commands``: for every preset, ``hwsim simulate`` of ResNet-50, the nine EIE benchmark
  layers, the LSTM LM and a GPT-2 training step, cold (``--no-cache``: lowered afresh) and
  cached (the trace read back from the cache), against two baselines timed in the same
  run: ``hwsim simulate gemm:1,1,1`` on the same preset and ``hwsim lower resnet50
  --no-cache``. Targets (issue 16): cached ResNet-50 <= 2x the gemm baseline; cold
  ResNet-50 <= 1.5x the lowering.
* ``memory``: peak resident memory of every zoo model, lowered afresh (with and without
  its weights kept) and simulated from the cache on every preset. Target: < 1 GB.
* ``sweep``: ``hwsim sweep`` of 1,000 ResNet-18 designs (a seeded sample of a 1,200-point
  grid of rows, columns, dataflow and weight bits on ``systolic-32``), 2 workers, as a
  whole command. Target: under 2 minutes.
* ``scalesim``: ``hwsim scalesim`` against SCALE-Sim 3.0.0 (its own venv, see
  benchmarks/scalesim_speed.py) on the first 8 ResNet-18 layers, 32x32 and 128x128,
  ws/os/is, CALC mode; reports compared number by number. Target: >= 200x.

Each command runs as a subprocess; its wall time and peak RSS (``os.wait4``) are taken
from that process alone. A fresh cache folder is used, so nothing of the user's is read
or written.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

HWSIM = [sys.executable, "-m", "analysis.cli"]
WORKLOADS = [("resnet50", []), ("eie-benchmarks", []), ("lstm_lm", []), ("gpt2", ["--train"])]


_SCRATCH: list[tempfile.TemporaryDirectory] = []


def scratch(prefix: str) -> Path:
    """A temporary folder removed when the benchmark exits (its caches and reports take GBs)."""
    _SCRATCH.append(tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True))
    return Path(_SCRATCH[-1].name)


class Refused(Exception):
    """hwsim refused the combination (exit 2 with a one-line reason)."""


def run(cmd: list[str], env: dict, cwd: str | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one command; a refusal (exit 2) raises Refused,
    any other failure stops the benchmark."""
    with tempfile.TemporaryFile() as errf:      # a file, not a pipe: a chatty tool cannot block on it
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errf)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code == 2:
        raise Refused(err.strip().splitlines()[-1] if err.strip() else "exit 2")
    if code != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024


def presets(env: dict) -> list[str]:
    out = subprocess.run(HWSIM + ["archs"], env=env, capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip() and not line[0].isspace()]   # not wrapped lines


def zoo(env: dict) -> list[tuple[str, bool]]:
    out = subprocess.run(HWSIM + ["models", "--format", "csv"], env=env, capture_output=True, text=True,
                         check=True).stdout
    return [(r.split(",")[0], r.split(",")[1] == "torch") for r in out.splitlines()[1:]]


def commands(env: dict, say) -> None:
    say("## Whole commands (wall s, peak MB); cold = --no-cache (lowered, and a GPU's SM main loops stepped, "
        "afresh); cached = the trace and SM main loops read from the cache")
    t_lower, m_lower = run(HWSIM + ["lower", "resnet50", "--no-cache"], env)
    say(f"hwsim lower resnet50 --no-cache: {t_lower:.2f} s, {m_lower:.0f} MB")
    for name, extra in WORKLOADS:                       # warm the cache (weights kept and not)
        run(HWSIM + ["simulate", name, *extra, "--arch", "a100"], env)
        run(HWSIM + ["simulate", name, *extra, "--arch", "eie-64"], env)
    head = f"{'preset':<13} {'gemm:1,1,1':>10} " + " ".join(f"{n + ' ' + ' '.join(e):>28}" for n, e in WORKLOADS)
    say(head + f" {'r50 cached/gemm':>16} {'r50 cold/lower':>15}")
    worst_cached = worst_cold = 0.0
    refusals: list[str] = []
    for arch in presets(env):
        base, _ = run(HWSIM + ["simulate", "gemm:1,1,1", "--arch", arch], env)
        cells = []
        r50 = {}
        for name, extra in WORKLOADS:
            try:
                cold, mc = run(HWSIM + ["simulate", name, *extra, "--arch", arch, "--no-cache"], env)
                # --no-cache wrote nothing: a first run fills the cache (the trace, a GPU's stepped
                # SM main loops), the timed one reads it all
                run(HWSIM + ["simulate", name, *extra, "--arch", arch], env)
                hit, mh = run(HWSIM + ["simulate", name, *extra, "--arch", arch], env)
            except Refused as e:
                cells.append("refused")
                refusals.append(f"{name} on {arch}: {e}")
                continue
            cells.append(f"{cold:6.2f}/{hit:5.2f}s {max(mc, mh):5.0f}MB")
            if name == "resnet50":
                r50 = {"cold": cold, "hit": hit}
        a, b = r50["hit"] / base, r50["cold"] / t_lower
        worst_cached, worst_cold = max(worst_cached, a), max(worst_cold, b)
        say(f"{arch:<13} {base:9.2f}s " + " ".join(f"{c:>28}" for c in cells) + f" {a:15.2f}x {b:14.2f}x")
    say("(cells: cold/cached seconds, peak MB of the two)")
    for r in refusals:
        say(f"refused: {r}")
    say(f"worst cached ResNet-50 / gemm:1,1,1: {worst_cached:.2f}x (target <= 2); "
        f"worst cold ResNet-50 / lower: {worst_cold:.2f}x (target <= 1.5)")


def memory(env: dict, say) -> None:
    say("## Peak memory (MB): lowering afresh, and simulating from the cache on every preset")
    archs = presets(env)
    worst = (0.0, "")
    for name, is_torch in zoo(env):
        row = []
        if is_torch:
            for extra in ([], ["--keep-weights"]):
                _, m = run(HWSIM + ["lower", name, "--no-cache", *extra], env)
                row.append(f"lower{' (weights)' if extra else ''} {m:.0f}")
                worst = max(worst, (m, f"lower {name} {' '.join(extra)}"))
        peaks = []
        refused = []
        for arch in archs:
            try:
                _, m = run(HWSIM + ["simulate", name, "--arch", arch, "--format", "csv"], env)
            except Refused:
                refused.append(arch)
                continue
            peaks.append((m, arch))
            worst = max(worst, (m, f"simulate {name} --arch {arch}"))
        m, arch = max(peaks)
        say(f"{name:<15} " + ", ".join(row) + f"{', ' if row else ''}simulate max {m:.0f} ({arch})"
            + (f"; refused on {', '.join(refused)}" if refused else ""))
    say(f"largest peak: {worst[0]:.0f} MB ({worst[1]}); target < 1024 MB")


SWEEP = """name: resnet18-designs
models: [resnet18]
base: systolic-32
grid:
  rows: [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
  cols: [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
  dataflow: [ws, os, is]
  trace.weight_bits: [2, 4, 8, 16]
random: {samples: 1000, seed: 0}
"""


def sweep(env: dict, say) -> None:
    """A 1,000-point what-if study as a user runs it (its trace lowered first, 2 workers)."""
    say("## hwsim sweep: 1,000 ResNet-18 designs (rows x cols x dataflow x weight bits, a sample of 1,200)")
    d = scratch("hwsim-speed-sweep-")
    (d / "study.yaml").write_text(SWEEP)
    t, m = run(HWSIM + ["sweep", str(d / "study.yaml"), "-o", str(d / "out")], env)
    points = len((d / "out" / "results.csv").read_text().splitlines()) - 1
    say(f"{points} points in {t:.1f} s, peak {m:.0f} MB per process (target: under 120 s)")


def scalesim(env: dict, say, python: str) -> None:
    from scalesim_speed import CFG, numbers

    say("## hwsim scalesim vs SCALE-Sim 3.0.0, first 8 ResNet-18 layers, CALC")
    if not Path(python).exists():
        say(f"skipped: no SCALE-Sim python at {python} (see benchmarks/scalesim_speed.py)")
        return
    d = scratch("hwsim-speed-")
    subprocess.run(HWSIM + ["topology", "resnet18", "-o", str(d / "full.csv")], env=env, check=True,
                   capture_output=True)
    lines = (d / "full.csv").read_text().splitlines()
    (d / "t.csv").write_text("\n".join(lines[:9]) + "\n")
    (d / "l.csv").write_text("Layer name, a,\n")
    worst = None
    for size in (32, 128):
        for df in ("ws", "os", "is"):
            tag = f"{size}{df}"
            (d / f"{tag}.cfg").write_text(CFG.format(rows=size, cols=size, df=df, mode="CALC").replace(
                "run_name = bench", f"run_name = {tag}"))
            t_ss, _ = run([python, "-m", "scalesim.scale", "-c", str(d / f"{tag}.cfg"), "-t", str(d / "t.csv"),
                           "-l", str(d / "l.csv"), "-p", str(d / "ss"), "-s", "N"], env, cwd=str(d))
            t_hw = statistics.median(run(HWSIM + ["scalesim", "-c", str(d / f"{tag}.cfg"), "-t", str(d / "t.csv"),
                                                  "-o", str(d / "hw" / tag)], env)[0] for _ in range(5))
            same = all(numbers(d / "ss" / tag / f) == numbers(d / "hw" / tag / f)
                       for f in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"))
            ratio = t_ss / t_hw
            worst = ratio if worst is None else min(worst, ratio)
            say(f"{size}x{size} {df}: SCALE-Sim {t_ss:7.1f} s, hwsim {t_hw:5.2f} s (median of 5), {ratio:5.0f}x, "
                f"identical reports: {same}")
    say(f"worst ratio: {worst:.0f}x (target >= 200x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="commands,memory,sweep,scalesim")
    ap.add_argument("--out", default=None, help="Also write the output to this file.")
    ap.add_argument("--scalesim-python", default=os.environ.get("SCALESIM_PYTHON", "/tmp/scalesim-venv/bin/python"))
    a = ap.parse_args()
    env = dict(os.environ, HWSIM_CACHE_DIR=str(scratch("hwsim-speed-cache-")), OMP_NUM_THREADS="1",
               MPLBACKEND="Agg")
    # bytecode as an installed package has it after its first run (an environment with
    # PYTHONDONTWRITEBYTECODE set would otherwise recompile hwsim in every timed command)
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(root / p) for p in ("workloads", "sim", "analysis"))],
                   env={k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}, check=True,
                   stdout=subprocess.DEVNULL)
    lines: list[str] = []

    def say(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    say(f"# hwsim speed, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs")
    parts = a.parts.split(",")
    if "commands" in parts:
        commands(env, say)
    if "memory" in parts:
        memory(env, say)
    if "sweep" in parts:
        sweep(env, say)
    if "scalesim" in parts:
        scalesim(env, say, a.scalesim_python)
    if a.out:
        Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

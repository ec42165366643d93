"""hwsim vs SCALE-Sim 3.0.0 on the same config and ResNet-18 topology, as whole commands.

SCALE-Sim lives in its own venv (never a dependency of hwsim):

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 numpy==2.3.5
    python benchmarks/scalesim_speed.py --layers 4 [--dataflow ws] [--mode CALC]

Both tools run as subprocesses (`python -m scalesim.scale ...` and `hwsim scalesim ...`);
every number of their three reports is compared, then the wall times and their ratio
are printed.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CFG = """[general]
run_name = bench

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:    64
FilterSramSzkB:   64
OfmapSramSzkB:    64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {df}
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def numbers(path: Path):
    rows = list(csv.reader(open(path)))[1:]
    return [[float(x) for x in r[1:] if x.strip()] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4, help="first N conv layers of ResNet-18")
    ap.add_argument("--dataflow", default="ws")
    ap.add_argument("--mode", default="CALC")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--scalesim-python", default=os.environ.get("SCALESIM_PYTHON", "/tmp/scalesim-venv/bin/python"))
    a = ap.parse_args()
    hwsim = str(Path(sys.executable).with_name("hwsim"))
    keep = tempfile.TemporaryDirectory(prefix="hwsim-bench-", ignore_cleanup_errors=True)   # removed at exit
    d = Path(keep.name)
    (d / "c.cfg").write_text(CFG.format(rows=a.rows, cols=a.cols, df=a.dataflow, mode=a.mode))
    subprocess.run([hwsim, "topology", "resnet18", "-o", str(d / "full.csv")], check=True, capture_output=True)
    lines = (d / "full.csv").read_text().splitlines()
    (d / "t.csv").write_text("\n".join(lines[:a.layers + 1]) + "\n")
    (d / "l.csv").write_text("Layer name, a,\n")   # SCALE-Sim insists on a layout file
    t0 = time.perf_counter()
    subprocess.run([a.scalesim_python, "-m", "scalesim.scale", "-c", str(d / "c.cfg"), "-t", str(d / "t.csv"),
                    "-l", str(d / "l.csv"), "-p", str(d / "ss"), "-s", "N"], check=True, capture_output=True, cwd=d)
    t_ss = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([hwsim, "scalesim", "-c", str(d / "c.cfg"), "-t", str(d / "t.csv"), "-o", str(d / "hw")],
                   check=True, capture_output=True)
    t_hw = time.perf_counter() - t0
    same = all(numbers(d / "ss" / "bench" / f) == numbers(d / "hw" / f)
               for f in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"))
    print(f"ResNet-18, first {a.layers} conv layers, {a.rows}x{a.cols} {a.dataflow} {a.mode}")
    print(f"SCALE-Sim 3.0.0: {t_ss:8.2f} s")
    print(f"hwsim scalesim : {t_hw:8.2f} s")
    print(f"identical reports: {same}; speed ratio: {t_ss / t_hw:.0f}x")


if __name__ == "__main__":
    main()

"""A campaign of bad inputs against every command, as a careful user would try them.

Each case runs the installed ``hwsim`` in a scratch folder (its own files only) under a
time limit, and is judged by what a user sees:

* ``refused``: exit 2 and exactly one line on stderr, ``hwsim: error: ...`` (or the usage
  line of a bad option), saying something (not a bare errno or "Unable to allocate");
* ``ok``: a case that must succeed did, and its check passed (a file kept, HTML escaped);
* failures: ``silent`` (exit 0 where a refusal was due), ``traceback`` (a Python traceback,
  or an exit status other than 0 and 2), ``hang`` (past the time limit), ``runaway``
  (peak memory over the limit), ``message`` (exit 2 but not one useful line), ``failed``
  (an ``ok`` case that did not succeed or whose check failed).

Run: ``python benchmarks/bad_inputs.py [--jobs 2] [-k SUBSTRING ...]``; the output of a full run
is recorded in ``benchmarks/data/bad_inputs.txt``. Not part of the test run (it takes
minutes); ``tests/test_robustness.py`` holds one case per class in process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

HWSIM = str(Path(sys.executable).with_name("hwsim"))
TIME_LIMIT_S = 60
MEMORY_LIMIT_MB = 2048          # a refusal or a small answer never needs more


@dataclass(frozen=True)
class Case:
    cls: str                                   # the issue's class: silent, traceback, unbounded, message, files
    name: str
    argv: tuple[str, ...]
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    expect: str = "refuse"                     # refuse | ok
    check: Callable[[Path, str], str | None] | None = None   # for ok: a problem, or None
    mentions: str = ""                         # a refusal must name this (a field, a file)
    rc: int = 2                                # the exit status of the refusal (130: an interrupt)
    nodes: Mapping[str, str] = field(default_factory=dict)   # name -> "fifo", or the target of a symlink


def run(case: Case, base: Path, env: dict) -> tuple[str, str, float, int]:
    d = Path(tempfile.mkdtemp(prefix="bad-"))
    try:
        for name, data in case.files.items():
            p = d / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                p.write_bytes(data)
            else:
                p.write_text(data.replace("@BASE@", str(base)))
        for name, what in case.nodes.items():
            if what == "fifo":
                os.mkfifo(d / name)
            else:
                (d / name).symlink_to(what)
        argv = list(case.argv)
        if argv[0] in ("simulate", "report") and "--arch" not in argv:
            argv += ["--arch", "systolic-32"]          # the one option these commands require
        t0 = time.perf_counter()
        proc = subprocess.Popen([HWSIM, *argv], cwd=d, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=TIME_LIMIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            return "hang", f"still running after {TIME_LIMIT_S} s", TIME_LIMIT_S, 0
        wall = time.perf_counter() - t0
        rss = _peak_mb(proc)
        so, se = out.decode(errors="replace"), err.decode(errors="replace")
        return (*judge(case, proc.returncode, so, se, d, rss), wall, rss)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _peak_mb(proc) -> int:
    ru = getattr(proc, "_rusage", None)
    return int(ru.ru_maxrss / 1024) if ru else 0


class _Popen(subprocess.Popen):
    """Popen that keeps the child's own resource usage (peak memory) from wait4."""

    def _try_wait(self, wait_flags):
        try:
            pid, sts, ru = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid == self.pid:
            self._rusage = ru
        return pid, sts


subprocess.Popen = _Popen  # type: ignore[misc]

_USELESS = re.compile(r"Unable to allocate|\[Errno \d+\] [^:]*$|error: *$|Traceback")


def judge(case: Case, rc: int, out: str, err: str, d: Path, rss: int) -> tuple[str, str]:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    if "Traceback (most recent call last)" in err or rc not in (0, case.rc):
        return "traceback", f"exit {rc}: {(lines[-1] if lines else '')[:160]}"
    if rss > MEMORY_LIMIT_MB:
        return "runaway", f"peak {rss} MB (limit {MEMORY_LIMIT_MB} MB); exit {rc}: {first[:120]}"
    if case.expect == "ok":
        if rc != 0:
            return "failed", f"exit {rc}: {first[:160]}"
        problem = case.check(d, out) if case.check else None
        return ("failed", problem) if problem else ("ok", (out.strip().splitlines() or [""])[-1][:160])
    if rc == 0:
        return "silent", f"exit 0: {(out.strip().splitlines() or [''])[-1][:150]}"
    if len(lines) != 1 or _USELESS.search(first) or not first.startswith("hwsim"):
        return "message", " | ".join(lines)[:200]
    if case.mentions and case.mentions.lower() not in first.lower():
        return "message", f"does not name {case.mentions!r}: {first[:160]}"
    return "refused", first[:200]


# ---- the cases ---------------------------------------------------------------------------
def _yaml(d: dict) -> str:
    import yaml
    return yaml.safe_dump(d, sort_keys=False)


def cases(good: dict) -> list[Case]:
    """``good``: a valid trace document (LeNet-300, lowered in setup)."""
    C: list[Case] = []

    def trace(name: str, mutate: Callable[[dict], object], cls: str = "silent", mentions: str = "",
              arch: str = "systolic-32", raw: str | None = None) -> None:
        doc = json.loads(json.dumps(good))
        mutate(doc)
        text = raw if raw is not None else json.dumps(doc)
        C.append(Case(cls, f"trace: {name}", ("simulate", "t.json", "--arch", arch), {"t.json": text},
                      mentions=mentions))

    op0 = lambda d: d["ops"][0]  # noqa: E731
    w0 = lambda d: next(o for o in d["ops"][0]["operands"] if o["role"] == "weight")  # noqa: E731

    # -- traces
    C.append(Case("traceback", "trace: not UTF-8", ("simulate", "t.json"), {"t.json": b"\xff\xfe{\x00"}, mentions="UTF-8"))
    C.append(Case("traceback", "trace: nested 100000 deep", ("simulate", "t.json"), {"t.json": "[" * 100000 + "]" * 100000}))
    C.append(Case("traceback", "trace: empty file", ("simulate", "t.json"), {"t.json": ""}))
    C.append(Case("traceback", "trace: a JSON list", ("simulate", "t.json"), {"t.json": "[1, 2]"}))
    trace("format missing", lambda d: d.pop("format"), mentions="format")
    trace("version 4", lambda d: d.update(version=4), mentions="version")
    trace("version true", lambda d: d.update(version=True), mentions="version")
    trace("ops is a dict", lambda d: d.update(ops={}), mentions="ops")
    trace("no ops", lambda d: d.update(ops=[]), mentions="ops")
    trace("op without name", lambda d: op0(d).pop("name"), mentions="name")
    trace("unknown kind", lambda d: op0(d).update(kind="matmul3"), mentions="kind")
    trace("dims as strings", lambda d: op0(d)["dims"].update(M="64"), mentions="dims.M")
    trace("dims negative", lambda d: op0(d)["dims"].update(K=-3), mentions="dims")
    trace("dims float", lambda d: op0(d)["dims"].update(N=2.5), mentions="dims.N")
    trace("dims bool", lambda d: op0(d)["dims"].update(N=True), mentions="dims.N")
    trace("copies 0", lambda d: op0(d).update(copies=0), mentions="copies")
    trace("steps -1", lambda d: op0(d).update(steps=-1), mentions="steps")
    trace("producer itself", lambda d: op0(d).update(producers=[op0(d)["name"]]), mentions="producers")
    trace("producer unknown", lambda d: op0(d).update(producers=["nope"]), mentions="producers")
    trace("cycle", lambda d: op0(d).update(producers=[d["ops"][1]["name"]]), mentions="producers")
    trace("duplicate op names", lambda d: d["ops"][1].update(name=op0(d)["name"]), mentions="name")
    trace("weight shape disagrees with dims", lambda d: w0(d).update(shape=[7, 7]), mentions="shape")
    trace("input shape disagrees with dims", lambda d: op0(d)["operands"][0].update(shape=[1, 3]), mentions="shape")
    trace("gemm M 1e12 with a 784-element input", lambda d: op0(d)["dims"].update(M=10 ** 12), mentions="shape")
    trace("density 1.5", lambda d: w0(d).update(density=1.5), mentions="density")
    trace("density NaN", lambda d: None, mentions="density",
          raw=json.dumps(good).replace('"density": 1.0', '"density": NaN', 1))
    trace("density Infinity", lambda d: None, mentions="density",
          raw=json.dumps(good).replace('"density": 1.0', '"density": Infinity', 1))
    trace("density 1e400", lambda d: None, mentions="density",
          raw=json.dumps(good).replace('"density": 1.0', '"density": 1e400', 1))
    trace("bits 0", lambda d: w0(d).update(bits=0), mentions="bits")
    trace("bits 65", lambda d: w0(d).update(bits=65), mentions="bits")
    trace("bits 12 float", lambda d: w0(d).update(bits=12), mentions="bits")
    trace("bits as string", lambda d: w0(d).update(bits="8"), mentions="bits")
    trace("dtype unknown", lambda d: w0(d).update(dtype="bfloat17"), mentions="dtype")
    trace("role unknown", lambda d: w0(d).update(role="bias2"), mentions="role")
    trace("duplicate roles", lambda d: op0(d)["operands"].append(dict(w0(d))), mentions="operands")
    trace("tensors outside the folder", lambda d: d.update(tensors="../x.npz"), mentions="tensors")
    trace("tensors file missing", lambda d: d.update(tensors="gone.npz"), mentions="tensors")
    trace("values names a missing tensor", lambda d: w0(d).update(values="w0"), mentions="values")
    trace("batch 0", lambda d: d.update(batch=0), mentions="batch")
    trace("batch as string", lambda d: d.update(batch="1"), mentions="batch")
    trace("name empty", lambda d: d.update(name=""), mentions="name")
    trace("input_shape strings", lambda d: d.update(input_shape=["a"]), mentions="input_shape")
    trace("meta a list", lambda d: d.update(meta=[1]), mentions="meta")
    trace("phase unknown", lambda d: op0(d).update(phase="inference"), mentions="phase")
    trace("vector elements 1e15 on a small operand",
          lambda d: next(o for o in d["ops"] if o["kind"] != "gemm")["dims"].update(elements=10 ** 15),
          mentions="elements")
    trace("shape with a negative size", lambda d: w0(d).update(shape=[-300, 784]), mentions="shape")
    trace("structure 4:2", lambda d: w0(d).update(structure="4:2"), mentions="structure")
    trace("structure a number", lambda d: w0(d).update(structure=124), mentions="structure")
    trace("structure 2:4 with density 0.9", lambda d: w0(d).update(structure="2:4", density=0.9),
          mentions="structure")
    trace("elements 1e15 on eie", lambda d: next(o for o in d["ops"] if o["kind"] != "gemm")["dims"].update(
        elements=10 ** 15), arch="eie-64", mentions="elements")
    C.append(Case("silent", "trace: NaN weights on EIE", ("simulate", "t.json", "--arch", "eie-64"),
                  {"t.json": "@NAN_TRACE@"}, mentions="finite"))
    C.append(Case("traceback", "trace: npz is not a zip", ("simulate", "t.json"),
                  {"t.json": json.dumps({**good, "tensors": "t.npz"}), "t.npz": b"PK\x03\x04garbage"}, mentions="t.npz"))

    # -- architecture YAML
    def arch(name: str, text: str | bytes, cls: str = "silent", mentions: str = "", model: str = "lenet300") -> None:
        C.append(Case(cls, f"arch: {name}", ("simulate", model, "--arch", "a.yaml"), {"a.yaml": text}, mentions=mentions))

    arch("not UTF-8", b"base: systolic-32\nrows: \xff\n", "traceback", "UTF-8")
    arch("billion laughs", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
         "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nbase: systolic-32\nrows: *h\n",
         "unbounded", "alias")
    arch("nested 10000 deep", "base: systolic-32\nrows: " + "[" * 10000 + "]" * 10000 + "\n", "traceback", "a.yaml")
    arch("a list", "- base\n- rows\n", "message", "a.yaml")
    arch("empty", "", "message", "a.yaml")
    arch("base missing", "rows: 8\n", "message", "base")
    arch("base unknown", "base: tpu-v9\n", "message", "base")
    arch("unknown field", "base: systolic-32\nrowz: 8\n", "message", "rowz")
    arch("python tag", "base: systolic-32\nrows: !!python/object/apply:os.system ['true']\n", "traceback", "a.yaml")
    arch("syntax error", "base: systolic-32\n  rows: [8\n", "traceback", "a.yaml")
    for field_, value, cls in [("rows", "0", "silent"), ("rows", "-1", "silent"), ("rows", "2.5", "silent"),
                               ("rows", "true", "silent"), ("rows", '"32"', "silent"), ("cols", "1e3", "silent"),
                               ("ifmap_on_chip", '"no"', "silent"), ("ifmap_on_chip", "1", "silent"),
                               ("technology_nm", "0", "silent"), ("technology_nm", "-5", "silent"),
                               ("technology_nm", ".inf", "silent"), ("technology_nm", ".nan", "silent"),
                               ("clock_mhz", ".inf", "traceback"), ("clock_mhz", "0", "silent"),
                               ("dram_bw_bytes_per_cycle", ".inf", "traceback"),
                               ("dram_bw_bytes_per_cycle", "0", "silent"), ("dram_bw_bytes_per_cycle", "-8", "silent"),
                               ("dataflow", "xs", "silent"), ("acc_bits", "0", "silent"),
                               ("ifmap_sram_kib", "0", "silent"), ("ifmap_sram_kib", "1e300", "silent"),
                               ("prefetch_depth", "0", "silent"), ("name", "[1, 2]", "silent"),
                               ("static_power_w", "-1", "silent"), ("pe_reg_bytes", "{psum: 4}", "silent"),
                               ("pe_reg_bytes", "{weight: 0}", "silent"), ("pe_reg_bytes", "[1, 2]", "silent"),
                               ("energy_table", "missing.yaml", "traceback"), ("energy_table", "5", "silent"),
                               ("energy_table", "horowitz99", "silent")]:
        arch(f"systolic {field_}: {value}", f"base: systolic-32\n{field_}: {value}\n", cls, field_)
    # SRAMs that hold one array edge (2 x 10^6 bytes, double-buffered): a smaller one is an impossible design
    C.append(Case("unbounded", "arch: rows 1e6 x cols 1e6 (answers in seconds)", ("simulate", "lenet300", "--arch",
                  "a.yaml"), {"a.yaml": "base: systolic-32\nrows: 1000000\ncols: 1000000\nifmap_sram_kib: 2048\n"
                                        "filter_sram_kib: 2048\n"}, expect="ok"))
    for field_, value in [("num_pes", "0"), ("num_pes", "1000000"), ("num_pes", "2.5"), ("queue_depth", "0"),
                          ("index_bits", "64"), ("clock_mhz", ".nan"), ("weight_frac_bits", "-3"),
                          ("spmat_sram_bytes", "0")]:
        if value == "1000000":
            C.append(Case("unbounded", f"arch: eie {field_}: {value} (answers in seconds)", ("simulate", "lenet300",
                          "--arch", "a.yaml"), {"a.yaml": f"base: eie-64\n{field_}: {value}\n"}, expect="ok"))
        else:
            arch(f"eie {field_}: {value}", f"base: eie-64\n{field_}: {value}\n", "silent", field_)
    for field_, value in [("sms", "0"), ("clock_mhz", "-1"), ("dram_gbs", ".inf"), ("dram_gbs", "0"),
                          ("smem_per_sm_kib", "-1"), ("technology_nm", "0"), ("tc_fma_per_clk", "{fp16: -1}"),
                          ("pipeline_stages", "-1"), ("k_step_bytes", "48"), ("kernel_overhead_us", ".nan")]:
        arch(f"gpu {field_}: {value}", f"base: a100\n{field_}: {value}\n", "silent", field_)

    # -- command-line options and ad-hoc specs
    def cli(cls: str, name: str, *argv: str, mentions: str = "", files: Mapping[str, str | bytes] | None = None,
            expect: str = "refuse", check=None) -> None:
        C.append(Case(cls, f"cli: {name}", tuple(argv), files or {}, expect=expect, check=check, mentions=mentions))

    cli("message", "--batch x", "simulate", "lenet300", "--batch", "x", mentions="batch")
    cli("silent", "--batch 0", "simulate", "lenet300", "--batch", "0", mentions="batch")
    cli("silent", "--batch -1", "lower", "lenet300", "--batch", "-1", mentions="batch")
    cli("silent", "--seq-len 0", "simulate", "lstm_lm", "--seq-len", "0", mentions="seq")
    cli("traceback", "--seed -1", "simulate", "lenet300", "--seed", "-1", mentions="seed")
    cli("traceback", "--seed 2**70", "simulate", "lenet300", "--seed", str(2 ** 70), mentions="seed")
    for v in ("0", "-5", "nan", "inf", "1e-300"):
        cli("silent", f"--node {v}", "simulate", "lenet300", "--node", v, mentions="node")
    cli("message", "--arch unknown", "simulate", "lenet300", "--arch", "tpu-v9", mentions="tpu-v9")
    cli("message", "--arch missing yaml", "simulate", "lenet300", "--arch", "nope.yaml", mentions="nope.yaml")
    cli("message", "model unknown", "simulate", "resnet19", mentions="resnet19")
    cli("message", "--energy-table missing", "simulate", "lenet300", "--energy-table", "nope.yaml", mentions="nope.yaml")
    cli("silent", "spec gemm:1,1,1:fp7", "simulate", "gemm:1,1,1:fp7", mentions="fp7")
    for spec in ("gemm:0,1,1", "gemm:a,b,c", "gemm:1,1", "gemm:-1,2,2", "conv:1,3,8,8,4,3,3,0,1",
                 "conv:1,3,8,8,4,9,9,1,0", "conv:1,3,8,8,4,3,3,1,1,7", "gemm:1e3,1,1", "gemm:1,1,1,1,1"):
        cli("silent", f"spec {spec}", "simulate", spec, mentions=spec.split(":")[0])
    cli("unbounded", "conv pad 100000", "simulate", "conv:1,64,56,56,64,3,3,1,100000", "--arch", "systolic-32")
    cli("unbounded", "gemm M 1e12 on tpu-v1", "simulate", "gemm:1000000000000,256,256", "--arch", "tpu-v1")
    for a in ("tpu-v1", "systolic-32", "eie-64", "a100", "systolic-16"):
        cli("unbounded", f"gemm 1e5^3 on {a}", "simulate", "gemm:100000,100000,100000", "--arch", a,
            expect="ok")
    cli("unbounded", "gemm M 1e12 on a100", "simulate", "gemm:1000000000000,4096,4096", "--arch", "a100",
        mentions="--max-time")
    cli("unbounded", "gemm 1e9 x 1e9 x 1 on eie-64", "simulate", "gemm:1,1000000000,1000000000", "--arch", "eie-64")
    cli("message", "--format bogus", "simulate", "lenet300", "--format", "xml", mentions="format")
    cli("message", "--columns unknown", "simulate", "lenet300", "--columns", "cycles,nope", mentions="nope")
    cli("message", "-o parent is a file", "simulate", "lenet300", "-o", "f/out.csv", files={"f": "x"}, mentions="f")
    cli("message", "report -o is a file", "report", "lenet300", "-o", "f", files={"f": "x"}, mentions="f")
    cli("message", "-o unknown suffix", "simulate", "lenet300", "-o", "out.xlsx", mentions="out.xlsx")
    cli("message", "verify --trials 1e9", "verify", "dot", "--trials", "1e9", mentions="trials")
    cli("unbounded", "verify --trials 10^9", "verify", "dot", "--trials", "1000000000", mentions="trials")
    cli("silent", "verify --trials 0", "verify", "dot", "--trials", "0", mentions="trials")
    cli("unbounded", "verify --size 1000 1000", "verify", "systolic", "--size", "1000", "1000", mentions="1000 x 1000")
    cli("silent", "verify --size 0 4", "verify", "systolic", "--size", "0", "4", mentions="size")
    cli("unbounded", "rtl export --size 1000 1000", "rtl", "export", "systolic", "-o", "x.v", "--size", "1000", "1000",
        mentions="1000 x 1000")
    cli("message", "eie-sweep on a systolic arch", "eie-sweep", "--param", "pes", "--arch", "tpu-v1", "-o", "o",
        mentions="tpu-v1")
    cli("silent", "train --global-batch 0", "train", "gpt2", "--global-batch", "0", mentions="global-batch")
    cli("silent", "train --tp 3 on 8 GPUs", "train", "gpt2", "--global-batch", "8", "--tp", "3", mentions="tp")
    cli("silent", "train --gpus -1", "train", "gpt2", "--global-batch", "8", "--gpus", "-1", mentions="gpus")
    cli("silent", "train --sequence-parallel at tp 1", "train", "gpt2", "--global-batch", "8", "--sequence-parallel",
        mentions="--tp 2")
    cli("silent", "simulate --compress with --train", "simulate", "lenet300", "--compress",
        str(Path(__file__).resolve().parent.parent / "examples" / "plan.yaml"), "--train", "--arch", "eie-64",
        mentions="--compress")
    cli("silent", "compress an ONNX model with --train", "compress",
        str(Path(__file__).resolve().parent.parent / "examples" / "model" / "small_cnn.onnx"), "--train", "digits",
        mentions="ONNX")
    cli("silent", "train --jobs 0", "train", "gpt2", "--global-batch", "8", "--search", "--jobs", "0", mentions="jobs")
    cli("message", "train --schedule bogus", "train", "gpt2", "--global-batch", "8", "--schedule", "zigzag",
        mentions="schedule")
    cli("silent", "compress --prune 1.5", "compress", "lenet300", "--prune", "1.5", mentions="prune")
    cli("silent", "compress --prune -0.1", "compress", "lenet300", "--prune", "-0.1", mentions="prune")
    cli("silent", "compress --prune nan", "compress", "lenet300", "--prune", "nan", mentions="prune")
    cli("silent", "compress --share-bits 0", "compress", "lenet300", "--share-bits", "0", mentions="share-bits")
    cli("silent", "compress --share-bits 40", "compress", "lenet300", "--share-bits", "40", mentions="share-bits")
    cli("silent", "compress --quant 64", "compress", "lenet300", "--quant", "64", mentions="quant")
    cli("traceback", "compress --index-bits 64", "compress", "lenet300", "--index-bits", "64", mentions="index-bits")
    cli("silent", "compress --act-bits 0", "compress", "lenet300", "--act-bits", "0", mentions="act-bits")
    cli("message", "sweep --workers 0", "sweep", "s.yaml", "-o", "o", "--workers", "0",
        files={"s.yaml": "name: s\nmodels: [mlp0]\nbase: systolic-32\ngrid: {rows: [8]}\n"}, mentions="workers")
    cli("message", "scalesim missing files", "scalesim", "-c", "no.cfg", "-t", "no.csv", "-o", "o", mentions="no.cfg")
    cli("message", "memory --batch 0", "memory", "gpt2", "--batch", "0", mentions="batch")
    cli("silent", "lower --seq-len -3", "lower", "lstm_lm", "--seq-len", "-3", mentions="seq")

    # -- energy tables
    table = {"name": "t", "technology_nm": 45, "source": "test", "ops": {"add.int8": 0.03, "mul.int8": 0.2},
             "sram": [{"capacity_kib": 8, "pj_per_64b": 10}], "dram_pj_per_bit": {"ddr3": 20.3}}

    def etable(name: str, mutate: Callable[[dict], object] | None = None, text: str | bytes | None = None,
               cls: str = "silent", mentions: str = "") -> None:
        doc = json.loads(json.dumps(table))
        if mutate:
            mutate(doc)
        C.append(Case(cls, f"energy table: {name}", ("simulate", "lenet300", "--energy-table", "e.yaml"),
                      {"e.yaml": text if text is not None else _yaml(doc)}, mentions=mentions))

    for v in (0, -5, float("inf"), float("nan"), "45nm"):
        etable(f"technology_nm {v}", lambda d, v=v: d.update(technology_nm=v), mentions="technology_nm")
    etable("ops energy negative", lambda d: d["ops"].update({"mul.int8": -1}), mentions="mul.int8")
    etable("ops energy NaN", lambda d: d["ops"].update({"mul.int8": float("nan")}), mentions="mul.int8")
    etable("ops energy a string", lambda d: d["ops"].update({"mul.int8": "cheap"}), mentions="mul.int8")
    etable("ops not a mapping", lambda d: d.update(ops=[1, 2]), mentions="ops")
    etable("sram capacity 0", lambda d: d["sram"][0].update(capacity_kib=0), mentions="sram")
    etable("sram a mapping", lambda d: d.update(sram={"a": 1}), mentions="sram")
    etable("dram energy a string", lambda d: d["dram_pj_per_bit"].update(ddr3="x"), mentions="dram_pj_per_bit.ddr3")
    etable("name missing", lambda d: d.pop("name"), mentions="name")
    etable("unknown key", lambda d: d.update(colour="red"), mentions="colour")
    etable("not UTF-8", text=b"name: \xff\n", cls="traceback", mentions="UTF-8")
    etable("a list", text="- 1\n", cls="message", mentions="e.yaml")

    # -- studies
    study = {"name": "s", "models": ["mlp0"], "base": "systolic-32", "grid": {"rows": [8, 16]}}

    def st(name: str, mutate: Callable[[dict], object] | None = None, text: str | bytes | None = None,
           cls: str = "silent", mentions: str = "", extra: tuple[str, ...] = ()) -> None:
        doc = json.loads(json.dumps(study))
        if mutate:
            mutate(doc)
        C.append(Case(cls, f"study: {name}", ("sweep", "s.yaml", "-o", "o", *extra),
                      {"s.yaml": text if text is not None else _yaml(doc)}, mentions=mentions))

    st("not a mapping", text="- 1\n", cls="message", mentions="s.yaml")
    st("not UTF-8", text=b"name: \xff\n", cls="traceback", mentions="UTF-8")
    st("models empty", lambda d: d.update(models=[]), mentions="models")
    st("models a string", lambda d: d.update(models="mlp0"), mentions="models")
    st("model unknown", lambda d: d.update(models=["resnet19"]), mentions="resnet19")
    st("grid value not a list", lambda d: d["grid"].update(rows=8), mentions="grid.rows")
    st("grid field unknown", lambda d: d["grid"].update(rowz=[8]), mentions="rowz")
    st("grid rows 0", lambda d: d["grid"].update(rows=[0, 8]), mentions="rows")
    st("grid rows a string", lambda d: d["grid"].update(rows=["8"]), mentions="rows")
    st("grid technology_nm 0", lambda d: d["grid"].update(technology_nm=[0, 45]), mentions="technology_nm")
    st("grid ifmap_on_chip no", lambda d: d["grid"].update(ifmap_on_chip=["no"]), mentions="ifmap_on_chip")
    st("grid of 10^6 points", lambda d: d.update(grid={"rows": list(range(1, 1001)), "cols": list(range(1, 1001))}),
       cls="unbounded", mentions="points")
    st("grid of 10^12 points", lambda d: d.update(grid={k: list(range(1, 1001)) for k in
                                                          ("rows", "cols", "acc_bits", "prefetch_depth")}),
       cls="unbounded", mentions="points")
    st("batch a string", lambda d: d.update(models=[{"model": "mlp0", "batch": "x"}]), cls="traceback", mentions="batch")
    st("batch 0", lambda d: d.update(models=[{"model": "mlp0", "batch": 0}]), mentions="batch")
    st("seed a list", lambda d: d.update(random={"samples": 2, "seed": [1]}), cls="traceback", mentions="seed")
    st("samples -1", lambda d: d.update(random={"samples": -1, "seed": 0}), mentions="samples")
    st("samples 1e9", lambda d: d.update(random={"samples": 10 ** 9, "seed": 0}), cls="unbounded", mentions="samples")
    st("energy table unknown", lambda d: d.update(energy_table="nope"), mentions="nope")
    st("base unknown", lambda d: d.update(base="tpu-v9"), mentions="base")
    st("duplicate model", lambda d: d.update(models=["mlp0", "mlp0"]), mentions="models")
    st("duplicate grid value", lambda d: d["grid"].update(rows=[8, 8]), mentions="rows")
    st("trace.weight_bits 0", lambda d: d["grid"].update({"trace.weight_bits": [0]}), mentions="weight_bits")
    st("trace.weight_density 2", lambda d: d["grid"].update({"trace.weight_density": [2.0]}), mentions="density")
    st("unknown top-level field", lambda d: d.update(gird={}), mentions="gird")
    st("billion laughs", text="a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
       "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nname: *g\n", cls="unbounded",
       mentions="alias")
    st("workers 10^6", extra=("--workers", "1000000"), cls="unbounded", mentions="workers")

    # -- compression plans
    def plan(name: str, text: str, cls: str = "silent", mentions: str = "") -> None:
        C.append(Case(cls, f"plan: {name}", ("compress", "lenet300", "--plan", "p.yaml"), {"p.yaml": text},
                      mentions=mentions))

    plan("not a mapping", "- 1\n", "message", "p.yaml")
    plan("unknown layer", "layers: {fc9: {keep: 0.5}}\n", "message", "fc9")
    plan("keep 1.5", "layers: {fc1: {keep: 1.5}}\n", mentions="keep")
    plan("keep 0", "layers: {fc1: {keep: 0}}\n", mentions="keep")
    plan("keep 1e-6", "layers: {fc1: {keep: 1.0e-6}}\n", "traceback", "keep")
    plan("keep a string", "layers: {fc1: {keep: half}}\n", mentions="keep")
    plan("structure 4:2", "default: {structure: 4:2}\n", mentions="structure")
    plan("structure and keep", "default: {structure: 2:4, keep: 0.3}\n", mentions="structure")
    plan("structure on a layer it does not fit", "layers: {fc1: {structure: 3:5}}\n", mentions="structure")
    plan("weight_bits 40", "layers: {fc1: {weight_bits: 40}}\n", mentions="weight_bits")
    plan("weight_bits 64", "layers: {fc1: {weight_bits: 64}}\n", mentions="weight_bits")
    plan("weight_bits 0", "layers: {fc1: {weight_bits: 0}}\n", mentions="weight_bits")
    plan("index_bits 64", "default: {index_bits: 64}\n", "traceback", "index_bits")
    plan("unknown key", "layers: {fc1: {kep: 0.5}}\n", "message", "kep")
    plan("default a list", "default: [1]\n", "message", "default")
    plan("not UTF-8", "x", "traceback", "UTF-8")
    C[-1] = Case("traceback", "plan: not UTF-8", ("compress", "lenet300", "--plan", "p.yaml"),
                 {"p.yaml": b"layers: \xff\n"}, mentions="UTF-8")
    plan("keep true", "layers: {fc1: {keep: true}}\n", mentions="keep")

    # -- SCALE-Sim inputs
    cfg = (Path(__file__).resolve().parent.parent / "examples" / "scalesim" / "scale.cfg").read_text()
    topo = (Path(__file__).resolve().parent.parent / "examples" / "scalesim" / "topology.csv").read_text()

    def ss(name: str, c: str | bytes = cfg, t: str | bytes = topo, cls: str = "traceback", mentions: str = "",
           extra: tuple[str, ...] = ()) -> None:
        C.append(Case(cls, f"scalesim: {name}", ("scalesim", "-c", "s.cfg", "-t", "t.csv", "-o", "o", *extra),
                      {"s.cfg": c, "t.csv": t}, mentions=mentions))

    def setcfg(key: str, value: str) -> str:      # USER mode, where every bandwidth field is read
        text = re.sub(r"InterfaceBandwidth: CALC", "InterfaceBandwidth: USER", cfg)
        return re.sub(rf"(?m)^{key}\s*:.*$", f"{key}: {value}", text)

    ss("cfg not UTF-8", c=b"[general]\nrun_name = \xff\n", mentions="UTF-8")
    ss("topology not UTF-8", t=b"Layer name, M, N, K,\n\xff, 1, 2, 3,\n", mentions="UTF-8")
    ss("cfg without sections", c="ArrayHeight: 8\n", cls="message", mentions="s.cfg")
    for key, value in [("ArrayHeight", "0"), ("ArrayWidth", "-4"), ("Bandwidth", "0"), ("Bandwidth", "-1"),
                       ("Bandwidth", "inf"), ("Bandwidth", "nan"), ("IfmapSramSzkB", "0"), ("Dataflow", "xs"),
                       ("IfmapSRAMBankNum", "0"), ("IfmapSRAMBankBandwidth", "0"), ("ArrayHeight", "eight"),
                       ("OfmapSramSzkB", "-2"), ("ArrayHeight", "100000")]:
        ss(f"{key}: {value}", c=setcfg(key, value), mentions=key if value != "100000" else "100000x8")
    ss("cfg key misspelt", c=cfg.replace("ArrayHeight", "ArrayHieght"), cls="silent", mentions="ArrayHeight?")
    ss("cfg section misspelt", c=cfg.replace("[layout]", "[layuot]"), cls="silent", mentions="layout")
    ss("topology empty", t="", cls="message", mentions="t.csv")
    ss("topology header only", t=topo.splitlines()[0] + "\n", cls="message", mentions="t.csv")
    ss("row with 4 fields", t=topo.splitlines()[0] + "\nconv1, 34, 34, 3,\n", mentions="t.csv:2")
    ss("negative dims", t=topo.splitlines()[0] + "\nconv1, -34, 34, 3, 3, 3, 16, 1,\n", mentions="t.csv:2")
    ss("filter larger than ifmap", t=topo.splitlines()[0] + "\nconv1, 3, 3, 9, 9, 3, 16, 1,\n", mentions="t.csv:2")
    ss("stride 0", t=topo.splitlines()[0] + "\nconv1, 34, 34, 3, 3, 3, 16, 0,\n", mentions="t.csv:2")
    ss("depthwise 10^6 channels", t=topo.splitlines()[0] + "\ndw, 16, 16, 3, 3, 1000000, 1000000, 1,\n",
       cls="unbounded", mentions="dw")
    ss("--gemm on a conv topology", extra=("--gemm",), cls="message", mentions="gemm")
    ss("Ramulator on", c=re.sub(r"UseRamulatorTrace: False", "UseRamulatorTrace: True", cfg), cls="message",
       mentions="UseRamulatorTrace")
    ss("sparsity on", c=re.sub(r"SparsitySupport : false", "SparsitySupport : true", cfg), cls="message",
       mentions="Sparsity")

    # -- user model files
    def model(name: str, src: str | bytes, cls: str = "traceback", mentions: str = "net.py",
              spec: str = "net.py:factory") -> None:
        C.append(Case(cls, f"model file: {name}", ("simulate", spec), {"net.py": src}, mentions=mentions))

    ok_model = ("import torch\n\ndef factory(batch=1):\n    return torch.nn.Linear(8, 4), torch.zeros(batch, 8)\n")
    model("missing", ok_model, "message", "nope.py", spec="nope.py:factory")
    model("factory missing", ok_model, "message", "build", spec="net.py:build")
    model("syntax error", "def factory(:\n", mentions="net.py")
    model("factory raises", "def factory():\n    raise RuntimeError('boom')\n", mentions="boom")
    model("factory calls sys.exit(0)", "import sys\n\ndef factory():\n    sys.exit(0)\n", "silent", "exit")
    model("factory calls sys.exit(3)", "import sys\n\ndef factory():\n    sys.exit(3)\n", mentions="exit")
    C.append(Case("traceback", "model file: factory raises KeyboardInterrupt", ("simulate", "net.py:factory"),
                  {"net.py": "def factory():\n    raise KeyboardInterrupt\n"}, mentions="interrupt", rc=130))
    model("returns a number", "def factory():\n    return 3\n", "message", "factory")
    model("forward raises", "import torch\n\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
          "        raise ValueError('bad forward')\n\ndef factory():\n    return M(), torch.zeros(1, 2)\n",
          mentions="bad forward")
    model("not UTF-8", b"def factory():\n    return '\xff'\n", mentions="net.py")
    model("import error", "import not_a_module_xyz\n", mentions="not_a_module_xyz")

    # -- ONNX models (the onnx extra) and the mapping search
    def onnx_model(nodes, inits, x_shape, y_shape) -> bytes:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(np.zeros(sh, np.float32), n) for n, sh in inits])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()

    try:
        from onnx import helper as oh
    except ImportError:
        oh = None
    C.append(Case("traceback", "onnx: not protobuf", ("simulate", "m.onnx"), {"m.onnx": b"\x00\xff" * 64},
                  mentions="not an ONNX model"))
    C.append(Case("traceback", "onnx: empty file", ("simulate", "m.onnx"), {"m.onnx": b""}, mentions="m.onnx"))
    C.append(Case("message", "onnx: missing file", ("lower", "none.onnx"), mentions="none.onnx"))
    if oh is not None:
        conv = lambda **a: [oh.make_node("Conv", ["x", "w"], ["y"], name="c", **a)]  # noqa: E731
        C.append(Case("traceback", "onnx: unsupported operator", ("simulate", "m.onnx"),
                      {"m.onnx": onnx_model([oh.make_node("Det", ["x"], ["y"], name="det")], [], [1, 4, 4], [1])},
                      mentions="Det"))
        C.append(Case("silent", "onnx: asymmetric pads", ("simulate", "m.onnx"),
                      {"m.onnx": onnx_model(conv(pads=[0, 0, 1, 1]), [("w", (2, 1, 2, 2))], [1, 1, 4, 4], [1, 2, 4, 4])},
                      mentions="asymmetric"))
        C.append(Case("unbounded", "onnx: a 10^5 x 10^5 image (answers in seconds)", ("simulate", "m.onnx"),
                      {"m.onnx": onnx_model(conv(), [("w", (64, 3, 3, 3))], [1, 3, 100000, 100000],
                                            [1, 64, 99998, 99998])}, mentions="limit"))
        C.append(Case("traceback", "onnx: --batch 0", ("lower", "m.onnx", "--batch", "0"),
                      {"m.onnx": onnx_model(conv(), [("w", (2, 1, 2, 2))], ["N", 1, 4, 4], ["N", 2, 3, 3])},
                      mentions="batch"))
    cli("message", "mapping search on EIE", "simulate", "lenet300", "--arch", "eie-64", "--mapping", "search",
        mentions="mapping")
    cli("message", "mapping search on a GPU", "simulate", "lenet300", "--arch", "a100", "--mapping", "search",
        mentions="mapping")
    cli("message", "an unknown objective", "simulate", "lenet300", "--mapping", "search", "--objective", "speed",
        mentions="objective")

    # -- files and processes
    def kept(name: str) -> Callable[[Path, str], str | None]:
        return lambda d, out: None if (d / name).exists() else f"{name} was deleted"

    cli("files", "lower -o X.json keeps an unrelated X.npz", "lower", "lenet300", "-o", "X.json",
        files={"X.npz": b"user data"}, expect="ok", check=kept("X.npz"))
    cli("files", "lower -o X.json --keep-weights over an unrelated X.npz", "lower", "lenet300", "-o", "X.json",
        "--keep-weights", files={"X.npz": b"user data"}, mentions="X.npz")

    def escaped(d: Path, out: str) -> str | None:
        html = (d / "r" / "report.html").read_text()
        return "unescaped <script> in report.html" if "<script>alert" in html else None

    evil = json.loads(json.dumps(good))
    evil["name"] = "<script>alert(1)</script>"
    evil["ops"][0]["name"] = "<script>alert(2)</script>"
    for o in evil["ops"]:
        o["producers"] = [evil["ops"][0]["name"] if p == good["ops"][0]["name"] else p for p in o["producers"]]
    cli("files", "report escapes trace names", "report", "t.json", "-o", "r", files={"t.json": json.dumps(evil)},
        expect="ok", check=escaped)
    cli("files", "report escapes an arch source", "report", "lenet300", "--arch", "a.yaml", "-o", "r",
        files={"a.yaml": "base: systolic-32\nsource: <script>alert(3)</script>\n"}, expect="ok", check=escaped)

    def mode644(name: str) -> Callable[[Path, str], str | None]:
        def chk(d: Path, out: str) -> str | None:
            m = (d / name).stat().st_mode & 0o777
            return None if m == 0o644 else f"{name} has mode {oct(m)} under umask 022"
        return chk

    cli("files", "outputs respect the umask", "simulate", "lenet300", "-o", "o.csv", expect="ok", check=mode644("o.csv"))
    cli("files", "-o into a missing folder", "simulate", "lenet300", "-o", "no/such/o.csv", mentions="no/such")
    cli("silent", "compress --structure 2-4", "compress", "lenet300", "--structure", "2-4", mentions="--structure")
    cli("silent", "compress --structure 0:4", "compress", "lenet300", "--structure", "0:4", mentions="--structure")
    cli("silent", "compress --structure with --prune", "compress", "lenet300", "--structure", "2:4", "--prune", "0.5",
        mentions="--structure")
    cli("silent", "gpu arch sparse_structures [2-4]", "simulate", "lenet300", "--arch", "a.yaml",
        files={"a.yaml": "base: a100\nsparse_structures: [2-4]\n"}, mentions="sparse_structures")
    # spatial designs and ZigZag's files (session 8)
    lv = "levels:\n  - {name: buf, operands: [input, weight, output], size_bytes: %s}\n" \
         "  - {name: dram, operands: [input, weight, output], kind: dram}\n"
    for name, body, field_ in (
            ("levels a string", "levels: abc\n", "levels"),
            ("levels of numbers", "levels: [1, 2]\n", "levels[0]"),
            ("level size -5", lv % "-5", "size_bytes"),
            ("level size 1e300", lv % "1.0e300", "size_bytes"),
            ("level size 0 on chip", lv % "0", "size_bytes"),
            ("no off-chip level", "levels:\n  - {name: buf, operands: [input], size_bytes: 64}\n", "levels[0]"),
            ("level unknown field", "levels:\n  - {name: b, operands: [input], size_bytes: 8, colour: red}\n",
             "colour"),
            ("level operand misspelt", "levels:\n  - {name: b, operands: [inputs], size_bytes: 8}\n", "operands"),
            ("unrolling Q,K", "unrollings: ['Q,K']\n", "unrollings"),
            ("unrolling K,K", "unrollings: ['K,K']\n", "unrollings"),
            ("unrolling one side", "unrollings: ['K']\n", "unrollings"),
            ("objective speed", "objective: speed\n", "objective"),
            ("dataflow xs", "dataflow: xs\n", "dataflow"),
            ("rows 0", "rows: 0\n", "rows"),
            ("rows 2**40", "rows: 1099511627776\n", "rows")):
        cli("silent", f"spatial arch {name}", "simulate", "lenet5", "--arch", "a.yaml",
            files={"a.yaml": "base: eyeriss-like\n" + body}, mentions=field_)
    hw = ("name: t\noperational_array: {dimensions: [D1, D2], sizes: [4, 4], unit_energy: 0.1}\nmemories:\n"
          "  dram:\n    size: 1000000\n    r_cost: 1\n    w_cost: 1\n    latency: 1\n    operands: [I1, I2, O]\n"
          "    served_dimensions: [D1, D2]\n"
          "    ports: [{name: rw_port_1, type: read_write, bandwidth_min: 8, bandwidth_max: 64,\n"
          "             allocation: ['I1, fh', 'I1, tl', 'I2, fh', 'I2, tl', 'O, fh', 'O, tl', 'O, fl', 'O, th']}]\n")
    cli("ok", "zigzag minimal hardware", "simulate", "gemm:8,8,8:int8", "--arch", "zigzag:hw.yaml",
        files={"hw.yaml": hw}, expect="ok")
    for name, files, field_ in (
            ("zigzag missing file", {}, "nothere.yaml"),
            ("zigzag a list", {"hw.yaml": "- 1\n"}, "hw.yaml"),
            ("zigzag 3-d array", {"hw.yaml": hw.replace("[D1, D2], sizes: [4, 4]", "[D1, D2, D3], sizes: [4, 4, 2]")},
             "operational_array"),
            ("zigzag served D1 only", {"hw.yaml": hw.replace("served_dimensions: [D1, D2]", "served_dimensions: [D1]")},
             "served_dimensions"),
            ("zigzag operand X", {"hw.yaml": hw.replace("[I1, I2, O]", "[I1, X, O]")}, "operands"),
            ("zigzag port bandwidth 0", {"hw.yaml": hw.replace("bandwidth_max: 64", "bandwidth_max: 0")},
             "bandwidth_max"),
            ("zigzag r_cost string", {"hw.yaml": hw.replace("r_cost: 1", "r_cost: one")}, "r_cost"),
            ("zigzag key misspelt", {"hw.yaml": hw.replace("r_cost: 1", "r_cots: 1")}, "r_cost?"),
            ("zigzag in-memory compute", {"hw.yaml": hw.replace("unit_energy: 0.1}", "unit_energy: 0.1, is_imc: true}")},
             "is_imc"),
            ("zigzag binary", {"hw.yaml": b"\x00\xff\x00"}, "hw.yaml"),
            ("zigzag mapping without default", {"hw.yaml": hw, "m.yaml": "- name: x\n  spatial_mapping: {D1: ['K, 4']}\n"},
             "default")):
        spec = "zigzag:nothere.yaml" if "missing" in name else (
            "zigzag:hw.yaml:m.yaml" if "m.yaml" in files else "zigzag:hw.yaml")
        cli("silent", name, "simulate", "gemm:8,8,8:int8", "--arch", spec, files=files, mentions=field_)

    # -- issue 33 ("input contracts"): each of these once answered, crashed (exit 70), hung or ran away
    trace("misspelt operand key densty", lambda d: w0(d).update(densty=0.1), mentions="densty")
    trace("misspelt op key copeis", lambda d: op0(d).update(copeis=4), mentions="copeis")
    trace("misspelt top-level key opps", lambda d: d.update(opps=[]), mentions="opps")
    trace("batch 1e12 (a float)", lambda d: d.update(batch=1e12), mentions="batch")
    trace("batch 10^12 with ops at M=1", lambda d: d.update(batch=10 ** 12), mentions="batch")
    trace("operands []", lambda d: op0(d).update(operands=[]), mentions="operands")
    arch("a key given twice", "base: systolic-32\nrows: 8\nrows: 16\n", "silent", "rows")
    arch("systolic acc_bits 4 under int8 products", "base: systolic-32\nacc_bits: 4\n", "silent", "acc_bits")
    arch("systolic filter_sram_kib 0.001", "base: systolic-32\nfilter_sram_kib: 0.001\n", "silent", "filter_sram_kib")
    arch("eie pointer_bits 1", "base: eie-64\npointer_bits: 1\n", "silent", "pointer_bits")
    arch("gpu generation pascal", "base: a100\ngeneration: pascal\n", "silent", "generation")
    arch("spatial op_unrollings naming no op", "base: eyeriss-like\nop_unrollings: {nolayer: 'C,K'}\n", "silent",
         "op_unrollings.nolayer")
    arch("systolic dram_bw_bytes_per_cycle 1e-300", "base: systolic-32\ndram_bw_bytes_per_cycle: 1.0e-300\n",
         "traceback", "dram_bw_bytes_per_cycle")
    # the arch's owners keep this one: rows go to PE r % num_pes, so any count works
    C.append(Case("silent", "arch: eie num_pes 3 (any count works)", ("simulate", "lenet300", "--arch", "a.yaml"),
                  {"a.yaml": "base: eie-64\nnum_pes: 3\n"}, expect="ok"))
    cli("silent", "train --tp 8 on gpt2's 12 heads", "train", "gpt2", "--global-batch", "8", "--tp", "8",
        mentions="--tp 8")
    cli("silent", "train --seq-len 0", "train", "gpt2", "--global-batch", "8", "--seq-len", "0", mentions="--seq-len")
    cli("silent", "train --microbatch 0", "train", "gpt2", "--global-batch", "8", "--microbatch", "0",
        mentions="--microbatch")
    cli("silent", "train --schedule interleaved:2 with --pp 1", "train", "gpt2", "--global-batch", "8", "--schedule",
        "interleaved:2", "--pp", "1", mentions="interleaved:2")
    cli("silent", "simulate gemm:4,4,4 --batch 3", "simulate", "gemm:4,4,4", "--batch", "3", mentions="--batch")
    cli("silent", "lower --optimizer sgd without --train", "lower", "lenet300", "--optimizer", "sgd",
        mentions="--optimizer")
    cli("files", "train --timeline /dev/full", "train", "gpt2", "--global-batch", "8", "--timeline", "/dev/full",
        mentions="/dev/full")
    cli("traceback", "lower lstm_lm --seq-len 10^9", "lower", "lstm_lm", "--seq-len", "1000000000", "--no-cache",
        mentions="--seq-len")
    cli("traceback", "lower lenet300 --batch 10^9", "lower", "lenet300", "--batch", "1000000000", "--no-cache",
        mentions="--batch")
    cli("traceback", "lower resnet18 --batch 10^6 (answers: shapes on the meta device)", "lower", "resnet18",
        "--batch", "1000000", "--no-cache", expect="ok")

    def graph(nodes, w=None, opset: int = 17) -> bytes:
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper

        w = np.ones((4, 4), np.float32) if w is None else w
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(w, "w")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()

    def outside() -> dict[str, str | bytes]:
        import onnx
        from onnx.external_data_helper import set_external_data

        m = onnx.load_model_from_string(graph([oh.make_node("MatMul", ["x", "w"], ["y"], name="mm")]))
        t = m.graph.initializer[0]
        data = t.raw_data
        set_external_data(t, location="../w.bin")
        t.data_location = onnx.TensorProto.EXTERNAL
        t.ClearField("raw_data")
        return {"ext/m.onnx": m.SerializeToString(), "w.bin": data}

    if oh is not None:
        import numpy as np
        mm = oh.make_node("MatMul", ["x", "w"], ["h"], name="mm")
        for name, model_bytes, arch_, field_ in (
                ("a self-loop", graph([mm, oh.make_node("Add", ["h", "y"], ["y"], name="loop")]), "systolic-32", "loop"),
                ("a dangling input", graph([mm, oh.make_node("Add", ["h", "ghost"], ["y"], name="add")]), "systolic-32",
                 "ghost"),
                ("opset 99", graph([oh.make_node("MatMul", ["x", "w"], ["y"], name="mm")], opset=99), "systolic-32",
                 "opset"),
                ("NaN weights on EIE", graph([oh.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                                             w=np.full((4, 4), np.nan, np.float32)), "eie-64", "NaN")):
            C.append(Case("silent", f"onnx: {name}", ("simulate", "m.onnx", "--arch", arch_), {"m.onnx": model_bytes},
                          mentions=field_))
        C.append(Case("silent", "onnx: external data outside the model's folder", ("simulate", "ext/m.onnx"), outside(),
                      mentions="outside the model's folder"))
        C.append(Case("unbounded", "onnx: a FIFO given as the model", ("simulate", "m.onnx"), nodes={"m.onnx": "fifo"},
                      mentions="m.onnx"))
    model("fails on its own input", "import torch\n\ndef factory(batch=1):\n"
          "    return torch.nn.Linear(8, 4), torch.zeros(batch, 5)\n", mentions="own example input")

    def csv_only(d: Path, out: str) -> str | None:
        return "the factory's print() is in the CSV" if "HELLO" in out or not out.startswith("name,") else None

    C.append(Case("silent", "model file: print() with --format csv", ("simulate", "net.py:factory", "--format", "csv"),
                  {"net.py": "import torch\n\ndef factory(batch=1):\n    print('HELLO')\n"
                             "    return torch.nn.Linear(8, 4), torch.ones(batch, 8)\n"}, expect="ok", check=csv_only))

    def same_again(d: Path, out: str) -> str | None:       # the run again, in its folder: the same numbers
        argv = ["simulate", "net.py:factory", "--arch", "eie-64", "--seed", "5", "--no-cache", "--format", "csv"]
        again = subprocess.run([HWSIM, *argv], cwd=d, capture_output=True, text=True).stdout
        return None if again == out else "two runs with --seed 5 differ"

    C.append(Case("silent", "model file: torch's default initialisation with --seed",
                  ("simulate", "net.py:factory", "--arch", "eie-64", "--seed", "5", "--no-cache", "--format", "csv"),
                  {"net.py": "import torch\n\ndef factory(batch=1):\n    m = torch.nn.Linear(64, 64)\n"
                             "    with torch.no_grad():\n        m.weight[m.weight.abs() < 0.1] = 0\n"
                             "    return m, torch.randn(batch, 64)\n"}, expect="ok", check=same_again))
    for name, argv, node in (("a FIFO given as a trace", ("simulate", "t.json"), {"t.json": "fifo"}),
                             ("a FIFO given as an arch", ("simulate", "lenet300", "--arch", "a.yaml"), {"a.yaml": "fifo"}),
                             ("a symlink to /dev/zero as a trace", ("simulate", "t.json"), {"t.json": "/dev/zero"}),
                             ("a symlink to /dev/zero as an arch", ("simulate", "lenet300", "--arch", "a.yaml"),
                              {"a.yaml": "/dev/zero"})):
        C.append(Case("unbounded", f"files: {name}", argv, nodes=node, mentions=next(iter(node))))
    C.append(Case("files", "files: report -o a folder holding other files", ("report", "lenet300", "-o", "r"),
                  {"r/notes.txt": "mine"}, mentions="notes.txt"))

    def written_through(d: Path, out: str) -> str | None:
        link = d / "link.csv"
        return None if link.is_symlink() and (d / "real.csv").read_text().startswith("name,") else \
            "the symlink was renamed over, not written through"

    C.append(Case("files", "files: -o a symlink to a file", ("simulate", "lenet300", "-o", "link.csv"),
                  {"real.csv": "old"}, nodes={"link.csv": "real.csv"}, expect="ok", check=written_through))

    def one_report(d: Path, out: str) -> str | None:
        """Kill a --force report of another workload at several moments: the folder holds one report."""
        import signal

        def held() -> set[str]:
            r = d / "r"
            text = " ".join((r / f).read_text() for f in ("summary.json", "summary.csv", "report.html")
                            if (r / f).exists())
            return {w for w in ("lenet300", "gemm:4,4,4") if w in text}

        for delay in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
            p = subprocess.Popen([HWSIM, "report", "gemm:4,4,4", "--arch", "systolic-32", "-o", "r", "--force"],
                                 cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait()
            if len(held()) != 1:
                return f"killed after {delay} s: the folder mixes the reports of {sorted(held())}"
        return None

    C.append(Case("files", "files: report -o killed while replacing an old report", ("report", "lenet300", "-o", "r"),
                  expect="ok", check=one_report))
    return C


def setup(work: Path, env: dict) -> tuple[dict, str]:
    """A valid LeNet-300 trace, and the same with a NaN in a weight tensor."""
    subprocess.run([HWSIM, "lower", "lenet300", "-o", str(work / "good.json"), "--keep-weights"], env=env,
                   check=True, capture_output=True)
    doc = json.loads((work / "good.json").read_text())
    import numpy as np
    with np.load(work / "good.npz") as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if arrays[k].dtype.kind == "f")
    arrays[key] = arrays[key].copy()
    arrays[key].flat[0] = np.nan
    np.savez(work / "nan.npz", **arrays)
    nan_doc = dict(doc, tensors="nan.npz")
    plain = json.loads(json.dumps(doc))
    plain.pop("tensors", None)
    for op in plain["ops"]:
        for o in op["operands"]:
            o.pop("values", None)
            o.pop("codebook", None)
    return plain, json.dumps(nan_doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("-k", action="append", default=[],
                    help="only cases whose name contains this (repeat: any of them)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
    env = dict(os.environ, HWSIM_CACHE_DIR=str(work / "cache"), OMP_NUM_THREADS="1")
    os.umask(0o022)
    good, nan_trace = setup(work, env)
    all_cases = [c for c in cases(good) if not args.k or any(k in c.name for k in args.k)]
    for i, c in enumerate(all_cases):       # the NaN trace needs its .npz beside it
        if c.files.get("t.json") == "@NAN_TRACE@":
            all_cases[i] = Case(c.cls, c.name, c.argv, {"t.json": nan_trace, "nan.npz": (work / "nan.npz").read_bytes()},
                                mentions=c.mentions)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: run(c, work, env), all_cases))
    counts: dict[str, int] = {}
    for c, (verdict, what, wall, rss) in zip(all_cases, results):
        counts[verdict] = counts.get(verdict, 0) + 1
        print(f"{verdict:<9} {c.cls:<9} {wall:5.1f}s {rss:5d}MB  {c.name}: {what}")
    good_verdicts = ("refused", "ok")
    bad = {k: v for k, v in counts.items() if k not in good_verdicts}
    print(f"\n{len(all_cases)} cases in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("refused", "ok")) + "; "
          + (", ".join(f"{v} {k}" for k, v in sorted(bad.items())) if bad else "no failures"))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

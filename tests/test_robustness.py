"""Bad input refused in one line (exit 2), never a traceback, a hang or a silent answer;
nothing lost; bounded time and memory. One case per class of the bad-input campaign
(``benchmarks/bad_inputs.py`` runs 200+), a property-based fuzz of every input format, and
the process and file rules (kill -9 of a sweep, folder locks, files not named)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.cli import main
from workloads.build import conv_op, gemm_op
from workloads.errors import HwsimError
from workloads.trace import Workload

HWSIM = str(Path(sys.executable).with_name("hwsim"))


def refuse(capsys, argv: list[str], *mentions: str, rc: int = 2) -> str:
    """Run the CLI in process; assert exit ``rc`` and one line naming ``mentions``."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == rc, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for m in mentions:
        assert m in lines[0], (m, lines[0])
    return lines[0]


def small_trace() -> dict:
    wl = Workload("t", (gemm_op("fc1", 4, 30, 20, bits=8, dtype="int"),
                        conv_op("c1", 1, 3, 8, 8, 4, 3, 3, pad=1, bits=8, dtype="int")))
    doc, _ = wl.to_dict()
    return doc


# ---- one case per class ---------------------------------------------------------------------
def test_silent_results_are_refused(tmp_path, capsys):
    doc = small_trace()
    w = next(o for o in doc["ops"][0]["operands"] if o["role"] == "weight")
    w["shape"] = [7, 7]                          # the dims say N x K = 30 x 20 = 600
    (tmp_path / "t.json").write_text(json.dumps(doc))
    refuse(capsys, ["simulate", str(tmp_path / "t.json"), "--arch", "eie-64"], "fc1", "shape", "600")
    (tmp_path / "a.yaml").write_text("base: systolic-32\nifmap_on_chip: \"no\"\n")
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", str(tmp_path / "a.yaml")], "ifmap_on_chip")
    for node in ("0", "-5", "nan", "1e-300"):
        refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "--node", node], "technology node")
    (tmp_path / "p.yaml").write_text("layers: {fc1: {weight_bits: 40}}\n")
    from workloads.compress.plan import load_plan
    with pytest.raises(HwsimError, match=r"weight_bits: must be an integer in 1..32, got 40"):
        load_plan(tmp_path / "p.yaml")


def test_would_be_tracebacks_are_one_line(tmp_path, capsys):
    (tmp_path / "a.yaml").write_bytes(b"base: systolic-32\nrows: \xff\n")
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", str(tmp_path / "a.yaml")], "not UTF-8", "line 2")
    (tmp_path / "d.yaml").write_text("base: systolic-32\nrows: " + "[" * 5000 + "]" * 5000 + "\n")
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", str(tmp_path / "d.yaml")], "nested")
    (tmp_path / "s.yaml").write_text("name: s\nmodels: [{model: mlp0, batch: x}]\nbase: systolic-32\n"
                                     "grid: {rows: [8]}\n")
    refuse(capsys, ["sweep", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "o")], "models[0].batch")
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "--batch", "x"], "--batch", "--help")


def test_unbounded_requests_are_refused_with_the_estimate(tmp_path, capsys):
    # tpu-v1 ws: 256 columns of N = 256 -> 1 outer tile; M = 1e12 rows in chunks of
    # 4 MiB / 2 / (256 x 4 B) = 2048 -> 488,281,250 chunks x 1 K tile; 128 B each = 58.2 GB
    line = refuse(capsys, ["simulate", "gemm:1000000000000,256,256", "--arch", "tpu-v1"],
                  "488,281,250 folds", "58.2 GB", "limit is 4 GB", "--max-memory")
    assert "hwsim --max-memory" in line
    # 488,281,250 folds x 0.7 us = 342 s: over a one-minute limit
    refuse(capsys, ["--max-memory", "1T", "--max-time", "1m", "simulate", "gemm:1000000000000,256,256", "--arch",
                    "tpu-v1"], "about 5.7 min", "limit is 1 min", "--max-time")
    refuse(capsys, ["simulate", "gemm:1000000000000,4096,4096", "--arch", "a100"], "waves", "--max-time")
    refuse(capsys, ["simulate", "gemm:1,1000000000,1000000000", "--arch", "eie-64"], "--max-memory")
    laughs = "".join(f"{c}: &{c} [{','.join(['*' + p] * 9 if p else ['x'] * 9)}]\n"
                     for c, p in zip("abcdefg", ["", *"abcdef"]))
    (tmp_path / "s.yaml").write_text(laughs + "name: *g\n")
    refuse(capsys, ["sweep", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "o")], "aliases", "1,000,000")
    (tmp_path / "g.yaml").write_text("name: g\nmodels: [mlp0]\nbase: systolic-32\ngrid:\n"
                                     f"  rows: {list(range(1, 1001))}\n  cols: {list(range(1, 1001))}\n")
    refuse(capsys, ["sweep", str(tmp_path / "g.yaml"), "-o", str(tmp_path / "o")], "1,000,000 points", "--max-points")
    refuse(capsys, ["verify", "dot", "--trials", "1000000000"], "--trials")
    assert not (tmp_path / "o").exists()


def test_huge_gemms_on_small_arrays_are_simulated_at_least_at_the_compute_bound():
    """1e5^3 on systolic-32: 3125 outer tiles of 1.2M folds; the identical slices after the
    first are scheduled once (exact: see test_systolic's slice tests). How fast it answers is
    a benchmark's job (benchmarks/), not a test's."""
    from sim.registry import simulate
    wl = Workload("g", (gemm_op("g", 100_000, 100_000, 100_000, bits=8, dtype="int"),))
    r = simulate(wl, "systolic-32")
    # at least the compute bound: 1e15 MACs on 1024 PEs
    assert r.cycles >= 10 ** 15 / 1024


def test_messages_are_one_line_with_the_field(tmp_path, capsys):
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "-o", str(tmp_path / "no" / "o.csv")],
           "no such folder")
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "-o", str(tmp_path / "o.xlsx")], "o.xlsx")
    (tmp_path / "t.csv").write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                                    "Num Filter, Strides,\nconv1, 8, 8, 3, 3, 3, 4, 1,\n")
    (tmp_path / "c.cfg").write_text((Path(__file__).parents[1] / "examples" / "scalesim" / "scale.cfg").read_text()
                                    .replace("ArrayHeight:    8", "ArrayHeight: 0"))
    refuse(capsys, ["scalesim", "-c", str(tmp_path / "c.cfg"), "-t", str(tmp_path / "t.csv"), "-o",
                    str(tmp_path / "o")], "ArrayHeight", "must be an integer >= 1, got 0")


def test_user_code_interrupt_and_exit_are_reported(tmp_path, capsys):
    (tmp_path / "net.py").write_text("import sys\n\ndef zero():\n    sys.exit(0)\n\ndef intr():\n"
                                     "    raise KeyboardInterrupt\n")
    refuse(capsys, ["simulate", f"{tmp_path / 'net.py'}:zero", "--arch", "tpu-v1"], "sys.exit(0)")
    refuse(capsys, ["simulate", f"{tmp_path / 'net.py'}:intr", "--arch", "tpu-v1"], "interrupted", rc=130)


# ---- files ------------------------------------------------------------------------------------
def test_a_trace_never_replaces_an_unrelated_npz(tmp_path, capsys):
    import dataclasses

    import numpy as np
    op = gemm_op("fc", 2, 3, 4, bits=8, dtype="int")
    w = dataclasses.replace(op.operand("weight"), values=np.arange(12, dtype=np.float32).reshape(3, 4))
    wl = Workload("t", (dataclasses.replace(op, operands=tuple(w if o.role == "weight" else o for o in op.operands)),))
    other = tmp_path / "x.npz"
    other.write_bytes(b"user data")
    with pytest.raises(HwsimError, match="x.npz: exists and is not the tensor file"):
        wl.save(tmp_path / "x.json")
    assert other.read_bytes() == b"user data" and not (tmp_path / "x.json").exists()
    other.unlink()
    wl.save(tmp_path / "x.json")
    wl.save(tmp_path / "x.json")                 # its own earlier tensors: replaced
    assert Workload.load(tmp_path / "x.json").ops[0].operand("weight").values is not None


def test_a_folder_being_written_refuses_a_second_writer(tmp_path):
    from workloads.fileio import locked_folder
    with locked_folder(tmp_path / "r"):
        with pytest.raises(HwsimError, match="another hwsim run is writing into this report folder"):
            with locked_folder(tmp_path / "r", "report folder"):
                pass
        p = subprocess.run([HWSIM, "report", "gemm:8,8,8", "--arch", "tpu-v1", "-o", str(tmp_path / "r")],
                           capture_output=True, text=True)
        assert p.returncode == 2 and "another hwsim run" in p.stderr
    with locked_folder(tmp_path / "r"):          # released with its holder
        pass
    assert list((tmp_path / "r").iterdir()) == []


def test_outputs_respect_the_umask_and_html_is_escaped(tmp_path, capsys):
    doc = small_trace()
    doc["name"] = "<script>alert(1)</script>"
    doc["ops"][0]["name"] = "<img src=x onerror=alert(2)>"
    (tmp_path / "t.json").write_text(json.dumps(doc))
    (tmp_path / "a.yaml").write_text("base: systolic-32\nsource: <script>alert(3)</script>\n")
    old = os.umask(0o027)
    try:
        assert main(["report", str(tmp_path / "t.json"), "--arch", str(tmp_path / "a.yaml"), "-o",
                     str(tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)" in html
    assert (tmp_path / "r" / "ops.csv").stat().st_mode & 0o777 == 0o640


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc (Linux)")
def test_kill_9_of_a_sweep_leaves_no_worker_and_the_sweep_resumes(tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text("name: s\nmodels: ['gemm:20000,2048,2048']\nbase: systolic-16\n"
                     "grid: {dram_bw_bytes_per_cycle: [1, 2, 3, 4, 5, 6, 7, 8]}\n")
    out = tmp_path / "o"
    p = subprocess.Popen([HWSIM, "sweep", str(study), "-o", str(out), "--workers", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    kids: list[int] = []
    while time.time() < deadline and len(kids) < 2:
        time.sleep(0.2)
        kids = _children(p.pid)
    assert len(kids) >= 2, "the sweep did not start its workers"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids), "workers outlived their sweep"
    done_before = len(list((out / "points").glob("*.json"))) if (out / "points").exists() else 0
    assert done_before < 8, "the sweep had finished before it was killed"
    r = subprocess.run([HWSIM, "sweep", str(study), "-o", str(out), "--workers", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "8 of 8 points" in r.stdout
    assert len(list((out / "points").glob("*.json"))) == 8 >= done_before


# ---- fuzz -------------------------------------------------------------------------------------
# Derandomized, so that CI runs the same examples every time (HWSIM_FUZZ_EXAMPLES=2000 for a
# longer local hunt; benchmarks/bad_inputs.py is the wider campaign).
N = int(os.environ.get("HWSIM_FUZZ_EXAMPLES", "0"))
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
                           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids,
                                                                                    max_size=4), max_leaves=12)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value):
    if not path:
        return value
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return doc


@settings(max_examples=N or 150, deadline=None, derandomize=not N, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_traces_load_or_are_refused_and_simulate_within_budget(data):
    """Any one field of a valid trace replaced by any JSON value: the trace is refused with a
    TraceError, or it loads and every machine family answers or refuses (HwsimError), within
    a small budget."""
    from sim.budget import limited
    from sim.registry import simulate
    doc = small_trace()
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    doc = _set(doc, path, data.draw(json_values))
    try:
        wl = Workload.from_dict(json.loads(json.dumps(doc)))
    except HwsimError:
        return
    with limited(max_memory_bytes=2 ** 28, max_time_s=5):
        for arch in ("systolic-16", "eie-64", "a100"):
            try:
                simulate(wl, arch)
            except HwsimError:
                pass


ARCH_FIELDS = {"systolic-32": ["rows", "cols", "dataflow", "clock_mhz", "ifmap_sram_kib", "dram_bw_bytes_per_cycle",
                               "prefetch_depth", "ifmap_on_chip", "technology_nm", "vector_lanes", "name"],
               "eie-64": ["num_pes", "queue_depth", "index_bits", "spmat_sram_bytes", "ptr_sram_bytes", "act_regs",
                          "weight_frac_bits", "clock_mhz"],
               "a100": ["sms", "tc_fma_per_clk", "dram_gbs", "smem_per_sm_kib", "pipeline_stages", "streams"]}
yaml_scalars = st.none() | st.booleans() | st.integers(-10 ** 7, 10 ** 7) | st.floats() | st.text(max_size=6) \
    | st.sampled_from(["no", "yes", ".inf", "-.nan", "1e400", "0x10", "~"])


@settings(max_examples=N or 150, deadline=None, derandomize=not N, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(ARCH_FIELDS)), data=st.data())
def test_fuzzed_arch_yaml_is_loaded_or_refused(tmp_path_factory, base, data):
    """An arch override with random values (as YAML text, so strings that look like
    booleans and numbers are included) is a valid description or one HwsimError; a loaded
    one simulates a small GEMM or refuses within the budget."""
    import yaml

    from sim.budget import limited
    from sim.registry import resolve_arch, simulate
    fields = data.draw(st.dictionaries(st.sampled_from(ARCH_FIELDS[base]), yaml_scalars | st.lists(yaml_scalars,
                                                                                                  max_size=2),
                                       min_size=1, max_size=3))
    text = f"base: {base}\n" + "".join(f"{k}: {v if isinstance(v, str) else yaml.safe_dump(v).strip()}\n"
                                       if not isinstance(v, (list, dict)) else f"{k}: {json.dumps(v)}\n"
                                       for k, v in fields.items()).replace("...", "")
    p = tmp_path_factory.mktemp("arch") / "a.yaml"
    p.write_text(text)
    try:
        arch = resolve_arch(str(p))
    except HwsimError:
        return
    with limited(max_memory_bytes=2 ** 28, max_time_s=5):
        try:
            simulate(Workload("g", (gemm_op("g", 64, 64, 64, bits=8, dtype="int"),)), arch)
        except HwsimError:
            pass


@settings(max_examples=N or 100, deadline=None, derandomize=not N, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.dictionaries(st.sampled_from(["name", "models", "base", "grid", "random", "energy_table", "x"]),
                           json_values, max_size=5))
def test_fuzzed_studies_are_loaded_or_refused(tmp_path_factory, doc):
    from analysis.sweep import load_study
    p = tmp_path_factory.mktemp("study") / "s.yaml"
    p.write_text(json.dumps(doc, allow_nan=True).replace("NaN", ".nan").replace("Infinity", ".inf"))
    try:
        load_study(p, max_points=1000)
    except HwsimError:
        pass


@settings(max_examples=N or 150, deadline=None, derandomize=not N)
@given(doc=st.dictionaries(st.sampled_from(["default", "layers", "x"]),
                           json_values | st.dictionaries(st.sampled_from(["fc1", "keep", "weight_bits", "index_bits"]),
                                                         json_values, max_size=3), max_size=3))
def test_fuzzed_plans_are_loaded_or_refused(doc):
    from workloads.compress.plan import plan_from_dict
    try:
        plan_from_dict(doc, "plan.yaml")
    except HwsimError:
        pass


@settings(max_examples=N or 60, deadline=None, derandomize=not N,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), which=st.sampled_from(["arch", "table", "study", "trace", "plan"]))
def test_fuzzed_bytes_give_one_line_from_the_cli(tmp_path_factory, capsys, raw, which):
    """Random bytes as any input file: exit 0 or 2, and on 2 exactly one line naming hwsim."""
    d = tmp_path_factory.mktemp("bytes")
    name = {"trace": "t.json", "arch": "a.yaml", "table": "e.yaml", "study": "s.yaml", "plan": "p.yaml"}[which]
    (d / name).write_bytes(raw)
    argv = {"trace": ["simulate", str(d / name), "--arch", "tpu-v1"],
            "arch": ["simulate", "gemm:8,8,8", "--arch", str(d / name)],
            "table": ["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "--energy-table", str(d / name)],
            "study": ["sweep", str(d / name), "-o", str(d / "o")],
            "plan": ["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "--compress", str(d / name)]}[which]
    capsys.readouterr()                      # the fixture is shared by the examples: start clean
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("hwsim") and "Traceback" not in err, err


def test_compression_does_not_depend_on_the_thread_count(capsys):
    """k-means weight sharing gave slightly different bits with OMP_NUM_THREADS=1 than with
    more threads; compress now runs on one thread whatever the environment says. The
    one-thread run is this process's (conftest starts torch on one thread, as
    OMP_NUM_THREADS=1 does); the two-thread one is a fresh process, since torch reads
    OMP_NUM_THREADS when it starts."""
    import torch
    assert torch.get_num_threads() == 1
    args = ["compress", "lenet300", "--prune", "0.9", "--share-bits", "4", "--format", "csv"]
    capsys.readouterr()
    assert main(args) == 0
    one = capsys.readouterr().out
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    r = subprocess.run([HWSIM, *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert one and r.stdout == one


def test_yaml_field_errors_name_the_line(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("base: systolic-32\nrows: 64\ncols: -3\n")
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", str(tmp_path / "a.yaml")], "a.yaml:3: cols: must be")
    (tmp_path / "s.yaml").write_text("name: s\nmodels:\n  - mlp0\n  - {model: mlp0, batch: x}\nbase: systolic-32\n"
                                     "grid: {rows: [8]}\n")
    refuse(capsys, ["sweep", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "o")], "s.yaml:4: models[1].batch")
    (tmp_path / "g.yaml").write_text("name: s\nmodels: [mlp0]\nbase: systolic-32\ngrid:\n  cols: [8]\n  rows: [8, 0]\n")
    refuse(capsys, ["sweep", str(tmp_path / "g.yaml"), "-o", str(tmp_path / "o")], "g.yaml:6: grid.rows: must be")
    (tmp_path / "e.yaml").write_text("name: t\ntechnology_nm: 45\nsource: x\nops:\n  add.int8: 0.03\n"
                                     "  mul.int8: -1\nsram: [{capacity_kib: 8, pj_per_64b: 10}]\n")
    refuse(capsys, ["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "--energy-table", str(tmp_path / "e.yaml")],
           "e.yaml:6: ops.mul.int8")
    from workloads.compress.plan import load_plan
    (tmp_path / "p.yaml").write_text("default: {index_bits: 5}\nlayers:\n  fc1:\n    keep: 2\n")
    with pytest.raises(HwsimError, match=r"p.yaml:4: layers.fc1.keep: must be a number in \(0, 1\], got 2"):
        load_plan(tmp_path / "p.yaml")


def test_device_nodes_and_fifos_are_neither_read_nor_written(tmp_path, capsys):
    """A FIFO given as a trace would hang and a symlink to /dev/zero never end (stat says 0
    bytes): both are refused by name. An output that is a device node is refused too,
    where renaming a temporary file over it would destroy it."""
    import os
    import stat

    fifo = tmp_path / "trace.json"
    os.mkfifo(fifo)
    zero = tmp_path / "arch.yaml"
    zero.symlink_to("/dev/zero")
    for args in (["simulate", str(fifo), "--arch", "systolic-16"], ["simulate", "gemm:8,8,8", "--arch", str(zero)],
                 ["simulate", "gemm:8,8,8", "--arch", "systolic-16", "--format", "csv", "-o", "/dev/full"]):
        from analysis.cli import main
        rc = main(args)
        err = capsys.readouterr().err
        assert rc == 2 and "is not a regular file" in err and err.count("\n") == 1, (args, err)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize("argv,mentions", [
    (["simulate", "gemm:4,4,4", "--arch", "systolic-16", "--batch", "3"], ("--batch does not apply", "gemm:4,4,4")),
    (["simulate", "conv:1,8,8,8,8,3,3", "--arch", "systolic-16", "--batch", "3"], ("--batch does not apply",)),
    (["lower", "lenet300", "--optimizer", "sgd"], ("--optimizer", "--train")),
    (["train", "gpt2", "--gpus", "8", "--tp", "8", "--global-batch", "8", "--microbatch", "1", "--recompute", "none",
      "--schedule", "1f1b"], ("--tp 8", "12 query")),
    (["train", "gpt2", "--gpus", "8", "--seq-len", "0", "--global-batch", "8"], ("--seq-len", "got 0")),
    (["train", "gpt2", "--gpus", "8", "--microbatch", "0", "--global-batch", "8"], ("--microbatch", "got 0")),
    (["train", "gpt2", "--gpus", "8", "--schedule", "interleaved:2", "--global-batch", "8", "--microbatch", "1",
      "--recompute", "none"], ("interleaved:2", "--pp 2")),
])
def test_options_that_do_not_apply_are_refused_not_ignored(capsys, argv, mentions):
    """Each of these ran before and silently ignored (or reinterpreted) the option."""
    refuse(capsys, argv, *mentions)


# ---- a report folder is replaced whole; a write that runs out of room says which file -------------
def _report(out: Path, model: str = "gemm:8,8,8", force: bool = False) -> int:
    return main(["report", model, "--arch", "systolic-16", "-o", str(out), *(["--force"] if force else [])])


def _held(out: Path) -> set[str]:
    """The workloads the report files in ``out`` are of (one, for a whole report)."""
    return {json.loads((out / "summary.json").read_text())["workload"]} | \
        {w for w in ("gemm:8,8,8", "gemm:4,4,4") if w in (out / "report.html").read_text()} | \
        {w for w in ("gemm:8,8,8", "gemm:4,4,4") if w in (out / "summary.csv").read_text()}


def test_a_report_killed_while_written_leaves_the_old_report_whole(tmp_path, capsys, monkeypatch):
    """A kill during ``report -o`` into an old report folder left the new CSVs beside the old
    HTML: the report is now written into a stage beside the folder and swapped in."""
    from analysis import report

    out = tmp_path / "r"
    assert _report(out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def killed(ev, top=40):                       # after ops.csv and the summaries, before the HTML
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plots", killed)
    assert _report(out, "gemm:4,4,4", force=True) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and _held(out) == {"gemm:8,8,8"}
    assert [p.name for p in tmp_path.iterdir()] == ["r"]            # the stage went with the run
    monkeypatch.undo()
    (tmp_path / ".r.hwsim-stage-killed").mkdir()                     # as a kill -9 leaves one
    assert _report(out, "gemm:4,4,4", force=True) == 0
    assert _held(out) == {"gemm:4,4,4"} and sorted(p.name for p in out.iterdir()) == sorted(report.REPORT_FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["r"]            # and the next run removed it
    capsys.readouterr()


def test_a_report_replaces_only_a_report(tmp_path, capsys):
    """The folder is replaced whole, so one holding other files is refused, naming them; a
    folder given through a symbolic link keeps the link."""
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refuse(capsys, ["report", "gemm:8,8,8", "--arch", "systolic-16", "-o", str(out)],
           f"-o {out}: holds files that are not a report's (notes.txt)", "name a new folder")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    assert _report(link) == 0 and _report(link) == 0
    assert link.is_symlink() and (tmp_path / "real" / "report.html").is_file()
    capsys.readouterr()


def test_a_report_folder_whose_parent_is_not_writable_is_written_file_by_file(tmp_path, capsys, monkeypatch):
    """No stage can be made beside the folder (a parent you may not write): the stage goes
    inside it and the files are moved one by one, each whole; a stage a killed run left
    there is removed and not taken for a foreign file."""
    import tempfile

    from workloads import fileio

    made = tempfile.mkdtemp

    def beside_refused(prefix=None, dir=None, **kw):
        if dir is not None and Path(dir) == tmp_path.resolve():
            raise PermissionError(13, "Permission denied", str(dir))
        return made(prefix=prefix, dir=dir, **kw)

    out = tmp_path / "r"
    assert _report(out) == 0
    (out / ".hwsim-stage-killed").mkdir()
    monkeypatch.setattr(fileio.tempfile, "mkdtemp", beside_refused)
    assert _report(out, "gemm:4,4,4", force=True) == 0
    from analysis.report import REPORT_FILES
    assert _held(out) == {"gemm:4,4,4"} and sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["r"]
    capsys.readouterr()


def test_an_output_link_is_written_through_and_a_full_write_names_the_file(tmp_path, capsys, monkeypatch):
    """A symbolic link given as -o is written through (the link stays, its file is replaced),
    never renamed over; a write over the file-size limit is one line naming the file."""
    import resource

    target = tmp_path / "real.csv"
    target.write_text("old")
    (tmp_path / "link.csv").symlink_to(target)
    assert main(["simulate", "gemm:8,8,8", "--arch", "systolic-16", "-o", str(tmp_path / "link.csv")]) == 0
    assert (tmp_path / "link.csv").is_symlink() and target.read_text().startswith("name,")
    (tmp_path / "dev.csv").symlink_to("/dev/full")
    # in process: the refusal is hwsim's check of the path, not the OS's (the file-size limit
    # below is the OS's, so that run keeps its own process)
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "gemm:8,8,8", "--arch", "systolic-16", "-o", "dev.csv"]) == 2
    err = capsys.readouterr().err
    assert "dev.csv: is not a regular file" in err and err.count("\n") == 1, err

    def small() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    # mlp0 is a trace-native zoo model (6 kB of trace JSON, over the 1 kB limit): the write is
    # the same as a torch model's, without importing torch and lowering in the subprocess
    p = subprocess.run([HWSIM, "lower", "mlp0", "-o", "big.json", "--no-cache"], cwd=tmp_path, capture_output=True,
                       text=True, preexec_fn=small)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert p.stderr.startswith("hwsim: error: big.json: cannot be written (File too large): over the file-size "
                               "limit (ulimit -f)"), p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dev.csv", "link.csv", "real.csv"]

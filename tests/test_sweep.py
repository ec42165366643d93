"""Sweeps: 100+ points locally and on a real Dask LocalCluster with the same results; a
killed sweep resumes with no duplicate or lost rows; bad study files are named."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.sweep import load_study, pareto, run_sweep
from workloads import HwsimError

STUDY = """name: shape
models: [mlp1, {model: "gemm:256,512,384:int8"}]
base: systolic-32
grid:
  rows: [8, 16, 32, 64, 128]
  cols: [8, 16, 32, 64, 128]
  dataflow: [ws, os]
"""


def _sorted(df):
    return df.sort_values("id").reset_index(drop=True)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """STUDY swept once locally on two worker processes, into its own folder: the run both
    tests below compare against (neither writes into that folder or changes the frame)."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "s.yaml").write_text(STUDY)
    st = load_study(d / "s.yaml")
    assert len(st.points) == 100
    return run_sweep(st, d / "local", workers=2, progress=False), d / "local"


def test_local_and_dask_agree(tmp_path, local_run):
    local, local_dir = local_run
    (tmp_path / "s.yaml").write_text(STUDY)
    st = load_study(tmp_path / "s.yaml")
    assert len(st.points) == 100
    dask = run_sweep(st, tmp_path / "dask", cluster="local", workers=2, progress=False)
    assert len(local) == len(dask) == 100
    pd.testing.assert_frame_equal(_sorted(local), _sorted(dask))
    front = pd.read_csv(local_dir / "pareto.csv")
    assert set(front.model) == {"mlp1", "gemm:256,512,384:int8"}
    assert (local_dir / "pareto.png").stat().st_size > 0


def test_killed_sweep_resumes_without_duplicates_or_losses(tmp_path, local_run):
    (tmp_path / "s.yaml").write_text(STUDY)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "analysis.cli", "sweep", str(tmp_path / "s.yaml"), "-o", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "points").glob("*.json"))) < 15:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "points").glob("*.json")))
    assert 15 <= done_before < 100, "the sweep should have been killed midway"
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 100 and df.id.is_unique
    clean, _ = local_run              # the same study swept uninterrupted (workers=2)
    pd.testing.assert_frame_equal(_sorted(df), _sorted(clean), check_dtype=False)
    # never a half-written result: every point file parses
    import json
    for f in (out / "points").glob("*.json"):
        json.loads(f.read_text())


@pytest.mark.parametrize("text, message", [
    ("name: x\nmodels: [mlp1]\nbase: systolic-32\ngrid: {rowz: [8]}\n", "grid.rowz: unknown field 'rowz' for SystolicArch; did you mean rows?"),
    ("name: x\nmodels: [mlp1]\nbase: nope\ngrid: {rows: [8]}\n", "base: unknown architecture"),
    ("name: x\nmodels: [mlp1]\nbase: systolic-32\ngrid: {rows: []}\n", "grid.rows: needs a non-empty list"),
    ("name: x\nmodels: [mlp1]\nbase: systolic-32\ngrid: {rows: [0]}\n", "rows: must be a positive number"),
    ("name: x\nbase: systolic-32\ngrid: {rows: [8]}\n", "models: missing; add it (names, or {model, batch, seq_len})"),
    ("name: x\nmodels: [mlp1]\nbase: systolic-32\ngrid: {rows: [8]}\nspeed: fast\n", "speed: unknown field; known: base, energy_table, grid, models, name, random"),
    ("name: x\nmodels: [mlp1]\nbase: systolic-32\ngrid: {rows: [8]}\nrandom: {samples: 0}\n", "random.samples:"),
    ("name: x\nmodels: [mlp1, {model: mlp0}, mlp1]\nbase: systolic-32\ngrid: {rows: [8]}\n",
     "models[2]: the same as models[0] ('mlp1')"),
    ("name: x\nmodels: [mlp1]\nbase: systolic-32\ngrid: {rows: [8, 16, 8]}\n", "grid.rows: 8 is listed twice"),
])
def test_bad_study_files(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(HwsimError) as e:
        load_study(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_random_sample_and_trace_choices(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("name: r\nmodels: [eie-benchmarks]\nbase: eie-64\n"
                 "grid: {num_pes: [16, 32, 64], queue_depth: [2, 8], trace.weight_density: [0.05, 0.1]}\n"
                 "random: {samples: 5, seed: 3}\n")
    st = load_study(p)
    assert len(st.points) == 5
    assert st.points == load_study(p).points        # seeded


def test_pareto_front():
    df = pd.DataFrame({"time_us": [1, 2, 3, 2, 4], "energy_per_sample_uj": [5, 3, 1, 4, 0.5]})
    assert list(pareto(df).index) == [0, 1, 2, 4]
    df["accuracy"] = [0.9, 0.8, 0.7, 0.95, 0.1]
    # with accuracy, point 3 (slower than 0, costlier than 1, but the most accurate) joins the front
    assert set(pareto(df, maximize=("accuracy",)).index) == {0, 1, 2, 3, 4}


def test_a_grid_key_that_changes_nothing_is_named():
    """inert(): a key whose values give the same time and energy with every other key held is
    named; one that moves any point is not (synthetic results, by hand)."""
    import pandas as pd

    from analysis.sweep import inert
    df = pd.DataFrame({"model": ["m"] * 4, "rows": [8, 8, 16, 16], "trace.weight_bits": [8, 16, 8, 16],
                       "time_us": [2.0, 2.0, 1.0, 1.0], "energy_pj": [5.0, 5.0, 4.0, 4.0]})
    assert inert(df, ["rows", "trace.weight_bits"]) == ["trace.weight_bits"]
    df.loc[3, "energy_pj"] = 3.0               # 16 bits now matter at rows 16
    assert inert(df, ["rows", "trace.weight_bits"]) == []


def test_a_point_row_says_what_the_design_made_of_its_trace():
    from analysis.sweep import run_point
    from sim.registry import resolve_arch
    from workloads import resolve
    wl = resolve("gemm:64,64,64")
    row = run_point(resolve_arch("a100"), None, {"model": {"model": "g"}, "design": {"trace.weight_bits": 16,
                                                                                    "trace.act_bits": 16}}, wl)
    assert row["precision_changes"] == "int16 -> int8 (1 ops)" and row["sparsity_ignored_ops"] == 0


def test_a_sweep_point_keeps_the_sm_main_loops_off_disk_when_told(tmp_path, monkeypatch):
    """A sweep's worker does not inherit --no-cache's setting: run_point is told (cache=False)
    and writes no stepped SM main loop; told nothing, it keeps them in the cache folder."""
    from analysis.sweep import run_point
    from sim.gpu import gemm
    from sim.gpu.sm import mainloop
    from sim.registry import resolve_arch
    from workloads import resolve
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path))
    wl = resolve("gemm:96,96,96")
    point = {"model": {"model": "g"}, "design": {}}
    for cache, written in ((False, False), (True, True)):
        mainloop._run.cache_clear()
        gemm.gemm_time.cache_clear()
        run_point(resolve_arch("t4"), None, point, wl, cache)
        assert bool(list(tmp_path.rglob("*.sm.json"))) is written
    mainloop._run.cache_clear()
    gemm.gemm_time.cache_clear()

"""Outputs that fit: the terminal table within 120 columns in engineering units, --columns,
files in csv/json/parquet, and the Python API (hwsim.simulate(...).to_frame())."""

from __future__ import annotations

import doctest
import importlib.util
import json

import pandas as pd
import pytest

import hwsim
from analysis.cli import main
from analysis.table import eng, render


def _run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_engineering_units():
    assert [eng(v) for v in (0, 7, 9999, 10000, 7547.0, 118013952, 1.606e6, 3.35e9, 0.1414, 2.5, None)] == \
        ["0", "7", "9999", "10k", "7547", "118M", "1.61M", "3.35G", "0.141", "2.5", ""]


def test_render_drops_constant_columns_and_fits():
    rows = [{"name": "a" * 60, "op": "linear", "precision": "int8", "cycles": 123456},
            {"name": "b", "op": "relu", "precision": "int8", "cycles": 7}]
    text = render(rows, ["name", "op", "precision", "cycles"], width=30)
    lines = text.splitlines()
    assert lines[0] == "(all rows: precision int8)"
    assert max(len(x) for x in lines[1:]) <= 30 and "~" in lines[2] and "123k" in lines[2]


def test_simulate_resnet50_on_a100_fits_120_columns(capsys):
    rc, out, err = _run(capsys, "simulate", "resnet50", "--arch", "a100")
    assert rc == 0, err
    lines = out.splitlines()
    assert max(len(x) for x in lines) <= 120
    assert "e+" not in out                                  # no 1e+04-style numbers
    head = next(x for x in lines if x.startswith("name")).split()
    assert head[:3] == ["name", "op", "macs"] and "util" in head
    assert lines[1].startswith("precision changed by a100: fp32 -> fp16 on 174 of 174 ops")
    total = next(x for x in lines if x.startswith("TOTAL")).split()
    assert total[-1].endswith("G")                          # energy_pj of the whole network in pJ: G


def test_columns_chooses_and_refuses(capsys):
    rc, out, _ = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "--columns", "name,cycles,utilization")
    assert rc == 0 and out.splitlines()[2].split() == ["name", "cycles", "util"]
    rc, _, err = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "--columns", "name,nope")
    assert rc == 2 and "--columns: no column 'nope'" in err and "utilization" in err


def test_simulate_writes_csv_and_json_files(capsys, tmp_path):
    for fmt in ("csv", "json"):
        f = tmp_path / f"r.{fmt}"
        rc, out, err = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "--format", fmt, "-o", str(f))
        assert rc == 0, err
        df = pd.read_csv(f) if fmt == "csv" else pd.DataFrame(json.loads(f.read_text()))
        assert list(df.name) == [x for i in range(5) for x in (f"fc{i}", f"fc{i}.relu")] + ["TOTAL"]
        # one op at a time on the TPU, each reading the one before: no drain overlaps
        assert df.cycles.iloc[-1] == df.cycles.iloc[:-1].sum()
    rc, _, err = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "-o", str(tmp_path / "t.txt"))
    assert rc == 2 and "t.txt: name a .csv, .json or .parquet file, or pass --format" in err
    rc, _, err = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "-o", str(tmp_path / "s.csv"))  # from the suffix
    assert rc == 0 and pd.read_csv(tmp_path / "s.csv").equals(pd.read_csv(tmp_path / "r.csv"))


def test_parquet_needs_a_file_and_pyarrow(capsys, tmp_path, monkeypatch):
    rc, _, err = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "--format", "parquet")
    assert rc == 2 and "-o FILE.parquet" in err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pyarrow" else real(n, *a))
    rc, _, err = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "--format", "parquet", "-o",
                      str(tmp_path / "r.parquet"))
    assert rc == 2 and "pip install -e '.[parquet]'" in err and not (tmp_path / "r.parquet").exists()


def test_parquet_round_trip(capsys, tmp_path):
    pytest.importorskip("pyarrow")       # the parquet extra
    f = tmp_path / "r.parquet"
    rc, _, err = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "--format", "parquet", "-o", str(f))
    assert rc == 0, err
    df = pd.read_parquet(f)
    assert df.name.tolist()[-1] == "TOTAL" and df.macs.iloc[0] == 800_000_000


def test_python_api_doc_examples():
    assert doctest.testmod(hwsim).failed == 0


def test_python_api_matches_the_cli(capsys):
    ev = hwsim.simulate("mlp0", "tpu-v1")
    df = ev.to_frame()
    rc, out, _ = _run(capsys, "simulate", "mlp0", "--arch", "tpu-v1", "--format", "csv")
    cli = pd.read_csv(__import__("io").StringIO(out))
    assert df.cycles.tolist() == cli.cycles.iloc[:-1].tolist()
    assert df.energy_pj.sum() == pytest.approx(cli.energy_pj.iloc[-1], rel=1e-9)
    assert ev.summary()["cycles"] == cli.cycles.iloc[-1]
    assert "tpu-v1" in hwsim.presets()


def test_the_readme_python_lines_run():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("    import hwsim\n", 1)[1].split("\n\n", 1)[0]
    code = "import hwsim\n" + "\n".join(line[4:].split("  #")[0] for line in block.splitlines())
    scope: dict = {}
    exec(code, scope)
    assert scope["df"].shape[0] == 174 and scope["ev"].summary()["design"] == "a100"


def test_the_summary_says_how_precision_changed(capsys):
    rc, out, _ = _run(capsys, "simulate", "cnn0", "--arch", "tpu-v1")      # an int8 TPU-paper trace
    assert rc == 0 and out.splitlines()[1].startswith("precision: as the trace states")
    ev = hwsim.simulate("gemm:64,64,64", "tpu-v1")                          # an fp32 ad-hoc GEMM
    assert ev.precision_changes() == {"fp32 -> int8": 1}
    assert ev.summary()["precision_policy"].startswith("GEMM operands as int8")
    rc, out, _ = _run(capsys, "simulate", "gemm:64,64,64", "--arch", "a100", "--precision", "tf32")
    assert rc == 0 and "precision changed by a100: fp32 -> tf32 on 1 of 1 ops" in out
    rc, out, _ = _run(capsys, "archs", "--precision")
    assert rc == 0 and out.count("precision:") == len(hwsim.presets())


def test_a_lowering_reports_its_progress():
    """The CLI's 'lowering MODEL: N ops' counter is fed by workloads.progress.ON_OP."""
    from workloads.progress import ON_OP
    from workloads.spec import resolve

    seen: list[int] = []
    token = ON_OP.set(seen.append)
    try:
        wl = resolve("lenet300", cache=False)
    finally:
        ON_OP.reset(token)
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= len(wl.ops)


def test_long_loops_report_their_steps(tmp_path):
    """scalesim layers and EIE study layers tick workloads.progress.step (the CLI's counters)."""
    from pathlib import Path

    from sim.eie import PRESETS, study
    from sim.scalesim import compat as ss
    from workloads.progress import STEP

    n = [0]
    token = STEP.set(lambda: n.__setitem__(0, n[0] + 1))
    try:
        ex = Path(__file__).resolve().parents[1] / "examples" / "scalesim"
        _, layers, _ = ss.run(ex / "scale.cfg", ex / "topology.csv")
        assert n[0] == len(layers) == 3
        # one tick per GEMM layer (a small sparse MLP: the count, not the layers' size, is checked;
        # the element-wise op between them is no layer of the study)
        from workloads.build import gemm_op, vector_op
        from workloads.trace import Workload
        wl = Workload("mlp", (gemm_op("fc1", 1, 256, 512, bits=16, dtype="fixed", weight_density=0.1),
                              vector_op("relu", "activation", "relu", 256),
                              gemm_op("fc2", 1, 100, 256, bits=16, dtype="fixed", weight_density=0.1)))
        rows = study.queue_depth(wl, PRESETS["eie-64"], depths=(1, 2))
        assert n[0] == 3 + 2 and {r["layer"] for r in rows} == {"fc1", "fc2"}
    finally:
        STEP.reset(token)


def test_shortened_op_names_stay_distinct():
    from analysis.table import render
    names = [f"optimizer.encoder.layer.{i}.attention.self.query.weight" for i in range(12)] + ["fc"]
    rows = [{"name": n, "op": "adam", "macs": i, "cycles": 10 * i, "energy_pj": 1e6 * i} for i, n in enumerate(names)]
    lines = render(rows, ["name", "op", "macs", "cycles", "energy_pj"], width=60).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("name "))
    shown = [line.split()[0] for line in lines[head + 1:]]
    assert len(shown) == len(names) and len(set(shown)) == len(names)
    assert max(len(s) for s in shown) < max(len(n) for n in names)          # still shortened
    assert any("~" in s for s in shown) and shown[-1] == "fc"

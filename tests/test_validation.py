"""The validation corpus: its rows, their schema, the accuracy figures, ``hwsim validate``.

The corpus itself (every domain against its tolerances) runs after pytest in CI as
``hwsim validate --check --readme README.md``; here the fast domains run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from analysis.cli import main
from validation import DOMAINS, load_rows, load_tolerances
from validation.base import Unsupported, check_row
from validation.run import Outcome, failures, readers, run_rows, stats
from validation.schema import COLUMNS, Row, Tolerance, read_rows

ROOT = Path(__file__).resolve().parents[1]
HEADER = ",".join(COLUMNS)
GOOD = 'x-1,gpu,"gemm:64,64,64",h100,precision=fp16,time_us,5.0,us,check,Someone et al. 2024 Table 1,,'


def test_the_corpus_has_150_check_points_with_sources_in_every_domain():
    rows = load_rows()
    checks = [r for r in rows if r.role == "check"]
    assert len(checks) >= 150
    assert {r.domain for r in checks} == set(DOMAINS)
    assert all(len(r.source) >= 8 for r in rows)
    assert len({r.id for r in rows}) == len(rows)
    table = readers()
    for r in rows:                      # every row names a quantity, unit and options its reader answers
        check_row(table[r.domain], r)
    # every fit row says which constant came from it
    assert all(r.note for r in rows if r.role == "fit")


def test_every_domain_has_a_tolerance_with_a_reason():
    tol = load_tolerances()
    assert set(tol) == set(DOMAINS)
    assert all(t.why for t in tol.values())


@pytest.mark.parametrize("text,message", [
    ("id,domain\nx,gpu", "header must be exactly"),
    (HEADER + "\n" + GOOD.replace(",gpu,", ",tpu,"), "domain"),
    (HEADER + "\n" + GOOD.replace(",5.0,", ",-5,"), "value"),
    (HEADER + "\n" + GOOD.replace("precision=fp16", "precision"), "options"),
    (HEADER + "\n" + GOOD.replace("precision=fp16", "precision=fp16 precision=bf16"), "given twice"),
    (HEADER + "\n" + GOOD.replace(",check,", ",maybe,"), "role"),
    (HEADER + "\n" + GOOD.replace("Someone et al. 2024 Table 1", "x"), "source"),
    (HEADER + "\n" + GOOD.rstrip(","), "expected 12 fields"),
])
def test_a_bad_row_is_refused_in_one_line_naming_file_line_and_field(text, message):
    with pytest.raises(Exception) as e:
        read_rows(text, "t.csv")
    assert message in str(e.value) and "\n" not in str(e.value)
    if "header" not in message:
        assert str(e.value).startswith("t.csv:2:")


@pytest.mark.parametrize("change,message", [
    (("time_us", "watts"), "quantity 'watts'"),
    ((",us,", ",ms,"), "unit 'ms'"),
    (("precision=fp16", "precision=fp16 colour=red"), "option 'colour'"),
])
def test_a_row_its_reader_cannot_read_is_refused_before_anything_runs(change, message):
    row = read_rows(HEADER + "\n" + GOOD.replace(*change), "t.csv")[0]
    with pytest.raises(Exception, match=message):
        run_rows([row])


def test_duplicate_ids_across_files_are_refused(tmp_path):
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text(HEADER + "\n" + GOOD + "\n")
    with pytest.raises(Exception, match="b.csv:2: id 'x-1' is also at a.csv:2"):
        load_rows(tmp_path)


def _row(i: str, value: float, role: str = "check", domain: str = "gpu") -> Row:
    return Row(id=i, domain=domain, model="gemm:8,8,8", design="h100", quantity="time_us", value=value, unit="us",
               role=role, source="a published table")


def test_accuracy_figures_by_hand_leave_out_fit_and_unrun_rows():
    outs = [Outcome(_row("a", 10.0), "ok", 11.0),        # +10%
            Outcome(_row("b", 10.0), "ok", 8.0),         # -20%
            Outcome(_row("c", 10.0), "ok", 20.0),        # +100%
            Outcome(_row("d", 10.0, "fit"), "ok", 50.0),  # a fit row: never counted
            Outcome(_row("e", 10.0), "unsupported", reason="missing mechanism")]
    (s,) = stats(outs)
    assert s.points == 3 and s.fit_points == 1 and s.not_run == 1
    assert s.geomean == pytest.approx((1.1 * 0.8 * 2.0) ** (1 / 3))
    assert s.mape_pct == pytest.approx((10 + 20 + 100) / 3)
    assert s.within10 == pytest.approx(1 / 3) and s.within25 == pytest.approx(2 / 3)
    assert s.worst_id == "c" and s.worst_ratio == pytest.approx(2.0)
    tol = {"gpu": Tolerance(geomean=(0.9, 1.1), mape_max=30, within25_min=0.8, min_points=3, why="test")}
    bad = failures([s], tol)
    assert len(bad) == 3 and "geomean" in bad[0] and "mean absolute error" in bad[1] and "within 25%" in bad[2]


def test_energy_table_rows_read_the_tables_yaml():
    """The Horowitz rows are the table's own source (role fit): the reader returns the
    YAML's numbers, read here independently."""
    doc = yaml.safe_load((ROOT / "analysis/tables/horowitz45.yaml").read_text())
    rows = {r.id: r for r in load_rows() if r.domain == "energy"}
    by_model = {r.model: r for r in rows.values() if r.design == "horowitz45" and r.quantity == "pj_per_op"
                and "node_nm" not in r.options}
    assert by_model and all(r.role == "fit" for r in by_model.values())
    for o in run_rows(by_model.values()):
        assert o.model == pytest.approx(doc["ops"][o.row.model]), o.row.id
    # a node-scaled check row: Dennard scaling of the 45 nm figure, E ~ L V^2 (Horowitz's 0.9 V ->
    # PTM-MG's nominal 0.7 V at 7 nm)
    r7 = next(r for r in rows.values() if r.options.get("node_nm") == "7" and r.model == "mul.fp32")
    (o,) = run_rows([r7])
    assert o.model == pytest.approx(3.7 * (7 / 45) * (0.7 / 0.9) ** 2)


def test_attention_rows_count_flops_as_flashattention_does():
    """FlashAttention's benchmark: forward 4 B H L^2 E FLOPs, halved when causal, backward
    2.5x; the reader's TFLOP/s is that over the simulated kernel time."""
    import hwsim
    from validation.gpu import attention_workload
    text = HEADER + "\n" + 'a,gpu,"attention:2,4,1024,64",h100,causal=1 backward=both precision=fp16,tflops,100,' \
        'TFLOP/s,check,Someone et al. 2024 Fig. 1,,'
    (o,) = run_rows(read_rows(text, "t.csv"))
    t = sum(hwsim.simulate(attention_workload(2, 4, 1024, 64, 1, b), "h100", precision="fp16").summary()["time_us"]
            for b in (0, 1))
    assert o.model == pytest.approx(4 * 2 * 4 * 1024 ** 2 * 64 / 2 * 3.5 / (t * 1e-6) / 1e12)


def test_rows_hwsim_cannot_express_are_listed_with_the_reason():
    rows = {r.id: r for r in load_rows()}
    # the input stalls of a design without a host link (systolic-32: inputs already on chip)
    no_host = rows["tpu-t3-mlp0-input-stall"].model_copy(update={"id": "no-host", "design": "systolic-32"})
    # a ZigZag workload hwsim has no zoo model for
    other = rows["zz-tpu-like-alexnet-total-cycles"].model_copy(update={"id": "other", "model": "zigzag-onnx:vgg19"})
    outs = {o.row.id: o for o in run_rows([no_host, other])}
    assert outs["no-host"].status == "unsupported" and "host link" in outs["no-host"].reason
    assert outs["other"].status == "unsupported" and "zigzag-onnx:alexnet" in outs["other"].reason
    with pytest.raises(Unsupported):
        readers()["systolic"].measure(no_host)


def test_validate_runs_fast_domains_writes_the_page_and_checks_tolerances(tmp_path, capsys):
    rc = main(["validate", "--domain", "systolic", "--domain", "spatial", "--check", "-o", str(tmp_path)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "systolic" in out.out and "spatial" in out.out and "worst check points" in out.out
    for name in ("rows.csv", "summary.json", "systolic.png", "spatial.png", "index.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "systolic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {d["domain"] for d in summary["domains"]} == {"systolic", "spatial"}
    n = sum(r.domain in ("systolic", "spatial") for r in load_rows())
    assert len((tmp_path / "rows.csv").read_text().strip().splitlines()) == n + 1
    page = (tmp_path / "index.html").read_text()
    assert "data:image/png;base64," in page and "tpu-t3-mlp0-tops" in page


def test_validate_json_carries_every_row_and_its_ratio(capsys):
    assert main(["validate", "--domain", "systolic", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = [r for r in doc["rows"] if r["status"] == "ok"]
    assert rows and all(math.isclose(r["ratio"], r["hwsim"] / r["published"]) for r in rows)


@pytest.mark.parametrize("args,message", [
    (["--domain", "tpu"], "Invalid value for '--domain'"),
    (["--readme", "README.md"], "--readme does something only with --check or --write-readme"),
    (["--write-readme"], "--write-readme needs --readme FILE"),
])
def test_validate_refuses_options_that_do_not_apply(args, message, capsys):
    rc = main(["validate", *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def test_the_readme_has_the_accuracy_section():
    text = (ROOT / "README.md").read_text()
    from validation.report import BEGIN, END
    assert text.index(BEGIN) < text.index(END)
    assert "hwsim validate --check --readme README.md" in text


def test_the_documented_row_loads_and_runs():
    """docs/formats.md's example row is a row the schema and its reader take."""
    import re
    doc = (ROOT / "docs" / "formats.md").read_text()
    block = re.search(r"```\n# validation row\n(.*?)```", doc, re.S)
    assert block is not None
    (o,) = run_rows(read_rows(block.group(1), "formats.md"))
    assert o.status == "ok" and o.row.role == "check" and (o.model or 0) > 0


def test_every_calibrated_gpu_constant_names_its_fit_rows_and_they_are_marked_fit():
    from sim.gpu.constants import CONSTANTS, FIT_ROWS
    rows = {r.id: r for r in load_rows()}
    names = {c.name for c in CONSTANTS}
    assert set(FIT_ROWS) <= names
    for name, ids in FIT_ROWS.items():
        for i in ids:
            assert rows[i].role == "fit", (name, i)
    named = {i for ids in FIT_ROWS.values() for i in ids}
    assert {r.id for r in rows.values() if r.role == "fit" and r.domain == "gpu"} == named
    assert all(c.name in FIT_ROWS for c in CONSTANTS if c.kind == "calibration" and c.name.startswith(("h100.", "a100.")))


def test_check_closes_with_a_passed_failed_line(capsys):
    assert main(["validate", "--domain", "systolic", "--check"]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == "validate: 1 passed, 0 failed"

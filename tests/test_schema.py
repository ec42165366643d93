"""Declared schemas (issue 33): ``hwsim schema KIND`` against the files hwsim reads, checked
with an independent validator (jsonschema); the ranges declared on description fields
enforced; and a fuzz suite: any architecture file the schema accepts simulates or is
refused in one line, and every file it refuses hwsim refuses too."""

from __future__ import annotations

import dataclasses
import glob
import json
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import HealthCheck, given, settings, strategies as st

from analysis.cli import main
from analysis.schemas import kinds, schema
from sim.registry import families
from workloads.errors import HwsimError

ROOT = Path(__file__).resolve().parent.parent


def _valid(kind_or_schema, doc) -> bool:
    s = schema(kind_or_schema) if isinstance(kind_or_schema, str) else kind_or_schema
    return jsonschema.Draft202012Validator(s).is_valid(doc)


def test_every_schema_is_a_valid_json_schema_and_the_command_prints_it(capsys):
    for kind in kinds():
        jsonschema.Draft202012Validator.check_schema(schema(kind))
    assert main(["schema", "eie"]) == 0
    assert json.loads(capsys.readouterr().out) == schema("eie")
    assert main(["schema", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one of arch, systolic, eie, gpu, spatial, system, trace, plan, study, energy, zigzag" in err


def test_the_files_hwsim_ships_are_valid():
    for family, (_, presets) in families().items():
        for name in presets:
            assert _valid(family, {"base": name}) and _valid("arch", {"base": name})
    arch_files = [p for p in glob.glob(str(ROOT / "examples" / "*.yaml"))
                  if "base" in yaml.safe_load(open(p)) and "grid" not in yaml.safe_load(open(p))]     # not the study
    assert len(arch_files) >= 3
    for p in arch_files:
        assert _valid("arch", yaml.safe_load(open(p))), p
    plans = glob.glob(str(ROOT / "workloads/compress/plans/*.yaml")) + [str(ROOT / "examples/plan.yaml")]
    for p in plans:
        assert _valid("plan", yaml.safe_load(open(p))), p
    assert _valid("study", yaml.safe_load(open(ROOT / "examples/study.yaml")))
    tables = glob.glob(str(ROOT / "analysis/tables/*.yaml")) + [str(ROOT / "examples/zigzag_tpu_like_energy.yaml")]
    assert len(tables) >= 3
    for p in tables:
        assert _valid("energy", yaml.safe_load(open(p))), p
    for p in glob.glob(str(ROOT / "examples/zigzag/*.yaml")):
        doc = yaml.safe_load(open(p))
        assert _valid("zigzag-mapping" if isinstance(doc, list) else "zigzag-hardware", doc), p


ZIGZAG = Path("/work/venvs/zigzag/lib/python3.11/site-packages/zigzag/inputs")


@pytest.mark.skipif(not ZIGZAG.is_dir(), reason="ZigZag 3.9.1's stock files are read from its venv where present")
def test_zigzags_stock_files_are_valid_by_its_own_validator_and_ours():
    """Every stock ZigZag file ZigZag's own cerberus validator accepts (it is run in ZigZag's
    venv) is valid against hwsim's declared schema (duplicate YAML keys aside: the JSON view
    keeps the last)."""
    import subprocess
    code = ("import sys, yaml, json; from zigzag.parser.accelerator_validator import AcceleratorValidator as A; "
            "from zigzag.parser.mapping_validator import MappingValidator as M; out = {}\n"
            "for p in sys.argv[1:]:\n d = yaml.safe_load(open(p)); v = (M if isinstance(d, list) else A)(d)\n"
            " out[p] = bool(v.validate())\nprint(json.dumps(out))")
    files = sorted(glob.glob(str(ZIGZAG / "hardware/*.yaml")) + glob.glob(str(ZIGZAG / "mapping/*.yaml")))
    run = subprocess.run([str(ZIGZAG.parents[4] / "bin/python"), "-c", code, *files], capture_output=True, text=True)
    if run.returncode:
        pytest.skip(f"ZigZag's validator did not run: {run.stderr[-300:]}")
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    assert sum(theirs.values()) >= 20
    for p, ok in theirs.items():
        doc = yaml.safe_load(open(p))
        ours = _valid("zigzag-mapping" if isinstance(doc, list) else "zigzag-hardware", doc)
        assert ours == ok or (ok and not ours and "imc" in p), p
    assert _valid("study", {"model": "mlp0", "base": "tpu-v1", "grid": {"rows": [8]}})
    assert not _valid("study", {"models": ["mlp0"], "base": "tpu-v1", "grid": {"trace.weight_bits": [0]}})
    from sim.system.topology import PRESETS
    for name in PRESETS:
        assert _valid("system", {"base": name, "nodes": 2, "intra": {"bandwidth_gbs": 300}})


def test_a_written_trace_is_valid_and_its_version_1_fixture_too(tmp_path, capsys):
    from workloads.trace_doc import json_schema
    t = tmp_path / "t.json"
    assert main(["lower", "lenet5", "-o", str(t)]) == 0
    capsys.readouterr()
    doc = json.loads(t.read_text())
    assert _valid("trace", doc)
    for bad in ({**doc, "opps": []}, {**doc, "batch": 0},
                {**doc, "ops": [{**doc["ops"][0], "kind": "fft"}]},
                {**doc, "ops": [{**doc["ops"][0], "operands": [{**doc["ops"][0]["operands"][0], "densty": 1}]}]}):
        assert not _valid("trace", bad)
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(bad))
        assert main(["simulate", str(p), "--arch", "systolic-16"]) == 2     # the reader refuses what the schema does
        assert capsys.readouterr().err.count("\n") == 1
    for v1 in glob.glob(str(ROOT / "tests/fixtures/trace_v1/*.json")):
        assert jsonschema.Draft202012Validator(json_schema(1)).is_valid(json.loads(Path(v1).read_text())), v1


@pytest.mark.parametrize("doc,words", [
    ({"base": "systolic-32", "rwos": 4}, ["rwos: unknown field", "did you mean rows?"]),
    ({"base": "systolic-32", "rows": 0}, ["rows: must be a positive number, got 0"]),
    ({"base": "systolic-32", "dataflow": "rs"}, ["dataflow: must be one of ws, os, is, got 'rs'"]),
    ({"base": "eie-64", "index_bits": 17}, ["index_bits: must be <= 16, got 17"]),
    ({"base": "a100", "layout": "chwn"}, ["layout: must be one of nhwc, nchw, got 'chwn'"]),
    ({"base": "a100", "tc_fma_per_clk": {"fp16": 0}}, ["tc_fma_per_clk.fp16: must be >= 1e-06, got 0"]),
    ({"base": "eyeriss-like", "timing": "fast"}, ["timing: must be one of analytical, stepped, got 'fast'"]),
])
def test_schema_and_reader_refuse_the_same_file(tmp_path, capsys, doc, words):
    assert not _valid("arch", doc)
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(doc))
    assert main(["simulate", "gemm:8,8,8", "--arch", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(p) in err, err
    for w in words:
        assert w in err, (w, err)


def _bounds(t) -> list:
    return [m for m in typing.get_args(t)[1:] if isinstance(m, (Gt, Ge, Lt, Le))] \
        if typing.get_origin(t) is typing.Annotated else []


def test_every_declared_bound_is_enforced_at_both_ends():
    """For each numeric field with a declared range, on each family's first preset: the
    value just outside each bound is refused naming the field."""
    checked = 0
    for family, (cls, presets) in families().items():
        base = next(iter(presets.values()))
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            for b in _bounds(hints[f.name]):
                is_int = typing.get_args(hints[f.name])[0] is int
                lim = getattr(b, {Gt: "gt", Ge: "ge", Lt: "lt", Le: "le"}[type(b)])
                step = 1 if is_int else 1e-9 * max(1.0, abs(lim))
                bad = {Gt: lim, Ge: lim - step, Lt: lim, Le: lim + step}[type(b)]
                bad = int(bad) if is_int else float(bad)
                with pytest.raises(HwsimError, match=rf"^{f.name}: must be"):
                    dataclasses.replace(base, **{f.name: bad})
                checked += 1
    assert checked >= 40


def test_the_declared_node_range_is_the_energy_models():
    from analysis.energy import NODE_RANGE_NM
    from sim.archbase import Nm
    ge, le = typing.get_args(Nm)[1:]
    assert (ge.ge, le.le) == tuple(NODE_RANGE_NM)


# ---- fuzz: any document the schema accepts simulates or is refused in one line -----------------
def _value(prop: dict) -> st.SearchStrategy:
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    t = prop.get("type")
    if t == "integer":
        lo = prop.get("minimum", prop.get("exclusiveMinimum", -1) + 1)
        return st.integers(lo, min(prop.get("maximum", 4096), lo + 4096))
    if t == "number":
        lo = prop.get("minimum", prop.get("exclusiveMinimum", 0))
        hi = min(prop.get("maximum", 1e4), 1e4)
        return st.floats(lo, hi, exclude_min="exclusiveMinimum" in prop, allow_nan=False)
    if t == "boolean":
        return st.booleans()
    return st.nothing()


@st.composite
def _arch_docs(draw):
    family = draw(st.sampled_from(["systolic", "eie", "gpu", "spatial"]))
    s = schema(family)
    props = {k: v for k, v in s["properties"].items()
             if k not in ("base", "name", "source", "energy_table", "energy_source") and _value(v) is not st.nothing()}
    keys = draw(st.lists(st.sampled_from(sorted(props)), min_size=1, max_size=4, unique=True))
    doc = {"base": draw(st.sampled_from(s["properties"]["base"]["enum"]))}
    for k in keys:
        doc[k] = draw(_value(props[k]))
    return family, doc


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(_arch_docs())
def test_an_arch_file_the_schema_accepts_simulates_or_is_refused_in_one_line(tmp_path, capsys, drawn):
    family, doc = drawn
    assert _valid("arch", doc) and _valid(family, doc)
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(doc))
    from sim import budget
    with budget.limited(max_time_s=20):
        rc = main(["simulate", "gemm:16,16,16", "--arch", str(p), "--format", "json"])
    out, err = capsys.readouterr()
    assert rc in (0, 2), err
    if rc == 2:
        assert err.startswith("hwsim: error: ") and err.count("\n") == 1 and str(p) in err, err
    else:
        assert json.loads(out)


def test_the_formats_doc_shows_what_the_command_prints():
    doc = (ROOT / "docs" / "formats.md").read_text()
    block = doc.split("$ hwsim schema systolic | head -12\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == json.dumps(schema("systolic"), indent=2).splitlines()[:12]


def _zz_first_memory(d):
    return next(iter(d["memories"].values()))


@pytest.mark.parametrize("edit,words", [
    (lambda d: _zz_first_memory(d).__setitem__("r_cots", 1.0), ["r_cots: unknown field", "did you mean r_cost?"]),
    (lambda d: _zz_first_memory(d).pop("r_cost"), ["r_cost: missing; add it", "no CACTI cost extraction"]),
    (lambda d: d["operational_array"].__setitem__("is_imc", True),
     ["operational_array.is_imc: must be False, got True", "in-memory-compute arrays are not modelled"]),
    (lambda d: _zz_first_memory(d)["ports"][0].__setitem__("type", "rw"),
     ["ports[0].type: unknown type 'rw'; one of 'read', 'write', 'read_write'"]),
    (lambda d: _zz_first_memory(d).__setitem__("size", "1kB"), ["size: must be an integer >= 1, got '1kB'"]),
])
def test_a_bad_zigzag_file_is_refused_by_the_schema_and_the_reader(tmp_path, capsys, edit, words):
    doc = yaml.safe_load(open(ROOT / "examples/zigzag/eyeriss_like.yaml"))
    edit(doc)
    assert not _valid("zigzag-hardware", doc)
    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["simulate", "gemm:8,8,8", "--arch", f"zigzag:{p}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{p}:" in err, err
    for w in words:
        assert w in err, (w, err)

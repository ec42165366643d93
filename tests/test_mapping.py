"""Per-op mapping search (``analysis.mapping``): on every ResNet-18 layer the search's choice
is at least as good as each fixed dataflow, priced independently here; it is reproducible
and breaks ties by the documented order."""

import dataclasses

import pytest

from analysis.cli import main
from analysis.energy import load_table, op_energy
from analysis.mapping import search
from sim.systolic import PRESETS, simulate
from workloads import HwsimError, resolve


@pytest.fixture(scope="module")
def r18():
    return resolve("resnet18")


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
def test_search_beats_or_equals_every_fixed_dataflow_on_every_layer(r18, objective):
    arch = PRESETS["systolic-32"]
    table = load_table("horowitz45").at_node(arch.technology_nm)
    res, choices = search(r18, arch, table, objective)
    levels = arch.memory_levels()

    def score(r):
        e = op_energy(r, levels, table, 0.0).total_pj
        return {"latency": r.cycles, "energy": e, "edp": e * r.cycles}[objective]

    fixed = {df: simulate(r18, dataclasses.replace(arch, dataflow=df)).ops for df in ("ws", "os", "is")}
    for i, (op, got) in enumerate(zip(r18.ops, res.ops)):
        best = min(score(fixed[df][i]) for df in fixed)
        assert score(got) <= best * (1 + 1e-12), (op.name, objective)
        assert got.extra.dataflow == choices[i].family
    # the whole run is no slower (latency) than the best single dataflow: one op at a time
    if objective == "latency":
        assert res.cycles <= min(sum(r.cycles for r in ops) for ops in fixed.values())
    # and it is not trivially one family: conv1 (3 input channels) leaves ws's rows idle
    if objective == "latency":
        assert choices[0].op == "conv1" and choices[0].family != "ws"


def test_search_is_reproducible_and_breaks_ties_by_order(r18):
    arch = PRESETS["systolic-32"]
    table = load_table("horowitz45").at_node(arch.technology_nm)
    a = [c.family for c in search(r18, arch, table, "edp")[1]]
    b = [c.family for c in search(r18, arch, table, "edp")[1]]
    assert a == b
    # a vector op costs the same in every dataflow: the tie goes to ws, listed first
    assert all(f == "ws" for op, f in zip(r18.ops, a) if not op.is_gemm)


def test_search_is_refused_where_there_is_nothing_to_search(capsys):
    from sim.gpu import PRESETS as GPUS

    with pytest.raises(HwsimError, match="have one mapping"):
        search(resolve("gemm:64,64,64"), GPUS["a100"], load_table("horowitz45"))
    assert main(["simulate", "gemm:64,64,64", "--arch", "a100", "--mapping", "search"]) == 2
    assert "have one mapping" in capsys.readouterr().err
    assert main(["simulate", "resnet18", "--arch", "systolic-32", "--mapping", "search", "--objective", "latency",
                 "--columns", "name,cycles,dataflow"]) == 0
    assert "best dataflow for latency" in capsys.readouterr().out


def test_the_python_api_takes_the_search_as_the_cli_does(r18):
    import hwsim

    ev = hwsim.simulate("resnet18", "systolic-32", mapping="search", objective="latency")
    arch = PRESETS["systolic-32"]
    res, _ = search(r18, arch, load_table("horowitz45").at_node(arch.technology_nm), "latency")
    assert ev.result.cycles == res.cycles < hwsim.simulate("resnet18", "systolic-32").result.cycles


def test_a_study_sweeps_the_mapping_search(tmp_path):
    import csv

    (tmp_path / "s.yaml").write_text("name: m\nmodels: [resnet18]\nbase: systolic-32\n"
                                     "grid: {rows: [16, 32], mapping: [fixed, search], objective: [latency]}\n")
    assert main(["sweep", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "o")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "o" / "results.csv")))
    cyc = {(r["rows"], r["mapping"]): int(float(r["cycles"])) for r in rows}
    for n in ("16", "32"):                   # per design, the search is never slower
        assert cyc[(n, "search")] <= cyc[(n, "fixed")]
    assert cyc[("32", "fixed")] == simulate(resolve("resnet18"), PRESETS["systolic-32"]).cycles
    (tmp_path / "g.yaml").write_text("models: [mlp0]\nbase: a100\ngrid: {mapping: [search]}\n")
    with pytest.raises(HwsimError, match="grid.mapping: --mapping search: gpu designs"):
        from analysis.sweep import load_study
        load_study(tmp_path / "g.yaml")

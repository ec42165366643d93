"""The Machine interface: every preset implements it, a new machine joins through the public
registry in one file, static power travels with the description, sim/ never loads torch,
and descriptions are immutable and validated field by field."""

import dataclasses
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.report import evaluate
from sim import registry
from sim.archbase import Clock, Nm, PositiveInt, check_fields
from sim.machine import Machine, MemoryLevel, Peaks, describe_fields
from sim.result import OpResult, run_ops
from sim.systolic import PRESETS as SYS, SystolicArch
from workloads import HwsimError, resolve
from workloads.build import conv_op, gemm_op, vector_op
from workloads.trace import Operand, Workload, chain


# ---- a toy machine, added from outside hwsim ----------------------------------------------------
@dataclass(frozen=True)
class ScalarArch:
    """One multiply-accumulate unit (``macs_per_cycle`` of them), one element op per cycle, and
    every operand byte read from DRAM. Simple enough to price by hand."""

    family: ClassVar[str] = "toy"
    uses_weight_values: ClassVar[bool] = False
    name: str = "toy-1"
    macs_per_cycle: PositiveInt = 1        # ranges declared with the type, enforced by check_fields
    clock_mhz: Clock = 100.0
    technology_nm: Nm = 45
    static_power_w: float = 0.5
    source: str = "a test machine"

    def __post_init__(self) -> None:
        check_fields(self)

    def simulate(self, workload, *, progress=None):
        def one(op):
            cycles = math.ceil(op.macs / self.macs_per_cycle) if op.is_gemm else op.vector_ops
            nbytes = sum(o.nbytes for o in op.operands) * op.instances
            return OpResult(op.name, op.op, op.macs, cycles, self.clock_mhz, useful_macs=op.macs,
                            peak_macs_per_cycle=self.macs_per_cycle, precision="fp32",
                            accesses={"dram.input.reads": nbytes}, ops={"mac.fp32": op.macs})
        return run_ops(workload, self, one, progress)

    @property
    def memory_capacity_bytes(self):
        return 0.0

    def memory_levels(self):
        return {"dram": MemoryLevel("dram", technology="ddr3")}

    def peaks(self, precision=None):
        return Peaks("fp32", self.macs_per_cycle * self.clock_mhz * 1e6, {"dram": self.clock_mhz * 1e6})

    def occupancy(self, result):
        return 1.0

    precision_policy = "fp32 everywhere; every operand from DRAM"

    def describe(self):
        return describe_fields(self)


@pytest.fixture
def toy():
    registry.register("toy", ScalarArch, {"toy-1": ScalarArch()})
    yield
    registry.unregister("toy")


def test_a_new_machine_runs_simulate_report_and_sweep(toy, tmp_path, capsys):
    # gemm:4,5,6 (fp32): 120 MACs; operands 96 + 120 + 80 = 296 bytes
    assert main(["simulate", "gemm:4,5,6", "--arch", "toy-1", "--format", "csv"]) == 0
    df = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    row = df[df.name == "gemm"].iloc[0]
    assert (row.cycles, row.time_us, row.dram_read_bytes) == (120, 1.2, 296)
    # Horowitz 45 nm: an fp32 MAC is a 3.7 pJ multiply + a 0.9 pJ add; DDR3 20.3 pJ/bit; 0.5 W for 1.2 us
    assert row.energy_pj == pytest.approx(120 * 4.6 + 296 * 8 * 20.3 + 0.5 * 1.2e6)
    assert main(["report", "gemm:4,5,6", "--arch", "toy-1", "-o", str(tmp_path / "r")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["machine"], summary["cycles"]) == ("toy", 120)
    assert (tmp_path / "r" / "roofline.png").stat().st_size > 1000
    study = tmp_path / "s.yaml"
    study.write_text("name: toy\nmodels: ['gemm:4,5,6']\nbase: toy-1\ngrid: {macs_per_cycle: [1, 2, 4]}\n")
    assert main(["sweep", str(study), "-o", str(tmp_path / "sw")]) == 0
    res = pd.read_csv(tmp_path / "sw" / "results.csv").sort_values("macs_per_cycle")
    assert res.cycles.tolist() == [120, 60, 30]
    assert res.energy_static_pj.tolist() == pytest.approx([0.5 * t * 1e6 for t in (1.2, 0.6, 0.3)])


def test_register_refuses_what_is_not_a_machine():
    with pytest.raises(HwsimError, match="built in"):
        registry.register("gpu", ScalarArch, {})
    with pytest.raises(HwsimError, match="implementing Machine"):
        registry.register("thing", object, {"x": object()})
    with pytest.raises(HwsimError, match="already taken: a100"):
        registry.register("toy2", ScalarArch, {"a100": ScalarArch()})


def test_every_preset_implements_the_interface():
    for name, arch in registry.presets().items():
        assert isinstance(arch, Machine), name
        levels = arch.memory_levels()
        assert "dram" in levels and all(isinstance(v, MemoryLevel) for v in levels.values())
        pk = arch.peaks()
        assert pk.macs_per_s > 0 and pk.ops_per_s == 2 * pk.macs_per_s
        d = arch.describe()
        assert d["family"] == arch.family and d["name"] == name
        assert arch.static_power_w >= 0


def test_result_columns_mean_the_same_on_every_machine():
    ops = chain([conv_op("conv", 1, 8, 12, 12, 16, 3, 3, pad=1, bits=8, dtype="int", weight_density=0.3),
                 vector_op("relu", "activation", "relu", 16 * 144, bits=8, dtype="int"),
                 gemm_op("fc", 2, 10, 64, bits=8, dtype="int", weight_density=0.3)])
    wl = Workload("small", tuple(ops))
    for preset in ("systolic-16", "tpu-v1", "eie-64", "a100", "t4"):
        arch = registry.resolve_arch(preset)
        res = registry.simulate(wl, arch)
        kinds = {k: v.kind for k, v in arch.memory_levels().items()}
        for o, row in zip(res.ops, res.rows()):
            assert 0 <= o.stall_cycles <= o.cycles
            assert row["time_us"] == pytest.approx(o.cycles / arch.clock_mhz)
            assert 0 <= row["utilization"] <= 1
            dram = sum(v for k, v in o.accesses.items() if kinds[k.split(".")[0]] == "dram")
            assert row["dram_read_bytes"] + row["dram_write_bytes"] == pytest.approx(dram)
            assert all(k.split(".")[1] in ("input", "weight", "input2", "input3", "output") for k in o.accesses)
        # one op at a time on these machines: the ops run back to back in trace order
        assert res.cycles == res.busy_cycles == sum(o.cycles for o in res.ops)
        assert [o.start_cycle for o in res.ops] == list(np.cumsum([0] + [o.cycles for o in res.ops[:-1]]))


def test_options_are_keyword_only_and_checked():
    wl = Workload("g", (gemm_op("g", 8, 8, 8, bits=8, dtype="int"),))
    with pytest.raises(TypeError):
        SYS["systolic-32"].simulate(wl, bogus=1)
    with pytest.raises(HwsimError, match="take no option 'bogus'; their options: engine, quantize_float"):
        registry.simulate(wl, "systolic-32", bogus=1)
    with pytest.raises(HwsimError, match="engine: must be one of fast, cycles"):
        registry.simulate(wl, "systolic-32", engine="slow")
    with pytest.raises(HwsimError, match="seed"):
        registry.simulate(wl, "eie-64", seed=-1)


@pytest.mark.parametrize("args, message", [
    (["simulate", "gemm:8,8,8", "--arch", "systolic-32", "--precision", "fp16"], "--precision: systolic designs"),
    (["simulate", "gemm:8,8,8", "--arch", "a100", "--seed", "3"], "--seed: gpu designs (a100) take no seed"),
    (["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "--node", "0"], "technology node: must be a number of nm in 1..1000"),
    (["simulate", "gemm:8,8,8", "--arch", "tpu-v1", "--node", "nan"], "technology node: must be a number of nm in 1..1000"),
])
def test_cli_refuses_options_a_machine_does_not_take(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ---- static power travels with the description ---------------------------------------------------------
def test_tpu_static_power_survives_yaml_and_sweeps(tmp_path):
    """Regression: a YAML design or a sweep point derived from tpu-v1 lost its 28 W idle
    power (energy per inference of mlp1 fell from 6.11e9 to 1.36e9 pJ)."""
    wl = resolve("mlp1")
    preset = evaluate(wl, "tpu-v1")
    y = tmp_path / "my_tpu.yaml"
    y.write_text("base: tpu-v1\nprefetch_depth: 4\n")
    mine = evaluate(wl, str(y))
    assert mine.arch.name == "my_tpu" and mine.result.cycles == preset.result.cycles
    for ev in (preset, mine):
        s = ev.summary()
        assert s["energy_static_pj"] == pytest.approx(28.0 * s["time_us"] * 1e6)     # Jouppi et al. 2017, Table 2
        dynamic = sum(r["energy_pj"] - r["energy_static_pj"] for r in ev.rows)
        assert s["energy_pj"] == pytest.approx(dynamic + 28.0 * s["time_us"] * 1e6, rel=1e-9)
        assert s["energy_static_pj"] > s["energy_pj"] / 2        # idle power dominates a 28 W TPU on mlp1
    for base in ("tpu-v1", "my_tpu.yaml"):
        study = tmp_path / f"s_{base[:3]}.yaml"
        study.write_text(f"name: s\nmodels: [mlp1]\nbase: {base}\ngrid: {{prefetch_depth: [2, 4]}}\n")
        assert main(["sweep", str(study), "-o", str(tmp_path / f"out_{base[:3]}")]) == 0
        res = pd.read_csv(tmp_path / f"out_{base[:3]}" / "results.csv")
        assert len(res) == 2
        assert res.energy_static_pj.tolist() == pytest.approx((28.0 * res.time_us * 1e6).tolist())


def test_dynamic_only_designs_say_so(capsys):
    assert main(["archs"]) == 0
    out = capsys.readouterr().out
    assert "tpu-v1" in out and "28 W idle" in out and out.count("dynamic only") >= 6
    # GPUs draw their (cited) idle power too, so that compare is not skewed against the TPU
    for name, watts in (("a100", "50.5"), ("v100", "56.6"), ("h100", "81"), ("h200", "81")):
        line = next(x for x in out.splitlines() if x.startswith(name + " "))
        assert f"{watts} W idle" in line


# ---- sim/ never imports torch ------------------------------------------------------------------------
GUARD = r"""
import importlib, pkgutil, sys
import sim
for m in pkgutil.walk_packages(sim.__path__, "sim."):
    importlib.import_module(m.name)
from sim.registry import simulate
from workloads.trace import Workload
wl = Workload.load(sys.argv[1])
for preset in ("systolic-32", "tpu-v1", "eie-64", "a100"):
    r = simulate(wl, preset)
    assert r.cycles > 0, preset
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("torch modules:", loaded)
sys.exit(1 if loaded else 0)
"""


def test_sim_is_torch_free_with_a_weight_shared_trace(tmp_path):
    """Every module under sim/ imported, and every machine run on a saved trace whose
    weights are shared through a 32-entry codebook (EIE re-clusters it to 15 values with
    k-means), in a fresh interpreter: torch is never loaded."""
    rng = np.random.default_rng(0)
    cb = np.linspace(-1, 1, 32)
    idx = rng.integers(0, 32, (48, 96))
    vals = np.where(rng.random((48, 96)) < 0.2, cb[idx], 0.0)
    w = Operand("weight", (48, 96), 5, "index", float((vals != 0).mean()), values=vals, codebook=cb)
    fc = gemm_op("fc", 2, 48, 96, bits=16, dtype="fixed")
    fc = dataclasses.replace(fc, operands=tuple(w if o.role == "weight" else o for o in fc.operands))
    ops = chain([conv_op("conv", 1, 3, 8, 8, 6, 3, 3, bits=8, dtype="int"), fc,
                 vector_op("relu", "activation", "relu", 96)])
    path = Workload("shared", tuple(ops)).save(tmp_path / "shared.json")
    r = subprocess.run([sys.executable, "-c", GUARD, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torch modules: []" in r.stdout


# ---- immutable, validated descriptions ---------------------------------------------------------------
def test_descriptions_are_deeply_immutable():
    from sim.gpu import PRESETS as GPU
    with pytest.raises(TypeError):
        GPU["h100"].tc_fma_per_clk["fp16"] = 1                  # type: ignore[index]
    assert GPU["h200"].tc_fma_per_clk["fp16"] == 512
    with pytest.raises(dataclasses.FrozenInstanceError):
        GPU["h200"].sms = 1                                     # type: ignore[misc]
    with pytest.raises(TypeError):
        gemm_op("g", 2, 2, 2).dims["M"] = 4                     # type: ignore[index]
    hash(GPU["h100"]), hash(SYS["tpu-v1"])                      # frozen all the way down


@pytest.mark.parametrize("fields, message", [
    ({"ifmap_on_chip": "no"}, "ifmap_on_chip: must be true or false, got str 'no'"),
    ({"ifmap_on_chip": 1}, "ifmap_on_chip: must be true or false, got int 1"),
    ({"rows": True}, "rows: must be an integer, got bool True"),
    ({"rows": 2.5}, "rows: must be an integer"),
    ({"technology_nm": 0}, "technology_nm: must be >= 1, got 0"),
    ({"technology_nm": -5}, "technology_nm: must be >= 1, got -5"),
    ({"technology_nm": float("inf")}, "technology_nm: must be finite"),
    ({"clock_mhz": float("nan")}, "clock_mhz: must be finite"),
    ({"static_power_w": -1.0}, "static_power_w: must be >= 0"),
])
def test_every_field_is_checked(fields, message):
    with pytest.raises(HwsimError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SystolicArch(**fields)


def test_yaml_with_a_string_boolean_is_refused(tmp_path, capsys):
    y = tmp_path / "a.yaml"
    y.write_text("base: systolic-32\nifmap_on_chip: 'no'\n")
    assert main(["simulate", "gemm:8,8,8", "--arch", str(y)]) == 2
    err = capsys.readouterr().err
    assert str(y) in err and "ifmap_on_chip: must be true or false" in err


def test_optional_capabilities_are_declared_protocols_that_analysis_tests_with_isinstance():
    """What a report, the energy model or the mapping search asks of a machine beyond the
    Machine protocol is one of sim.machine's capability Protocols; analysis/ never probes a
    machine with getattr."""
    import re
    from pathlib import Path

    from sim.machine import (HasCycleCounters, HasEnergyTable, HasKernelOptions, HasMappingFamilies,
                             NamesItsEnergyModel, PricesItsOwnOps)
    from sim.registry import presets
    caps = (PricesItsOwnOps, NamesItsEnergyModel, HasEnergyTable, HasCycleCounters, HasKernelOptions,
            HasMappingFamilies)
    have = {name: {c.__name__ for c in caps if isinstance(a, c)} for name, a in presets().items()}
    assert have["h100"] == {"PricesItsOwnOps", "NamesItsEnergyModel", "HasKernelOptions"}
    assert have["tpu-v1"] == {"HasEnergyTable", "HasCycleCounters", "HasMappingFamilies"}
    assert have["eyeriss-like"] == {"PricesItsOwnOps", "HasEnergyTable"}
    assert have["eie-64"] == set()
    root = Path(__file__).resolve().parents[1] / "analysis"
    probes = [f"{p.name}:{i}" for p in root.glob("*.py") for i, line in enumerate(p.read_text().splitlines(), 1)
              if re.search(r"getattr\((ev\.)?(self\.)?(arch|desc|machine|device)\b", line)]
    assert not probes, probes

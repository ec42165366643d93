"""Every co-design knob does something or says it did not (issue 34): each machine declares
the sparsity it exploits (sim.machine.DeclaresSparsity), the declaration is held to what its
simulator does, reports name what each op used and ignored, and a study refuses to sweep a
density the machine would ignore."""

from __future__ import annotations

import dataclasses

import pytest

from analysis.report import evaluate, summary_lines
from sim.machine import SPARSITY, DeclaresSparsity
from sim.registry import families
from workloads.build import gemm_op
from workloads.errors import HwsimError
from workloads.trace import Workload


def _gemm(w_density: float = 1.0, a_density: float = 1.0, structure: str = "") -> Workload:
    op = gemm_op("fc", 64, 512, 512, bits=16, dtype="float")     # fp16: every machine runs it
    ops = tuple(dataclasses.replace(o, density=w_density, structure=structure) if o.role == "weight" else
                dataclasses.replace(o, density=a_density) if o.role == "input" else o for o in op.operands)
    return Workload("g", (dataclasses.replace(op, operands=ops),))


@pytest.mark.parametrize("family", sorted(families()))
def test_the_declaration_is_what_the_simulator_does(family):
    """Density a machine declares it exploits changes its cycles or energy; density it does
    not declare changes neither (on the family's first preset)."""
    _, presets = families()[family]
    arch = next(iter(presets.values()))
    assert isinstance(arch, DeclaresSparsity) and arch.sparsity_exploited <= set(SPARSITY)
    dense = evaluate(_gemm(), arch)
    for kind, wl in (("weight_density", _gemm(w_density=0.1)), ("act_density", _gemm(a_density=0.1))):
        sparse = evaluate(wl, arch)
        same = (sparse.result.cycles, sparse.energy_total["energy_pj"]) == \
               (dense.result.cycles, dense.energy_total["energy_pj"])
        assert same != (kind in arch.sparsity_exploited), (family, kind)
        used, ignored = sparse.rows[0]["sparsity_used"], sparse.rows[0]["sparsity_ignored"]
        assert (used if kind in arch.sparsity_exploited else ignored) == ("weight 0.1" if kind == "weight_density"
                                                                         else "act 0.1")


def test_a_report_says_what_it_ran_as_dense(tmp_path):
    ev = evaluate(_gemm(w_density=0.1), "tpu-v1")
    assert ev.summary()["sparsity_ignored_ops"] == 1
    assert any("sparsity not exploited by tpu-v1 on 1 of 1 ops" in line for line in summary_lines(ev))
    from analysis.report import write_report
    assert "sparsity not exploited by tpu-v1 on 1 of 1 ops" in (write_report(ev, tmp_path) / "report.html").read_text()
    ev = evaluate(_gemm(w_density=0.1), "eie-64")
    assert ev.summary()["sparsity_ignored_ops"] == 0
    assert not any("not exploited" in line for line in summary_lines(ev))


def test_two_four_structure_is_used_on_sparse_tensor_cores_only():
    wl = _gemm(w_density=0.5, structure="2:4")
    a100 = evaluate(wl, "a100").rows[0]
    assert (a100["sparsity_used"], a100["sparsity_ignored"]) == ("2:4", "")
    v100 = evaluate(wl, "v100").rows[0]                 # Volta has no sparse tensor cores
    assert v100["sparsity_used"] == "" and "2:4" in v100["sparsity_ignored"]


def test_a_study_refuses_to_sweep_a_density_the_machine_ignores(tmp_path):
    from analysis.sweep import load_study
    p = tmp_path / "s.yaml"
    p.write_text("models: [mlp0]\nbase: tpu-v1\ngrid: {trace.weight_density: [0.1, 0.5]}\n")
    with pytest.raises(HwsimError, match=r"s.yaml:3: grid.trace.weight_density: tpu-v1 \(systolic\) runs zero "
                                         r"weights as dense ones"):
        load_study(p)
    p.write_text("models: [mlp0]\nbase: eie-64\ngrid: {trace.weight_density: [0.1, 0.5]}\n")
    assert len(load_study(p).points) == 2


def test_token_models_report_per_token():
    """A model reading token ids (batch x sequence integers) carries its tokens per sample;
    the summary divides by them: energy per token, tokens per second (issue 34, units)."""
    from workloads.spec import Lowering, resolve
    ev = evaluate(resolve("gpt:2,64,2,32,1000", batch=2), "a100")
    s = ev.summary()
    assert s["tokens_per_sample"] == 32
    assert s["energy_per_token_uj"] == pytest.approx(s["energy_pj"] / 2 / 32 / 1e6)
    assert s["throughput_tokens_per_s"] == pytest.approx(2 * 32 / (s["time_us"] * 1e-6))
    assert "32 tokens per sample" in summary_lines(ev)[0]
    dec = resolve("gpt:2,64,2,32,1000", batch=1, seq_len=16, how=Lowering(decode=4))
    assert dec.meta["tokens_per_sample"] == 16 + 4 and dec.meta["decode_steps"] == 4
    train = resolve("gpt:2,64,2,32,1000", batch=2, how=Lowering(train=True))
    assert train.meta["tokens_per_sample"] == 32                     # a training step keeps it
    cnn = evaluate(resolve("lenet5"), "systolic-16").summary()
    assert cnn["tokens_per_sample"] is None and cnn["energy_per_token_uj"] is None

"""docs/formats.md is true to the code: each example loads through the loader its command
uses, and every field of every machine family is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from analysis.energy import table_from_dict
from analysis.sweep import load_study
from sim.archbase import load_yaml_arch
from sim.registry import families, presets

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "formats.md").read_text()


def _examples() -> dict[str, str]:
    """First comment line of each ```yaml block ('# arch: examples/my_array.yaml') -> the block."""
    out = {}
    for block in re.findall(r"```yaml\n(.*?)```", DOC, re.S):
        out[block.splitlines()[0].lstrip("# ").strip()] = block
    return out


def test_every_example_is_there():
    kinds = {k.split(":")[0] for k in _examples()}
    assert kinds == {"arch", "study", "energy table", "plan"}


@pytest.mark.parametrize("title", [k for k in _examples() if ":" in k])
def test_an_example_is_the_shipped_file(title):
    """An example that names a file in examples/ is that file, comments aside."""
    path = ROOT / title.split(":", 1)[1].strip()
    strip = lambda t: [re.sub(r"\s+#.*", "", line).rstrip() for line in t.splitlines()  # noqa: E731
                       if line.strip() and not line.lstrip().startswith("#")]
    assert strip(_examples()[title]) == strip(path.read_text())


def test_the_examples_load(tmp_path):
    ex = _examples()
    arch = tmp_path / "my_array.yaml"
    arch.write_text(ex["arch: examples/my_array.yaml"])
    a = load_yaml_arch(arch, presets())
    assert (a.rows, a.cols, a.dataflow) == (64, 32, "os")
    study = tmp_path / "study.yaml"
    study.write_text(ex["study: examples/study.yaml"])
    s = load_study(study)
    assert len(s.points) == 2 * 8                      # 2 models x 8 sampled of 3 x 2 x 2
    t = table_from_dict(yaml.safe_load(ex["energy table"]), "doc")
    assert t.ops["mul.int8"] == 0.2 and len(t.sram) == 2
    from workloads.compress.plan import plan_from_dict
    p = plan_from_dict(yaml.safe_load(ex["plan: examples/plan.yaml"]), "doc")
    assert p.for_layer("fc3") == {"keep": 0.26, "weight_bits": 6, "index_bits": 5, "structure": "none"}


def test_every_arch_field_is_documented():
    for family, (cls, table) in families().items():
        section = DOC.split("### ", 1)[1]
        names = [n for n in table]
        # the family's table is the section whose heading names its presets
        sec = next(s for s in DOC.split("### ")[1:] if all(f"`{n}`" in s.split("\n", 1)[0] for n in names))
        for f in dataclasses.fields(cls):
            assert re.search(rf"^\| [^|]*`{f.name}`", sec, re.M), f"{family}.{f.name} is not in docs/formats.md"
        assert section


def test_every_study_and_plan_field_is_documented():
    from analysis.energy_schema import EnergyTableDoc, SramPoint
    from analysis.study_schema import StudyDoc
    from workloads.compress.plan_schema import LayerPlan, PlanDoc

    for model in (StudyDoc, PlanDoc, LayerPlan, EnergyTableDoc, SramPoint):    # what the readers validate against
        for f in model.model_fields:
            assert f"| `{f}` |" in DOC, f"{model.__name__}.{f} is not in docs/formats.md"


def test_architecture_names_real_modules_and_protocols():
    """docs/architecture.md's Protocols, modules and tables exist in the code."""
    import importlib

    text = (ROOT / "docs" / "architecture.md").read_text()
    import sim.machine as machine
    for name in ("Machine", "PricesItsOwnOps", "NamesItsEnergyModel", "HasEnergyTable", "HasCycleCounters",
                 "HasKernelOptions", "HasMappingFamilies", "DeclaresSparsity"):
        assert f"`{name}`" in text and hasattr(machine, name), name
    for path in re.findall(r"`((?:workloads|sim|analysis|validation|rtl)/[\w/]+\.py)`", text):
        assert (ROOT / path).exists(), path
    from sim.gpu.constants import FIT_ROWS   # noqa: F401  (named in the table)
    assert "FAMILIES" in vars(importlib.import_module("sim.registry"))
    from validation.base import Reader  # noqa: F401
    from validation.schema import Row  # noqa: F401

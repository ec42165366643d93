"""``hwsim archs --sources`` lists every constant a model rests on, with its kind and source;
every module-level constant the code calls an assumption or calibration is among them."""

from __future__ import annotations

import re
from pathlib import Path

from analysis.cli import main
from analysis.sources import sections
from sim.constants import KINDS

ROOT = Path(__file__).resolve().parents[1]


def test_every_named_assumption_in_the_code_is_listed(capsys):
    assert main(["archs", "--sources"]) == 0
    out = capsys.readouterr().out
    named = set()
    for pkg in ("sim", "analysis", "workloads"):
        for f in (ROOT / pkg).rglob("*.py"):
            for m in re.finditer(r"^([A-Z][A-Z0-9_]+)\s*(?::[^=\n]*)?=[^\n]*#[^\n]*\b(assumption|calibration)\b",
                                 f.read_text(), re.M):
                named.add(m.group(1))
    assert {"NVLINK_LATENCY_US", "TREE_CHUNKS"} <= named          # the scan finds what it is meant to
    missing = sorted(n for n in named if f".{n} = " not in out)
    assert not missing, missing


def test_sections_cover_every_family_and_kind_is_declared():
    from sim.registry import FAMILIES

    titles = [t for t, _ in sections()]
    assert all(f"{f} model" in titles for f in FAMILIES)
    for _, cs in sections():
        assert cs and all(c.kind in KINDS and c.source for c in cs)


def test_listed_values_are_the_codes():
    """The registries name the values the modules use, not copies."""
    from importlib import import_module

    from analysis.technology import NOMINAL_VDD, vdd
    systolic, eie = import_module("sim.systolic.simulate"), import_module("sim.eie.simulate")
    topo = import_module("sim.system.topology")
    listed = {c.name: c.value for _, cs in sections() for c in cs}
    assert listed["simulate.SECONDS_PER_FOLD"] == systolic.SECONDS_PER_FOLD
    assert listed["simulate.MAX_NONZEROS"] == eie.MAX_NONZEROS
    assert listed["topology.IB_LATENCY_US"] == topo.IB_LATENCY_US
    assert all(vdd(nm) == v for nm, (v, _) in NOMINAL_VDD.items())
    assert vdd(28) == 0.8 + (28 - 22) / (32 - 22) * (0.9 - 0.8)      # between PTM's 22 and 32 nm

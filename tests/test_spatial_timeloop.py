"""sim.spatial.timeloop: AccelForge (Timeloop's successor) architecture files as spatial designs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.registry import resolve_arch
from workloads.errors import HwsimError

TUTORIAL = """\
{% set DramEnergy = DramEnergy | default(7e-12) %}
arch:
  nodes:
  - !Memory
    name: MainMemory
    size: inf
    tensors: {keep: ~Intermediates, may_keep: All}
    actions:
    - {name: read, energy: {{DramEnergy}}, throughput: 8 * 16e9}
    - {name: write, energy: {{DramEnergy}}, throughput: 8 * 16e9}
  - !Memory
    name: GlobalBuffer
    size: 1024*8*8          # 8 kB
    total_latency: max(a.n_calls / a.throughput for a in actions)
    actions:
    - {name: read, energy: 64e-12, throughput: 2e9, bits_per_action: 64}
    - {name: write, energy: 96e-12, throughput: 1e9, bits_per_action: 64}
    tensors: {keep: ~MainMemory, may_keep: All}
  - !Container
    name: PE
    spatial:
    - {name: reuse_input, fanout: 4, reuse: input, min_usage: 1}
    - {name: reuse_output, fanout: 2, reuse: output}
  - !Memory
    name: Register
    size: weight.bits_per_value if weight else 0
    component_class: Dummy
    tensors: {keep: weight}
  - !Compute
    name: ScalarUnit
    enabled: len(All) == 2
    actions: [{name: compute, energy: 0, throughput: 1}]
  - !Compute
    name: MAC
    actions:
    - {name: compute, energy: 0.25e-12, throughput: 1e9}
"""


def _write(tmp_path: Path, text: str, name: str = "arch.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return f"timeloop:{p}"


def test_tutorial_style_file_reads_as_stated(tmp_path: Path) -> None:
    a = resolve_arch(_write(tmp_path, TUTORIAL))
    assert a.array == (4, 2) and a.clock_mhz == 1000.0 and a.mac_pj == pytest.approx(0.25)
    reg, glb, dram = a.levels                             # innermost first
    assert [x.name for x in a.levels] == ["Register", "GlobalBuffer", "MainMemory"]
    assert reg.operands == ("weight",) and reg.per_pe and reg.size_bytes == 1     # 8 bits: one weight
    assert reg.read_pj == pytest.approx(1e-12)            # Dummy: no cost (the least hwsim's energy search takes)
    # 8 kB, shared by the array; ports of 2e9 (1e9) 64-bit actions a second at 1 GHz: 128 (64) bits a cycle
    assert glb.operands == ("input", "weight", "output") and glb.size_bytes == 8192 and glb.served is None
    assert (glb.read_bits, glb.write_bits, glb.shared_port) == (128, 64, False)
    assert glb.read_pj == pytest.approx(64 * 2) and glb.write_pj == pytest.approx(96)   # per access of the port
    # 16 GB/s at 1 GHz: 128 bits a cycle, one port; 7 pJ a bit (the Jinja default)
    assert (dram.kind, dram.read_bits, dram.shared_port) == ("dram", 128, True)
    assert dram.read_pj == pytest.approx(7 * 128)
    # reuse input: K on the rows; reuse output: C, FY or FX on the columns, or all three at once
    assert a.unrollings == (("K", "C"), ("K", "FY"), ("K", "FX"), ("K", "C*FY*FX"))
    assert a.source.startswith("AccelForge architecture file") and "energies as the file states them" in a.source


def test_memory_fanout_is_an_array_dimension(tmp_path: Path) -> None:
    text = TUTORIAL.replace("    name: GlobalBuffer\n", "    name: GlobalBuffer\n    spatial: [{name: Z, fanout: 2}]\n")
    a = resolve_arch(_write(tmp_path, text))
    assert a.array == (2, 4, 2)
    assert a.levels[1].served == ("D2", "D3")          # one GlobalBuffer per Z: shared along the PE fanouts


@pytest.mark.parametrize("old,new,field", [
    ("    size: 1024*8*8", "    sise: 1024*8*8", "size"),
    ("energy: 64e-12,", "energy: open('x'),", "arch.nodes[1] (GlobalBuffer).actions.read.energy"),
    ("{name: read, energy: 64e-12,", "{name: read,", "left to AccelForge's component model"),
    ("max(a.n_calls", "min(a.n_calls", "total_latency"),
    ("reuse: input, min_usage: 1}", "reuse: input, loop_bounds: [x]}", "loop_bounds"),
    ("- !Container", "- !Crate", "unknown node tag !Crate"),
    ("{% set DramEnergy = DramEnergy | default(7e-12) %}", "{% for x in y %}", "Jinja"),
])
def test_bad_fields_refused_in_one_line(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in TUTORIAL
    with pytest.raises(HwsimError) as e:
        resolve_arch(_write(tmp_path, TUTORIAL.replace(old, new)))
    msg = str(e.value)
    assert "\n" not in msg and field in msg and "arch.yaml" in msg


def test_mapping_file_refused(tmp_path: Path) -> None:
    spec = _write(tmp_path, TUTORIAL)
    with pytest.raises(HwsimError, match="mapping files are not read"):
        resolve_arch(spec + ":" + str(tmp_path / "map.yaml"))


def test_tiny_gemm_energy_by_hand(tmp_path: Path) -> None:
    from analysis.simulate import simulate
    from workloads.build import gemm_op
    from workloads.trace import Workload

    spec = _write(tmp_path, """arch:
  nodes:
  - !Memory
    name: MainMemory
    size: inf
    tensors: {keep: All}
    actions:
    - {name: read, energy: 2e-12, throughput: 8e9}
    - {name: write, energy: 3e-12, throughput: 8e9}
  - !Compute
    name: MAC
    actions:
    - {name: compute, energy: 0.5e-12, throughput: 1e9}
""")
    wl = Workload("g", (gemm_op("g", 2, 2, 2, bits=8, dtype="int"),))
    row = simulate(wl, spec, objective="energy").to_frame().iloc[0]
    # 8 MACs on one MAC under DRAM alone: every MAC reads its input, weight and partial sum
    # (8 bits each, AccelForge's widths) and writes the partial sum back: 8 x (0.5 + 24 x 2 + 8 x 3)
    assert row["energy_pj"] == pytest.approx(8 * (0.5 + 24 * 2 + 8 * 3))
    assert row["dram_read_bytes"] == 24 and row["dram_write_bytes"] == 8
    assert row["cycles"] == (24 + 8) * 8 / 8            # one 8-bit-a-cycle port, reads and writes in turn


AF = Path(os.environ.get("ACCELFORGE_EXAMPLES", "/nonexistent"))


@pytest.mark.skipif(not (AF / "arches").is_dir(), reason="AccelForge's examples not installed (set "
                                                         "ACCELFORGE_EXAMPLES to its examples/ folder)")
@pytest.mark.parametrize("name,array", [("tpu_v4i", (4, 128, 128)), ("nvdla", (32, 192))])
def test_accelforge_tutorial_designs_read(name: str, array: tuple[int, ...]) -> None:
    a = resolve_arch(f"timeloop:{AF / 'arches' / (name + '.yaml')}")
    assert a.array == array and a.levels[-1].kind == "dram"


def test_stored_tutorial_copies_read() -> None:
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "accelforge"
    for f, array in (("tpu_v4i.yaml", (4, 128, 128)), ("nvdla.yaml", (32, 192)), ("eyeriss.resolved.yaml", (14, 12))):
        a = resolve_arch(f"timeloop:{root / f}")
        assert a.array == array
    assert "hwcomponents plug-ins" in resolve_arch(f"timeloop:{root / 'eyeriss.resolved.yaml'}").source
    with pytest.raises(HwsimError, match=r"eyeriss.yaml: arch.nodes\[\d\] \(\w+\)\.actions\.\w+\.energy: left to"):
        resolve_arch(f"timeloop:{root / 'eyeriss.yaml'}")

"""AccelForge's side of benchmarks/accelforge_compare.py: run AccelForge 1.0.467's tutorial
designs on the comparison's layers and write what it reports as JSON.

Run with AccelForge's own environment (it is a peer tool, never a dependency of hwsim):

    /tmp/af/bin/python benchmarks/accelforge_peer.py --out benchmarks/data/accelforge_peer.json \
        --resolved benchmarks/data/accelforge

Per design and layer: dynamic energy (pJ; AccelForge's leak energy apart), latency (s) and
cycles (latency x the MAC's clock), DRAM bytes (MainMemory's read and write actions times
their bits_per_action, over 8), each component's energy, and the mapper's wall time.
``--resolved`` also writes each design with every per-action energy and throughput as
AccelForge computed them (its hwcomponents plug-ins: CACTI, the library's tables) into
``DIR/NAME.resolved.yaml``, which hwsim's ``timeloop:`` reader reads where the tutorial file
leaves a number to a plug-in (eyeriss.yaml).

AccelForge's mapper (FFM) is run as its tutorial runs it (notebooks/tutorials/mapper.ipynb):
every tensor kept in the outermost memory (no fusion), Metrics.ENERGY. Its SVG rendering of
the chosen mapping needs graphviz's ``dot`` and is switched off. (CACTI's prebuilt binary in
hwcomponents_cacti 1.0.40 needs glibc 2.38; on an older system rebuild it in place:
``cd .../hwcomponents_cacti/cacti && rm -rf obj_* && make opt``.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import accelforge as af
import accelforge.mapper.FFM.mappings as _mappings

_mappings.Mappings.render = lambda self, **k: ""          # no graphviz here

DESIGNS = {"tpu_v4i": 1.05e9, "nvdla": 1e9, "eyeriss": 200e6}    # file -> its MAC's clock (actions/s per MAC)
RESOLVE = {"eyeriss"}     # designs whose file leaves per-action energies to AccelForge's plug-ins
# (name, kind, dims): ResNet-18's layers as hwsim's zoo has them (batch 1), and a square GEMM
LAYERS = [
    ("gemm256", "gemm", dict(M=256, N=256, K=256)),
    ("fc", "gemm", dict(M=1, N=1000, K=512)),
    ("conv16", "conv", dict(C=16, K=16, P=8, Q=8, R=3, S=3, stride=1)),     # small: a 10x10 input, no padding
    ("layer4.0.conv2", "conv", dict(C=512, K=512, P=7, Q=7, R=3, S=3, stride=1)),
    ("layer3.0.conv2", "conv", dict(C=256, K=256, P=14, Q=14, R=3, S=3, stride=1)),
    ("layer1.0.conv1", "conv", dict(C=64, K=64, P=56, Q=56, R=3, S=3, stride=1)),
    ("conv1", "conv", dict(C=3, K=64, P=112, Q=112, R=7, S=7, stride=2)),
]


def workload_yaml(kind: str, d: dict[str, int]) -> str:
    if kind == "gemm":
        return f"""workload:
  bits_per_value: {{All: 8}}
  einsums:
  - einsum: "Z[m, n] = A[m, k] * B[k, n]"
    iteration_space_shape: ["0 <= m < {d['M']}", "0 <= n < {d['N']}", "0 <= k < {d['K']}"]
    renames: {{output: Z, input: A, weight: B}}
"""
    s = d["stride"]
    h = f"p * {s} + r" if s > 1 else "p + r"
    w = f"q * {s} + s" if s > 1 else "q + s"
    return f"""workload:
  bits_per_value: {{All: 8}}
  einsums:
  - einsum: "O[p, q, m] = I[c, H: {h}, W: {w}] * W[r, s, c, m]"
    iteration_space_shape: ["0 <= p < {d['P']}", "0 <= q < {d['Q']}", "0 <= c < {d['C']}", "0 <= m < {d['K']}",
                            "0 <= r < {d['R']}", "0 <= s < {d['S']}"]
    renames: {{output: O, input: I, weight: W}}
"""


def arch_path(name: str) -> Path:
    return Path(getattr(af.examples.arches, name))


def _min_usage(s: object) -> str:
    """A fanout's min_usage as the file states it (omitted when not a number above 0)."""
    try:
        v = float(str(getattr(s, "min_usage", "")))
    except ValueError:
        return ""
    return f", min_usage: {v:g}" if v > 0 else ""


def resolved_yaml(name: str, src: Path) -> str:
    """The design with AccelForge's computed per-action energies and throughputs written in."""
    spec = af.Spec.from_yaml(src).calculate_component_costs()
    out = [f"# {src.name} of AccelForge 1.0.467 (examples/arches/{src.name}), every action's energy (J) and",
           "# throughput (actions/s) as AccelForge's Spec.calculate_component_costs() computed them with its",
           "# hwcomponents plug-ins (written by hwsim's benchmarks/accelforge_peer.py; leak power left out)",
           "arch:", "  nodes:"]
    text = src.read_text()
    for n in spec.arch.nodes:
        kind = type(n).__name__
        out.append(f"  - !{kind}")
        out.append(f"    name: {n.name}")
        if kind == "Memory":
            size = n.size
            out.append(f"    size: {'inf' if size == math.inf else int(size)}")
            keep = n.tensors.keep
            out.append(f"    tensors: {{keep: {keep!s}" + (", may_keep: All}" if "may_keep: All" in text.split(
                f"name: {n.name}")[1].split("- !")[0] else "}"))
        tl = getattr(n, "total_latency", None)
        if isinstance(tl, str):
            out.append(f"    total_latency: {tl}")
        if getattr(n, "spatial", None):
            sp = ", ".join("{" + f"name: {s.name}, fanout: {s.fanout}" + (f", reuse: {s.reuse}" if str(
                s.reuse) not in ("Nothing", "<Defaults to Nothing>") else "") + _min_usage(s) + "}" for s in n.spatial)
            out.append(f"    spatial: [{sp}]")
        if getattr(n, "actions", None):
            out.append("    actions:")
            for a in n.actions:
                if a.name == "leak":
                    continue
                bpa = getattr(a, "bits_per_action", None)
                out.append(f"    - {{name: {a.name}, energy: {a.energy!r}, throughput: {a.throughput!r}"
                           + (f", bits_per_action: {int(bpa)}" if bpa not in (None, 1) else "") + "}")
    return "\n".join(out) + "\n"


def run(name: str, clock: float, kind: str, dims: dict[str, int], tmp: Path) -> dict[str, object]:
    wl = tmp / f"{kind}.yaml"
    wl.write_text(workload_yaml(kind, dims))
    t = time.time()
    spec = af.Spec.from_yaml(arch_path(name), wl)
    for node in spec.arch.nodes:             # the tutorial's no-fusion setting
        if isinstance(node, af.arch.Memory):
            node.tensors.keep = "All"
            break
    spec.mapper.metrics = af.mapper.Metrics.ENERGY
    m = spec.map_workload_to_arch(print_progress=False)
    wall = time.time() - t
    per = m.energy(per_component=True, per_action=True)
    leak = sum(v for (c, a), v in per.items() if a == "leak")
    dyn = sum(v for (c, a), v in per.items() if a != "leak")
    acts = m.actions(per_component=True, per_tensor=True)
    top = next(n for n in spec.arch.nodes if isinstance(n, af.arch.Memory))     # all three state none: 1 bit
    bpa = {a.name: float(a.bits_per_action) if isinstance(a.bits_per_action, (int, float)) else 1.0
           for a in top.actions}
    dram_bits = sum(v * bpa.get(a, 1.0) for (c, _t, a), v in acts.items() if c == top.name)
    lat = float(m.latency())
    return {"design": name, "layer": None, "energy_pj": dyn * 1e12, "leak_pj": leak * 1e12, "latency_s": lat,
            "cycles": lat * clock, "clock_hz": clock, "dram_bytes": dram_bits / 8,
            "macs": float(m.n_computes()), "wall_s": wall,
            "components_pj": {f"{c}.{a}": v * 1e12 for (c, a), v in per.items()},
            "latency_components_s": {k: float(v) for k, v in m.latency(per_component=True).items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--resolved", default="")
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--layers", default="", help="comma-separated names from LAYERS (default: all)")
    a = ap.parse_args()
    af.set_n_parallel_jobs(os.cpu_count() or 1, print_message=False)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "accelforge_peer"
    tmp.mkdir(parents=True, exist_ok=True)
    names = a.designs.split(",")
    if a.resolved:
        for name in names:
            if name in RESOLVE:
                Path(a.resolved).mkdir(parents=True, exist_ok=True)
                (Path(a.resolved) / f"{name}.resolved.yaml").write_text(resolved_yaml(name, arch_path(name)))
    rows = []
    layers = [x for x in LAYERS if not a.layers or x[0] in a.layers.split(",")]
    for layer, kind, dims in layers:          # layer by layer, the JSON rewritten after each run
        for name in names:
            r = run(name, DESIGNS[name], kind, dims, tmp)
            r["layer"] = layer
            print(f"{name:8s} {layer:16s} {r['energy_pj']:14.6g} pJ {r['cycles']:14.6g} cyc "
                  f"{r['dram_bytes']:12.6g} B  {r['wall_s']:.1f} s", flush=True)
            rows.append(r)
            Path(a.out).write_text(json.dumps({"tool": "accelforge 1.0.467", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

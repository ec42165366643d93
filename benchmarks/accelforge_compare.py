"""hwsim against AccelForge 1.0.467 on AccelForge's tutorial designs, read by ``timeloop:``.

    /tmp/af/bin/python benchmarks/accelforge_peer.py --out benchmarks/data/accelforge_peer.json \
        --resolved benchmarks/data/accelforge                          # AccelForge's side (its own venv)
    .venv/bin/python benchmarks/accelforge_compare.py benchmarks/data/accelforge_peer.json

Per design and layer: dynamic energy (pJ), cycles and DRAM bytes, hwsim's over AccelForge's,
and per design the totals over the layers both ran. hwsim reads the tutorial files
(``benchmarks/data/accelforge/``, copies of AccelForge's ``examples/arches``) with
``sim.spatial.timeloop``; eyeriss.yaml leaves its energies to AccelForge's plug-ins, so hwsim
reads ``eyeriss.resolved.yaml`` (the energies AccelForge computed). Both search for the
mapping of least energy. hwsim's energy here is its dynamic energy (its static power is 0
for these files; AccelForge's leak energy is left out of its side too).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILES = {"tpu_v4i": "tpu_v4i.yaml", "nvdla": "nvdla.yaml", "eyeriss": "eyeriss.resolved.yaml"}


def design_of(design: str) -> object:
    """The design hwsim reads from the file (the conventions its reader sets from it)."""
    from sim.registry import resolve_arch
    return resolve_arch(f"timeloop:{ROOT / 'benchmarks/data/accelforge' / FILES[design]}")


def op_of(layer: str, peer: dict[str, float]) -> object:
    from workloads.build import conv_op, gemm_op
    from analysis.simulate import resolve_model
    if layer == "gemm256":
        return gemm_op(layer, 256, 256, 256, bits=8, dtype="int")
    if layer == "conv16":            # accelforge_peer.py's small conv: 16 -> 16 channels, 3x3, 10x10 input, no padding
        return conv_op(layer, 1, 16, 10, 10, 16, 3, 3, stride=1, pad=0, bits=8, dtype="int")
    ops = {o.name: o for o in resolve_model("resnet18").ops}
    op = ops[layer]
    if op.kind == "gemm":
        return gemm_op(layer, op.gemm.M, op.gemm.N, op.gemm.K, bits=8, dtype="int")
    # accelforge_peer.py's conv workloads index the input as p * stride + r (no padding): the
    # same output size from an unpadded input of (P - 1) * stride + R rows
    d = op.dims
    s = d["stride_h"]
    return conv_op(layer, 1, d["C"], (d["P"] - 1) * s + d["R"], (d["Q"] - 1) * s + d["S"], d["K"], d["R"], d["S"],
                   stride=s, pad=0, bits=8, dtype="int")


def hwsim_row(design: str, layer: str, peer: dict[str, float]) -> dict[str, float]:
    from analysis.simulate import simulate
    from workloads.trace import Workload
    wl = Workload(layer, (op_of(layer, peer),))
    t = time.time()
    ev = simulate(wl, design_of(design), objective="energy")
    wall = time.time() - t
    df = ev.to_frame()
    return {"energy_pj": float(df["energy_pj"].sum()), "cycles": float(df["cycles"].sum()),
            "dram_bytes": float((df["dram_read_bytes"] + df["dram_write_bytes"]).sum()), "wall_s": wall,
            "macs": float(df["macs"].sum()) if "macs" in df else 0.0}


def main() -> None:
    files = sys.argv[1:] or [str(ROOT / "benchmarks/data/accelforge_peer.json")]
    peer = {"rows": [r for f in files for r in json.loads(Path(f).read_text())["rows"]]}
    keys = ("energy_pj", "cycles", "dram_bytes")
    totals: dict[str, dict[str, list[float]]] = {}
    print(f"{'design':8s} {'layer':15s} {'energy hwsim/AF':>16s} {'cycles hwsim/AF':>16s} {'DRAM hwsim/AF':>14s}"
          f"   AF: energy pJ, cycles, DRAM B; wall s (hwsim, AF)")
    for r in peer["rows"]:
        h = hwsim_row(r["design"], r["layer"], r)
        t = totals.setdefault(r["design"], {k: [0.0, 0.0] for k in keys + ("wall_s",)})
        for k in keys + ("wall_s",):
            t[k][0] += h[k]
            t[k][1] += r[k]
        ratios = "".join(f"{h[k] / r[k]:16.3f}" if r[k] else f"{'-':>16s}" for k in keys)
        print(f"{r['design']:8s} {r['layer']:15s}{ratios}   {r['energy_pj']:.4g}, {r['cycles']:.4g}, "
              f"{r['dram_bytes']:.4g}; {h['wall_s']:.2f}, {r['wall_s']:.1f}", flush=True)
    print("\ntotals (sum over the layers), hwsim / AccelForge")
    for d, t in totals.items():
        print(f"{d:8s} " + "  ".join(f"{k} {t[k][0]:.4g} / {t[k][1]:.4g} = {t[k][0] / t[k][1]:.3f}" for k in keys)
              + f"  wall s: hwsim {t['wall_s'][0]:.1f}, AccelForge {t['wall_s'][1]:.1f}")


if __name__ == "__main__":
    main()

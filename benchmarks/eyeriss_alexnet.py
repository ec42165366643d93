"""The eyeriss-like preset on AlexNet's five conv layers, against the Eyeriss chip.

    python benchmarks/eyeriss_alexnet.py > benchmarks/data/eyeriss_alexnet.txt

Chen, Krishna, Emer, Sze, "Eyeriss", JSSC 2017 (abstract): AlexNet's conv layers at batch 4
run at 35 frames/s (34.7) drawing 278 mW, with 0.0029 DRAM accesses per MAC. The layers
are the original AlexNet's (Krizhevsky et al. 2012: 96 11x11/4 filters on 227x227, conv2,
conv4 and conv5 in two groups), not torchvision's variant. hwsim's power is the dynamic
energy of the conv layers over their time (no static power: the preset states none);
DRAM accesses are counted per 16-bit word and per 64-bit port access, since the paper's
unit is not stated in the abstract. Each objective of the mapping search is shown.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAPER = {"fps": 34.7, "mw": 278.0, "dram_per_mac": 0.0029}


def main() -> None:
    import torch
    import torch.nn as nn

    from analysis.energy import energy_rows, load_table
    from sim.registry import resolve_arch
    from workloads.lower import lower

    torch.set_num_threads(1)
    net = nn.Sequential(nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.MaxPool2d(3, 2),
                        nn.Conv2d(96, 256, 5, 1, 2, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                        nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 384, 3, 1, 1, groups=2), nn.ReLU(),
                        nn.Conv2d(384, 256, 3, 1, 1, groups=2))
    batch = 4
    wl = lower(net, torch.zeros(batch, 3, 227, 227), name="alexnet-conv")
    arch = resolve_arch("eyeriss-like")
    table = load_table("eyeriss65").at_node(arch.technology_nm)
    print("# python benchmarks/eyeriss_alexnet.py")
    print(f"# eyeriss-like ({arch.rows}x{arch.cols} PEs, {arch.clock_mhz:g} MHz) on AlexNet conv1-5, batch {batch}; "
          f"paper (JSSC 2017): {PAPER['fps']} frames/s, {PAPER['mw']:g} mW, {PAPER['dram_per_mac']} DRAM accesses/MAC")
    print(f"{'objective':10s} {'frames/s':>9s} {'x paper':>8s} {'mW':>6s} {'x paper':>8s} "
          f"{'DRAM 16b/MAC':>13s} {'DRAM 64b/MAC':>13s}  per-layer mapping (unrolling [temporal loops, innermost first])")
    for objective in ("latency", "edp", "energy"):
        res = arch.simulate(wl, objective=objective)
        rows, _ = energy_rows(res, arch, table)
        conv = [(o, r) for o, r in zip(res.ops, rows) if o.macs > 0]
        cycles = sum(o.cycles for o, _ in conv)
        macs = sum(o.macs for o, _ in conv)
        pj = sum(r["energy_pj"] for _, r in conv)
        dram = sum(r["dram_read_bytes"] + r["dram_write_bytes"] for _, r in conv)
        t = cycles / (arch.clock_mhz * 1e6)
        fps, mw = batch / t, pj * 1e-12 / t * 1e3
        print(f"{objective:10s} {fps:9.1f} {fps / PAPER['fps']:8.2f} {mw:6.0f} {mw / PAPER['mw']:8.2f} "
              f"{dram / 2 / macs:13.4f} {dram / 8 / macs:13.4f}  " + "; ".join(o.extra.mapping for o, _ in conv))


if __name__ == "__main__":
    main()

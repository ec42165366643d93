"""The spatial family's two timings side by side: the analytical roofline the mapping search
ranks by (``cost.evaluate``, as ZigZag counts latency) and the cycle-level stepper
(``timing: stepped``), per ResNet-18 layer on both spatial presets, each in the mapping the
search chose; with the stepper's wall time.

    python benchmarks/spatial_timing.py
"""

import time

from sim.spatial import PRESETS
from sim.spatial.nest import of_op
from sim.spatial.search import best
from sim.spatial.stepper import schedule, streams
from workloads import resolve


def main() -> None:
    wl = resolve("resnet18")
    for name in ("zigzag-tpu-like", "eyeriss-like"):
        arch = PRESETS[name]
        bits = {"input": arch.word_bits, "weight": arch.word_bits}
        print(f"## {name}")
        print(f"{'layer':24s} {'analytical':>11s} {'stepped':>11s} {'ratio':>6s} {'stall':>9s} {'drain':>8s} "
              f"{'transfers':>10s} {'wall_s':>7s}")
        ta = ts = wall = 0.0
        for op in wl.ops:
            if not op.is_gemm:
                continue
            nest = of_op(op)
            c = best(nest, arch, bits, arch.word_bits, unrollings=arch.unrollings_for(op.name, op.kind))
            t0 = time.perf_counter()
            ss, iters = streams(nest, arch, c.mapping, bits, arch.word_bits)
            s = schedule(ss, iters)
            dt = time.perf_counter() - t0
            ta, ts, wall = ta + c.cycles, ts + s.cycles, wall + dt
            print(f"{op.name:24s} {c.cycles:11d} {s.cycles:11d} {s.cycles / c.cycles:6.2f} {s.stall_cycles:9d} "
                  f"{s.drain_cycles:8d} {s.events:10d} {dt:7.2f}")
        print(f"{'total':24s} {int(ta):11d} {int(ts):11d} {ts / ta:6.2f} {'':9s} {'':8s} {'':10s} {wall:7.1f}\n")


if __name__ == "__main__":
    main()

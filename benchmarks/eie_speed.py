"""Wall time of the nine EIE benchmark layers (batch 1) on eie-64, fast engine, and the
cycle-stepping reference on the same schedules for a ratio.

    python benchmarks/eie_speed.py
"""

import time

import numpy as np

from sim.eie import PRESETS, simulate
from sim.eie.encode import encode, synthetic_activations
from sim.eie.engine import pass_timing, simulate_cycles
from sim.eie.simulate import _seed, layer_for
from workloads import resolve


def main() -> None:
    arch = PRESETS["eie-64"]
    wl = resolve("eie-benchmarks")
    t0 = time.perf_counter()
    res = simulate(wl, arch)
    total = time.perf_counter() - t0
    print(f"nine EIE layers, whole simulation (encode + timing + functional): {total:.2f} s")
    for r in res.ops:
        print(f"  {r.name:8s} {r.cycles:7d} cycles  {r.time_us:7.2f} us")
    # timing engines alone on alex7's schedule
    op = wl["alex7"]
    s = _seed(op.name, 0)
    layer = layer_for(op, arch, s)
    acts = synthetic_activations(op.gemm.K, op.operand("input").density, s, 8)
    e = encode(layer, arch.num_pes).entries[:, np.flatnonzero(acts)]
    t0 = time.perf_counter()
    fast = pass_timing(e, arch.queue_depth, arch.pipeline_depth)
    tf = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = simulate_cycles(e, arch.queue_depth, arch.pipeline_depth)
    tr = time.perf_counter() - t0
    assert fast.cycles == ref.cycles
    print(f"alex7 timing: fast {tf * 1e3:.1f} ms, cycle stepping {tr * 1e3:.0f} ms, ratio {tr / tf:.0f}x, "
          f"{fast.cycles} cycles both")


if __name__ == "__main__":
    main()

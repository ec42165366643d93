"""Wall time of the nine EIE benchmark layers (batch 1) on eie-64, fast engine, and the
cycle-stepping reference on the same schedules for a ratio; and the PE-scaling study's
two steps on alex7 (``hwsim eie-sweep --param pes``) against the forms they replace:
counting entries per row batch against encoding each batch, and timing all passes at
once against one pass at a time.

    python benchmarks/eie_speed.py
"""

import time

import numpy as np

from sim.eie import PRESETS, simulate
from sim.eie.encode import encode, synthetic_activations
from sim.eie.encode import batch_counts, column_major
from sim.eie.engine import column_tiles, pass_timing, pass_timings, simulate_cycles
from sim.eie.study import PES
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
    # the PE-scaling study on alex7: every PE count's row batches
    t0 = time.perf_counter()
    cm = column_major(layer)
    counts = {p: batch_counts(cm, p, p * arch.act_regs, arch.max_zero_run) for p in PES}
    tc = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p, (ent, pad) in counts.items():
        rows = p * arch.act_regs
        for b, r0 in enumerate(range(0, layer.shape[0], rows)):
            enc = encode(layer, p, arch.max_zero_run, row0=r0, rows=min(rows, layer.shape[0] - r0))
            assert (enc.entries == ent[b]).all() and (enc.padding == pad[b]).all()
    te = time.perf_counter() - t0
    print(f"alex7 PE scaling counts: one count per PE number {tc * 1e3:.0f} ms, encoding each row batch "
          f"{te * 1e3:.0f} ms, ratio {te / tc:.1f}x, equal")
    nz = acts != 0
    passes = [[ent[:, c0:c0 + nc][:, np.flatnonzero(nz[c0:c0 + nc])] for ent in ents
               for c0, nc in column_tiles(ent, arch)] for ents, _ in counts.values()]
    t0 = time.perf_counter()
    together = [pass_timings(ps, arch.queue_depth, arch.pipeline_depth) for ps in passes]
    tt = time.perf_counter() - t0
    t0 = time.perf_counter()
    alone = [[pass_timing(e, arch.queue_depth, arch.pipeline_depth, schedule=False) for e in ps] for ps in passes]
    ta = time.perf_counter() - t0
    assert [[t.cycles for t in ts] for ts in together] == [[t.cycles for t in ts] for ts in alone]
    print(f"alex7 PE scaling timing ({sum(map(len, passes))} passes): together {tt * 1e3:.0f} ms, one at a time "
          f"{ta * 1e3:.0f} ms, ratio {ta / tt:.1f}x, equal cycles")


if __name__ == "__main__":
    main()

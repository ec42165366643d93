"""The six TPU-paper workloads on the tpu-v1 preset, in the spirit of the TPU paper's
Table 3: throughput and where the cycles go.

    python benchmarks/tpu_table.py

Columns: TOPS achieved; utilisation of the 65,536 MACs; share of cycles the array
computes (fold pipeline with unlimited weight bandwidth), waits for weights from the
34 GB/s DDR3 (stalls), and spends in vector ops; MACs per weight byte.
"""

import pandas as pd

from sim.systolic import PRESETS, simulate
from workloads import resolve
from workloads.zoo import TPU_WORKLOADS


def main() -> None:
    tpu = PRESETS["tpu-v1"]
    rows = []
    for name in TPU_WORKLOADS:
        wl = resolve(name)
        res = simulate(wl, tpu)
        cyc = res.cycles
        gemm = [o for o in res.ops if o.macs]
        vec = sum(o.cycles for o in res.ops if not o.macs)
        stall = sum(o.stall_cycles for o in gemm)
        weights = sum(op.operand("weight").nbytes for op in wl.ops if op.is_gemm)
        rows.append({"workload": wl.name, "batch": wl.batch, "TOPS": 2 * res.macs / (res.time_us * 1e-6) / 1e12,
                     "util_%": 100 * res.macs / (tpu.pes * cyc), "compute_%": 100 * (cyc - stall - vec) / cyc,
                     "weight_stall_%": 100 * stall / cyc, "vector_%": 100 * vec / cyc,
                     "macs_per_weight_byte": res.macs / weights, "time_us": res.time_us})
    print(pd.DataFrame(rows).round(2).to_string(index=False))
    print(f"peak {tpu.peak_tops:.2f} TOPS; ridge {tpu.pes / tpu.dram_bw_bytes_per_cycle:.0f} MACs per weight byte")


if __name__ == "__main__":
    main()

"""The TPU paper's Table 3 for its six workloads: the tpu-v1 preset against the paper.

    python benchmarks/tpu_table.py

Jouppi et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit", ISCA 2017
(arXiv:1704.04760), Table 3: where the matrix unit's cycles go, from hardware performance
counters on production code. hwsim's rows come from ``sim.systolic.counters.table3``
(see it for what each row counts), the layers run as one instruction stream
(``sim.systolic.program``: decoupled weight reads, the host link). The workloads are the zoo's approximations of the
paper's Table 1 (``workloads/zoo/tpu.py``: equal layers sized to the published weights,
layer counts, batch and ops per weight byte); the paper gives no layer shapes.
"""

import pandas as pd

from sim.systolic import PRESETS, simulate
from sim.systolic.counters import ROWS, table3
from workloads import resolve
from workloads.zoo import TPU_WORKLOADS

# Jouppi et al. 2017, Table 3, columns MLP0 MLP1 LSTM0 LSTM1 CNN0 CNN1 (percent of cycles;
# TOPS of production code, 92 peak). Rows 1, 4, 5, 6 total 100%; rows 2 and 3 split row 1;
# rows 7 and 8 are counters for two causes within row 6.
PAPER = {
    "array_active_%": (12.7, 10.6, 8.2, 10.5, 78.2, 46.2),
    "useful_macs_%": (12.5, 9.4, 8.2, 6.3, 78.2, 22.5),
    "unused_macs_%": (0.3, 1.2, 0.0, 4.2, 0.0, 23.7),
    "weight_stall_%": (53.9, 44.2, 58.1, 62.1, 0.0, 28.1),
    "weight_shift_%": (15.9, 13.4, 15.8, 17.1, 0.0, 7.0),
    "non_matrix_%": (17.5, 31.9, 17.9, 10.3, 21.8, 18.7),
    "raw_stall_%": (3.3, 8.4, 14.6, 10.6, 3.5, 22.8),
    "input_stall_%": (6.1, 8.8, 5.1, 2.4, 3.4, 0.6),
    "TOPS": (12.3, 9.7, 3.7, 2.8, 86.0, 14.1),
}


def main() -> None:
    tpu = PRESETS["tpu-v1"]
    cols: dict[str, dict[str, float | None]] = {}
    for i, name in enumerate(TPU_WORKLOADS):
        res = simulate(resolve(name), tpu)
        ours = table3(res, tpu.pes, host=True)
        label = res.workload
        cols[f"{label} hwsim"] = ours
        cols[f"{label} paper"] = {k: PAPER[k][i] for k in ROWS}
    frame = pd.DataFrame(cols).reindex(ROWS)
    print("Table 3 (Jouppi et al. 2017) on tpu-v1: percent of cycles, TOPS at 2 ops per MAC")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(frame.astype(float).round(1).to_string(na_rep="-"))
    print("the matrix unit's cycles as one instruction stream (sim.systolic.program): weights read ahead "
          "into the gap before each layer, the input over PCIe Gen3 x16 before the first layer and the output "
          "after the last")


if __name__ == "__main__":
    main()

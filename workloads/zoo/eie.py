"""The nine benchmark layers of EIE (Han et al., ISCA 2016, Table III) as one workload.

Each layer is an M = batch GEMM (a sparse matrix times activation vectors) with the
paper's weight and activation densities. No weight values are stored: the EIE simulator
draws a seeded synthetic sparsity pattern at the given density (or uses real values from
a compressed trace). Weights are 4-bit codebook indices, activations 16-bit fixed point.
"""

from __future__ import annotations

from ..trace import Op, Operand, Workload

__all__ = ["SOURCE", "LAYERS", "eie_benchmarks"]

SOURCE = "Han et al., EIE, ISCA 2016, Table III"

# name, inputs (K), outputs (N), weight density, activation density
LAYERS = (
    ("alex6", 9216, 4096, 0.09, 0.351), ("alex7", 4096, 4096, 0.09, 0.353),
    ("alex8", 4096, 1000, 0.25, 0.375), ("vgg6", 25088, 4096, 0.04, 0.183),
    ("vgg7", 4096, 4096, 0.04, 0.375), ("vgg8", 4096, 1000, 0.23, 0.411),
    ("nt-we", 4096, 600, 0.10, 1.0), ("nt-wd", 600, 8791, 0.11, 1.0),
    ("nt-lstm", 1201, 2400, 0.10, 1.0),
)


def eie_benchmarks(batch: int = 1):
    ops = []
    for name, k, n, wd, ad in LAYERS:
        ops.append(Op(name=name, kind="gemm", op="linear", dims={"M": batch, "N": n, "K": k},
                      operands=(Operand("input", (batch, k), 16, "fixed", ad),
                                Operand("weight", (n, k), 4, "index", wd),
                                Operand("output", (batch, n), 16, "fixed", 1.0))))
    return Workload(name="eie-benchmarks", ops=tuple(ops), batch=batch, input_shape=(batch, 9216), source=SOURCE)

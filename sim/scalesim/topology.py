"""SCALE-Sim's topology: the layers it simulates, as its own reader splits them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import HwsimError

__all__ = ["Layer", "read_topology"]


@dataclass(frozen=True)
class Layer:
    name: str
    H: int
    W: int
    R: int
    S: int
    C: int
    K: int
    sh: int
    sw: int

    @property
    def ofmap(self) -> tuple[int, int]:
        return math.ceil((self.H - self.R + self.sh) / self.sh), math.ceil((self.W - self.S + self.sw) / self.sw)


def read_topology(path: str | Path, gemm: bool | None = None) -> list[Layer]:
    """SCALE-Sim's topology reader: conv rows, or GEMM rows (M, N, K) as an M x K ifmap with
    N filters of 1 x K; ``DP`` layers split into one layer per channel."""
    from workloads.scalesim_topo import records

    form, rows = records(path, None if gemm is None else ("gemm" if gemm else "conv"))
    layers = []
    for r in rows:
        if r.density != 1.0:
            raise HwsimError(f"{r.where}: a sparsity ratio: sparsity is not supported in compatibility mode")
        if form == "gemm":
            M, N, K = r.vals
            layers.append(Layer(r.name, M, K, 1, K, 1, N, 1, 1))
            continue
        H, W, R, S, C, K, s = r.vals
        if "DP" in r.name:
            layers += [Layer(f"{r.name}Channel_{c}", H, W, R, S, 1, K, s, s) for c in range(C)]
        else:
            layers.append(Layer(r.name, H, W, R, S, C, K, s, s))
    return layers

"""Per-event energies of a tensor-core GPU from its measured energy (NVML), the way
AccelWattch (Kandiah et al., MICRO 2021) and Arafa et al. ("Verified instruction-level
energy consumption measurement for NVIDIA GPUs", CF 2020) derive theirs from microbenchmarks.

NVIDIA publishes no per-access energies for its register files, shared memory or L2, and
none for a tensor-core FMA. The model keeps the *relative* costs of Horowitz's 45 nm table
(ISSCC 2014: an FMA is a multiply at the input width plus an fp32 add; an SRAM access costs
by its capacity) and scales all on-chip energies by one factor ``k``. Two quantities are
fitted to two measured GEMMs of the card, and nothing to a throughput:

* ``k``, the on-chip scale: how much less an on-chip event costs on this card's process than
  Horowitz's 45 nm figure;
* ``active_power_w``: what the card draws on top of its idle power while kernels keep its
  SMs busy (clock tree, schedulers, the memory system's standing power; AccelWattch's
  "constant power" and per-SM activation power).

One compute-bound GEMM (mostly tensor-core and register-file energy) and one DRAM-bound
GEMV (mostly DRAM, L2 and active power) make the two equations. DRAM energy is not fitted:
it is the memory's published energy per bit, whatever the logic process. The other measured
GEMMs and whole networks are held out (``benchmarks/gpu_energy_fit.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sim.gpu.arch import GPUArch
from sim.gpu.power import sm_share
from sim.gpu.simulate import simulate_op
from workloads.errors import HwsimError

from .energy import load_table

# The calibration GEMMs (M, N, K, precision): one compute-bound, one DRAM-bound.
CALIBRATION_SHAPES = ((4096, 4096, 4096, "fp16"), (1, 8192, 8192, "fp16"))


@dataclass(frozen=True)
class Measured:
    """One GEMM's NVML reading: joules per GEMM and the card's average power over the loop."""

    M: int
    N: int
    K: int
    precision: str
    energy_mj: float
    avg_power_w: float

    @property
    def seconds(self) -> float:
        """Time per GEMM while the loop ran (energy / power: the sustained, possibly throttled, time)."""
        return self.energy_mj * 1e-3 / self.avg_power_w


@dataclass(frozen=True)
class Calibration:
    k: float                          # on-chip energies / Horowitz 45 nm
    active_power_w: float
    mac_pj: Mapping[str, float]
    rf_pj_per_byte: float
    smem_pj_per_byte: float
    l2_pj_per_byte: float
    dram_pj_per_byte: float

    def fields(self) -> dict[str, object]:
        """The GPUArch fields this calibration sets."""
        return {"mac_pj": dict(self.mac_pj), "rf_pj_per_byte": self.rf_pj_per_byte,
                "smem_pj_per_byte": self.smem_pj_per_byte, "l2_pj_per_byte": self.l2_pj_per_byte,
                "dram_pj_per_byte": self.dram_pj_per_byte, "active_power_w": self.active_power_w}


def read_measurements(csv: str | Path) -> list[Measured]:
    """The rows of ``benchmarks/gpu_matmul_timing.py``'s CSV that carry an NVML energy."""
    import pandas as pd
    df = pd.read_csv(csv)
    df = df[df.energy_mj_per_gemm.notna()]
    names = {"float16": "fp16", "bfloat16": "bf16"}
    return [Measured(int(r.M), int(r.N), int(r.K), names.get(r.dtype, r.dtype), float(r.energy_mj_per_gemm),
                     float(r.avg_power_w)) for r in df.itertuples()]


def _uncalibrated(arch: GPUArch) -> GPUArch:
    return dataclasses.replace(arch, mac_pj={}, rf_pj_per_byte=0.0, smem_pj_per_byte=0.0, l2_pj_per_byte=0.0,
                               dram_pj_per_byte=0.0, active_power_w=0.0)


def horowitz_prices(arch: GPUArch) -> dict[str, float]:
    """The card's events at Horowitz's 45 nm prices (pJ per FMA or per byte)."""
    t = load_table("horowitz45")
    levels = _uncalibrated(arch).memory_levels()
    out = {f"mac.{p}": t.op_pj(f"mac.{p}") for p in arch.tc_fma_per_clk}
    for name in ("rf", "smem", "l2_sram"):
        lv = levels[name]
        out[name] = t.level_pj_per_byte(lv.kind, lv.capacity_bytes)
    return out


def _events(arch: GPUArch, M: int, N: int, K: int, precision: str) -> tuple[float, float, float]:
    """(on-chip energy at 45 nm prices in pJ, DRAM bytes, SM share) of one GEMM on ``arch``."""
    from workloads.build import gemm_op
    r = simulate_op(gemm_op("gemm", M, N, K), _uncalibrated(arch), precision)
    prices = horowitz_prices(arch)
    onchip = sum(n * prices[k] for k, n in r.ops.items() if k.startswith("mac."))
    dram = 0.0
    for key, nbytes in r.accesses.items():
        level = key.split(".")[0]
        if level == "dram":
            dram += nbytes
        else:
            onchip += nbytes * prices[level]
    return onchip, dram, sm_share(r.extra.ctas, arch)


def calibrate(arch: GPUArch, measured: Sequence[Measured], dram_pj_per_bit: float,
              shapes: Sequence[tuple[int, int, int, str]] = CALIBRATION_SHAPES) -> Calibration:
    """Fit ``k`` and the active power to the measured GEMMs of ``shapes`` on ``arch``
    (whose ``static_power_w`` is the card's idle power)."""
    rows = []
    for shape in shapes:
        m = next((x for x in measured if (x.M, x.N, x.K, x.precision) == shape), None)
        if m is None:
            raise HwsimError(f"calibration: no NVML energy for the {shape} GEMM in the measurements")
        onchip, dram_bytes, share = _events(arch, *shape)
        dynamic = m.energy_mj * 1e-3 - arch.static_power_w * m.seconds        # J beyond idle
        rows.append(([onchip * 1e-12, share * m.seconds], dynamic - dram_bytes * dram_pj_per_bit * 8 * 1e-12))
    a = np.array([r[0] for r in rows])
    b = np.array([r[1] for r in rows])
    k, active = (float(x) for x in np.linalg.lstsq(a, b, rcond=None)[0])
    if not (k > 0 and active >= 0 and math.isfinite(k + active)):
        raise HwsimError(f"calibration of {arch.name}: the fit gives k = {k:g}, active power = {active:g} W; "
                         "the measurements do not support a positive on-chip energy and active power")
    p = horowitz_prices(arch)
    return Calibration(k=k, active_power_w=active,
                       mac_pj={q: k * p[f"mac.{q}"] for q in arch.tc_fma_per_clk},
                       rf_pj_per_byte=k * p["rf"], smem_pj_per_byte=k * p["smem"], l2_pj_per_byte=k * p["l2_sram"],
                       dram_pj_per_byte=dram_pj_per_bit * 8)

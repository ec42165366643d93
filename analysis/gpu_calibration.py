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
  SMs busy at full clock (clock tree, schedulers, the memory system's standing power;
  AccelWattch's "constant power" and per-SM activation power), an energy per SM cycle: it
  accrues over the GEMM's full-clock time (its short CUDA-graph timing), idle power over
  the whole (possibly power-limited) loop.

One compute-bound GEMM (mostly tensor-core and register-file energy) and one DRAM-bound
GEMV (mostly DRAM, L2 and active power) make the two equations. DRAM energy is not fitted:
it is the memory's published energy per bit, whatever the logic process. The other measured
GEMMs and whole networks are held out (``benchmarks/gpu_compare.py``).

Cards nobody here has measured get their own prices one of two ways:

* ``transfer``: a calibration carried to another die by the foundry's published power at
  the same speed (``PROCESS_POWER``) for the on-chip events, and by transistors x clock x
  that power for the active power. DRAM keeps its per-bit price. Checked against a
  published measurement of the target card before a preset takes it
  (``benchmarks/data/published_gemm.csv``).
* ``table_prices``: the energy table's prices at the card's node, the ones the card was
  charged before it priced itself; the card then also runs under its power limit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sim.gpu.arch import GPUArch
from sim.gpu.dvfs import HELD_AT_LIMIT, voltage
from sim.gpu.power import sm_share
from sim.gpu.simulate import simulate_op
from workloads.errors import HwsimError

from .energy import load_table

__all__ = ["CALIBRATION_SHAPES", "Measured", "Calibration", "read_measurements", "horowitz_prices", "calibrate",
           "PROCESS_POWER", "process_power", "transfer", "table_prices"]

# The calibration GEMMs (M, N, K, precision): one compute-bound, one DRAM-bound.
CALIBRATION_SHAPES = ((4096, 4096, 4096, "fp16"), (1, 8192, 8192, "fp16"))


@dataclass(frozen=True)
class Measured:
    """One GEMM's NVML reading: joules per GEMM and the card's average power over the loop,
    and its time in a short CUDA-graph burst (before the power limit slows the clock)."""

    M: int
    N: int
    K: int
    precision: str
    energy_mj: float
    avg_power_w: float
    burst_us: float = math.nan

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
                     float(r.avg_power_w), float(r.time_us)) for r in df.itertuples()]


def _unpriced(arch: GPUArch) -> GPUArch:
    return dataclasses.replace(arch, mac_pj={}, rf_pj_per_byte=0.0, smem_pj_per_byte=0.0, l2_pj_per_byte=0.0,
                               dram_pj_per_byte=0.0, active_power_w=0.0)


def horowitz_prices(arch: GPUArch) -> dict[str, float]:
    """The card's events at Horowitz's 45 nm prices (pJ per FMA or per byte)."""
    t = load_table("horowitz45")
    levels = _unpriced(arch).memory_levels()
    out = {f"mac.{p}": t.op_pj(f"mac.{p}") for p in arch.tc_fma_per_clk}
    for name in ("rf", "smem", "l2_sram"):
        lv = levels[name]
        out[name] = t.level_pj_per_byte(lv.kind, lv.capacity_bytes)
    return out


def _events(arch: GPUArch, M: int, N: int, K: int, precision: str) -> tuple[float, float, float]:
    """(on-chip energy at 45 nm prices in pJ, DRAM bytes, SM share) of one GEMM on ``arch``."""
    from workloads.build import gemm_op
    r = simulate_op(gemm_op("gemm", M, N, K), _unpriced(arch), precision)
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
        # active power is an energy per SM cycle: it accrues over the full-clock time (the
        # burst timing), however long the power limit then stretches the loop
        full_s = min(m.seconds, m.burst_us * 1e-6) if math.isfinite(m.burst_us) else m.seconds
        # a loop held at the power limit ran at the clock share burst / loop time, and at the
        # voltage of the card's curve there: its on-chip energies are the nominal ones x v^2
        # (sim.gpu.dvfs); a loop below the limit ran at the nominal clock
        held = arch.tdp_w and m.avg_power_w >= HELD_AT_LIMIT * arch.tdp_w
        v2 = voltage(arch.vf_curve, full_s / m.seconds) ** 2 if held else 1.0
        rows.append(([onchip * 1e-12 * v2, share * full_s * v2], dynamic - dram_bytes * dram_pj_per_bit * 8 * 1e-12))
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


# Power of the same design at the same speed, relative to a TSMC 16 nm-class process, by
# the node a GPUArch names (its technology_nm): TSMC's published iso-speed figures.
#   16, 12: 16FF+ and its 12 nm refinements (TSMC calls 12 nm an improved 16 nm: CC Wei,
#           TSMC earnings call, 2017); no reduction credited to 12 nm
#   7:  N7 draws 60% less than 16FF+ (TSMC at N7 volume production, 2018; the chain of its
#       node pages agrees: 10 nm -35% vs 16FF+, N7 -40% vs 10 nm, 0.65 x 0.60 = 0.39)
#   5, 4: N5 draws ~30% less than N7 (tsmc.com, 5nm technology); NVIDIA's 4N (Hopper) is
#       in TSMC's N5 family (Tom's Hardware, 2022)
PROCESS_POWER: dict[float, float] = {16: 1.0, 12: 1.0, 7: 0.40, 5: 0.28, 4: 0.28}


def process_power(arch: GPUArch) -> float:
    """The card's process power at the same speed, relative to TSMC 16 nm (``PROCESS_POWER``)."""
    node = arch.technology_nm
    if node not in PROCESS_POWER:
        raise HwsimError(f"{arch.name}: no published process power for a {node:g} nm node; "
                         f"known: {', '.join(f'{n:g}' for n in sorted(PROCESS_POWER))} nm")
    return PROCESS_POWER[node]


def _active_capacitance(arch: GPUArch) -> float:
    """Transistors of the SMs the card enables, in billions (the die's, pro rata)."""
    if not (arch.die_transistors_b and arch.die_sms):
        raise HwsimError(f"{arch.name}: die_transistors_b and die_sms are needed to scale active power "
                         "to it; set them from the die's whitepaper")
    return arch.die_transistors_b * arch.sms / arch.die_sms


def transfer(cal: Calibration, source: GPUArch, target: GPUArch) -> Calibration:
    """``cal`` (fitted on ``source``) carried to ``target``: the on-chip scale ``k`` by the
    ratio of the two processes' power at the same speed, the active power by that ratio x
    the enabled transistors x the clock; DRAM is the target memory's per-bit price (the
    energy table's, as the calibration's own)."""
    r = process_power(target) / process_power(source)
    k = cal.k * r
    active = (cal.active_power_w * r * _active_capacitance(target) / _active_capacitance(source)
              * target.clock_mhz / source.clock_mhz)
    p = horowitz_prices(target)
    return Calibration(k=k, active_power_w=active, mac_pj={q: k * p[f"mac.{q}"] for q in target.tc_fma_per_clk},
                       rf_pj_per_byte=k * p["rf"], smem_pj_per_byte=k * p["smem"], l2_pj_per_byte=k * p["l2_sram"],
                       dram_pj_per_byte=load_table("horowitz45").level_pj_per_byte("dram", dram=target.dram_type))


def table_prices(arch: GPUArch, table: str = "horowitz45") -> Calibration:
    """The energy table's prices for ``arch``'s events at its node (no active power): what
    the analysis charges a card that has no prices of its own."""
    t = load_table(table).at_node(arch.technology_nm)
    levels = _unpriced(arch).memory_levels()
    lv = {name: t.level_pj_per_byte(levels[name].kind, levels[name].capacity_bytes) for name in ("rf", "smem", "l2_sram")}
    return Calibration(k=t.scale, active_power_w=0.0,
                       mac_pj={q: t.op_pj(f"mac.{q}") for q in arch.tc_fma_per_clk},
                       rf_pj_per_byte=lv["rf"], smem_pj_per_byte=lv["smem"], l2_pj_per_byte=lv["l2_sram"],
                       dram_pj_per_byte=t.level_pj_per_byte("dram", dram=arch.dram_type))

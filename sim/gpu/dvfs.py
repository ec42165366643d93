"""The board power manager: the clock and supply voltage kernels run at under the card's
power limit (dynamic voltage and frequency scaling).

NVIDIA's power limiter acts on the clock, not on power ("SW Power Cap: the SW power scaling
algorithm is reducing the clocks below requested clocks", NVML ``nvmlClocksEventReasons`` and
DCGM's clock-throttle reasons), and the supply voltage follows the clock along the chip's
voltage-frequency curve. A lower clock therefore also makes each event cheaper: dynamic
energy per event scales with V^2 (the rule AccelWattch applies under DVFS, Kandiah et al.,
MICRO 2021, ``gpgpu_sim_wrapper.cc``). Power at clock share ``s`` of the nominal clock is

    P(s) = idle + (E_v x v(s)^2 + E_dram) / T(s)

with ``E_v`` the kernels' on-chip dynamic energy and the active power of the SM cycles they
hold (time x clock) at the nominal voltage, ``E_dram``
their DRAM energy (the memory's own rail), ``v(s)`` the voltage share and ``T(s)`` their time:
the DRAM's clock does not scale, the SMs', L2's and shared memory's do. A kernel bound by
its tensor cores, CUDA cores or L2 stretches to ``max(T0 / s, T_dram)`` (``T_dram``: its DRAM
bytes at the achievable bandwidth, overlapped); a DRAM-bound one (memory-bound, its DRAM
bytes most of its nominal time: ``sim.gpu.simulate.DRAM_BOUND_SHARE``) keeps its DRAM time and stretches the rest,
``T_dram + (T0 - T_dram) / s``. The manager holds the board at its limit: if ``P(1)`` exceeds it, the
clock falls to the ``s`` where ``P(s)`` equals it (``P`` rises with ``s``).

**The window.** The limiter averages power over a window far longer than a kernel: on an H200
this project measured 20-GEMM CUDA graphs of 4096^3 fp16 replayed for ~60 ms from a cool card
at the unthrottled rate (766 TFLOP/s) and the same GEMM in a 3 s loop at 633 TFLOP/s and 695 W
(``benchmarks/data/NVIDIA_H200_matmul.csv``), so the window is at least tens of ms; NVML
itself reports a 1 s average on Ampere and later. A workload run in a loop (a serving or
training step repeated) therefore settles at one clock for its whole kernel mix
(:func:`mix_clock`): element-wise and memory-bound kernels, drawing less, leave more power
for the GEMMs. That steady state is what ``simulate`` reports; a one-GEMM workload is the
GEMM looped (the power-limited benchmark). A burst (``GPUArch.power: burst``: a run shorter
than the window from a cool card, as a microbenchmark of a few dozen calls) runs every kernel
at the nominal clock; what lies between (a run of about the window's length, whose clock
falls part way through) is not modelled, nor is the window's length.

**The voltage-frequency curve** (``GPUArch.vf_curve``): points (clock share, voltage share)
of the nominal clock and voltage. No vendor publishes one for these cards. ``GA100_VF`` is
derived from a measurement (:func:`vf_from_power`): the board power of an A100-PCIe running
one fixed FP32 kernel at ten locked clocks (``A100_PCIE_POWER``). Up to 1005 MHz power rises
linearly with the clock (constant voltage: ``P = P0 + c f``, fitted on those seven points);
above it each point's voltage share is ``sqrt((P - P0) / (c f))``. The curve is an upper bound
on the voltage's rise (leakage and temperature also rise with the clock) and is the shape the
"Going green" model assumes (flat to a ridge frequency, then rising; Schoonhoven et al.,
PMBS@SC22, arXiv:2211.07260).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

__all__ = ["A100_PCIE_POWER", "A100_PCIE_KNEE_MHZ", "vf_from_power", "GA100_VF", "HELD_AT_LIMIT", "voltage", "Demand", "stretched",
           "mix_clock"]

# Board power (W) of an A100-PCIE-40GB running a synthetic FP32 FMA kernel at locked SM
# clocks (MHz), NVML readings: KernelTuner/kernel_tuner_tutorial,
# energy/data/synthetic_fp32_cache_NVIDIA_A100-PCIE-40GB.json at commit
# 9d3f0878ca3cbbd3d9e64487a5eaad7e691c6469 (recorded 2023-04-17).
A100_PCIE_POWER: tuple[tuple[float, float], ...] = (
    (210, 42.0), (330, 47.0), (465, 52.7), (600, 58.6), (735, 65.0), (870, 71.5), (1005, 78.1),
    (1140, 92.0), (1275, 116.6), (1410, 153.4))
# The knee: the last clock of the linear (constant-voltage) part of that table. The voltage
# read there agrees: nvidia-smi -q reports 712.5 mV on an A100 SXM4 at 1080 MHz, as at 210 MHz
# idle (NVIDIA/nvidia-docker issue 1648).
A100_PCIE_KNEE_MHZ = 1005.0


def vf_from_power(table: Sequence[tuple[float, float]], knee_mhz: float) -> tuple[tuple[float, float], ...]:
    """(clock share, voltage share) points from board power at locked clocks of one fixed
    kernel: a line ``P0 + c f`` through the points up to ``knee_mhz`` (constant voltage), and
    above it ``v = sqrt((P - P0) / (c f))``; both shares relative to the table's top clock."""
    f = np.array([p[0] for p in table], dtype=float)
    w = np.array([p[1] for p in table], dtype=float)
    low = f <= knee_mhz
    c, p0 = np.polyfit(f[low], w[low], 1)
    v = np.where(low, 1.0, np.sqrt(np.maximum(w - p0, 0.0) / (c * f)))
    v = np.maximum.accumulate(v)
    return tuple((float(a), float(b)) for a, b in zip(f / f[-1], v / v[-1]))


GA100_VF = vf_from_power(A100_PCIE_POWER, A100_PCIE_KNEE_MHZ)

# A measured loop whose NVML average power is within 3% of the board limit was held there by
# the manager (an H200's 4096^3, 8192^3, 16384^3 and 64x8192x8192 fp16 loops read 690-695 W of
# 700 W, its 1x8192x8192 GEMV 478 W: benchmarks/data/NVIDIA_H200_matmul.csv); a named
# threshold, used where a calibration reads the clock a loop ran at (analysis.gpu_calibration).
HELD_AT_LIMIT = 0.97


def voltage(curve: Sequence[tuple[float, float]], s: float) -> float:
    """The voltage share at clock share ``s`` (1 with no curve: the voltage does not follow the clock)."""
    if not curve:
        return 1.0
    return float(np.interp(s, [p[0] for p in curve], [p[1] for p in curve]))


@dataclass(frozen=True)
class Demand:
    """What one kernel asks of the board at the nominal clock and voltage."""

    seconds: float        # T0: its time at the nominal clock
    dram_seconds: float   # its DRAM bytes at the achievable bandwidth: the least time at any clock
    onchip_j: float       # dynamic energy of its on-chip events (the core rail: scales with V^2)
    dram_j: float         # DRAM energy (the memory's own rail)
    active_w: float = 0.0  # active power of the SMs it keeps busy, at the nominal clock and voltage
    dram_bound: bool = False

    def energy(self, s: float, v: float) -> float:
        """Its energy at clock share ``s`` and voltage share ``v``: events and the active power
        of the SM cycles it holds (time x clock) at ``v^2``, DRAM as is."""
        return (self.onchip_j + self.active_w * self.at(s) * s) * v * v + self.dram_j

    def times(self, n: int) -> "Demand":
        """``n`` runs of this kernel back to back (times and energies are linear in ``n``)."""
        if n == 1:
            return self
        return replace(self, seconds=self.seconds * n, dram_seconds=self.dram_seconds * n,
                       onchip_j=self.onchip_j * n, dram_j=self.dram_j * n)

    def at(self, s: float) -> float:
        """Its time at clock share ``s`` (module docstring)."""
        return stretched(self.seconds, self.dram_seconds, s, self.dram_bound)


def stretched(t0: float, t_dram: float, s: float, dram_bound: bool) -> float:
    """A kernel's time at clock share ``s``: ``t0`` at the nominal clock, ``t_dram`` its DRAM
    bytes' time at the achievable bandwidth (module docstring)."""
    if dram_bound:
        return min(t0, t_dram) + max(0.0, t0 - t_dram) / s
    return max(t0 / s, t_dram)


def _power(demands: Sequence[Demand], curve: Sequence[tuple[float, float]], idle_w: float, s: float) -> float:
    v = voltage(curve, s)
    t = sum(d.at(s) for d in demands)
    e = sum(d.energy(s, v) for d in demands)
    return idle_w + e / t if t > 0 else idle_w


def mix_clock(demands: Sequence[Demand], curve: Sequence[tuple[float, float]], idle_w: float,
              limit_w: float) -> float:
    """The clock share the manager settles at for a loop of ``demands``: 1 if their power at
    the nominal clock is within ``limit_w``, else the share where it equals the limit
    (bisection), but no lower than the curve's lowest clock (the card's floor: A100's 210 of
    1410 MHz in GA100_VF; with no curve, where power falls linearly with the clock to idle,
    the limit is always met above 0)."""
    if not limit_w or not demands or _power(demands, curve, idle_w, 1.0) <= limit_w:
        return 1.0
    lowest = curve[0][0] if curve else 1e-6
    lo, hi = lowest, 1.0
    if _power(demands, curve, idle_w, lo) > limit_w:
        return lo
    for _ in range(40):
        mid = (lo + hi) / 2
        if _power(demands, curve, idle_w, mid) > limit_w:
            hi = mid
        else:
            lo = mid
    return lo

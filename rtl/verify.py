"""``hwsim verify`` as a function: co-simulate an RTL unit against its cycle-level model on
random and edge-case stimuli (zeros, extremes, long zero runs), trial by trial."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from workloads.errors import HwsimError

from . import cosim
from .units import UNITS

__all__ = ["Trial", "verify"]

BACKENDS = ("amaranth", "cxxrtl")


@dataclass(frozen=True)
class Trial:
    """One co-simulated stimulus: what it was and the comparison's outcome."""

    index: int
    what: str
    result: cosim.Cosim


def verify(unit: str, trials: int = 5, size: tuple[int, int] = (4, 4), backend: str = "amaranth",
           seed: int = 0) -> Iterator[Trial]:
    """Co-simulate ``unit`` (one of :data:`rtl.units.UNITS`) on ``trials`` stimuli, yielding each
    trial as it finishes. ``size``: the systolic array's R x C; for eie-pe the PEs in the array
    and the rows per PE / 16. The dot and mma units run all their operand sets as one trial."""
    if unit not in UNITS:
        raise HwsimError(f"unknown RTL unit {unit!r}; one of {', '.join(UNITS)}")
    if backend not in BACKENDS:
        raise HwsimError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if trials < 1:
        raise HwsimError(f"--trials must be >= 1, got {trials}")
    R, C = size
    if R < 1 or C < 1:
        raise HwsimError(f"--size must be positive, got {R} {C}")
    if backend == "cxxrtl" and unit != "systolic":
        raise HwsimError("--backend cxxrtl drives the systolic array; use amaranth for eie-pe, dot and mma")
    if unit == "dot":
        r = cosim.verify_dot(trials, seed)
        yield Trial(0, f"{r.cycles_compared} operand sets", r)
        return
    if unit == "mma":
        r = cosim.verify_mma(trials, seed)
        yield Trial(0, f"{r.cycles_compared} operand sets ({r.details['outputs']} outputs)", r)
        return
    rng = np.random.default_rng(seed)
    for t in range(trials):
        yield _systolic_trial(t, rng, R, C, backend) if unit == "systolic" else _eie_trial(t, rng, R, C, seed)


def _systolic_trial(t: int, rng: np.random.Generator, R: int, C: int, backend: str) -> Trial:
    from sim.systolic import PRESETS

    arch = dataclasses.replace(PRESETS["systolic-32"], rows=R, cols=C)
    M, K, N = (int(x) for x in rng.integers(1, 3 * max(R, C), 3))
    kind = ["random", "zeros", "extremes"][t % 3] if t < 3 else "random"
    A = rng.integers(-128, 128, (M, K))
    B = rng.integers(-128, 128, (K, N))
    if kind == "zeros":
        A[:] = 0
    elif kind == "extremes":
        A = rng.choice([-128, 127], (M, K))
        B = rng.choice([-128, 127], (K, N))
    return Trial(t, f"{kind} {M}x{K} @ {K}x{N} on {R}x{C}", cosim.verify_systolic(A, B, arch, backend))


def _eie_trial(t: int, rng: np.random.Generator, R: int, C: int, seed: int) -> Trial:
    from sim.eie import PRESETS, synthetic, synthetic_activations

    arch = dataclasses.replace(PRESETS["eie-64"], num_pes=R, act_regs=max(64, 16 * C))
    rows, cols = int(rng.integers(1, R * arch.act_regs)), int(rng.integers(1, 200))
    kind = ["random", "zero activations", "long zero runs", "extremes"][t % 4] if t < 4 else "random"
    dens = 0.02 if kind == "long zero runs" else float(rng.uniform(0.05, 0.6))
    layer = synthetic(rows, cols, dens, seed=seed + t)
    acts = synthetic_activations(cols, 0.0 if kind == "zero activations" else float(rng.uniform(0.2, 1)), seed + t)
    if kind == "extremes":
        acts = np.where(acts != 0, 32767, 0)
    r = cosim.verify_eie_pe(layer, acts, arch, pe=int(rng.integers(0, R)))
    return Trial(t, f"{kind} {rows}x{cols} at {dens:.2f}, {R} PEs", r)

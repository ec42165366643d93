"""One real layer through the TPU tile (``rtl.tpu_tile``), against numpy and ``sim/``.

A zoo model is lowered (``workloads.spec.resolve``, the trace cache keeps it) and one of its
GEMM-like ops taken: a conv runs as its im2col GEMM, exactly as ``sim.systolic.simulate``
folds it (``mapping.folds`` with the conv's geometry for the DRAM bytes; float operands at
the array's ``word_bits``). Seeded random integers of ``word_bits`` fill the input and the
weights; the tile's results must equal numpy's int64 convolution (computed directly, not
through im2col) wrapped to ``acc_bits``, and its fold starts, stalls and total cycles must
equal ``sim.systolic.timing.schedule``'s, which is also checked against ``simulate_op``.
The tile's functional-coverage counters (``rtl.tpu_tile.POINTS``) come back with the result.

:func:`run_systolic_layer` is what ``hwsim verify systolic --layer MODEL:LAYER`` calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from sim.systolic import PRESETS
from sim.systolic.arch import SystolicArch
from sim.systolic.convdata import ConvGeometry
from sim.systolic.mapping import Folds, folds
from workloads.errors import HwsimError

from .tile_sim import BACKENDS, compare, gemm_program, run, sim_schedule, tiles
from .tpu_tile import chunk_rows, tile_rule

__all__ = ["LayerResult", "small_arch", "im2col", "conv_reference", "prefix", "run_systolic_layer",
           "PYSIM_FOLDS", "PYSIM_MAX_PE_CYCLES", "expected_prefix"]

# Amaranth's simulator runs the 16x16 tile at 118-142 cycles/s on this project's 2-core machine
# (30,000-36,000 PE-cycles/s; benchmarks/data/rtl_layer.txt) and the 4x4 tile at about 860
# (14,000 PE-cycles/s; `hwsim verify systolic --layer resnet18:layer4.0.conv2 --size 4 4`): the
# whole of layer1.0.conv1 (about half a million cycles) would take hours. Policy: it runs an op
# whole when its folds' serial cycles (streams plus a shift each) x PEs are at most
# PYSIM_MAX_PE_CYCLES (seconds), else its first PYSIM_FOLDS folds (the first loads, stalls and K
# accumulations), partial sums compared
PYSIM_MAX_PE_CYCLES = 200_000
PYSIM_FOLDS = 4
# for the estimate the note gives: the slower of the two rates above (an assumption for other sizes)
PYSIM_PE_CYCLES_PER_S = 15_000


def small_arch(rows: int = 16, cols: int = 16, base: str = "systolic-32") -> SystolicArch:
    """``base`` (a systolic preset) at ``rows x cols``: the tile's test and benchmark size."""
    return dataclasses.replace(PRESETS[base], name=f"{base}@{rows}x{cols}", rows=rows, cols=cols)


@dataclass(frozen=True)
class LayerResult:
    """One layer on one backend. ``cycles_sim``: ``sim/``'s cycles for the folds run (the
    whole layer's equal ``simulate_op``'s, checked); ``seconds``: simulation time (building a
    compiled backend not included: ``build_seconds``); ``note``: what was run, when a slice;
    ``coverage``: the tile's functional-coverage counters over the folds run (point of
    ``rtl.tpu_tile.POINTS`` -> hits)."""

    model: str
    layer: str
    arch: str
    backend: str
    seed: int
    gemm: tuple[int, int, int]          # M, N, K
    folds: int                          # the layer's
    folds_run: int
    outputs_match: bool
    outputs_compared: int
    cycles_rtl: int
    cycles_sim: int
    stalls_rtl: int
    stalls_sim: int
    first_mismatch: str | None
    seconds: float
    cycles_per_s: float
    build_seconds: float = 0.0
    note: str = ""
    coverage: Mapping[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.first_mismatch is None


def im2col(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``A[M, K]`` of a convolution: ``m = (n P + p) Q + q``, ``k = (c R + r) S + s``
    (PyTorch's weight layout, as ``sim.systolic.convdata``), zero padding."""
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (g.pad_h, g.pad_h), (g.pad_w, g.pad_w)))
    cols = np.zeros((N, g.P, g.Q, C, g.R, g.S), dtype=np.int64)
    for r in range(g.R):
        for s in range(g.S):
            h0, w0 = r * g.dil_h, s * g.dil_w
            win = xp[:, :, h0:h0 + g.stride_h * (g.P - 1) + 1:g.stride_h, w0:w0 + g.stride_w * (g.Q - 1) + 1:g.stride_w]
            cols[:, :, :, :, r, s] = win.transpose(0, 2, 3, 1)
    return cols.reshape(N * g.P * g.Q, C * g.R * g.S)


def conv_reference(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The convolution in int64, tap by tap (no im2col), as the GEMM's ``[M, K_out]``."""
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (g.pad_h, g.pad_h), (g.pad_w, g.pad_w)))
    out = np.zeros((x.shape[0], w.shape[0], g.P, g.Q), dtype=np.int64)
    for r in range(g.R):
        for s in range(g.S):
            h0, w0 = r * g.dil_h, s * g.dil_w
            win = xp[:, :, h0:h0 + g.stride_h * (g.P - 1) + 1:g.stride_h, w0:w0 + g.stride_w * (g.Q - 1) + 1:g.stride_w]
            out += np.einsum("ncpq,kc->nkpq", win, w[:, :, r, s].astype(np.int64))
    return out.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])


def prefix(f: Folds, n: int) -> Folds:
    """The first ``n`` folds of ``f`` (their per-fold arrays; the totals are left as they are)."""
    cut = {k: getattr(f, k)[:n] for k in ("T", "rows_used", "cols_used", "load", "store", "latency", "interval")}
    return dataclasses.replace(f, **cut)


def expected_prefix(A: np.ndarray, B: np.ndarray, full: np.ndarray, arch: SystolicArch, n: int,
                    partial: Callable[[int], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(what the first ``n`` folds leave in each output, which outputs they touch): ``full``
    (the independent reference) where all K folds ran, else the partial sum over the first
    ``k`` reduction indices of the K tiles that did: ``partial(k)`` (an ``[M, N]`` reference
    made without ``A``, e.g. the direct convolution with the later taps' weights zeroed), or
    ``A[:, :k] @ B[:k]`` (int64) where none is given."""
    M, K = A.shape
    N = B.shape[1]
    sums: dict[int, np.ndarray] = {}
    tt, kt, xt = tiles(M, chunk_rows(arch)), tiles(K, arch.rows), tiles(N, arch.cols)
    nk, nt = len(kt), len(tt)
    exp = np.zeros((M, N), dtype=np.int64)
    where = np.zeros((M, N), dtype=bool)
    for b in range(-(-n // nk)):
        xi, ti = divmod(b, nt)
        done = min(nk, n - b * nk)
        r0, c0 = sum(tt[:ti]), xi * arch.cols
        rows, cols = slice(r0, r0 + tt[ti]), slice(c0, c0 + xt[xi])
        k = sum(kt[:done])
        if done == nk:
            exp[rows, cols] = full[rows, cols]
        elif partial is not None:
            if k not in sums:
                sums[k] = partial(k)
            exp[rows, cols] = sums[k][rows, cols]
        else:
            exp[rows, cols] = A[rows, :k] @ B[:k, cols]
        where[rows, cols] = True
    return exp, where


def _op(model: str, layer: str):
    from workloads.spec import resolve
    wl = resolve(model, cache=True)
    ops = {op.name: op for op in wl.ops}
    if layer not in ops:
        gemms = [op.name for op in wl.ops if op.is_gemm][:8]
        raise HwsimError(f"{model} has no op {layer!r}; its GEMM-like ops include {', '.join(gemms)}")
    op = ops[layer]
    if not op.is_gemm or op.gemm is None:
        raise HwsimError(f"{model}:{layer} is a {op.kind} op; the tile runs GEMM-like ops (conv, linear, matmul)")
    if op.gemm.copies != 1 or op.gemm.steps != 1:
        raise HwsimError(f"{model}:{layer} runs {op.gemm.copies} copies x {op.gemm.steps} steps (groups, a batch of "
                         "matrices, a recurrence); the tile runs one GEMM")
    return op


def run_systolic_layer(model: str, layer: str, arch: SystolicArch | str | None = None, backend: str = "amaranth",
                       seed: int = 0, folds_run: int | None = None) -> LayerResult:
    """Run ``model``'s op ``layer`` (e.g. ``"resnet18"``, ``"layer1.0.conv1"``) through the
    TPU tile built from ``arch`` (a ``SystolicArch``, a preset name, or None: systolic-32 at
    16x16) on ``backend`` (amaranth, cxxrtl, verilator) with seeded random ``word_bits``
    integers; compare outputs with numpy and cycles with ``sim/``. ``folds_run``: run only the
    first so many folds, every fold's partial sums compared (default: all; on amaranth, an op
    over :data:`PYSIM_MAX_PE_CYCLES` runs its first :data:`PYSIM_FOLDS`)."""
    if backend not in BACKENDS:
        raise HwsimError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if arch is None:
        arch = small_arch()
    elif isinstance(arch, str):
        if arch not in PRESETS:
            raise HwsimError(f"unknown systolic preset {arch!r}; one of {', '.join(PRESETS)}")
        arch = PRESETS[arch]
    tile_rule(arch)
    op = _op(model, layer)
    g = op.gemm
    assert g is not None
    wb = arch.word_bits
    for o in op.operands:
        if o.dtype != "float" and o.bits != wb:
            raise HwsimError(f"{model}:{layer}: its {o.role} is int{o.bits}; the tile runs int{wb} operands")
    conv = ConvGeometry.of(op.dims) if op.kind == "conv" else None
    f_all = folds(g.M, g.N, g.K, arch, wb, wb, wb, conv=conv)     # as simulate_op folds it (quantize_float)
    F = f_all.count
    note = ""
    # the folds' streams plus a shift each: a size for Amaranth's simulator that reads nothing of sim's schedule
    pe_cycles = (int(np.sum(f_all.T)) + F * arch.rows) * arch.pes
    if folds_run is None and backend == "amaranth" and pe_cycles > PYSIM_MAX_PE_CYCLES:
        folds_run = min(F, PYSIM_FOLDS)
        whole = pe_cycles / PYSIM_PE_CYCLES_PER_S
        took = f"{whole / 3600:.1f} hours" if whole >= 3600 else f"{whole / 60:.0f} minutes" if whole >= 60 \
            else f"{whole:.0f} s"
        note = (f"Amaranth's simulator: the first {folds_run} of {F} folds (the whole layer, about {took} there), "
                "partial sums compared")
    n = F if folds_run is None else folds_run
    if not 1 <= n <= F:
        raise HwsimError(f"folds_run must be 1 to {F} (the layer's folds), got {n}")
    if n < F and not note:
        note = f"the first {n} of {F} folds, partial sums compared"
    f = prefix(f_all, n) if n < F else f_all
    s = sim_schedule(f, arch)
    if n == F:
        from sim.systolic.simulate import simulate_op
        whole = simulate_op(op, arch).cycles
        if whole != s.cycles:
            raise HwsimError(f"internal: the folds rebuilt here take {s.cycles} cycles, simulate_op {whole}")
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (wb - 1)), 1 << (wb - 1)
    if conv is not None:
        d = op.dims
        x = rng.integers(lo, hi, (conv.N, conv.C, conv.H, conv.W), dtype=np.int64)
        w = rng.integers(lo, hi, (d["K"], conv.C, conv.R, conv.S), dtype=np.int64)
        A, B = im2col(x, conv), w.reshape(d["K"], -1).T
        expected = conv_reference(x, w, conv)

        def taps(k: int) -> np.ndarray:     # the first k reduction indices (c R + r) S + s: the rest zeroed
            wk = w.reshape(d["K"], -1).copy()
            wk[:, k:] = 0
            return conv_reference(x, wk.reshape(w.shape), conv)
        partial: Callable[[int], np.ndarray] | None = taps
    else:
        A = rng.integers(lo, hi, (g.M, g.K), dtype=np.int64)
        B = rng.integers(lo, hi, (g.K, g.N), dtype=np.int64)
        expected = A @ B
        partial = None
    prog = gemm_program(A, B, arch, f)
    r = run(prog, arch, backend, partial=n < F)
    want, where = expected_prefix(A, B, expected, arch, n, partial)
    c = compare(r, s, want, where, acc_bits=arch.acc_bits)
    return LayerResult(model, layer, arch.name, backend, seed, (g.M, g.N, g.K), F, n, c.outputs_match,
                       c.outputs_compared, c.cycles_rtl, c.cycles_sim, c.stalls_rtl, c.stalls_sim, c.first_mismatch,
                       r.seconds, r.cycles / r.seconds if r.seconds > 0 else 0.0,
                       float(r.details.get("build_seconds", 0.0)), note, dict(r.coverage))

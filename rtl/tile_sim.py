"""Running a GEMM's folds through the TPU tile (``rtl.tpu_tile``) and comparing with ``sim/``.

:func:`gemm_program` turns ``A @ B`` and its folds (``sim.systolic.mapping.folds``: what each
fold streams and moves, never when) into the tile's program and memory images. The harness
of every backend only answers the tile's memory ports (the program, the weight memory, the
activation buffer) by address and collects what it emits: fold starts, results, the stall
counter and the cycle ``done`` rises, the op's total cycles, and at the end the tile's
functional-coverage counters (``rtl.tpu_tile.POINTS``). :func:`compare` holds them
against ``sim.systolic.timing.schedule`` fold by fold. Backends: ``amaranth`` (Amaranth's
simulator, here), ``cxxrtl`` and ``verilator`` (compiled, ``rtl.tile_native``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from sim.systolic.arch import SystolicArch
from sim.systolic.mapping import Folds
from sim.systolic.timing import Schedule, schedule
from workloads.errors import HwsimError

from .tpu_tile import (ABITS, FBITS, OBITS, QBITS, TileConfig, TpuTile, _bw, chunk_rows, desc_layout, tile_rule,
                       unpack_coverage)

__all__ = ["BACKENDS", "Program", "TileRun", "Check", "tiles", "gemm_program", "run", "compare", "sim_schedule"]

BACKENDS = ("amaranth", "cxxrtl", "verilator")


def tiles(n: int, t: int) -> list[int]:
    """``n`` cut into tiles of ``t`` (the last one partial), as ``sim.systolic.mapping`` does."""
    full, rem = divmod(n, t)
    return [t] * full + ([rem] if rem else [])


def _chunks(rows: np.ndarray, bits: int) -> np.ndarray:
    """Rows of signed lanes (``bits`` = 8, 16, 32 or 64 wide) packed little-endian into 32-bit chunks."""
    dt = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[bits]
    raw = np.ascontiguousarray(np.asarray(rows, dtype=np.int64).astype(dt))
    b = raw.view(np.uint8).reshape(raw.shape[0], -1)
    pad = (-b.shape[1]) % 4
    if pad:
        b = np.concatenate([b, np.zeros((b.shape[0], pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(b).view(np.uint32)


@dataclass(frozen=True)
class Program:
    """The tile's program (one descriptor per fold) and memory images, as 32-bit chunks per
    address, and how many output elements it writes (``M * N``, row-major)."""

    folds: int
    desc: np.ndarray        # folds x descriptor chunks
    weights: np.ndarray     # weight-memory rows x chunks (C lanes)
    acts: np.ndarray        # activation-buffer rows x chunks (R lanes)
    n_out: int
    cols: int               # N (the output's row length)
    bound: int = 0          # cycles it cannot outlast: every transfer, shift-in, stream and drain one after another

    @staticmethod
    def ints(chunks: np.ndarray) -> list[int]:
        return [int.from_bytes(r.tobytes(), "little") for r in chunks]


def _bytes_q(nbytes: float, q: int, what: str) -> int:
    """``nbytes`` x q as the integer the channel counts in (``rtl.tpu_tile``)."""
    v = Fraction(float(nbytes)).limit_denominator(1 << 20) * q
    if v.denominator != 1 or not 0 <= v < 1 << QBITS:
        raise HwsimError(f"{what}: {nbytes:g} bytes x {q} is not a whole number under 2^{QBITS}; the tile counts "
                         "whole bytes x q")
    return int(v)


def gemm_program(A: np.ndarray, B: np.ndarray, arch: SystolicArch, f: Folds) -> Program:
    """The program of ``A[M,K] @ B[K,N]`` on ``arch`` for the folds ``f`` (x tiles outer,
    chunks, K tiles inner: ``mapping.folds``' order; ``f`` may be a prefix of them). Refuses
    (one line) what the tile does not model: weights kept on chip across chunks (the tile
    fetches every weight tile over the channel) and stores whose requests could come out of
    fold order (its store queue takes one a cycle, in order)."""
    tile_rule(arch)
    cfg = TileConfig.of(arch)
    R, C, wbytes = arch.rows, arch.cols, arch.word_bits // 8
    A, B = np.asarray(A, dtype=np.int64), np.asarray(B, dtype=np.int64)
    M, K = A.shape
    N = B.shape[1]
    tt, kt, xt = tiles(M, chunk_rows(arch)), tiles(K, R), tiles(N, C)
    nk, nt = len(kt), len(tt)
    F = f.count
    if not 1 <= F <= len(xt) * nt * nk or F >= 1 << FBITS:
        raise HwsimError(f"{F} folds: the tile runs 1 to min({len(xt) * nt * nk}, 2^{FBITS} - 1) folds of this GEMM")
    if nt > 1 and K * N * wbytes <= arch.filter_sram_kib * 1024 / 2:
        raise HwsimError(f"{arch.name}: the weights ({K * N * wbytes} bytes) fit the filter SRAM's active half, so sim "
                         "keeps them on chip across chunks; the TPU tile RTL fetches every weight tile over the channel")
    if max(nk * M, len(xt) * nk * R) >= 1 << ABITS or M * N >= 1 << OBITS:
        raise HwsimError(f"{M}x{K} @ {K}x{N}: the tile addresses under 2^{ABITS} memory rows and 2^{OBITS} outputs")
    lay = desc_layout(cfg)
    words, last_end, bound = [], None, 0
    for i in range(F):
        xi, rest = divmod(i, nt * nk)
        ti, ki = divmod(rest, nk)
        T, k_t, x_t = tt[ti], kt[ki], xt[xi]
        if (int(f.T[i]), int(f.rows_used[i]), int(f.cols_used[i])) != (T, k_t, x_t):
            raise HwsimError(f"fold {i}: the folds are not mapping.folds' order for {M}x{K} @ {K}x{N} on {arch.name}")
        load = _bytes_q(f.load[i], cfg.q, f"fold {i}'s load")
        store = _bytes_q(f.store[i], cfg.q, f"fold {i}'s store")
        wrow = x_t * wbytes * cfg.q
        if load < k_t * wrow:
            raise HwsimError(f"fold {i} loads {float(f.load[i]):g} bytes, less than its weight tile's "
                             f"{k_t * x_t * wbytes}; the TPU tile RTL fetches every weight tile over the channel")
        if store:
            # a store is requested when its fold's last result is in: T + R + xt - 2 after the
            # start; starts are at least max(T, R) apart, so this bounds how far apart they are
            if last_end is not None:
                j, Tj, xj = last_end
                gap = sum(max(tt[(h % (nt * nk)) // nk], R) for h in range(j, i)) - Tj + T + x_t - xj
                if gap < 1:
                    raise HwsimError(f"folds {j} and {i} may request their stores in one cycle or out of order; the "
                                     "TPU tile RTL's store queue takes one request a cycle, in fold order")
            last_end = (i, T, x_t)
        t0 = sum(tt[:ti])
        bound += -(-load // cfg.p) + -(-store // cfg.p) + T + 2 * R + C
        fields = {"T": T, "kt": k_t, "xt": x_t, "first": int(ki == 0), "last": int(ki == nk - 1), "load": load,
                  "wrow": wrow, "store": store, "wbase": (xi * nk + ki) * R, "abase": ki * M + t0,
                  "obase": t0 * N + xi * C, "ostride": N}
        w = 0
        for name, v in fields.items():
            fl = lay[name]
            w |= (int(v) & ((1 << fl.width) - 1)) << fl.offset
        words.append(w)
    dchunks = -(-lay.size // 32)
    desc = np.array([[(w >> (32 * c)) & 0xFFFFFFFF for c in range(dchunks)] for w in words], dtype=np.uint32)
    Wimg = np.zeros((len(xt) * nk * R, C), dtype=np.int64)
    Bp = np.zeros((nk * R, len(xt) * C), dtype=np.int64)
    Bp[:K, :N] = B
    for xi in range(len(xt)):
        Wimg[xi * nk * R:(xi + 1) * nk * R] = Bp[:, xi * C:(xi + 1) * C]
    Ap = np.zeros((M, nk * R), dtype=np.int64)
    Ap[:, :K] = A
    Aimg = Ap.reshape(M, nk, R).transpose(1, 0, 2).reshape(nk * M, R)
    return Program(F, desc, _chunks(Wimg, arch.word_bits), _chunks(Aimg, arch.word_bits), M * N, N, bound)


@dataclass
class TileRun:
    """What one backend's run gave: fold starts, total cycles (the cycle ``done`` rose),
    the stall counter, the sticky error flag, results by output index (unwritten ones 0; the
    last write kept) with how many times each was written and how many writes went past the
    last output, the coverage counters when the run ended (point of ``rtl.tpu_tile.POINTS``
    -> hits; empty when an Assert stopped Amaranth's simulator)."""

    backend: str
    starts: np.ndarray
    cycles: int
    stalls: int
    error: bool
    out: np.ndarray
    written: np.ndarray          # how many times the tile wrote each output
    seconds: float
    finished: bool = True
    failure: str | None = None   # an Assert that fired (Amaranth's simulator)
    details: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, int] = field(default_factory=dict)
    strays: int = 0              # writes to an address past the last output
    partial: bool = False        # every fold's partial sums left the tile (an output is written once per K fold)


def _sext(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def _run_amaranth(prog: Program, arch: SystolicArch, bug: str | None, cap: int, partial: bool) -> TileRun:
    from amaranth.sim import Simulator

    dut = TpuTile(arch, bug=bug, checks=True)
    C, ab = arch.cols, arch.acc_bits
    desc, wimg, aimg = Program.ints(prog.desc), Program.ints(prog.weights), Program.ints(prog.acts)
    starts: list[int] = []
    out = np.zeros(prog.n_out, dtype=np.int64)
    written = np.zeros(prog.n_out + 1, dtype=np.int64)      # the last slot counts writes past the outputs
    st: dict[str, Any] = {"cycles": 0, "done": False}
    ports = [(dut.p_ch_addr, dut.p_ch.as_value(), desc), (dut.p_wr_addr, dut.p_wr.as_value(), desc),
             (dut.p_ar_addr, dut.p_ar.as_value(), desc), (dut.w_addr, dut.w_data, wimg), (dut.a_addr, dut.a_data, aimg)]
    omask, amask = (1 << OBITS) - 1, (1 << ab) - 1

    async def bench(ctx):
        ctx.set(dut.n_folds, prog.folds)
        ctx.set(dut.emit_partial, partial)
        c = 0
        while True:
            if ctx.get(dut.started):
                starts.append(c)
            ov = ctx.get(dut.o_valid)
            if ov:
                oa, od = ctx.get(dut.o_addr), ctx.get(dut.o_data)
                for j in range(C):
                    if ov >> j & 1:
                        a = oa >> (OBITS * j) & omask
                        if a < prog.n_out:
                            out[a] = _sext(od >> (ab * j) & amask, ab)
                        written[min(a, prog.n_out)] += 1
            st["cycles"], st["stalls"], st["error"] = c, ctx.get(dut.stalls), ctx.get(dut.error)
            if ctx.get(dut.done) or c >= cap:
                st["done"] = bool(ctx.get(dut.done))
                st["coverage"] = unpack_coverage(ctx.get(dut.coverage))
                return
            for addr, port, img in ports:
                a = ctx.get(addr)
                ctx.set(port, img[a] if a < len(img) else 0)
            await ctx.tick()
            c += 1

    t0 = time.perf_counter()
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    failure = None
    try:
        sim.run()
    except AssertionError as e:
        if not str(e).startswith(("Assert violated", "Assume violated")):
            raise                       # the harness's own, or Amaranth's: not the tile's invariant
        failure = f"cycle {st['cycles']}: {e}"
    secs = time.perf_counter() - t0
    return TileRun("amaranth", np.array(starts, dtype=np.int64), st["cycles"], int(st.get("stalls", 0)),
                   bool(st.get("error", 0)), out, written[:-1], secs, st["done"], failure,
                   coverage=st.get("coverage", {}) if failure is None else {}, strays=int(written[-1]),
                   partial=partial)


def run(prog: Program, arch: SystolicArch, backend: str = "amaranth", bug: str | None = None,
        cap: int | None = None, partial: bool = False) -> TileRun:
    """Run ``prog`` on the tile built from ``arch`` in ``backend`` until ``done`` (or ``cap``
    cycles: by default twice the program's serial bound, plus a margin).
    ``partial``: every fold's partial sums leave the tile (the last written per output is kept)."""
    if backend not in BACKENDS:
        raise HwsimError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    if cap is None:
        cap = 2 * prog.bound + 1000
    if backend == "amaranth":
        return _run_amaranth(prog, arch, bug, cap, partial)
    from .tile_native import run_native
    return TileRun(backend, **run_native(prog, arch, backend, bug, cap, partial), partial=partial)


def sim_schedule(f: Folds, arch: SystolicArch) -> Schedule:
    """``sim/``'s schedule of the folds ``f`` (the fast engine, as ``simulate_op`` runs it)."""
    return schedule(f, arch.rows, arch.cols, arch.dram_bw_bytes_per_cycle, arch.prefetch_depth)


@dataclass(frozen=True)
class Check:
    """The RTL run held against ``sim/`` and numpy."""

    outputs_match: bool
    outputs_compared: int
    cycles_rtl: int
    cycles_sim: int
    stalls_rtl: int
    stalls_sim: int
    first_mismatch: str | None

    @property
    def passed(self) -> bool:
        return self.first_mismatch is None


def compare(r: TileRun, s: Schedule, expected: np.ndarray, where: np.ndarray | None = None,
            *, acc_bits: int) -> Check:
    """Fold starts, stalls and total cycles against ``s``; outputs against ``expected`` (the
    int64 product, wrapped to the accumulators' width), where ``where`` (default: all)."""
    exp = expected.ravel().astype(np.int64)
    half = np.int64(1) << np.int64(acc_bits - 1)
    exp = ((exp + half) & ((half << 1) - 1)) - half if acc_bits < 64 else exp
    want = np.ones(exp.size, dtype=bool) if where is None else where.ravel()
    first = None
    if r.failure:
        first = f"an invariant failed: {r.failure}"
    elif not r.finished:
        first = f"the tile did not finish within {r.cycles} cycles"
    elif r.error:
        first = "the tile raised its error flag (a weight row late, or its store queue overflowed)"
    if first is None:
        sim_st = np.asarray(s.start, dtype=np.int64)
        n = min(len(sim_st), len(r.starts))
        bad = np.flatnonzero(sim_st[:n] != r.starts[:n])
        if bad.size:
            i = int(bad[0])
            first = f"fold {i}: RTL started it at cycle {r.starts[i]}, sim at cycle {sim_st[i]}"
        elif len(r.starts) != len(sim_st):
            first = f"RTL started {len(r.starts)} folds, sim {len(sim_st)}"
        elif r.cycles != s.cycles:
            first = f"total cycles: RTL {r.cycles}, sim {s.cycles}"
        elif r.stalls != s.stall_cycles:
            first = f"stall cycles: RTL {r.stalls}, sim {s.stall_cycles}"
    got = r.out
    wrong = np.flatnonzero(want & ((got != exp) | (r.written == 0)))
    # a whole run writes each output once: a second write (a wrong value overwritten) is a fault
    again = np.flatnonzero(want & (r.written > 1)) if not r.partial else np.zeros(0, dtype=np.int64)
    ok = wrong.size == 0 and again.size == 0 and r.strays == 0 and r.finished
    if first is None and wrong.size:
        i = int(wrong[0])
        first = (f"output [{i}] (element {i} row-major): RTL {got[i] if r.written[i] else 'never written'}, "
                 f"numpy {exp[i]} ({wrong.size} of {int(want.sum())} differ)")
    elif first is None and again.size:
        i = int(again[0])
        first = f"output [{i}] written {int(r.written[i])} times ({again.size} outputs written more than once)"
    elif first is None and r.strays:
        first = f"the tile wrote {r.strays} results to addresses past the last output"
    elif first is None and not ok:
        first = "the tile did not finish"
    return Check(ok, int(want.sum()), r.cycles, int(s.cycles), r.stalls, int(s.stall_cycles), first)

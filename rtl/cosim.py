"""Co-simulation: the same stimulus drives an RTL unit (Amaranth's simulator, or the
compiled CXXRTL backend) and the matching model in ``sim/``; outputs and per-cycle state
are compared and the first mismatch is reported with its cycle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from amaranth import Cat
from amaranth.sim import Simulator

from sim.systolic.arch import SystolicArch
from sim.systolic.array import stationary_fold

from .systolic import SystolicArray

__all__ = ["Cosim", "simulate", "pack", "unpack", "systolic_schedule", "verify_systolic", "verify_eie_pe",
           "EDGE_F16", "EDGE_F32", "dot_stimulus", "verify_dot", "MMA_KINDS", "mma_stimulus", "mma_model",
           "verify_mma"]


@dataclass
class Cosim:
    unit: str
    passed: bool
    cycles_compared: int
    seconds: float
    first_mismatch: str | None = None
    details: dict = field(default_factory=dict)


def simulate(dut, bench) -> float:
    """Run ``bench`` against ``dut`` in Amaranth's simulator (1 MHz clock); seconds taken."""
    t0 = time.perf_counter()
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return time.perf_counter() - t0


def pack(values, bits: int) -> int:
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (bits * i) for i, v in enumerate(values))


def unpack(word: int, lanes: int, bits: int, signed: bool = True) -> list[int]:
    out = []
    for i in range(lanes):
        v = (word >> (bits * i)) & ((1 << bits) - 1)
        if signed and v >= 1 << (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


# ---- systolic array -------------------------------------------------------------------------------
def systolic_schedule(A: np.ndarray, B: np.ndarray, arch: SystolicArch):
    """Per fold of ``A @ B`` (weight stationary): the weight rows to shift in and the model's
    per-cycle (skewed row inputs, bottom-row partial sums)."""
    R, C = arch.rows, arch.cols
    M, K = A.shape
    N = B.shape[1]
    folds = []
    for x0 in range(0, N, C):
        for k0 in range(0, K, R):
            kt, xt = min(R, K - k0), min(C, N - x0)
            W = np.zeros((R, C), dtype=np.int64)
            W[:kt, :xt] = B[k0:k0 + kt, x0:x0 + xt]
            f = stationary_fold(A[:, k0:k0 + kt], W)
            folds.append({"x0": x0, "k0": k0, "xt": xt, "W": W, "a_in": f["a_in"], "bottom": f["bottom"]})
    return folds


def _systolic_amaranth(folds, arch: SystolicArch, delay_bug: bool):
    dut = SystolicArray(arch, delay_bug=delay_bug)
    R, C, wb, ab = arch.rows, arch.cols, arch.word_bits, arch.acc_bits
    got = []

    async def bench(ctx):
        inputs = Cat(dut.a_in, dut.w_in, dut.load)
        for f in folds:
            for i in reversed(range(R)):          # shift the tile in: row R-1 first
                ctx.set(inputs, pack([0] * R, wb) | (pack(f["W"][i], wb) << (R * wb)) | (1 << (R * wb + C * wb)))
                await ctx.tick()
            rows = []
            for a in f["a_in"]:
                ctx.set(inputs, pack(a, wb))
                await ctx.tick()
                rows.append(unpack(ctx.get(dut.psum_out), C, ab))
            got.append(np.array(rows, dtype=np.int64))

    simulate(dut, bench)
    return got


def verify_systolic(A: np.ndarray, B: np.ndarray, arch: SystolicArch, backend: str = "amaranth",
                    delay_bug: bool = False) -> Cosim:
    """Drive ``A @ B`` through the RTL array and the register model; compare the bottom row
    every cycle, the number of cycles, and the assembled product against numpy."""
    from .require import systolic
    systolic(arch)
    A = np.asarray(A, dtype=np.int64)
    B = np.asarray(B, dtype=np.int64)
    folds = systolic_schedule(A, B, arch)
    t0 = time.perf_counter()
    if backend == "amaranth":
        got = _systolic_amaranth(folds, arch, delay_bug)
    elif backend == "cxxrtl":
        from .cxxrtl import run_systolic
        got = run_systolic(folds, arch, delay_bug)
    else:
        from workloads.errors import HwsimError
        raise HwsimError(f"unknown backend {backend!r}; use amaranth or cxxrtl")
    secs = time.perf_counter() - t0
    R, C = arch.rows, arch.cols
    M, N = A.shape[0], B.shape[1]
    out = np.zeros((M, N), dtype=np.int64)
    compared = 0
    first = None
    for fi, (f, g) in enumerate(zip(folds, got)):
        exp = f["bottom"]
        if g.shape != exp.shape and first is None:
            first = f"fold {fi}: RTL gave {g.shape[0]} cycles, model {exp.shape[0]}"
        n = min(len(g), len(exp))
        bad = np.argwhere(g[:n] != exp[:n])
        if bad.size and first is None:
            c, j = bad[0]
            first = f"fold {fi}, cycle {c} (of {n}), column {j}: RTL {g[c, j]}, model {exp[c, j]}"
        compared += n
        for tau in range(n):
            m_out = tau - (R - 1) - np.arange(C)
            ok = (m_out >= 0) & (m_out < M) & (np.arange(C) < f["xt"])
            out[m_out[ok], f["x0"] + np.arange(C)[ok]] += g[tau, ok]
    if first is None and not np.array_equal(out, A @ B):
        first = "assembled output differs from numpy"
    return Cosim("systolic", first is None, compared, secs, first, {"rtl_outputs": got})


# ---- EIE processing element ------------------------------------------------------------------------
def verify_eie_pe(layer, acts: np.ndarray, arch, pe: int = 0, bug: str | None = None) -> Cosim:
    """One PE of an EIE array: the broadcasts the cycle model schedules (for all
    ``arch.num_pes`` PEs) drive the RTL PE; its pop cycles, busy cycles and destination
    registers are compared with the model's."""
    from sim.eie.encode import encode
    from sim.eie.engine import pass_timing

    from .eie_pe import EIEPE

    P = arch.num_pes
    R, Cn = layer.shape
    if R > P * arch.act_regs or Cn + 1 > arch.ptr_capacity:
        from workloads.errors import HwsimError
        raise HwsimError("verify_eie_pe takes one pass: rows <= num_pes * act_regs and cols < ptr capacity")
    acts = np.asarray(acts, dtype=np.int64)
    enc = encode(layer, P, arch.max_zero_run)
    nz = np.flatnonzero(acts)
    t = pass_timing(enc.entries[:, nz], arch.queue_depth, arch.pipeline_depth)
    s = enc.pe_slice(pe, arch.max_zero_run)
    rows_local = -(-R // P)
    exp_acc = np.zeros(rows_local, dtype=np.int64)
    sel = layer.rows % P == pe
    prod = (layer.codebook[layer.idx[sel]] * acts[layer.cols[sel]]) >> layer.frac_bits
    np.add.at(exp_acc, layer.rows[sel] // P, prod)
    dut = EIEPE(arch, s.ptr.tolist(), s.v.tolist(), s.z.tolist(), layer.codebook.tolist(), rows_local,
                layer.frac_bits)
    total = t.cycles
    assert not nz.size or (t.broadcast is not None and t.start is not None)   # the fast engine's cycles
    pushes = {int(b): int(a) for a, b in enumerate(t.broadcast)} if t.broadcast is not None and nz.size else {}
    pops, busy_cycles, accs = [], [0], []
    delay = 1 if bug == "late-pop" else 0

    async def bench(ctx):
        inputs = Cat(dut.push_valid, dut.push_a, dut.push_col)
        ab = arch.act_bits
        for cyc in range(total + 1):
            a = pushes.get(cyc - delay)
            word = 0 if a is None else 1 | ((int(acts[nz[a]]) & ((1 << ab) - 1)) << 1) | (int(nz[a]) << (1 + ab))
            ctx.set(inputs, word)
            if ctx.get(dut.pop):
                pops.append(cyc)
            busy_cycles[0] += ctx.get(dut.busy)
            await ctx.tick()
        for r in range(rows_local):
            ctx.set(dut.rd_addr, r)
            accs.append(ctx.get(dut.rd_data))

    secs = simulate(dut, bench)
    first = None
    want_pops = t.start[:, pe].tolist() if t.start is not None and nz.size else []
    for i, (g, w) in enumerate(zip(pops, want_pops)):
        if g != w:
            first = f"activation {i} (column {int(nz[i])}): RTL pops at cycle {g}, model at {w}"
            break
    if first is None and len(pops) != len(want_pops):
        first = f"RTL popped {len(pops)} activations, model {len(want_pops)}"
    if first is None and busy_cycles[0] != int(t.busy[pe]):
        first = f"busy cycles: RTL {busy_cycles[0]}, model {int(t.busy[pe])}"
    if first is None:
        bad = np.flatnonzero(np.array(accs) != exp_acc)
        if bad.size:
            r = int(bad[0])
            first = f"after cycle {total}: output row {r * P + pe}: RTL {accs[r]}, model {exp_acc[r]}"
    return Cosim("eie-pe", first is None, total + 1, secs, first,
                 {"model_cycles": total, "pops": len(pops), "busy": busy_cycles[0]})


# ---- tensor-core dot-product unit ------------------------------------------------------------------
EDGE_F16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x7C00, 0xFC00, 0x7E00]
EDGE_F32 = [0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000,
            0x7F800000, 0xFF800000, 0x7FC00000, 0x4B800000, 0xCB800000]


def dot_stimulus(trials: int, seed: int = 0) -> list[tuple[list[int], list[int], int]]:
    """Random fp16/fp32 operands of every magnitude, plus edge cases: zeros of both signs,
    subnormals, the largest values, infinities, NaN, and exact cancellation."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(trials):
        kind = i % 4
        if kind == 0:       # anything, including specials
            a = [int(rng.choice(EDGE_F16)) if rng.random() < 0.3 else int(rng.integers(0, 1 << 16)) for _ in range(4)]
            b = [int(rng.choice(EDGE_F16)) if rng.random() < 0.3 else int(rng.integers(0, 1 << 16)) for _ in range(4)]
            c = int(rng.choice(EDGE_F32)) if rng.random() < 0.3 else int(rng.integers(0, 1 << 32))
        elif kind == 1:     # ordinary values
            a = [int(x) for x in rng.standard_normal(4).astype(np.float16).view(np.uint16)]
            b = [int(x) for x in rng.standard_normal(4).astype(np.float16).view(np.uint16)]
            c = int(np.array([rng.standard_normal() * 8], dtype=np.float32).view(np.uint32)[0])
        elif kind == 2:     # exact cancellation: a0*b0 = -(a1*b1), c = 0
            x = int(rng.integers(0, 0x7C00))
            y = int(rng.integers(0, 0x7C00))
            a, b, c = [x, x ^ 0x8000, 0, 0], [y, y, 0, 0], 0
        else:               # tiny products against a large accumulator (rounding, sticky bits)
            a = [int(rng.integers(0, 0x2000)) for _ in range(4)]
            b = [int(rng.integers(0, 0x3C00)) for _ in range(4)]
            c = int(rng.integers(0x3F000000, 0x4F000000))
        out.append((a, b, c))
    return out


def verify_dot(trials: int = 200, seed: int = 0, bug: str | None = None) -> Cosim:
    """Drive the RTL dot unit one operand set per cycle; compare each result (one cycle later)
    bit for bit with ``sim.gpu.dot.dot4``."""
    from sim.gpu.dot import dot4

    from .dot import Dot4

    stim = dot_stimulus(trials, seed)
    dut = Dot4(bug=bug)
    got = []

    async def bench(ctx):
        inputs = Cat(dut.a, dut.b, dut.c)
        for a, b, c in stim:
            ctx.set(inputs, pack(a, 16) | (pack(b, 16) << 64) | (c << 128))
            await ctx.tick()
            got.append(ctx.get(dut.d))

    secs = simulate(dut, bench)
    first = None
    for i, ((a, b, c), g) in enumerate(zip(stim, got)):
        w = dot4(a, b, c)
        if g != w:
            first = (f"cycle {i + 1}: a={[hex(x) for x in a]} b={[hex(x) for x in b]} c={c:#010x}: "
                     f"RTL {g:#010x}, model {w:#010x}")
            break
    return Cosim("dot", first is None, len(got), secs, first)


# ---- tensor-core MMA step (4x4x4, rtl.mma) -----------------------------------------------------------
MMA_KINDS = ("any bits", "normal values", "cancellation", "tiny products, large c", "subnormals", "near overflow",
             "infinities and NaN")
MmaOperands = tuple[list[int], list[int], list[int]]     # A, B (16 fp16 each, row-major), C (16 fp32)


def mma_stimulus(sets: int, seed: int = 0) -> list[MmaOperands]:
    """Operand sets of the 4x4x4 step, cycling through :data:`MMA_KINDS`: random bit patterns
    with edge values mixed in, ordinary values, exact cancellation (column 1 of A is minus
    column 0 and row 1 of B equals row 0: every output's products cancel), tiny products
    against a large accumulator, fp16 and fp32 subnormals, values near the formats' largest
    (fp16 products cannot overflow fp32: |d| stays at most fp32's largest), and infinities
    and NaN among ordinary values."""
    rng = np.random.default_rng(seed)

    def f16(n: int, p_edge: float = 0.3) -> list[int]:
        return [int(rng.choice(EDGE_F16)) if rng.random() < p_edge else int(rng.integers(0, 1 << 16)) for _ in range(n)]

    def f32(n: int, p_edge: float = 0.3) -> list[int]:
        return [int(rng.choice(EDGE_F32)) if rng.random() < p_edge else int(rng.integers(0, 1 << 32)) for _ in range(n)]

    def normal16(n: int) -> list[int]:
        return [int(x) for x in rng.standard_normal(n).astype(np.float16).view(np.uint16)]

    def signed(lo: int, hi: int, n: int, sign: int) -> list[int]:
        return [int(rng.integers(lo, hi)) | (sign if rng.random() < 0.5 else 0) for _ in range(n)]

    out = []
    for i in range(sets):
        kind = MMA_KINDS[i % len(MMA_KINDS)]
        if kind == "any bits":
            a, b, c = f16(16), f16(16), f32(16)
        elif kind == "normal values":
            a, b = normal16(16), normal16(16)
            c = [int(x) for x in (rng.standard_normal(16) * 8).astype(np.float32).view(np.uint32)]
        elif kind == "cancellation":
            a, b = [0] * 16, [0] * 16
            for r in range(4):
                x = int(rng.integers(0, 0x7C00))
                a[4 * r], a[4 * r + 1] = x, x ^ 0x8000
                b[r] = b[4 + r] = int(rng.integers(0, 0x7C00))
            c = [int(rng.choice([0, 0x80000000])) for _ in range(16)]
        elif kind == "tiny products, large c":
            a, b = signed(0, 0x2000, 16, 0x8000), signed(0, 0x3C00, 16, 0x8000)
            c = signed(0x3F000000, 0x4F000000, 16, 0x80000000)
        elif kind == "subnormals":
            a, b = signed(0, 0x400, 16, 0x8000), signed(0, 0x400, 16, 0x8000)
            c = signed(0, 0x800000, 16, 0x80000000)
        elif kind == "near overflow":
            a, b = signed(0x7800, 0x7C00, 16, 0x8000), signed(0x7800, 0x7C00, 16, 0x8000)
            c = signed(0x7F700000, 0x7F800000, 16, 0x80000000)
        else:               # infinities and NaN among ordinary values
            a = [x if rng.random() < 0.8 else int(rng.choice([0x7C00, 0xFC00, 0x7E00, 0x0000])) for x in normal16(16)]
            b = [x if rng.random() < 0.8 else int(rng.choice([0x7C00, 0xFC00, 0x7E00, 0x8000])) for x in normal16(16)]
            c = [0x3F800000 if rng.random() < 0.8 else int(rng.choice([0x7F800000, 0xFF800000, 0x7FC00000]))
                 for _ in range(16)]
        out.append((a, b, c))
    return out


def mma_model(a: list[int], b: list[int], c: list[int]) -> list[int]:
    """The GPU model's arithmetic for one step: ``D[i][j] = sim.gpu.dot.dot4(row i of A,
    column j of B, C[i][j])``, fp32 bits row-major."""
    from sim.gpu.dot import dot4
    return [dot4(a[4 * i:4 * i + 4], b[j::4], c[4 * i + j]) for i in range(4) for j in range(4)]


def verify_mma(sets: int = 200, seed: int = 0, bug: str | None = None,
               stimulus: list[MmaOperands] | None = None) -> Cosim:
    """Drive the RTL MMA one operand set per cycle (:func:`mma_stimulus`, or ``stimulus``);
    compare each of the 16 outputs (one cycle later) bit for bit with :func:`mma_model`."""
    from .mma import Mma

    stim = stimulus if stimulus is not None else mma_stimulus(sets, seed)
    dut = Mma(bug=bug)
    got: list[list[int]] = []

    async def bench(ctx):
        inputs = Cat(dut.a, dut.b, dut.c)
        for a, b, c in stim:
            ctx.set(inputs, pack(a, 16) | (pack(b, 16) << 256) | (pack(c, 32) << 512))
            await ctx.tick()
            got.append(unpack(ctx.get(dut.d), 16, 32, signed=False))

    secs = simulate(dut, bench)
    first = None
    for n, ((a, b, c), g) in enumerate(zip(stim, got)):
        w = mma_model(a, b, c)
        bad = [k for k in range(16) if g[k] != w[k]]
        if bad:
            i, j = divmod(bad[0], 4)
            first = (f"cycle {n + 1}, D[{i}][{j}] ({len(bad)} of 16 outputs differ): A row {i}="
                     f"{[hex(x) for x in a[4 * i:4 * i + 4]]} B column {j}={[hex(x) for x in b[j::4]]} "
                     f"C[{i}][{j}]={c[4 * i + j]:#010x}: RTL {g[bad[0]]:#010x}, model {w[bad[0]]:#010x}")
            break
    return Cosim("mma", first is None, len(got), secs, first, {"outputs": 16 * len(got), "rtl_outputs": got})

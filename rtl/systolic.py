"""Weight-stationary systolic array in Amaranth 0.5, parameterised by ``sim.systolic.SystolicArch``.

Each PE holds one weight; every cycle the operand entering it (from the left edge or the
PE to its left) is multiplied by that weight and added to the partial sum from the PE
above; operands move one PE right and partial sums one PE down per clock. Row ``i`` is
fed skewed by ``i`` cycles (the caller skews, as the simulator does) and column ``j``'s
result leaves the bottom row ``j`` cycles later: exactly ``sim.systolic.array``'s model.

Weights load by shifting: while ``load`` is high, ``w_in`` (one row of C weights) enters
the top row and every row moves down, so R cycles place W[i] in row i (the TPU's 256
cycles to shift a tile in).

:class:`SystolicProps` holds the array's formal properties (proved by ``rtl.formal``): the
stationary weights are the last R rows shifted in, and while they are steady every output
lane is the skewed dot product, computed by an independent reference from the inputs alone.
"""

from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, Mux, Signal, signed
from amaranth.hdl import Assert
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sim.systolic.arch import SystolicArch

__all__ = ["PE", "SystolicArray", "SystolicProps", "BUGS"]

# deliberate mutations, for tests that a check catches a broken array
BUGS = ("delay", "drop-psum")


class PE(wiring.Component):
    """One multiply-accumulate cell: ``psum_out <= psum_in + a_in * w``; ``a_out <= a_in``."""

    def __init__(self, word_bits: int = 8, acc_bits: int = 32):
        self.word_bits, self.acc_bits = word_bits, acc_bits
        super().__init__({
            "a_in": In(signed(word_bits)), "psum_in": In(signed(acc_bits)),
            "w_in": In(signed(word_bits)), "load": In(1),
            "a_out": Out(signed(word_bits)), "psum_out": Out(signed(acc_bits)), "w_out": Out(signed(word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        w = Signal(signed(self.word_bits))
        with m.If(self.load):
            m.d.sync += w.eq(self.w_in)
        m.d.sync += [self.a_out.eq(self.a_in), self.psum_out.eq(self.psum_in + self.a_in * w)]
        m.d.comb += self.w_out.eq(w)
        return m


class SystolicArray(wiring.Component):
    """R x C weight-stationary array: packed ports ``a_in`` (R lanes), ``w_in`` (C lanes),
    ``load``, and ``psum_out`` (C lanes of accumulator width) from the bottom row."""

    def __init__(self, arch: SystolicArch, delay_bug: bool = False, bug: str | None = None):
        from .require import checked, systolic
        checked(self, systolic, arch)
        self.R, self.C = arch.rows, arch.cols
        self.wb, self.ab = arch.word_bits, arch.acc_bits
        # test hooks (deliberate bugs): "delay" (= delay_bug) adds an output register; "drop-psum"
        # makes the bottom-right PE drop the partial sum from above when its operand is the most
        # negative word (a corner case; a no-op on a one-row array)
        self.delay_bug = delay_bug or bug == "delay"
        self.bug = bug
        super().__init__({"a_in": In(self.R * self.wb), "w_in": In(self.C * self.wb), "load": In(1),
                          "psum_out": Out(self.C * self.ab)})
        # built here so that a property harness can name each PE's stationary weight (w_out)
        self.pes = [[PE(self.wb, self.ab) for _ in range(self.C)] for _ in range(self.R)]
        for pe in (pe for row in self.pes for pe in row):
            pe._MustUse__silence = True     # used when the array is; an unused array warns for itself

    def elaborate(self, platform):
        m = Module()
        R, C, wb, ab = self.R, self.C, self.wb, self.ab
        pes = self.pes
        for i in range(R):
            for j in range(C):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += pe.load.eq(self.load)
                m.d.comb += pe.a_in.eq(self.a_in[i * wb:(i + 1) * wb].as_signed() if j == 0 else pes[i][j - 1].a_out)
                above = 0 if i == 0 else pes[i - 1][j].psum_out
                if self.bug == "drop-psum" and (i, j) == (R - 1, C - 1) and i > 0:
                    above = Mux(pe.a_in == -(1 << (wb - 1)), 0, pes[i - 1][j].psum_out)
                m.d.comb += pe.psum_in.eq(above)
                m.d.comb += pe.w_in.eq(self.w_in[j * wb:(j + 1) * wb].as_signed() if i == 0 else pes[i - 1][j].w_out)
        bottom = Cat(*(pes[R - 1][j].psum_out for j in range(C)))
        if self.delay_bug:
            late = Signal(C * ab)
            m.d.sync += late.eq(bottom)
            m.d.comb += self.psum_out.eq(late)
        else:
            m.d.comb += self.psum_out.eq(bottom)
        return m


class SystolicProps(Elaboratable):
    """The array's properties, for all inputs (``a_in``, ``w_in``, ``load`` are free):

    1. ``weights``: every PE's stationary weight is the reference's: a shift register the
       width of a row, in which ``load`` moves ``w_in`` into row 0 and row i-1 into row i.
    2. ``column j`` (one per column): when ``load`` has been low for the last R cycles (the
       weights every PE used for this output were steady; R - 1 is too few: a counterexample),
       bottom output j equals sum_i W[i][j] * a_i(t - 1 - j - (R - 1 - i)), wrapped to the
       accumulator's width, with
       a_i(t - k) from the reference's own record of past inputs: row i's operand reaches
       column j after j cycles and its product descends R - 1 - i rows, one per cycle.

    The reference reads only the inputs; property 1 names the PEs' weights (also what makes
    property 2 k-inductive)."""

    def __init__(self, arch: SystolicArch, bug: str | None = None, checks: str = "comb"):
        self.dut = SystolicArray(arch, bug=bug)
        self.checks = checks        # "sync": checked at clock edges (for Amaranth's simulator)
        R, C, wb = arch.rows, arch.cols, arch.word_bits
        self.a_in, self.w_in, self.load = Signal(R * wb, name="a_in"), Signal(C * wb, name="w_in"), Signal(name="load")
        self.psum_out = Signal(C * arch.acc_bits, name="psum_out")
        self.inputs = (self.a_in, self.w_in, self.load)

    def elaborate(self, platform):
        m = Module()
        dut = m.submodules.dut = self.dut
        R, C, wb, ab = dut.R, dut.C, dut.wb, dut.ab
        m.d.comb += [dut.a_in.eq(self.a_in), dut.w_in.eq(self.w_in), dut.load.eq(self.load),
                     self.psum_out.eq(dut.psum_out)]
        lane = [self.a_in[i * wb:(i + 1) * wb].as_signed() for i in range(R)]
        W = [[Signal(signed(wb), name=f"ref_w_{i}_{j}") for j in range(C)] for i in range(R)]
        with m.If(self.load):
            for j in range(C):
                m.d.sync += W[0][j].eq(self.w_in[j * wb:(j + 1) * wb].as_signed())
                m.d.sync += [W[i][j].eq(W[i - 1][j]) for i in range(1, R)]
        same = Cat(*(dut.pes[i][j].w_out == W[i][j] for i in range(R) for j in range(C)))
        m.d[self.checks] += Assert(same.all(), "weights")
        H = R + C - 1                      # the oldest input an output still depends on
        hist = [[Signal(signed(wb), name=f"ref_a_{k}_{i}") for i in range(R)] for k in range(H + 1)]
        m.d.comb += [hist[0][i].eq(lane[i]) for i in range(R)]
        m.d.sync += [hist[k][i].eq(hist[k - 1][i]) for k in range(1, H + 1) for i in range(R)]
        Q = R
        quiet = Signal(range(Q + 1), init=Q, name="ref_quiet")     # no-load cycles just past, up to Q
        m.d.sync += quiet.eq(Mux(self.load, 0, Mux(quiet == Q, Q, quiet + 1)))
        for j in range(C):
            want = Signal(ab, name=f"ref_out_{j}")
            m.d.comb += want.eq(sum(W[i][j] * hist[1 + j + (R - 1 - i)][i] for i in range(R)))
            with m.If(quiet == Q):
                m.d[self.checks] += Assert(self.psum_out[j * ab:(j + 1) * ab] == want, f"column {j}")
        return m

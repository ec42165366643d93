"""Weight-stationary systolic array in Amaranth 0.5, parameterised by ``sim.systolic.SystolicArch``.

Each PE holds one weight; every cycle the operand entering it (from the left edge or the
PE to its left) is multiplied by that weight and added to the partial sum from the PE
above; operands move one PE right and partial sums one PE down per clock. Row ``i`` is
fed skewed by ``i`` cycles (the caller skews, as the simulator does) and column ``j``'s
result leaves the bottom row ``j`` cycles later: exactly ``sim.systolic.array``'s model.

Weights load by shifting: while ``load`` is high, ``w_in`` (one row of C weights) enters
the top row and every row moves down, so R cycles place W[i] in row i (the TPU's 256
cycles to shift a tile in).
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sim.systolic.arch import SystolicArch

__all__ = ["PE", "SystolicArray"]


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

    def __init__(self, arch: SystolicArch, delay_bug: bool = False):
        from .require import checked, systolic
        checked(self, systolic, arch)
        self.R, self.C = arch.rows, arch.cols
        self.wb, self.ab = arch.word_bits, arch.acc_bits
        self.delay_bug = delay_bug          # test hook: an extra output register (a deliberate bug)
        super().__init__({"a_in": In(self.R * self.wb), "w_in": In(self.C * self.wb), "load": In(1),
                          "psum_out": Out(self.C * self.ab)})

    def elaborate(self, platform):
        m = Module()
        R, C, wb, ab = self.R, self.C, self.wb, self.ab
        pes = [[PE(wb, ab) for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += pe.load.eq(self.load)
                m.d.comb += pe.a_in.eq(self.a_in[i * wb:(i + 1) * wb].as_signed() if j == 0 else pes[i][j - 1].a_out)
                m.d.comb += pe.psum_in.eq(0 if i == 0 else pes[i - 1][j].psum_out)
                m.d.comb += pe.w_in.eq(self.w_in[j * wb:(j + 1) * wb].as_signed() if i == 0 else pes[i - 1][j].w_out)
        bottom = Cat(*(pes[R - 1][j].psum_out for j in range(C)))
        if self.delay_bug:
            late = Signal(C * ab)
            m.d.sync += late.eq(bottom)
            m.d.comb += self.psum_out.eq(late)
        else:
            m.d.comb += self.psum_out.eq(bottom)
        return m

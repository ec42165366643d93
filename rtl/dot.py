"""Tensor-core dot-product unit in Amaranth 0.5: ``d = c + sum(a_i * b_i)`` for four fp16
pairs and an fp32 accumulator, to the specification of ``sim.gpu.dot`` (exact products,
exact sum in a 282-bit fixed-point accumulator in units of 2^-149, one round-to-nearest-
even to fp32, subnormals, overflow to infinity, IEEE specials). One cycle of latency:
``d`` is registered."""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WIDTH", "Dot4"]

WIDTH = 282          # c up to 2^128 in units of 2^-149, plus five addends and a sign


class Dot4(wiring.Component):
    """Ports: ``a``, ``b`` (four fp16 each, lane i in bits [16i, 16i+16)), ``c`` (fp32), ``d`` (fp32)."""

    def __init__(self, bug: str | None = None):
        self.bug = bug                      # test hook: "truncate" drops the rounding increment
        super().__init__({"a": In(64), "b": In(64), "c": In(32), "d": Out(32)})

    def elaborate(self, platform):
        m = Module()
        terms, neg_zero, nan, inf_pos, inf_neg = [], [], [], [], []
        for i in range(4):
            x, y = self.a[16 * i:16 * i + 16], self.b[16 * i:16 * i + 16]
            ex, ey = x[10:15], y[10:15]
            fx, fy = x[0:10], y[0:10]
            mx = Signal(11, name=f"mx{i}")
            my = Signal(11, name=f"my{i}")
            m.d.comb += [mx.eq(Mux(ex == 0, fx, fx | 0x400)), my.eq(Mux(ey == 0, fy, fy | 0x400))]
            s = Signal(name=f"s{i}")
            m.d.comb += s.eq(x[15] ^ y[15])
            x_inf, y_inf = (ex == 31) & (fx == 0), (ey == 31) & (fy == 0)
            x_nan, y_nan = (ex == 31) & (fx != 0), (ey == 31) & (fy != 0)
            x_zero, y_zero = (ex == 0) & (fx == 0), (ey == 0) & (fy == 0)
            nan += [x_nan, y_nan, x_inf & y_zero, y_inf & x_zero]
            is_inf = Signal(name=f"inf{i}")
            m.d.comb += is_inf.eq((x_inf | y_inf) & ~x_nan & ~y_nan)
            inf_pos.append(is_inf & ~s)
            inf_neg.append(is_inf & s)
            prod = Signal(22, name=f"p{i}")
            m.d.comb += prod.eq(mx * my)
            sh = Signal(range(160), name=f"sh{i}")
            m.d.comb += sh.eq(Mux(ex == 0, 1, ex) + Mux(ey == 0, 1, ey) + 99)
            t = Signal(signed(WIDTH), name=f"t{i}")
            mag = Signal(unsigned(WIDTH - 1), name=f"tm{i}")
            m.d.comb += mag.eq(Mux(is_inf | (ex == 31) | (ey == 31), 0, prod << sh))
            m.d.comb += t.eq(Mux(s, -mag, mag))
            terms.append(t)
            neg_zero.append(s & (prod == 0))
        ec, fc = self.c[23:31], self.c[0:23]
        c_nan, c_inf = (ec == 255) & (fc != 0), (ec == 255) & (fc == 0)
        nan.append(c_nan)
        inf_pos.append(c_inf & ~self.c[31])
        inf_neg.append(c_inf & self.c[31])
        mc = Signal(24)
        m.d.comb += mc.eq(Mux(ec == 0, fc, fc | 0x800000))
        shc = Signal(range(256))
        m.d.comb += shc.eq(Mux(ec == 0, 1, ec) - 1)
        cmag = Signal(unsigned(WIDTH - 1))
        m.d.comb += cmag.eq(Mux(ec == 255, 0, mc << shc))
        tc = Signal(signed(WIDTH))
        m.d.comb += tc.eq(Mux(self.c[31], -cmag, cmag))
        terms.append(tc)
        neg_zero.append(self.c[31] & (mc == 0))

        total = Signal(signed(WIDTH))
        m.d.comb += total.eq(sum(terms))
        sign = total[WIDTH - 1]
        mag = Signal(unsigned(WIDTH))
        m.d.comb += mag.eq(Mux(sign, -total, total))
        n = Signal(range(WIDTH + 1))                     # bit length of |sum|
        for i in range(WIDTH):
            with m.If(mag[i]):
                m.d.comb += n.eq(i + 1)
        shift = Signal(range(WIDTH))
        m.d.comb += shift.eq(Mux(n > 24, n - 24, 0))
        mant = Signal(25)
        m.d.comb += mant.eq(mag >> shift)
        guard = Signal()
        sticky = Signal()
        sm1 = Signal(range(WIDTH))            # shift - 1 (when shift > 0)
        m.d.comb += sm1.eq(Mux(shift != 0, shift - 1, 0))
        below = Signal(unsigned(WIDTH))       # the bits under the guard bit
        m.d.comb += below.eq(mag & ((Const(1, WIDTH) << sm1) - 1)[:WIDTH])
        m.d.comb += [guard.eq(Mux(shift != 0, (mag >> sm1)[0], 0)),
                     sticky.eq(Mux(shift > 1, below != 0, 0))]
        up = Signal()
        m.d.comb += up.eq(0 if self.bug == "truncate" else guard & (sticky | mant[0]))
        rounded = Signal(26)
        m.d.comb += rounded.eq(mant + up)
        carry = rounded[24]
        mant2 = Signal(24)
        exp = Signal(range(WIDTH + 2))
        m.d.comb += [mant2.eq(Mux(carry, rounded >> 1, rounded)), exp.eq(shift + 1 + carry)]
        out = Signal(32)
        sbit = sign << 31
        all_neg_zero = Signal()
        m.d.comb += all_neg_zero.eq(sum(z.as_unsigned() for z in neg_zero) == len(neg_zero))
        any_nan = Signal()
        m.d.comb += any_nan.eq(sum(x.as_unsigned() for x in nan) != 0)
        ip, ineg = Signal(), Signal()
        m.d.comb += [ip.eq(sum(x.as_unsigned() for x in inf_pos) != 0), ineg.eq(sum(x.as_unsigned() for x in inf_neg) != 0)]
        with m.If(any_nan | (ip & ineg)):
            m.d.comb += out.eq(0x7FC00000)
        with m.Elif(ip):
            m.d.comb += out.eq(0x7F800000)
        with m.Elif(ineg):
            m.d.comb += out.eq(0xFF800000)
        with m.Elif(mag == 0):
            m.d.comb += out.eq(Mux(all_neg_zero, 0x80000000, 0))
        with m.Elif(mant2 < (1 << 23)):
            m.d.comb += out.eq(sbit | mant2)
        with m.Elif(exp >= 255):
            m.d.comb += out.eq(sbit | 0x7F800000)
        with m.Else():
            m.d.comb += out.eq(sbit | (exp << 23) | (mant2 - (1 << 23)))
        m.d.sync += self.d.eq(out)
        return m

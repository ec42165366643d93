"""Tensor-core dot-product unit in Amaranth 0.5: ``d = c + sum(a_i * b_i)`` for four fp16
pairs and an fp32 accumulator, to the specification of ``sim.gpu.dot`` (exact products,
exact sum in a 282-bit fixed-point accumulator in units of 2^-149, one round-to-nearest-
even to fp32, subnormals, overflow to infinity, IEEE specials). One cycle of latency:
``d`` is registered.

The formats are parameters (IEEE-style binary formats of any exponent and fraction width,
fp16 and fp32 by default), so that the formal proof of :class:`DotProps` can cover every
input of the same design at small formats.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Assert
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WIDTH", "BUGS", "Format", "FP16", "FP32", "Dot4", "DotProps", "accumulator_bits"]


class Format(NamedTuple):
    """An IEEE-754-style binary format: exponent bits, fraction bits (bias 2^(exp-1) - 1)."""

    exp: int
    man: int

    @property
    def bits(self) -> int:
        return 1 + self.exp + self.man

    @property
    def bias(self) -> int:
        return (1 << (self.exp - 1)) - 1

    @property
    def emax_field(self) -> int:        # the all-ones exponent field (infinities and NaNs)
        return (1 << self.exp) - 1


FP16, FP32 = Format(5, 10), Format(8, 23)          # IEEE 754 binary16 and binary32

# deliberate mutations, for tests that a check catches a broken unit
BUGS = ("truncate", "subnormal-c")


def product_offset(fi: Format, fa: Format) -> int:
    """Units of the accumulator's smallest subnormal, 2^(1 - bias - man): a product of two
    inputs with (clamped) exponent fields ex, ey is its mantissas' product shifted left by
    ex + ey + this offset (99 for fp16 into fp32)."""
    return fa.bias + fa.man - 1 - 2 * (fi.bias + fi.man)


def accumulator_bits(fi: Format = FP16, fa: Format = FP32) -> int:
    """The exact accumulator's width: the larger of the widest c and the widest product in
    units of the accumulator's smallest subnormal, plus five addends' growth and a sign
    (282 for fp16 x fp16 + fp32: c up to 2^128 in units of 2^-149)."""
    cbits = (fa.man + 1) + (fa.emax_field - 2)
    pbits = 2 * (fi.man + 1) + 2 * (fi.emax_field - 1) + product_offset(fi, fa)
    return max(cbits, pbits) + 5


WIDTH = accumulator_bits()


class Dot4(wiring.Component):
    """Ports: ``a``, ``b`` (four fp16 each, lane i in bits [16i, 16i+16)), ``c`` (fp32), ``d`` (fp32);
    ``fin``/``facc``: other input and accumulator formats (a product of two inputs must be a
    whole number of the accumulator's smallest subnormals)."""

    def __init__(self, bug: str | None = None, fin: Format = FP16, facc: Format = FP32):
        # test hooks: "truncate" drops the rounding increment; "subnormal-c" aligns a
        # subnormal c one bit too far left (an off-by-one in the accumulate)
        self.bug = bug
        self.fi, self.fa = fin, facc
        if product_offset(fin, facc) < -2:
            raise ValueError(f"the {facc} accumulator cannot hold {fin} products exactly")
        self.width = accumulator_bits(fin, facc)
        super().__init__({"a": In(4 * fin.bits), "b": In(4 * fin.bits), "c": In(facc.bits), "d": Out(facc.bits)})

    def elaborate(self, platform):
        m = Module()
        fi, fa, WIDTH = self.fi, self.fa, self.width
        IB, EI, MI, TOP = fi.bits, fi.emax_field, fi.man, fi.bits - 1
        terms, neg_zero, nan, inf_pos, inf_neg = [], [], [], [], []
        for i in range(4):
            x, y = self.a[IB * i:IB * i + IB], self.b[IB * i:IB * i + IB]
            ex, ey = x[MI:TOP], y[MI:TOP]
            fx, fy = x[0:MI], y[0:MI]
            mx = Signal(MI + 1, name=f"mx{i}")
            my = Signal(MI + 1, name=f"my{i}")
            m.d.comb += [mx.eq(Mux(ex == 0, fx, fx | (1 << MI))), my.eq(Mux(ey == 0, fy, fy | (1 << MI)))]
            s = Signal(name=f"s{i}")
            m.d.comb += s.eq(x[TOP] ^ y[TOP])
            x_inf, y_inf = (ex == EI) & (fx == 0), (ey == EI) & (fy == 0)
            x_nan, y_nan = (ex == EI) & (fx != 0), (ey == EI) & (fy != 0)
            x_zero, y_zero = (ex == 0) & (fx == 0), (ey == 0) & (fy == 0)
            nan += [x_nan, y_nan, x_inf & y_zero, y_inf & x_zero]
            is_inf = Signal(name=f"inf{i}")
            m.d.comb += is_inf.eq((x_inf | y_inf) & ~x_nan & ~y_nan)
            inf_pos.append(is_inf & ~s)
            inf_neg.append(is_inf & s)
            prod = Signal(2 * (MI + 1), name=f"p{i}")
            m.d.comb += prod.eq(mx * my)
            off = product_offset(fi, fa)
            sh = Signal(range(2 * (EI - 1) + off + 1), name=f"sh{i}")
            m.d.comb += sh.eq(Mux(ex == 0, 1, ex) + Mux(ey == 0, 1, ey) + off)
            t = Signal(signed(WIDTH), name=f"t{i}")
            mag = Signal(unsigned(WIDTH - 1), name=f"tm{i}")
            m.d.comb += mag.eq(Mux(is_inf | (ex == EI) | (ey == EI), 0, prod << sh))
            m.d.comb += t.eq(Mux(s, -mag, mag))
            terms.append(t)
            neg_zero.append(s & (prod == 0))
        MA, EA, ATOP = fa.man, fa.emax_field, fa.bits - 1
        ec, fc = self.c[MA:ATOP], self.c[0:MA]
        c_nan, c_inf = (ec == EA) & (fc != 0), (ec == EA) & (fc == 0)
        nan.append(c_nan)
        inf_pos.append(c_inf & ~self.c[ATOP])
        inf_neg.append(c_inf & self.c[ATOP])
        mc = Signal(MA + 1)
        m.d.comb += mc.eq(Mux(ec == 0, fc, fc | (1 << MA)))
        shc = Signal(range(EA + 1))
        m.d.comb += shc.eq(Mux(ec == 0, 2 if self.bug == "subnormal-c" else 1, ec) - 1)
        cmag = Signal(unsigned(WIDTH - 1))
        m.d.comb += cmag.eq(Mux(ec == EA, 0, mc << shc))
        tc = Signal(signed(WIDTH))
        m.d.comb += tc.eq(Mux(self.c[ATOP], -cmag, cmag))
        terms.append(tc)
        neg_zero.append(self.c[ATOP] & (mc == 0))

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
        m.d.comb += shift.eq(Mux(n > MA + 1, n - (MA + 1), 0))
        mant = Signal(MA + 2)
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
        rounded = Signal(MA + 3)
        m.d.comb += rounded.eq(mant + up)
        carry = rounded[MA + 1]
        mant2 = Signal(MA + 1)
        exp = Signal(range(WIDTH + 2))
        m.d.comb += [mant2.eq(Mux(carry, rounded >> 1, rounded)), exp.eq(shift + 1 + carry)]
        out = Signal(fa.bits)
        sbit = sign << ATOP
        inf = EA << MA
        all_neg_zero = Signal()
        m.d.comb += all_neg_zero.eq(sum(z.as_unsigned() for z in neg_zero) == len(neg_zero))
        any_nan = Signal()
        m.d.comb += any_nan.eq(sum(x.as_unsigned() for x in nan) != 0)
        ip, ineg = Signal(), Signal()
        m.d.comb += [ip.eq(sum(x.as_unsigned() for x in inf_pos) != 0), ineg.eq(sum(x.as_unsigned() for x in inf_neg) != 0)]
        with m.If(any_nan | (ip & ineg)):
            m.d.comb += out.eq(inf | (1 << (MA - 1)))                # the canonical quiet NaN
        with m.Elif(ip):
            m.d.comb += out.eq(inf)
        with m.Elif(ineg):
            m.d.comb += out.eq((1 << ATOP) | inf)
        with m.Elif(mag == 0):
            m.d.comb += out.eq(Mux(all_neg_zero, 1 << ATOP, 0))
        with m.Elif(mant2 < (1 << MA)):
            m.d.comb += out.eq(sbit | mant2)
        with m.Elif(exp >= EA):
            m.d.comb += out.eq(sbit | inf)
        with m.Else():
            m.d.comb += out.eq(sbit | (exp << MA) | (mant2 - (1 << MA)))
        m.d.sync += self.d.eq(out)
        return m


def _decode(m: Module, word, f: Format, name: str):
    """The reference's own reading of a float: sign, clamped exponent field (1 for
    subnormals), significand with its hidden bit, and its class."""
    e, frac, sign = word[f.man:f.bits - 1], word[:f.man], word[f.bits - 1]
    sig = Signal(f.man + 1, name=f"{name}_sig")
    m.d.comb += sig.eq(Cat(frac, e != 0))
    top = e == f.emax_field
    return dict(sign=sign, exp=Mux(e == 0, 1, e), sig=sig, zero=(e == 0) & (frac == 0), inf=top & (frac == 0),
                nan=top & (frac != 0))


class DotProps(Elaboratable):
    """The dot unit's properties, for every input (``a``, ``b``, ``c`` are free), with ``d``
    checked one cycle later against a reference that never normalises or rounds: it forms
    the exact sum S (an integer number of the accumulator's smallest subnormals) and checks
    that ``d`` is the correctly rounded S by comparing S with the midpoints between ``d``'s
    value and its neighbours' (a non-negative float's neighbours are its bit pattern +-1;
    the infinity pattern reads as 2^(emax + 1)):

    1. ``nan``: a NaN operand, inf x 0, or +inf and -inf together give the canonical quiet NaN;
    2. ``infinity``: otherwise, an infinite operand or product gives that infinity;
    3. ``rounding``: otherwise |d| is finite or infinite (not NaN) and lies within the
       midpoints to its neighbours, a tie going to the even pattern (round to nearest even,
       overflow to infinity from max + half an ulp);
    4. ``sign``: otherwise d's sign is S's, or for S = 0 negative exactly when every addend
       is -0."""

    def __init__(self, fin: Format = Format(2, 1), facc: Format = Format(3, 2), bug: str | None = None,
                 checks: str = "comb"):
        self.dut = Dot4(bug, fin, facc)
        self.checks = checks        # "sync": checked at clock edges (for Amaranth's simulator)
        self.fi, self.fa = fin, facc
        self.a, self.b = Signal(4 * fin.bits, name="a"), Signal(4 * fin.bits, name="b")
        self.c, self.d = Signal(facc.bits, name="c"), Signal(facc.bits, name="d")
        self.inputs = (self.a, self.b, self.c)

    def elaborate(self, platform):
        m = Module()
        dut = m.submodules.dut = self.dut
        fi, fa = self.fi, self.fa
        m.d.comb += [dut.a.eq(self.a), dut.b.eq(self.b), dut.c.eq(self.c), self.d.eq(dut.d)]
        a, b, c = (Signal.like(s, name=f"ref_{s.name}") for s in self.inputs)     # last cycle's inputs
        m.d.sync += [a.eq(self.a), b.eq(self.b), c.eq(self.c)]
        # exact sum in units of 2^(1 - bias - man) of the accumulator format
        k0 = (fa.bias + fa.man - 1) - 2 * (fi.bias + fi.man)
        wide = max(fa.man + 1 + fa.emax_field - 2, 2 * (fi.man + 1) + 2 * (fi.emax_field - 1) + k0) + 4
        addends, nan, pinf, ninf, negzero = [], [], [], [], []
        for i in range(4):
            x = _decode(m, a[i * fi.bits:(i + 1) * fi.bits], fi, f"ref_x{i}")
            y = _decode(m, b[i * fi.bits:(i + 1) * fi.bits], fi, f"ref_y{i}")
            neg = x["sign"] ^ y["sign"]
            nan += [x["nan"], y["nan"], x["inf"] & y["zero"], x["zero"] & y["inf"]]
            inf = x["inf"] | y["inf"]
            pinf.append(inf & ~neg)
            ninf.append(inf & neg)
            negzero.append(neg & (x["zero"] | y["zero"]))
            p = Signal(signed(wide), name=f"ref_p{i}")
            sh = Signal(range(2 * fi.emax_field + k0 + 1), name=f"ref_sh{i}")
            m.d.comb += sh.eq(x["exp"] + y["exp"] + k0)
            mag = (x["sig"] * y["sig"]) << sh
            m.d.comb += p.eq(Mux(x["inf"] | x["nan"] | y["inf"] | y["nan"], 0, Mux(neg, -mag, mag)))
            addends.append(p)
        z = _decode(m, c, fa, "ref_c")
        nan.append(z["nan"])
        pinf.append(z["inf"] & ~z["sign"])
        ninf.append(z["inf"] & z["sign"])
        negzero.append(z["sign"] & z["zero"])
        pc = Signal(signed(wide), name="ref_pc")
        cmag = z["sig"] << (z["exp"] - 1).as_unsigned()
        m.d.comb += pc.eq(Mux(z["inf"] | z["nan"], 0, Mux(z["sign"], -cmag, cmag)))
        S = Signal(signed(wide), name="ref_sum")
        m.d.comb += S.eq(sum(addends) + pc)
        A = Signal(wide, name="ref_abs")
        m.d.comb += A.eq(Mux(S < 0, -S, S))

        INF = fa.emax_field << fa.man
        top = fa.bits - 1
        want_nan = Cat(*nan).any() | (Cat(*pinf).any() & Cat(*ninf).any())
        want_inf = ~want_nan & (Cat(*pinf).any() | Cat(*ninf).any())
        finite = ~want_nan & ~want_inf
        d, M, ds = self.d, self.d[:top], self.d[top]

        def value(pattern, name):
            v = Signal(fa.man + 1 + fa.emax_field, name=f"ref_{name}")
            e, f = pattern[fa.man:top], pattern[:fa.man]
            m.d.comb += v.eq(Cat(f, e != 0) << Mux(e == 0, 0, (e - 1).as_unsigned()))
            return v

        V = value(M, "value")
        lo = value((M - 1)[:top], "below")
        hi = value((M + 1)[:top], "above")
        twice = Cat(Const(0, 1), A)                     # 2|S|
        even = ~M[0]
        lo_ok = (M == 0) | (twice > V + lo) | ((twice == V + lo) & even)
        hi_ok = (M == INF) | (twice < V + hi) | ((twice == V + hi) & even)
        m.d[self.checks] += Assert(~want_nan | (d == (INF | (1 << (fa.man - 1)))), "nan")
        m.d[self.checks] += Assert(~want_inf | (d == Cat(Const(INF, top), Cat(*ninf).any())), "infinity")
        m.d[self.checks] += Assert(~finite | ((M <= INF) & lo_ok & hi_ok), "rounding")
        m.d[self.checks] += Assert(~finite | (ds == Mux(A != 0, S < 0, Cat(*negzero).all())), "sign")
        return m

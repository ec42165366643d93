"""The tensor-core dot-product step ``d = c + a0*b0 + a1*b1 + a2*b2 + a3*b3`` (fp16 inputs,
fp32 accumulator), bit-exact reference for ``rtl.dot``.

Specification: the four fp16 products are exact; the products and ``c`` are added
exactly and the sum is rounded once to fp32, round-to-nearest-even, with fp32
subnormals and overflow to infinity (a fused dot product). Any NaN input, an
infinity times zero, or infinities of both signs give the canonical NaN 0x7FC00000;
otherwise an infinite term gives that infinity. An all-zero sum is -0 only if every term
is -0.

Where it differs from the GPU: NVIDIA's tensor cores (Volta to Ampere) also form the
products exactly but align the addends to the largest exponent and truncate the bits
shifted out, and the fp32 result is not IEEE round-to-nearest (Fasi, Higham, Mikaitis,
Pranesh, "Numerical behavior of NVIDIA tensor cores", PeerJ CS 2021). This unit rounds
the exact sum once, so its result is the correctly rounded value; the GPU's can differ
in the last bits when addends' exponents are far apart.
"""

from __future__ import annotations

import struct
from typing import TypeAlias

__all__ = ["NAN32", "round_to_f32", "dot4", "f32"]

NAN32 = 0x7FC00000

# (sign, (mantissa, exponent) or None for an infinity or NaN, "inf" / "nan" / None)
_Unpacked: TypeAlias = tuple[int, tuple[int, int] | None, str | None]


def _f16(bits: int) -> _Unpacked:
    s, e, f = bits >> 15 & 1, bits >> 10 & 0x1F, bits & 0x3FF
    if e == 31:
        return s, None, "nan" if f else "inf"
    return s, (f, -24) if e == 0 else (f | 0x400, e - 25), None


def _f32(bits: int) -> _Unpacked:
    s, e, f = bits >> 31 & 1, bits >> 23 & 0xFF, bits & 0x7FFFFF
    if e == 255:
        return s, None, "nan" if f else "inf"
    return s, (f, -149) if e == 0 else (f | 0x800000, e - 150), None


def round_to_f32(total: int, all_neg_zero: bool = False) -> int:
    """An exact sum in units of 2^-149, rounded to nearest even, as fp32 bits."""
    if total == 0:
        return 0x80000000 if all_neg_zero else 0
    sign = 0x80000000 if total < 0 else 0
    mag = -total if total < 0 else total
    shift = max(0, mag.bit_length() - 24)
    mant = mag >> shift
    rem = mag - (mant << shift)
    if shift:
        half = 1 << (shift - 1)
        if rem > half or (rem == half and mant & 1):
            mant += 1
            if mant == 1 << 24:
                mant >>= 1
                shift += 1
    if mant < 1 << 23:                     # subnormal (only when shift == 0)
        return sign | mant
    exp = shift + 1
    if exp >= 255:
        return sign | 0x7F800000
    return sign | exp << 23 | (mant - (1 << 23))


def dot4(a: list[int], b: list[int], c: int) -> int:
    """fp16 bit patterns ``a``, ``b`` (4 each) and fp32 bits ``c`` -> fp32 bits of d."""
    infs = []
    total = 0
    zero_neg = []
    sc, vc, kc = _f32(c)
    if kc == "nan":
        return NAN32
    if vc is None:                          # kc == "inf"
        infs.append(sc)
    else:
        total += (-1 if sc else 1) * (vc[0] << (vc[1] + 149))
        zero_neg.append(vc[0] == 0 and sc == 1)
    for x, y in zip(a, b):
        sa, va, ka = _f16(x)
        sb, vb, kb = _f16(y)
        if ka == "nan" or kb == "nan":
            return NAN32
        s = sa ^ sb
        if va is None or vb is None:        # an infinity (no NaN here): ka == "inf" or kb == "inf"
            other = vb if va is None and vb is not None else va if vb is None and va is not None else (1, 0)
            if other[0] == 0:
                return NAN32            # inf x 0
            infs.append(s)
            continue
        m = va[0] * vb[0]
        total += (-1 if s else 1) * (m << (va[1] + vb[1] + 149))
        zero_neg.append(m == 0 and s == 1)
    if infs:
        return NAN32 if len(set(infs)) > 1 else (0xFF800000 if infs[0] else 0x7F800000)
    return round_to_f32(total, all(zero_neg))


def f32(bits: int) -> float:
    return float(struct.unpack("<f", struct.pack("<I", bits))[0])

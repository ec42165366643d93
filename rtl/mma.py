"""Volta-style tensor-core MMA step in Amaranth 0.5: ``D = A x B + C`` for 4x4 matrices,
``A`` and ``B`` of fp16 and ``C``, ``D`` of fp32, built from the dot-unit generator
(:class:`rtl.dot.Dot4`): output ``D[i][j]`` is one dot unit on row i of ``A``, column j of
``B`` and ``C[i][j]``.

Parallel, not time-multiplexed. Inputs (published, ``/work/shared/reference/gpus.md``
5.1): a Volta tensor core performs 64 fp16 FMA per clock (V100 whitepaper: "each Tensor
Core performs 64 floating point FMA mixed-precision operations per clock") and its
operation is the 4x4x4 ``D = A x B + C`` (fp16 in, fp32 accumulate); ``sim.gpu.arch``'s
v100 preset holds the same 64 (``tc_fma_per_clk``). One 4x4x4 step is 4 * 4 * 4 = 64
FMAs, so the published rate is one whole step per clock: the 16 four-term dot units
(4 FMAs each) all work in the same clock. Time-multiplexing them over T clocks would give
64 / T FMA per clock. Check (derived, not an input): 80 SMs x 8 tensor cores x 64 FMA x
2 FLOP x 1.53 GHz = 125.3 TFLOPS, the V100 SXM2's published 125 fp16 tensor TFLOPS.

Timing (named assumption): one operand set per clock, ``d`` registered one clock after its
inputs (the dot unit's latency). Volta pipelines its HMMA.884 steps over several clocks;
the issue rate, not the pipeline depth, is what the published rate fixes.

Arithmetic: each output is the dot unit's, exact products and sum with one round to
nearest even (a fused dot product), i.e. ``sim.gpu.dot.dot4`` per output. That is the
mode ``sim.gpu.dot`` models; Volta's own tensor cores truncate while aligning the addends
(Fasi et al., PeerJ CS 2021), which neither the model nor this unit implements.

Ports (lane = one number, lane n in bits [n*w, (n+1)*w)): ``a`` A[i][k] in lane 4i+k,
``b`` B[k][j] in lane 4k+j, ``c`` C[i][j] and ``d`` D[i][j] in lane 4i+j.
"""

from __future__ import annotations

from typing import Any

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .dot import FP16, FP32, Dot4, DotProps, Format

__all__ = ["N", "FMA_PER_CLOCK", "BUGS", "Mma", "MmaProps"]

N = 4                    # the 4x4x4 step (published: V100 whitepaper, gpus.md 5.1)
FMA_PER_CLOCK = N ** 3   # 64, one step per clock (checked against the v100 preset's tc_fma_per_clk)

# deliberate mutations: "transpose" wires output (i, j) to row j of B instead of column j;
# "truncate" is the dot unit's (no rounding increment), in every dot unit
BUGS = ("transpose", "truncate")


class Mma(wiring.Component):
    """The 4x4x4 MMA step: 16 :class:`Dot4` in parallel; ``arch``: a GPU description the
    unit must implement (``rtl.require.mma``), None for the fp16/fp32 defaults."""

    def __init__(self, arch: Any = None, bug: str | None = None, fin: Format = FP16, facc: Format = FP32):
        if arch is not None:
            from .require import checked, mma
            checked(self, lambda a: mma(a, FMA_PER_CLOCK), arch)
        if bug is not None and bug not in BUGS:
            self._MustUse__silence = True
            raise ValueError(f"unknown mma bug {bug!r}; one of {', '.join(BUGS)}")
        self.bug = bug
        self.fi, self.fa = fin, facc
        try:
            Dot4(None, fin, facc)._MustUse__silence = True       # refuses formats it cannot hold exactly
        except ValueError:
            self._MustUse__silence = True
            raise
        super().__init__({"a": In(N * N * fin.bits), "b": In(N * N * fin.bits), "c": In(N * N * facc.bits),
                          "d": Out(N * N * facc.bits)})

    def lane(self, port: Any, n: int) -> Any:
        w = self.fa.bits if port is self.c or port is self.d else self.fi.bits
        return port[n * w:(n + 1) * w]

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        for i in range(N):
            for j in range(N):
                dot = Dot4("truncate" if self.bug == "truncate" else None, self.fi, self.fa)
                m.submodules[f"dot_{i}_{j}"] = dot
                col = [self.lane(self.b, N * j + k if self.bug == "transpose" else N * k + j) for k in range(N)]
                m.d.comb += [dot.a.eq(Cat(*(self.lane(self.a, N * i + k) for k in range(N)))),
                             dot.b.eq(Cat(*col)), dot.c.eq(self.lane(self.c, N * i + j)),
                             self.lane(self.d, N * i + j).eq(dot.d)]
        return m


class _Tap(wiring.Component):
    """A dot unit's ports around one output of the MMA, so that :class:`DotProps` checks that
    output: ``d`` is the MMA's lane; ``a``, ``b``, ``c`` are left unread (the harness drives
    the MMA itself)."""

    def __init__(self, fin: Format, facc: Format, source: Any):
        self.source = source
        super().__init__({"a": In(4 * fin.bits), "b": In(4 * fin.bits), "c": In(facc.bits), "d": Out(facc.bits)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.d.comb += self.d.eq(self.source)
        return m


class MmaProps(Elaboratable):
    """The MMA's properties for every ``a``, ``b``, ``c``: :class:`DotProps`'s four (nan,
    infinity, rounding, sign) on each of the 16 outputs, the reference of output (i, j)
    reading row i of ``a``, column j of ``b`` and lane (i, j) of ``c`` from the free inputs
    (so a wrong wiring fails too): 64 properties; ``outputs``: only these (i, j) (the proofs
    run one output at a time, :func:`rtl.proofs.run`)."""

    def __init__(self, fin: Format = Format(2, 1), facc: Format = Format(3, 2), bug: str | None = None,
                 checks: str = "comb", outputs: tuple[tuple[int, int], ...] | None = None):
        self.dut = Mma(None, bug, fin, facc)
        self.fi, self.fa = fin, facc
        self.a, self.b = Signal(N * N * fin.bits, name="a"), Signal(N * N * fin.bits, name="b")
        self.c, self.d = Signal(N * N * facc.bits, name="c"), Signal(N * N * facc.bits, name="d")
        self.inputs = (self.a, self.b, self.c)
        self.props = []
        for i, j in outputs or [(i, j) for i in range(N) for j in range(N)]:
            p = DotProps(fin, facc, checks=checks)
            p.dut._MustUse__silence = True          # replaced by a tap on the MMA's output (i, j)
            p.dut = _Tap(fin, facc, self.dut.lane(self.dut.d, N * i + j))
            self.props.append((i, j, p))

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        dut = m.submodules.dut = self.dut
        fb, ab = self.fi.bits, self.fa.bits
        m.d.comb += [dut.a.eq(self.a), dut.b.eq(self.b), dut.c.eq(self.c), self.d.eq(dut.d)]
        for i, j, p in self.props:
            m.submodules[f"props_{i}_{j}"] = p
            m.d.comb += [p.a.eq(Cat(*(self.a[(N * i + k) * fb:(N * i + k + 1) * fb] for k in range(N)))),
                         p.b.eq(Cat(*(self.b[(N * k + j) * fb:(N * k + j + 1) * fb] for k in range(N)))),
                         p.c.eq(self.c[(N * i + j) * ab:(N * i + j + 1) * ab])]
        return m

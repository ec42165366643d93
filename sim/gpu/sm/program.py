"""The instruction streams of a GEMM CTA's main loop, warp by warp, as CUTLASS writes them.

An instruction is a tuple ``(opcode, a, b, c)``; :mod:`sim.gpu.sm.core` issues them in
order per warp. Three kernel structures, one per way the tile reaches the tensor cores:

* **multistage** (Ampere and later register MMAs; CUTLASS ``MmaMultistage``,
  ``include/cutlass/gemm/threadblock/mma_multistage.h``): ``stages - 1`` K steps of A and B
  are copied global->shared with ``cp.async`` (LDGSTS) before the loop; in the loop each
  warp, per MMA K slice, loads the *next* slice's fragments (``ldmatrix``) into the other
  half of a double-buffered register fragment, issues its share of the copies for the
  stage ``stages - 1`` steps ahead, then the slice's MMAs; before loading fragments from
  the next stage it commits its copies, waits until at most ``stages - 2`` groups are in
  flight and meets the CTA's other warps at a barrier;
* **pipelined** (Volta and Turing, no ``cp.async``; CUTLASS ``MmaPipelined``, two shared
  stages): the next K step is loaded global->registers (LDG) at the loop's first slice and
  stored to the other shared stage (STS) before the barrier that ends the step;
* **warp-specialised** (Hopper ``wgmma``; CUTLASS ``KernelTmaWarpSpecializedCooperative``):
  one producer warp waits for a stage to be released and fills it with one TMA copy; each
  consumer warpgroup (two for tiles over 64 rows, splitting the rows, else one) waits for
  the stage to be full, issues its ``wgmma`` for the step, commits them as a group, waits
  until only that group is in flight and releases the previous step's stage.

Warp layouts are CUTLASS's (``python/cutlass_library/generator.py``,
``GenerateSM80_TensorOp_16816`` and ``GenerateSM70_TensorOp_884``): 256x128 4x2 warps,
128x256 2x4, 256x64 4x1, 64x256 1x4, 128x128 / 128x64 / 64x128 / 64x64 2x2. The narrower
tiles this model also offers (64x32, 32x64, 32x32), which CUTLASS does not list, get one
warp per 32x32 of outputs (an assumption).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from . import isa
from .isa import TensorOp

__all__ = ["Op", "TENSOR_OPS", "Instr", "CtaProgram", "WARP_LAYOUTS", "warp_layout", "consumer_warpgroups",
           "cta_program"]


class Op(IntEnum):
    """The instructions the core issues (a marker, ``MARK``, takes no issue slot)."""
    MMA = 0; LDSM = 1; LDGSTS = 2; COMMIT = 3; WAIT = 4; BAR = 5; LDG = 6; STS = 7         # noqa: E702
    TMA = 8; WAIT_FULL = 9; WGMMA = 10; WG_COMMIT = 11; WG_WAIT = 12; ARRIVE_EMPTY = 13     # noqa: E702
    WAIT_EMPTY = 14; MARK = 15                                                             # noqa: E702


TENSOR_OPS = frozenset((Op.MMA, Op.WGMMA))
Instr = tuple[int, int, int, int]

WARP_LAYOUTS: dict[tuple[int, int], tuple[int, int]] = {
    (256, 128): (4, 2), (128, 256): (2, 4), (256, 64): (4, 1), (64, 256): (1, 4), (128, 128): (2, 2),
    (128, 64): (2, 2), (64, 128): (2, 2), (64, 64): (2, 2),
}


def warp_layout(BM: int, BN: int) -> tuple[int, int]:
    """(warps along M, warps along N) of a CTA tile."""
    if (BM, BN) in WARP_LAYOUTS:
        return WARP_LAYOUTS[BM, BN]
    return max(1, BM // 32), max(1, BN // 32)


@dataclass(frozen=True)
class CtaProgram:
    """One CTA's warps' instruction streams and what the core needs to know of them."""
    warps: tuple[tuple[Instr, ...], ...]
    consumer_warps: int          # warps that arrive at a stage's release (warp-specialised), or at a barrier
    structure: str               # multistage | pipelined | warp-specialised


def _mma_cta(BM: int, BN: int, BK: int, in_b: float, op: TensorOp, stages: int, ksteps: int,
             multistage: bool) -> CtaProgram:
    wm, wn = warp_layout(BM, BN)
    WM, WN = BM // wm, BN // wn
    kk_n = max(1, BK // op.k)
    mmas = math.ceil(WM / op.m) * math.ceil(WN / op.n)
    ld = max(1, math.ceil(WM * op.k * in_b / isa.WARP_LOAD_BYTES)) + max(1, math.ceil(WN * op.k * in_b / isa.WARP_LOAD_BYTES))
    warps = wm * wn
    copies = max(1, math.ceil((BM + BN) * BK * in_b / warps / isa.WARP_LOAD_BYTES))     # per warp per K step
    per_slice = [copies // kk_n + (1 if i < copies % kk_n else 0) for i in range(kk_n)]
    out: list[tuple[Instr, ...]] = []
    for _ in range(warps):
        p: list[Instr] = []

        def frags(parity: int) -> None:
            for i in range(ld):
                p.append((Op.LDSM, parity, 1 if i == 0 else 0, isa.WARP_LOAD_BYTES))

        if multistage:
            for _s in range(stages - 1):
                p.extend((Op.LDGSTS, isa.WARP_LOAD_BYTES, 0, 0) for _ in range(copies))
                p.append((Op.COMMIT, 0, 0, 0))
            p.append((Op.WAIT, stages - 2, 0, 0))
        else:
            p.extend((Op.LDG, isa.WARP_LOAD_BYTES, 0, 0) for _ in range(copies))
            p.extend((Op.STS, isa.WARP_LOAD_BYTES, 0, 0) for _ in range(copies))
        p.append((Op.BAR, 0, 0, 0))
        frags(0)
        g = 0                                  # MMA K slices so far (fragment parity)
        for ks in range(ksteps):
            for kk in range(kk_n):
                last_slice = kk == kk_n - 1
                has_next = not (last_slice and ks == ksteps - 1)
                copying = multistage and ks + stages - 1 < ksteps
                if last_slice and has_next:    # the next fragments come from the next stage
                    if multistage:             # this step's copies are all issued before its commit
                        if copying:
                            p.extend((Op.LDGSTS, isa.WARP_LOAD_BYTES, 0, 0) for _ in range(per_slice[kk]))
                        p.append((Op.COMMIT, 0, 0, 0))
                        p.append((Op.WAIT, stages - 2, 0, 0))
                    else:
                        p.extend((Op.STS, isa.WARP_LOAD_BYTES, 0, 0) for _ in range(copies))
                    p.append((Op.BAR, 0, 0, 0))
                if has_next:
                    frags((g + 1) % 2)
                if copying and not last_slice:
                    p.extend((Op.LDGSTS, isa.WARP_LOAD_BYTES, 0, 0) for _ in range(per_slice[kk]))
                if not multistage and kk == 0 and ks + 1 < ksteps:
                    p.extend((Op.LDG, isa.WARP_LOAD_BYTES, 0, 0) for _ in range(copies))
                p.extend((Op.MMA, a, g % 2, 0) for a in range(mmas))
                g += 1
            p.append((Op.MARK, ks, 0, 0))
        out.append(tuple(p))
    return CtaProgram(tuple(out), warps, "multistage" if multistage else "pipelined")


def consumer_warpgroups(BM: int) -> int:
    """Consumer warpgroups of a warp-specialised wgmma CTA: two for tiles over 64 rows
    (splitting the rows), else one."""
    return 1 if BM <= 64 else 2


def _wgmma_cta(BM: int, BN: int, BK: int, in_b: float, op: TensorOp, stages: int, ksteps: int) -> CtaProgram:
    groups = consumer_warpgroups(BM)
    per_slice = math.ceil(BM / groups / op.m)          # wgmma m64 per K slice per warpgroup
    kk_n = max(1, BK // op.k)
    producer: list[Instr] = []
    for ks in range(ksteps):
        if ks >= stages:
            producer.append((Op.WAIT_EMPTY, ks - stages, 0, 0))
        producer.append((Op.TMA, ks, math.ceil((BM + BN) * BK * in_b), 0))
    consumer: list[Instr] = []
    for ks in range(ksteps):
        consumer.append((Op.WAIT_FULL, ks, 0, 0))
        consumer.extend((Op.WGMMA, 0, 0, 0) for _ in range(per_slice * kk_n))
        consumer.append((Op.WG_COMMIT, 0, 0, 0))
        consumer.append((Op.MARK, ks, 0, 0))          # the step's last wgmma issued
        consumer.append((Op.WG_WAIT, 1, 0, 0))
        if ks:
            consumer.append((Op.ARRIVE_EMPTY, ks - 1, 0, 0))
    consumer.append((Op.WG_WAIT, 0, 0, 0))
    consumer.append((Op.ARRIVE_EMPTY, ksteps - 1, 0, 0))
    # warp 0 produces; warps 1-3 of its warpgroup idle; each consumer warpgroup has one warp per SMSP
    idle: tuple[Instr, ...] = ()
    warps = (tuple(producer), idle, idle, idle) + (tuple(consumer),) * (4 * groups)
    return CtaProgram(warps, 4 * groups, "warp-specialised")


def cta_program(BM: int, BN: int, BK: int, in_b: float, op: TensorOp, stages: int, ksteps: int,
                async_copy: bool) -> CtaProgram:
    """The CTA's program for ``ksteps`` K steps of ``BK`` elements (``in_b`` bytes each)."""
    if op.warpgroup:
        return _wgmma_cta(BM, BN, BK, in_b, op, stages, ksteps)
    return _mma_cta(BM, BN, BK, in_b, op, stages, ksteps, async_copy and stages >= 3)

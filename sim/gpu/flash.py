"""FlashAttention kernels block by block: FA2 (Dao, arXiv:2307.08691) and FA3 (Shah et al.,
arXiv:2407.08608), as their released kernels tile the work.

A kernel is a grid of CTAs. Forward, a CTA owns ``br`` query rows of one (batch, head) and
loops over blocks of ``bc`` key rows; backward (FA2's and FA3's "seqk-parallel" kernels), a
CTA owns ``bc`` key rows and loops over blocks of ``br`` query rows. A causal mask (``Lq ==
Lk``) leaves a CTA the blocks on or below the diagonal, the diagonal ones masked. The tiles
per head dimension (64, 128, 256; a head dimension between them runs padded to the next)
are the kernels' own (``FA2_TILES``, ``FA3_TILES``).

One block on an SM uses three pipes:

* **tensor**: ``4 br bc d`` FLOPs forward (S = QK^T, O += PV), ``10 br bc d`` backward (S
  again, dP = dO V^T, dV += P^T dO, dK += dS^T Q, dQ += dS K), at the SM's tensor rate x
  ``MMA_EFFICIENCY`` (0.9 of the datasheet rate: the attention kernels' programs are not yet
  stepped on the SM core, ``sim.gpu.sm``, that GEMMs run on); FA2 on Hopper issues Ampere's ``mma.sync``, which reaches
  ``sim.gpu.sm.isa.HOPPER_MMA_SYNC_SHARE`` of the rate ``wgmma`` does (measured);
* **MUFU**: one ``exp2`` per score element, ``MUFU_PER_CLK`` per SM;
* **FP32**: ``FWD_OPS`` (``BWD_OPS``) per score element, ``MASK_OPS`` more on a masked
  block, and forward the rescale of the output block (``br d``), at ``fp32_lanes_per_sm``;
* FA2's backward also writes P and dS to shared memory and reads them back after a barrier,
  ``FA2_BWD_ROUNDTRIP`` accesses per score element at ``SMEM_BYTES_PER_CLK``, with nothing to
  overlap (its forward keeps P in registers).

The softmax (MUFU then FP32: one instruction stream) and the GEMMs overlap only in part:
a block takes ``max(tensor, softmax) + OVERLAP_EXPOSED x min(tensor, softmax)``, or its L2
traffic (the blocks' K and V forward, shared by a TMA-multicast cluster; Q, dO and the row
statistics and dQ's fp32 read-modify-write backward) at the SM's share of the L2 bandwidth
if that is longer. A CTA also waits one DRAM latency for its first tile and runs its first
block without overlap (``cta_fixed_cycles``). CTAs go to the
SMs in launch order (the block index, query tile fastest), each to the SM that frees
first; the kernel ends when the last SM does. A grid short of the SMs splits its key blocks
over more CTAs as FA2's heuristic chooses (split-KV; the partial results' combine is not
counted). One CTA per SM at a time: FA2's two resident CTAs per SM on some shapes (their
overlapped latencies) are not modelled.

FA2 runs on Ampere and later; a fused attention on an older card (V100, T4: PyTorch's
memory-efficient kernel, which tiles the same way) is given FA2's blocks, an approximation.
"""

from __future__ import annotations

import heapq
import math
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Mapping

from workloads.errors import HwsimError

from .sm import isa as sm_isa
from .precision import PRECISION_BYTES

if TYPE_CHECKING:
    from .arch import GPUArch

__all__ = ["FlashKernel", "FLASH_KERNELS", "Tiles", "FA2_TILES", "FA3_TILES", "HEAD_DIMS", "MUFU_PER_CLK",
           "FWD_OPS", "BWD_OPS", "MASK_OPS", "OVERLAP_EXPOSED", "MAX_PLACED", "kernel_for", "tiles",
           "block_cycles", "cta_fixed_cycles", "cta_blocks", "place", "num_splits", "FlashRun", "flash_run",
           "FA2_HEAD_DIM_STEP", "ROWS_PER_MMA", "MAX_SPLITS", "SMEM_BYTES_PER_CLK", "FA2_BWD_ROUNDTRIP", "MMA_EFFICIENCY"]

FlashKernel = Literal["fa2", "fa3"]
FLASH_KERNELS: tuple[FlashKernel, ...] = typing.get_args(FlashKernel)
HEAD_DIMS = (64, 128, 256)
FA2_HEAD_DIM_STEP = 32       # FA2 compiles head dimensions 32, 64, 96, ..., 256


@dataclass(frozen=True)
class Tiles:
    """``br`` x ``bc``: query rows x key rows of one block; ``cluster``: CTAs that share
    each K/V load (FA3's TMA multicast)."""

    br: int
    bc: int
    cluster: int = 1


# (head dim, backward, causal) -> tiles. FA2 at its release (commit 4f285b35,
# csrc/flash_attn/src/flash_fwd_launch_template.h and flash_bwd_launch_template.h, the
# A100/H100 branches without dropout): forward 128x128 (d 64), 128x64 (128), 128x64 (256 on
# an A100; 64x64 on an H100, by shared memory); backward kBlockM x kBlockN 128x128, 64x128, 64x64.
FA2_TILES: Mapping[tuple[int, bool], Tiles] = {
    (64, False): Tiles(128, 128), (128, False): Tiles(128, 64), (256, False): Tiles(128, 64),
    (64, True): Tiles(128, 128), (128, True): Tiles(64, 128), (256, True): Tiles(64, 64)}
FA2_H100_FWD_256 = Tiles(64, 64)
# FA3 at its release (commit 7f67966c, hopper/flash_fwd_launch_template.h): forward 192x128 (d
# 64), 128x176 in clusters of 2 (128, non-causal) or 128x128 (causal), 128x80 in clusters of 2
# (256, non-causal; 1 causal); backward (hopper/flash_bwd_launch_template.h) 128x128, 64x128, 64x80.
FA3_TILES: Mapping[tuple[int, bool, bool], Tiles] = {
    (64, False, False): Tiles(192, 128), (64, False, True): Tiles(192, 128),
    (128, False, False): Tiles(128, 176, 2), (128, False, True): Tiles(128, 128),
    (256, False, False): Tiles(128, 80, 2), (256, False, True): Tiles(128, 80),
    (64, True, False): Tiles(128, 128), (64, True, True): Tiles(128, 128),
    (128, True, False): Tiles(64, 128), (128, True, True): Tiles(64, 128),
    (256, True, False): Tiles(64, 80), (256, True, True): Tiles(64, 80)}

# exp2 results per clock per SM: 16 on A100 and H100 (CUDA C++ Programming Guide, throughput of
# native arithmetic instructions; FA3 paper footnote 5: 16 x 132 SMs x 1830 MHz = 3.9 TFLOPS)
MUFU_PER_CLK = 16
# FP32-pipe instructions per score element (flash_attn/src/softmax.h): forward the row max
# (FMNMX), the scaled subtraction of the max (FFMA), the row sum (FADD) and half a pack of two
# results to 16 bits (F2FP); backward P again (FFMA), dS = P (dP - D) (FADD, FMUL) and the packs
# of P and dS. Counted at the FP32 lanes' rate, a named assumption (the guide gives FMNMX and F2FP
# no separate figure for Hopper)
FWD_OPS = 3.5
BWD_OPS = 4.0
MASK_OPS = 1.0            # a masked block's compare-and-select per element (apply_mask)
# the fewest query rows an MMA computes: mma.sync m16n8k16 (FA2), wgmma m64nNk16 (FA3)
ROWS_PER_MMA: Mapping[FlashKernel, int] = {"fa2": 16, "fa3": 64}
# The share of the shorter of a block's GEMMs and softmax that the kernel does not hide behind
# the longer: a fit on FA3's ablation (Table 2: {4, 8448, 16, 128} non-causal forward, 661
# TFLOPS; row h100-fa3-ablation-4x16x8448x128-fwd-tflops), used for FA2 as well
OVERLAP_EXPOSED = 0.5
# Shared-memory bytes per clock per SM: 32 banks of 32 bits each per clock (CUDA C++
# Programming Guide, shared memory, compute capability 5.x and later)
SMEM_BYTES_PER_CLK = 128
MMA_EFFICIENCY = 0.9            # share of the datasheet tensor rate an attention block's GEMMs sustain
# FA2's backward per score element: P and dS written to shared memory (2) and read back by the
# three GEMMs that take them as A operands, each fragment by the 4 warps of a row of its 2 x 4
# warp layout (3 x 4 = 12): 14 element accesses (flash_bwd_kernel.h: sP, sdS between
# __syncthreads; the warp layouts of flash_bwd_launch_template.h, a named approximation)
FA2_BWD_ROUNDTRIP = 14
# CTAs placed one by one; a larger grid takes the list-scheduling bound (policy: run time)
MAX_PLACED = 200_000
MAX_SPLITS = 128          # FA2's cap on split-KV (flash_api.cpp: num_splits_heuristic(..., 128))


def kernel_for(arch: GPUArch, choice: str, precision: str) -> FlashKernel:
    """The kernel a fused attention runs: ``choice`` (auto, fa2, fa3); auto is FA3 on Hopper
    at 16-bit or fp8, FA2 elsewhere. FA3 needs Hopper's wgmma and TMA."""
    if choice == "fa3":
        if arch.generation != "hopper":
            raise HwsimError(f"attention_kernel fa3 needs a Hopper GPU (wgmma, TMA); {arch.name} is "
                             f"{arch.generation or 'of no stated generation'}: use fa2 or auto")
        return "fa3"
    if choice == "fa2":
        return "fa2"
    return "fa3" if arch.generation == "hopper" and precision in ("fp16", "bf16", "fp8") else "fa2"


def tiles(kernel: FlashKernel, arch: GPUArch, head_dim: int, backward: bool, causal: bool) -> tuple[int, Tiles]:
    """(the padded head dimension, the tiles) of ``kernel`` for a head dimension: FA3 pads it to
    64, 128 or 256; FA2 to a multiple of ``FA2_HEAD_DIM_STEP``, with the tiles of the next of
    64, 128, 256 (its own tiles between them are not modelled)."""
    if head_dim > HEAD_DIMS[-1]:
        raise HwsimError(f"FlashAttention kernels take head dimensions up to {HEAD_DIMS[-1]}, not {head_dim}: "
                         "lower the model with --attention unfused")
    table = next(h for h in HEAD_DIMS if head_dim <= h)
    if kernel == "fa3":
        return table, FA3_TILES[(table, backward, causal)]
    d = -(-head_dim // FA2_HEAD_DIM_STEP) * FA2_HEAD_DIM_STEP
    if (table, backward) == (256, False) and arch.generation == "hopper":
        return d, FA2_H100_FWD_256
    return d, FA2_TILES[(table, backward)]


def _pipes(arch: GPUArch, precision: str, kernel: FlashKernel, t: Tiles, d: int, backward: bool,
           masked: bool, rows: int = 0) -> tuple[float, float, float, float]:
    """(tensor, softmax, L2, exposed shared-memory) cycles of one block on an SM (module
    docstring); ``rows``: query rows in use, if fewer than ``br`` (decoding), rounded up to the
    MMA's M."""
    share = sm_isa.HOPPER_MMA_SYNC_SHARE if kernel == "fa2" and arch.generation == "hopper" else 1.0
    m = ROWS_PER_MMA[kernel]
    br = min(t.br, -(-rows // m) * m) if rows else t.br
    flops = (10 if backward else 4) * br * t.bc * d
    tensor = flops / (2 * arch.sm_fma_per_clk(precision) * MMA_EFFICIENCY * share)
    n = br * t.bc
    ops = (BWD_OPS if backward else FWD_OPS) * n + (MASK_OPS * n if masked else 0.0) + (0 if backward else br * d)
    soft = n / MUFU_PER_CLK + ops / arch.fp32_lanes_per_sm
    in_b = PRECISION_BYTES[precision]
    l2: float
    if backward:      # Q and dO blocks, the row statistics (lse, D), dQ's fp32 read-modify-write
        l2 = 2 * t.br * d * in_b + 2 * t.br * 4 + t.br * d * 8
    else:             # K and V blocks, multicast to the cluster
        l2 = 2 * t.bc * d * in_b / t.cluster
    # FA2's backward writes P and dS to shared memory and, after a barrier, reads them back as
    # the A operands of dV = P^T dO, dK = dS^T Q and dQ = dS K: nothing to prefetch them under
    roundtrip = (FA2_BWD_ROUNDTRIP * n * in_b / SMEM_BYTES_PER_CLK) if backward and kernel == "fa2" else 0.0
    return tensor, soft, l2 * arch.sms / arch.l2_bytes_per_clk, roundtrip


def block_cycles(arch: GPUArch, precision: str, kernel: FlashKernel, t: Tiles, d: int, backward: bool,
                 masked: bool, rows: int = 0) -> float:
    """SM cycles of one block in a CTA's steady state (module docstring)."""
    tensor, soft, l2, roundtrip = _pipes(arch, precision, kernel, t, d, backward, masked, rows)
    return max(max(tensor, soft) + OVERLAP_EXPOSED * min(tensor, soft), l2) + roundtrip


def cta_fixed_cycles(arch: GPUArch, precision: str, kernel: FlashKernel, t: Tiles, d: int, backward: bool,
                     rows: int = 0) -> float:
    """A CTA's cycles besides its blocks' steady state: one DRAM latency before its first
    tile arrives, and its first block's softmax and GEMMs one after the other (nothing before
    it to overlap; its tiles' bytes count in the kernel's DRAM traffic, not here)."""
    tensor, soft, _, _ = _pipes(arch, precision, kernel, t, d, backward, False, rows)
    return arch.dram_latency_cycles + (1 - OVERLAP_EXPOSED) * min(tensor, soft)


def cta_blocks(lq: int, lk: int, t: Tiles, backward: bool, causal: bool) -> list[tuple[int, int]]:
    """(blocks, masked blocks) of each CTA of one (batch, head), in launch order. A causal mask
    is aligned at the bottom right, as FA2 2.1 and later align it: query q sees key k when
    ``k <= q + lk - lq``. A block is run if its mask keeps any pair, masked if it drops any."""
    off = lk - lq
    out = []
    own_n = math.ceil((lk if backward else lq) / (t.bc if backward else t.br))
    other_n = math.ceil((lq if backward else lk) / (t.br if backward else t.bc))
    for i in range(own_n):
        if not causal:
            out.append((other_n, 0))
            continue
        run = masked = 0
        for j in range(other_n):
            qi, ki = (j, i) if backward else (i, j)
            q0, q1 = qi * t.br, min((qi + 1) * t.br, lq) - 1          # the block's query rows
            k0, k1 = ki * t.bc, min((ki + 1) * t.bc, lk) - 1          # and key rows
            if k0 > q1 + off:
                continue                                             # every pair dropped
            run += 1
            masked += k1 > q0 + off                                  # some pair dropped
        out.append((run, masked))
    return out


def place(works: list[float], sms: int) -> float:
    """Cycles until the last SM is free: each CTA, in order, to the SM that frees first."""
    if len(works) <= sms:
        return max(works, default=0.0)
    free = [0.0] * sms
    for w in works:
        heapq.heapreplace(free, free[0] + w)
    return max(free)


def num_splits(grid: int, sms: int, blocks: int, max_splits: int = MAX_SPLITS) -> int:
    """FA2's split-KV choice (csrc/flash_attn/flash_api.cpp, num_splits_heuristic, 2.1 and
    later): none once the grid fills 80% of the SMs; else the fewest splits whose wave
    efficiency (waves over whole waves) is within 85% of the best, among splits that change
    the key blocks per split."""
    if grid >= 0.8 * sms:
        return 1
    top = min(max_splits, sms, blocks)

    def eligible(s: int) -> bool:
        return s == 1 or -(-blocks // s) != -(-blocks // (s - 1))

    eff = [(grid * s / sms) / math.ceil(grid * s / sms) if eligible(s) else 0.0 for s in range(1, top + 1)]
    best = max(eff, default=0.0)
    return next((s for s in range(1, top + 1) if eligible(s) and eff[s - 1] >= 0.85 * best), 1)


def _split(per_cta: list[tuple[int, int]], s: int) -> list[tuple[int, int]]:
    """Each CTA's blocks over ``s`` CTAs of ceil(blocks / s) blocks (its masked blocks, the
    last ones, in the last)."""
    out = []
    for n, m in per_cta:
        c = -(-n // s)
        for k in range(0, n, c):
            b = min(c, n - k)
            out.append((b, max(0, min(b, k + b - (n - m)))))
    return out


@dataclass(frozen=True)
class FlashRun:
    kernel: FlashKernel
    tiles: Tiles
    head_dim: int                 # padded
    cycles: float                 # the grid's cycles on the SMs
    blocks: int                   # blocks run, over all CTAs
    ctas: int
    block_cycles: float           # an unmasked block
    splits: int = 1               # split-KV


def flash_run(arch: GPUArch, precision: str, choice: str, dims: Mapping[str, int], copies: int) -> FlashRun:
    """One fused attention op (its ``dims`` as the trace gives them) on ``arch``. Decoding (a
    forward whose query rows, over all the query heads that share a key head, fit one block)
    runs those heads in one CTA per key head, as FA2's seqlenq_ngroups_swapped and FA3's
    pack_gqa do, its MMAs over the rows in use."""
    backward, causal = bool(dims["backward"]), bool(dims["causal"])
    kernel = kernel_for(arch, choice, precision)
    d, t = tiles(kernel, arch, max(dims["E"], dims["Ev"]), backward, causal)
    group = dims["H"] // dims["Hkv"] if dims["Hkv"] and dims["H"] % dims["Hkv"] == 0 else 1
    packed = not backward and dims["Lq"] * group <= t.br
    rows = dims["Lq"] * group if packed else 0
    heads = dims["Hkv"] if packed else dims["H"]
    plain = block_cycles(arch, precision, kernel, t, d, backward, False, rows)
    masked = block_cycles(arch, precision, kernel, t, d, backward, True, rows)
    per_pair = cta_blocks(dims["Lq"], dims["Lk"], t, backward, causal)
    pairs = copies * dims["B"] * heads
    s = 1 if backward else num_splits(pairs * len(per_pair), arch.sms, max(n for n, _ in per_pair))
    if s > 1:
        per_pair = _split(per_pair, s)
    fixed = cta_fixed_cycles(arch, precision, kernel, t, d, backward, rows)
    one = [fixed + (n - m) * plain + m * masked for n, m in per_pair]
    if len(set(one)) == 1:                 # equal CTAs: whole waves
        cycles = math.ceil(pairs * len(one) / arch.sms) * one[0]
    elif pairs * len(one) <= MAX_PLACED:
        cycles = place(one * pairs, arch.sms)
    else:     # list scheduling ends within one CTA of the mean load: past MAX_PLACED CTAs, that bound
        cycles = sum(one) * pairs / arch.sms + max(one)
    return FlashRun(kernel, t, d, cycles, pairs * sum(n for n, _ in per_pair), pairs * len(one), plain, s)

"""Inside-the-SM traffic of a tensor-core GEMM, and the card's power limit.

**Register file and shared memory traffic** (what a GEMM kernel moves below L2, per the
ISA; PTX ISA ``mma.sync`` / ``wgmma.mma_async``, CUTLASS's SM70-SM90 kernels):

* every A and B panel byte that crosses L2 is written once into shared memory (cp.async,
  TMA);
* warps read their fragments from shared memory: with a warp tile ``wm x wn`` each FMA
  reads ``in_b (1/wm + 1/wn)`` bytes. Up to Ampere (``mma.sync``) the fragments go
  through the register file (ldmatrix writes them, each MMA instruction reads them back,
  ``in_b (1/m + 1/n)`` per FMA for an ``m x n x k`` instruction); Hopper's ``wgmma``
  reads A and B straight from shared memory (warpgroup tile 64 x the CTA's N);
* each MMA instruction reads and writes its accumulators in the register file:
  ``2 acc_b / k`` bytes per FMA. No operand-reuse cache is credited.

The tensor cores run whole tiles, so the counts are of the padded FMAs
(``ceil(M/BM) BM x ceil(N/BN) BN x K``).

**A fused attention kernel** (FlashAttention) is counted as the tensor-core GEMMs it runs,
at its ``block`` x ``block`` tiles: Q (and, backward, O, dO and the row statistics) crosses
L2 into shared memory once per CTA, K and V once per query block (forward; backward, the
other way round), the blocks a causal mask zeroes skipped.

**CUDA-core kernels** (depthwise convolutions): an ``FFMA Rd, Ra, Rb, Rc`` reads three
32-bit registers and writes one (SASS), whatever the storage type.

**Power limit** (``GPUArch.tdp_w``): the board's power manager (``sim.gpu.dvfs``) lowers
clock and voltage until a workload's kernels fit it; ``dynamic_pj`` prices what they ask.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from workloads.trace import Gemm

    from .arch import GPUArch

__all__ = ["WARP_TILE", "WGMMA_M", "padded_fmas", "sm_traffic", "attention_traffic", "cuda_core_traffic",
           "dynamic_pj", "sm_share"]

WARP_TILE = 64          # CUTLASS SM70-SM80 tensor-op kernels: 64x64 warp tiles for 128x128-class CTAs
WGMMA_M = 64            # Hopper wgmma: m64nNk16, one warpgroup per 64 rows


def padded_fmas(M: int, N: int, K: int, count: int, BM: int, BN: int) -> float:
    """FMAs the tensor cores run for whole ``BM x BN`` tiles."""
    return float(-(-M // BM) * BM * -(-N // BN) * BN * K * count)


def sm_traffic(arch: GPUArch, M: int, N: int, K: int, count: int, tile: tuple[int, int], in_b: float, acc_b: int,
               b_role: str, b_frac: float = 1.0, l2_a: float = 0.0, l2_b: float = 0.0) -> dict[str, float]:
    """Register-file and shared-memory bytes of one GEMM kernel, as ``level.operand.direction``
    access keys. ``b_frac``: share of B's bytes that move (N:M-pruned weights); ``l2_a``,
    ``l2_b``: the A and B panel bytes written to shared memory (what came through L2, and
    for a cluster's multicast block every CTA's copy of it)."""
    BM, BN = tile
    f = padded_fmas(M, N, K, count, BM, BN)
    m, n, k_bytes = arch.mma_mnk
    k = k_bytes / in_b                      # the instruction's K in elements of this precision
    if arch.mma_operands_in_smem:           # wgmma: a warpgroup tile of 64 x BN, A and B from smem
        wm, wn = min(WGMMA_M, BM), BN
    else:
        wm, wn = min(WARP_TILE, BM), min(WARP_TILE, BN)
    smem_a, smem_b = f * in_b / wn, f * in_b / wm * b_frac
    out = {"smem.input.writes": l2_a, f"smem.{b_role}.writes": l2_b,
           "smem.input.reads": smem_a, f"smem.{b_role}.reads": smem_b,
           "rf.output.reads": f * acc_b / k, "rf.output.writes": f * acc_b / k}
    if not arch.mma_operands_in_smem:      # ldmatrix into registers, then each MMA reads them
        out["rf.input.writes"], out[f"rf.{b_role}.writes"] = smem_a, smem_b
        out["rf.input.reads"] = f * in_b / n
        out[f"rf.{b_role}.reads"] = f * in_b / m * b_frac
    return out


def attention_traffic(arch: GPUArch, gemms: Sequence[Gemm], dims: Mapping[str, int], copies: int, in_b: float,
                      acc_b: int, frac: float, block: tuple[int, int]) -> dict[str, float]:
    """Register-file, shared-memory and L2 bytes of one fused attention kernel (one step):
    ``gemms`` its GEMMs (heads as copies), ``copies`` x batch x heads the (batch, head)
    pairs, ``frac`` the share of blocks a causal mask leaves, ``block`` the kernel's query and
    key rows per block (sim.gpu.flash)."""
    br, bc = block
    d = dims
    c = copies * d["B"]
    q = c * d["H"] * d["Lq"] * d["E"] * in_b
    k = c * d["Hkv"] * d["Lk"] * d["E"] * in_b
    v = c * d["Hkv"] * d["Lk"] * d["Ev"] * in_b
    if d["backward"]:
        o = c * d["H"] * d["Lq"] * d["Ev"] * in_b
        nk = -(-d["Lk"] // bc)
        l2 = {"input": (q + 2 * o + c * d["H"] * d["Lq"] * 4) * nk * frac, "input2": k, "input3": v}
    else:
        nq = -(-d["Lq"] // br)
        l2 = {"input": q, "input2": k * nq * frac, "input3": v * nq * frac}
    out: dict[str, float] = {}
    for key, b in l2.items():
        out[f"l2_sram.{key}.reads"] = b
        out[f"smem.{key}.writes"] = b
    # the B operand of each GEMM: forward QK^T (K), PV (V); backward QK^T (K), dV (dO),
    # dP (V), dQ (K), dK (Q)
    roles = ("input2", "input", "input3", "input2", "input") if d["backward"] else ("input2", "input3")
    for g, role in zip(gemms, roles):
        t = sm_traffic(arch, g.M, g.N, g.K, g.copies, (min(br, g.M), min(bc, g.N)), in_b, acc_b, role)
        for key, b in t.items():
            if not key.endswith(".writes") or key.startswith("rf."):     # smem writes: the L2 traffic above
                out[key] = out.get(key, 0.0) + b * frac
    return out


def cuda_core_traffic(fmas: float) -> dict[str, float]:
    """Register bytes of ``fmas`` FFMA instructions' lanes: three 4-byte reads, one write."""
    return {"rf.input.reads": 4.0 * fmas, "rf.weight.reads": 4.0 * fmas, "rf.output.reads": 4.0 * fmas,
            "rf.output.writes": 4.0 * fmas}


def dynamic_pj(arch: GPUArch, accesses: Mapping[str, float], ops: Mapping[str, float]) -> float:
    """Energy of an op's accesses and operations at the card's own prices (0 if it has none)."""
    if not arch.self_priced:
        return 0.0
    levels = arch.memory_levels()
    prices = arch.op_prices()
    e = 0.0
    for key, nbytes in accesses.items():
        lv = levels[key.split(".")[0]]
        price = lv.read_pj_per_byte if key.endswith(".reads") else lv.write_pj_per_byte
        e += nbytes * (price or 0.0)
    return e + sum(n * prices.get(k, 0.0) for k, n in ops.items())


def sm_share(ctas: int, arch: GPUArch) -> float:
    """Share of the SMs a kernel keeps busy: its CTAs over the SMs, at most 1."""
    return min(1.0, ctas / arch.sms) if ctas else 1.0

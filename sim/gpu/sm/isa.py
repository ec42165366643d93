"""What one SM's instructions cost, per tensor-core generation: the inputs of the stepped core.

Everything the stepped SM (:mod:`sim.gpu.sm.core`) charges comes from here or from the
card's fields; everything it reports (the main loop's cycles per K step, the share of the
tensor-core peak it reaches) is a result, checked in ``tests/test_gpu_sm.py`` against
published measurements that are not inputs (the microbenchmark papers' throughput
columns, cuBLAS's share of peak on a V100).

**Inputs, per generation** (:data:`GENERATION_TIMING`):

* the tensor instruction's *latency* (issue to result, measured by dependent chains):
  Ampere ``mma.sync m16n8k16`` f16->f32 26.0 cycles on an A100 and 24.1 on an H800 (Luo et
  al., "Benchmarking and Dissecting the Nvidia Hopper GPU Architecture", IPDPS 2024,
  Table VII); Hopper ``wgmma m64n256k16`` 128 cycles (ibid. Table VIII, sourced from shared
  memory or registers alike);
* the tensor instruction's *issue interval* on one sub-partition (SMSP): its FMAs over the
  SMSP's share of the card's datasheet rate (``tcs_per_sm x tc_fma_per_clk / 4``), so
  8 cycles for an A100 ``m16n8k16`` (2,048 FMAs at 256/clk), divided by the share of that
  rate back-to-back instructions reach in the microbenchmarks (A100 ``mma.sync`` 303.4 of
  312 TFLOPS, Luo et al. Table VII; H800 ``wgmma`` 728.5 of 756.5, Table VIII): 8.23
  cycles on average. Ampere's ``mma.sync`` on Hopper, which no datasheet rates: 490.7 of
  756.5 TFLOPS on an H800 (Table VII), 65% of the wgmma rate;
* ``wgmma``'s cycles by N with both operands in shared memory (:data:`WGMMA_SS_CYCLES`);
* shared memory's no-conflict load latency: V100 19 cycles (Jia et al., "Dissecting the
  NVIDIA Volta GPU Architecture via Microbenchmarking", 2018, Table 3.1), T4 19 (Jia et al.,
  "Dissecting the NVidia Turing T4 GPU via Microbenchmarking", 2019, Table 3.1), A100 23
  cycles (Abdelkhalik et al., "Demystifying the Nvidia Ampere Architecture through
  Microbenchmarking and Instruction-level Analysis", HPEC 2022, Table IV), H800 29 cycles
  (Luo et al. Table IV); its port, one 4-byte bank per load/store unit per clock: 32 units
  (128 B/clk) on V100, A100, H100, 16 (64 B/clk) on the T4 (Jia et al. 2019 Table 3.1);
* Hopper's TMA: a bulk copy from L2 costs 105 cycles over a plain L2 load (369 against
  264 cycles of dependent accesses on an H800 PCIe at 1755 MHz, L2-resident footprints:
  github.com/HPMLL/NVIDIA-Hopper-Benchmark, NewFeatures/TMA/Latency/tma_lat_random
  h800_tma.txt against h800_pcie.txt).

A card described only by its fields (``generation`` empty) takes Ampere's latencies, a
named assumption (:data:`DEFAULT_GENERATION`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..precision import PRECISION_BYTES

if TYPE_CHECKING:
    from ..arch import GPUArch

__all__ = ["SMSPS", "WARP_LOAD_BYTES", "TMA_EXTRA_CYCLES", "HOPPER_MMA_SYNC_SHARE",
           "DEFAULT_GENERATION", "GenerationTiming", "GENERATION_TIMING",
           "TensorOp", "tensor_op", "WGMMA_SS_CYCLES", "wgmma_cycles"]

SMSPS = 4                   # sub-partitions (warp schedulers) per SM, Volta to Hopper (whitepapers)
WARP_LOAD_BYTES = 512       # one warp's 16-byte-per-thread shared load or async copy (ldmatrix.x4, LDS.128, LDGSTS.128)
TMA_EXTRA_CYCLES = 105      # a TMA bulk copy's latency over an L2 load (HPMLL/NVIDIA-Hopper-Benchmark, H800)
DEFAULT_GENERATION = "ampere"   # the latencies a card without a generation takes (an assumption)
HOPPER_MMA_SYNC_SHARE = 490.7 / 756.5   # mma.sync m16n8k16 on an H800, of the wgmma peak (Luo et al. Table VII)


@dataclass(frozen=True)
class GenerationTiming:
    """One generation's measured latencies (cycles) and shared-memory port."""
    mma_latency: int            # the register-operand MMA (HMMA), issue to accumulator ready
    tensor_share: float         # of the datasheet rate, what back-to-back tensor instructions reach
    smem_latency: int           # a shared-memory load without bank conflicts
    smem_bytes_per_clk: int     # the shared-memory port: load/store units x 4 bytes
    source: str


GENERATION_TIMING: dict[str, GenerationTiming] = {
    "volta": GenerationTiming(26, 303.4 / 312, 19, 128, "HMMA latency and throughput: not published for Volta "
                              "(Jia et al. 2018 give none); Ampere's, an assumption; smem 19 cycles, 32 load/store units (Jia et al. "
                              "2018 Table 3.1)"),
    "turing": GenerationTiming(26, 303.4 / 312, 19, 64, "HMMA.1688 latency and throughput: not published for the "
                               "T4; Ampere's, an assumption; smem 19 cycles, 16 load/store units: 64 B/clk (Jia et al. 2019 Table 3.1)"),
    "ampere": GenerationTiming(26, 303.4 / 312, 23, 128, "mma m16n8k16 f16->f32 26.0 cycles, 303.4 of 312 TFLOPS "
                               "(Luo et al. 2024 Table VII, A100); "
                               "smem 23 cycles (Abdelkhalik et al. 2022 Table IV), 32 banks x 4 B"),
    "hopper": GenerationTiming(24, 728.5 / 756.5, 29, 128, "mma m16n8k16 24.1 cycles (Luo et al. 2024 Table VII, "
                               "H800); wgmma m64n256k16 728.5 of 756.5 TFLOPS (ibid. Table VIII, zero inputs: the clock "
                               "not lowered by power, which sim.gpu.dvfs models); smem 29 "
                               "cycles (ibid. Table IV), 32 banks x 4 B"),
}

# wgmma m64nNk16 f16->f32 with A and B in shared memory (SS), issue to completion, by N:
# Luo et al., "Dissecting the NVIDIA Hopper Architecture through Microbenchmarking and
# Multiple Level Analysis" (arXiv 2501.12084) Table 9, H800. One warpgroup issuing them back
# to back reaches the throughput of one instruction per latency (477 TFLOPS at N = 32 = 24
# cycles per instruction), so the pipes are held for the latency.
WGMMA_SS_CYCLES = ((8, 18), (16, 20), (32, 24), (64, 32), (128, 64), (256, 128))


def wgmma_cycles(n: int) -> float:
    """The measured SS latency at ``n``, linear between the measured N."""
    pts = WGMMA_SS_CYCLES
    if n <= pts[0][0]:
        return float(pts[0][1])
    for (n0, c0), (n1, c1) in zip(pts, pts[1:]):
        if n <= n1:
            return c0 + (c1 - c0) * (n - n0) / (n1 - n0)
    return pts[-1][1] * n / pts[-1][0]


@dataclass(frozen=True)
class TensorOp:
    """The tensor instruction a main loop issues, as one SMSP sees it."""
    name: str
    m: int                  # rows of the instruction's tile (a warpgroup's 64 for wgmma)
    n: int                  # columns (wgmma: the CTA's N)
    k: int                  # K elements
    interval: float         # cycles the SMSP's tensor pipe is busy per instruction (on average)
    latency: int            # issue to result
    warpgroup: bool         # issued by 4 warps at once, operands from shared memory (wgmma)


def _timing(arch: GPUArch) -> GenerationTiming:
    return GENERATION_TIMING[arch.generation or DEFAULT_GENERATION]


def tensor_op(arch: GPUArch, precision: str, bn: int = 256, *, mma_sync: bool = False) -> TensorOp:
    """The instruction a GEMM main loop issues on ``arch`` at ``precision``: wgmma (``m64nNk``,
    ``N = bn``) on a card whose MMA reads shared memory, else the card's register MMA
    (``mma_sync`` forces the register MMA, as FlashAttention-2 issues on Hopper)."""
    m, n, k_bytes = arch.mma_mnk
    k = max(1, int(k_bytes / PRECISION_BYTES[precision]))
    t = _timing(arch)
    smsp_rate = arch.tcs_per_sm * arch.tc_fma_per_clk[precision] / SMSPS
    if arch.mma_operands_in_smem and not mma_sync:
        n = n or bn
        # a warpgroup's 4 warps each drive their SMSP's tensor core with m/4 rows
        # the datasheet rate's occupancy, or the measured latency where that is longer (small N)
        occupancy = m // SMSPS * n * k / smsp_rate
        latency = max(1, round(max(occupancy, wgmma_cycles(n))))
        return TensorOp("wgmma", m, n, k, max(occupancy / t.tensor_share, float(latency)), latency, True)
    if arch.mma_operands_in_smem:       # Ampere's mma.sync on a wgmma card, at its measured rate
        k16 = max(1, int(16 * 2 // PRECISION_BYTES[precision]))
        return TensorOp("mma.sync", 16, 8, k16, 16 * 8 * k16 / smsp_rate / HOPPER_MMA_SYNC_SHARE, t.mma_latency, False)
    # Volta's m8n8k4 runs on four quad-pairs of the warp at once: 4x the listed shape per warp
    quads = 4 if arch.generation == "volta" else 1
    fmas = m * n * k * quads
    return TensorOp("mma.sync", m * (2 if quads == 4 else 1), n * (2 if quads == 4 else 1), k,
                    fmas / smsp_rate / t.tensor_share, t.mma_latency, False)

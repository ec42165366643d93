"""The GEMM kernel a library instantiates for a CTA tile on a card: its K step, its software
pipeline's stages, its threads, and the shared memory and registers they take.

cuBLAS does not publish its kernels; CUTLASS's are the public ones it resembles, so the
model takes CUTLASS's rules for the kernel family the card's tensor instruction needs. The
closed form (``sim.gpu.gemm``), the event reference (``sim.gpu.event``) and the stepped SM
core (``sim.gpu.sm``) all take the kernel from here, as a library's kernel name fixes it.

* **Register-operand MMAs** (Volta's HMMA to Ampere's ``mma.sync``; CUTLASS 2's
  ``MmaPipelined`` and ``MmaMultistage``): a K step of ``GPUArch.k_step_bytes`` per row (64
  bytes: 32 fp16, 64 int8, 16 tf32 values, CUTLASS's SM70-SM80 tensor-op tiles),
  ``GPUArch.pipeline_stages`` stages, and a warp per warp tile of CUTLASS's layout for the
  CTA tile (``sim.gpu.sm.program.warp_layout``: 4 warps for 128 x 128, 8 for 256 x 128).
* **Shared-memory-operand MMAs** (Hopper's ``wgmma``; CUTLASS 3's TMA warp-specialised
  kernels): a K step of ``k_step_bytes`` (128 on the Hopper presets: 64 fp16, 128 fp8
  values, CUTLASS's SM90 tiles), a producer warpgroup that issues the TMA copies and one
  consumer warpgroup per 64 rows of the tile up to two (``sim.gpu.sm.program``), and with
  ``pipeline_stages: 0`` as many stages as fit the CTA's shared memory once the epilogue's
  share is set aside (CUTLASS's ``StageCountAutoCarveout``): such a kernel fills the SM, one
  CTA per SM. Its CTAs run in clusters of ``GPUArch.cluster_ctas`` (2 on the Hopper presets)
  that share one operand's loads by TMA multicast (:func:`multicast`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .precision import PRECISION_BYTES
from .sm.program import consumer_warpgroups, warp_layout

if TYPE_CHECKING:
    from .arch import GPUArch

__all__ = ["REGISTER_OVERHEAD", "RESERVED_SMEM_BYTES",
           "PIPELINE_BARRIER_BYTES", "EPILOGUE_TILE", "Kernel", "threads", "kernel", "registers", "k_step", "epilogue_bytes",
           "multicast"]

REGISTER_OVERHEAD = 40          # registers per thread beyond the accumulators and fragments
# shared memory the system reserves per CTA on compute capability 8.x and 9.0 (CUDA C++
# Programming Guide): an auto-staged kernel fills the SM less this (227 KiB on an H100,
# CUTLASS's sm90 capacity of 232,448 bytes)
RESERVED_SMEM_BYTES = 1024
PIPELINE_BARRIER_BYTES = 16     # a stage's full and empty mbarriers, 8 bytes each (CUTLASS PipelineTmaAsync)


@dataclass(frozen=True)
class Kernel:
    """One tile's kernel: ``BK`` values per K step, ``stages`` of A and B in flight, the CTA's
    ``threads``, its shared memory (``smem_bytes``; an auto-staged one's includes the system's reserve) and its
    registers per thread (``regs``: the threads that hold accumulators)."""

    BM: int
    BN: int
    BK: int
    stages: int
    threads: int
    smem_bytes: int
    regs: float

    def ctas_per_sm(self, arch: GPUArch) -> int:
        """Resident CTAs per SM, by shared memory, registers, threads and the CTA cap; 0 if
        one does not fit."""
        if self.smem_bytes > arch.smem_per_sm_kib * 1024 or self.regs > 255:
            return 0
        return int(min(arch.max_ctas_per_sm, arch.smem_per_sm_kib * 1024 // self.smem_bytes,
                       arch.regs_per_sm // (self.regs * self.threads), arch.max_threads_per_sm // self.threads))


def k_step(arch: GPUArch, precision: str) -> int:
    """Values of a K step per row of A and B."""
    return max(1, int(arch.k_step_bytes / PRECISION_BYTES[precision]))


def threads(arch: GPUArch, BM: int, BN: int) -> tuple[int, int]:
    """(threads of the CTA, threads that hold its accumulators)."""
    if arch.mma_operands_in_smem:
        consumers = 128 * consumer_warpgroups(BM)
        return 128 + consumers, consumers
    wm, wn = warp_layout(BM, BN)
    return 32 * wm * wn, 32 * wm * wn


def kernel(arch: GPUArch, BM: int, BN: int, precision: str, acc_bytes: int = 4, b_frac: float = 1.0,
           out_bytes: float | None = None) -> Kernel:
    """The kernel of a ``BM x BN`` tile (``b_frac``: B's bytes per dense byte, N:M pruning)."""
    in_b = PRECISION_BYTES[precision]
    BK = k_step(arch, precision)
    stage = (BM + BN * b_frac) * BK * in_b
    n, holders = threads(arch, BM, BN)
    if arch.pipeline_stages:
        stages = arch.pipeline_stages
        smem = stages * stage
    else:
        carveout = epilogue_bytes(BM, BN, in_b if out_bytes is None else out_bytes)
        room = arch.smem_per_sm_kib * 1024 - RESERVED_SMEM_BYTES - carveout
        stage = -(-stage // 128) * 128 + PIPELINE_BARRIER_BYTES       # 128-byte aligned, plus its barriers
        stages = max(2, int(room // stage))
        smem = stages * stage + carveout + RESERVED_SMEM_BYTES
    return Kernel(BM, BN, BK, stages, n, int(smem), registers(arch, BM, BN, holders, acc_bytes))


def registers(arch: GPUArch, BM: int, BN: int, holders: int, acc_bytes: int = 4) -> float:
    """Registers per accumulator-holding thread: its share of the ``BM x BN`` accumulators,
    and for register-operand MMAs the fragments of A and B it double-buffers (a warp tile of
    ``WM x WN`` outputs loads ``(WM + WN)`` rows of one MMA's K bytes per slice, two slices
    in flight, as CUTLASS's MmaMultistage does), plus :data:`REGISTER_OVERHEAD`. A 64 x 64
    warp tile of m16n8k16 fp16: 128 accumulators + 2 x 128 x 32 B / 4 / 32 = 64 fragment
    registers + 40 = 232 (a modelling choice: no compiled register count is quoted here)."""
    regs = BM * BN * acc_bytes / 4 / holders + REGISTER_OVERHEAD
    if not arch.mma_operands_in_smem:
        wm, wn = warp_layout(BM, BN)
        regs += 2 * (BM / wm + BN / wn) * arch.mma_mnk[2] / 4 / 32
    return regs


def epilogue_bytes(BM: int, BN: int, out_bytes: float) -> int:
    """Shared memory a TMA epilogue stages the output through (CUTLASS SM90's epilogue builder
    with ``EpilogueTileAuto`` for the cooperative kernel): an epilogue tile of ``min(128, BM)
    x min(32, BN)`` outputs, ``min(tiles, 2)`` stages of D and ``max(min(tiles, 4), D's + 1)``
    of the source C (``tiles``: epilogue tiles per CTA tile), one buffer for both where C and
    D share a type of more than 8 bits, and C's stages' barriers; rounded up to 128 bytes.
    The GEMM is taken to read a source C (D = alpha AB + beta C, a named assumption: a void-C
    kernel sets aside only D's stages)."""
    em, en = min(EPILOGUE_TILE[0], BM), min(EPILOGUE_TILE[1], BN)
    tiles = -(-BM // em) * -(-BN // en)
    stages_d = min(tiles, 2)
    stages_c = max(min(tiles, 4), stages_d + 1)
    tile_bytes = em * en * out_bytes
    buffers = tile_bytes * max(stages_c, stages_d) if out_bytes > 1 else tile_bytes * (stages_c + stages_d)
    total = buffers + PIPELINE_BARRIER_BYTES * stages_c
    return int(-(-total // 128) * 128)


# the cooperative kernel's automatic epilogue tile, M x N outputs (CUTLASS
# include/cutlass/epilogue/collective/builders/sm90_builder.inl, EpilogueTileAuto)
EPILOGUE_TILE = (128, 32)


def multicast(arch: GPUArch, BM: int, BN: int, tm: int, tn: int, b_frac: float = 1.0) -> tuple[float, float]:
    """(A, B): the share of its A and B blocks' L2 reads a CTA makes. In a cluster of ``c =
    GPUArch.cluster_ctas`` CTAs along N (they share A's rows) or along M (B's columns), one L2
    read of the shared block reaches every CTA's shared memory (TMA multicast), so each reads
    ``1/c`` of it; the cluster lies along whichever of the grid's ``tm x tn`` tiles has room
    for it and, both having room, shares the larger block. ``(1, 1)``: no cluster."""
    c = arch.cluster_ctas
    if c < 2:
        return 1.0, 1.0
    share_a, share_b = tn >= c, tm >= c
    if share_a and (not share_b or BM >= BN * b_frac):
        return 1.0 / c, 1.0
    if share_b:
        return 1.0, 1.0 / c
    return 1.0, 1.0

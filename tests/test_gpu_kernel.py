"""The GEMM kernel a tile runs (sim.gpu.kernel), against CUTLASS's rules worked by hand."""

import dataclasses

import pytest

from sim.gpu import PRESETS, gemm_time
from sim.gpu.arch import GPUArch
from sim.gpu.kernel import epilogue_bytes, kernel
from workloads import HwsimError

H100, A100 = PRESETS["h100"], PRESETS["a100"]


def test_hopper_stages_fill_the_shared_memory_as_cutlass_counts_them():
    """CUTLASS SM90 (compute_stage_count_or_override, StageCountAutoCarveout): (232,448 B less
    the epilogue's carveout, rounded up to 128) // (A + B bytes of a stage + 16 B of barriers).
    128 x 128 fp16, K step 64: 32,768 B a stage; the cooperative epilogue tile 128 x 32, 4 of
    them per CTA tile: 2 stages of D, 4 of C, C and D sharing one buffer: 4 x 128 x 32 x 2 B
    = 32,768 B + 4 x 16 B of barriers = 32,832 -> 32,896. (232,448 - 32,896) // 32,784 = 6.
    128 x 256: 49,152 B a stage, the same epilogue tile count 8 -> 4 C stages:
    (232,448 - 32,896) // 49,168 = 4. 64 x 64: 16,384 B; epilogue 64 x 32, 2 tiles, 2 D and
    3 C stages: 3 x 64 x 32 x 2 + 48 = 12,336 -> 12,416; (232,448 - 12,416) // 16,400 = 13."""
    assert 228 * 1024 - 1024 == 232_448
    for (BM, BN), carve, stages in (((128, 128), 32_896, 6), ((128, 256), 32_896, 4), ((64, 64), 12_416, 13)):
        assert epilogue_bytes(BM, BN, 2) == carve
        k = kernel(H100, BM, BN, "fp16")
        assert (k.BK, k.stages) == (64, stages)
        assert k.smem_bytes <= 228 * 1024 and k.ctas_per_sm(H100) == 1
    # a producer warpgroup and two consumer warpgroups (one for a 64-row tile)
    assert kernel(H100, 128, 128, "fp16").threads == 384 and kernel(H100, 64, 64, "fp16").threads == 256
    assert kernel(H100, 128, 128, "fp8").BK == 128


def test_ampere_kernels_keep_their_stated_stages():
    """An A100 tile runs its preset's 3 stages of 64-byte K steps: 128 x 128 fp16 takes 3 x 256
    x 32 x 2 = 48 KiB of its 164 KiB, so three fit by shared memory. CUTLASS's 2 x 2 warps of
    64 x 64 outputs are 128 threads, each holding 64 x 64 / 32 = 128 fp32 accumulators and
    double-buffered m16n8k16 fragments, 2 x (64 + 64) rows x 32 B / 4 B / 32 threads = 64
    registers, plus 40: 232 registers x 128 threads = 29,696 of 65,536, so two fit by
    registers. 256 x 128 (8 warps, the same warp tile): 232 x 256 = 59,392, one."""
    k = kernel(A100, 128, 128, "fp16")
    assert (k.BK, k.stages, k.smem_bytes, k.threads, k.regs) == (32, 3, 48 * 1024, 128, 232)
    assert k.ctas_per_sm(A100) == 2
    assert gemm_time(4096, 4096, 4096, A100, tile=(128, 128)).ctas_per_sm == 2
    wide = kernel(A100, 256, 128, "fp16")
    assert (wide.threads, wide.regs, wide.ctas_per_sm(A100)) == (256, 232, 1)


def test_a_k_step_that_splits_the_mma_and_hopper_only_choices_elsewhere_are_refused():
    with pytest.raises(HwsimError, match="k_step_bytes"):
        dataclasses.replace(A100, k_step_bytes=48)
    assert isinstance(dataclasses.replace(A100, k_step_bytes=128), GPUArch)
    with pytest.raises(HwsimError, match="pipeline_stages: 0 .*needs mma_operands_in_smem"):
        dataclasses.replace(A100, pipeline_stages=0)
    with pytest.raises(HwsimError, match="cluster_ctas: .*use 1"):
        dataclasses.replace(A100, cluster_ctas=2)


def test_deeper_multistage_pipelines_never_step_faster_for_want_of_copies():
    """A multistage program copies stages - 1 K steps ahead: the measured steps must still
    issue their copies, so a deeper pipeline on the same tile is never faster than the
    shared-memory port allows (64 x 64, two CTAs: 384 cycles per K step, see
    test_gpu_sm.test_a_small_tile_is_bound_by_the_shared_memory_port)."""
    from sim.gpu.sm import main_loop
    for stages in (3, 6, 10, 14):
        assert main_loop(A100, 64, 64, 32, "fp16", 2, stages).cycles_per_kstep >= 384


def test_a_cluster_reads_its_shared_operand_from_l2_once():
    """Hopper CTAs run in clusters of two that share A's rows by TMA multicast (CUTLASS SM90's
    1x2x1 clusters): 1024^3 fp16 in 128 x 128 tiles is an 8 x 8 grid of 64 CTAs, 16 K steps of
    64; each CTA reads half its A block and all its B block from L2 per step: 64 x 16 x (64 +
    128) x 64 x 2 B = 25,165,824 B, against 64 x 16 x 256 x 64 x 2 B without clusters. A grid
    one tile wide along N (1024 x 128) has no partner along N: the cluster lies along M and
    shares B instead. Shared memory is written whole either way (its energy)."""
    t = gemm_time(1024, 1024, 1024, H100, tile=(128, 128), split_k=1)
    assert t.l2_bytes == 64 * 16 * (64 + 128) * 64 * 2
    # multicast writes the shared block into each CTA's shared memory all the same
    assert (t.smem_a_bytes, t.smem_b_bytes) == (64 * 16 * 128 * 64 * 2, 64 * 16 * 128 * 64 * 2)
    solo = gemm_time(1024, 1024, 1024, dataclasses.replace(H100, cluster_ctas=1), tile=(128, 128), split_k=1)
    assert solo.l2_bytes == 64 * 16 * 256 * 64 * 2 and solo.cycles > t.cycles
    narrow = gemm_time(1024, 128, 1024, H100, tile=(128, 128), split_k=1)
    assert (narrow.l2_a_bytes, narrow.l2_b_bytes) == (8 * 16 * 128 * 64 * 2, 8 * 16 * 64 * 64 * 2)
    assert A100.cluster_ctas == 1


def test_the_event_model_runs_hopper_kernels_as_the_closed_form_does():
    """On an H100 (auto-staged kernels, clusters of two sharing one block by TMA multicast),
    the event model, given only the closed form's tile and K split, lands within 10% of it on
    shapes from one partial wave (1024^3, 128 x 64 tiles) to several (2048^3) and a K split
    (256 x 4096 x 4096): measured 1.2-4.9% apart."""
    from sim.gpu.event import gemm_detail
    for shape in ((1024, 1024, 1024), (2048, 2048, 2048), (4096, 1024, 1024), (256, 4096, 4096)):
        f = gemm_time(*shape, H100)
        e = gemm_detail(*shape, H100, tile=f.tile[:2], split_k=f.split_k, stream_k=f.stream_k, serial=f.serial)
        assert e.cycles == pytest.approx(f.cycles, rel=0.10), shape

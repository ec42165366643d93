"""The stepped SM core (sim.gpu.sm): a hand-derived schedule, published microbenchmarks that
are not its inputs, and the wave model taking its steady state."""

from __future__ import annotations

import random

import pytest

from sim.gpu import PRESETS, gemm_time
from sim.gpu.gemm import TILES
from sim.gpu.kernel import k_step, kernel
from sim.gpu.sm import main_loop
from sim.gpu.sm.core import step
from sim.gpu.sm.isa import TensorOp, tensor_op
from sim.gpu.sm.program import CtaProgram, Op

A100 = PRESETS["a100"]
OP = TensorOp("mma.sync", 16, 8, 16, 8, 26, False)     # an A100 m16n8k16 at the datasheet rate


def test_a_small_cta_issues_on_the_cycles_derived_by_hand():
    """Warp 0 (sub-partition 0): ldmatrix, then two MMAs on one accumulator, then one on
    another. Warp 1 (sub-partition 1): an ldmatrix in the same cycle, then an MMA.
    By hand, with 128 B/clk of shared memory and its 23-cycle latency: warp 0's 512 bytes
    take the port in cycles 0-3, its fragment is ready at 23, the MMA issues at 23, the
    dependent one waits the 26-cycle latency (49), the independent one waits for the pipe
    (49 + 8 = 57). Warp 1's load waits for the port until cycle 4, so its fragment is ready
    at 27 and its MMA issues then (its own sub-partition's pipe)."""
    w0 = ((Op.LDSM, 0, 1, 512), (Op.MMA, 0, 0, 0), (Op.MMA, 0, 0, 0), (Op.MMA, 1, 0, 0))
    w1 = ((Op.LDSM, 0, 1, 512), (Op.MMA, 0, 0, 0))
    run = step(CtaProgram((w0, w1), 2, "hand"), 1, OP, 23, 128, 300, 400, trace=True)
    got = [(i.cycle, i.warp, Op(i.opcode).name) for i in run.trace]
    assert got == [(0, 0, "LDSM"), (0, 1, "LDSM"), (23, 0, "MMA"), (27, 1, "MMA"), (49, 0, "MMA"), (57, 0, "MMA")]
    assert run.smem_bytes == 1024 and run.tensor_busy[:2] == (24, 8)


def test_a_barrier_releases_every_warp_the_cycle_after_the_last_arrives():
    """Two warps of one CTA: warp 1 reaches the barrier after a dependent MMA pair (issued
    at 0 and 26; the barrier at 27), warp 0 at once; both pass at 28. Warp 0's MMA issues
    then; warp 1's waits for its sub-partition's pipe, busy until 26 + 8 = 34."""
    w0 = ((Op.BAR, 0, 0, 0), (Op.MMA, 0, 0, 0))
    w1 = ((Op.MMA, 0, 0, 0), (Op.MMA, 0, 0, 0), (Op.BAR, 0, 0, 0), (Op.MMA, 1, 0, 0))
    run = step(CtaProgram((w0, w1), 2, "hand"), 1, OP, 23, 128, 300, 400, trace=True)
    mmas = [(i.cycle, i.warp) for i in run.trace if i.opcode == Op.MMA]
    assert mmas == [(0, 1), (26, 1), (28, 0), (34, 1)]


def _micro(warps: int, ilp: int, reps: int = 60) -> float:
    """FMA/clk/SM of `warps` warps each issuing `ilp` independent MMA chains (Sun et al.'s
    microbenchmark), on the A100's measured inputs."""
    op = tensor_op(A100, "fp16")
    prog = tuple((Op.MMA, a, 0, 0) for _ in range(reps) for a in range(ilp))
    run = step(CtaProgram((prog,) * warps, warps, "micro"), 1, op, 23, 128, 300, 400)
    return warps * reps * ilp * op.m * op.n * op.k / run.cycles


@pytest.mark.parametrize("warps, ilp, measured", [(8, 2, 1000), (4, 3, 900), (1, 8, 230)])
def test_mma_throughput_against_sun_et_al(warps, ilp, measured):
    """Sun et al., 'Dissecting Tensor Cores via Microbenchmarks' (IEEE TPDS 2023), A100
    m16n8k16 f16->f32: about 1,000 FMA/clk/SM with 8 warps at ILP 2, about 900 with 4 warps
    at ILP 3, about 230 from one warp. Not inputs: the core takes Luo et al.'s latency (26
    cycles) and throughput (303.4 of 312 TFLOPS)."""
    assert _micro(warps, ilp) == pytest.approx(measured, rel=0.10)


def test_a_small_tile_is_bound_by_the_shared_memory_port():
    """64x64 fp16 on an A100, two CTAs: per K step (32) each CTA's four 32x32 warps load
    2 x (1 + 1) KiB of fragments (16 KiB) and copy (64 + 64) x 32 x 2 B = 8 KiB in: 24 KiB,
    192 cycles at 128 B/clk, against 64 x 64 x 32 / 1024 / 0.972 = 132 cycles of MMAs.
    Two CTAs need at least 384 cycles per step: the core is within 5% of the port's bound."""
    two = main_loop(A100, 64, 64, 32, "fp16", 2, A100.pipeline_stages).cycles_per_kstep
    assert 384 <= two <= 384 * 1.05
    big = main_loop(A100, 128, 128, 32, "fp16", 2, A100.pipeline_stages)      # a big tile keeps the pipes busy instead
    assert big.tensor_share == pytest.approx(303.4 / 312, rel=0.01)


def test_volta_cublas_share_of_peak_from_jia_et_al():
    """Jia et al. 2018 (Fig. 4.8): cuBLAS HGEMM on a V100's tensor cores reaches 90.2% of the
    theoretical peak at a fixed clock. The model's best large square GEMM, at the nominal
    clock, is within 8% of that (a check: no Volta throughput is an input)."""
    v100 = PRESETS["v100"]
    best = max(2 * n ** 3 / gemm_time(n, n, n, v100).cycles / (2 * v100.sms * v100.tcs_per_sm * 64)
               for n in (4096, 8192))
    assert best == pytest.approx(0.902, rel=0.08)


def test_the_wave_model_takes_the_stepped_main_loop():
    """For random tiles and shapes that fill exactly one wave, the wave model's MMA term is
    the K steps times the stepped core's cycles per K step for the resident CTAs."""
    rng = random.Random(7)
    for name in ("a100", "h100", "t4"):
        arch = PRESETS[name]
        for BM, BN in rng.sample(TILES, 3):
            bk = k_step(arch, "fp16")
            t = gemm_time(BM * 4, BN, 64 * bk, arch, tile=(BM, BN), split_k=1)
            r = t.ctas_per_sm
            full = gemm_time(BM * arch.sms * r, BN, 64 * bk, arch, tile=(BM, BN), split_k=1)
            assert full.waves == 1
            stages = kernel(arch, BM, BN, "fp16").stages
            assert full.compute_cycles == pytest.approx(64 * main_loop(arch, BM, BN, bk, "fp16", r, stages).cycles_per_kstep)


def test_main_loops_are_kept_on_disk_and_checked(tmp_path, monkeypatch):
    """A stepped main loop is written beside the trace cache, read back by a later process
    (here: the in-process cache emptied) without stepping the core, recomputed when its entry
    does not check, listed and cleared by 'hwsim cache', and kept off disk with --no-cache."""
    import json

    from sim.gpu.sm import mainloop as ML
    from workloads import cache

    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path))
    ML._run.cache_clear()
    first = main_loop(A100, 64, 64, 32, "fp16", 2, 3)
    (entry,) = tmp_path.joinpath("traces").glob("*.sm.json")
    ML._run.cache_clear()
    real_step = ML._step

    def no_step(*a, **k):
        raise AssertionError("stepped again")
    monkeypatch.setattr(ML, "_step", no_step)
    assert main_loop(A100, 64, 64, 32, "fp16", 2, 3) == first
    # a damaged payload is not trusted: stepped again, and the same
    doc = json.loads(entry.read_text())
    doc["result"]["cycles_per_kstep"] += 1
    entry.write_text(json.dumps(doc))
    ML._run.cache_clear()
    monkeypatch.setattr(ML, "_step", real_step)
    assert main_loop(A100, 64, 64, 32, "fp16", 2, 3) == first
    assert json.loads(entry.read_text())["result"]["cycles_per_kstep"] == first.cycles_per_kstep
    (e,) = cache.entries()
    assert e.spec == "ampere 64x64x32 fp16 x2 (SM main loop)"
    assert cache.clear()[0] == 1 and not list(tmp_path.joinpath("traces").glob("*.sm.json"))
    ML._run.cache_clear()
    with ML.keep_on_disk(False):
        assert main_loop(A100, 64, 64, 32, "fp16", 2, 3) == first
    assert not list(tmp_path.joinpath("traces").glob("*.sm.json")) and ML.disk_cache.get()
    ML._run.cache_clear()


def test_no_cache_keeps_the_main_loops_off_disk_for_that_command_only(tmp_path, monkeypatch, capsys):
    from analysis.cli import main
    from sim.gpu import gemm
    from sim.gpu.sm import mainloop as ML

    def fresh():
        ML._run.cache_clear()
        gemm.gemm_time.cache_clear()
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path))
    fresh()
    args = ["simulate", "gemm:256,256,256", "--arch", "t4", "--format", "csv"]
    assert main([*args, "--no-cache"]) == 0
    assert not list(tmp_path.rglob("*.sm.json"))
    fresh()
    assert main(args) == 0
    assert list(tmp_path.rglob("*.sm.json"))
    fresh()
    # a command refused while its options are read leaves the setting as it was
    assert main([*args, "--no-cache", "--batch", "abc"]) == 2 and ML.disk_cache.get()
    capsys.readouterr()


def test_a_cache_folder_that_cannot_be_written_only_costs_the_recomputation(tmp_path, monkeypatch):
    from sim.gpu.sm import mainloop as ML
    from workloads import fileio
    from workloads.errors import HwsimError

    def refuse(*a, **k):
        raise HwsimError(f"{tmp_path}: no permission to write")
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fileio, "atomic_write", refuse)
    ML._run.cache_clear()
    try:
        assert main_loop(A100, 64, 64, 32, "fp16", 2, 3).cycles_per_kstep > 0
        assert not list(tmp_path.rglob("*.sm.json"))
    finally:
        ML._run.cache_clear()

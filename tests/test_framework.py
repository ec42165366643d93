"""Framework (host-side) overheads of a training step (sim.system.framework): each term's
numbers worked out by hand, the host's timeline in DeepSpeed 2021's ZeRO-3 schedule, and
the fast schedule against the first one with the host modelled."""

from __future__ import annotations

import dataclasses
import random

import pytest

from sim.registry import resolve_arch
from sim.system import framework as fw
from sim.system import zero as z3
from sim.system import zero_reference as ref
from sim.system.step import ChunkCost, Collectives, Parallel, step
from sim.system.topology import PRESETS

A100 = resolve_arch("a100-80gb")        # 2039 GB/s at 1700/2039 sustained: 1700 GB/s; gap 2.0 + 1.28 us


def test_list_collective_host_and_stream_by_hand():
    # per rank: an all-gather's narrow (2) + get_rank (1) + c10d's select and copy_ (1 + 1) +
    # cudaMemcpyAsync (5) = 10 us; a reduce-scatter's view + narrow (2 + 2) + 7 = 11 us.
    # Fixed: 130 + 250 measured on 8 ranks less 8 x 10 = 300 us; 250 less 8 x 7 = 194 us
    ag, rs = fw.DS2021_GATHER, fw.DS2021_REDUCE
    assert ag.fixed_us == pytest.approx(300.0) and rs.fixed_us == pytest.approx(194.0)
    assert ag.host_us(16) == pytest.approx(300 + 16 * 10.0)
    assert rs.host_us(16) == pytest.approx(194 + 16 * 11.0)
    # 17 MB over 16 ranks, NCCL 100 us: one rank's copy 3.28 + 2 x 1.0625 MB / 1.7 MB/us = 4.53 us;
    # torch.zeros writes 17 MB (10 us), div_ reads and writes them (20 us)
    d = 3.28 + 2 * 17e6 / 16 / 1.7e6
    assert fw.copy_us(17e6 / 16, A100) == pytest.approx(d)
    # all-gather: 300 + 16 x 3 + 10, then max(max(7, 100) + 16 d, 16 x 7 + d): the copies behind NCCL
    assert ag.stream_us(100.0, 16, 17e6, A100) == pytest.approx(300 + 48 + 10 + 100 + 16 * d)
    # reduce-scatter: 194 + 16 x 4 + 20, copies as issued max(7 + 16 d, 112 + d) = 112 + d, then NCCL
    assert rs.stream_us(100.0, 16, 17e6, A100) == pytest.approx(194 + 64 + 20 + 112 + d + 100)
    # the stream never ends before the host has issued it
    for n in (2, 64, 2048):
        for nb in (1e3, 1e9):
            for t in (0.0, 1e4):
                assert ag.stream_us(t, n, nb, A100) >= ag.host_us(n)
                assert rs.stream_us(t, n, nb, A100) >= rs.host_us(n)


DS = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 1000.0, per_tensor=True, fetch_sync=True,
                   persist_params=100.0, list_collectives=True)
G = lambda p: p / 100.0        # noqa: E731  100 parameters per us
H = lambda p: 4.0              # noqa: E731  4 us to issue any collective


def test_the_compute_waits_for_the_host_to_issue_the_prefetch():
    # three units of 1000 (10 us each), one ahead, steps of 20 us. u0 gathered 0-10 on the idle
    # device (its issue, 4 us, within it); at 10 the fetch synchronises and prefetches u1, whose
    # issue holds the host until 14: u0 computes 14-34 (u1 gathered 10-20). u1's fetch at 34
    # synchronises (u1 is in flight to DeepSpeed until then) and prefetches u2: 38-58; u2 likewise,
    # nothing left to prefetch: 58-78. Without the host: 10 + 3 x 20
    s = z3.ZeroSeq((1000.0,) * 3, (0, 1, 2), ((0, 20.0), (1, 20.0), (2, 20.0)), ())
    assert z3.schedule(s, DS, G, G, H, H) == pytest.approx((78.0, 0.0))
    assert z3.schedule(s, DS, G, G) == pytest.approx((70.0, 0.0))


def test_a_bucket_waits_for_the_reduction_stream_and_the_next_step_for_the_host():
    # backward: u0 (three tensors of 1000, 5 us) then u1 (50, persistent, 30 us); gathers free,
    # reduce-scatters 10 us, bucket 1000. At 5 u0's first tensor is issued (host 5-9, RS 5-15);
    # the second waits for the reduction stream (reduce_ipg_grads), issued at 15 (host 15-19,
    # RS 15-25); u1 computes 19-49. At 49 the third goes (RS 49-59), u1's 50 after it (59-59.5).
    # Without the host: u1 computes 5-35, the reduce-scatters back to back 5-25, 35-45, 45-45.5
    s = z3.ZeroSeq((3000.0, 50.0), (0, 1), (), ((0, 5.0, True), (1, 30.0, True)), ((1000.0,) * 3, (50.0,)))
    zero = lambda p: 0.0       # noqa: E731
    assert z3.schedule(s, DS, zero, G, zero, H) == pytest.approx((0.0, 59.5))
    assert z3.schedule(s, DS, zero, G) == pytest.approx((0.0, 45.5))
    assert repr(z3.schedule(s, DS, zero, G, zero, H)) == repr(ref.schedule(s, DS, zero, G, zero, H))


def test_several_tensors_of_a_fetch_are_issued_one_after_another():
    # u1 of two tensors of 1000 prefetched at 10: _allgather_param synchronises before each, so
    # the host issues the second once the first is done: 10 + 10 (alone) + 4 = 24; u0 computes
    # 24-44. Then u1's fetch synchronises (its gathers done at 30) and it computes 44-64
    s = z3.ZeroSeq((1000.0, 2000.0), (0, 1), ((0, 20.0), (1, 20.0)), (), ((1000.0,), (1000.0, 1000.0)))
    assert z3.schedule(s, DS, G, G, H, H) == pytest.approx((64.0, 0.0))


def test_without_fetch_sync_the_host_is_not_modelled():
    s = z3.ZeroSeq((1000.0,) * 3, (0, 1, 2), ((0, 20.0), (1, 20.0), (2, 20.0)), ())
    free = dataclasses.replace(DS, fetch_sync=False)
    assert z3.schedule(s, free, G, G, H, H) == z3.schedule(s, free, G, G)


@pytest.mark.parametrize("seed", range(60))
def test_fast_and_reference_schedules_agree_with_the_host(seed):
    """The fast schedule against the first one, to the bit, with the host's issue times."""
    from test_zero import random_seq
    rng = random.Random(seed)
    s = random_seq(rng)
    a, b = rng.random() * 50, rng.random() * 1e-5
    g = lambda p: 30.0 + a + p * b         # noqa: E731
    r = lambda p: 60.0 + p * b             # noqa: E731
    gh = lambda p: a / 2 + p * b / 3       # noqa: E731  within the stream time, as the framework's are
    rh = lambda p: 20.0 + p * b / 2        # noqa: E731
    for cfg in z3.PRESETS.values():
        for c in (cfg, dataclasses.replace(cfg, prefetch_params=1e5, max_live_params=4e8, max_reuse_params=1e8),
                  dataclasses.replace(cfg, fetch_sync=True, reduce_bucket_params=rng.choice([0.0, 1e5, 4e8]))):
            try:
                want = ref.schedule(s, c, g, r, gh, rh)
            except Exception as e:         # a stall: the fast one stalls alike
                with pytest.raises(type(e)):
                    z3.schedule(s, c, g, r, gh, rh)
                continue
            assert repr(z3.schedule(s, c, g, r, gh, rh)) == repr(want)


def test_step_zero3_of_deepspeed_2021_adds_the_list_collectives_by_hand():
    # two DGX A100 nodes, dp 16, one unit of 19.2M parameters (38.4 MB): NCCL's LL128 ring 40.6 us
    # + 38.4 MB at 192 x 0.92 x 16/15 GB/s (tests/test_zero.py), alike for both collectives.
    # DeepSpeed 2021: gathered on the idle device, kept for the backward, reduce-scattered at its end
    sys = PRESETS["dgx-a100"].with_devices(16)
    S, n = 38.4e6, 16
    ring = 40.6 + S / (192 * 0.92 * 16 / 15 * 1e3)
    d = 3.28 + 2 * S / n / 1.7e6
    ag = 300 + n * 3 + S / 1.7e6 + max(max(7, ring) + n * d, n * 7 + d)
    rs = 194 + n * 4 + 2 * S / 1.7e6 + max(7 + n * d, n * 7 + d) + ring
    ch = ChunkCost(fwd_us=5000.0, bwd_us=10000.0, fwd_comm_us=0, bwd_comm_us=0, act_bytes=0, params=S / 2,
                   optimizer_us=0.0, send_bytes=0)
    comms = Collectives(sys)
    r = step(sys, Parallel(16, 1, 1, 1, 1, zero=3, zero3="deepspeed-2021"), [ch], 0, comms)
    assert r.step_us == pytest.approx(ag + 15000 + rs, rel=1e-9)
    assert r.comm_us == pytest.approx(2 * ring, rel=1e-9)
    assert r.framework["zero3_collectives"] == pytest.approx(ag + rs - 2 * ring, rel=1e-9)
    assert r.framework_us == pytest.approx(r.framework["zero3_collectives"])
    assert r.step_us == pytest.approx(r.compute_us + r.comm_us + r.bubble_us + r.optimizer_us + r.framework_us)
    # the other implementations issue no per-rank loops: nothing of the framework's
    for impl in ("deepspeed", "megatron-deepspeed", "fsdp"):
        assert step(sys, Parallel(16, 1, 1, 1, 1, zero=3, zero3=impl), [ch], 0, comms).framework_us == 0.0
    # the reference schedule agrees to the bit
    ref_r = step(sys, Parallel(16, 1, 1, 1, 1, zero=3, zero3="deepspeed-2021"), [ch], 0, Collectives(sys, True))
    assert repr(ref_r.step_us) == repr(r.step_us)


def test_launch_bound_passes_optimizer_host_and_data_loading_by_hand():
    # one device, two microbatches; a forward of 100 us whose 50 kernels the host launches at
    # 5 us each (250 us): the device waits 150 us per microbatch. The backward's 30 kernels
    # (150 us) hide under its 200 us. The optimizer's 100 tensors, 4 us each on the host, and
    # 1 ms of data loading follow the last backward
    sys = PRESETS["dgx-a100"].with_devices(1)
    ch = ChunkCost(fwd_us=100.0, bwd_us=200.0, fwd_comm_us=0, bwd_comm_us=0, act_bytes=0, params=1e6,
                   optimizer_us=10.0, send_bytes=0, fwd_kernels=50, bwd_kernels=30, tensors=100)
    host = fw.Host(op_us=5.0, optimizer_tensor_us=4.0, data_loading_us=1000.0)
    r = step(sys, Parallel(1, 1, 1, 1, 2), [ch], 0, host=host)
    assert r.framework == pytest.approx({"zero3_collectives": 0.0, "launch": 300.0, "optimizer": 400.0,
                                          "data_loading": 1000.0})
    assert r.step_us == pytest.approx(2 * (250 + 200) + 10 + 400 + 1000)
    assert r.compute_us == pytest.approx(600.0) and r.comm_us == pytest.approx(0.0)
    assert r.step_us == pytest.approx(r.compute_us + r.comm_us + r.bubble_us + r.optimizer_us + r.framework_us)
    # the default host: nothing counted without kernel or tensor counts, data loading off
    plain = dataclasses.replace(ch, fwd_kernels=0, bwd_kernels=0, tensors=0)
    r0 = step(sys, Parallel(1, 1, 1, 1, 2), [plain], 0)
    assert r0.framework_us == 0.0 and r0.step_us == pytest.approx(2 * 300 + 10)
    # the default op: Python and dispatch (2 us) then an eager launch (2.62 us)
    assert fw.HOST.op_us == pytest.approx(4.62) and fw.HOST.data_loading_us == 0.0


def test_a_deepspeed_2021_run_is_the_reference_runs_to_the_bit(monkeypatch):
    # as tests/test_train_speed.py's runs, with the host's timeline in the ZeRO-3 schedule
    from analysis import train as T
    job = T.Job(model="gpt:4,128,4,64,1000", system=PRESETS["dgx-a100"].with_devices(16), tp=1, pp=1, dp=16,
                global_batch=32, microbatch=2, recompute="full", zero=3, zero3="deepspeed-2021")
    monkeypatch.setenv("HWSIM_TRAIN_REFERENCE", "1")
    ref_m = T.Model(job, False)
    monkeypatch.delenv("HWSIM_TRAIN_REFERENCE", raising=False)
    fast_m = T.Model(job, True)
    assert ref_m.fast is False and fast_m.fast is True
    a, b = T.run(job, ref_m), T.run(job, fast_m)
    assert repr(a.summary()) == repr(b.summary()) and repr(a.step.framework) == repr(b.step.framework)
    assert b.step.framework["zero3_collectives"] > 0


def test_train_counts_each_layers_launches_and_tensors_on_gpus_only():
    """hwsim train wires the counts: a 2-layer gpt:2,128,4 step on 8 A100s launches kernels
    shorter than the host's 4.62 us per eager op, so its passes are host-bound (a launch
    term), and Adam's host loop runs per parameter tensor: 2 layers x 12 + 2 embeddings +
    the final norm's 2 = 28 tensors x 4 us; on a TPU pod (XLA, no eager host) both are 0."""
    from analysis.train_cli import build_job
    from analysis.train import run
    from sim.system.framework import HOST
    job = build_job(model="gpt:2,128,4,64,1000", gpus=8, global_batch=8, microbatch=1, recompute="none")[0]
    terms = run(job).step.framework
    assert terms["launch"] > 0
    assert terms["optimizer"] == pytest.approx(28 * HOST.optimizer_tensor_us)
    tpu = build_job(model="gpt:2,128,4,64,1000", system_spec="tpu-pod", gpus=8, global_batch=8, microbatch=1,
                    recompute="none")[0]
    assert run(tpu).step.framework_us == 0.0


def test_data_loading_is_off_unless_asked_and_adds_its_time_to_the_step():
    from analysis.train_cli import build_job
    from analysis.train import run
    kw = dict(model="gpt:2,128,4,64,1000", gpus=8, global_batch=8, microbatch=1, recompute="none")
    off, on = run(build_job(**kw)[0]), run(build_job(**kw, data_loading_ms=2.0)[0])
    assert off.step.framework["data_loading"] == 0.0 and on.step.framework["data_loading"] == 2000.0
    assert on.step.step_us - off.step.step_us == pytest.approx(2000.0)
    from workloads.errors import HwsimError
    with pytest.raises(HwsimError, match="--data-loading-ms"):
        build_job(**kw, data_loading_ms=-1.0)

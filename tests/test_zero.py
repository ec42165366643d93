"""ZeRO-3's step-by-step schedule (sim.system.zero): numbers worked out by hand from the
units' sizes, the collective times and the prefetch / reuse / bucket rules."""

from __future__ import annotations

import dataclasses
import random

import pytest

from sim.system import zero as z3
from sim.system.step import ChunkCost, Collectives, Parallel, step
from sim.system.topology import PRESETS
from workloads.errors import HwsimError

# gathering or reducing p parameters takes p / 100 us alone (a link of 100 parameters per us)
G = lambda p: p / 100.0        # noqa: E731
ALL = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 0.0)     # one unit ahead, release at once, reduce each


def seq(fwd: list[tuple[int, float]], bwd: list[tuple[int, float, bool]], params: list[float]) -> z3.ZeroSeq:
    return z3.ZeroSeq(tuple(params), tuple(range(len(params))), tuple(fwd), tuple(bwd))


def test_forward_compute_bound_exposes_only_the_first_gather():
    # 3 units of 1000 params (10 us to gather) computing 20 us each: gather 0 exposed (10), then
    # each next gather runs under the previous compute: forward = 10 + 3 x 20
    s = seq([(0, 20.0), (1, 20.0), (2, 20.0)], [], [1000, 1000, 1000])
    f, b = z3.schedule(s, ALL, G, G)
    assert f == pytest.approx(70.0) and b == pytest.approx(0.0)


def test_forward_comm_bound_waits_for_every_gather():
    # gathers of 50 us, compute 20: gathers back to back (unit k gathered at 50 (k + 1)), the
    # last compute after the last gather: 3 x 50 + 20
    s = seq([(0, 20.0), (1, 20.0), (2, 20.0)], [], [5000, 5000, 5000])
    f, _ = z3.schedule(s, ALL, G, G)
    assert f == pytest.approx(170.0)


def test_prefetch_waits_for_the_compute_to_reach_the_previous_unit():
    # one ahead: unit 2's gather is issued when unit 1 starts (at 10 + 10 = 20 ... unit 1 was
    # gathered 10..20 under unit 0's compute 10..40); unit 1 starts at 40, unit 2 gathered 40..50,
    # unit 1 computes 40..70, unit 2 70..100
    s = seq([(0, 30.0), (1, 30.0), (2, 30.0)], [], [1000, 1000, 1000])
    f, _ = z3.schedule(s, ALL, G, G)
    assert f == pytest.approx(100.0)


def test_backward_all_gather_and_reduce_scatter_share_the_ports():
    # backward over 2 units of 1000 params, compute 5 us each; forward none. Unit 1 gathered
    # 0..10 (alone), unit 0 10..20 (alone: nothing reduces yet); unit 1 computes 10..15, its
    # gradients reduced from 15 sharing with gather 0 (5 us of its 10 left: both at half
    # rate until gather 0 ends at 25, the reduce has 5 left), reduce alone 25..30; unit 0
    # computes 25..30, its reduce 30..40: the backward ends at 40
    s = seq([], [(1, 5.0, True), (0, 5.0, True)], [1000, 1000])
    f, b = z3.schedule(s, ALL, G, G)
    assert f == 0.0 and b == pytest.approx(40.0)


def test_reduce_buckets_follow_deepspeeds_rule():
    # bucket of 1500 params: unit 2's 1000 open it; unit 1's would pass 1500, so 1000 is sent
    # (10 us) and unit 1's opens the next; unit 0's likewise; the last is flushed at the end.
    # Gathers are instant (no params to gather: reuse keeps everything), compute 100 each.
    cfg = z3.ZeroConfig("t", "module", 1.0, float("inf"), 1e12, 1500.0)
    s = seq([(0, 0.0), (1, 0.0), (2, 0.0)], [(2, 100.0, True), (1, 100.0, True), (0, 100.0, True)], [1000] * 3)
    sizes: list[float] = []

    def red(p: float) -> float:
        sizes.append(p)
        return p / 100.0
    f, b = z3.schedule(s, cfg, lambda p: 0.0, red)
    assert sizes == [1000.0, 1000.0, 1000.0]
    # unit 2's bucket goes when unit 1 ends (200..210), unit 1's when unit 0 ends (300..310), and
    # the last, flushed at the backward's end, after it on the one reduce stream (310..320)
    assert b == pytest.approx(300.0 + 2 * 10.0)


def test_max_live_stops_the_prefetch_and_reuse_keeps_a_unit():
    # max_live 1000: while a 1000-param unit is gathered nothing is prefetched, so each gather
    # (10 us) is exposed: 3 x (10 + 20)
    cfg = z3.ZeroConfig("t", "module", 5e7, 1000.0, 0.0, 0.0)
    s = seq([(0, 20.0), (1, 20.0), (2, 20.0)], [], [1000, 1000, 1000])
    assert z3.schedule(s, cfg, G, G)[0] == pytest.approx(90.0)
    # unit 0 used twice with unit 1 (1000 params) between: kept under a reuse distance of 2000,
    # gathered again (exposed: nothing else to overlap) under one of 500
    s = seq([(0, 20.0), (1, 20.0), (0, 20.0)], [], [1000, 1000])
    keep = z3.ZeroConfig("t", "module", 1.0, float("inf"), 2000.0, 0.0)
    drop = z3.ZeroConfig("t", "module", 1.0, float("inf"), 500.0, 0.0)
    assert z3.schedule(s, keep, G, G)[0] == pytest.approx(10 + 60.0)
    # dropped: unit 0 regathered 40..50 once unit 1 starts (one ahead), under unit 1's compute
    assert z3.schedule(s, drop, G, G)[0] == pytest.approx(10 + 60.0)
    slow = z3.ZeroConfig("t", "module", 1.0, float("inf"), 500.0, 0.0)
    s2 = seq([(0, 20.0), (1, 5.0), (0, 20.0)], [], [1000, 1000])
    # regather of unit 0 (10 us) starts when unit 1 starts (30) and ends at 40; unit 1 ends 35
    assert z3.schedule(s2, slow, G, G)[0] == pytest.approx(40 + 20.0)


def test_by_layer_merges_modules():
    s = z3.ZeroSeq((100.0, 200.0, 300.0), (0, 0, 1), ((0, 1.0), (1, 2.0), (2, 3.0)),
                   ((2, 3.0, True), (1, 2.0, True), (0, 1.0, True)))
    m = s.by_layer()
    assert m.params == (300.0, 300.0)
    assert m.fwd == ((0, 3.0), (1, 3.0))
    assert m.bwd == ((1, 3.0, True), (0, 3.0, True))


def test_chain_orders_regions_and_marks_gradients():
    pre = ((("emb", 10.0),), (("", 1.0), ("emb", 2.0)), (("emb", 3.0),))
    blk = ((("a", 5.0), ("b", 6.0)), (("a", 4.0), ("b", 4.0)), (("b", 1.0), ("a", 1.0), ("b", 2.0), ("a", 2.0)))
    s = z3.chain([(pre, 0.5, 0.0), (blk, 0.0, 1.0)])
    assert s.params == (10.0, 5.0, 6.0) and s.layer == (0, 1, 1)
    assert s.fwd == ((-1, 1.0), (0, 2.5), (1, 4.0), (2, 4.0))
    assert s.bwd == ((2, 1.0, False), (1, 1.0, False), (2, 2.0, True), (1, 3.0, True), (0, 3.0, True))


def test_step_zero3_uses_the_ring_times_of_the_group():
    # two DGX A100 nodes, dp 16, one chunk of one unit. NCCL's rings: 8 at once, one per NIC,
    # each with S/8; the NIC hop (24 GB/s achieved of HDR's 25) binds (a GPU's NVLink port
    # carries the 7 other rings at 230/7 = 32.9 GB/s each): bus bandwidth 8 x 24 = 192 GB/s.
    # NCCL 2.9.6's model for an all-gather over n = 16 ranks on N = 2 nodes (tuning.cc):
    #   LL     3.6 + 14 x 0.47 x 1.8 + 1 x 2.7 = 18.144 us, min(22.5, 192/4) x 16/15 = 24 GB/s
    #   LL128  10 + 14 x 1.9 + 1 x 4.0 = 40.6 us, 192 x 0.92 x 16/15 = 188.4 GB/s
    #   Simple 8.4 + 14 x 3.4 + 1 x 9.6 = 65.6 us, 192 x 16/15 = 204.8 GB/s
    # at S = 38.4 MB: 1618, 244.4 and 253.1 us: LL128
    sys = PRESETS["dgx-a100"].with_devices(16)
    S = 38.4e6
    params = S / 2
    ring = 40.6 + S / (192 * 0.92 * 16 / 15 * 1e3)
    comms = Collectives(sys)
    assert comms.busbw_gbs("all_gather", list(range(16))) == pytest.approx(192.0, rel=1e-9)
    assert comms.run("all_gather", list(range(16)), S) == pytest.approx(ring, rel=1e-9)
    assert comms.run("reduce_scatter", list(range(16)), S) == pytest.approx(ring, rel=1e-9)
    ch = ChunkCost(fwd_us=5000.0, bwd_us=10000.0, fwd_comm_us=0, bwd_comm_us=0, act_bytes=0, params=params,
                   optimizer_us=0.0, send_bytes=0)
    # FSDP reshards after the forward: gather, forward, gather again, backward, reduce-scatter
    r = step(sys, Parallel(16, 1, 1, 1, 1, zero=3, zero3="fsdp"), [ch], 0, comms)
    assert r.step_us == pytest.approx(ring + 5000 + ring + 10000 + ring, rel=1e-6)
    assert r.comm_us == pytest.approx(3 * ring, rel=1e-6)
    # DeepSpeed keeps the unit (used again within stage3_max_reuse_distance): no second gather
    r = step(sys, Parallel(16, 1, 1, 1, 1, zero=3), [ch], 0, comms)
    assert r.step_us == pytest.approx(ring + 5000 + 10000 + ring, rel=1e-6)


def test_presets_and_bad_names():
    assert z3.resolve("deepspeed").prefetch_params == 5e7 and z3.resolve("deepspeed").reduce_bucket_params == 5e8
    assert set(z3.PRESETS) == {"deepspeed", "deepspeed-2021", "megatron-deepspeed", "fsdp"}
    old = z3.resolve("deepspeed-2021")          # DeepSpeed v0.3.14's constants.py defaults
    assert (old.prefetch_params, old.max_live_params, old.max_reuse_params, old.reduce_bucket_params,
            old.persist_params) == (5e7, 1e9, 1e9, 5e8, 1e5)
    assert old.per_tensor and old.fetch_sync and not z3.DEEPSPEED.per_tensor
    with pytest.raises(HwsimError, match="zero3"):
        Parallel(2, 1, 1, 1, 1, zero=3, zero3="nope")


@pytest.mark.parametrize("system,n", [("dgx-a100", 16), ("dgx-a100", 8), ("tpu-pod", 16)])
@pytest.mark.parametrize("kind", ["all_gather", "reduce_scatter"])
def test_affine_ring_time_equals_the_simulated_one(system, n, kind):
    sys = PRESETS[system].with_devices(n) if system != "tpu-pod" else PRESETS[system]
    comms = Collectives(sys)
    group = list(range(n))
    f = comms.affine(kind, group)
    for nbytes in (3.0e5, 7.7e7, 2.5e9, 1.0e10):
        assert f(nbytes) == pytest.approx(comms.run(kind, group, nbytes), rel=1e-9)


def test_the_cli_refuses_zero3_without_zero_3(capsys):
    from analysis.cli import main

    rc = main(["train", "gpt:4,256,4,128,1000", "--gpus", "8", "--global-batch", "16", "--zero", "1",
               "--zero3", "fsdp"])
    err = capsys.readouterr().err
    assert rc == 2 and "--zero3" in err and "--zero 3" in err and len(err.strip().splitlines()) == 1


# ---- DeepSpeed of 2021: a collective per tensor, persistent small tensors, device syncs ----------
GL = lambda p: 5.0 + p / 100.0      # noqa: E731  a collective: 5 us of latency, then 100 parameters per us


def test_per_tensor_gathers_pay_the_latency_per_tensor():
    # one unit of tensors 1000, 1000 and 50 parameters; 50 < persist 100 stays gathered. Per
    # tensor: (5 + 10) + (5 + 10) = 30 us, then 20 us of compute; per unit, one collective of
    # 2000: 5 + 20 = 25 us
    s = z3.ZeroSeq((2050.0,), (0,), ((0, 20.0),), (), ((1000.0, 1000.0, 50.0),))
    tensor = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 0.0, per_tensor=True, persist_params=100.0)
    unit = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 0.0, persist_params=100.0)
    assert z3.schedule(s, tensor, GL, GL) == pytest.approx((50.0, 0.0))
    assert z3.schedule(s, unit, GL, GL) == pytest.approx((45.0, 0.0))


def test_per_tensor_buckets_fill_tensor_by_tensor():
    # backward of the same unit (nothing persistent), bucket 1500: the gather is 15 + 15 + 5.5 =
    # 35.5 us, compute 20; then tensor 1000 opens the bucket, the second 1000 would pass 1500 so
    # the first goes alone (15 us), then [1000, 50] at the end (15 + 5.5): 35.5 + 20 + 35.5
    s = z3.ZeroSeq((2050.0,), (0,), (), ((0, 20.0, True),), ((1000.0, 1000.0, 50.0),))
    cfg = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 1500.0, per_tensor=True)
    assert z3.schedule(s, cfg, GL, GL) == pytest.approx((0.0, 91.0))


def test_fetch_sync_waits_for_the_reduce_scatters_in_flight():
    # three units of 1000 (10 us per collective), one ahead, each released at once, gradients
    # reduced per unit. With DeepSpeed 2021's sync: u0 gathered 0-10 (idle device), u1
    # prefetched 10-20 under u0's compute 10-30; RS(u0) 30-40; u1 at hand computes 30-35 (no
    # new prefetch: a handle is out), RS(u1) 40-50; u2 waits for the idle device (50), is
    # gathered 50-60, computes 60-80, RS(u2) 80-90. Without: u1's step prefetches u2 at 30,
    # sharing the links with RS(u0) (both done at 50); RS(u1) 50-60; u2 computes 50-70, RS 70-80
    bwd = ((0, 20.0, True), (1, 5.0, True), (2, 20.0, True))
    s = seq([], list(bwd), [1000, 1000, 1000])
    sync = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 0.0, per_tensor=True, fetch_sync=True)
    free = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 0.0, per_tensor=True)
    assert z3.schedule(s, sync, G, G) == pytest.approx((0.0, 90.0))
    assert z3.schedule(s, free, G, G) == pytest.approx((0.0, 80.0))


def test_persistent_units_never_wait_for_a_gather():
    # u1 (50 parameters) persists under 100: u0 gathered 0-10 and u2 prefetched 10-20, steps at
    # 10-20, 20-30, 30-40 (u2's fetch at 30 synchronises: its gather is done)
    s = seq([(0, 10.0), (1, 10.0), (2, 10.0)], [], [1000, 50, 1000])
    cfg = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 0.0, per_tensor=True, fetch_sync=True,
                        persist_params=100.0)
    assert z3.schedule(s, cfg, G, G) == pytest.approx((40.0, 0.0))
    # without persistence u1 is the one prefetched (10-10.5) and u2 is not while that handle is
    # out; u1 is still in flight to DeepSpeed at its step (20), so its fetch synchronises the
    # idle device and then prefetches u2 (20-30) under u1's step (20-30); u2's fetch
    # synchronises at 30 and it computes 30-40
    assert z3.schedule(s, dataclasses.replace(cfg, persist_params=0.0), G, G) == pytest.approx((40.0, 0.0))


def test_a_prefetched_unit_synchronises_at_its_fetch():
    # two units of 1000 (10 us), one ahead, u1 used after a 50 us step of u0: u0 gathered 0-10,
    # u1 prefetched 10-20 under u0's step 10-60. u1's gather is done by 60, but DeepSpeed marks
    # it available only when a fetch synchronises: its fetch waits for the device, where the
    # reduce-scatter of u0's gradients (issued at 60, 10 us) is in flight: u1 computes 70-80,
    # and its own reduce-scatter runs 80-90
    s = seq([], [(0, 50.0, True), (1, 10.0, True)], [1000, 1000])
    cfg = z3.ZeroConfig("t", "module", 1.0, float("inf"), 0.0, 0.0, per_tensor=True, fetch_sync=True)
    assert z3.schedule(s, cfg, G, G) == pytest.approx((0.0, 90.0))
    # without the sync: u1 computes 60-70 beside u0's reduce-scatter, its own after it: 80
    assert z3.schedule(s, dataclasses.replace(cfg, fetch_sync=False), G, G) == pytest.approx((0.0, 80.0))


def random_seq(rng: random.Random) -> "z3.ZeroSeq":
    """A random chunk for the fast-vs-reference checks: up to six units of one to three
    tensors each (sizes around the small-tensor and bucket thresholds), up to 20 forward and
    backward steps."""
    units = rng.randrange(1, 7)
    tensors = tuple(tuple(float(rng.choice([0, 10, 5e4, 2e5, 5e7, 3e8])) for _ in range(rng.randrange(1, 4)))
                    for _ in range(units))
    params = tuple(sum(t) for t in tensors)
    fwd = tuple((rng.randrange(-1, units), rng.random() * 100) for _ in range(rng.randrange(0, 20)))
    bwd = tuple((rng.randrange(-1, units), rng.random() * 100, rng.random() < 0.5) for _ in range(rng.randrange(0, 20)))
    return z3.ZeroSeq(params, tuple(rng.randrange(0, 3) for _ in range(units)), fwd, bwd, tensors)


@pytest.mark.parametrize("seed", range(40))
def test_fast_and_reference_schedules_agree_with_tensors(seed):
    """The fast schedule against the first one (zero_reference), to the bit, on random units
    of several tensors under every preset (tests/test_train_speed.py does it without tensors)."""
    from sim.system import zero_reference as ref
    s = random_seq(random.Random(seed))
    g = lambda p: 30.0 + p * 1e-5          # noqa: E731
    r = lambda p: 60.0 + p * 1e-5          # noqa: E731
    for cfg in z3.PRESETS.values():
        for c in (cfg, dataclasses.replace(cfg, prefetch_params=1e5, max_live_params=4e8, max_reuse_params=1e8)):
            assert repr(z3.schedule(s, c, g, r)) == repr(ref.schedule(s, c, g, r))


def test_module_steps_keep_each_tensor_and_chain_groups_them_by_module():
    # a linear (weight 6, bias 2) then a norm (weight 3): the region lists the three tensors
    # module by module; chain makes each module a unit of its tensors, in that order
    ops = [("fc", "forward", 4.0, "b0"), ("act", "forward", 1.0, "b0"), ("ln", "forward", 2.0, "b0"),
           ("ln.bwd", "backward", 3.0, "b0"), ("fc.bwd", "backward", 5.0, "b0")]
    steps = z3.module_steps(ops, [("fc.weight", 6.0), ("fc.bias", 2.0), ("ln.weight", 3.0)],
                            lambda name: name.removesuffix(".bwd"))
    mods, fwd, bwd = steps["b0"]
    assert mods == (("fc.weight", 6.0), ("fc.bias", 2.0), ("ln.weight", 3.0))
    assert fwd == (("fc", 5.0), ("ln", 2.0)) and bwd == (("ln", 3.0), ("fc", 5.0))
    s = z3.chain([(steps["b0"], 0.0, 0.0)])
    assert s.params == (8.0, 3.0) and s.tensors == ((6.0, 2.0), (3.0,))
    assert s.fwd == ((0, 5.0), (1, 2.0)) and s.bwd == ((1, 3.0, True), (0, 5.0, True))

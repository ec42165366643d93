"""Expert parallelism (analysis.train_moe, hwsim train --ep): the local experts' GEMMs, the
all-to-alls' count, bytes and time by hand, the memory they save, and what is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analysis.train_cli import build_job
from analysis.train import Model, run, search
from analysis.train_moe import a2a_comms, a2a_us
from sim.system.topology import resolve_system
from workloads import HwsimError
from workloads.spec import Lowering
from workloads.zoo.shapes import MOE_TINY


def _job(**kw):
    base = dict(model="moe-tiny", gpus=8, global_batch=16, microbatch=2, recompute="none")
    base.update(kw)
    return build_job(**base)[0]


def test_each_device_runs_its_experts_on_the_rows_every_device_sends_them():
    """moe-tiny (4 experts of 512, top 2) at microbatch 2 x 128 tokens: without expert
    parallelism 4 experts of 128 rows (256 x 2 / 4); with ep 2 two experts of 2 x 128 rows."""
    job = _job(ep=2)
    m = Model(job)
    for ep, experts, rows in ((1, 4, 128), (2, 2, 256)):
        wl = m._lower(2, "none", 1, ep)
        up = next(op for op in wl.ops if op.name == "h.0.mlp.w_up" and op.phase == "forward")
        assert (up.copies, up.dims["M"], up.dims["N"], up.dims["K"]) == (experts, rows, 512, 256)


def test_four_all_to_alls_per_moe_layer_of_the_routed_rows():
    """Per MoE layer and microbatch: dispatch and combine in the forward, their gradients in
    the backward (two more where the forward is recomputed), each of the tokens x top_k
    routed rows: 256 x 2 rows of 256 values at 2 bytes = 262,144 bytes."""
    m = Model(_job(ep=2))
    for recompute, bwd in (("none", 2), ("full", 4)):
        wl = m._lower(2, recompute, 1, 2)
        comms = a2a_comms(wl)
        layer0 = [c for c in comms if c.at.startswith("h.0.")]
        assert [c.phase for c in layer0].count("forward") == 2 and [c.phase for c in layer0].count("backward") == bwd
        assert {c.nbytes for c in comms} == {256 * 2 * 256 * 2}
        assert {c.kind for c in comms} == {"all_to_all"}


def test_an_all_to_all_on_nvlink_by_hand():
    """n devices each send S/n to every other through NVSwitch: each device's link out carries
    (n - 1) S / n, at the fabric's rate, after one transfer latency."""
    sys = resolve_system("dgx-a100")
    S, n = 64e6, 4
    want = sys.intra.latency_us + (n - 1) * S / n / sys.intra.bytes_per_us
    assert a2a_us(sys, n, S) == pytest.approx(want, rel=1e-9)
    assert a2a_us(sys, 1, S) == 0.0


def test_experts_split_the_weights_and_add_the_all_to_alls():
    """ep 2 halves the experts' weights on each device: moe-tiny's per layer 4 x 3 x 256 x 512
    bf16 expert weights (3,145,728 B) become 1,572,864 B, two layers; the step gains the
    all-to-alls' time."""
    one, two = run(_job(ep=1)), run(_job(ep=2))
    saved = one.step.memory["weights_bytes"] - two.step.memory["weights_bytes"]
    assert saved == pytest.approx(2 * 2 * 3 * 256 * 512 * 2)
    assert two.summary()["ep"] == 2 and "ep" not in one.summary()


@pytest.mark.parametrize("kw,message", [
    (dict(ep=3), "4 experts do not split evenly"),
    (dict(ep=2, model="gpt:2,128,4,64,1000"), "is not one"),
    (dict(ep=2, zero=3), "--ep with --zero 3"),
    (dict(ep=4, gpus=16, dp=2, pp=8), "dp = 2 is not a multiple"),
])
def test_what_expert_parallelism_cannot_split_is_refused(kw, message):
    with pytest.raises(HwsimError, match=message):
        run(_job(**kw))


def test_a_search_tries_every_degree_that_splits_the_experts():
    job = build_job(model="moe-tiny", gpus=4, global_batch=4, search=True, seq_len=32)[0]
    eps = {r.job.ep for r in search(job, Model(job), tps=[1]) if r.job.dp == 4}
    assert eps == {1, 2, 4}


def test_the_busiest_device_of_an_uneven_routing_sets_the_pace():
    """--expert-imbalance 1.5 (the busiest device's routed rows over the mean): at ep 2 its two
    experts compute ceil(2 x 128 x 1.5) = 384 rows each instead of 256, and its all-to-alls
    receive 1.5 x 262,144 bytes; its compute and communication take longer (moe-tiny's step is
    the host's launches, which hide both) and the summary says so."""
    job = _job(ep=2, expert_imbalance=1.5)
    m = Model(job)
    wl = m._lower(2, "none", 1, 2)
    up = next(op for op in wl.ops if op.name == "h.0.mlp.w_up" and op.phase == "forward")
    assert (up.copies, up.dims["M"], up.dims["N"], up.dims["K"]) == (2, 384, 512, 256)
    assert {c.nbytes for c in a2a_comms(wl, 1.5)} == {1.5 * 256 * 2 * 256 * 2}
    even, uneven = run(_job(ep=2)), run(job)
    assert uneven.step.compute_us > even.step.compute_us and uneven.step.comm_us > even.step.comm_us
    assert uneven.summary()["expert_imbalance"] == 1.5


@pytest.mark.parametrize("kw,message", [
    (dict(ep=1, expert_imbalance=1.3), "needs --ep 2 or more"),
    (dict(ep=2, expert_imbalance=0.5), ">= 1"),
    (dict(ep=2, model="gpt:2,128,4,64,1000", expert_imbalance=1.3), "not a dropless mixture of experts"),
])
def test_an_imbalance_that_does_not_apply_is_refused(kw, message):
    with pytest.raises(HwsimError, match=message):
        run(_job(**kw))

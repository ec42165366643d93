"""Multi-device systems: collectives against their textbook times, the network's bandwidth
sharing, pipeline schedules against their closed forms, the step's memory against ZeRO's
accounting, data-parallel scaling, Megatron-LM's GPT shapes, the CLI and its errors.

Expected values are derived here from the formulas of the papers (Thakur et al. 2005;
Narayanan et al., SC 2021; Rajbhandari et al., SC 2020), from torch's own parameter
counts, or by hand; never read back from the code under test.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random

import pytest
import simpy
from hypothesis import given, settings, strategies as st

from analysis import train as T
from analysis.cli import main as cli_main
from sim.system import collectives as C
from sim.system.network import Network
from sim.system.pipeline import simulate, simulate_events
from sim.system.step import Collectives, bucket_walk, buckets_end
from sim.system.topology import PRESETS, resolve_system
from workloads.errors import HwsimError

DGX = PRESETS["dgx-a100"]


def _hwsim(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI; (exit status, stdout + stderr)."""
    rc = cli_main(list(args))
    got = capsys.readouterr()
    return rc, got.out + got.err
# achieved rates, bytes per us: of NVLink 3's 300 GB/s per direction per GPU (DGX A100 white paper)
# NCCL reaches ~230 GB/s (NVIDIA/nccl-tests issue 149), of 200 Gb/s HDR per GPU 24 GB/s (NVIDIA/nccl issue 412)
NV_B = 230e3
IB_B = 24e3
NV_A, IB_A = DGX.intra.latency_us, DGX.inter.latency_us


def _ring_textbook(n: int, S: float, B: float, a: float) -> float:
    return 2 * (n - 1) / n * S / B + 2 * (n - 1) * a


# ---- collectives ------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("S", [1e3, 64e6])
def test_ring_allreduce_is_textbook_inside_a_node(n, S):
    assert C.allreduce_us(DGX, list(range(n)), S, "ring") == pytest.approx(_ring_textbook(n, S, NV_B, NV_A), rel=1e-9)


def test_ring_allreduce_across_nodes_runs_at_the_nic():
    sys = DGX.with_devices(64)
    group = [8 * i for i in range(8)]           # local rank 0 of 8 nodes
    assert C.allreduce_us(sys, group, 100e6, "ring") == pytest.approx(_ring_textbook(8, 100e6, IB_B, IB_A), rel=1e-9)


def test_reduce_scatter_and_all_gather_are_half_an_allreduce():
    n, S = 8, 32e6
    half = (n - 1) / n * S / NV_B + (n - 1) * NV_A
    rs = C.time_us(DGX, lambda net: C.reduce_scatter(net, list(range(n)), S))
    ag = C.time_us(DGX, lambda net: C.all_gather(net, list(range(n)), S))
    assert rs == pytest.approx(half, rel=1e-9) and ag == pytest.approx(half, rel=1e-9)


def test_all_to_all_and_p2p():
    n, S = 8, 8e6
    # each device sends S/n to each of n-1 others through its one port at once
    t = C.time_us(DGX, lambda net: C.all_to_all(net, list(range(n)), S))
    assert t == pytest.approx(NV_A + (n - 1) / n * S / NV_B, rel=1e-9)
    assert C.time_us(DGX.with_devices(16), lambda net: C.p2p(net, 0, 8, S)) == pytest.approx(IB_A + S / IB_B, rel=1e-9)


def test_hierarchical_allreduce_is_its_three_textbook_phases():
    sys = DGX.with_devices(32)                  # 4 nodes of 8
    S, g, k = 256e6, 8, 4
    intra = (g - 1) / g * S / NV_B + (g - 1) * NV_A           # reduce-scatter, and the all-gather
    inter = _ring_textbook(k, S / g, IB_B, IB_A)               # 8 rails at once, S/g each
    t = C.allreduce_us(sys, list(range(32)), S, "hierarchical")
    assert t == pytest.approx(2 * intra + inter, rel=1e-9)
    # the flat ring runs 8 rings at once, one per NIC (NCCL's channels), each with S/8: a
    # step moves S/32/8 per hop; the NIC hop (one ring per NIC and direction) takes IB_A +
    # S/256/IB_B = 43.7 us, the NVLink hops (7 rings on a GPU's port) NV_A + S/256 * 7/NV_B =
    # 31.4 us: 62 steps at the NIC's. Every NIC busy all along: it beats the hierarchical
    # phases, whose intra-node ones leave the NICs idle (2707 against 3974 us)
    flat = 2 * 31 * (IB_A + S / 256 / IB_B)
    assert C.allreduce_us(sys, list(range(32)), S, "ring") == pytest.approx(flat, rel=1e-9)
    assert flat < t


@pytest.mark.parametrize("n", [4, 8])
def test_double_binary_tree_approaches_2S_over_B(n):
    S = 1e9          # many large chunks: the bandwidth term dominates (Sanders et al. 2009)
    t = C.allreduce_us(DGX, list(range(n)), S, "tree")
    assert t == pytest.approx(2 * math.log2(n) * NV_A + 2 * S / NV_B, rel=0.05)


def test_two_collectives_sharing_a_port_share_its_bandwidth():
    """Ring A over devices {0, 1} and ring B over {0, 2} both send out of device 0's port:
    run together, every step of each moves at half the port's bandwidth."""
    n, S = 2, 40e6
    env = simpy.Environment()
    net = Network(env, DGX)
    done = {}

    def ring(name, group):
        yield from C.ring_allreduce(net, group, S)
        done[name] = env.now
    env.process(ring("a", [0, 1]))
    env.process(ring("b", [0, 2]))
    env.run()
    shared = _ring_textbook(n, S, NV_B / 2, NV_A)
    assert done["a"] == pytest.approx(shared, rel=1e-9) and done["b"] == pytest.approx(shared, rel=1e-9)
    alone = C.allreduce_us(DGX, [0, 1], S)
    assert alone == pytest.approx(_ring_textbook(n, S, NV_B, NV_A), rel=1e-9)


def test_max_min_fairness_gives_the_unused_share_away():
    """Flows 0->1 and 0->2 share 0's up port; flow 3->2 shares 2's down port with 0->2.
    Max-min fair: every flow gets B/2 (the bottlenecks are shared by two)."""
    env = simpy.Environment()
    net = Network(env, DGX)
    ends = {}

    def go(a, b, nbytes):
        yield net.transfer(a, b, nbytes)
        ends[(a, b)] = env.now
    for a, b in ((0, 1), (0, 2), (3, 2)):
        env.process(go(a, b, 30e6))
    env.process(go(4, 5, 30e6))                     # on ports nobody else uses: full rate
    env.run()
    assert ends[(4, 5)] == pytest.approx(NV_A + 30e6 / NV_B, rel=1e-9)
    for pair in ((0, 1), (0, 2), (3, 2)):
        assert ends[pair] == pytest.approx(NV_A + 30e6 / (NV_B / 2), rel=1e-9)


@pytest.mark.parametrize("preset,n", [("dgx-a100", 8), ("dgx-a100", 32), ("dgx-h100", 24), ("tpu-pod", 16)])
def test_rings_repeating_their_first_step_equal_the_step_by_step_ones(preset, n):
    sys = PRESETS[preset].with_devices(n)
    rng = random.Random(n)
    groups = [list(range(n)), sorted(rng.sample(range(n), max(2, n // 3)))]
    for g in groups:
        for S in (1e3, 3e7):
            for fn in (C.ring_allreduce, C.reduce_scatter, C.all_gather, C.hierarchical_allreduce):
                exact = C.time_us(sys, lambda net: fn(net, g, S, exact=True))
                fast = C.time_us(sys, lambda net: fn(net, g, S, exact=False))
                assert fast == pytest.approx(exact, rel=1e-12), (fn.__name__, g, S)


def test_torus_ring_of_neighbours_runs_at_link_speed():
    sys = PRESETS["tpu-pod"].with_devices(16)         # 4 x 4 torus; row 0 is devices 0..3
    B = sys.intra.bytes_per_us
    t = C.allreduce_us(sys, [0, 1, 2, 3], 8e6)         # a ring along one torus row: one hop per step
    assert t == pytest.approx(_ring_textbook(4, 8e6, B, sys.intra.latency_us), rel=1e-9)


# ---- pipeline schedules ------------------------------------------------------------------
def _uniform(p, m, v, schedule, tf=3.0, tb=7.0):
    return simulate(p, m, v, schedule, lambda c: tf / v, lambda c: tb / v, lambda a, b, k: 0.0)


@pytest.mark.parametrize("p,m", [(2, 4), (4, 8), (4, 16), (8, 8)])
def test_1f1b_and_gpipe_bubble_is_p_minus_1_passes(p, m):
    tf, tb = 3.0, 7.0
    for sched in ("1f1b", "gpipe"):
        r = _uniform(p, m, 1, sched, tf, tb)
        assert r.makespan_us == pytest.approx((m + p - 1) * (tf + tb))         # Narayanan et al. eq. 1
        for d in range(p):
            assert r.bubble_us(d) == pytest.approx((p - 1) * (tf + tb))
    # what each schedule holds: GPipe all m microbatches, 1F1B at most p - d on stage d
    assert _uniform(p, m, 1, "gpipe").inflight == {c: m for c in range(p)}
    assert _uniform(p, m, 1, "1f1b").inflight == {d: min(p - d, m) for d in range(p)}


@pytest.mark.parametrize("p,m,v", [(2, 4, 2), (4, 8, 2), (4, 8, 4)])
def test_interleaved_bubble_shrinks_by_v(p, m, v):
    tf, tb = 3.0, 7.0
    r = _uniform(p, m, v, "interleaved", tf, tb)
    assert r.makespan_us == pytest.approx(m * (tf + tb) + (p - 1) * (tf + tb) / v)   # Narayanan et al. Sec. 2.2.2


def test_fast_pipeline_equals_the_event_simulation():
    rng = random.Random(7)
    for _ in range(150):
        p, v = rng.randint(1, 6), rng.choice([1, 1, 2, 3])
        sched = rng.choice(["gpipe", "1f1b"]) if v == 1 else rng.choice(["gpipe", "interleaved"])
        m = p * rng.randint(1, 4) if v > 1 else rng.randint(1, 10)
        f = [rng.uniform(1, 5) for _ in range(p * v)]
        b = [rng.uniform(1, 10) for _ in range(p * v)]
        sends = {}

        def send(a, c, k):
            return sends.setdefault((a, c, k), rng.choice([0.0, rng.uniform(0, 2)]))
        fast = simulate(p, m, v, sched, f.__getitem__, b.__getitem__, send)
        ref = simulate_events(p, m, v, sched, f.__getitem__, b.__getitem__, send)
        key = lambda t: (t.device, t.chunk, t.mb, t.kind)   # noqa: E731
        assert sorted(fast.tasks, key=key) == sorted(ref.tasks, key=key)
        assert (fast.makespan_us, fast.busy_us, fast.last_backward_end_us, fast.inflight, fast.device_end_us,
                fast.final_backwards) == (ref.makespan_us, ref.busy_us, ref.last_backward_end_us, ref.inflight,
                                          ref.device_end_us, ref.final_backwards)


@settings(max_examples=300, deadline=None)
@given(free=st.floats(0, 1e6), start=st.floats(0, 1e6), dur=st.floats(0, 1e6), n=st.integers(1, 500),
       bucket=st.floats(0, 1e4))
def test_bucket_closed_form_equals_the_walk(free, start, dur, n, bucket):
    walked = bucket_walk(free, start, start + dur, n, bucket)
    assert len(walked) == n and all(s1 >= e0 for (_, e0), (s1, _) in zip(walked, walked[1:]))
    assert buckets_end(free, start, start + dur, n, bucket) == pytest.approx(walked[-1][1], rel=1e-12, abs=1e-9)


def test_interleaved_needs_microbatches_in_groups_of_p():
    with pytest.raises(HwsimError, match="multiple of the pipeline stages"):
        _uniform(4, 6, 2, "interleaved")


# ---- a step: memory, tensor parallelism, data parallelism ---------------------------------
SMALL = "gpt:4,512,8,256,51200"


def _params(spec: str) -> int:
    from workloads.zoo.transformer import family
    from workloads.zoo.transformer import build
    model, _ = build(family(spec), family(spec).cfg.layers, 1, meta=True)
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def small():
    sys = DGX.with_devices(8)
    job = T.Job(SMALL, sys, 1, 1, 8, 16, 2, "none", "1f1b", 0)
    return job, T.Model(job)


@pytest.mark.parametrize("zero", [0, 1, 2, 3])
def test_memory_per_device_is_zero_accounting(small, zero):
    job, m = small
    P = _params(SMALL)
    r = T.run(dataclasses.replace(job, zero=zero), m)
    mem, dp = r.step.memory, job.dp
    # bf16 weights and gradients, fp32 master + Adam's two moments (Rajbhandari et al. Sec. 3.1)
    assert mem["weights_bytes"] == pytest.approx(2 * P / (dp if zero >= 3 else 1), rel=1e-9)
    assert mem["gradients_bytes"] == pytest.approx(2 * P / (dp if zero >= 2 else 1), rel=1e-9)
    assert mem["optimizer_bytes"] == pytest.approx(12 * P / (dp if zero >= 1 else 1), rel=1e-9)


def test_tensor_parallel_splits_work_and_adds_megatron_all_reduces(small):
    job, m = small
    cfg = m.family.cfg
    _, r1, _ = m.regions(2, 1, "none")
    _, r4, _ = m.regions(2, 4, "none")
    layer1, layer4 = r1["h.0"], r4["h.0"]
    # the layer's GEMMs (all but the replicated norms) split 4 ways
    assert layer4.macs == pytest.approx(layer1.macs / 4, rel=1e-9)
    # GPT-2's layer has 12 h^2 + 13 h parameters; column-parallel weights and biases (qkv, up)
    # and row-parallel weights (proj, down) split, their biases and the norms stay whole
    h = cfg.hidden
    assert layer4.params == 12 * h * h / 4 + 7 * h / 4 + 6 * h
    # two all-reduces of the layer's b x s x h bf16 output forward, two of its input gradient backward
    # (Shoeybi et al. 2019, Sec. 3)
    size = 2 * 256 * cfg.hidden * 2
    assert sorted(layer4.fwd_comm) == [size, size] and sorted(layer4.bwd_comm) == [size, size]
    _, rf, _ = m.regions(2, 4, "full")
    assert len(rf["h.0"].bwd_comm) == 2 + 2               # the recomputed forward repeats its two


def test_activations_per_layer_are_korthikantis(small):
    """Korthikanti et al. 2022, eq. 1-4, bf16, per layer: s b h (34 + 5 a s / h) without
    recomputation, 34 s b h with selective recomputation (the attention core recomputed),
    2 s b h (the layer's input) with full. Their 34 counts two dropout masks (s b h each)
    and 5 a s / h a dropout mask and output of the attention probabilities; hwsim's GPT has
    no dropout, so it is compared with 32 and 2 a s / h, within 10% (torch's attention keeps
    the scaled q and k besides the qkv projection; Megatron keeps q, k and v)."""
    job, m = small
    cfg = m.family.cfg
    b, s_, h, a = 2, 256, cfg.hidden, cfg.heads
    sbh = s_ * b * h
    for t in (1, 2, 4):
        _, rn, _ = m.regions(b, t, "none")
        _, rs, _ = m.regions(b, t, "selective")
        _, rf, _ = m.regions(b, t, "full")
        # tensor parallel (eq. 2-4): 10 s b h replicated (8 without dropout masks), 24 / t split
        assert rs["h.0"].act_bytes == pytest.approx(sbh * (8 + 24 / t), rel=0.10)
        assert rn["h.0"].act_bytes == pytest.approx(sbh * (8 + 24 / t + 2 * a * s_ / (h * t)), rel=0.10)
        assert rf["h.0"].act_bytes == 2 * sbh


def test_sequence_parallelism_splits_every_activation_and_swaps_all_reduces(small):
    """Korthikanti et al. 2022, Sec. 4.2.2: with sequence parallelism nothing of a layer is
    replicated, so with selective recomputation a layer keeps 34 s b h / t (eq. 5; 32 / t
    without their two s b h dropout masks, which hwsim's GPT does not have), and each of
    the layer's all-reduces becomes a reduce-scatter and an all-gather of the same bytes."""
    job, m = small
    cfg = m.family.cfg
    b, s_, h = 2, 256, cfg.hidden
    sbh = s_ * b * h
    _, r1, _ = m.regions(b, 1, "selective")
    for t in (2, 4):
        _, tp_only, _ = m.regions(b, t, "selective")
        _, sp, _ = m.regions(b, t, "selective", True)
        assert sp["h.0"].act_bytes == pytest.approx(sbh * 32 / t, rel=0.10)
        assert sp["h.0"].act_bytes == pytest.approx(r1["h.0"].act_bytes / t, rel=1e-12)    # nothing replicated
        assert sp["h.0"].act_bytes < tp_only["h.0"].act_bytes
        # forward: an all-gather before the qkv and the MLP's up GEMM, a reduce-scatter after the
        # projection and the down GEMM; backward the conjugates; each b x s x h in bf16
        size = 2 * sbh
        assert sorted(zip(sp["h.0"].comm_kinds, sp["h.0"].fwd_comm + sp["h.0"].bwd_comm)) == \
            [("all_gather", size)] * 4 + [("reduce_scatter", size)] * 4
        assert sum(tp_only["h.0"].fwd_comm + tp_only["h.0"].bwd_comm) * 2 == \
            sum(sp["h.0"].fwd_comm + sp["h.0"].bwd_comm)
        # the layer's work is split too: its norms and adds run on 1/t of the tokens
        assert sp["h.0"].fwd_us < tp_only["h.0"].fwd_us
    _, full, _ = m.regions(b, 4, "full", True)
    assert sorted(full["h.0"].comm_kinds[len(full["h.0"].fwd_comm):]) == ["all_gather"] * 4 + ["reduce_scatter"] * 4
    with pytest.raises(HwsimError, match="sequence parallelism splits a transformer's layer norms"):
        from workloads.shard import tensor_parallel
        from workloads.spec import resolve
        tensor_parallel(resolve("resnet18"), 2, sequence=True)


@pytest.mark.parametrize("c, g, n, want", [
    (30.0, 100.0, 4, 0.0),          # each ring step's 10 us transfer hides under a 25 us GEMM chunk
    (150.0, 100.0, 4, 75.0),        # 25 + 3 x 50 = 175 us for the pair: 75 more than the GEMM
    (40.0, 100.0, 2, 0.0),          # 50 + max(50, 40) = 100
    (80.0, 100.0, 2, 30.0),         # 50 + 80
    (40.0, 100.0, 1, 40.0),         # nothing to pipeline over one device
])
def test_a_collective_pipelined_with_its_gemm_by_hand(c, g, n, want):
    assert T.overlapped_us(c, g, n) == pytest.approx(want)


def test_tp_comm_overlap_hides_what_the_gemms_cover_and_needs_sequence_parallelism(small, capsys):
    job, m = small
    base = dataclasses.replace(job, tp=4, dp=2, microbatch=2, recompute="selective", sequence_parallel=True)
    plain = m.chunks(base)[0]
    over = m.chunks(dataclasses.replace(base, tp_comm_overlap=True))[0]
    assert 0 <= over.fwd_comm_us < plain.fwd_comm_us and 0 <= over.bwd_comm_us < plain.bwd_comm_us
    assert over.fwd_us - over.fwd_comm_us == pytest.approx(plain.fwd_us - plain.fwd_comm_us)   # the GEMMs unchanged
    # each collective's exposure recomputed from its own time and its GEMM's
    blocks, regions, _ = m.regions(2, 4, "selective", True)
    r = regions["h.0"]
    want = sum(T.overlapped_us(m.comms.run(k, list(range(4)), b), gu, 4) if gu > 0 else m.comms.run(k, list(range(4)), b)
               for b, k, gu in zip(r.fwd_comm, r.comm_kinds, r.comm_gemm_us))
    assert m._comm_us(dataclasses.replace(base, tp_comm_overlap=True), r, "forward") == pytest.approx(want)
    rc, out = _hwsim(capsys, "train", SMALL, "--global-batch", "16", "--tp", "2", "--tp-comm-overlap")
    assert rc == 2 and "add --sequence-parallel (Megatron-LM requires it too)" in out and out.count("\n") == 1


def test_overlap_param_gather_hides_the_gather_under_a_forward(capsys):
    """ZeRO-1's parameter all-gather after the optimizer, exposed whole, or (Megatron-Core's
    --overlap-param-gather) under the next forward: exposed max(gather / buckets, gather - forward)."""
    from sim.system.step import BUCKET_BYTES, ChunkCost, Parallel, step
    sys_ = DGX.with_devices(16)
    params = 2e9                                   # 4 GB of bf16 weights: 160 buckets of 25 MB
    chunk = ChunkCost(fwd_us=5e4, bwd_us=1e5, fwd_comm_us=0.0, bwd_comm_us=0.0, act_bytes=0.0, params=params,
                      optimizer_us=0.0, send_bytes=0.0)
    coll = Collectives(sys_)
    gather = coll.run("all_gather", list(range(16)), params * 2)
    runs = {o: step(sys_, Parallel(16, 1, 1, 1, 1, zero=1, overlap_param_gather=o), [chunk], 80e9, coll)
            for o in (False, True)}
    assert runs[False].step_us - runs[True].step_us == pytest.approx(
        gather - max(gather / math.ceil(params * 2 / BUCKET_BYTES), gather - chunk.fwd_us), rel=1e-9)
    with pytest.raises(HwsimError, match="only with ZeRO 1 or 2"):
        Parallel(16, 1, 1, 1, 1, zero=3, overlap_param_gather=True)
    rc, out = _hwsim(capsys, "train", SMALL, "--global-batch", "16", "--overlap-param-gather")
    assert rc == 2 and "needs --zero 1 or 2 (got --zero 0)" in out


def test_hyper_parameter_parallel_jobs_add_up(capsys):
    rc, out = _hwsim(capsys, *["train", SMALL, "--gpus", "8", "--jobs", "2", "--global-batch", "8",
                                      "--microbatch", "2", "--recompute", "none", "--schedule", "1f1b",
                                      "--format", "json"])
    assert rc == 0, out
    s = json.loads(out)
    assert s["devices"] == 4 and s["jobs"] == 2
    assert s["total_samples_per_s"] == pytest.approx(2 * s["samples_per_s"])


@pytest.fixture(scope="module")
def resnet50():
    base = T.Job("resnet50", DGX.with_devices(1), 1, 1, 1, 4, 4, "none", "1f1b", 0)
    return T.Model(base)


def _hier_allreduce_us(n: int, S: float) -> float:
    """Ring inside a node; with several nodes, the three phases (textbook times)."""
    if n <= 8:
        return _ring_textbook(n, S, NV_B, NV_A)
    g, k = 8, n // 8
    return 2 * ((g - 1) / g * S / NV_B + (g - 1) * NV_A) + _ring_textbook(k, S / g, IB_B, IB_A)


def test_data_parallel_resnet50_scaling(resnet50):
    """Weak scaling, 4 images per GPU, 1..64 GPUs: the per-GPU throughput falls as the
    all-reduce grows, by at least the last bucket (nothing left to overlap it with) and at
    most the whole all-reduce; on a network 100x slower the whole all-reduce that the
    backward cannot hide shows."""
    m = resnet50
    grads = 2 * _params_of(m)
    per_gpu, exposed = [], []
    for n in (1, 2, 4, 8, 16, 32, 64):
        job = T.Job("resnet50", DGX.with_devices(n), 1, 1, n, 4 * n, 4, "none", "1f1b", 0)
        r = T.run(job, m)
        per_gpu.append(r.samples_per_s / n)
        exposed.append(r.step.comm_us)
        if n > 1:
            last_bucket = grads - (math.ceil(grads / (25 * 2 ** 20)) - 1) * 25 * 2 ** 20
            assert exposed[-1] >= 0.99 * _hier_allreduce_us(n, last_bucket) - 1e-9
            assert exposed[-1] <= _hier_allreduce_us(n, grads) + 1e-6
    assert exposed[0] == 0
    assert all(a >= b for a, b in zip(per_gpu, per_gpu[1:]))          # never better than linear
    assert per_gpu[-1] < per_gpu[0]
    # 100x slower links: the all-reduce outlasts the backward and most of it is exposed
    slow = dataclasses.replace(DGX, intra=dataclasses.replace(DGX.intra, bandwidth_gbs=3),
                               inter=dataclasses.replace(DGX.inter, bandwidth_gbs=0.25))
    job = T.Job("resnet50", slow.with_devices(64), 1, 1, 64, 256, 4, "none", "1f1b", 0)
    r = T.run(job, m)
    bwd = sum(c.bwd_us for c in m.chunks(job))
    # line rates 3 and 0.25 GB/s at the presets' achieved fractions: NV_B / 100 and IB_B / 100.
    # NCCL's rings, one per NIC: a NIC's ring at IB_B / 100 = 240 B/us binds (a GPU port's 7
    # other rings get NV_B / 700 = 329 B/us each): bus bandwidth 8 x 240 B/us. Per 25 MiB
    # bucket over 64 ranks on 8 nodes NCCL 2.9.6 picks ring Simple: latency (8.4 + 112 x 3.4 +
    # 14 x 9.6) x 1.9 = 994.84 us (LL128's 278.8 us does not pay for its 0.92 bandwidth here,
    # nor the tree's 560 us its 0.92 / 2)
    busbw = 8 * IB_B / 100
    n_b = math.ceil(grads / (25 * 2 ** 20))
    sizes = [25 * 2 ** 20] * (n_b - 1) + [grads - (n_b - 1) * 25 * 2 ** 20]
    slow_ar = sum(994.84 + 2 * 63 / 64 * b / busbw for b in sizes)
    assert slow_ar > 10 * bwd
    assert slow_ar - bwd <= r.step.comm_us <= slow_ar * 1.01
    assert r.samples_per_s / 64 < 0.5 * per_gpu[0]


def _params_of(m: T.Model) -> float:
    _, regions, _ = m.regions(4, 1, "none")
    return sum(r.params for r in regions.values())


def test_resnet50_parameter_count_is_torchs(resnet50):
    from workloads.zoo import ZOO
    model, _ = ZOO["resnet50"].load()(1)
    assert _params_of(resnet50) == sum(p.numel() for p in model.parameters())


# ---- Megatron-LM's GPT shapes (Narayanan et al., SC 2021, Table 1) ---------------------------
# (layers, hidden, heads, tp, pp, GPUs, global batch): inputs from the paper's Table 1.
TABLE1 = [(24, 2304, 24, 1, 1, 32, 512), (30, 3072, 32, 2, 1, 64, 512), (36, 4096, 32, 4, 1, 128, 512),
          (40, 6144, 48, 8, 1, 256, 1024), (48, 8192, 64, 8, 2, 512, 1536), (60, 10240, 80, 8, 4, 1024, 1792),
          (80, 12288, 96, 8, 8, 1536, 2304), (96, 16384, 128, 8, 16, 1920, 2160),
          (105, 20480, 128, 8, 35, 2520, 2520), (128, 25600, 160, 8, 64, 3072, 3072)]


@pytest.mark.parametrize("row", [0, 4, 9], ids=lambda i: f"{TABLE1[i][1]}h{TABLE1[i][0]}l")
def test_narayanan_table1_runs_and_counts_flops_as_megatron(row, capsys):
    """Three of Table 1's shapes (all ten are rows of validation/data/train.csv) fit and count
    FLOPs as the paper's eq. 3."""
    L, h, a, tp, pp, gpus, B = TABLE1[row]
    # microbatch 1 with full recomputation, as the paper's largest runs; the schedule is picked
    rc, out = _hwsim(capsys, *["train", f"gpt:{L},{h},{a}", "--system", "dgx-a100", "--gpus", str(gpus),
                                      "--tp", str(tp), "--pp", str(pp), "--global-batch", str(B),
                                      "--microbatch", "1", "--recompute", "full", "--format", "json"])
    assert rc == 0, out
    s = json.loads(out)
    assert s["fits"] and s["dp"] == gpus // (tp * pp)
    s_, V = 2048, 51200
    flops = 96 * B * s_ * L * h ** 2 * (1 + s_ / (6 * h) + V / (16 * L * h))   # eq. 3
    assert s["tflops_per_gpu"] == pytest.approx(flops / s["step_time_s"] / gpus / 1e12, rel=1e-9)
    assert s["memory_per_gpu_gib"]["total"] <= s["capacity_gib"]
    # how near the published TFLOP/s it lands is the validation corpus's (validation/data/train.csv)


def test_gpt3_on_one_node_without_model_parallelism_is_refused_with_its_footprint(capsys):
    rc, out = _hwsim(capsys, *["train", "gpt3-175b", "--gpus", "8", "--tp", "1", "--pp", "1",
                                      "--global-batch", "8", "--microbatch", "1", "--recompute", "full",
                                      "--schedule", "1f1b"])
    assert rc == 2
    line = out.strip()
    assert "\n" not in line and "does not fit" in line
    # 175B parameters x 16 bytes (bf16 weights and gradients, fp32 Adam states and master weights)
    P = 12 * 96 * 12288 ** 2                  # the layers' weights alone
    assert float(line.split("needs ")[1].split(" GiB")[0]) > 16 * P / 2 ** 30


# ---- the CLI: search, timeline, report, errors -------------------------------------------
def test_search_ranks_every_configuration_reproducibly(capsys):
    args = ["train", SMALL, "--gpus", "8", "--global-batch", "16", "--search", "--format", "json"]
    rc_a, out_a = _hwsim(capsys, *args)
    rc_b, out_b = _hwsim(capsys, *args)
    assert rc_a == 0, out_a
    assert out_a == out_b
    rows = json.loads(out_a)
    assert all(r["dp"] * r["tp"] * r["pp"] == 8 for r in rows)
    fitting = [r["step_time_s"] for r in rows if r["fits"]]
    assert fitting == sorted(fitting) and fitting[0] == rows[0]["step_time_s"]
    keys = {(r["dp"], r["tp"], r["pp"], r["microbatch"], r["recompute"], r["schedule"], r["zero"]) for r in rows}
    assert len(keys) == len(rows)
    # every tp dividing the heads, pp dividing the layers, zero only with data parallelism
    assert {r["tp"] for r in rows} == {1, 2, 4, 8} and {r["pp"] for r in rows} == {1, 2, 4}
    assert all(r["zero"] == 0 for r in rows if r["dp"] == 1)
    # spread over processes, and over a Dask cluster (as sweeps are): the same ranking
    rc_w, out_w = _hwsim(capsys, *args, "--workers", "2")
    assert rc_w == 0 and json.loads(out_w) == rows
    pytest.importorskip("dask.distributed")
    rc_c, out_c = _hwsim(capsys, *args, "--cluster", "--workers", "2")
    assert rc_c == 0 and json.loads(out_c) == rows


def test_timeline_is_a_perfetto_trace_of_the_step(tmp_path, capsys):
    path = tmp_path / "deep" / "step.json"
    rc, out = _hwsim(capsys, *["train", SMALL, "--gpus", "8", "--tp", "2", "--pp", "2",
                               "--global-batch", "16", "--microbatch", "1", "--recompute", "none",
                               "--schedule", "1f1b", "--timeline", str(path), "--format", "json"])
    assert rc == 0, out
    summary = json.loads(out.split("wrote")[0])
    rc2 = cli_main(["train", SMALL, "--gpus", "8", "--tp", "2", "--pp", "2", "--global-batch", "16", "--microbatch", "1",
                    "--recompute", "none", "--schedule", "1f1b", "--timeline", str(path), "--format", "json"])
    got = capsys.readouterr()
    assert rc2 == 0 and json.loads(got.out) == summary and got.err.strip() == f"wrote {path}"   # stdout: one document
    trace = json.loads(path.read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"stage 0: compute", "stage 1: compute", "link stage 0 -> 1", "link stage 1 -> 0",
            "stage 0: tensor-parallel collectives", "stage 0: data-parallel allreduce"} <= names
    # 16 / dp 2 = 8 microbatches, a forward and a backward each per stage
    passes = [e for e in spans if e["cat"] == "compute" and e["name"][0] in "FB"]
    assert len(passes) == 2 * 2 * 8
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(summary["step_time_s"] * 1e6, rel=1e-9)


def test_report_writes_the_breakdown_and_scaling_plots(tmp_path, capsys):
    rc, out = _hwsim(capsys, *["train", SMALL, "--gpus", "8", "--global-batch", "16", "-o", str(tmp_path / "r")])
    assert rc == 0, out
    assert "chosen as the fastest that fits" in out
    for f in ("summary.json", "breakdown.png", "scaling.png"):
        assert (tmp_path / "r" / f).stat().st_size > 1000 or f == "summary.json"
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["step_time_s"] == pytest.approx(s["compute_s"] + s["exposed_comm_s"] + s["bubble_s"] + s["optimizer_s"]
                                             + s["framework_s"], rel=1e-9)
    assert s["framework_s"] == pytest.approx(sum(s["framework_terms_s"].values()), rel=1e-9)


@pytest.mark.parametrize("args,msg", [
    (["--system", "nope"], "unknown system 'nope'"),
    (["--gpus", "0"], "--gpus must be >= 1"),
    (["--gpus", "12"], "do not fill whole nodes of 8"),
    (["--tp", "3"], "does not divide 8 devices"),
    (["--gpus", "16", "--tp", "16"], "spans nodes"),
    (["--schedule", "zig"], "--schedule: 1f1b, gpipe or interleaved:V"),
    (["--pp", "8"], "has 4 layers; --pp 8 stages need one each at least"),
    (["--gpus", "8", "--nodes", "1"], "not both"),
    (["--jobs", "3"], "--jobs 3 must divide the 8 devices"),
    (["--microbatch", "3"], "not a multiple of dp x microbatch"),
    (["--sequence-parallel"], "--sequence-parallel splits along the sequence over the tensor-parallel group; it "
                              "needs --tp 2 or more (got --tp 1)"),
])
def test_bad_options_get_one_line(args, msg, capsys):
    rc, out = _hwsim(capsys, *["train", SMALL, "--global-batch", "16", *args])
    assert rc == 2, out
    assert msg in out and out.count("\n") == 1


@pytest.mark.parametrize("body,msg", [
    ("base: dgx-a100\ninter: {bandwidth_gbs: -1}\n", "inter.bandwidth_gbs: must be >= 1e-06, got -1"),
    ("base: dgx-a100\nfoo: 1\n", "unknown field 'foo' for System"),
    ("base: nope\n", "base: must name a preset (dgx-a100"),
    ("base: dgx-a100\ndevice: nope\n", "nope"),
    ("base: dgx-a100\nintra: {kind: mesh}\n", "intra.kind"),
    ("[1, 2\n", "sys.yaml"),
])
def test_bad_system_files_get_one_line(tmp_path, body, msg, capsys):
    p = tmp_path / "sys.yaml"
    p.write_text(body)
    rc, out = _hwsim(capsys, *["train", SMALL, "--system", str(p), "--global-batch", "16"])
    assert rc == 2, out
    assert msg in out and out.count("\n") == 1 and str(p) in out


def test_system_file_overrides_a_fabric_field(tmp_path):
    p = tmp_path / "slow.yaml"
    p.write_text("base: dgx-a100\ninter: {bandwidth_gbs: 12.5}\n")
    s = resolve_system(str(p))
    assert s.inter.bandwidth_gbs == 12.5 and s.inter.latency_us == DGX.inter.latency_us and s.name == "slow"
    assert s.inter.source.endswith("(overridden in slow.yaml: bandwidth_gbs)")
    sys = s.with_devices(16)
    # the base's achieved fraction stays (24 of 25 GB/s): 12.5 GB/s line rate moves 12 GB/s
    assert Collectives(sys).run("p2p", [0, 8], 1e6) == pytest.approx(IB_A + 1e6 / 12e3, rel=1e-9)
    p.write_text("base: dgx-a100\ninter: {bandwidth_gbs: 12.5, efficiency: 1.0}\n")
    line = resolve_system(str(p)).with_devices(16)
    assert Collectives(line).run("p2p", [0, 8], 1e6) == pytest.approx(IB_A + 1e6 / 12.5e3, rel=1e-9)


def test_systems_command_lists_presets(capsys):
    rc, out = _hwsim(capsys, *["systems"])
    assert rc == 0
    for name in PRESETS:
        assert name in out


def test_meta_lowering_is_the_real_one():
    """Parallel training lowers layers on the meta device: the same ops, shapes and graph as
    lowering the model with real tensors."""
    from workloads.spec import Lowering, _lower
    from workloads.zoo.transformer import build, family
    fam = family("gpt:2,128,4,32,512")
    how = Lowering(train=True, recompute="selective", precision="bf16-o2")
    got = [_lower("g", build(fam, 1, 2, meta=meta), "zoo:g", False, how) for meta in (True, False)]
    view = [[(o.name, o.kind, dict(o.dims), o.copies, o.steps, o.producers, o.phase,
              tuple((x.role, x.shape, x.bits) for x in o.operands)) for o in wl.ops] for wl in got]
    assert view[0] == view[1] and len(view[0]) > 50


def test_cnn_model_parallel_splits_output_channels(resnet50):
    """Krizhevsky's model parallelism by output channels on ResNet-50: every conv and the fc
    layer do half their work at tp 2 (forward and both gradients), each one's output is
    all-gathered in the forward and each input gradient all-reduced in the backward."""
    from torch import nn

    from workloads.zoo import ZOO
    model, _ = ZOO["resnet50"].load()(1)
    layers = sum(isinstance(mod, (nn.Conv2d, nn.Linear)) for mod in model.modules())
    _, r1, _ = resnet50.regions(4, 1, "none")
    _, r2, _ = resnet50.regions(4, 2, "none")
    assert sum(r.macs for r in r2.values()) == sum(r.macs for r in r1.values()) / 2
    kinds = [k for r in r2.values() for k in r.comm_kinds]
    fwd = sum(len(r.fwd_comm) for r in r2.values())
    assert fwd == layers and kinds.count("all_gather") == layers
    assert kinds.count("allreduce") == layers - 1          # the first conv's input needs no gradient


# ---- uneven pipelines (issue 37) ---------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5), extra=st.data(), layers=st.integers(1, 12), b=st.floats(0.5, 5))
def test_the_balanced_partition_is_the_best_of_every_split(n, extra, layers, b):
    """Greedy filling equals the brute-force minimum of the slowest chunk over every split
    of the layers (each chunk at least one)."""
    import itertools
    if layers < n:
        with pytest.raises(HwsimError, match="cannot fill"):
            T.partition(layers, [0.0] * n, b)
        return
    e = [extra.draw(st.floats(0, 20)) for _ in range(n)]
    got = T.partition(layers, e, b)
    assert sum(got) == layers and min(got) >= 1
    best = min(max(e[i] + c[i] * b for i in range(n))
               for c in itertools.product(range(1, layers + 1), repeat=n) if sum(c) == layers)
    assert max(e[i] + got[i] * b for i in range(n)) == pytest.approx(best)


def test_bloom_70_layers_on_12_stages_run_balanced(capsys):
    """BLOOM-176B's 70 layers over 12 stages (Jean Zay, 384 GPUs): the embedding and the
    250k-token head make the first and last stages cheaper by fewer layers: 5 + 10 x 6 + 5."""
    args = ["train", "gpt:70,14336,112,2048,250680", "--gpus", "384", "--tp", "4", "--pp", "12", "--global-batch",
            "2048", "--microbatch", "2", "--recompute", "full", "--zero", "1", "--schedule", "1f1b", "--format", "json"]
    assert cli_main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["stage_layers"] == [5] + [6] * 10 + [5] and s["fits"]
    # a stated split runs as stated, and a wrong one is refused in one line
    assert cli_main(args + ["--stage-layers", "6,6,6,6,6,6,6,6,6,6,5,5"]) == 0
    stated = json.loads(capsys.readouterr().out)
    assert stated["stage_layers"] == [6] * 10 + [5, 5] and stated["step_time_s"] >= s["step_time_s"]
    for bad, words in (("6,6", "12 counts >= 1"), ("7,6,6,6,6,6,6,6,6,6,6,5", "= 72 layers; gpt:70")):
        assert cli_main(args + ["--stage-layers", bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--stage-layers" in err and words in err, err

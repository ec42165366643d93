"""Compression passes with independently derived numbers, and real accuracy on digits."""

import numpy as np
import pytest
import torch
from torch import nn

from workloads import HwsimError
from workloads.compress import compress, compressed_trace, plan_from_dict
from workloads.compress import prune as P
from workloads.compress import winograd as W
from workloads.compress.huffman import code_lengths, encoded_bits
from workloads.compress.lowrank import split_conv, svd_linear
from workloads.compress.quantize import binary, fixed_point, kmeans_share, ternary
from workloads.compress.storage import layer_storage, relative_indices, totals
from workloads.compress.train import accuracy, distill, train
from workloads.zoo.lenet import LeNet300


def test_huffman_code_lengths():
    lens = code_lengths({"a": 5, "b": 2, "c": 1, "d": 1})
    assert lens == {"a": 1, "b": 2, "c": 3, "d": 3}
    assert encoded_bits("aaaaabbcd") == 5 * 1 + 2 * 2 + 3 + 3


def test_relative_indices_match_the_eie_example():
    col = np.array([0, 0, 1, 2] + [0] * 18 + [3])
    stream, fillers = relative_indices(col != 0, 4)
    assert stream.tolist() == [15, 2, 0, 2] and fillers == 1   # the filler's 15, then 2, 0, 2


def test_layer_storage_by_hand():
    w = np.zeros(20)
    w[[0, 1, 19]] = [0.5, -0.5, 0.25]
    s = layer_storage("x", w, index_bits=2, weight_bits=2)
    # gaps 0, 0, 17 -> 17 // 4 = 4 fillers; 7 entries
    assert (s.entries, s.fillers) == (7, 4)
    assert s.bits_p == pytest.approx(7 * (32 + 2) / 20)
    assert s.bits_pq == pytest.approx((7 * (2 + 2) + 4 * 32) / 20)


def test_weight_sharing_ratio_from_the_paper():
    # Deep Compression (Han et al., ICLR 2016, Sec. 3): 16 dense weights shared through 4
    # centroids compress 3.2x. The project's storage accounting, on 16 non-zero weights with
    # no index stream (dense) and a 2-bit codebook, must give the paper's figure.
    rng = np.random.default_rng(3)
    w = rng.choice([-1.5, -0.5, 0.5, 1.5], 16) + rng.normal(0, 0.01, 16)
    cb, idx = kmeans_share(w, 2)
    s = layer_storage("fig3", cb[idx], index_bits=0, weight_bits=2, codes=idx)
    assert totals([s])["ratio_pq"] == pytest.approx(3.2)
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(-1, 0.05, 8), rng.normal(1, 0.05, 8)])
    cb, idx = kmeans_share(v, 1)                    # 2 clusters, linear init at min/max
    assert sorted(np.round(cb, 1)) == [-1.0, 1.0] and len(set(idx[:8])) == 1 and len(set(idx[8:])) == 1


def test_first_principles_filler_rate():
    # kept positions uniform at density p: a gap exceeds 2^b - 1 = 15 with probability
    # q = (1-p)^16 per 16 zeros, so fillers per kept weight = q / (1 - q)
    p, n = 0.09, 2_000_000
    rng = np.random.default_rng(1)
    w = (rng.random(n) < p) * rng.standard_normal(n)
    s = layer_storage("fc", w, 4, 5)
    q = (1 - p) ** 16
    assert s.entries / np.count_nonzero(w) == pytest.approx(1 + q / (1 - q), rel=0.01)
    t = totals([s])
    assert t["ratio_p"] == pytest.approx(32 / (p * (1 + q / (1 - q)) * 36), rel=0.01)


def test_quantizers():
    q, frac = fixed_point(np.array([0.3, -1.7]), 8)
    assert frac == 5 and np.allclose(q * 32, np.round(q * 32))          # max 1.7 needs 1 int bit + sign
    w = np.array([0.05, -0.9, 0.6, -0.02, 0.3])
    wt, alpha, delta = ternary(w)
    assert delta == pytest.approx(0.7 * np.abs(w).mean())
    assert set(np.round(np.abs(wt[wt != 0]), 12)) == {round(alpha, 12)}
    assert alpha == pytest.approx(np.mean([0.9, 0.6, 0.3]))   # delta = 0.7 * 0.374 = 0.262
    wb, a = binary(w)
    assert set(np.abs(wb)) == {a}


def test_low_rank_exact_at_full_rank_and_smaller_below():
    torch.manual_seed(0)
    lin = nn.Linear(20, 12)
    x = torch.randn(5, 20)
    full = svd_linear(lin, rank=12)
    assert torch.allclose(full(x), lin(x), atol=1e-5)
    low = svd_linear(lin, energy=0.8)
    assert low[0].out_features < 12
    conv = nn.Conv2d(4, 6, 3, padding=1)
    xi = torch.randn(2, 4, 9, 9)
    assert torch.allclose(split_conv(conv, rank=12)(xi), conv(xi), atol=1e-4)   # rank <= min(C*R, K*S) = 12
    s = split_conv(conv, rank=3)
    assert s[0].out_channels == 3
    # batch 2, 9 x 9 outputs (padding 1 kept along each split axis): the 4 -> 3 channel 3 x 1
    # conv, then the 3 -> 6 channel 1 x 3 conv, against the 4 -> 6 channel 3 x 3 conv
    from workloads.lower import lower
    assert lower(s, xi).macs == 2 * 9 * 9 * (3 * 4 * 3 + 6 * 3 * 3)        # 14,580
    assert lower(conv, xi).macs == 2 * 9 * 9 * 6 * 4 * 3 * 3                # 34,992


@pytest.mark.parametrize("m, ratio", [(2, 2.25), (4, 4.0)])
def test_winograd_equals_direct_and_saves_the_formula(m, ratio):
    rng = np.random.default_rng(m)
    x, w = rng.standard_normal((2, 5, 12, 8)), rng.standard_normal((7, 5, 3, 3))
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    np.testing.assert_allclose(W.conv2d(x, w, m), ref, atol=1e-10)
    wino, direct = W.multiplies(m, 1, 1, 1)
    assert direct / wino == ratio
    from workloads.build import conv_op
    from workloads.trace import Workload
    wl = Workload("c", (conv_op("c", 1, 16, 24, 24, 32, 3, 3, pad=1),))
    low = W.lower(wl, m)
    gemm = low["c.wino_gemm"]
    assert gemm.macs == (24 // m) ** 2 * 16 * 32 * (m + 2) ** 2
    assert wl.macs / low.macs == ratio
    assert [o.name for o in low.ops] == ["c.wino_in", "c.wino_gemm", "c.wino_out"]


@pytest.fixture(scope="module")
def trained(trained_lenet300):
    return trained_lenet300


def test_digits_prune_to_10pct_and_share_5_bits_keeps_accuracy(trained):
    import copy
    net, data = trained
    dense = accuracy(net, data[2], data[3])
    assert dense > 0.95
    res = compress(copy.deepcopy(net), plan_from_dict({"default": {"keep": 0.1, "weight_bits": 5}}), data=data)
    t = res.report()["total"]
    assert t["accuracy_before"] == pytest.approx(dense)
    assert t["accuracy"] >= dense - 0.01              # within 1 point after retraining
    assert t["keep"] == pytest.approx(0.1, abs=0.001)
    for name, s in res.shared.items():
        w = res.model.get_submodule(name).weight.detach()
        assert len(torch.unique(w[w != 0])) <= 32        # 5-bit codebook
    # the compressed trace carries density, codebook and index width
    wl = compressed_trace(res, data[2][:1], "lenet300")
    w1 = wl["fc1"].operand("weight")
    assert (w1.dtype, w1.bits) == ("index", 5) and w1.codebook is not None
    assert w1.density == pytest.approx(0.1, abs=0.001)


def test_pruning_schedules(trained):
    import copy
    net, data = trained
    m = copy.deepcopy(net)
    P.magnitude_prune(m, 0.5, structured=True)
    P.make_permanent(m)
    rows = (m.fc1.weight.abs().sum(1) == 0).sum().item()
    assert rows == 150                                    # half of fc1's 300 output rows
    g = copy.deepcopy(net)
    P.magnitude_prune(g, 0.2, scope="global")
    P.make_permanent(g)
    kept = sum(int((mod.weight != 0).sum()) for mod in P.prunable(g).values())
    total = sum(mod.weight.numel() for mod in P.prunable(g).values())
    assert kept / total == pytest.approx(0.2, abs=1e-4)
    it = P.iterative(copy.deepcopy(net), [0.5, 0.25], lambda mm: train(mm, data, epochs=2))
    assert (it.fc1.weight != 0).float().mean().item() == pytest.approx(0.25, abs=1e-3)
    d = P.dense_sparse_dense(copy.deepcopy(net), 0.3, lambda mm, lr: train(mm, data, epochs=3, lr=lr))
    assert (d.fc1.weight != 0).float().mean().item() > 0.9     # re-densified
    assert accuracy(d, data[2], data[3]) > 0.9


def test_distillation_trains_a_small_student(trained):
    teacher, data = trained
    torch.manual_seed(1)
    student = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))
    distill(student, teacher, data, epochs=40, lr=3e-3)
    assert accuracy(student, data[2], data[3]) > 0.9


@pytest.mark.parametrize("plan, message", [
    ({"default": {"keep": 0}}, "keep: must be a number in (0, 1]"),
    ({"default": {"keep": 1.5}}, "keep: must be a number in (0, 1]"),
    ({"layers": {"fc9": {"keep": 0.5}}}, "unknown layer(s) fc9"),
    ({"default": {"weight_bits": 0}}, "weight_bits: must be an integer in 1..32"),
    ({"default": {"kept": 0.5}}, "kept: unknown field; did you mean keep?"),
])
def test_bad_plans(plan, message):
    with pytest.raises(HwsimError) as e:
        compress(LeNet300(in_size=8), plan_from_dict(plan))
    assert message in str(e.value)


def test_cli_json(capsys):
    import json

    from analysis.cli import main
    assert main(["compress", "lenet300", "--prune", "0.9", "--share-bits", "4", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"name", "weights", "keep", "weight_bits", "index_bits", "bits_p", "bits_pq", "bits_pqh"} <= set(doc["layers"][0])
    # first principles, as in test_first_principles_filler_rate: LeNet-300-100's 784x300,
    # 300x100 and 100x10 weights, magnitude-pruned at random initialisation to p = 0.1, keep
    # positions spread uniformly; with 4-bit relative indices a gap overflows with
    # q = 0.9^16, so each kept weight is 1 / (1 - q) stored entries: P stores them as 32 + 4
    # bits, P+Q as 4 + 4 bits plus a 16 x 32-bit codebook per layer
    n, p, q = 784 * 300 + 300 * 100 + 100 * 10, 0.1, 0.9 ** 16
    assert [(lay["name"], lay["weights"], lay["keep"]) for lay in doc["layers"]] == \
        [("fc1", 784 * 300, p), ("fc2", 300 * 100, p), ("fc3", 100 * 10, p)]
    entries = n * p / (1 - q)
    assert doc["total"]["ratio_p"] == pytest.approx(32 * n / (entries * 36), rel=0.01)                # 7.24
    assert doc["total"]["ratio_pq"] == pytest.approx(32 * n / (entries * 8 + 3 * 16 * 32), rel=0.01)  # 32.4


def test_cli_compress_and_winograd_options(tmp_path, capsys):
    import io

    import pandas as pd

    from analysis.cli import main
    plan = tmp_path / "p.yaml"
    plan.write_text("default: {keep: 0.1, weight_bits: 4, index_bits: 4}\n")
    assert main(["simulate", "lenet300", "--arch", "eie-64", "--compress", str(plan), "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df.set_index("name").loc["fc1", "weight_density"] == pytest.approx(0.1, abs=1e-3)
    assert main(["lower", "conv:1,16,24,24,32,3,3,1,1", "--winograd", "4", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df[df.name == "TOTAL"].macs.item() * 4 == 24 * 24 * 16 * 32 * 9


def test_activation_quantisation(trained):
    import copy
    net, data = trained
    dense = accuracy(net, data[2], data[3])
    res = compress(copy.deepcopy(net), plan_from_dict({}), data=data, act_bits=8)
    assert res.report()["total"]["accuracy"] >= dense - 0.01          # 8-bit fixed point is near lossless
    coarse = compress(copy.deepcopy(net), plan_from_dict({}), data=data, act_bits=3)
    assert coarse.report()["total"]["accuracy"] < res.report()["total"]["accuracy"]
    wl = compressed_trace(res, data[2][:1], "lenet300")
    assert {op.operand("input").bits for op in wl.ops if op.is_gemm} == {8}
    # without weight sharing, P+Q and P+Q+H equal P (no codebook is charged)
    s = res.report()["layers"][0]
    assert s["bits_pq"] == s["bits_p"] == s["bits_pqh"]


def test_compression_runs_on_one_thread_and_restores_the_count():
    """Accuracies and k-means codebooks must not depend on the core count (issue 17): the
    compress command trains and clusters on one torch thread and one BLAS thread."""
    import torch
    from threadpoolctl import threadpool_info

    from workloads.compress.train import one_thread

    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before


# --- fast paths equal their straightforward forms -------------------------------------------

def _kmeans_reference(values, bits, iters=30, k=None):
    """kmeans_share as first written: every value searched among the midpoints, sums by bincount."""
    v = np.asarray(values, dtype=np.float64).ravel()
    k = min(k or 2 ** bits, max(1, v.size))
    cents = np.linspace(v.min(), v.max(), k) if v.size else np.zeros(k)
    idx = np.zeros(v.size, dtype=np.int64)
    for _ in range(iters):
        order = np.argsort(cents)
        c = cents[order]
        mids = (c[1:] + c[:-1]) / 2
        idx = order[np.searchsorted(mids, v)]
        sums = np.bincount(idx, weights=v, minlength=k)
        cnt = np.bincount(idx, minlength=k)
        new = np.where(cnt > 0, sums / np.maximum(cnt, 1), cents)
        if np.allclose(new, cents):
            break
        cents = new
    return cents, idx


def _values(data, n):
    """Test values: few distinct (ties, values on midpoints, -0.0), float32, wide-range float64."""
    from hypothesis import strategies as st

    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    kind = data.draw(st.sampled_from(["ties", "float32", "float64", "wide", "non-finite"]))
    if kind == "ties":
        return rng.choice(np.array([-0.0, 0.0, 0.5, 1.0, 1.5, 2.0, -3.0, 4.0, 2.0 ** -30]), n)
    if kind == "float32":                                       # like kept weights: exact sums
        return (rng.choice([-1.0, 1.0], n) * rng.uniform(0.05, 1, n)).astype(np.float32)
    if kind == "float64":
        return rng.normal(0, 1, n)
    if kind == "wide":
        return rng.choice([-1.0, 1.0], n) * 2.0 ** rng.integers(-60, 60, n) * rng.choice([1.0, 1.0 + 2 ** -52], n)
    return np.append(rng.normal(0, 1, n), data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e308])))


def test_kmeans_fast_path_equals_the_direct_iterations():
    """kmeans_share (values sorted once, runs summed where sums are exact) returns the same
    codebook, bit for bit, and the same index of every value as the direct iterations."""
    from hypothesis import given, settings, strategies as st

    from workloads.codebook import _sums_exact

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.data())
    def check(data):
        v = _values(data, data.draw(st.integers(0, 3000)))
        bits, iters = data.draw(st.integers(1, 6)), data.draw(st.integers(0, 30))
        k = data.draw(st.sampled_from([None, 1, 2, 3, 7, 15]))
        with np.errstate(all="ignore"):                         # inf and nan warn in both
            got, want = kmeans_share(v, bits, iters, k), _kmeans_reference(v, bits, iters, k)
        assert got[0].tobytes() == want[0].tobytes() and np.array_equal(got[1], want[1])

    check()
    # the values above take all three ways: runs summed, bincount's order, direct iterations
    rng = np.random.default_rng(0)
    assert _sums_exact(rng.uniform(0.05, 1, 3000).astype(np.float32)) and _sums_exact(np.array([0.5, -0.0, 2.0 ** -30]))
    assert _sums_exact(rng.normal(0, 1, 100)) is False and _sums_exact(np.array([1.0, 1.0 + 2 ** -52, 2.0])) is False
    assert _sums_exact(np.array([1.0, np.nan])) is None and _sums_exact(np.array([1e308, 1.0])) is None


def test_unsorted_l1_pruning_masks_equal_torchs():
    """UnsortedL1Unstructured (topk with sorted=False) prunes exactly the weights
    torch.nn.utils.prune.l1_unstructured prunes, ties included: per layer, again on an
    already pruned layer, and globally; on both of topk's CPU paths (partial sort, nth_element)."""
    import torch.nn.utils.prune as tprune
    from hypothesis import given, settings, strategies as st

    def amount(data, n):
        return data.draw(st.one_of(st.floats(0, 1), st.integers(0, n), st.sampled_from([1 / 128, 0.9])))

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.data())
    def check(data):
        shape = data.draw(st.sampled_from([(1, 1), (3, 7), (16, 40), (64, 70), (5, 3, 3, 3)]))
        v = _values(data, int(np.prod(shape)))[:int(np.prod(shape))]
        w = torch.tensor(v.reshape(shape), dtype=torch.float32)
        a, b = (nn.Linear(1, 1, bias=False) for _ in range(2))
        for m in (a, b):
            m.weight = nn.Parameter(w.clone())
        first, second = amount(data, w.numel()), data.draw(st.floats(0, 1))
        tprune.l1_unstructured(a, "weight", amount=first)
        P.UnsortedL1Unstructured.apply(b, "weight", amount=first)
        assert torch.equal(a.weight_mask, b.weight_mask)
        tprune.l1_unstructured(a, "weight", amount=second)
        P.UnsortedL1Unstructured.apply(b, "weight", amount=second)
        assert torch.equal(a.weight_mask, b.weight_mask) and torch.equal(a.weight, b.weight)

        g, h = (nn.Sequential(nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)) for _ in range(2))
        for m in (g, h):
            m[0].weight, m[1].weight = nn.Parameter(w.clone()), nn.Parameter(w.flip(0).clone())
        both = amount(data, 2 * w.numel())
        tprune.global_unstructured([(g[0], "weight"), (g[1], "weight")], tprune.L1Unstructured, amount=both)
        tprune.global_unstructured([(h[0], "weight"), (h[1], "weight")], P.UnsortedL1Unstructured, amount=both)
        assert torch.equal(g[0].weight_mask, h[0].weight_mask) and torch.equal(g[1].weight_mask, h[1].weight_mask)

    check()


def test_shared_weights_are_the_codebook_at_kept_weights_and_zero_elsewhere():
    from workloads.compress.share import share_weights

    m = nn.Linear(30, 20)
    with torch.no_grad():
        m.weight[m.weight.abs() < 0.1] = -0.0
    pruned = m.weight == 0
    s = share_weights({"fc": m}, {"fc": 3})["fc"]
    assert torch.equal(m.weight, s.weight()) and not torch.signbit(m.weight[pruned]).any()


def test_compress_reports_progress_per_layer():
    """A long compress shows progress (hwsim compress wraps it in a terminal counter): one step
    after pruning, one per layer shared, one per layer whose storage is counted."""
    from workloads.compress.job import compress_model
    from workloads.progress import STEP
    ticks = []
    token = STEP.set(lambda: ticks.append(1))
    try:
        compress_model("lenet300", prune=0.9, share_bits=4)
    finally:
        STEP.reset(token)
    assert len(ticks) == 1 + 3 + 3          # LeNet-300-100: three linear layers

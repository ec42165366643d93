"""FlashAttention kernels block by block (sim.gpu.flash): a block's pipes by hand, the causal
mask's blocks by brute force over (query, key) pairs, CTAs over SMs by hand, the kernel
choice and its refusals."""

import dataclasses
import math

import pytest

from sim.gpu import PRESETS
from sim.gpu.flash import Tiles, block_cycles, cta_blocks, flash_run, kernel_for, num_splits, place, tiles
from workloads.errors import HwsimError

H100, A100 = PRESETS["h100"], PRESETS["a100"]


def test_an_fa3_block_on_an_h100_by_hand():
    """d 128, 128 x 176 in clusters of 2 (FA3's release). The H100's 989.4 dense fp16 TFLOPS over
    132 SMs at 1830 MHz are 4,096 FLOP per clock per SM; 0.9 of it (the GEMM model's MMA
    efficiency): the GEMMs' 4 x 128 x 176 x 128 FLOPs take 3,128.9 cycles. Softmax: 22,528 exp2
    at 16 per clock (1,408) and 3.5 FP32 instructions per score plus the 128 x 128 rescale of O
    at 128 lanes (744): 2,152 cycles. Half of the shorter is exposed: 4,204.9. Its K and V,
    2 x 176 x 128 x 2 bytes shared by 2 CTAs, at 9.8 TB/s over 132 SMs take far less."""
    assert 989.4e12 / 132 / 1830e6 == pytest.approx(4096, rel=1e-3)
    tensor = 4 * 128 * 176 * 128 / (4096 * 0.9)
    soft = 128 * 176 / 16 + (3.5 * 128 * 176 + 128 * 128) / 128
    want = max(tensor, soft) + 0.5 * min(tensor, soft)
    assert want == pytest.approx(4204.9, abs=0.1)
    d, t = tiles("fa3", H100, 128, False, False)
    assert (d, t) == (128, Tiles(128, 176, 2))
    assert block_cycles(H100, "fp16", "fa3", t, d, False, False) == pytest.approx(want)
    l2 = 2 * 176 * 128 * 2 / 2 / (9800e9 / 1830e6 / 132)
    assert l2 < want / 3


def test_fa2_on_hopper_issues_mma_sync_at_its_measured_share_of_the_rate():
    """mma.sync on an H800: 490.7 of 756.5 TFLOPS (Luo et al. 2024 Table VII), about 2/3."""
    d, t = tiles("fa2", H100, 128, False, False)
    assert t == Tiles(128, 64)
    tensor = 4 * 128 * 64 * 128 / (4096 * 0.9 * 490.7 / 756.5)
    soft = 128 * 64 / 16 + (3.5 * 128 * 64 + 128 * 128) / 128
    assert block_cycles(H100, "fp16", "fa2", t, d, False, False) == pytest.approx(tensor + 0.5 * soft)


def _brute(lq, lk, t, backward, causal):
    """(blocks, masked blocks) per CTA from every (query, key) pair the mask keeps (query q sees
    key k when k <= q + lk - lq: the bottom-right alignment)."""
    own, other = (t.bc, t.br) if backward else (t.br, t.bc)
    n_own, n_other = math.ceil((lk if backward else lq) / own), math.ceil((lq if backward else lk) / other)
    out = []
    for i in range(n_own):
        blocks = masked = 0
        for j in range(n_other):
            qs = range(j * other, min((j + 1) * other, lq)) if backward else range(i * own, min((i + 1) * own, lq))
            ks = range(i * own, min((i + 1) * own, lk)) if backward else range(j * other, min((j + 1) * other, lk))
            kept = sum(1 for q in qs for k in ks if not causal or k <= q + lk - lq)
            if kept:
                blocks += 1
                masked += kept < len(qs) * len(ks)
        out.append((blocks, masked))
    return out


@pytest.mark.parametrize("lq,lk,br,bc", [(512, 512, 128, 176), (300, 300, 64, 128), (1000, 1000, 192, 128),
                                         (256, 256, 128, 80), (129, 129, 128, 128), (257, 257, 64, 128),
                                         (200, 520, 128, 64), (1, 300, 64, 128)])
@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_a_ctas_blocks_are_the_ones_its_mask_keeps(lq, lk, br, bc, backward, causal):
    t = Tiles(br, bc)
    assert cta_blocks(lq, lk, t, backward, causal) == _brute(lq, lk, t, backward, causal)


def test_ctas_go_to_the_sm_that_frees_first():
    # 2 SMs: 3 | 3, then 3 -> the first (6), 1 -> the second (4), 1 -> the second (5): done at 6
    assert place([3, 3, 3, 1, 1], 2) == 6
    assert place([5, 1, 1, 1, 1, 1], 2) == 5
    assert place([2, 2], 8) == 2


def test_the_kernel_each_card_runs_and_what_is_refused():
    assert kernel_for(H100, "auto", "bf16") == "fa3" and kernel_for(A100, "auto", "fp16") == "fa2"
    assert kernel_for(H100, "auto", "tf32") == "fa2" and kernel_for(H100, "fa2", "fp16") == "fa2"
    with pytest.raises(HwsimError, match="needs a Hopper GPU"):
        dataclasses.replace(A100, attention_kernel="fa3")
    with pytest.raises(HwsimError, match="head dimensions up to 256"):
        tiles("fa2", A100, 320, False, False)
    assert tiles("fa3", H100, 80, False, False)[0] == 128       # padded to the next head dimension
    assert tiles("fa2", A100, 80, False, False)[0] == 96        # FA2's 32-multiples


def test_fa2s_split_heuristic_by_hand():
    """FA2's num_splits_heuristic: 8 CTAs on 132 SMs with 47 key blocks. Splits s whose key
    blocks per split (ceil(47 / s)) differ from s - 1's are eligible; wave efficiency is
    8 s / 132 over its ceiling; the fewest splits within 85% of the best: 16 (128 CTAs, 0.97
    of a wave; 3 key blocks each). A grid at 80% of the SMs is not split."""
    eff = {s: (8 * s / 132) / math.ceil(8 * s / 132) for s in range(1, 48)
           if s == 1 or math.ceil(47 / s) != math.ceil(47 / (s - 1))}
    want = min(s for s, e in eff.items() if e >= 0.85 * max(eff.values()))
    assert want == 16
    assert num_splits(8, 132, 47) == want and num_splits(106, 132, 47) == 1


def test_decoding_packs_the_query_heads_of_a_key_head_and_is_memory_bound():
    """Llama 3 8B decoding one token at 8,192 keys (32 query heads over 8 key heads): one CTA
    per key head over 4 rows, split over the SMs; its work stays the key blocks of the 8 heads
    and the blocks take less than its 33.6 MB of K and V take from HBM."""
    dims = {"B": 1, "H": 32, "Hkv": 8, "Lq": 1, "Lk": 8192, "E": 128, "Ev": 128, "causal": 1, "backward": 0}
    run = flash_run(H100, "fp16", "auto", dims, 1)
    n = math.ceil(8192 / run.tiles.bc)
    assert run.splits > 1 and 8 * n <= run.blocks < 8 * (n + run.splits)
    assert run.ctas <= 132
    kv = 2 * 8 * 8192 * 128 * 2
    assert kv == pytest.approx(33.6e6, rel=0.01)
    assert run.cycles < kv / H100.dram_bytes_per_clk


def test_a_causal_attention_counts_half_the_pairs_as_useful_work():
    from sim.gpu.simulate import simulate_op
    from validation.gpu import attention_workload
    op = attention_workload(1, 16, 512, 128, 1, 0).ops[0]
    r = simulate_op(op, H100)
    assert r.useful_macs == pytest.approx(op.macs * (512 + 1) / (2 * 512))
    assert r.extra.tile.startswith("fa3 128x128")
    # a chunk of 200 queries after 320 cached keys (520 in all): the pairs the mask keeps, counted one by one
    import dataclasses as dc
    chunk = dc.replace(op, dims={**op.dims, "Lq": 200, "Lk": 520})
    kept = sum(1 for q in range(200) for k in range(520) if k <= q + 320)
    assert simulate_op(chunk, H100).useful_macs == pytest.approx(chunk.macs * kept / (200 * 520))


def test_causal_halves_the_work_and_long_sequences_fill_the_sms():
    def tflops(L, causal):
        dims = {"B": 1, "H": 16, "Hkv": 16, "Lq": L, "Lk": L, "E": 128, "Ev": 128, "causal": causal, "backward": 0}
        r = flash_run(H100, "fp16", "fa3", dims, 1)
        return 4 * 16 * L * L * 128 / (2 if causal else 1) / (r.cycles / 1830e6) / 1e12
    assert tflops(16384, 1) < tflops(16384, 0) < 4096 * 0.9 * 132 * 1830e6 / 1e12
    assert tflops(16384, 1) / tflops(16384, 0) > 0.9          # blocks skipped, not computed and masked


def test_a_backward_is_three_kernels_and_moves_the_accumulators_bytes():
    """FA2/FA3's backward: a preprocess reads O and dO and writes D (fp32 per row) and zeroes
    dQ's fp32 accumulator; the main kernel reads Q, K, V, O, dO and the row statistics and
    writes dQ, dK, dV; a postprocess reads the accumulator and writes dQ. Batch 2, 4 heads,
    256 tokens, head dim 64, fp16: elements 2 x 4 x 256 x 64 = 131,072 per tensor."""
    from sim.gpu.simulate import simulate_op
    from validation.gpu import attention_workload
    n, rows = 2 * 4 * 256 * 64, 2 * 4 * 256
    main = (n * 2 * 5 + rows * 4) + n * 2 * 3                   # Q, K, V, O, dO, lse in; dQ, dK, dV out
    pre = 2 * n * 2 + rows * 4 + n * 4
    post = n * 4 + n * 2
    r = simulate_op(attention_workload(2, 4, 256, 64, 0, 1).ops[0], A100)
    assert r.extra.dram_bytes == main + pre + post
    fwd = simulate_op(attention_workload(2, 4, 256, 64, 0, 0).ops[0], A100)
    assert fwd.extra.dram_bytes == n * 2 * 4 + rows * 4        # Q, K, V in; O and lse out


def test_fa2s_backward_block_on_an_a100_and_its_papers_63_percent():
    """d 128, 64 query x 128 key rows (FA2's release), A100: 312 TFLOPS over 108 SMs at 1410 MHz
    are 2,048 FLOP per clock per SM; the five GEMMs' 10 x 64 x 128 x 128 FLOPs at 0.9 of it take
    5,688.9 cycles; softmax again (8,192 exp2 at 16 per clock) and 4 FP32 instructions per score
    at 64 lanes: 1,024; half of it exposed: 6,200.9; P and dS through shared memory, 14 accesses
    of 2 bytes per score at 128 bytes per clock: 1,792 more. That is 64% of the peak, where
    FA2's paper reports its backward at up to 63% (Dao 2023, Sec. 1)."""
    assert 312e12 / 108 / 1410e6 == pytest.approx(2048, rel=0.01)
    d, t = tiles("fa2", A100, 128, True, False)
    assert t == Tiles(64, 128)
    want = 10 * 64 * 128 * 128 / (2048 * 0.9) + 0.5 * (64 * 128 / 16 + 4 * 64 * 128 / 64) + 14 * 64 * 128 * 2 / 128
    got = block_cycles(A100, "fp16", "fa2", t, d, True, False)
    assert got == pytest.approx(want)
    assert 10 * 64 * 128 * 128 / got / 2048 == pytest.approx(0.63, abs=0.02)

"""A workload as one TPU instruction stream (sim.systolic.program): decoupled weight reads
that run ahead into the gap before an op, and the host link, against hand-derived schedules."""

import dataclasses
import math

import pytest

from sim.systolic import PRESETS, SystolicArch, simulate
from sim.systolic.program import PCIE3_X16_BYTES_PER_S
from sim.systolic.counters import table3
from workloads import resolve
from workloads.build import gemm_op
from workloads.trace import Workload, chain

I8 = {"bits": 8, "dtype": "int"}


def _arch(**kw):
    # 4x4 weight-stationary array, activations on chip, 4 B/cycle of DRAM, one tile prefetched
    return SystolicArch(rows=4, cols=4, dataflow="ws", dram_bw_bytes_per_cycle=4.0, prefetch_depth=1,
                        ifmap_on_chip=True, **kw)


def _chain():
    return Workload("chain", tuple(chain([gemm_op("g0", 3, 4, 8, **I8), gemm_op("g1", 3, 3, 4, **I8)])))


def test_decoupled_reads_load_the_next_op_under_the_drain():
    """Alone (tests/test_tpu_counters.py), g0 (3x8 @ 8x4) takes 25 cycles, its second tile's
    16 B arriving at 12, and g1 (3x4 @ 4x3) 15: 3 cycles to load 12 B, a 4-cycle shift, the
    last output at 7 + 3 + 4 + 3 - 2 = 15. Decoupled, g1's load runs while g0 drains: the
    channel is idle from 12 to g1's start at 25, a 13-cycle head start, so g1's tile is
    there when it begins: shift 0..4, stream 4..7, last output 4 + 3 + 4 + 3 - 2 = 12."""
    alone = simulate(_chain(), _arch())
    dec = simulate(_chain(), _arch(decoupled_weight_reads=True))
    assert [o.cycles for o in alone.ops] == [25, 15] and alone.cycles == 40
    a, b = dec.ops
    assert (a.cycles, a.extra.channel_end, a.extra.head_start_cycles) == (25, 12, 0)
    assert (b.start_cycle, b.extra.head_start_cycles, b.cycles, b.extra.dram_wait_cycles) == (25, 13, 12, 0)
    assert dec.cycles == 37
    assert [o.extra.host_read_cycles for o in dec.ops] == [0, 0]


def test_the_host_link_brings_the_input_and_takes_the_output():
    """With a 4 B/cycle host link: g0's input, 3 x 8 int8 = 24 B, arrives in 6 cycles while
    its first tile (16 B, 4 cycles) loads; then shift 0..4, stream 4..7; the second tile,
    requested at 4, arrives at 8, shifts 8..12, streams 12..15; last output 12 + 3 + 4 + 4 - 2
    = 21: 6 + 21 = 27 cycles, its channel done at 6 + 8 = 14. g1 starts at 27 (13 idle
    channel cycles: its tile is there), takes 12 cycles, then sends its 3 x 3 B output back
    in ceil(9 / 4) = 3: 15. In all 42 cycles, 6 of them input stalls."""
    dec = simulate(_chain(), _arch(decoupled_weight_reads=True, host_link_bytes_per_cycle=4.0))
    a, b = dec.ops
    assert (a.extra.host_read_cycles, a.extra.head_start_cycles, a.cycles, a.extra.channel_end) == (6, 6, 27, 14)
    assert (b.start_cycle, b.extra.head_start_cycles, b.extra.host_write_cycles, b.cycles) == (27, 13, 3, 15)
    assert dec.cycles == 42
    t = table3(dec, 16, host=True)
    assert t["input_stall_%"] == pytest.approx(100 * 6 / 42)
    # the host transfers are array-idle cycles: rows 1, 4, 5 and 6 still total 100%
    assert t["array_active_%"] + t["weight_stall_%"] + t["weight_shift_%"] + t["non_matrix_%"] == pytest.approx(100)
    # without decoupled reads g0's first tile waits for the host read: 6 + 25 cycles
    plain = simulate(_chain(), _arch(host_link_bytes_per_cycle=4.0))
    assert [o.cycles for o in plain.ops] == [31, 15 + 3]


def test_tpu_v1_link_is_pcie_gen3_x16():
    # 16 lanes x 8 GT/s x 128/130 / 8 bits = 15.75 GB/s; 256 of every 282 TLP bytes are payload
    assert PCIE3_X16_BYTES_PER_S == pytest.approx(15.754e9 * 256 / 282, rel=1e-3)
    assert PRESETS["tpu-v1"].host_link_bytes_per_cycle == pytest.approx(PCIE3_X16_BYTES_PER_S / 700e6)


def test_mlp0_streams_its_weights_without_a_pause():
    """MLP0 on tpu-v1 (5 FC layers of 2000 x 2000 int8, batch 200): the 400,000 B input
    arrives over PCIe in R cycles while the weight FIFO fills with 4 tiles; from then the
    DDR3 channel never idles (every gap before a layer, its drain and ReLU, is shorter than
    the FIFO's 4 tiles), so the run is R, the weights' DDR3 time less the 4 tiles loaded
    under R, the last tile's shift-to-drain and ReLU, and R again for the output."""
    tpu = PRESETS["tpu-v1"]
    r = simulate(resolve("mlp0"), tpu)
    link = tpu.host_link_bytes_per_cycle
    bw = 34e9 / 700e6
    R = math.ceil(200 * 2000 / link)                                     # 19,579
    tile = 65536 / bw                                                     # 1349.3
    weights = 5 * 2000 * 2000 / bw                                        # 411,765
    last = 256 + (200 + 256 + 256 - 2)                                    # shift, stream and drain
    relu = math.ceil(200 * 2000 / 256)                                    # 1563
    hand = R + (weights - 4 * tile) + last + relu + R                     # 448,055
    assert r.cycles == pytest.approx(hand, rel=0.002)
    t = table3(r, tpu.pes, host=True)
    assert t["input_stall_%"] == pytest.approx(100 * R / r.cycles, rel=1e-9)
    # read-after-write: each ReLU waits for its layer's last outputs, 256 + 208 - 2 = 462
    # cycles after the last stream ends (the last tile is 2000 - 7 x 256 = 208 wide), and the
    # next layer waits for the ReLU (four of the five feed a layer; the last feeds the host)
    assert t["raw_stall_%"] == pytest.approx(100 * (5 * 462 + 4 * relu) / r.cycles, rel=1e-9)
    # every op's cycles are split: the array's (Table 3's rows) and the host link's
    busy = sum(o.extra.array_active_cycles + o.extra.weight_shift_cycles + o.extra.dram_wait_cycles
               + o.extra.drain_cycles + o.extra.vector_cycles + o.extra.host_read_cycles
               + o.extra.host_write_cycles for o in r.ops)
    assert busy == sum(o.cycles for o in r.ops)
    # the layerwise model pays each layer's first tile load and exposes its drain and ReLU
    alone = simulate(resolve("mlp0"), dataclasses.replace(tpu, decoupled_weight_reads=False,
                                                         host_link_bytes_per_cycle=0.0))
    assert alone.cycles > r.cycles - 2 * R


def test_engines_agree_on_a_whole_tpu_program():
    wl = resolve("lstm1", batch=8)
    fast, ref = (simulate(wl, PRESETS["tpu-v1"], engine=e) for e in ("fast", "cycles"))
    assert fast.rows() == ref.rows() and fast.cycles == ref.cycles


def test_only_the_request_input_crosses_the_host_link():
    """The host sends the workload's input (input_shape: 3 x 8 int8 = 24 B, 6 cycles at 4 B
    per cycle) before the first op; a constant op without producers (a causal mask, an
    embedding table) is the model's own data and reads nothing over the link; the last op's
    3 x 3 output (9 B) goes back in 3 cycles."""
    from workloads.build import vector_op
    g0 = gemm_op("g0", 3, 4, 8, **I8)
    mask = vector_op("mask", "elementwise", "tril", 64, **I8)
    g1 = dataclasses.replace(gemm_op("g1", 3, 3, 4, **I8), producers=("g0", "mask"))
    wl = Workload("masked", (g0, mask, g1), batch=3, input_shape=(3, 8))
    r = simulate(wl, _arch(decoupled_weight_reads=True, host_link_bytes_per_cycle=4.0))
    assert [o.extra.host_read_cycles for o in r.ops] == [6, 0, 0]
    assert [o.extra.host_write_cycles for o in r.ops] == [0, 0, 3]

"""``hwsim verify ... --layer`` and ``hwsim verify tpu-tile``: the command line over the TPU
tile and the EIE array (their checks against numpy and sim/ are in test_rtl_tile.py and
test_rtl_eie_layer.py); what does not apply is refused in one line, exit 2."""

from __future__ import annotations

import re

import pytest

from analysis.cli import main


def _run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_tile_random_trials(capsys):
    rc, out, _ = _run(capsys, "verify", "tpu-tile", "--trials", "3", "--size", "2", "3", "--seed", "4")
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 3 and all(": pass, " in x for x in lines)
    # each trial prints the tile's cycles and sim's: equal on a pass
    for x in lines:
        rtl, sim = re.search(r": (\d+) cycles \(sim (\d+)\)", x).groups()
        assert rtl == sim
        # the tile's coverage points hit; the first fold always waits for its load (a stall)
        assert "; coverage hits: weight_stall " in x


def test_a_conv_layer_through_the_tile(capsys):
    # a 5x5 image, 2 -> 3 channels, 3x3 kernel, stride 2, padding 1: 3 x 3 outputs of 3 channels
    rc, out, _ = _run(capsys, "verify", "systolic", "--layer", "conv:1,2,5,5,3,3,3,2,1:conv", "--size", "2", "3")
    assert rc == 0, out
    assert "GEMM 9x18 @ 18x3" in out and "outputs match (27 compared)" in out
    rtl, sim = re.search(r"cycles RTL ([\d,]+), sim ([\d,]+)", out).groups()
    assert rtl == sim
    # the tile's coverage points (rtl.tpu_tile.POINTS), every one listed with its hits
    from rtl.tpu_tile import POINTS
    line = next(x for x in out.splitlines() if x.startswith("  coverage: "))
    hits = dict(p.rsplit(" ", 1) for p in line[len("  coverage: "):].split(", "))
    assert list(hits) == list(POINTS) and int(hits["accumulate"].replace(",", "")) > 0


def test_an_eie_layer(capsys):
    rc, out, _ = _run(capsys, "verify", "eie-pe", "--layer", "lenet300:fc3", "--size", "4", "2")
    assert rc == 0, out
    assert "on 4 EIE PEs (queue depth 2, amaranth): 10x100" in out and "outputs match" in out
    rtl, sim = re.search(r"cycles RTL ([\d,]+), sim ([\d,]+)", out).groups()
    assert rtl == sim
    assert "coverage: queue_full" in out


@pytest.mark.parametrize("args, says", [
    (("tpu-tile", "--formal"), "tpu-tile has no formal proof"),
    (("dot", "--layer", "resnet18:fc"), "--layer runs systolic, tpu-tile or eie-pe"),
    (("systolic", "--layer", "resnet18:fc", "--trials", "2"), "--trials applies to random stimuli"),
    (("eie-pe", "--layer", "lenet300"), "--layer: MODEL:LAYER"),
    (("eie-pe", "--layer", "lenet300:fc3", "--backend", "cxxrtl"), "--backend cxxrtl does not drive the EIE array"),
    (("eie-pe", "--backend", "verilator"), "--backend verilator does not drive eie-pe"),
    (("systolic", "--layer", "resnet18:layer1.0.conv1", "--formal"), "--layer applies to co-simulation"),
])
def test_refusals(capsys, args, says):
    rc, _, err = _run(capsys, "verify", *args)
    assert rc == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_a_gemm_the_tile_refuses_is_drawn_again(capsys):
    # at 2x3, seed 0, trial 1's first draw has two folds whose stores sim/ requests in one
    # cycle, which the tile's store queue refuses (rtl.tile_sim.gemm_program): drawn again
    rc, out, _ = _run(capsys, "verify", "tpu-tile", "--trials", "2", "--size", "2", "3")
    assert rc == 0 and "(1 drawn before it refused by the tile)" in out.splitlines()[1]


def test_a_conv_prefix_is_checked_against_the_direct_convolution():
    # the first 2 of the conv's folds: partial sums over the first K tile's taps, from the
    # direct convolution with the later taps' weights zeroed (not from the im2col GEMM)
    from rtl.layer import run_systolic_layer, small_arch
    r = run_systolic_layer("conv:1,2,5,5,3,3,3,2,1", "conv", small_arch(2, 3), seed=1, folds_run=2)
    assert r.passed and r.folds_run == 2 < r.folds and r.outputs_compared > 0
    assert "partial sums compared" in r.note

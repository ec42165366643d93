"""The CLI as a user runs it: output columns and totals, traces, topology export, bad input."""

import subprocess

import pandas as pd
import pytest

from analysis.cli import main
from workloads import Workload
from workloads.scalesim_topo import read_topology, write_topology


def run(*args):
    """The CLI in process: ``main`` returns the status the installed command exits with
    (``sys.exit(main())``; tests/test_usercode.py and tests/test_cache.py run the command
    itself)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return subprocess.CompletedProcess(["hwsim", *args], rc, out.getvalue(), err.getvalue())


def test_lower_resnet18_csv_totals(capsys):
    assert main(["lower", "resnet18", "--format", "csv"]) == 0
    from io import StringIO
    df = pd.read_csv(StringIO(capsys.readouterr().out))
    for col in "name,op,phase,M,N,K,copies,steps,macs,weight_density,act_density,weight_bits,act_bits,producers".split(","):
        assert col in df.columns
    total = df[df.name == "TOTAL"].macs.item()
    # PyTorch's own count of the zoo model on the zoo's input: FlopCounterMode's FLOPs / 2
    # (convolutions and the fc; torchvision documents 1.81 GFLOPS, multiply-adds, for ResNet-18)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from workloads.zoo import ZOO
    model, x = ZOO["resnet18"].load()(batch=1)
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        model.eval()(x)
    assert total == fc.get_total_flops() // 2                  # 1,814,073,344
    assert df[df.name != "TOTAL"].macs.sum() == total


def test_lower_writes_a_trace_that_loads(tmp_path, capsys):
    out = tmp_path / "lstm.json"
    assert main(["lower", "lstm_lm", "--seq-len", "5", "-o", str(out), "--format", "json"]) == 0
    wl = Workload.load(out)
    assert (wl["lstm.weight_hh_l0"].steps, wl["lstm.weight_hh_l0"].copies) == (5, 1)
    assert main(["lower", str(out), "--format", "csv"]) == 0  # a trace is a MODEL too
    assert "lstm.weight_hh_l0" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["lower", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["lower", "gemm:4,0,4"], "N must be >= 1"),
    (["lower", "missing.json"], "cannot read trace"),
    (["lower", "resnet18", "--batch", "-1"], "--batch must be >= 1"),
    (["lower", "alexnet", "--seq-len", "3"], "no sequence length"),
    (["topology", "gemm:4,4,4", "-o", "x.csv", "--form", "bad"], "Invalid value"),
])
def test_bad_input_exits_2_without_traceback(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 4  # click's usage errors take four lines


def test_help_everywhere():
    for cmd in ([], ["lower"], ["models"], ["topology"]):
        r = run(*cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout


def test_models_lists_the_zoo():
    r = run("models")
    names = [line.split()[0] for line in r.stdout.splitlines()]
    for n in ("alexnet", "resnet50", "mobilenet_v2", "lstm_lm", "gru", "captioner", "lenet300", "lenet5",
              "mlp0", "cnn1", "eie-benchmarks"):
        assert n in names


def _scalesim_macs(row):
    """SCALE-Sim's own formula (topology_utils.topo_calc_hyperparams)."""
    import math
    _, H, W, R, S, C, K, s = row
    oh, ow = math.ceil((H - R + s) / s), math.ceil((W - S + s) / s)
    return oh * ow * R * S * C * K


def test_scalesim_topology_round_trip(tmp_path):
    from workloads import resolve
    wl = resolve("resnet18")
    p = write_topology(wl, tmp_path / "r18.csv")
    lines = p.read_text().splitlines()
    assert lines[0].startswith("Layer name,IFMAP Height") and all(l.endswith(",") for l in lines)
    rows = [[int(x) if x.isdigit() else x for x in l.split(",")[:-1]] for l in lines[1:]]
    assert sum(_scalesim_macs(r) for r in rows) == wl.macs - wl["fc"].macs + 512 * 1000
    back = read_topology(p)
    assert back.macs == wl.macs
    assert [op.name for op in back.ops] == [op.name for op in wl.ops if op.is_gemm]
    g = write_topology(wl, tmp_path / "r18g.csv", form="gemm")
    assert read_topology(g).macs == wl.macs


def test_scalesim_depthwise_and_errors(tmp_path):
    t = tmp_path / "dw.csv"
    t.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "Conv_DP, 114, 114, 3, 3, 32, 1, 1,\n"
                 "pw, 112, 112, 1, 1, 32, 64, 1, 1:4,\n")
    wl = read_topology(t)
    assert wl["Conv_DP"].macs == 112 * 112 * 32 * 9  # SCALE-Sim: 32 one-channel convs
    assert wl["pw"].operand("weight").density == 0.25
    t.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "c1, 8, 8, 3, x, 4, 4, 1,\n")
    from workloads import HwsimError
    with pytest.raises(HwsimError, match=r"dw.csv:2: field 'Filter Width' must be an integer"):
        read_topology(t)

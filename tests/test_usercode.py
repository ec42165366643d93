"""A user's model file: its folder importable, its failures one line (exit 2) naming the
file and line, --debug with the traceback, hwsim's own failures exit 70."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analysis.cli import main

ROOT = Path(__file__).resolve().parents[1]

MODEL = textwrap.dedent("""\
    import torch
    from torch import nn
    from helper import WIDTH


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, WIDTH)

        def forward(self, x):
            y = self.fc(x)
            return y @ torch.ones(3, 3)          # line 13: wrong shape


    def good():
        return nn.Linear(4, WIDTH), torch.randn(2, 4)


    def bad_forward():
        return Net(), torch.randn(2, 4)


    def quits():
        raise SystemExit(0)                      # line 25


    def raises():
        return {}["no such key"]                 # line 29


    def noisy():
        print("hello from the factory")
        return nn.Linear(4, WIDTH), torch.randn(2, 4)


    def drawn():                                 # torch's default initialisation, an unseeded input
        net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
        return net, torch.randn(4, 64)


    def wrong_input():                           # line 42
        return nn.Sequential(nn.Linear(4, WIDTH)), torch.randn(2, 5)


    def endless():
        import time
        while True:
            time.sleep(0.01)                     # line 49
    """)


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "net.py").write_text(MODEL)
    (d / "helper.py").write_text("WIDTH = 8\n")
    monkeypatch.chdir(tmp_path)
    return d


def _run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_module_beside_the_model_file_imports(model_dir, capsys):
    rc, out, err = _run(capsys, "lower", "mine/net.py:good", "--format", "csv", "--no-cache")
    assert rc == 0, err
    assert out.splitlines()[1].split(",")[4:7] == ["2", "8", "4"]        # M, N, K of Linear(4, 8) on 2 rows
    assert str(model_dir) not in sys.path                                  # removed afterwards


@pytest.mark.parametrize("factory, line, what", [
    ("bad_forward", 13, "RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ("quits", 25, "SystemExit: the model code called sys.exit(0)"),
    ("raises", 29, "KeyError: 'no such key'"),
])
def test_an_error_in_user_code_is_one_line_naming_file_and_line(model_dir, capsys, factory, line, what):
    rc, out, err = _run(capsys, "simulate", f"mine/net.py:{factory}", "--arch", "systolic-16", "--no-cache")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"hwsim: error: {Path('mine/net.py')}:{line}: {what}")
    assert "Traceback" not in err


def test_debug_adds_the_traceback(model_dir, capsys):
    rc, _, err = _run(capsys, "--debug", "lower", "mine/net.py:raises", "--no-cache")
    assert rc == 2
    assert err.splitlines()[0].startswith("hwsim: error: ")
    assert "Traceback (most recent call last)" in err and "in raises" in err


def test_an_import_error_names_the_line(model_dir, capsys):
    (model_dir / "helper.py").unlink()
    rc, _, err = _run(capsys, "lower", "mine/net.py:good", "--no-cache")
    assert rc == 2 and err.startswith(f"hwsim: error: {Path('mine/net.py')}:3: ModuleNotFoundError")


@pytest.mark.parametrize("net, helper, where, what", [
    (b"import torch\n\ndef good(:\n", b"WIDTH = 8\n", "net.py:3", "SyntaxError: invalid syntax"),
    (b"def good():\n    return '\xff'\n", b"WIDTH = 8\n", "net.py:2",
     "SyntaxError: (unicode error) 'utf-8' codec can't decode byte 0xff"),
    (b"from helper import WIDTH\n", b"WIDTH = (\n", "helper.py:1", "SyntaxError: '(' was never closed"),
])
def test_a_file_that_does_not_compile_names_its_line(model_dir, capsys, net, helper, where, what):
    """A SyntaxError has no frame in the user's file (importlib compiles it), so it once exited
    70 as hwsim's own; its file and line are its own attributes. One in a module the model
    file imports names that module."""
    (model_dir / "net.py").write_bytes(net)
    (model_dir / "helper.py").write_bytes(helper)
    rc, _, err = _run(capsys, "lower", "mine/net.py:good", "--no-cache")
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith(f"hwsim: error: {Path('mine') / where}: {what}"), err


def test_a_changed_sibling_module_is_a_new_cache_entry(model_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["lower", "mine/net.py:good", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[5] == "8"
    (model_dir / "helper.py").write_text("WIDTH = 16\n")
    assert main(["lower", "mine/net.py:good", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[5] == "16"


def test_a_bug_in_hwsim_exits_70_and_says_so(capsys, monkeypatch):
    import analysis.cli as cli

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "emit", boom)
    rc, _, err = _run(capsys, "lower", "gemm:8,8,8")
    assert rc == 70
    assert err.strip() == ("hwsim: internal error, please report: ZeroDivisionError: division by zero "
                           "(--debug shows the traceback)")
    rc, _, err = _run(capsys, "--debug", "lower", "gemm:8,8,8")
    assert rc == 70 and "Traceback" in err and "in boom" in err


def test_the_installed_command_exits_2_on_user_errors(model_dir):
    r = subprocess.run([sys.executable, "-m", "analysis.cli", "lower", "mine/net.py:quits", "--no-cache"],
                       capture_output=True, text=True, cwd=model_dir.parent)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "sys.exit(0)" in r.stderr


@pytest.mark.parametrize("command", [["lower", "mine/net.py:noisy"],
                                     ["simulate", "mine/net.py:noisy", "--arch", "systolic-16"]])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_factory_printing_leaves_stdout_parseable(model_dir, capsys, command, fmt):
    import csv
    import io
    import json

    rc, out, err = _run(capsys, *command, "--format", fmt, "--no-cache")
    assert rc == 0, err
    assert "hello from the factory" in err and "hello" not in out
    if fmt == "json":
        json.loads(out)
    else:
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0][0] == "name" and len({len(r) for r in rows}) == 1


def test_torch_is_seeded_before_the_factory(model_dir, capsys, monkeypatch, tmp_path):
    """drawn() uses nn.Linear's default initialisation and torch.randn: the same trace on every
    run (seed 0 where the command has no --seed), another with another --seed, never served
    from the cache for the wrong seed."""
    def lowered(*args):
        rc, out, err = _run(capsys, *args, "--format", "json")
        assert rc == 0, err
        return out

    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path / "cache"))
    a = lowered("lower", "mine/net.py:drawn", "--no-cache")
    assert lowered("lower", "mine/net.py:drawn", "--no-cache") == a
    assert lowered("lower", "mine/net.py:drawn") == a                   # the cache's entry: seed 0
    sim = ["simulate", "mine/net.py:drawn", "--arch", "systolic-16"]
    one = lowered(*sim, "--seed", "1")
    assert lowered(*sim, "--seed", "1", "--no-cache") == one
    assert lowered(*sim, "--seed", "2") != one                          # a miss, not seed 1's entry
    assert lowered(*sim) == lowered(*sim, "--seed", "0") != one


def test_seed_is_refused_where_nothing_takes_it(capsys):
    rc, _, err = _run(capsys, "simulate", "gemm:8,8,8", "--arch", "systolic-16", "--seed", "1")
    assert rc == 2 and err.count("\n") == 1
    assert "--seed: systolic designs (systolic-16) take no seed, and gemm:8,8,8 runs no code of yours" in err


def test_a_model_failing_on_its_own_input_exits_2(model_dir, capsys):
    """nn.Sequential on an input of the wrong width fails inside torch, with no frame in the
    user's file: the error names the factory's file and line, not hwsim (exit 70)."""
    for extra in ([], ["--train"]):
        rc, out, err = _run(capsys, "lower", "mine/net.py:wrong_input", "--no-cache", *extra)
        assert rc == 2, err
        assert err.count("\n") == 1
        assert err.startswith(f"hwsim: error: {Path('mine/net.py')}:42: RuntimeError: mat1 and mat2 shapes "
                              "cannot be multiplied")
        assert "fails on its own example input" in err


def test_a_lowering_bug_on_a_good_model_is_still_hwsims(model_dir, capsys, monkeypatch):
    import workloads.lower as L

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(L, "to_ops", boom)
    rc, _, err = _run(capsys, "lower", "mine/net.py:good", "--no-cache")
    assert rc == 70 and "internal error" in err and "ZeroDivisionError" in err


def test_a_time_limit_stops_user_code(model_dir, capsys):
    import time

    t = time.monotonic()
    rc, _, err = _run(capsys, "--max-time", "1", "lower", "mine/net.py:endless", "--no-cache")
    assert rc == 2 and err.count("\n") == 1
    where, _, rest = err.removeprefix("hwsim: error: ").partition(": ")
    assert where in (f"{Path('mine/net.py')}:48", f"{Path('mine/net.py')}:49")    # in the loop, where it was
    assert rest.startswith("the model code ran past the time limit of 1 s (while calling endless())")
    assert "hwsim --max-time DURATION" in err
    assert time.monotonic() - t < 30
    import signal
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0               # the timer is off afterwards


def test_the_time_limit_is_the_budgets_and_main_thread_only(model_dir, capsys, monkeypatch):
    import threading

    from sim.budget import limited
    from workloads import usercode
    from workloads.spec import resolve
    from workloads.usercode import UserCodeError

    monkeypatch.setitem(usercode._NOTED, "off_main_thread", False)     # the note is said once a process

    with limited(max_time_s=0.5), pytest.raises(UserCodeError, match="time limit of 0.5 s"):
        resolve("mine/net.py:endless")
    got = []
    with limited(max_time_s=60):            # off the main thread: no SIGALRM, a note instead
        th = threading.Thread(target=lambda: got.append(resolve("mine/net.py:good")))
        th.start()
        th.join()
    assert len(got) == 1 and len(got[0].ops) == 1
    assert "needs the main thread" in capsys.readouterr().err
    assert len(resolve("mine/net.py:good").ops) == 1               # no limit given: none applies


def test_compress_runs_the_factory_as_user_code(model_dir, capsys):
    import json

    rc, out, err = _run(capsys, "compress", "mine/net.py:noisy", "--prune", "0.5", "--format", "json")
    assert rc == 0, err
    assert "hello from the factory" in err
    assert json.loads(out)["layers"]

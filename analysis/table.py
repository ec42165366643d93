"""Terminal tables that fit: a chosen column set, engineering units, at most ``width`` columns.

CSV and JSON output keep every column at full precision; the terminal table is for
reading. Numbers print with three significant digits and an SI prefix (``1.18G``,
``7.55k``; a ``utilization`` as a percentage); a column whose value is the same on every
row is dropped from the table and named once above it; long op names are shortened in the
middle until the table fits ``width`` characters.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["SIM_COLUMNS", "SHORT", "PREFIXES", "MIN_NAME", "TEXT", "eng", "cell", "distinct_width", "choose", "render"]

# the simulate table's default columns (CSV names), in order
SIM_COLUMNS = ("name", "op", "phase", "precision", "macs", "cycles", "stall_cycles", "time_us", "utilization",
               "dram_read_bytes", "dram_write_bytes", "energy_pj")
# terminal headers for long CSV names (the unit stays in the name)
SHORT = {"stall_cycles": "stalls", "utilization": "util", "dram_read_bytes": "dram_rd_B",
         "dram_write_bytes": "dram_wr_B", "sram_read_bytes": "sram_rd_B", "sram_write_bytes": "sram_wr_B",
         "weight_density": "w_dens", "act_density": "a_dens", "weight_bits": "w_bits", "act_bits": "a_bits",
         "microbatch": "mbatch", "recompute": "recomp", "step_time_s": "step_s", "samples_per_s": "samples/s",
         "tflops_per_gpu": "TFLOP/s", "compute_s": "comp_s", "exposed_comm_s": "comm_s", "optimizer_s": "optim_s", "framework_s": "frame_s",
         "energy_per_sample_uj": "uJ/sample"}
PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
MIN_NAME = 12
TEXT = ("name", "op", "kind", "phase", "precision", "producers")   # left-aligned


def eng(v: Any) -> str:
    """A number in three significant digits with an SI prefix; other values as text."""
    if v is None or isinstance(v, bool):
        return "" if v is None else str(v)
    if isinstance(v, (int, float)) or hasattr(v, "item"):
        x = float(v)
        if math.isnan(x):
            return ""
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x == int(x) and abs(x) < 1e4:
            return str(int(x))
        a = abs(x)
        for scale, p in PREFIXES:
            if a >= scale * 0.9995:
                return f"{x / scale:.3g}{p}"
        return f"{x:.3g}"
    return str(v)


def cell(col: str, v: Any) -> str:
    if col == "utilization" and isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
        return f"{100 * v:.1f}%"
    return eng(v)


def _shorten(s: str, n: int) -> str:
    return s if len(s) <= n else s[:(n - 1) // 2] + "~" + s[-(n - 1 - (n - 1) // 2):]


def distinct_width(names: Sequence[str], n: int) -> int:
    """The least width >= ``n`` at which names distinct in full stay distinct when shortened
    from the middle (``optimizer.layer1.0.weight`` and ``optimizer.layer2.0.weight`` must not
    both read ``optim~weight``)."""
    full = max((len(x) for x in names), default=n)
    want = len(set(names))
    while n < full and len({_shorten(x, n) for x in names}) < want:
        n += 1
    return n


def choose(rows: Sequence[dict], columns: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """The columns to show: ``columns`` as given (unknown ones refused by the caller), else
    ``default`` less those not present."""
    present = list(dict.fromkeys(k for r in rows for k in r))
    if columns:
        return list(columns) if list(columns) != ["all"] else present
    return [c for c in default if c in present]


def render(rows: Sequence[dict], columns: Sequence[str], width: int = 120, keep: Sequence[str] = ("name",),
           body: int | None = None) -> str:
    """Rows as a right-aligned table of ``columns`` within ``width`` characters. Columns with
    one value on every body row (the first ``body`` rows; all by default) are named in a
    line above instead, unless listed in ``keep``."""
    cols = list(columns)
    b = list(rows[:body] if body is not None else rows)
    note = []
    for c in list(cols):
        vals = {cell(c, r.get(c)) for r in b}
        if c not in keep and len(b) > 1 and len(vals) == 1:
            v = vals.pop()
            if v:
                note.append(f"{c} {v}")
            cols.remove(c)
    cells = [[cell(c, r.get(c)) for c in cols] for r in rows]
    heads = [SHORT.get(c, c) for c in cols]
    w = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
    sep = "  " if sum(w) + 2 * (len(w) - 1) <= width else " "     # one space before cutting text
    over = sum(w) + len(sep) * (len(w) - 1) - width
    for name_col in ("producers", "name", "op"):        # shorten long texts until it fits
        if over > 0 and name_col in cols:
            i = cols.index(name_col)
            cut = min(over, max(w[i] - MIN_NAME, 0))
            if name_col == "name":              # op names stay distinct: cut less where shorter ones collide
                cut = w[i] - distinct_width([row[i] for row in cells], w[i] - cut)
            if cut:
                w[i] -= cut
                over -= cut
                for row in cells:
                    row[i] = _shorten(row[i], w[i])
    lines = [f"(all rows: {', '.join(note)})"] if note else []
    text = [c in TEXT or all(isinstance(r.get(c), str) or r.get(c) is None for r in b) for c in cols]
    fmt = lambda vals: sep.join(v.ljust(w[i]) if text[i] else v.rjust(w[i])  # noqa: E731
                                 for i, v in enumerate(vals)).rstrip()
    lines.append(fmt(heads))
    lines += [fmt(row) for row in cells]
    return "\n".join(lines)

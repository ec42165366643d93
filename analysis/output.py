"""Rows out: per-op rows plus a TOTAL row as a table, CSV or JSON on stdout, or as a
CSV, JSON or Parquet file (written atomically)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import click

from workloads.errors import HwsimError

__all__ = ["emit", "file_format", "hanging", "jsonable", "need_parquet", "wrap", "write_rows"]


def wrap(text: str, width: int = 120) -> str:
    """``text`` filled to ``width``, continuation lines indented by two."""
    return textwrap.fill(text, width, subsequent_indent="  ")


def hanging(head: str, text: str) -> str:
    """``head`` then ``text`` filled to the terminal's width (120 columns when not a terminal),
    continuation lines indented under the text."""
    import shutil

    width = max(shutil.get_terminal_size((120, 24)).columns, len(head) + 40)
    return textwrap.fill(text, width, initial_indent=head, subsequent_indent=" " * len(head))


def jsonable(v: Any) -> Any:
    """A numpy scalar as its Python value, anything else as its string (``json.dumps(default=)``)."""
    try:
        return v.item()
    except AttributeError:
        return str(v)


def emit(rows: list[dict[str, Any]], total: dict[str, Any], fmt: str, title: str = "",
         columns: str | None = None, default: tuple[str, ...] | None = None, note: str = "") -> None:
    """Print per-op rows plus a TOTAL row as a table (``columns``, else ``default``, within
    120 characters; see analysis/table.py), CSV or JSON (every column)."""
    if fmt == "json":
        import json
        doc = {"workload": title, **({"note": note} if note else {}), "ops": rows, "total": total}
        click.echo(json.dumps(doc, indent=1, default=jsonable))
        return
    allrows = rows + [{"name": "TOTAL", **total}]
    if fmt == "csv":
        import pandas as pd
        click.echo(pd.DataFrame(allrows).to_csv(index=False, float_format="%.10g"), nl=False)
        return
    from .table import choose, render

    want = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    present = list(dict.fromkeys(k for r in allrows for k in r))
    if want and want != ["all"]:
        bad = [c for c in want if c not in present]
        if bad:
            raise HwsimError(f"--columns: no column {', '.join(map(repr, bad))}; columns: {', '.join(present)} "
                             "(or 'all')")
    cols = choose(allrows, want, default or tuple(present))
    if title:
        click.echo(title)
    if note:
        click.echo(wrap(note))
    click.echo(render(allrows, cols, keep=("name",) + tuple(want or ()), body=len(rows)))
    if not want and len(cols) < len(present):
        click.echo(f"({len(cols)} of {len(present)} columns; --columns NAME,... or all, or --format csv for every one)")


def need_parquet(output: str | None) -> None:
    """Refuse Parquet without a file or without pyarrow."""
    if not output:
        raise HwsimError("--format parquet: binary output needs a file; add -o FILE.parquet")
    import importlib.util
    if importlib.util.find_spec("pyarrow") is None:
        raise HwsimError("--format parquet needs pyarrow: pip install -e '.[parquet]' (from the checkout)")


def file_format(output: str | None, fmt: str) -> str:
    """The format rows go to ``output`` in: ``fmt``, or (``fmt`` table) the file's suffix."""
    if fmt == "parquet":
        need_parquet(output)
    if output and fmt == "table":
        fmt = {".csv": "csv", ".json": "json", ".parquet": "parquet"}.get(Path(output).suffix.lower(), "")
        if not fmt:
            raise HwsimError(f"-o/--output: {output}: name a .csv, .json or .parquet file, or pass --format")
        if fmt == "parquet":
            need_parquet(output)
    return fmt


def write_rows(rows: list[dict[str, Any]], path: str, fmt: str) -> None:
    """Rows to ``path`` as CSV, JSON (records) or Parquet, atomically."""
    import io

    import pandas as pd

    from workloads.fileio import atomic_write

    df = pd.DataFrame(rows)
    if fmt == "csv":
        atomic_write(path, df.to_csv(index=False, float_format="%.10g"))
    elif fmt == "json":
        atomic_write(path, df.to_json(orient="records", indent=1))
    else:
        for c in df.columns:                 # mixed-type object columns (a TOTAL row's text) as strings
            if df[c].dtype == object:
                df[c] = df[c].map(lambda v: None if v is None or v != v else str(v))
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write(path, buf.getvalue())

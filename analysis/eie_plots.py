"""Figures of EIE's studies (:mod:`sim.eie.study`): one line per layer of a study's rows,
rendered to PNG (Han et al., ISCA 2016, Fig. 8 and Figs. 11-12)."""

from __future__ import annotations

import io
import os
from typing import Mapping, Sequence

__all__ = ["plot"]


def _column(rows: Sequence[Mapping[str, object]], layer: object, col: str) -> list[float]:
    """The numbers of column ``col`` in the rows of ``layer``, in row order."""
    out = []
    for r in rows:
        if r["layer"] == layer:
            v = r[col]
            if not isinstance(v, (int, float)):
                raise TypeError(f"column {col!r} holds {v!r}, not a number")
            out.append(v)
    return out


def plot(rows: Sequence[Mapping[str, object]], x: str, y: str, path: str | os.PathLike[str], title: str,
         logx: bool = True, logy: bool = False) -> None:
    """``y`` against ``x``, one line per layer (log2 axes by default for ``x``), written
    atomically to ``path`` as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workloads.fileio import atomic_write

    fig, ax = plt.subplots(figsize=(7, 4.5))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for name in layers:
        ax.plot(_column(rows, name, x), _column(rows, name, y), marker="o", label=str(name))
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log", base=2)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.set_layout_engine(None)     # laid out: savefig then draws once (a layout engine costs it a dry draw first)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())

"""``hwsim eie-sweep`` as a function: EIE's scalability (speedup against PEs) or its
activation-queue study (load balance against FIFO depth), as EIE's Figures 11 and 8 show
them (Han et al., ISCA 2016), written as a CSV and a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.eie import EIEArch, study
from workloads.errors import HwsimError
from workloads.fileio import atomic_write
from workloads.trace import Workload

from .progress import counting

__all__ = ["PARAMS", "eie_sweep"]

PARAMS = ("pes", "queue-depth")


def eie_sweep(model: str, arch: Any, param: str, out: str | Path, seed: int = 0) -> Any:
    """Sweep ``param`` (pes or queue-depth) for every layer of MODEL on the EIE design
    ``arch`` (a preset, YAML file or description); writes ``eie_pes.csv/png`` or
    ``eie_queue_depth.csv/png`` into ``out`` (locked while written) and returns the table
    (a DataFrame: one column per layer)."""
    from sim.registry import resolve_arch
    from workloads.fileio import locked_folder
    from workloads.spec import resolve
    from workloads.usercode import seeded

    desc = resolve_arch(arch)
    if not isinstance(desc, EIEArch):        # refused before the model is resolved
        raise HwsimError(f"--arch {desc.name!r} is a {desc.family} design; eie-sweep needs an EIE design")
    if param not in PARAMS:
        raise HwsimError(f"--param must be one of {', '.join(PARAMS)}, got {param!r}")
    with seeded(seed):          # torch's seed before a file.py:factory runs
        wl = resolve(model)
    with locked_folder(out, "eie-sweep folder") as d:
        return _sweep(wl, desc, param, d, seed)


def _sweep(wl: Workload, desc: EIEArch, param: str, out: Path, seed: int) -> Any:
    import pandas as pd

    from .eie_plots import plot

    if param == "pes":
        with counting(f"{wl.name}: PE scaling", " layers"):
            rows = study.pe_scaling(wl, desc, seed=seed)
        df = pd.DataFrame(rows)
        atomic_write(out / "eie_pes.csv", df.to_csv(index=False))
        plot(rows, "pes", "speedup", out / "eie_pes.png", f"{wl.name}: speedup vs PEs (FIFO {desc.queue_depth})",
             logy=True)
        return df.pivot(index="pes", columns="layer", values="speedup").round(2)
    with counting(f"{wl.name}: FIFO depths", " layers"):
        depths = study.queue_depth(wl, desc, seed=seed)
    df = pd.DataFrame(depths)
    atomic_write(out / "eie_queue_depth.csv", df.to_csv(index=False))
    plot(depths, "queue_depth", "load_balance", out / "eie_queue_depth.png",
         f"{wl.name}: load balance vs FIFO depth ({desc.num_pes} PEs)")
    return df.pivot(index="queue_depth", columns="layer", values="load_balance").round(3)

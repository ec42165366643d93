"""What-if sweeps: a grid (or a random sample of it) over design parameters, trace-level
compression choices and models, run in local processes or on Dask, resumable.

A study file::

    name: systolic-size
    models: [resnet18, {model: lstm_lm, batch: 4}]
    base: systolic-32               # the design every point overrides: a preset or an arch YAML file
    grid:                           # design fields, or trace.weight_density / trace.weight_bits
      rows: [8, 16, 32, 64]
      cols: [8, 16, 32, 64]
      dataflow: [ws, os, is]
      trace.weight_bits: [8, 16]
    random: {samples: 50, seed: 0}  # optional: a seeded sample of the grid instead of all of it
    energy_table: horowitz45

Every finished point is written atomically to ``OUT/points/<id>.json`` (the id hashes the
point), so a killed sweep restarted with the same study skips what is done and loses
nothing; ``results.csv`` (one tidy row per point) and the Pareto fronts (latency vs
energy per sample, and accuracy where a point reports it) are rewritten atomically
at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.archbase import override
from sim.machine import DeclaresSparsity
from workloads.errors import HwsimError
from workloads.fields import check_known
from workloads.fileio import atomic_write
from workloads.trace import Operand, Workload

from .study_schema import EVAL_KEYS, TRACE_KEYS, StudyDoc

__all__ = ["TRACE_KEYS", "EVAL_KEYS", "Study", "MAX_POINTS", "load_study", "point_id", "apply_trace", "run_point",
           "pareto", "inert", "die_with_parent", "MAX_WORKERS", "need_dask", "sweep", "run_sweep", "write_results"]

@dataclass(frozen=True)
class Study:
    name: str
    models: tuple[dict, ...]
    base: str                 # as the study names it
    points: tuple[dict, ...]
    energy_table: str | None        # None: the base design's own (else horowitz45)
    base_arch: Any = None     # the resolved description (a preset, or a YAML file's design)


MAX_POINTS = 10_000     # policy: points a study may hold unless --max-points says more


def _grid_point(grid: dict, keys: list[str], index: int) -> dict:
    """The ``index``-th point of the grid's cross product (the order of itertools.product)."""
    out = {}
    for k in reversed(keys):
        index, j = divmod(index, len(grid[k]))
        out[k] = grid[k][j]
    return {k: out[k] for k in keys}


def load_study(path: str | Path, max_points: int = MAX_POINTS) -> Study:
    """Read and validate a study file; errors name the field. A study of more than
    ``max_points`` points is refused before any point is built."""
    from workloads.yamlio import load_yaml_lines, located

    p = Path(path)
    doc, lines = load_yaml_lines(p, "study")
    with located(p, lines):
        return _study(p, doc, max_points)


def _study(p: Path, doc: Any, max_points: int) -> Study:
    """The study declared by :class:`~analysis.study_schema.StudyDoc`, then what depends on
    its base design: grid keys that are its fields, each point a valid design."""
    from sim.registry import resolve_arch
    from workloads.declared import validate

    if not isinstance(doc, dict):
        raise HwsimError(f"{p}: a study is a mapping (name, models, base, grid)")
    sd = validate(StudyDoc, doc, str(p))
    mlist: list[dict[str, Any]] = []
    for i, entry in enumerate(sd.models):
        m = entry.model_dump(exclude_none=True)
        for j, prev in enumerate(mlist):
            if prev == m:
                raise HwsimError(f"{p}: models[{i}]: the same as models[{j}] ({m['model']!r}); "
                                 "remove one (each point would run twice under one id)")
        mlist.append(m)
    base = sd.base
    spec = str(p.parent / base) if base.endswith((".yaml", ".yml")) and not Path(base).is_absolute() else base
    if base.startswith("zigzag:"):             # ZigZag's files, relative to the study like an arch YAML
        from sim.spatial.zigzag import rebase
        spec = "zigzag:" + rebase(base[len("zigzag:"):], p.parent)
    try:
        arch = resolve_arch(spec)
    except HwsimError as e:
        raise HwsimError(f"{p}: base: {e}") from None
    grid = sd.grid.values()
    if not grid:
        raise HwsimError(f"{p}: grid: needs at least one parameter with a list of values")
    fields = {f.name for f in dataclasses.fields(arch)}
    for k, v in grid.items():
        if k not in fields and k not in TRACE_KEYS and k not in EVAL_KEYS:
            check_known([k], sorted(fields | set(TRACE_KEYS) | set(EVAL_KEYS)), f"{p}: grid.",
                        owner=type(arch).__name__)
        if not isinstance(v, list) or not v:
            raise HwsimError(f"{p}: grid.{k}: needs a non-empty list of values")
        if k == "mapping" and "search" in v:
            from .mapping import families
            try:
                families(arch)
            except HwsimError as e:
                raise HwsimError(f"{p}: grid.mapping: {e}") from None
        seen = [json.dumps(x, sort_keys=True, default=str) for x in v]
        dup = next((x for i, x in enumerate(v) if seen[i] in seen[:i]), None)
        if dup is not None:
            raise HwsimError(f"{p}: grid.{k}: {dup!r} is listed twice; remove one (its points would run twice "
                             "under one id)")
    dens = grid.get("trace.weight_density", [])
    who = f"{arch.name} ({arch.family})"
    if len(dens) > 1 and isinstance(arch, DeclaresSparsity) and "weight_density" not in arch.sparsity_exploited:
        raise HwsimError(f"{p}: grid.trace.weight_density: {who} runs zero weights as dense "
                         f"ones, so its {len(dens)} values would give the same points; sweep it on a design that "
                         "skips them (eie-64), or sweep trace.weight_bits or the design instead")
    keys = sorted(grid)
    size = math.prod(len(grid[k]) for k in keys)
    rnd = sd.random
    if rnd is not None:
        n = rnd.samples
        if n > size:
            raise HwsimError(f"{p}: random.samples: {n} is more than the grid's {size} points; "
                             f"drop 'random' to run them all")
        size = n
    if size * len(mlist) > max_points:
        raise HwsimError(f"{p}: grid: {size:,} designs x {len(mlist)} model(s) = {size * len(mlist):,} points, "
                         f"over the limit of {max_points:,}; sample them (random: {{samples: N}}) or raise "
                         f"--max-points")
    if rnd is not None:      # indices drawn from the grid's size: the grid is never built whole
        picks = random.Random(rnd.seed).sample(range(math.prod(len(grid[k]) for k in keys)), size)
        combos = [_grid_point(grid, keys, i) for i in picks]
    else:
        combos = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]
    # validate every design once, so a bad value fails before any work
    for c in combos:
        design = {k: v for k, v in c.items() if not k.startswith("trace.") and k not in EVAL_KEYS}
        try:
            override(arch, design, where="point")
        except HwsimError as e:              # name the grid key, so that the error gets its line
            hit = re.match(r"point: (\w+): (.*)", str(e))
            if hit and hit.group(1) in design:
                raise HwsimError(f"{p}: grid.{hit.group(1)}: {hit.group(2)} (in the point {c})") from None
            raise HwsimError(f"{p}: grid point {c}: {str(e).removeprefix('point: ')}") from None
    points = tuple({"model": m, "design": c} for m in mlist for c in combos)
    return Study(sd.name or p.stem, tuple(mlist), base, points, sd.energy_table, arch)


def point_id(study: Study, point: dict) -> str:
    """A hash of everything that decides the point's result: the base design's every field
    (so an edited base YAML never reuses stale points), the table, the model and the point."""
    base = study.base_arch.describe() if study.base_arch is not None else study.base
    key = json.dumps({"base": base, "table": study.energy_table, **point}, sort_keys=True, default=str)
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def apply_trace(wl: Workload, params: dict) -> Workload:
    """Trace-level compression choices: weight density and operand widths of every GEMM."""
    from dataclasses import replace
    if not any(k.startswith("trace.") for k in params):
        return wl
    ops = []
    for op in wl.ops:
        new = []
        for o in op.operands:
            if o.role == "weight":
                if "trace.weight_density" in params:
                    o = replace(o, density=float(params["trace.weight_density"]), values=None)
                if "trace.weight_bits" in params:
                    o = Operand(o.role, o.shape, int(params["trace.weight_bits"]), "int", o.density)
            if o.role in ("input", "input2") and "trace.act_bits" in params and op.is_gemm:
                o = Operand(o.role, o.shape, int(params["trace.act_bits"]), "int", o.density)
            new.append(o)
        ops.append(replace(op, operands=tuple(new)))
    return wl.with_ops(ops)


def run_point(base: Any, table: str | None, point: dict, wl: Workload, cache: bool = True) -> dict:
    """Evaluate one point on a design derived from ``base`` (runs in a worker process or on a
    Dask worker); every field the point does not set, static power included, is the base's.
    ``cache``: whether a GPU's stepped SM main loops may be read from and kept in the cache
    folder (the sweep's --no-cache says no; a worker does not inherit the parent's setting)."""
    from analysis.report import evaluate
    from sim.gpu.sm.mainloop import keep_on_disk

    design = {k: v for k, v in point["design"].items() if not k.startswith("trace.") and k not in EVAL_KEYS}
    arch = override(base, {**design, "name": f"{base.name}*"})
    how = {k: point["design"][k] for k in EVAL_KEYS if k in point["design"]}
    with keep_on_disk(cache):
        s = evaluate(apply_trace(wl, point["design"]), arch, table, **how).summary()
    row = {"model": point["model"]["model"], **{k: v for k, v in point["model"].items() if k != "model"},
           **point["design"]}
    for k in ("cycles", "time_us", "throughput_samples_per_s", "tops", "utilization", "energy_pj",
              "energy_per_sample_uj", "power_w", "energy_static_pj", "dram_bytes", "sram_bytes"):
        row[k] = s[k]
    # what the design made of the point's trace: precision it changed, sparsity it ran as dense
    row["precision_changes"] = "; ".join(f"{k} ({v} ops)" for k, v in s["precision_changes"].items()) or "none"
    row["sparsity_ignored_ops"] = s["sparsity_ignored_ops"]
    row.update({f"energy_{k}_pj": v for k, v in s["energy_by_level_pj"].items()})
    row.update({f"cycles_{k}": v for k, v in s["cycle_counters"].items()})
    return row


def pareto(df, x: str = "time_us", y: str = "energy_per_sample_uj", maximize: tuple[str, ...] = ()):
    """Rows of ``df`` not dominated in (min x, min y, max each of ``maximize``)."""
    import numpy as np
    vals = np.column_stack([df[x].to_numpy(), df[y].to_numpy()] + [-df[m].to_numpy() for m in maximize])
    keep = np.ones(len(df), dtype=bool)
    for i in range(len(df)):
        dom = np.all(vals <= vals[i], axis=1) & np.any(vals < vals[i], axis=1)
        keep[i] = not dom.any()
    return df[keep].sort_values(x)


def die_with_parent(parent: int) -> None:
    """Worker initializer: ask the kernel to kill this worker when the sweep process that
    started it dies, however it dies (``kill -9`` included), so that no worker outlives it
    (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a no-op)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)          # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:          # the parent died before the request took effect
        os._exit(1)


MAX_WORKERS = 256      # policy: local worker processes one sweep may start


def need_dask() -> None:
    """Refuse --cluster where Dask is not installed."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise HwsimError("--cluster needs Dask: pip install 'hwsim[cluster]'") from None


def sweep(study: str | Path, out: str | Path, cluster: str | None = None, workers: int = 2, cache: bool = True,
          max_points: int = MAX_POINTS) -> tuple[Study, Any]:
    """``hwsim sweep``: load the STUDY, run every point not yet in ``out`` (on ``workers``
    local processes or a Dask ``cluster``) with ``out`` locked; (the study, results)."""
    from workloads.fileio import locked_folder

    if not 1 <= workers <= MAX_WORKERS:
        raise HwsimError(f"--workers must be in 1..{MAX_WORKERS}, got {workers}")
    st = load_study(study, max_points=max_points)
    if cluster:
        need_dask()
    with locked_folder(str(out), "sweep folder"):
        return st, run_sweep(st, out, cluster=cluster, workers=workers, cache=cache)


def run_sweep(study: Study, outdir: str | Path, cluster: str | None = None, workers: int = 2,
              progress: bool = True, cache: bool = False):
    """Run every point not yet on disk; then write results.csv, pareto.csv and pareto.png."""
    from tqdm import tqdm

    from workloads.spec import resolve

    out = Path(outdir)
    pts_dir = out / "points"
    pts_dir.mkdir(parents=True, exist_ok=True)
    todo = [(point_id(study, pt), pt) for pt in study.points]
    todo = [(i, pt) for i, pt in todo if not (pts_dir / f"{i}.json").exists()]
    workloads: dict[str, Workload] = {}
    for m in study.models:
        key = json.dumps(m, sort_keys=True)
        workloads[key] = resolve(m["model"], batch=m.get("batch"), seq_len=m.get("seq_len"), cache=cache)

    def save(i: str, pt: dict, row: dict) -> None:
        atomic_write(pts_dir / f"{i}.json", json.dumps({"id": i, "point": pt, "row": row}, default=float))

    bar = tqdm(total=len(todo), desc=f"sweep {study.name}", unit="pt", disable=not progress or None)
    if todo and cluster:
        from dask.distributed import Client, LocalCluster, as_completed

        lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) \
            if cluster == "local" else None
        client = Client(lc if lc else cluster)
        try:
            wl_futs = {k: client.scatter(w, broadcast=True) for k, w in workloads.items()}
            futs = {client.submit(run_point, study.base_arch, study.energy_table, pt,
                                  wl_futs[json.dumps(pt["model"], sort_keys=True)], cache, pure=False): (i, pt)
                    for i, pt in todo}
            for fut in as_completed(futs):
                i, pt = futs[fut]
                save(i, pt, fut.result())
                bar.update(1)
        finally:
            client.close()
            if lc:
                lc.close()
    elif todo:
        from concurrent.futures import ProcessPoolExecutor, as_completed as done

        with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as ex:
            pool = {ex.submit(run_point, study.base_arch, study.energy_table, pt,
                              workloads[json.dumps(pt["model"], sort_keys=True)], cache): (i, pt) for i, pt in todo}
            for job in done(pool):
                i, pt = pool[job]
                save(i, pt, job.result())
                bar.update(1)
    bar.close()
    return write_results(study, out)


def write_results(study: Study, out: Path):
    import pandas as pd
    rows = []
    for pt in study.points:
        f = out / "points" / f"{point_id(study, pt)}.json"
        if f.exists():
            d = json.loads(f.read_text())
            rows.append({"id": d["id"], **d["row"]})
    df = pd.DataFrame(rows)
    atomic_write(out / "results.csv", df.to_csv(index=False))
    if not df.empty:
        maximize = ("accuracy",) if "accuracy" in df.columns else ()
        front = pd.concat([pareto(g, maximize=maximize) for _, g in df.groupby("model")])
        atomic_write(out / "pareto.csv", front.to_csv(index=False))
        keys = sorted({k for pt in study.points for k in pt["design"]})
        _plot_pareto(df, front, out / "pareto.png", study.name, keys)
    return df


def inert(df, keys: list[str]) -> list[str]:
    """The grid keys whose values changed no point's time or energy, every other key (and the
    model) held: a what-if the design ignores (its precision_changes and sparsity_ignored_ops
    columns say why), named so that it is not read as a finding."""
    out = []
    for k in keys:
        if k not in df.columns or df[k].nunique(dropna=False) < 2:
            continue
        others = [c for c in keys if c != k and c in df.columns] + ["model"]
        groups = [g for _, g in df.groupby(others, dropna=False)]
        if all(g[k].nunique(dropna=False) > 1 and g[["time_us", "energy_pj"]].nunique().max() == 1 for g in groups):
            out.append(k)
    return out


def _plot_pareto(df, front, path: Path, title: str, keys: list[str]) -> None:
    from .plots import pareto as pareto_fig
    from .report import _fig_png

    atomic_write(path, _fig_png(pareto_fig(df, front, list(dict.fromkeys(df.model)), title, keys)))

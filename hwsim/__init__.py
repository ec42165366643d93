"""hwsim from Python (a notebook, a script): every verb of the ``hwsim`` command as a
function of the same name, taking the command's options as keyword arguments.

    >>> import hwsim
    >>> ev = hwsim.simulate("gemm:256,256,256", "systolic-16")
    >>> df = ev.to_frame()                      # one row per op, every column of `hwsim simulate`
    >>> int(df.loc[0, "macs"])
    16777216
    >>> ev.summary()["design"]
    'systolic-16'

``simulate`` takes what ``hwsim simulate`` takes: a MODEL string (a zoo name, a trace
file, ``file.py:factory``, ``gemm:M,N,K``, ...) or a :class:`~workloads.trace.Workload`,
and a preset name, an arch YAML path or a description. ``lower`` returns the trace.

    >>> [t.result.passed for t in hwsim.verify("systolic", trials=2, size=(2, 2))]
    [True, True]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from analysis.report import Evaluation
    from analysis.train import TrainResult
    from rtl.verify import Trial
    from validation.report import Validation
    from workloads.compress.job import Compressed
    from workloads.trace import Workload

__all__ = ["archs", "cache_clear", "cache_info", "compare", "compress", "eie_sweep", "lower", "memory", "models",
           "presets", "report", "rtl_area", "rtl_cells", "rtl_export", "scalesim", "schema", "simulate", "sweep", "systems", "topology",
           "train", "validate", "verify"]


def lower(model: str, *, batch: int | None = None, seq_len: int | None = None, keep_weights: bool = False,
          cache: bool = True, **lowering: Any) -> Workload:
    """MODEL as a :class:`~workloads.trace.Workload` (``lowering``: train, precision,
    attention, optimizer, recompute, decode, as the CLI's options)."""
    from workloads.spec import Lowering, resolve

    return resolve(model, batch=batch, seq_len=seq_len, keep_weights=keep_weights, how=Lowering(**lowering),
                   cache=cache)


def simulate(model: Any, arch: Any, **options: Any) -> Evaluation:
    """Simulate and price MODEL on ``arch`` with ``hwsim simulate``'s options under the same
    names (batch, seq_len, seed, precision, energy_table, node_nm, compress, winograd, train,
    optimizer, recompute, attention, decode, cache, mapping, objective, fuse, layout): an
    :class:`~analysis.report.Evaluation` with ``to_frame()`` (per-op rows with energy),
    ``summary()`` and ``result`` (the SimResult)."""
    from analysis.simulate import simulate as run
    return run(model, arch, **options)


def report(model: Any, arch: Any, out: str | Path, force: bool = False, **options: Any) -> Evaluation:
    """``hwsim report``: simulate as :func:`simulate` does and write ops.csv, summary.json,
    summary.csv, the plots and report.html into ``out`` (a folder holding another workload's
    or design's report only with ``force``)."""
    from analysis.report import report_into

    ev = simulate(model, arch, **options)
    report_into(ev, out, force)
    return ev


def compare(model: str, archs: list[Any], plans: tuple[str, ...] = (), out: str | Path | None = None,
            **options: Any) -> Any:
    """``hwsim compare``: MODEL on each design (and each design with each compression plan)
    side by side; a DataFrame, also written with its plot into ``out``."""
    from analysis.report import compare as cmp

    variants = [(a, None) for a in archs] + [(a, p) for a in archs for p in plans]
    evs = [simulate(model, a, compress=p, **options) for a, p in variants]
    labels = [f"{ev.arch.name}" + (f"+{Path(p).stem}" if p else "") for ev, (_, p) in zip(evs, variants)]
    return cmp(evs, out, labels=labels)


def memory(model: str, **lowering: Any) -> dict[str, Any]:
    """``hwsim memory``: the footprint by category and its peak (``batch``, ``seq_len``,
    ``cache`` and the lowering options as :func:`lower` takes them)."""
    from workloads.memory import footprint
    return footprint(lower(model, **lowering))


def presets() -> list[str]:
    """Every hardware preset's name."""
    return list(archs())


def archs() -> dict[str, Any]:
    """``hwsim archs``: every hardware preset's description by name (``source``,
    ``precision_policy``, ``describe()``)."""
    from sim.registry import presets as table
    return dict(table())


def topology(model: str, output: str | Path, form: str = "conv", **lowering: Any) -> Path:
    """``hwsim topology``: MODEL as a SCALE-Sim topology CSV (``form`` conv or gemm)."""
    from workloads.scalesim_topo import write_topology
    return write_topology(lower(model, **lowering), output, form)


def eie_sweep(model: str = "eie-benchmarks", *, param: str, out: str | Path, arch: Any = "eie-64",
              seed: int = 0) -> Any:
    """``hwsim eie-sweep``: EIE's speedup against PEs (``param="pes"``) or load balance against
    FIFO depth (``"queue-depth"``), written into ``out``; the table (one column per layer)."""
    from analysis.eie_sweep import eie_sweep as run
    return run(model, arch, param, out, seed)


def scalesim(config: str | Path, topology: str | Path, outdir: str | Path, gemm: bool | None = None) -> Any:
    """``hwsim scalesim``: SCALE-Sim 3.0.0's own model on its config and topology; writes its
    three reports into ``outdir`` and returns the per-layer reports."""
    from sim.scalesim.compat import run
    from sim.scalesim.report import write_reports
    from workloads.fileio import locked_folder

    _, _, reports = run(config, topology, gemm)
    with locked_folder(outdir, "report folder"):
        write_reports(reports, outdir)
    return reports


def cache_info() -> list[Any]:
    """``hwsim cache info``: the trace cache's entries, most recently used first."""
    from workloads.cache import entries
    return entries()


def cache_clear() -> tuple[int, int]:
    """``hwsim cache clear``: (entries removed, bytes freed)."""
    from workloads.cache import clear
    return clear()


def rtl_export(unit: str, output: str | Path, size: tuple[int, int] = (4, 4)) -> str:
    """``hwsim rtl export``: the unit's Verilog, written to ``output`` and returned."""
    from rtl.units import verilog
    from workloads.fileio import atomic_write

    text = verilog(unit, *size)
    atomic_write(output, text)
    return text


def rtl_cells(unit: str, size: tuple[int, int] = (4, 4)) -> dict[str, Any]:
    """``hwsim rtl cells``: the unit's synthesised cell count (the synth extra)."""
    from rtl.units import cells
    return cells(unit, *size)


def rtl_area(unit: str, size: tuple[int, int] | None = None) -> Any:
    """``hwsim rtl area``: the unit's area in NAND2 equivalents (``rtl.area.Area``; the synth extra)."""
    from rtl.area import area
    return area(unit, size)


def schema(kind: str) -> dict[str, Any]:
    """``hwsim schema KIND``: the JSON Schema of an arch, family, system, trace, plan, study or energy table file.

    >>> schema("systolic")["properties"]["dataflow"]["enum"]
    ['ws', 'os', 'is']
    """
    from analysis.schemas import schema as json_schema
    return json_schema(kind)


def systems() -> list[str]:
    """Every system preset's name (``hwsim systems``)."""
    from sim.system.topology import PRESETS
    return list(PRESETS)


def models() -> list[str]:
    """The model zoo's names (``hwsim models``)."""
    from workloads.zoo import ZOO
    return list(ZOO)


def train(model: str, **job: Any) -> TrainResult:
    """One training step of ``model`` split over a system (``hwsim train`` without ``--search``):
    ``system``, ``gpus``/``nodes``, ``tp``, ``pp``, ``dp``, ``global_batch``, ``microbatch``,
    ``recompute``, ``schedule``, ``zero``, ``precision``, ... as the CLI's options. A
    :class:`~analysis.train.TrainResult`; ``summary()`` has the step time, TFLOP/s per GPU, MFU."""
    from analysis.train_cli import train as run
    return run(model, **job)


def compress(model: str, **flags: Any) -> Compressed:
    """``hwsim compress``: ``plan``, ``prune``, ``share_bits``, ``quant_bits``, ``act_bits``,
    ``index_bits``, ``structure``, ``train_on``, ``seed``; ``report()`` has Deep Compression's
    storage accounting, ``trace()`` the compressed trace. ``seed`` also seeds torch before a
    ``file.py:factory`` runs, as the command's ``--seed`` does."""
    from workloads.compress.job import compress_model
    from workloads.usercode import seeded
    with seeded(flags.get("seed", 0)):
        return compress_model(model, **flags)


def sweep(study: str | Path, out: str | Path, **options: Any) -> Any:
    """``hwsim sweep``: run a study file's points into ``out`` (``workers``, ``cluster``,
    ``cache``, ``max_points``); the results DataFrame."""
    from analysis.sweep import sweep as run
    return run(study, out, **options)[1]


def verify(unit: str, **options: Any) -> Iterator[Trial]:
    """``hwsim verify``: co-simulate an RTL unit (systolic, eie-pe, dot) against its model,
    one :class:`~rtl.verify.Trial` at a time (``trials``, ``size``, ``backend``, ``seed``)."""
    from rtl.verify import verify as run
    return run(unit, **options)


def validate(domains: Any = None) -> Validation:
    """Run the validation corpus (``validation/data``), or the rows of ``domains``: a
    :class:`~validation.report.Validation` with every row's outcome and the per-domain
    accuracy (``hwsim validate``)."""
    from validation.report import validate as run
    return run(domains)

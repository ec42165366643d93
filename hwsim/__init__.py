"""hwsim from Python (a notebook, a script): the CLI's main verbs as functions.

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
"""

from __future__ import annotations

from typing import Any

__all__ = ["simulate", "lower", "presets", "train", "validate"]


def lower(model: str, *, batch: int | None = None, seq_len: int | None = None, keep_weights: bool = False,
          cache: bool = True, **lowering: Any):
    """MODEL as a :class:`~workloads.trace.Workload` (``lowering``: train, precision,
    attention, optimizer, recompute, decode, as the CLI's options)."""
    from workloads.spec import Lowering, resolve

    return resolve(model, batch=batch, seq_len=seq_len, keep_weights=keep_weights, how=Lowering(**lowering),
                   cache=cache)


def simulate(model: Any, arch: Any, *, batch: int | None = None, seq_len: int | None = None,
             energy_table: str = "horowitz45", node_nm: float | None = None, cache: bool = True, **options: Any):
    """Simulate and price MODEL on ``arch``; an :class:`~analysis.report.Evaluation` with
    ``to_frame()`` (per-op rows with energy), ``summary()`` and ``result`` (the SimResult).
    ``options`` go to the machine (``seed`` on EIE, ``precision`` on GPUs, ...)."""
    from analysis.report import evaluate
    from sim.registry import resolve_arch
    from workloads.spec import resolve
    from workloads.trace import Workload

    desc = resolve_arch(arch)
    wl = model if isinstance(model, Workload) else resolve(
        model, batch=batch, seq_len=seq_len, keep_weights="sparse" if desc.uses_weight_values else False,
        cache=cache)
    return evaluate(wl, desc, energy_table, node_nm, **options)


def presets() -> list[str]:
    """Every hardware preset's name."""
    from sim.registry import presets as table
    return list(table())


def train(model: str, **job: Any):
    """One training step of ``model`` split over a system (``hwsim train`` without ``--search``):
    ``system``, ``gpus``/``nodes``, ``tp``, ``pp``, ``dp``, ``global_batch``, ``microbatch``,
    ``recompute``, ``schedule``, ``zero``, ``precision``, ... as the CLI's options. A
    :class:`~analysis.train.TrainResult`; ``summary()`` has the step time, TFLOP/s per GPU, MFU."""
    from analysis.train_cli import train as run
    return run(model, **job)


def validate(domains: Any = None):
    """Run the validation corpus (``validation/data``), or the rows of ``domains``: a
    :class:`~validation.report.Validation` with every row's outcome and the per-domain
    accuracy (``hwsim validate``)."""
    from validation.report import validate as run
    return run(domains)

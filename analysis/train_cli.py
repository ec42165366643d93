"""``hwsim train``: resolve the system and the configuration, run it (or search), print and
write the results."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from sim.system.topology import resolve_system
from workloads.errors import HwsimError
from workloads.fileio import atomic_write

from .train import Job, Model, TrainResult, best, candidates, fits_or_refuse, perfetto, run, search_summaries

__all__ = ["COLUMNS", "build_job", "train", "train_command", "write_report"]

COLUMNS = ("dp", "tp", "pp", "microbatch", "recompute", "schedule", "zero", "step_time_s", "samples_per_s",
           "tflops_per_gpu", "mfu", "compute_s", "exposed_comm_s", "bubble_s", "optimizer_s", "framework_s", "fits")


def _devices(system, gpus: int | None, nodes: int | None) -> int:
    if gpus is not None and nodes is not None:
        raise HwsimError("give --gpus or --nodes, not both")
    if nodes is not None:
        if nodes < 1:
            raise HwsimError(f"--nodes must be >= 1, got {nodes}")
        return nodes * system.devices_per_node
    if gpus is not None:
        if gpus < 1:
            raise HwsimError(f"--gpus must be >= 1, got {gpus}")
        return gpus
    return system.devices


def build_job(*, model: str, system_spec: Any = "dgx-a100", gpus: int | None = None, nodes: int | None = None,
              tp: int = 1, pp: int = 1, dp: int | None = None, global_batch: int, microbatch: int | None = None,
              recompute: str | None = None, schedule: str | None = None, zero: int = 0, precision: str = "bf16-o2",
              attention: str = "unfused", optimizer: str = "adam", seq_len: int | None = None, jobs: int = 1,
              search: bool = False, stage_layers: str | None = None,
              sequence_parallel: bool = False, tp_comm_overlap: bool = False,
              overlap_param_gather: bool = False, zero3: str | None = None, ep: int = 1,
              data_loading_ms: float = 0.0, expert_imbalance: float = 1.0) -> tuple[Job, int]:
    """The job ``hwsim train`` runs (and the devices each of ``jobs`` copies gets), checked."""
    if zero3 is not None and zero != 3 and not search:
        raise HwsimError(f"--zero3 chooses how ZeRO-3 gathers and reduces; it needs --zero 3 (got --zero {zero}), "
                         "or leave it out")
    if not 1 <= expert_imbalance < float("inf"):
        raise HwsimError(f"--expert-imbalance: the busiest expert-parallel device's routed tokens over the mean, "
                         f">= 1, got {expert_imbalance!r}")
    if expert_imbalance != 1 and ep < 2 and not search:
        raise HwsimError("--expert-imbalance is the busiest of the expert-parallel devices; it needs --ep 2 or more "
                         "(or --search, which tries them)")
    if microbatch is not None and microbatch < 1:     # not "pick one": leave --microbatch out for that
        raise HwsimError(f"--microbatch: must be an integer >= 1, got {microbatch}; leave it out to pick the fastest")
    base = resolve_system(system_spec)
    n = _devices(base, gpus, nodes)
    if jobs < 1 or n % jobs:
        raise HwsimError(f"--jobs {jobs} must divide the {n} devices")
    n //= jobs
    system = base.with_devices(n)
    if dp is None and not search:
        if n % (tp * pp):
            raise HwsimError(f"tp x pp = {tp} x {pp} does not divide {n} devices; give --dp or change them")
        dp = n // (tp * pp)
    job = Job(model, system, tp, pp, dp or 1, global_batch, microbatch or 1, recompute or "full", schedule or "1f1b", zero,
              precision, attention, optimizer, seq_len, _stage_layers(stage_layers), sequence_parallel, tp_comm_overlap,
              overlap_param_gather, zero3 or "deepspeed", ep, data_loading_ms, expert_imbalance)
    if sequence_parallel and not search and tp < 2:
        raise HwsimError("--sequence-parallel splits along the sequence over the tensor-parallel group; it needs "
                         f"--tp 2 or more (got --tp {tp})")
    if tp_comm_overlap and not sequence_parallel:
        raise HwsimError("--tp-comm-overlap pipelines the all-gathers and reduce-scatters of sequence parallelism "
                         "with their GEMMs; add --sequence-parallel (Megatron-LM requires it too)")
    if search and stage_layers:
        raise HwsimError("--stage-layers states one split; --search tries the even splits of each pp")
    if search:      # the search sets them (and applies the overlaps where tp > 1 and ZeRO is 1 or 2)
        job = dataclasses.replace(job, tp=1, pp=1, dp=1, microbatch=1, zero=1 if overlap_param_gather else job.zero,
                                  tp_comm_overlap=False)
        job.check()
        return dataclasses.replace(job, tp_comm_overlap=tp_comm_overlap), n
    job.check()
    return job, n


def _stage_layers(text: str | None) -> tuple[int, ...] | None:
    """``--stage-layers 5,6,6,...``: each chunk's layers."""
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise HwsimError(f"--stage-layers: comma-separated layer counts (5,6,6,...), got {text!r}") from None


def train(model: str, *, system: Any = "dgx-a100", gpus: int | None = None, nodes: int | None = None, tp: int = 1,
          pp: int = 1, dp: int | None = None, global_batch: int, microbatch: int | None = None,
          recompute: str | None = None, schedule: str | None = None, zero: int = 0, precision: str = "bf16-o2",
          attention: str = "unfused", optimizer: str = "adam", seq_len: int | None = None,
          stage_layers: str | None = None, sequence_parallel: bool = False, tp_comm_overlap: bool = False,
          overlap_param_gather: bool = False, zero3: str | None = None, ep: int = 1,
          data_loading_ms: float = 0.0, expert_imbalance: float = 1.0, cache: bool = True) -> TrainResult:
    """One training step of ``model`` on ``system`` (``hwsim train`` without ``--search``): where
    microbatch, recomputation or schedule are left open, the fastest setting that fits
    (``result.chosen`` says which). A configuration that does not fit is refused."""
    job, _ = build_job(model=model, system_spec=system, gpus=gpus, nodes=nodes, tp=tp, pp=pp, dp=dp,
                       global_batch=global_batch, microbatch=microbatch, recompute=recompute, schedule=schedule,
                       zero=zero, precision=precision, attention=attention, optimizer=optimizer, seq_len=seq_len,
                       stage_layers=stage_layers, sequence_parallel=sequence_parallel, tp_comm_overlap=tp_comm_overlap,
                       overlap_param_gather=overlap_param_gather, zero3=zero3, ep=ep,
                       data_loading_ms=data_loading_ms, expert_imbalance=expert_imbalance)
    result, chosen = _resolve(job, Model(job, cache), microbatch, recompute, schedule)
    fits_or_refuse(result)
    return dataclasses.replace(result, chosen=chosen)


def train_command(*, model, system_spec, gpus, nodes, tp, pp, dp, global_batch, microbatch, recompute, schedule,
                  zero, precision, attention, optimizer, seq_len, jobs, search: bool, top, timeline, out,
                  fmt, workers: int = 1, cluster: str | None = None, cache: bool = False,
                  stage_layers: str | None = None, sequence_parallel: bool = False,
                  tp_comm_overlap: bool = False, overlap_param_gather: bool = False, zero3: str | None = None,
                  ep: int = 1, data_loading_ms: float = 0.0, expert_imbalance: float = 1.0) -> None:
    if workers < 1:
        raise HwsimError(f"--workers must be >= 1, got {workers}")
    if cluster:
        from .sweep import need_dask
        need_dask()
    job, n = build_job(model=model, system_spec=system_spec, gpus=gpus, nodes=nodes, tp=tp, pp=pp, dp=dp,
                       global_batch=global_batch, microbatch=microbatch, recompute=recompute, schedule=schedule,
                       zero=zero, precision=precision, attention=attention, optimizer=optimizer, seq_len=seq_len,
                       jobs=jobs, search=search, stage_layers=stage_layers, sequence_parallel=sequence_parallel,
                       tp_comm_overlap=tp_comm_overlap, overlap_param_gather=overlap_param_gather, zero3=zero3,
                       ep=ep, data_loading_ms=data_loading_ms, expert_imbalance=expert_imbalance)
    system = job.system
    m = Model(job, cache)
    if search:
        from .progress import counting
        with counting(f"searching {job.model} on {n} devices", " configurations"):
            rows = search_summaries(job, m, n, workers, cluster)
        if not rows:
            raise HwsimError(f"no valid configuration of {job.model} on {n} devices")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            import pandas as pd
            atomic_write(Path(out) / "search.csv", pd.DataFrame([{k: r[k] for k in COLUMNS} for r in rows])
                         .to_csv(index=False))
        _print(rows[:top] if fmt == "table" else rows, fmt, f"{model} on {n} x {system.device}: "
               f"{len(rows)} configurations, fastest first")
        return
    result, chosen = _resolve(job, m, microbatch, recompute, schedule)
    fits_or_refuse(result)
    if timeline:
        result = run(result.job, m, timeline=True)
        Path(timeline).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(timeline, json.dumps(perfetto(result)))
    s = result.summary()
    if chosen:
        s["chosen"] = chosen
    if jobs > 1:
        s.update(jobs=jobs, total_samples_per_s=jobs * s["samples_per_s"],
                 total_tokens_per_s=jobs * s["tokens_per_s"] if s["tokens_per_s"] is not None else None)
    if out:
        write_report(result, m, s, Path(out))
    if fmt == "json":
        click.echo(json.dumps(s, indent=1, default=float))
    elif fmt == "csv":
        import pandas as pd
        click.echo(pd.DataFrame([{k: s[k] for k in COLUMNS}]).to_csv(index=False), nl=False)
    else:
        _table(s)
    if timeline:      # on stderr under --format json/csv, so that stdout stays one document
        click.echo(f"wrote {timeline}", err=fmt != "table")


def _resolve(job: Job, m: Model, microbatch, recompute, schedule) -> tuple[TrainResult, dict[str, Any]]:
    """Run the job; where the user left microbatch, recomputation or schedule open, pick the
    fastest setting that fits and say so."""
    if microbatch and recompute and schedule:
        return run(job, m), {}
    cands = candidates(job, microbatch, recompute, schedule, m)
    if not cands:
        raise HwsimError(f"no microbatch size, recomputation and schedule fit the global batch and "
                         f"{job.pp} stages; give them explicitly")
    winner, results = best(cands, m)
    if winner is None:
        smallest = min(results, key=lambda r: r.step.memory["total_bytes"]) if results else None
        if smallest is None:
            raise HwsimError("no configuration could be evaluated")
        fits_or_refuse(smallest)
    assert winner is not None
    chosen = {k: getattr(winner.job, k) for k, given in (("microbatch", microbatch), ("recompute", recompute),
                                                        ("schedule", schedule)) if not given}
    return winner, chosen


def _print(rows, fmt: str, title: str) -> None:
    import pandas as pd
    df = pd.DataFrame([{k: r[k] for k in COLUMNS} for r in rows])
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, default=float))
    elif fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    else:
        click.echo(title)
        from .table import render
        click.echo(render(df.to_dict("records"), list(df.columns), keep=tuple(c for c in df.columns if c != "fits")))


def _table(s: dict[str, Any]) -> None:
    ep = f" (ep {s['ep']})" if "ep" in s else ""
    click.echo(f"{s['model']} on {s['devices']} x {s['device']} ({s['system']}): dp {s['dp']} x tp {s['tp']} x pp {s['pp']}{ep}, "
               f"microbatch {s['microbatch']} x {s['microbatches']}, recompute {s['recompute']}, {s['schedule']}, "
               f"zero {s['zero']}, {s['precision']}")
    if "chosen" in s:
        click.echo("  chosen as the fastest that fits: " + ", ".join(f"{k} {v}" for k, v in s["chosen"].items()))
    if len(set(s["stage_layers"])) > 1:
        click.echo(f"  layers per {'chunk' if len(s['stage_layers']) > s['pp'] else 'stage'}: "
                   f"{','.join(map(str, s['stage_layers']))} (the embedding on the first, the head on the last)")
    tokens = f", {s['tokens_per_s']:.4g} tokens/s" if s["tokens_per_s"] is not None else ""
    click.echo(f"  step {s['step_time_s']:.4g} s: {s['samples_per_s']:.4g} samples/s{tokens}")
    click.echo(f"  {s['tflops_per_gpu']:.1f} TFLOP/s per device (model FLOPs; hardware {s['hardware_tflops_per_gpu']:.1f}),"
               f" MFU {100 * s['mfu']:.1f}%")
    click.echo(f"  compute {s['compute_s']:.4g} s, exposed communication {s['exposed_comm_s']:.4g} s, "
               f"bubble {s['bubble_s']:.4g} s, optimizer {s['optimizer_s']:.4g} s, framework (host) "
               f"{s['framework_s']:.4g} s")
    if s["framework_s"] > 0:
        click.echo("    framework: " + ", ".join(f"{k.replace('_', ' ')} {v:.4g} s"
                                                 for k, v in s["framework_terms_s"].items() if v))
    mem = s["memory_per_gpu_gib"]
    click.echo("  memory per device: " + ", ".join(f"{k} {v:.2f}" for k, v in mem.items()) +
               f" GiB of {s['capacity_gib']:.1f}")
    if "jobs" in s:
        click.echo(f"  {s['jobs']} jobs side by side: {s['total_samples_per_s']:.4g} samples/s in all")


def write_report(r: TrainResult, m: Model, s: dict[str, Any], out: Path) -> None:
    """summary.json, breakdown.png (where the step goes) and scaling.png (throughput per
    device as data-parallel replicas are added, same tp and pp)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import _fig_png
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "summary.json", json.dumps(s, indent=1, default=float))
    fig, ax = plt.subplots(figsize=(7, 2.6))
    parts = [("compute", s["compute_s"]), ("exposed communication", s["exposed_comm_s"]), ("pipeline bubble", s["bubble_s"]),
             ("optimizer", s["optimizer_s"]), ("framework (host)", s["framework_s"])]
    left = 0.0
    for (label, v), color in zip(parts, ("tab:blue", "tab:red", "tab:gray", "tab:green", "tab:purple")):
        ax.barh([0], [v], left=left, color=color, label=f"{label} {v:.3g} s")
        left += v
    ax.set_yticks([])
    ax.set_xlabel("seconds per step")
    ax.set_title(f"{s['model']}: one step on {s['devices']} devices (dp {s['dp']}, tp {s['tp']}, pp {s['pp']})")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2)
    atomic_write(out / "breakdown.png", _fig_png(fig))
    points = []
    j = r.job
    dp = 1
    while dp <= j.dp:
        if j.global_batch % (dp * j.microbatch) == 0:
            jj = dataclasses.replace(j, dp=dp)
            try:
                rr = run(jj, m)
                points.append((jj.devices, rr.samples_per_s / jj.devices))
            except HwsimError:
                pass
        dp *= 2
    fig, ax = plt.subplots(figsize=(6, 4))
    if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, "o-", label="simulated")
        ax.plot(xs, [ys[0]] * len(xs), "k--", label="linear scaling")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_ylim(0, 1.15 * max(ys))
    ax.set_xlabel("devices (data-parallel replicas x tp x pp)")
    ax.set_ylabel("samples / s per device")
    ax.set_title(f"{s['model']}: scaling at tp {j.tp}, pp {j.pp}, global batch {j.global_batch}")
    ax.legend(fontsize=8)
    atomic_write(out / "scaling.png", _fig_png(fig))
    click.echo(f"wrote {out} (summary.json, breakdown.png, scaling.png)")

"""The ``hwsim`` command line: thin wrappers over the library.

Bad input exits with code 2 and a one-line ``hwsim: error: ...`` message, never a
traceback. Commands that need no torch do not import it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from workloads.errors import HwsimError

from .cli_options import cache_option, columns_option, design_options, lowering_options, with_model_help
from .cli_tools import COMMANDS
from .output import emit, file_format, hanging, wrap, write_rows
from .simulate import POLICIES, how, resolve_model

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwsim")
@click.option("--debug", is_flag=True, envvar="HWSIM_DEBUG",
              help="On an error, print the full traceback after the one-line message.")
@click.option("--max-memory", default=None, metavar="SIZE", envvar="HWSIM_MAX_MEMORY",
              help="Refuse a request whose estimated memory is larger (default 4G).")
@click.option("--max-time", default=None, metavar="DURATION", envvar="HWSIM_MAX_TIME",
              help="Refuse a request whose estimated run time is longer (default 10m); when given, also stop "
                   "your model code (file.py:factory) after this long.")
def cli(debug: bool, max_memory: str | None, max_time: str | None) -> None:
    """hwsim: algorithm-hardware co-design of deep-learning accelerators.

    PyTorch models are lowered into workload traces (graphs of ops) that drive
    hardware models: cycle-level systolic arrays and EIE, and a per-wave tensor-core
    GPU model whose main loops are stepped on a cycle-level SM, with an event-driven
    reference; energy models and reports
    score the design choices.

    Bad input and failures in your model's code exit 2 with one line; an error in
    hwsim itself exits 70 ("internal error"); --debug adds the traceback to either.
    Requests are estimated before they run and refused over --max-memory or --max-time.
    """
    _STATE["debug"] = debug
    from sim.budget import parse_bytes, parse_seconds
    # checked here, kept in the environment so that sweep workers see the same limits
    if max_memory is not None:
        parse_bytes(max_memory)
        os.environ["HWSIM_MAX_MEMORY"] = max_memory
    if max_time is not None:
        parse_seconds(max_time)
        os.environ["HWSIM_MAX_TIME"] = max_time


_STATE = {"debug": False}


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def models(fmt: str) -> None:
    """List the model zoo, one line each."""
    from workloads.zoo import ZOO

    rows = [{"name": e.name, "kind": "torch" if e.torch else "trace", "published_gmacs": e.reference,
             "description": e.description} for e in ZOO.values()]
    if fmt == "table":
        w = max(len(r["name"]) for r in rows)
        for r in rows:
            click.echo(hanging(f"{r['name']:<{w}}  ", r["description"]))
    elif fmt == "csv":
        import pandas as pd
        click.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)
    else:
        import json
        click.echo(json.dumps(rows, indent=1))


@with_model_help
@cli.command()
@click.argument("model")
@click.option("--batch", type=int, default=None, help="Batch size (default: the model's own).")
@click.option("--seq-len", type=int, default=None, help="Sequence length for recurrent models.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the trace here (.json; with --keep-weights the tensors go to a .npz beside it).")
@click.option("--keep-weights", is_flag=True, help="Store the real weight tensors in the trace.")
@click.option("--winograd", type=click.Choice(["2", "4"]), default=None,
              help="Rewrite 3x3 stride-1 convs as Winograd F(2x2,3x3) or F(4x4,3x3).")
@lowering_options
@cache_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@columns_option
def lower(model: str, batch: int | None, seq_len: int | None, output: str | None, keep_weights: bool,
          winograd: str | None, train, optimizer, recompute, precision, attention, decode, no_cache: bool,
          fmt: str, columns: str | None) -> None:
    """Lower MODEL into a workload trace and print one row per op.

    Columns: name, op, kind, phase, M, N, K (the GEMM or im2col view of one
    instance), copies (independent instances; conv groups included) and steps
    (dependent instances), macs (all instances), weight/act density (measured) and
    bits, and producers (the ops whose outputs it reads).
    """
    lowering, tc = how(train, optimizer, recompute, precision, attention, decode)
    if tc:
        raise HwsimError(f"--precision {tc} is a GPU tensor-core type; for a trace use {', '.join(POLICIES)}")
    wl = resolve_model(model, batch=batch, seq_len=seq_len, keep_weights=keep_weights, how=lowering,
                       cache=not no_cache)
    if winograd:
        from workloads.compress.winograd import lower as wino
        wl = wino(wl, int(winograd))
    if output:
        wl.save(output)
    rows = wl.rows()
    total = {"op": f"{len(rows)} ops", "macs": wl.macs}
    emit(rows, total, fmt, title=f"{wl.name}: batch {wl.batch}, {wl.macs / 1e9:.4g} GMACs", columns=columns)


@cli.command()
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Topology CSV to write.")
@click.option("--form", type=click.Choice(["conv", "gemm"]), default="conv", show_default=True,
              help="SCALE-Sim's conv topology or its GEMM (M,N,K) topology.")
@click.option("--batch", type=int, default=None)
@click.option("--seq-len", type=int, default=None)
@cache_option
def topology(model: str, output: str, form: str, batch: int | None, seq_len: int | None, no_cache: bool) -> None:
    """Export MODEL as a SCALE-Sim topology CSV (vector ops are left out).

    A topology CSV is also accepted wherever a MODEL is, so traces come back the same way.
    """
    from workloads.scalesim_topo import write_topology

    wl = resolve_model(model, batch=batch, seq_len=seq_len, cache=not no_cache)
    write_topology(wl, output, form)
    click.echo(f"wrote {output} ({form} form)")


@cli.command()
@click.option("--precision", "show_precision", is_flag=True,
              help="Also say, for each preset, what precision a trace's ops run at and where activations live.")
@click.option("--sources", "show_sources", is_flag=True,
              help="Then every constant of each model (machine families, systems, node scaling, SCALE-Sim, "
                   "lowering) with its value, kind (published, measured, modelling choice, assumption, policy, "
                   "calibration) and source.")
def archs(show_precision: bool, show_sources: bool) -> None:
    """List the hardware presets (name, machine family, static power, source)."""
    from sim.registry import presets

    for name, arch in presets().items():
        static = f"{arch.static_power_w:g} W idle" if arch.static_power_w else "dynamic only"
        click.echo(hanging(f"{name:<14} {arch.family:<9} {static:<13} ", arch.source))
        if show_precision:
            click.echo(wrap(f"  precision: {arch.precision_policy}", 100).replace("\n  ", "\n    "))
    if show_sources:
        from .sources import lines
        for line in lines():
            click.echo(line)


@with_model_help
@cli.command()
@click.argument("model")
@design_options
@lowering_options
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="parquet needs -o and pyarrow (pip install -e '.[parquet]').")
@columns_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the rows (every column, TOTAL last) to this file in --format csv, json or parquet.")
def simulate(model: str, fmt: str, columns: str | None, output: str | None, **design: Any) -> None:
    """Simulate MODEL on a hardware design; one row per op plus totals.

    Core columns, the same on every machine: name, op, phase, precision, macs, cycles,
    stall_cycles (waiting on memory), start_us and time_us (the op's place in the
    schedule), utilization (useful MACs / peak MACs over the op's cycles),
    sram_read_bytes, sram_write_bytes, dram_read_bytes, dram_write_bytes, and energy_pj
    with its split by memory level, compute, static and operand; each machine adds its own
    (EIE: load_balance, starved_cycles; GPU: tflops, waves, bound; systolic:
    compute_cycles, weight_load_cycles).
    """
    fmt = file_format(output, fmt)
    ev = _evaluate(model, **design)
    res = ev.result
    total = res.total()
    total.update(ev.energy_total)
    if output:
        write_rows(ev.rows + [{"name": "TOTAL", **total}], output, fmt)
        click.echo(f"wrote {output} ({len(ev.rows)} ops + TOTAL, {fmt})")
        return
    from .sparsity import ignored_note
    from .table import SIM_COLUMNS

    search = f"; each op in its best dataflow for {design['objective']}, see the dataflow column" \
        if design["mapping"] == "search" else ""
    emit(ev.rows, total, fmt, title=f"{ev.workload.name} on {ev.arch.name} ({ev.family}, {res.clock_mhz:g} MHz; "
         f"energy: {ev.pricing()}{search})", columns=columns, default=SIM_COLUMNS,
         note="; ".join(n for n in (ev.precision_note(), ignored_note(ev.rows, ev.arch)) if n))


def _evaluate(model: str, no_cache: bool, table: str | None, node: float | None, compress_plan: str | None,
              **design: Any) -> Any:
    """:func:`analysis.simulate.simulate` with the CLI's option names and a progress bar."""
    from .progress import op_bar
    from .simulate import simulate as run

    with op_bar(f"{model} on {design['arch']}") as tick:
        return run(model, cache=not no_cache, energy_table=table, node_nm=node, compress=compress_plan,
                   progress=tick, **design)


@with_model_help
@cli.command()
@click.argument("model")
@design_options
@lowering_options
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True, help="Output directory.")
@click.option("--force", is_flag=True, help="Replace a report of another workload or design already in OUT.")
def report(model: str, out: str, force: bool, **design: Any) -> None:
    """Simulate MODEL on a design and write a report to OUT.

    OUT gets ops.csv (per op, with energy), summary.json and summary.csv, the energy
    breakdown, latency, utilisation and roofline plots, and report.html. A folder holding
    the report of another workload or design is refused unless --force.
    """
    from .report import report_into, summary_lines

    ev = _evaluate(model, **design)
    d = report_into(ev, out, force)
    for line in summary_lines(ev):
        click.echo(line)
    click.echo(f"wrote {d}/report.html")


@cli.command()
@click.argument("model")
@click.option("--arch", "archs", multiple=True, required=True, help="One or more designs (repeat the option).")
@click.option("--compress", "plans", multiple=True, type=click.Path(dir_okay=False),
              help="Compression plans to compare on each design, besides the uncompressed model (repeatable).")
@click.option("--batch", type=int, default=None)
@click.option("--seq-len", type=int, default=None)
@click.option("--energy-table", "table", default=None,
              help="Energy table for every design (default: each design's energy_table, else horowitz45).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), default=None,
              help="Write compare.csv and compare.png here.")
@cache_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def compare(model: str, archs, plans, batch, seq_len, table, out, no_cache, fmt) -> None:
    """Put two or more designs, or compression choices (--compress), side by side on
    MODEL: one table, one plot."""
    from .report import compare as cmp

    variants = [(a, None) for a in archs] + [(a, p) for a in archs for p in plans]
    if len(variants) < 2:
        raise HwsimError("compare needs at least two designs (--arch) or a design and a --compress plan")
    evs = [_evaluate(model, arch=a, batch=batch, seq_len=seq_len, table=table, node=None, compress_plan=p,
                     no_cache=no_cache) for a, p in variants]
    # a design by what the user typed, but ZigZag's files by the design's name (paths are long)
    names = [ev.arch.name if a.startswith("zigzag:") else a for ev, (a, _) in zip(evs, variants)]
    labels = [n if p is None else f"{n}+{Path(p).stem}" for n, (_, p) in zip(names, variants)]
    from workloads.fileio import locked_folder
    with locked_folder(out, "compare folder") if out else contextlib.nullcontext():
        df = cmp(evs, out, labels=labels)
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", indent=1))
    else:
        from .table import render
        click.echo(render(df.to_dict("records"), list(df.columns), keep=tuple(df.columns)))
    if out:
        click.echo(f"wrote {Path(out) / 'compare.csv'}, compare.png and compare.html")


@with_model_help
@cli.command()
@click.argument("model")
@click.option("--batch", type=int, default=None, help="Batch size (default: the model's own).")
@click.option("--seq-len", type=int, default=None, help="Sequence length.")
@lowering_options
@cache_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def memory(model, batch, seq_len, train, optimizer, recompute, precision, attention, decode, no_cache, fmt) -> None:
    """Memory footprint of MODEL by category, and its peak over the run.

    Training (--train): weights, gradients, optimizer states (fp32 master weights
    included under mixed precision), activations kept for backward (after
    --recompute) and the peak from the graph's lifetimes. Inference: weights,
    activations alive at once and a decode's KV cache. The JSON keys are params,
    weights_bytes, gradients_bytes, optimizer_bytes, activations_bytes, kv_cache_bytes
    and peak_bytes.
    """
    import json

    from workloads.memory import CATEGORIES, footprint

    lowering, tc = how(train, optimizer, recompute, precision, attention, decode)
    if tc:
        raise HwsimError(f"--precision {tc} is a GPU tensor-core type; for memory use {', '.join(POLICIES)}")
    f = footprint(resolve_model(model, batch=batch, seq_len=seq_len, how=lowering, cache=not no_cache))
    if fmt == "json":
        click.echo(json.dumps(f, indent=1))
        return
    kind = f"training step ({f['optimizer']}, recompute {f['recompute']})" if train else "inference"
    click.echo(f"{f['model']}: {f['params'] / 1e6:,.1f} M parameters, {f['precision']}, {kind}")
    for k in CATEGORIES:
        if k in f and (f[k] or k in ("weights_bytes", "peak_bytes")):
            click.echo(f"  {k[:-6]:<12} {f[k] / 2 ** 30:12.3f} GiB")


@with_model_help
@cli.command()
@click.argument("model")
@click.option("--system", "system_spec", default="dgx-a100", show_default=True,
              help="A system preset (see 'hwsim systems') or a YAML file {base: PRESET, FIELD: VALUE}.")
@click.option("--gpus", type=int, default=None, help="Devices to use (default: one node, or --nodes whole nodes).")
@click.option("--nodes", type=int, default=None, help="Whole nodes to use.")
@click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel degree (within a node).")
@click.option("--pp", type=int, default=1, show_default=True, help="Pipeline stages.")
@click.option("--dp", type=int, default=None, help="Data-parallel replicas (default: devices / (tp x pp)).")
@click.option("--global-batch", type=int, required=True, help="Samples per step over all replicas.")
@click.option("--microbatch", type=int, default=None, help="Samples per microbatch (default: the fastest that fits).")
@click.option("--recompute", type=click.Choice(["none", "selective", "full"]), default=None,
              help="Activation recomputation (default: the fastest that fits).")
@click.option("--schedule", default=None, help="1f1b, gpipe or interleaved:V (default: the fastest that fits).")
@click.option("--stage-layers", default=None, metavar="N,N,...",
              help="Layers of each pipeline stage (each chunk with interleaved:V), in model order; default: an "
                   "even split where pp divides the layers, else the split that balances the stages' time "
                   "(the embedding on the first, the head on the last).")
@click.option("--sequence-parallel", is_flag=True,
              help="Sequence parallelism (Korthikanti et al., 2022; transformers, --tp 2 or more): layer norms, "
                   "dropout and residual adds split along the sequence over the tensor-parallel group, each "
                   "all-reduce a reduce-scatter and an all-gather. With --search: on wherever tp > 1.")
@click.option("--tp-comm-overlap", is_flag=True,
              help="With --sequence-parallel: pipeline each all-gather and reduce-scatter with its GEMM in tp "
                   "chunks, as Megatron-Core's --tp-comm-overlap does (Transformer Engine's userbuffers).")
@click.option("--zero", type=click.IntRange(0, 3), default=0, show_default=True, help="ZeRO stage (0: none).")
@click.option("--overlap-param-gather", is_flag=True,
              help="With --zero 1 or 2 (a distributed optimizer): the parameters' all-gather after the optimizer "
                   "step runs under the next step's forward, bucket by bucket (Megatron-Core's "
                   "--overlap-param-gather).")
@click.option("--zero3", default=None,
              help="With --zero 3 (or --search): whose schedule gathers and reduces (sim.system.zero): deepspeed "
                   "(DeepSpeed's defaults; the default), deepspeed-2021 (DeepSpeed v0.3.14: a collective per parameter "
                   "tensor, a device sync per module fetch), megatron-deepspeed (its Megatron GPT recipe) or fsdp "
                   "(PyTorch FSDP's defaults).")
@click.option("--ep", type=int, default=1, show_default=True,
              help="Expert parallelism of a mixture of experts (mixtral-8x7b, moe-tiny): its experts split over "
                   "this many data-parallel replicas of a node, tokens dispatched and combined by all-to-alls "
                   "(analysis.train_moe). With --search: 1 tries every degree that splits the experts.")
@click.option("--expert-imbalance", type=float, default=1.0, show_default=True,
              help="With --ep 2 or more and dropless routing: the busiest expert-parallel device's routed tokens "
                   "over the group's mean (MaxVio + 1, Wang et al. 2024); that device's experts and all-to-alls "
                   "set the pace (1: balanced).")
@click.option("--data-loading-ms", type=float, default=0.0, show_default=True,
              help="Host time per step the data loader's workers do not hide (ms): a framework term of the "
                   "step, shown apart (off by default: loaders usually hide it).")
@click.option("--precision", default="bf16-o2", show_default=True,
              help="bf16-o2 or fp16-o2 (the model cast to 16 bits, fp32 master weights: Megatron-LM, DeepSpeed), "
                   "fp16-mixed, bf16-mixed, fp8-mixed (as torch.autocast runs them), fp8-hybrid (FP8 as Transformer "
                   "Engine runs it under Megatron-LM/NeMo: the blocks' Linear layers in FP8 with TE's casts, the "
                   "rest bf16-o2; GPUs with FP8 tensor cores) or fp32.")
@click.option("--attention", type=click.Choice(["unfused", "fused"]), default="unfused", show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]), default="adam", show_default=True)
@click.option("--seq-len", type=int, default=None, help="Tokens per sample (transformers; default the model's).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Hyper-parameter parallel: this many independent copies of the job share the devices.")
@click.option("--search", is_flag=True, help="Rank every valid (dp, tp, pp, microbatch, recompute, schedule, zero).")
@click.option("--top", type=int, default=15, show_default=True, help="Rows of --search to print.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="--search: local processes (one tensor-parallel degree each).")
@click.option("--cluster", default=None, is_flag=False, flag_value="local",
              help="--search on Dask distributed: '--cluster' starts a LocalCluster of --workers, "
                   "'--cluster ADDRESS' joins a scheduler (needs the 'cluster' extra).")
@click.option("--timeline", type=click.Path(dir_okay=False), default=None,
              help="Write the step as a Chrome/Perfetto trace JSON (ui.perfetto.dev opens it).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), default=None,
              help="Write summary.json, the step breakdown and the scaling curve (PNG) here.")
@cache_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def train(model: str, no_cache: bool, **job: Any) -> None:
    """Simulate one training step of MODEL split over a system's devices.

    Data, tensor (Megatron-style, with sequence parallelism), pipeline and expert parallelism,
    ZeRO 1-3, activation recomputation, mixed precision and FP8. Each device's compute comes
    from its own simulator on its shard of the training-step trace; collectives (as NCCL's
    tuning model times them) and the pipeline schedule are simulated as events over the
    system's links. Reports the step time, samples and tokens per second, TFLOP/s per device
    (Megatron's model FLOPs, and the hardware's), MFU, the split into compute, exposed
    communication, bubble, optimizer and the framework's host time, and memory per device. A
    configuration that does not fit the device's memory is refused.
    """
    from .train_cli import train_command
    train_command(model=model, cache=not no_cache, **job)


@cli.command()
def systems() -> None:
    """List the system presets (devices, fabrics, sources)."""
    from sim.system.topology import PRESETS

    for name, s in PRESETS.items():
        inter = f", {s.inter.bandwidth_gbs:g} GB/s per device between nodes" if s.inter else ""
        click.echo(hanging(f"{name:<10} ", f"{s.devices_per_node} x {s.device} per node, {s.intra.kind} "
                                          f"{s.intra.bandwidth_gbs:g} GB/s{inter}; {s.source}"))


for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    env = {k: os.environ.get(k) for k in ("HWSIM_MAX_MEMORY", "HWSIM_MAX_TIME")}
    try:
        cli.main(args=argv, prog_name="hwsim", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("hwsim: interrupted (KeyboardInterrupt); files already written are whole", err=True)
        return 130
    except click.UsageError as e:       # one line, like every other refusal
        cmd = e.ctx.command_path if e.ctx else "hwsim"
        click.echo(f"{cmd}: error: {e.format_message().rstrip('.')}; see '{cmd} --help'", err=True)
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"hwsim: error: {e.format_message()}", err=True)
        return e.exit_code
    except HwsimError as e:
        click.echo(f"hwsim: error: {_one_line(e)}", err=True)
        _traceback(getattr(e, "original", e))
        return 2
    except MemoryError as e:
        click.echo(f"hwsim: error: ran out of memory ({type(e).__name__}{': ' + _one_line(e) if str(e) else ''}); "
                   f"make the request smaller or lower hwsim --max-memory to be refused before it starts", err=True)
        _traceback(e)
        return 2
    except OSError as e:
        click.echo(f"hwsim: error: {_one_line(e)}", err=True)
        _traceback(e)
        return 2
    except SystemExit as e:  # click's --help / --version
        return e.code if isinstance(e.code, int) else 0
    except Exception as e:
        click.echo(f"hwsim: internal error, please report: {type(e).__name__}: {_one_line(e)}"
                   f"{'' if _STATE['debug'] else ' (--debug shows the traceback)'}", err=True)
        _traceback(e)
        return 70
    finally:
        _STATE["debug"] = False
        for k, v in env.items():          # the limits of this call only (tests call main in process)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return 0


def _one_line(e: BaseException) -> str:
    """A message on one line (a parser's message may span several)."""
    return " ".join(ln.strip() for ln in str(e).splitlines() if ln.strip()) or type(e).__name__


def _traceback(e: BaseException) -> None:
    """The full traceback of ``e`` on stderr, with --debug (or HWSIM_DEBUG=1)."""
    if _STATE["debug"]:
        import traceback
        click.echo("".join(traceback.format_exception(e)).rstrip(), err=True)


if __name__ == "__main__":
    sys.exit(main())

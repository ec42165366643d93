"""Evaluate a design on a workload (simulate + energy), summarise, plot, write reports."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.machine import HasCycleCounters, HasEnergyTable, HasKernelOptions, Machine, NamesItsEnergyModel, Peaks
from sim.result import SimResult
from workloads.fileio import atomic_write
from workloads.errors import HwsimError
from workloads.trace import Workload

from .energy import EnergyTable, energy_rows, load_table, prices_itself

__all__ = ["other_report", "report_into", "Evaluation", "DEFAULT_TABLE", "design_table", "evaluate", "summary_lines", "ceilings", "figures",
           "plots", "write_report", "compare"]


@dataclass(repr=False)
class Evaluation:
    workload: Workload
    arch: Machine
    table: EnergyTable
    result: SimResult
    rows: list[dict]
    energy_total: dict

    @property
    def family(self) -> str:
        return self.arch.family

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Evaluation({s['workload']!r} on {s['design']!r}: batch {s['batch']}, {s['time_us']:,.1f} us, "
                f"utilisation {100 * s['utilization']:.1f}%, {s['energy_per_sample_uj']:,.2f} uJ per "
                f"{'sample' if s['training'] else 'inference'}; .to_frame() has the {s['ops']} ops)")

    def _repr_html_(self) -> str:
        """A notebook's view: the summary line and the first 20 ops."""
        import html
        return f"<p>{html.escape(repr(self))}</p>" + self.to_frame().head(20).to_html(index=False)

    def to_frame(self):
        """The per-op rows (every column of ``hwsim simulate``, energy included) as a pandas
        DataFrame; ``summary()`` has the totals."""
        import pandas as pd
        return pd.DataFrame(self.rows)

    def pricing(self) -> str:
        """Who priced the energy: the energy table, or the design's own events first."""
        from .energy import prices_itself

        table = f"{self.table.name} at {self.table.technology_nm:g} nm"
        return f"the design's own per-event energies, {table} for the rest" if prices_itself(self.arch) else table

    def precision_changes(self) -> dict[str, int]:
        """``"fp32 -> int8"``: how many ops ran at another precision than the trace states
        (its input operand's type and width), by change."""
        out: Counter[str] = Counter()
        for op, r in zip(self.workload.ops, self.result.ops):
            o = op.operand("input") or (op.operands[0] if op.operands else None)
            if o is None or not r.precision:
                continue
            kind = {"float": "fp", "int": "int", "fixed": "fixed"}.get(o.dtype, o.dtype)
            traced = f"{kind}{o.bits}"
            if traced != r.precision:
                out[f"{traced} -> {r.precision}"] += 1
        return dict(out)

    def precision_note(self, rule: bool = False) -> str:
        """One line for summaries: what the machine changed (and, with ``rule``, its policy)."""
        ch = self.precision_changes()
        n = len(self.result.ops)
        what = "; ".join(f"{k} on {v} of {n} ops" for k, v in sorted(ch.items(), key=lambda kv: -kv[1]))
        head = f"precision changed by {self.arch.name}: {what}" if ch else "precision: as the trace states"
        return f"{head}. {self.arch.precision_policy}" if rule else \
            f"{head} (the design's rule: hwsim archs --precision)"

    def phases(self) -> dict[str, dict[str, float]]:
        """Time (the ops' own time; overlapping ops counted once each), energy and MACs per phase."""
        out: dict[str, dict[str, float]] = {}
        for r in self.rows:
            p = out.setdefault(r["phase"], {"time_us": 0.0, "energy_pj": 0.0, "macs": 0.0})
            p["time_us"] += r["time_us"]
            p["energy_pj"] += r["energy_pj"]
            p["macs"] += r["macs"]
        return out

    def summary(self) -> dict[str, Any]:
        res = self.result
        t = res.total()
        time_s = res.time_us * 1e-6
        e = self.energy_total.get("energy_pj", 0.0)
        levels = {lv: self.energy_total.get(f"energy_{lv}_pj", 0.0) for lv in self.arch.memory_levels()}
        tokens = self.workload.meta.get("tokens_per_sample")
        return {
            "workload": self.workload.name, "design": self.arch.name, "machine": self.family,
            "clock_mhz": res.clock_mhz, "batch": self.workload.batch, "ops": len(res.ops), "macs": res.macs,
            "cycles": res.cycles, "time_us": res.time_us, "critical_path_us": t["critical_path_us"],
            "training": any(o.phase != "forward" for o in self.workload.ops),
            # a sample: one inference, or one training sample of a training step's batch
            "throughput_samples_per_s": self.workload.batch / time_s if time_s else 0.0,
            # models that read token ids (workloads.spec: the sequence, plus a decode's tokens)
            "tokens_per_sample": tokens,
            "throughput_tokens_per_s": self.workload.batch * tokens / time_s if tokens and time_s else None,
            "energy_per_token_uj": e / self.workload.batch / tokens / 1e6 if tokens else None,
            "tops": 2 * res.macs / time_s / 1e12 if time_s else 0.0, "utilization": t["utilization"],
            "energy_pj": e, "energy_per_sample_uj": e / self.workload.batch / 1e6,
            "power_w": e * 1e-12 / time_s if time_s else 0.0,
            "energy_compute_pj": self.energy_total.get("energy_compute_pj", 0.0),
            "energy_static_pj": self.energy_total.get("energy_static_pj", 0.0),
            "energy_active_pj": self.energy_total.get("energy_active_pj", 0.0),
            "static_power_w": self.arch.static_power_w,
            "energy_by_level_pj": levels, "energy_table": self.table.name,
            "technology_nm": self.table.technology_nm,
            "phases": self.phases(),
            "sparsity_ignored_ops": sum(1 for r in self.rows if r.get("sparsity_ignored")),
            "precision_changes": self.precision_changes(), "precision_policy": self.arch.precision_policy,
            "dram_bytes": t["dram_read_bytes"] + t["dram_write_bytes"],
            "sram_bytes": t["sram_read_bytes"] + t["sram_write_bytes"],
            # a machine that splits its cycles (a systolic array: the TPU paper's Table 3 rows)
            "cycle_counters": dict(self.arch.cycle_counters(res)) if isinstance(self.arch, HasCycleCounters) else {},
        }


DEFAULT_TABLE = "horowitz45"


def design_table(arch) -> str:
    """The energy table a design is priced with when none is named: its own
    ``energy_table`` (a built-in name or a file), else :data:`DEFAULT_TABLE`."""
    return (arch.energy_table if isinstance(arch, HasEnergyTable) else "") or DEFAULT_TABLE


def evaluate(workload: Workload, arch_spec, table: str | EnergyTable | None = None, node_nm: float | None = None,
             progress=None, mapping: str = "fixed", objective: str = "edp", **sim_kw) -> Evaluation:
    """Simulate ``workload`` on a design and price it with ``table`` (default: the design's
    own, see :func:`design_table`), scaled to the design's technology node unless
    ``node_nm`` says otherwise. ``mapping="search"`` runs each op in its best mapping
    family for ``objective`` (``analysis.mapping``)."""
    from sim.registry import check_options, resolve_arch, simulate

    arch = resolve_arch(arch_spec)
    if table is None:
        try:
            tab = load_table(design_table(arch))
        except HwsimError as e:
            raise HwsimError(f"design {arch.name}: energy_table: {e}") from None
    else:
        tab = load_table(table) if isinstance(table, str) else table
    tab = tab.at_node(node_nm if node_nm is not None else arch.technology_nm)
    if mapping == "search":
        from .mapping import search
        check_options(arch, sim_kw)
        res, _ = search(workload, arch, tab, objective, progress=progress, **sim_kw)
    elif mapping == "fixed":
        res = simulate(workload, arch, progress=progress, **sim_kw)
    else:
        raise HwsimError(f"--mapping: must be fixed or search, got {mapping!r}")
    rows, tot = energy_rows(res, arch, tab)
    from .sparsity import of_op
    for row, op in zip(rows, workload.ops):
        row["sparsity_used"], row["sparsity_ignored"] = of_op(op, arch)
    return Evaluation(workload, arch, tab, res, rows, tot)


def summary_lines(ev: Evaluation) -> list[str]:
    """The summary ``hwsim report`` prints: throughput, energy per sample (an inference, or a
    training sample) and power, each phase (training), the energy by memory level, a
    machine's cycle counters, the precision."""
    from .output import wrap

    s = ev.summary()
    each = "sample (training step)" if s["training"] else "inference"
    out = [f"{s['workload']} on {s['design']}: batch {s['batch']}, {s['cycles']} cycles, {s['time_us']:.1f} us per batch, "
           f"{s['throughput_samples_per_s']:.1f} {each.split(' ')[0]}s/s, {s['tops']:.2f} TOPS, "
           f"utilisation {100 * s['utilization']:.1f}%, {s['energy_per_sample_uj']:.1f} uJ per {each} "
           f"({s['energy_pj'] / 1e6:.1f} uJ per batch), {s['power_w']:.2f} W"
           + (f"; {s['tokens_per_sample']} tokens per sample: {s['throughput_tokens_per_s']:.4g} tokens/s, "
              f"{s['energy_per_token_uj']:.4g} uJ per token" if s["tokens_per_sample"] else "")]
    out = [wrap(out[0])]
    if len(s["phases"]) > 1:
        out.append("  per batch, by phase:")
        out += [f"  {ph:<9} {v['time_us']:12.1f} us {v['energy_pj'] / 1e6:12.2f} uJ {v['macs'] / 1e9:10.3f} GMACs"
                for ph, v in s["phases"].items()]
    out.append(f"  energy per batch of {s['batch']}, by memory level and kind:")
    out += [f"  energy {lv:<12} {e / 1e6:12.2f} uJ" for lv, e in s["energy_by_level_pj"].items()]
    out.append(f"  energy {'compute':<12} {s['energy_compute_pj'] / 1e6:12.2f} uJ")
    for k in ("static", "active"):
        if s.get(f"energy_{k}_pj"):
            out.append(f"  energy {k:<12} {s[f'energy_{k}_pj'] / 1e6:12.2f} uJ")
    if s["cycle_counters"]:
        out.append(wrap("  cycles: " + ", ".join(f"{k.removesuffix('_%').replace('_', ' ')} {v:.1f}%"
                                                 for k, v in s["cycle_counters"].items())))
    out.append(wrap(ev.precision_note()))
    from .sparsity import ignored_note
    note = ignored_note(ev.rows, ev.arch)
    if note:
        out.append(wrap(note))
    return out


# ---- ceilings ------------------------------------------------------------------------------------
def ceilings(ev: Evaluation) -> Peaks:
    """The design's ceilings at the precision most of its MACs ran at (for the roofline)."""
    macs: Counter[str] = Counter()
    for r in ev.rows:
        if r["macs"] and r.get("precision"):
            macs[r["precision"]] += r["macs"]
    return ev.arch.peaks(macs.most_common(1)[0][0] if macs else None)


# ---- plots ---------------------------------------------------------------------------------------
def _fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def figures(ev: Evaluation, top: int = 40) -> dict[str, Any]:
    """The report's figures (matplotlib), by file name; see :mod:`analysis.plots`."""
    from . import plots as P

    return {"energy_breakdown.png": P.energy(ev, top), "latency.png": P.latency(ev, top),
            "utilization.png": P.utilization(ev, top), "roofline.png": P.roofline(ev, ceilings(ev))}


def plots(ev: Evaluation, top: int = 40) -> dict[str, bytes]:
    """The report's figures as PNG bytes."""
    return {name: _fig_png(fig) for name, fig in figures(ev, top).items()}


# ---- writing -------------------------------------------------------------------------------------
def other_report(outdir: str | Path, ev: Evaluation) -> str | None:
    """``'X on Y'`` when ``outdir`` holds the report of another workload or design than ``ev``'s."""
    try:
        held = json.loads((Path(outdir) / "summary.json").read_text(encoding="utf-8"))
        run = (held["workload"], held["design"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if run == (ev.workload.name, ev.arch.name) else f"{run[0]} on {run[1]}"


# every file write_report writes (a folder holding others is not only a report)
REPORT_FILES = frozenset({"ops.csv", "summary.json", "summary.csv", "report.html", "energy_breakdown.png",
                          "latency.png", "utilization.png", "roofline.png"})


def report_into(ev: Evaluation, outdir: str | Path, force: bool = False) -> Path:
    """``write_report`` into ``outdir``, locked while it is written; a folder holding another
    workload's or design's report is refused unless ``force``.

    The report is written whole into a stage beside ``outdir`` and swapped in
    (:func:`workloads.fileio.staged_folder`): a run killed at any moment leaves the old report
    or the new one, never the new CSVs beside the old HTML. Since the folder is replaced whole,
    one holding files that are not a report's is refused, naming them."""
    from workloads.fileio import STAGE_MARK, locked_folder, staged_folder

    held = other_report(outdir, ev)
    if held and not force:
        raise HwsimError(f"-o {outdir}: holds the report of {held}; name another folder or add --force to replace it")
    with locked_folder(outdir, "report folder") as d:
        foreign = sorted(p.name for p in d.iterdir()
                         if p.name not in REPORT_FILES and not p.name.startswith(STAGE_MARK))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise HwsimError(f"-o {outdir}: holds files that are not a report's ({shown}); a report folder is "
                             "replaced whole, so name a new folder, or one holding only a report")
        with staged_folder(d) as stage:
            try:
                write_report(ev, stage)
            except HwsimError as e:      # name the report's file, not the stage's
                raise type(e)(str(e).replace(str(stage), str(outdir).rstrip("/") or "/")) from None
    return Path(outdir)


def write_report(ev: Evaluation, outdir: str | Path) -> Path:
    """ops.csv, summary.json, summary.csv, the PNG plots and report.html (plots embedded)."""
    import pandas as pd

    from .sparsity import ignored_note

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(ev.rows)
    atomic_write(out / "ops.csv", df.to_csv(index=False))
    summ = ev.summary()
    atomic_write(out / "summary.json", json.dumps(summ, indent=1, default=float))
    flat = {k: v for k, v in summ.items()
            if k not in ("energy_by_level_pj", "phases", "precision_changes", "cycle_counters")}
    flat["precision_changes"] = "; ".join(f"{k} ({v} ops)" for k, v in summ["precision_changes"].items()) or "none"
    for ph, v in summ["phases"].items():
        flat.update({f"{ph}_{k}": x for k, x in v.items()})
    flat.update({f"energy_{k}_pj": v for k, v in summ["energy_by_level_pj"].items()})
    flat.update({f"cycles_{k}": v for k, v in summ["cycle_counters"].items()})
    atomic_write(out / "summary.csv", pd.DataFrame([flat]).to_csv(index=False))
    pngs = plots(ev)
    for name, data in pngs.items():
        atomic_write(out / name, data)
    from .report_page import render
    from .table import cell

    cols = [c for c in ("name", "op", "phase", "precision", "macs", "cycles", "stall_cycles", "start_us", "time_us",
                        "utilization", "energy_pj", "dram_read_bytes", "dram_write_bytes",
                        "dataflow", "tile", "split_k", "stream_k", "fused", "sparsity") if c in df.columns]
    # dataflow: where a systolic op ran (differs per op under --mapping search); the last five: a GPU's kernel choice
    def shown(c: str, v: Any) -> tuple[str, Any]:
        """(the cell's text, its sort key: the number itself, else the text)."""
        text = ("yes" if v is True or v == 1 else "") if c == "stream_k" else cell(c, v)
        return text, v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)

    ops = [[shown(c, v) for c, v in zip(cols, row)] for row in df[cols].itertuples(index=False)]
    own = (ev.arch.energy_model if isinstance(ev.arch, NamesItsEnergyModel) else "the design's own per-access energies") \
        if prices_itself(ev.arch) else ""
    table = f"{ev.table.name} at {ev.table.technology_nm:g} nm"
    pricing = (f"Energy: {own}; the energy table {table} prices the rest. Table source: {ev.table.source}" if own
               else f"Energy table {table}. Source: {ev.table.source}")
    page = render(summ, pricing=pricing, source=ev.arch.source, precision=" ".join(n for n in (ev.precision_note(rule=True), ignored_note(ev.rows, ev.arch)) if n),
                  kernels=ev.arch.kernel_note() if isinstance(ev.arch, HasKernelOptions) else "", pngs=pngs,
                  columns=cols, ops=ops)
    atomic_write(out / "report.html", page)
    return out


def compare(evals: list[Evaluation], outdir: str | Path | None = None, labels: list[str] | None = None):
    """One table (one row per design) and one plot (latency, energy, utilisation side by side)."""
    import pandas as pd

    rows = []
    for i, ev in enumerate(evals):
        s = ev.summary()
        label = labels[i] if labels else f"{s['design']}"
        rows.append({"design": label, "machine": s["machine"], "workload": s["workload"], "batch": s["batch"],
                     "time_us": s["time_us"], "cycles": s["cycles"],
                     "throughput_samples_per_s": s["throughput_samples_per_s"], "tops": s["tops"],
                     "utilization": s["utilization"], "energy_per_sample_uj": s["energy_per_sample_uj"],
                     "power_w": s["power_w"], "dram_bytes": s["dram_bytes"]})
    df = pd.DataFrame(rows)
    if outdir:
        out = Path(outdir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "compare.csv", df.to_csv(index=False))
        from . import plots as P
        from .compare_page import render
        pngs = {"compare.png": _fig_png(P.compare(df, rows[0]["workload"])),
                "energy_by_level.png": _fig_png(P.compare_energy(evals, list(df.design)))}
        atomic_write(out / "compare.png", pngs["compare.png"])
        notes = [(r["design"], f"{ev.pricing()}; {ev.arch.source or 'no source given'}") for r, ev in zip(rows, evals)]
        atomic_write(out / "compare.html", render(rows, rows[0]["workload"], rows[0]["batch"], pngs, notes))
    return df

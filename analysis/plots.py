"""The report's figures, as matplotlib Figure objects (tests read their titles, labels and
legends; :func:`analysis.report.plots` renders them to PNG).

Conventions shared by every figure: times in us, energy in uJ, utilisation in %, "ops"
= 2 x MACs (a MAC is a multiply and an add, as in TOPS figures and rooflines). Per-op
bar charts show the N largest ops in trace order and sum the rest into one "other" bar,
and say so in the title ("top 40 of 174 ops by time"). A workload of more than
``GROUP_ABOVE`` ops is shown by block and phase instead (``layers.11 backward``: the ops
named up to their first layer number; the optimizer's as one), so that no bar hides
hundreds of ops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .energy import prices_itself

if TYPE_CHECKING:
    from .report import Evaluation

__all__ = ["TOP", "GROUP_ABOVE", "LATENCY_PARTS", "block_of", "by_block", "pick", "latency_parts", "latency", "utilization", "energy", "roofline", "pareto",
           "compare"]

TOP = 40
GROUP_ABOVE = 100      # a presentation choice: more ops than this are shown by block and phase
# latency parts, in stacking order, and their colours
LATENCY_PARTS = (("compute", "tab:blue"), ("memory stall", "tab:red"), ("weight load", "tab:purple"),
                 ("host link", "tab:orange"), ("other", "tab:gray"))


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pick(rows: list[dict], key: Callable[[dict], float], top: int) -> tuple[list[int], list[int]]:
    """(the ``top`` rows by ``key``, in trace order; the rest)."""
    ranked = sorted(range(len(rows)), key=lambda i: -key(rows[i]))
    shown = sorted(ranked[:top])
    return shown, sorted(ranked[top:])


def _title_top(what: str, shown: list[int], rest: list[int], by: str, unit: str = "ops") -> str:
    n = len(shown) + len(rest)
    return f"{what}, top {len(shown)} of {n} {unit} by {by}" if rest else f"{what}, all {n} {unit}"


def block_of(name: str, phase: str) -> str:
    """The block an op belongs to: its name up to the first numbered part (``layers.11``), or
    its first part; the optimizer's ops are one block; other phases than forward are named."""
    if phase == "optimizer":
        return "optimizer"
    parts = name.split(".")
    cut = next((i for i, p in enumerate(parts) if p.isdigit()), 0)
    block = ".".join(parts[:cut + 1])
    return block if phase == "forward" else f"{block} {phase}"


def by_block(rows: list[dict]) -> tuple[list[dict], str]:
    """(``rows`` grouped by :func:`block_of` when there are more than ``GROUP_ABOVE``, in the
    order blocks first appear, and the unit the bars are: ops or blocks). Numbers add up;
    utilisation is weighted by time, as the TOTAL row's."""
    if len(rows) <= GROUP_ABOVE:
        return rows, "ops"
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(block_of(str(r["name"]), str(r.get("phase", "forward"))), []).append(r)
    out = []
    for name, members in groups.items():
        g: dict[str, Any] = {"name": f"{name} ({len(members)})", "phase": members[0].get("phase", "forward")}
        for k in {k for m in members for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}:
            g[k] = sum(float(m.get(k) or 0.0) for m in members if m.get(k) == m.get(k))
        mac_time = sum(m["time_us"] for m in members if m.get("macs"))
        g["utilization"] = (sum(m["utilization"] * m["time_us"] for m in members if m.get("macs")) / mac_time
                            if mac_time else 0.0)
        out.append(g)
    return out, "blocks"


def latency_parts(r: dict) -> dict[str, float]:
    """An op's time (us) split into compute, memory stall, weight load, host link and other.

    ``stall_cycles`` is time the compute units wait on memory; of it, a machine that loads
    weights into the array (systolic: ``weight_load_cycles``) names that part weight load,
    and one with a host link (systolic: ``host_read_cycles``) the input arriving over it;
    the output leaving over it (``host_write_cycles``) follows the op. Compute is
    ``compute_cycles`` where the machine reports it, else cycles less stalls; other is the
    rest (pipeline fill and drain, launch overhead, load imbalance)."""
    cyc = float(r.get("cycles") or 0)
    t = float(r.get("time_us") or 0)
    if cyc <= 0 or t <= 0:
        return {p: 0.0 for p, _ in LATENCY_PARTS}
    stall = min(float(r.get("stall_cycles") or 0), cyc)
    wl = min(float(r.get("weight_load_cycles") or 0), stall)
    host_in = min(_cycles(r, "host_read_cycles"), stall - wl)
    host_out = min(_cycles(r, "host_write_cycles"), cyc - stall)
    comp = r.get("compute_cycles")
    comp = cyc - stall - host_out if comp is None or comp != comp else min(float(comp), cyc - stall - host_out)
    other = max(cyc - stall - host_out - comp, 0.0)
    scale = t / cyc
    return {"compute": comp * scale, "memory stall": (stall - wl - host_in) * scale, "weight load": wl * scale,
            "host link": (host_in + host_out) * scale, "other": other * scale}


def _cycles(r: dict, key: str) -> float:
    v = r.get(key)
    return 0.0 if v is None or v != v else float(v)


def _bars(ax, names: list[str], stacks: list[tuple[str, Any, list[float]]]) -> None:
    import numpy as np
    x = np.arange(len(names))
    bottom = np.zeros(len(names))
    for label, color, vals in stacks:
        v = np.asarray(vals, dtype=float)
        if v.sum() > 0:
            ax.bar(x, v, bottom=bottom, label=label, color=color)
            bottom += v
    ax.set_xticks(x, names, rotation=90, fontsize=7)


def latency(ev: "Evaluation", top: int = TOP):
    rows, unit = by_block(ev.rows)
    shown, rest = pick(rows, lambda r: r["time_us"], top)
    parts = [latency_parts(rows[i]) for i in shown]
    names = [rows[i]["name"] for i in shown]
    if rest:
        other = [latency_parts(rows[i]) for i in rest]
        parts.append({p: sum(o[p] for o in other) for p, _ in LATENCY_PARTS})
        names.append(f"other ({len(rest)} {unit})")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(7, len(names) * 0.28), 4.5))
    _bars(ax, names, [(p, c, [q[p] for q in parts]) for p, c in LATENCY_PARTS])
    tallest = max((sum(q.values()) for q in parts), default=0.0)
    if tallest > 0:     # stacked bars' sticky edges leave no headroom; 8% above the tallest (a layout choice)
        ax.set_ylim(0, tallest * 1.08)
    ax.set_ylabel("time (us)")
    total = sum(r["time_us"] for r in rows)
    ax.set_title(_title_top(f"{ev.workload.name} on {ev.arch.name}: latency per {unit[:-1]} ({total:,.1f} us in all)",
                            shown, rest, "time", unit), fontsize=10)
    ax.legend(fontsize=8)
    return fig


def utilization(ev: "Evaluation", top: int = TOP):
    grouped, unit = by_block(ev.rows)
    rows = [r for r in grouped if r["macs"]]          # ops (blocks) with MACs: the array's work
    shown, rest = pick(rows, lambda r: r["time_us"], top)
    vals = [100 * rows[i]["utilization"] for i in shown]
    names = [rows[i]["name"] for i in shown]
    if rest:                                           # time-weighted, as the TOTAL row
        t = sum(rows[i]["time_us"] for i in rest)
        vals.append(100 * sum(rows[i]["utilization"] * rows[i]["time_us"] for i in rest) / t if t else 0.0)
        names.append(f"other ({len(rest)} {unit})")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(7, len(names) * 0.28), 4.5))
    _bars(ax, names, [("utilisation", "tab:green", vals)])
    overall = 100 * ev.result.total()["utilization"]
    ax.axhline(overall, color="k", ls="--", lw=1, label=f"whole workload (all ops' time): {overall:.1f}%")
    hi = max(vals + [overall]) if vals else overall
    ax.set_ylim(0, min(100.0, hi * 1.15) if hi > 0 else 1.0)
    ax.set_ylabel("utilisation (% of peak MACs)")
    ax.set_title(_title_top(f"{ev.workload.name} on {ev.arch.name}: utilisation per {unit[:-1]} ({unit} with MACs)",
                            shown, rest, "time", unit), fontsize=10)
    ax.legend(fontsize=8)
    return fig


def energy(ev: "Evaluation", top: int = TOP):
    """Dynamic energy per op by memory level and compute (left); the whole workload's dynamic
    and static energy (right): static power over the run is not an op's doing."""
    rows, unit = by_block(ev.rows)
    levels = list(ev.arch.memory_levels())
    dyn = lambda r: r["energy_pj"] - r.get("energy_static_pj", 0.0)   # noqa: E731
    shown, rest = pick(rows, dyn, top)
    keys = [("compute", "energy_compute_pj")] + [(lv, f"energy_{lv}_pj") for lv in levels]
    if ev.energy_total.get("energy_active_pj", 0.0):
        keys.append(("active power", "energy_active_pj"))
    names = [rows[i]["name"] for i in shown] + ([f"other ({len(rest)} {unit})"] if rest else [])
    stacks = []
    for n, (label, key) in enumerate(keys):
        vals = [rows[i].get(key, 0.0) / 1e6 for i in shown]
        if rest:
            vals.append(sum(rows[i].get(key, 0.0) for i in rest) / 1e6)
        stacks.append((label, f"C{n}", vals))
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(max(8, len(names) * 0.28 + 2), 4.8),
                                  gridspec_kw={"width_ratios": [max(len(names), 4), 3]})
    _bars(ax, names, stacks)
    ax.set_ylabel("dynamic energy (uJ)")
    ax.set_title(_title_top(f"{ev.workload.name} on {ev.arch.name}: dynamic energy per {unit[:-1]} by level",
                            shown, rest, "dynamic energy", unit), fontsize=10)
    ax.legend(fontsize=8)
    tot = ev.energy_total
    static = tot.get("energy_static_pj", 0.0) / 1e6
    total = tot.get("energy_pj", 0.0) / 1e6
    dynamic = total - static
    ax2.bar([0], [dynamic], color="tab:blue", label=f"dynamic {dynamic:,.1f} uJ")
    ax2.bar([0], [static], bottom=[dynamic], color="tab:brown",
            label=f"static {static:,.1f} uJ ({ev.arch.static_power_w:g} W)")
    ax2.set_xticks([0], ["whole workload"])
    ax2.set_ylabel("energy (uJ)")
    share = 100 * static / total if total else 0.0
    priced = ("the design's own per-access energies" if prices_itself(ev.arch)
              else f"{ev.table.name} at {ev.table.technology_nm:g} nm")
    ax2.set_title(f"static {share:.0f}% of {total:,.1f} uJ\n({priced})", fontsize=10)
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    return fig


def roofline(ev: "Evaluation", peaks, label_top: int = 5):
    """Each op with MACs at (ops per DRAM byte, ops/s), under the design's ceilings; the
    ``label_top`` ops with the most MACs are named."""
    import numpy as np
    plt = _plt()
    peak, bw = peaks.ops_per_s, peaks.bytes_per_s.get("dram")
    fig, ax = plt.subplots(figsize=(7.5, 5))
    pts = []
    for r in ev.rows:
        if r["macs"] and r["time_us"] > 0:
            dram = r["dram_read_bytes"] + r["dram_write_bytes"]
            if dram <= 0:            # nothing from DRAM (all on chip): plotted at the right edge
                dram = float("nan")
            pts.append((2 * r["macs"] / dram, 2 * r["macs"] / (r["time_us"] * 1e-6), r["macs"], r["name"]))
    finite = [p for p in pts if np.isfinite(p[0])]
    if finite:
        oi = [p[0] for p in finite]
        lo, hi = min(oi) / 4, max(oi) * 4
        if bw:
            lo, hi = min(lo, peak / bw / 8), max(hi, peak / bw * 8)
        xs = np.logspace(np.log10(lo), np.log10(hi), 200)
        ax.scatter(oi, [p[1] for p in finite], s=14, alpha=0.7, label=f"ops ({len(finite)})")
        ax.axhline(peak, color="k", lw=1.2, label=f"compute peak {peak / 1e12:,.1f} TOPS ({peaks.precision})")
        if bw:
            ax.plot(xs, np.minimum(xs * bw, peak), "k--", lw=1.2,
                    label=f"DRAM {bw / 1e9:,.1f} GB/s (ridge at {peak / bw:,.0f} ops/B)")
            # an op above the slanted line moved DRAM bytes in earlier ops' time (read ahead);
            # one above the peak counts MACs the design skips (zero operands)
            ahead = sum(1 for x, y, *_ in finite if x * bw < peak and 1.02 * x * bw < y <= 1.02 * peak)
            skipped = sum(1 for _, y, *_ in finite if y > 1.02 * peak)
            if ahead:
                ax.plot([], [], " ", label=f"{ahead} above the DRAM line: their DRAM reads ran\nahead, during earlier ops")
            if skipped:
                ax.plot([], [], " ", label=f"{skipped} above the compute peak: their MACs count\nzero operands the design skips")
        alike: dict[tuple, list] = {}   # ops within 5% of one another (repeated layers) share a label
        for p in finite:
            alike.setdefault((round(np.log10(p[0]) / 0.02), round(np.log10(p[1]) / 0.02)), []).append(p)
        groups = sorted(alike.values(), key=lambda g: -sum(p[2] for p in g))[:label_top]
        from matplotlib.text import OffsetFrom
        placed: list[tuple[float, float, Any]] = []
        for g in groups:
            lx, ly = np.log10(g[0][0]), np.log10(g[0][1])
            text = g[0][3] + (f" (+{len(g) - 1} alike)" if len(g) > 1 else "")
            near = [a for x, y, a in placed if abs(x - lx) < 0.6 and abs(y - ly) < 0.3]
            if near:     # under the last label of its neighbourhood, with a leader line to the point
                ann = ax.annotate(text, (g[0][0], g[0][1]), fontsize=7, xytext=(0, -1),
                                  textcoords=OffsetFrom(near[-1], (0, 0), "points"), va="top",
                                  arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"})
            else:
                ann = ax.annotate(text, (g[0][0], g[0][1]), fontsize=7, xytext=(6, 4), textcoords="offset points")
            placed.append((lx, ly, ann))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ys = [p[1] for p in finite]         # the ceilings and every op in view
        ax.set_ylim(min(min(ys) / 4, peak / 3), max(peak, max(ys)) * 3)
    on_chip = len(pts) - len(finite)
    ax.set_xlabel("operational intensity (ops per DRAM byte; 1 MAC = 2 ops)")
    ax.set_ylabel("performance (ops/s)")
    ax.set_title(f"roofline: {ev.workload.name} on {ev.arch.name}"
                 + (f" ({on_chip} ops with no DRAM traffic not shown)" if on_chip else ""), fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def pareto(df, front, models: list[str], title: str, keys: list[str]):
    """Latency vs energy per sample (an inference or a training sample) per model; Pareto
    points labelled with their design (the grid's values at that point)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 5), squeeze=False)
    for ax, m in zip(axes[0], models):
        d, f = df[df.model == m], front[front.model == m]
        ax.scatter(d.time_us, d.energy_per_sample_uj, s=12, alpha=0.5, label=f"design points ({len(d)})")
        ax.plot(f.time_us, f.energy_per_sample_uj, "r-o", ms=4, label=f"Pareto front ({len(f)})")
        for _, r in f.iterrows():
            ax.annotate(", ".join(f"{k.removeprefix('trace.')}={r[k]}" for k in keys if k in r), (r.time_us,
                        r.energy_per_sample_uj), fontsize=7, xytext=(4, 4), textcoords="offset points")
        from matplotlib.ticker import FuncFormatter
        for axis, vals, set_scale in ((ax.xaxis, d.time_us, ax.set_xscale),
                                      (ax.yaxis, d.energy_per_sample_uj, ax.set_yscale)):
            lo, hi = float(vals.min()), float(vals.max())
            if lo > 0 and hi / lo > 10:             # a log axis where the points span a decade or more
                set_scale("log")
                axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}" if str(v)[0] in "25" else ""))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))     # 20000, not 2 x 10^4
        ax.set_xlabel("latency (us)")
        ax.set_ylabel("energy per sample (uJ)")
        ax.set_title(f"{title}: {m}", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def compare(df, workload: str):
    """Latency per batch, energy per sample and utilisation (%) of each design, side by side."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for ax, col, title, scale in zip(axes, ("time_us", "energy_per_sample_uj", "utilization"),
                                     ("latency per batch (us)", "energy per sample (uJ)", "utilisation (% of peak MACs)"),
                                     (1, 1, 100)):
        vals = df[col] * scale
        bars = ax.bar(df.design, vals, color=["C%d" % i for i in range(len(df))])
        ax.bar_label(bars, labels=[f"{v:,.3g}" for v in vals], fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", rotation=30)
        if col != "utilization" and (vals > 0).all() and vals.max() / vals.min() > 50:
            ax.set_yscale("log")
    fig.suptitle(f"{workload}: design comparison")
    fig.tight_layout()
    return fig


def compare_energy(evals, labels: list[str]):
    """Energy per sample of each design by where it goes (compute, each memory level, static),
    stacked: which level makes one design cheaper than another."""
    plt = _plt()
    levels = list(dict.fromkeys(lv for ev in evals for lv in ev.arch.memory_levels()))
    keys = ["compute", *levels, "static", "active"]
    parts = {k: [ev.energy_total.get(f"energy_{k}_pj", 0.0) / ev.workload.batch / 1e6 for ev in evals]
             for k in keys}
    parts = {k: v for k, v in parts.items() if any(v)}
    colors = plt.get_cmap("tab20").colors
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(evals) + 3), 4.2))
    bottom = [0.0] * len(evals)
    for i, (k, vals) in enumerate(parts.items()):
        ax.bar(labels, vals, bottom=bottom, label=k, color=colors[i % len(colors)])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("energy per sample (uJ)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title("energy per sample by where it goes", fontsize=10)
    fig.tight_layout()
    return fig


"""``hwsim validate``'s outputs: the per-domain accuracy table, every row's outcome (CSV/JSON),
and an HTML page with one log-log correlation plot per domain (published on x, model on y,
the y = x line and the 10% / 25% bands, the ten worst points labelled), as Accel-Sim shows
its correlation."""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from workloads.errors import HwsimError
from workloads.fileio import atomic_write

from .run import DomainStats, Outcome, failures, run_rows, stats
from .schema import DOMAINS, load_rows, load_tolerances

__all__ = ["Validation", "validate", "outcome_rows", "table_text", "table_markdown", "readme_section", "sync_readme",
           "write_dir", "correlation_png"]

WORST = 10


@dataclass(frozen=True)
class Validation:
    outcomes: tuple[Outcome, ...]
    stats: tuple[DomainStats, ...]

    def failures(self) -> list[str]:
        """Domains outside the tolerances of ``validation/data/tolerances.yaml``."""
        return failures(self.stats, load_tolerances())

    def worst(self, n: int = WORST) -> list[Outcome]:
        """The ``n`` check rows farthest from their published value (by |log ratio|)."""
        ok = [o for o in self.outcomes if o.status == "ok" and o.row.role == "check"]
        return sorted(ok, key=lambda o: -abs(math.log(o.ratio or 1.0)))[:n]


def validate(domains: Iterable[str] | None = None, progress=None) -> Validation:
    """Every row of the corpus (or of ``domains``) through its reader, and the accuracy figures."""
    want = list(domains) if domains else list(DOMAINS)
    bad = [d for d in want if d not in DOMAINS]
    if bad:
        raise HwsimError(f"--domain {bad[0]!r}: one of {', '.join(DOMAINS)}")
    rows = [r for r in load_rows() if r.domain in want]
    outcomes = run_rows(rows, progress)
    return Validation(tuple(outcomes), tuple(stats(outcomes)))


def outcome_rows(v: Validation) -> list[dict[str, Any]]:
    """One flat record per row: the row's fields, the status, the model's value, the ratio."""
    out = []
    for o in v.outcomes:
        r = o.row
        out.append({"id": r.id, "domain": r.domain, "role": r.role, "status": o.status, "model": r.model,
                    "design": r.design, "options": " ".join(f"{k}={x}" for k, x in r.options.items()),
                    "quantity": r.quantity, "unit": r.unit, "published": r.value, "hwsim": o.model,
                    "ratio": o.ratio, "error_pct": o.error_pct, "reason": o.reason, "source": r.source,
                    "conditions": r.conditions, "seconds": round(o.seconds, 3)})
    return out


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.0f}%"


def table_text(v: Validation) -> str:
    """The per-domain table, the fit rows apart, the rows not run, and the ten worst points."""
    head = f"{'domain':<12} {'points':>6} {'geomean':>8} {'MAPE':>7} {'<=10%':>6} {'<=25%':>6}  worst"
    lines = ["Accuracy on check rows (model / published)", head, "-" * len(head)]
    for s in v.stats:
        gm = "-" if math.isnan(s.geomean) else f"{s.geomean:.3f}"
        mape = "-" if math.isnan(s.mape_pct) else f"{s.mape_pct:.1f}%"
        worst = f"{s.worst_id} ({s.worst_ratio:.3g}x)" if s.worst_id else "-"
        lines.append(f"{s.domain:<12} {s.points:>6} {gm:>8} {mape:>7} {_pct(s.within10):>6} {_pct(s.within25):>6}  "
                     f"{worst}")
    checks = sum(s.points for s in v.stats)
    fits = [o for o in v.outcomes if o.row.role == "fit"]
    lines.append(f"{checks} check points ran; {len(fits)} fit rows (constants derived from them) are not counted")
    if fits:
        lines.append("")
        lines.append("Fit rows (listed apart, never evidence)")
        for o in fits:
            got = f"{o.ratio:.3f}x" if o.ratio is not None else o.status
            lines.append(f"  {o.row.id:<44} {got:>10}  {o.row.note[:70]}")
    skipped = [o for o in v.outcomes if o.status != "ok" and o.row.role == "check"]
    if skipped:
        lines.append("")
        lines.append(f"Check rows not run ({len(skipped)}): what hwsim lacks or refuses")
        for o in skipped:
            lines.append(f"  {o.row.id:<44} {o.status:<11} {o.reason[:110]}")
    worst_points = v.worst()
    if worst_points:
        lines.append("")
        lines.append(f"The {len(worst_points)} worst check points")
        for o in worst_points:
            lines.append(f"  {o.row.id:<44} {o.row.quantity:<16} published {o.row.value:<10.4g} hwsim "
                         f"{o.model or 0:<10.4g} {o.ratio or 0:.3f}x")
    return "\n".join(lines)


BEGIN, END = "<!-- hwsim validate: begin -->", "<!-- hwsim validate: end -->"


def table_markdown(v: Validation) -> str:
    """The per-domain accuracy as a Markdown table (the README's "How accurate is it")."""
    lines = ["| domain | check points | geomean hwsim/published | mean abs. error | within 10% | within 25% | "
             "worst point | fit rows | rows not run |", "|---|---|---|---|---|---|---|---|---|"]
    for s in v.stats:
        if s.points == 0:
            lines.append(f"| {s.domain} | 0 | - | - | - | - | - | {s.fit_points} | {s.not_run} |")
            continue
        lines.append(f"| {s.domain} | {s.points} | {s.geomean:.2f} | {s.mape_pct:.0f}% | {_pct(s.within10)} | "
                     f"{_pct(s.within25)} | `{s.worst_id}` ({s.worst_ratio:.3g}x) | {s.fit_points} | {s.not_run} |")
    return "\n".join(lines)


def readme_section(text: str, v: Validation) -> str:
    """``text`` (a README) with the table between the BEGIN and END markers regenerated."""
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < i:
        raise HwsimError(f"README: no '{BEGIN}' ... '{END}' section to write the table into")
    return text[:i + len(BEGIN)] + "\n" + table_markdown(v) + "\n" + text[j:]


def sync_readme(path: str | Path, v: Validation, write: bool) -> tuple[bool, str | None]:
    """Compare (and with ``write`` rewrite, atomically) the accuracy table of the README at
    ``path`` with this run's: (whether it was written, a line saying it is stale or None)."""
    text = Path(path).read_text(encoding="utf-8")
    fresh = readme_section(text, v)
    if fresh == text:
        return False, None
    if write:
        atomic_write(path, fresh)
        return True, None
    return False, f"{path}'s accuracy table is not this run's: hwsim validate --readme {path} --write-readme"


def correlation_png(outcomes: Sequence[Outcome], domain: str) -> bytes:
    """One domain's log-log correlation plot as PNG bytes."""
    from analysis.plots import _plt
    plt = _plt()
    ok = [o for o in outcomes if o.row.domain == domain and o.status == "ok"]
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    quantities = sorted({o.row.quantity for o in ok})
    cmap = plt.get_cmap("tab10")
    for i, q in enumerate(quantities):
        for role, marker in (("check", "o"), ("fit", "s")):
            pts = [o for o in ok if o.row.quantity == q and o.row.role == role]
            if not pts:
                continue
            ax.scatter([o.row.value for o in pts], [o.model for o in pts], s=28, marker=marker,
                       facecolors=cmap(i % 10) if role == "check" else "none", edgecolors=cmap(i % 10),
                       label=f"{q} ({pts[0].row.unit}){' fit' if role == 'fit' else ''}: {len(pts)}")
    vals = [o.row.value for o in ok] + [o.model or 0 for o in ok]
    lo, hi = (min(vals) / 2, max(vals) * 2) if vals else (0.1, 10)
    xs = [lo, hi]
    ax.plot(xs, xs, color="black", lw=1, label="y = x")
    for f, style in ((1.10, ":"), (1.25, "--")):
        ax.plot(xs, [x * f for x in xs], color="grey", lw=0.8, ls=style,
                label=f"±{round(100 * (f - 1))}%")
        ax.plot(xs, [x / f for x in xs], color="grey", lw=0.8, ls=style)
    checks = [o for o in ok if o.row.role == "check"]
    placed: list[tuple[float, float, int]] = []
    for o in sorted(checks, key=lambda o: -abs(math.log(o.ratio or 1.0)))[:WORST]:
        x, y = math.log10(o.row.value), math.log10(o.model or 1e-30)
        # a label whose point sits by an earlier label's (within half a decade across, a twelfth
        # up or down: about a label's size here) takes the first line down its neighbours left free
        taken = {k for px, py, k in placed if abs(px - x) < 0.5 and abs(py - y) < 1 / 12}
        line = next(k for k in range(len(taken) + 1) if k not in taken)
        placed.append((x, y, line))
        ax.annotate(o.row.id, (o.row.value, o.model or 0), fontsize=6.5, xytext=(4, 3 - 8 * line),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("published (the row's unit)")
    ax.set_ylabel("hwsim (the same unit)")
    ax.set_title(f"{domain}: {len(checks)} check points" + (f", {len(ok) - len(checks)} fit" if len(ok) > len(checks)
                                                             else ""))
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>hwsim validate</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 1200px; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 1.5em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
td.t, th.t { text-align: left; }
.plots img { width: 560px; margin: 0 1em 1em 0; border: 1px solid #ddd; }
.bad { color: #a00; }
</style></head><body>
<h1>hwsim validate: model against published measurements</h1>
<p>{{ checks }} check points ran, {{ fits }} fit rows listed apart (a constant was derived from them), {{ skipped }}
rows not run. Ratio = hwsim / published.</p>
<table><tr><th class="t">domain</th><th>points</th><th>geomean</th><th>MAPE</th><th>within 10%</th>
<th>within 25%</th><th class="t">worst</th><th>fit rows</th><th>not run</th></tr>
{% for s in stats %}<tr><td class="t">{{ s.domain }}</td><td>{{ s.points }}</td><td>{{ "%.3f"|format(s.geomean) }}</td>
<td>{{ "%.1f"|format(s.mape_pct) }}%</td><td>{{ "%.0f"|format(100 * s.within10) }}%</td>
<td>{{ "%.0f"|format(100 * s.within25) }}%</td><td class="t">{{ s.worst_id }} ({{ "%.3g"|format(s.worst_ratio) }}x)</td>
<td>{{ s.fit_points }}</td><td>{{ s.not_run }}</td></tr>{% endfor %}
</table>
{% if failing %}<p class="bad">Outside tolerance: {{ failing|join("; ") }}</p>{% endif %}
<div class="plots">{% for d, png in plots %}<img alt="{{ d }} correlation" src="data:image/png;base64,{{ png }}">{% endfor %}</div>
<h2>The {{ worst|length }} worst check points</h2>
<table><tr><th class="t">id</th><th class="t">quantity</th><th>published</th><th>hwsim</th><th>ratio</th>
<th class="t">source</th></tr>
{% for o in worst %}<tr><td class="t">{{ o.row.id }}</td><td class="t">{{ o.row.quantity }} ({{ o.row.unit }})</td>
<td>{{ "%.4g"|format(o.row.value) }}</td><td>{{ "%.4g"|format(o.model) }}</td><td>{{ "%.3f"|format(o.ratio) }}</td>
<td class="t">{{ o.row.source }}</td></tr>{% endfor %}
</table>
<h2>Every row</h2>
<table><tr><th class="t">id</th><th class="t">role</th><th class="t">status</th><th class="t">case</th>
<th class="t">quantity</th><th>published</th><th>hwsim</th><th>ratio</th><th class="t">source / reason</th></tr>
{% for r in rows %}<tr><td class="t">{{ r.id }}</td><td class="t">{{ r.role }}</td><td class="t">{{ r.status }}</td>
<td class="t">{{ r.model }} on {{ r.design }} {{ r.options }}</td><td class="t">{{ r.quantity }} ({{ r.unit }})</td>
<td>{{ "%.4g"|format(r.published) }}</td><td>{{ "%.4g"|format(r.hwsim) if r.hwsim is not none else "" }}</td>
<td>{{ "%.3f"|format(r.ratio) if r.ratio is not none else "" }}</td>
<td class="t">{{ r.reason or r.source }}</td></tr>{% endfor %}
</table></body></html>
"""


def write_dir(v: Validation, out: Path) -> list[Path]:
    """``rows.csv``, ``summary.json``, one ``<domain>.png`` per domain and ``index.html`` in ``out``."""
    import jinja2
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    rows = outcome_rows(v)
    written = []
    atomic_write(out / "rows.csv", pd.DataFrame(rows).to_csv(index=False))
    written.append(out / "rows.csv")
    summary = {"domains": [s.as_dict() for s in v.stats], "failures": v.failures(),
               "worst": [o.row.id for o in v.worst()]}
    atomic_write(out / "summary.json", json.dumps(summary, indent=1, default=float))
    written.append(out / "summary.json")
    plots = []
    for s in v.stats:
        png = correlation_png(v.outcomes, s.domain)
        atomic_write(out / f"{s.domain}.png", png)
        written.append(out / f"{s.domain}.png")
        plots.append((s.domain, base64.b64encode(png).decode()))
    page = jinja2.Environment(autoescape=True).from_string(PAGE).render(
        checks=sum(s.points for s in v.stats), fits=sum(o.row.role == "fit" for o in v.outcomes),
        skipped=sum(o.status != "ok" for o in v.outcomes), stats=v.stats, failing=v.failures(), plots=plots,
        worst=v.worst(), rows=rows)
    atomic_write(out / "index.html", page)
    written.append(out / "index.html")
    return written

"""compare.html: designs (or compression choices) side by side on one workload: a sortable
table of the whole-workload figures with their units and denominators, the comparison plot,
energy per sample by where it goes, and what priced each design; one jinja2 template
(autoescaped: names from a user's files are text, never markup)."""

from __future__ import annotations

import base64
from typing import Any, Mapping, Sequence

__all__ = ["PAGE", "COLUMNS", "render"]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>hwsim compare: {{ workload }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1360px} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f4f4f4;cursor:pointer}
td:first-child,th:first-child{text-align:left} img{max-width:100%} p,li{max-width:75em}</style></head><body>
<h1>{{ workload }}: {{ rows|length }} designs compared</h1>
<p>Each design runs the same workload (batch {{ batch }}). Time and traffic are per batch; energy is per
sample (one inference, or one training sample of a training step); utilisation is useful MACs over the
design's peak MACs per cycle times its cycles. Click a column to sort.</p>
<table id="designs"><thead><tr>{% for c, unit in columns %}<th>{{ c }}{% if unit %}<br><small>{{ unit }}</small>{% endif %}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows %}<tr>{% for v, key in r %}<td data-v="{{ key }}">{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
<h2>Plots</h2>{% for name, png in images %}<h3>{{ name }}</h3><img alt="{{ name }}" src="data:image/png;base64,{{ png }}">
{% endfor %}
<h2>How each design was priced</h2><ul>{% for d, note in notes %}<li><b>{{ d }}</b>: {{ note }}</li>{% endfor %}</ul>
<script>
const t = document.getElementById("designs"), body = t.tBodies[0];
t.tHead.onclick = e => { const th = e.target.closest("th"); if (!th) return; const i = th.cellIndex;
  const up = t.dataset.col == i && t.dataset.dir != "up"; t.dataset.col = i; t.dataset.dir = up ? "up" : "down";
  const key = r => { const v = r.cells[i].dataset.v; const n = parseFloat(v); return isNaN(n) ? v : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); })
    .forEach(r => body.appendChild(r)); };
</script></body></html>"""

# (column of the compare table, its heading, its unit)
COLUMNS = (("design", "design", ""), ("machine", "machine", ""), ("time_us", "latency", "us per batch"),
           ("throughput_samples_per_s", "throughput", "samples/s"), ("tops", "throughput", "TOPS"),
           ("utilization", "utilisation", "% of peak MACs"), ("energy_per_sample_uj", "energy", "uJ per sample"),
           ("power_w", "power", "W"), ("dram_bytes", "DRAM traffic", "bytes per batch"))


def _cell(key: str, v: Any) -> tuple[str, Any]:
    from .table import eng
    if isinstance(v, str):
        return v, v
    if key == "utilization":
        return f"{100 * v:.1f}", v
    return eng(v), v


def render(rows: Sequence[Mapping[str, Any]], workload: str, batch: int, pngs: Mapping[str, bytes],
           notes: Sequence[tuple[str, str]]) -> str:
    """The page for the compare table ``rows`` (one per design, keys of :data:`COLUMNS`)."""
    import jinja2

    cells = [[_cell(k, r[k]) for k, _, _ in COLUMNS] for r in rows]
    images = [(n[:-4].replace("_", " "), base64.b64encode(d).decode()) for n, d in pngs.items()]
    return jinja2.Environment(autoescape=True).from_string(PAGE).render(
        workload=workload, batch=batch, columns=[(h, u) for _, h, u in COLUMNS], rows=cells, images=images,
        notes=notes)

"""report.html: the summary as labelled sections with units, the plots, and a per-op table
the reader can sort (click a column) and filter (type in the box), from one jinja2 template
(autoescaped: names from a user's model or arch file are text, never markup)."""

from __future__ import annotations

import base64
from typing import Any, Mapping

__all__ = ["PAGE", "sections", "render"]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>hwsim report: {{ s.workload }} on {{ s.design }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1360px} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} th{background:#f4f4f4;cursor:pointer}
td:first-child,th:first-child{text-align:left} img{max-width:100%} p{max-width:75em}
.cards{display:flex;flex-wrap:wrap;gap:1em} .card{border:1px solid #ddd;border-radius:4px;padding:.5em 1em}
.card h3{margin:.2em 0 .4em 0;font-size:14px} .card td{border:none;padding:1px 6px}
.card td:first-child{color:#555} #ops{max-height:40em;overflow:auto;display:block}</style></head><body>
<h1>{{ s.workload }} on {{ s.design }} ({{ s.machine }})</h1>
<p>{{ pricing }}</p>
<p>Design source: {{ source }}</p>
<p>{{ precision }}</p>{% if kernels %}<p>{{ kernels }}</p>{% endif %}
<h2>Summary</h2>
<div class="cards">{% for title, rows in cards %}<div class="card"><h3>{{ title }}</h3><table>
{% for label, value in rows %}<tr><td>{{ label }}</td><td>{{ value }}</td></tr>{% endfor %}</table></div>{% endfor %}</div>
<h2>Plots</h2>{% for name, png in images %}<h3>{{ name }}</h3><img alt="{{ name }}" src="data:image/png;base64,{{ png }}">
{% endfor %}
<h2>Per op</h2><p>{{ n_ops }} ops; engineering units (k = 1e3, M = 1e6, G = 1e9); ops.csv has every column in full.
Click a column to sort; filter: <input id="filter" placeholder="name, op or phase"></p>
<table id="ops"><thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for r in ops %}<tr>{% for v, key in r %}<td data-v="{{ key }}">{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
<script>
const t = document.getElementById("ops"), body = t.tBodies[0];
t.tHead.onclick = e => { const i = e.target.cellIndex; if (i === undefined) return;
  const up = t.dataset.col == i && t.dataset.dir != "up"; t.dataset.col = i; t.dataset.dir = up ? "up" : "down";
  const key = r => { const v = r.cells[i].dataset.v; const n = parseFloat(v); return isNaN(n) ? v : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); })
    .forEach(r => body.appendChild(r)); };
document.getElementById("filter").oninput = e => { const q = e.target.value.toLowerCase();
  [...body.rows].forEach(r => { r.style.display = r.textContent.toLowerCase().includes(q) ? "" : "none"; }); };
</script></body></html>"""


def _num(v: float, unit: str) -> str:
    """Three significant digits with an SI prefix (k, M, G, ...) before the unit."""
    from .table import eng
    return f"{eng(v)}B" if unit == "B" else f"{eng(v)} {unit}".strip()


def sections(s: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The summary as labelled cards, every figure with its unit and what it is per."""
    each = "sample (training step)" if s["training"] else "inference"
    batch = s["batch"]
    cards = [
        ("Run", [("workload", str(s["workload"])), ("design", f"{s['design']} ({s['machine']})"),
                 ("batch", f"{batch}"), ("ops", f"{s['ops']:,}"), ("clock", _num(s["clock_mhz"], "MHz"))]),
        ("Time", [("per batch", _num(s["time_us"], "us")), ("cycles", f"{s['cycles']:,}"),
                  ("critical path", _num(s["critical_path_us"], "us")),
                  ("throughput", _num(s["throughput_samples_per_s"], f"{each.split(' ')[0]}s/s"))]
         + ([("tokens per sample", f"{s['tokens_per_sample']:,}"),
             ("throughput", _num(s["throughput_tokens_per_s"], "tokens/s"))] if s.get("tokens_per_sample") else [])),
        ("Work", [("MACs per batch", _num(s["macs"], "")), ("throughput", _num(s["tops"], "TOPS")),
                  ("utilisation", f"{100 * s['utilization']:.1f}% of peak MACs")]),
        ("Energy", [(f"per {each}", _num(s["energy_per_sample_uj"], "uJ"))]
         + ([("per token", _num(s["energy_per_token_uj"], "uJ"))] if s.get("tokens_per_sample") else [])
         + [(f"per batch of {batch}", _num(s["energy_pj"] / 1e6, "uJ")),
                    ("average power", _num(s["power_w"], "W")),
                    ("compute, per batch", _num(s["energy_compute_pj"] / 1e6, "uJ"))]
         + [(f"{lv}, per batch", _num(e / 1e6, "uJ")) for lv, e in s["energy_by_level_pj"].items()]
         + ([("static, per batch", _num(s["energy_static_pj"] / 1e6, f"uJ ({s['static_power_w']:g} W)"))]
            if s["energy_static_pj"] else [])
         + ([("active, per batch", _num(s["energy_active_pj"] / 1e6, "uJ"))] if s.get("energy_active_pj") else [])),
        ("Memory traffic per batch", [("DRAM", _num(s["dram_bytes"], "B")),
                                      ("on-chip", _num(s["sram_bytes"], "B")),
                                      ("energy table", f"{s['energy_table']} at {s['technology_nm']:g} nm")]),
    ]
    if len(s["phases"]) > 1:
        cards.append(("Phases, per batch", [(ph, f"{_num(v['time_us'], 'us')}, {_num(v['energy_pj'] / 1e6, 'uJ')}, "
                                                 f"{_num(v['macs'], 'MACs')}") for ph, v in s["phases"].items()]))
    if s["cycle_counters"]:
        cards.append(("Cycles", [(k.removesuffix("_%").replace("_", " "), f"{v:.1f}%")
                                 for k, v in s["cycle_counters"].items()]))
    return cards


def render(s: Mapping[str, Any], *, pricing: str, source: str, precision: str, kernels: str,
           pngs: Mapping[str, bytes], columns: list[str], ops: list[list[tuple[str, Any]]]) -> str:
    """The page for summary ``s``; ``ops``: per row, (shown text, sort key) per column."""
    import jinja2

    images = [(n[:-4].replace("_", " "), base64.b64encode(d).decode()) for n, d in pngs.items()]
    return jinja2.Environment(autoescape=True).from_string(PAGE).render(
        s=s, pricing=pricing, source=source, precision=precision, kernels=kernels, cards=sections(s),
        images=images, columns=columns, ops=ops, n_ops=len(ops))

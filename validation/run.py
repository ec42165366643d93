"""Run the corpus: each row through its domain's reader, then the accuracy figures per domain.

Only ``check`` rows that ran count in a domain's figures; ``fit`` rows (a constant was derived
from them) are run and listed apart; rows hwsim cannot express yet (``unsupported``) or that
it refuses (``refused``, e.g. a training configuration that does not fit) are listed with the
reason, never counted.
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from workloads.errors import HwsimError

from .base import Reader, Unsupported, check_row
from .schema import DOMAINS, Row, Tolerance

EPS = 1e-9   # a 10% error is within 10% whatever the float rounding of 1.1 - 1

__all__ = ["Outcome", "DomainStats", "readers", "run_rows", "stats", "failures"]


@dataclass(frozen=True)
class Outcome:
    """One row's result: ``status`` ok | unsupported | refused, the model's value in the row's
    unit (ok only), its ratio to the published value, and the reason where not ok."""

    row: Row
    status: str
    model: float | None = None
    reason: str = ""
    seconds: float = 0.0

    @property
    def ratio(self) -> float | None:
        return None if self.model is None else self.model / self.row.value

    @property
    def error_pct(self) -> float | None:
        r = self.ratio
        return None if r is None else (r - 1.0) * 100.0


@dataclass(frozen=True)
class DomainStats:
    """A domain's accuracy over its check rows that ran."""

    domain: str
    points: int
    geomean: float
    mape_pct: float
    worst_id: str
    worst_ratio: float
    within10: float
    within25: float
    fit_points: int
    not_run: int

    def as_dict(self) -> dict[str, object]:
        return {"domain": self.domain, "points": self.points, "geomean_ratio": self.geomean,
                "mape_pct": self.mape_pct, "worst_id": self.worst_id, "worst_ratio": self.worst_ratio,
                "within_10pct": self.within10, "within_25pct": self.within25, "fit_points": self.fit_points,
                "not_run": self.not_run}


def readers() -> Mapping[str, Reader]:
    """Each domain's reader (``validation/<domain>.py``'s ``READER``)."""
    return {d: importlib.import_module(f"validation.{d}").READER for d in DOMAINS}


def run_rows(rows: Iterable[Row], progress=None) -> list[Outcome]:
    """Every row through its reader. A row its reader cannot read is refused before anything runs."""
    rows = list(rows)
    table = readers()
    for r in rows:
        check_row(table[r.domain], r)
    out = []
    for r in rows:
        t = time.perf_counter()
        try:
            v = float(table[r.domain].measure(r))
            if not (math.isfinite(v) and v > 0):
                raise HwsimError(f"the model gave {v!r}, not a positive number")
            o = Outcome(r, "ok", float(v))
        except Unsupported as e:
            o = Outcome(r, "unsupported", reason=str(e))
        except HwsimError as e:
            o = Outcome(r, "refused", reason=" ".join(str(e).split()))
        out.append(Outcome(o.row, o.status, o.model, o.reason, time.perf_counter() - t))
        if progress is not None:
            progress(1)
    return out


def stats(outcomes: Sequence[Outcome]) -> list[DomainStats]:
    """Per domain, over check rows that ran: geomean of model/published, mean absolute error,
    the worst row (largest |log ratio|) and the shares within 10% and 25%."""
    res = []
    for d in DOMAINS:
        mine = [o for o in outcomes if o.row.domain == d]
        if not mine:
            continue
        ok = [o for o in mine if o.row.role == "check" and o.status == "ok"]
        fits = sum(o.row.role == "fit" for o in mine)
        not_run = sum(o.status != "ok" for o in mine)
        if not ok:
            res.append(DomainStats(d, 0, math.nan, math.nan, "", math.nan, math.nan, math.nan, fits, not_run))
            continue
        ratios = [o.ratio for o in ok]
        logs = [math.log(r) for r in ratios if r is not None]
        worst = max(ok, key=lambda o: abs(math.log(o.ratio or 1.0)))
        errs = [abs(r - 1.0) for r in ratios if r is not None]
        res.append(DomainStats(
            d, len(ok), math.exp(sum(logs) / len(logs)), 100.0 * sum(errs) / len(errs), worst.row.id,
            worst.ratio or math.nan, sum(e <= 0.10 + EPS for e in errs) / len(errs),
            sum(e <= 0.25 + EPS for e in errs) / len(errs), fits, not_run))
    return res


def failures(table: Sequence[DomainStats], tolerances: Mapping[str, Tolerance]) -> list[str]:
    """One line per domain figure outside its tolerance (empty when every domain is inside)."""
    out = []
    for s in table:
        t = tolerances.get(s.domain)
        if t is None:
            out.append(f"{s.domain}: no tolerance in tolerances.yaml")
            continue
        if s.points < t.min_points:
            out.append(f"{s.domain}: {s.points} check points ran, the tolerance asks for at least {t.min_points}")
            continue
        lo, hi = t.geomean
        if not lo <= s.geomean <= hi:
            out.append(f"{s.domain}: geomean model/published {s.geomean:.3f} outside [{lo}, {hi}]")
        if s.mape_pct > t.mape_max:
            out.append(f"{s.domain}: mean absolute error {s.mape_pct:.1f}% over {t.mape_max}%")
        if s.within25 < t.within25_min:
            out.append(f"{s.domain}: {s.within25:.0%} of points within 25%, under {t.within25_min:.0%}")
    return out

"""The validation corpus: published measurements (and recorded peer-tool runs) that hwsim's
models are checked against, one CSV row each under ``validation/data/``, read by one reader
per domain (``validation/<domain>.py``). ``hwsim validate`` runs them and reports, per
domain, the geomean of model/published, the mean absolute error, the worst case and the
shares within 10% and 25%; rows a constant was fitted on (role ``fit``) are listed apart.

    >>> from validation import load_rows
    >>> rows = load_rows()
    >>> sorted({r.role for r in rows}) == ["check", "fit"]
    True
"""

from .schema import DOMAINS, Row, Tolerance, load_rows, load_tolerances

__all__ = ["DOMAINS", "Row", "Tolerance", "load_rows", "load_tolerances"]

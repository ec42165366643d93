"""What every domain reader shares: the reader description, the refusal for cases hwsim cannot
express yet, typed option access and a per-run memo of simulations."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from workloads.errors import HwsimError

from .schema import Row

__all__ = ["Reader", "Unsupported", "opt_int", "opt_str", "evaluation", "check_row"]


class Unsupported(Exception):
    """A row hwsim cannot run yet: the message names the missing mechanism. Such rows are listed
    beside the accuracy table, never counted in it."""


@dataclass(frozen=True)
class Reader:
    """A domain's reader: the quantities it answers (each with the units it accepts), the
    options it reads, and ``measure(row)``, the model's value in the row's unit."""

    domain: str
    quantities: Mapping[str, tuple[str, ...]]
    options: frozenset[str]
    measure: Callable[[Row], float]


def check_row(reader: Reader, row: Row) -> None:
    """Refuse, in one line naming the file, line and field, a row its domain cannot read."""
    units = reader.quantities.get(row.quantity)
    if units is None:
        raise HwsimError(f"{row.where}: quantity {row.quantity!r} is not one the {row.domain} reader answers; "
                         f"one of {', '.join(sorted(reader.quantities))}")
    if row.unit not in units:
        raise HwsimError(f"{row.where}: unit {row.unit!r} does not go with {row.quantity}; use {' or '.join(units)}")
    extra = set(row.options) - reader.options
    if extra:
        raise HwsimError(f"{row.where}: option {sorted(extra)[0]!r} does not apply to the {row.domain} reader; "
                         f"it reads {', '.join(sorted(reader.options)) or 'none'}")


def opt_int(row: Row, key: str, default: int | None = None) -> int | None:
    v = row.options.get(key)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        raise HwsimError(f"{row.where}: options.{key} must be an integer, got {v!r}") from None


def opt_str(row: Row, key: str, default: str | None = None) -> str | None:
    return row.options.get(key, default)


@functools.lru_cache(maxsize=256)
def _evaluation(model: str, design: Any, batch: int | None, seq_len: int | None,
                options: tuple[tuple[str, Any], ...]) -> Any:
    from analysis.simulate import simulate
    return simulate(model, design, batch=batch, seq_len=seq_len, **dict(options))


def evaluation(model: str, design: Any, *, batch: int | None = None, seq_len: int | None = None, **options: Any) -> Any:
    """``hwsim.simulate`` (:func:`analysis.simulate.simulate`) once per distinct case in a run (many rows read one simulation)."""
    return _evaluation(model, design, batch, seq_len, tuple(sorted(options.items())))

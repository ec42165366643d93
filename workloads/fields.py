"""Refusing unknown keys in user files, with the nearest known name as the fix.

One check serves every reader of named fields (a trace's ops and operands, a hardware
description's fields in an arch YAML, a spatial design's levels): a key that is not a
field is refused, never ignored, since a misspelt key (``densty``) silently left the
field at its default. The message names the key and, when one is close
(:func:`difflib.get_close_matches`), the field that was probably meant::

    t.json: ops[0] (fc).operands[1].densty: unknown field; did you mean density?
"""

from __future__ import annotations

import difflib
from typing import Iterable

from .errors import HwsimError

__all__ = ["suggest", "check_known"]


def suggest(key: object, known: Iterable[str]) -> str:
    """``did you mean X?`` for the known name nearest ``key``, else the list of known names."""
    names = sorted(known)
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"known: {', '.join(names)}"


def check_known(keys: Iterable[object], known: Iterable[str], where: str, *, owner: str = "",
                error: type[HwsimError] = HwsimError, note: str = "") -> None:
    """Raise ``error("WHERE KEY: unknown field; did you mean ...?")`` for the first of
    ``keys`` that is not in ``known``. ``where`` is the path up to the key, ending in ``.``
    or ``: `` (``t.json: ops[0].``); ``owner`` names the description the field would
    belong to (``SystolicArch``); ``note`` is added before the suggestion."""
    names = frozenset(known)
    for k in keys:
        if k not in names:
            of = f" {k!r} for {owner}" if owner else ""
            raise error(f"{where}{k}: unknown field{of}; {note}{suggest(k, names)}")

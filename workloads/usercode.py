"""Running a user's model file: its folder on the import path, its failures in one line.

A ``file.py:factory`` model is the user's code: hwsim imports the file, calls the factory
and runs the module's forward while lowering it. While it runs, the file's folder is first
on ``sys.path`` (so it can import a module beside it). Anything it raises, ``SystemExit``
included, becomes a :class:`UserCodeError` naming the file and line in the user's folder
where it happened; the CLI prints that one line (exit 2) and the traceback with ``--debug``.
An exception with no frame in the user's folder is hwsim's own and passes unchanged.
``KeyboardInterrupt`` always passes. Modules imported from the folder are dropped from
``sys.modules`` afterwards, so two models whose folders both hold a ``blocks.py`` never
share one, and an edited module is read afresh.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import HwsimError

__all__ = ["UserCodeError", "describe", "user_code"]


class UserCodeError(HwsimError):
    """An exception raised by the user's model code; ``original`` keeps it for --debug."""

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


def _where(e: BaseException, folder: str) -> str | None:
    """``file:line`` of the innermost frame of ``e`` inside ``folder``, or None."""
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if os.path.abspath(f.filename).startswith(folder + os.sep)]
    if not frames:
        return None
    f = frames[-1]
    rel = os.path.relpath(f.filename)
    return f"{f.filename if rel.startswith('..') else rel}:{f.lineno}"


def describe(e: BaseException) -> str:
    """``Type: first line of the message`` (SystemExit says it exited, and with what)."""
    if isinstance(e, SystemExit):
        return f"SystemExit: the model code called sys.exit({e.code!r})"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


@contextmanager
def user_code(path: str | Path, stage: str) -> Iterator[None]:
    """Run the body as the user's code from ``path``: its folder importable, its errors named."""
    folder = os.path.abspath(os.path.dirname(os.path.abspath(path)))
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    before = set(sys.modules)
    try:
        yield
    except (HwsimError, KeyboardInterrupt):
        raise
    except BaseException as e:
        where = _where(e, folder)
        if where is None and not isinstance(e, SystemExit):
            raise
        raise UserCodeError(f"{where or path}: {describe(e)} (while {stage}; --debug shows the traceback)",
                            e) from e
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
        for name in set(sys.modules) - before:      # the folder's modules: fresh on the next load
            f = getattr(sys.modules[name], "__file__", None) or ""
            if os.path.abspath(f).startswith(folder + os.sep):
                del sys.modules[name]

"""Running a user's model file: its folder on the import path, its output and failures apart.

A ``file.py:factory`` model is the user's code: hwsim imports the file, calls the factory
and runs the module's forward while lowering it. While it runs:

- the file's folder is first on ``sys.path`` (so it can import a module beside it);
- its ``print()`` goes to stderr, so that ``--format csv`` or ``json`` on stdout stays parseable;
- torch is seeded (``torch.manual_seed``) on entry with the seed in force: a command's
  ``--seed`` (:func:`seeded`), else :data:`DEFAULT_SEED`, so a model drawn with torch's
  default initialisation is the same model on every run;
- a time limit given with ``hwsim --max-time`` (``HWSIM_MAX_TIME``, or
  :func:`sim.budget.limited`) stops it with one line naming the file and the limit (a
  SIGALRM timer, so on the main thread only; elsewhere it runs without one, with a note);
- anything it raises, ``SystemExit`` included, becomes a :class:`UserCodeError` naming the
  file and line in the user's folder where it happened; the CLI prints that one line (exit
  2) and the traceback with ``--debug``. An exception with no frame in the user's folder is
  hwsim's own and passes unchanged (except where :func:`own_input_failure` shows that the
  model fails on its own example input without hwsim). ``KeyboardInterrupt`` always passes.

Modules imported from the folder are dropped from ``sys.modules`` afterwards, so two models
whose folders both hold a ``blocks.py`` never share one, and an edited module is read afresh.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator

from .errors import HwsimError

__all__ = ["DEFAULT_SEED", "UserCodeError", "describe", "own_input_failure", "seed", "seeded", "user_code"]

DEFAULT_SEED = 0     # torch's seed for user code when the command has no --seed (or it is left out)
_SEED: ContextVar[int] = ContextVar("hwsim_user_seed", default=DEFAULT_SEED)
_NOTED = {"off_main_thread": False}


class UserCodeError(HwsimError):
    """An exception raised by the user's model code; ``original`` keeps it for --debug."""

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


def _where(e: BaseException, folder: str) -> str | None:
    """``file:line`` of the innermost frame of ``e`` inside ``folder`` (a ``SyntaxError``'s own
    file and line: it has no frame there), or None."""
    if isinstance(e, SyntaxError) and e.filename and not e.filename.startswith("<") and \
            os.path.abspath(e.filename).startswith(folder + os.sep):
        return f"{_rel(e.filename)}:{e.lineno or 1}"
    frames = [f for f in traceback.extract_tb(e.__traceback__)        # not "<frozen ...>" or "<string>"
              if not f.filename.startswith("<") and os.path.abspath(f.filename).startswith(folder + os.sep)]
    if not frames:
        return None
    f = frames[-1]
    return f"{_rel(f.filename)}:{f.lineno}"


def describe(e: BaseException) -> str:
    """``Type: first line of the message`` (SystemExit says it exited, and with what)."""
    if isinstance(e, SystemExit):
        return f"SystemExit: the model code called sys.exit({e.code!r})"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def seed() -> int:
    """The seed user code gets: the innermost :func:`seeded`'s, else :data:`DEFAULT_SEED`."""
    return _SEED.get()


@contextmanager
def seeded(value: int | None) -> Iterator[None]:
    """Run the body with ``value`` (a command's ``--seed``; None: unchanged) as the seed
    torch gets before user code runs (and that a user model's cache key holds)."""
    if value is None:
        yield
        return
    token = _SEED.set(int(value))
    try:
        yield
    finally:
        _SEED.reset(token)


class _TimeUp(BaseException):
    """Raised by the SIGALRM handler inside the user's code (a BaseException, so that the
    code's own ``except Exception`` does not swallow it)."""


def _time_limit() -> float | None:
    """The wall-clock limit on user code: a given --max-time / HWSIM_MAX_TIME, else None."""
    from sim.budget import limits
    lim = limits()
    return lim.max_time_s if lim.time_given else None


@contextmanager
def _alarm(limit: float | None, path: str | Path) -> Iterator[None]:
    """Raise :class:`_TimeUp` in the body after ``limit`` seconds (SIGALRM: the main thread
    only; an outer timer already running is left in charge)."""
    if limit is None or not hasattr(signal, "setitimer"):
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        if not _NOTED["off_main_thread"]:
            _NOTED["off_main_thread"] = True
            print(f"hwsim: note: the --max-time limit on model code needs the main thread; {path} runs without it "
                  "here", file=sys.stderr)
        yield
        return
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise _TimeUp()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _seed_torch() -> None:
    import torch
    torch.manual_seed(seed())


@contextmanager
def user_code(path: str | Path, stage: str) -> Iterator[None]:
    """Run the body as the user's code from ``path``: its folder importable, its stdout on
    stderr, torch seeded, its time bounded when a limit is given, its errors named."""
    folder = os.path.abspath(os.path.dirname(os.path.abspath(path)))
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    before = set(sys.modules)
    limit = _time_limit()
    try:
        _seed_torch()                     # importing torch is not the user's time
        with contextlib.redirect_stdout(sys.stderr), _alarm(limit, path):
            yield
    except (HwsimError, KeyboardInterrupt):
        raise
    except _TimeUp as e:
        from sim.budget import time_text
        assert limit is not None          # only the armed timer raises it
        raise UserCodeError(f"{_where(e, folder) or path}: the model code ran past the time limit of "
                            f"{time_text(limit)} (while {stage}); raise it with hwsim --max-time DURATION "
                            "(or HWSIM_MAX_TIME) or make the model smaller", e) from e
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


def own_input_failure(e: Exception, path: str | Path, made: Any, train: bool,
                      factory: Callable[..., Any]) -> UserCodeError | None:
    """Whose is ``e``, which lowering the model ``factory`` made (``made``: its return) raised?
    With no frame of it in the user's folder, run the module on its example input alone (no
    hwsim hooks, in the lowering's mode): if that fails too, the model fails on its own input
    (a shape mismatch inside ``nn.Sequential``, say) and the error names the factory's file
    and line. None otherwise: ``e`` is hwsim's own, or :func:`user_code` names its line."""
    import torch
    folder = os.path.abspath(os.path.dirname(os.path.abspath(path)))
    if isinstance(e, HwsimError) or _where(e, folder) is not None or not isinstance(made, tuple) or \
            len(made) != 2 or not isinstance(made[0], torch.nn.Module):
        return None
    module, example = made
    inputs = example if isinstance(example, tuple) else (example,)
    was_training = module.training
    module.train(train)
    try:
        with torch.enable_grad() if train else torch.no_grad():
            module(*inputs)
    except (HwsimError, KeyboardInterrupt):
        raise
    except Exception as again:
        code = getattr(factory, "__code__", None)
        where = f"{_rel(code.co_filename)}:{code.co_firstlineno}" if code is not None else str(path)
        name = getattr(factory, "__name__", "the factory")
        return UserCodeError(f"{where}: {describe(again)} (the model {name}() returns fails on its own example "
                             "input, without hwsim; fix the model or the input; --debug shows the traceback)", again)
    finally:
        module.train(was_training)
    return None


def _rel(filename: str) -> str:
    """``filename`` relative to the working folder, unless that climbs out of it."""
    rel = os.path.relpath(filename)
    return filename if rel.startswith("..") else rel

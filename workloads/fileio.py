"""Writing files so that a reader never sees half of one.

Every file hwsim writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the same folder, which is then renamed over the target (``os.replace`` is atomic on
POSIX and Windows). The file gets the mode a plain ``open(path, "w")`` would give it
(``0o666`` less the process umask), not ``mkstemp``'s private ``0o600``. Only a regular file
or a new name is written: renaming over a device node or a FIFO is refused, and a symbolic
link is written through (its target replaced, the link kept), as ``open`` would. A write that
finds the disk full or the file-size limit reached is refused in one line naming the file.

A folder written as a whole (a report) is written into a stage beside it and swapped in by
:func:`staged_folder`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator, Union

from .errors import HwsimError

__all__ = ["NoRoom", "atomic_write", "locked_folder", "staged_folder"]

Payload = Union[str, bytes, Callable[[IO], object]]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, data: Payload, *, binary: bool | None = None) -> Path:
    """Write ``data`` (text, bytes, or a function that writes to an open file) to ``path``.

    ``binary`` chooses the file mode for a writer function (default text); text and bytes
    choose it themselves. The parent folder must exist.
    """

    p = Path(path)
    if binary is None:
        binary = isinstance(data, bytes)
    if p.is_symlink():                      # written through, as open(p, "w") would: the link stays
        p = Path(os.path.realpath(p))
    try:
        mode: int | None = os.lstat(p).st_mode
    except FileNotFoundError:
        mode = None                         # a new name
    except OSError:
        mode = None                         # mkstemp below says what is wrong with the folder
    if mode is not None and stat.S_ISDIR(mode):
        raise HwsimError(f"{path}: is a folder; name a file to write")
    if mode is not None and not stat.S_ISREG(mode):   # renaming over a device node (/dev/full) would destroy it
        raise HwsimError(f"{path}: is not a regular file (a device, FIFO or socket); hwsim writes only regular "
                         "files or new names")
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise HwsimError(f"{p.parent}: no such folder; create it first, or write {p.name} elsewhere") from None
    except NotADirectoryError:
        raise HwsimError(f"{p.parent}: is not a folder, so {p} cannot be written there") from None
    except PermissionError:
        raise HwsimError(f"{p.parent}: no permission to write {p.name} there") from None
    try:
        if not callable(data):
            with os.fdopen(fd, "wb") as fb:
                fb.write(data.encode("utf-8") if isinstance(data, str) else data)
        elif binary:
            with os.fdopen(fd, "wb") as fb:
                data(fb)
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as ft:
                data(ft)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in _FULL:
            full = NoRoom(f"{path}: cannot be written ({e.strerror}): {_FULL[e.errno]}; nothing was written")
            full.errno, full.strerror, full.filename = e.errno, e.strerror, str(path)
            raise full from None
        raise
    return p


class NoRoom(HwsimError, OSError):
    """A write that found the disk full or the file-size limit reached: a one-line refusal
    naming the file (exit 2), and still an ``OSError`` to code that goes on without the file
    (the trace cache)."""

    def __str__(self) -> str:             # the message, not OSError's "[Errno N] ..."
        return str(self.args[0])


# errors of a write that ran out of room, and the fix
_FULL = {errno.ENOSPC: "the disk is full; free space or write elsewhere",
         errno.EDQUOT: "the disk quota is used up; free space or write elsewhere",
         errno.EFBIG: "over the file-size limit (ulimit -f); raise it or write a smaller output"}


@contextlib.contextmanager
def locked_folder(path: str | os.PathLike, what: str = "output folder") -> Iterator[Path]:
    """Create ``path`` (and its parents) and hold an exclusive lock on it while the block
    runs, so that two runs writing into one folder cannot mix their files: the second is
    refused at once, naming the folder. The lock is ``flock`` on the folder itself (no lock
    file is left behind) and goes with the process, however it ends."""
    import fcntl

    from .errors import HwsimError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileExistsError:
        raise HwsimError(f"{p}: is a file; the {what} must be a folder") from None
    except NotADirectoryError:
        raise HwsimError(f"{p}: a parent of the {what} is a file") from None
    except OSError as e:
        raise HwsimError(f"{p}: cannot create the {what} ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HwsimError(f"{p}: another hwsim run is writing into this {what}; wait for it to finish "
                             f"or choose another folder") from None
        yield p
    finally:
        os.close(fd)


STAGE_MARK = ".hwsim-stage-"      # a staged folder's name: .NAME.hwsim-stage-XXXXXXXX beside NAME


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A new folder beside ``target`` to write into; when the block ends normally, it takes
    ``target``'s place whole and the old folder is removed.

    The swap is one ``renameat2(RENAME_EXCHANGE)`` where the system has it (Linux), so a
    reader, or a kill at any moment, sees the old folder or the new one, never a mix; a kill
    leaves at most a hidden stage beside ``target``, removed by the next stage of ``target``.
    Without the exchange the old folder is renamed aside and the new one into place (a moment
    without ``target``); where ``target`` cannot be renamed (a mount point, or the working
    folder or one above it, which a swap would pull from under the shell), the files are
    moved into it one by one, each whole; so they are where no stage can be made beside
    ``target`` (a parent folder you may not write), with the stage inside it. The caller holds
    ``target``'s lock (:func:`locked_folder`), so no other run is staging it; ``target`` keeps
    its mode.
    """
    t = Path(os.path.realpath(target))
    here = Path(os.path.realpath(os.getcwd()))
    whole = not (here == t or t in here.parents)
    prefix = f".{t.name}{STAGE_MARK}"
    _clear(t.parent, prefix)                       # stages a killed run left behind
    _clear(t, STAGE_MARK)
    try:
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=t.parent))
    except OSError:                                # no stage beside it: one inside, moved file by file
        t.mkdir(parents=True, exist_ok=True)
        stage, whole = Path(tempfile.mkdtemp(prefix=STAGE_MARK, dir=t)), False
    try:
        yield stage
        try:
            os.chmod(stage, stat.S_IMODE(os.stat(t).st_mode))
        except FileNotFoundError:
            os.chmod(stage, 0o777 & ~_umask())
        gone = _swap(stage, t, whole=whole)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if gone is not None:
        shutil.rmtree(gone, ignore_errors=True)


def _clear(folder: Path, prefix: str) -> None:
    try:
        found = [p for p in folder.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for p in found:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def _swap(stage: Path, target: Path, whole: bool = True) -> Path | None:
    """Put ``stage`` in ``target``'s place (``whole``: the folder itself, else its files); the
    path the old folder now has (to remove), or None."""
    if whole and not target.exists():
        os.rename(stage, target)
        return None
    if whole and _exchange(stage, target):
        return stage
    if whole:
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGE_MARK}", dir=target.parent))
        try:
            os.rename(target, aside)               # replaces the empty folder just made
            os.rename(stage, target)
            return aside
        except OSError:                            # a mount point (EBUSY) or the like: file by file
            if not target.exists():
                os.rename(aside, target)
            else:
                os.rmdir(aside)
    for f in stage.iterdir():
        if (target / f.name).is_dir() and not (target / f.name).is_symlink():
            shutil.rmtree(target / f.name)
        os.replace(f, target / f.name)
    return stage


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the file system cannot."""
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EXDEV, errno.EBUSY, errno.EPERM, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))

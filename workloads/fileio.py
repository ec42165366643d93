"""Writing files so that a reader never sees half of one.

Every file hwsim writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the same folder, which is then renamed over the target (``os.replace`` is atomic on
POSIX and Windows). The file gets the mode a plain ``open(path, "w")`` would give it
(``0o666`` less the process umask), not ``mkstemp``'s private ``0o600``. Only a regular file
or a new name is written: renaming over a device node or a FIFO is refused.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator, Union

__all__ = ["atomic_write", "locked_folder"]

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
    from .errors import HwsimError

    p = Path(path)
    if binary is None:
        binary = isinstance(data, bytes)
    if p.is_dir():
        raise HwsimError(f"{p}: is a folder; name a file to write")
    if p.exists() and not p.is_file():      # renaming over a device node (/dev/full) would destroy it
        raise HwsimError(f"{p}: is not a regular file (a device, FIFO or socket); hwsim writes only regular "
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
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


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

"""Writing files so that a reader never sees half of one.

Every file hwsim writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the same folder, which is then renamed over the target (``os.replace`` is atomic on
POSIX and Windows). The file gets the mode a plain ``open(path, "w")`` would give it
(``0o666`` less the process umask), not ``mkstemp``'s private ``0o600``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Union

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
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
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

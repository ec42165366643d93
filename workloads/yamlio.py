"""Read a YAML file with errors that name the file (and line) instead of tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import HwsimError


def load_yaml(path: str | Path, what: str = "file") -> Any:
    import yaml

    p = Path(path)
    try:
        return yaml.safe_load(p.read_text())
    except OSError as e:
        raise HwsimError(f"{p}: cannot read {what} ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise HwsimError(f"{p}: not valid YAML" + (f" (line {mark.line + 1})" if mark else "")) from None

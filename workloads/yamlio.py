"""Reading user files: UTF-8 text and YAML, refused in one line that names the file.

Checks made before any parsing, so that no file can make hwsim run away:

* a regular file (a FIFO or a device is refused by name: one would hang, the other never end);
* size: at most :data:`MAX_FILE_BYTES` actually read (a trace with a million ops is far smaller);
* encoding: UTF-8, with the line and byte of the first bad byte;
* YAML: no Python tags (``safe_load``), no key given twice in one mapping (PyYAML keeps the
  last silently: ``rows: 8`` then ``rows: 16`` would run 16), nesting at most :data:`MAX_DEPTH` levels, and aliases
  that expand to at most :data:`MAX_NODES` values ("billion laughs": nine aliases of nine
  aliases ... are a few hundred bytes that expand to 10^9 values).

Plain scalars with colons (``2:4``) are strings, as YAML 1.2 reads them: YAML 1.1's base-60
numbers would silently turn an N:M sparsity pattern into 124.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any, Iterator

from .errors import HwsimError

# policies, far above any real input (the largest zoo trace is a few MB, 3 levels deep)
MAX_FILE_BYTES = 256 * 2 ** 20
MAX_DEPTH = 100
MAX_NODES = 1_000_000

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "load_yaml", "load_yaml_lines", "located", "read_text"]


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """The UTF-8 text of ``path``; errors name the file, what it should be and the fix."""
    import stat

    p = Path(path)
    try:
        mode = p.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):          # a FIFO would hang, a device (/dev/zero) never end
            raise HwsimError(f"{p}: is not a regular file (a FIFO, device or socket); give the {what} as a file")
        with p.open("rb") as f:             # the bound is on what is read, not on what stat says
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise HwsimError(f"{p}: over {MAX_FILE_BYTES // 2 ** 20} MiB is too large for a {what} "
                             f"(at most {MAX_FILE_BYTES // 2 ** 20} MiB)")
    except IsADirectoryError:
        raise HwsimError(f"{p}: is a folder; expected a {what} file") from None
    except OSError as e:
        raise HwsimError(f"{p}: cannot read {what} ({e.strerror or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise HwsimError(f"{p}: not UTF-8 text (line {line}, byte {e.start}: {data[e.start]:#04x}); "
                         f"save the {what} as UTF-8") from None


_LOADER: Any = None


def _loader() -> Any:
    """PyYAML's safe loader without YAML 1.1's base-60 ints and floats (``2:4`` stays a string)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            def resolve(self, kind: Any, value: str, implicit: tuple[bool, bool]) -> str:
                tag = super().resolve(kind, value, implicit)
                if kind is yaml.ScalarNode and implicit[0] and ":" in value and \
                        tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
                    return "tag:yaml.org,2002:str"
                return tag

        _LOADER = Loader
    return _LOADER


def load_yaml(path: str | Path, what: str = "file") -> Any:
    """The YAML document in ``path`` (safe types only), after the checks above."""
    return load_yaml_lines(path, what)[0]


def load_yaml_lines(path: str | Path, what: str = "file") -> tuple[Any, dict[str, int]]:
    """:func:`load_yaml` and the line of every key and list item, by dotted path
    (``grid.rows``, ``models.0.batch``), for :func:`located`."""
    import yaml

    p = Path(path)
    text = read_text(p, what)
    try:
        node = yaml.compose(text, Loader=_loader())
    except yaml.YAMLError as e:
        raise HwsimError(f"{p}: not valid YAML{_at(e)}: {getattr(e, 'problem', None) or e}; "
                         f"check the {what}'s syntax") from None
    except RecursionError:
        raise HwsimError(f"{p}: YAML nested too deeply to be a {what}") from None
    if node is None:
        return None, {}
    _check_size(node, p, what)
    _check_unique_keys(node, p, what)
    try:
        return _loader()(text).construct_document(node), _lines(node)
    except yaml.YAMLError as e:
        raise HwsimError(f"{p}: {getattr(e, 'problem', None) or e}{_at(e)}; a {what} holds plain values only "
                         f"(no !!python tags)") from None


def _lines(root: Any) -> dict[str, int]:
    import yaml

    out: dict[str, int] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = f"{path}.{k.value}" if path else str(k.value)
                out.setdefault(key, k.start_mark.line + 1)
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                key = f"{path}.{i}" if path else str(i)
                out.setdefault(key, v.start_mark.line + 1)
                walk(v, key)

    walk(root, "")
    return out


@contextlib.contextmanager
def located(path: str | Path, lines: dict[str, int]) -> Iterator[None]:
    """Add the line to a ``FILE: FIELD: message`` error raised inside the block, where the
    field (``grid.rows``, ``models[0].batch``, ``layers.fc1.keep``) is a key of the file."""
    prefix = f"{Path(path)}: "
    try:
        yield
    except HwsimError as e:
        msg = str(e)
        if not lines or not msg.startswith(prefix) or msg[len(prefix):].startswith(("line ", "not ")):
            raise
        rest = msg[len(prefix):]
        field = re.split(r"[: ]", rest, maxsplit=1)[0]
        parts = re.sub(r"\[(\d+)\]", r".\1", field).split(".")
        for n in range(len(parts), 0, -1):          # the deepest key the file has
            line = lines.get(".".join(parts[:n]))
            if line is not None:
                raise type(e)(f"{Path(path)}:{line}: {rest}") from None
        raise


def _at(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None)
    return f" (line {mark.line + 1})" if mark else ""


def _check_unique_keys(root: Any, p: Path, what: str) -> None:
    """Refuse a mapping (at any depth) that gives a key twice, naming the key by its dotted
    path and both lines. Keys merged in with ``<<: *anchor`` may be overridden, as YAML
    means them to be; each node is visited once (aliases share their node)."""
    import yaml

    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for k, v in node.value:
                key = f"{path}.{k.value}" if path else str(k.value)
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    line = k.start_mark.line + 1
                    was = first.get((k.tag, k.value))
                    if was is not None:
                        lines = f"lines {was} and {line}" if was != line else f"both on line {line}"
                        raise HwsimError(f"{p}:{line}: {key}: given twice ({lines}) in the {what}; "
                                         "keep one")
                    first[(k.tag, k.value)] = line
                stack.append((v, key))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node.value))


def _check_size(root: Any, p: Path, what: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH and aliases expanding past MAX_NODES values."""
    import yaml

    sizes: dict[int, int] = {}
    aliased = False

    def size(node: Any, depth: int) -> int:
        nonlocal aliased
        if depth > MAX_DEPTH:
            raise HwsimError(f"{p}: YAML nested more than {MAX_DEPTH} levels deep; a {what} is flat data")
        key = id(node)
        if key in sizes:
            aliased = True
            return sizes[key]
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(c, depth + 1) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        else:
            n = 1
        if n > MAX_NODES:
            raise HwsimError(f"{p}: YAML aliases expand to more than {MAX_NODES:,} values"
                             f"{' (anchors and aliases: &a / *a)' if aliased else ''}; write the {what} out plainly")
        sizes[key] = n
        return n

    size(root, 0)

"""A cache of lowered traces, so that a model lowers once and later runs never import torch.

An entry is keyed by everything a lowering depends on: the MODEL argument, batch,
sequence length, whether weights are kept, the :class:`~workloads.spec.Lowering`
options, the hwsim and torch versions, a digest of the ``workloads`` package's source
(so that a changed lowering never serves an old trace) and, for a user model
``file.py:factory``, a digest of that file and of every ``.py`` file beside it (the
modules it can import from its folder; a module elsewhere is not part of the key: pass
``--no-cache`` after changing one) and the torch seed its code runs with
(:func:`workloads.usercode.seed`).

Each entry is three files under ``cache_dir()/traces``: ``KEY.json`` (the trace),
``KEY.npz`` (its tensors, uncompressed, when kept) and ``KEY.meta.json``, written last,
which repeats the key's fields and holds the SHA-256 of the trace and of the tensor file
(and that file's size, checked first). A zip CRC-32 only catches accidents: a tensor file
replaced by another valid one of the same size would pass it, its digest does not. An
entry whose meta is missing, unreadable or for other fields, or whose payload does not
check, is rebuilt, never trusted; interrupted writes leave no meta and so are never read.

``hwsim train``'s per-layer costs (``analysis.train_cache``) sit beside them, one file each
(``KEY.costs.json``), and the GPU SM core's stepped main loops (``KEY.sm.json``,
``sim.gpu.sm.mainloop``); ``entries``, eviction and ``clear`` count them too.

The directory is ``$HWSIM_CACHE_DIR`` when set, else the platform's user cache directory
(``platformdirs``). Entries beyond ``$HWSIM_CACHE_MAX_MB`` (default 4096 MB) are evicted,
least recently used first.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .errors import HwsimError
from .fileio import atomic_write
from .trace import Workload

__all__ = ["KEY_VERSION", "DEFAULT_MAX_MB", "cache_dir", "source_digest", "TraceKey", "trace_key", "load", "store",
           "cached", "Entry", "entries", "clear"]

KEY_VERSION = 3    # 2: a large batch lowers on the meta device; 3: tensor files' SHA-256, user models' seed
DEFAULT_MAX_MB = 4096      # a default cap on the folder (a policy choice, not a measured figure)


def cache_root() -> Path:
    """hwsim's cache folder: ``$HWSIM_CACHE_DIR``, else the user cache directory. Traces live
    in ``traces/``; compiled RTL models in ``cxxrtl/``, ``verilator/``, ``tile-cxxrtl/`` and
    ``tile-verilator/`` (``rtl``)."""
    env = os.environ.get("HWSIM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir
    return Path(user_cache_dir("hwsim", appauthor=False))


def cache_dir() -> Path:
    """Where traces are cached: ``traces/`` in :func:`cache_root`."""
    return cache_root() / "traces"


def _max_bytes() -> int:
    raw = os.environ.get("HWSIM_CACHE_MAX_MB", str(DEFAULT_MAX_MB))
    try:
        mb = float(raw)
    except ValueError:
        raise HwsimError(f"$HWSIM_CACHE_MAX_MB: expected a number of megabytes, got {raw!r}") from None
    if not (mb >= 0 and mb < float("inf")):
        raise HwsimError(f"$HWSIM_CACHE_MAX_MB: must be a finite number >= 0, got {raw!r}")
    return int(mb * 2**20)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SOURCE_DIGEST: str | None = None


def files_digest(root: Path, files: Iterable[Path]) -> str:
    """SHA-256 over ``files`` in the order given: each one's path relative to ``root``, then its bytes."""
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def source_digest() -> str:
    """SHA-256 over the ``workloads`` package's Python sources (paths and contents)."""
    global _SOURCE_DIGEST
    if _SOURCE_DIGEST is None:
        root = Path(__file__).parent
        _SOURCE_DIGEST = files_digest(root, sorted(root.rglob("*.py")))
    return _SOURCE_DIGEST


def dist_version(dist: str) -> str:
    """An installed distribution's version, or "none"."""
    return _version(dist)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return "none"


@dataclass(frozen=True)
class TraceKey:
    """Everything a lowered trace depends on; its digest names the entry."""

    spec: str
    batch: int | None
    seq_len: int | None
    keep_weights: bool | str
    lowering: tuple[tuple[str, Any], ...]
    model_file_sha256: str | None
    hwsim: str
    torch: str
    source_sha256: str
    seed: int | None = None          # torch's seed for a user model's code; None for the zoo and gpt:
    key_version: int = KEY_VERSION

    def fields(self) -> dict[str, Any]:
        d = asdict(self)
        d["lowering"] = dict(self.lowering)
        return d

    @property
    def digest(self) -> str:
        return _digest(json.dumps(self.fields(), sort_keys=True).encode())[:32]


def trace_key(spec: str, batch: int | None, seq_len: int | None, keep_weights: bool | str,
              lowering: Any) -> TraceKey:
    """The key of a torch MODEL argument lowered with ``lowering`` (a dataclass)."""
    from .usercode import seed
    model_file = None
    path, sep, _ = spec.rpartition(":")
    if sep and path.endswith(".py"):
        model_file = _folder_digest(Path(path))
    return TraceKey(spec=spec, batch=batch, seq_len=seq_len, keep_weights=keep_weights,
                    lowering=tuple(sorted(asdict(lowering).items())), model_file_sha256=model_file,
                    hwsim=_version("hwsim"), torch=_version("torch"), source_sha256=source_digest(),
                    seed=seed() if model_file is not None else None)


def _folder_digest(model: Path) -> str:
    """SHA-256 over the model file and every ``.py`` file beside it (names and bytes): the
    folder is on the import path while the model loads, so a sibling module it imports is
    part of the model."""
    h = hashlib.sha256()
    try:
        h.update(model.read_bytes())
        for f in sorted(model.resolve().parent.glob("*.py")):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    except OSError as e:
        raise HwsimError(f"model file {str(model)!r}: cannot read it or a .py file beside it "
                         f"({e.strerror}: {e.filename})") from None
    return h.hexdigest()


def _paths(key: TraceKey) -> tuple[Path, Path, Path]:
    d = cache_dir()
    k = key.digest
    return d / f"{k}.json", d / f"{k}.npz", d / f"{k}.meta.json"


def _warn(msg: str) -> None:
    print(f"hwsim: {msg}", file=sys.stderr)


def load(key: TraceKey) -> Workload | None:
    """The cached trace for ``key``, or None when there is none or it cannot be trusted
    (a corrupt or stale entry is reported on stderr and removed)."""
    trace, npz, meta = _paths(key)
    if not meta.exists():
        return None
    why = None
    try:
        m = json.loads(meta.read_text(encoding="utf-8"))
        if not isinstance(m, dict) or m.get("key") != json.loads(json.dumps(key.fields())):
            why = "its key fields differ"
        else:
            text = trace.read_bytes()
            if _digest(text) != m.get("trace_sha256"):
                why = "the trace's digest differs"
            else:
                tensors: dict[str, np.ndarray] = {}
                if m.get("npz_bytes") is not None:
                    if npz.stat().st_size != m["npz_bytes"]:
                        why = "the tensor file's size differs"
                    else:
                        tensors, why = _read_tensors(npz, m.get("npz_sha256"))
                if why is None:
                    wl = Workload.from_dict(json.loads(text), tensors, where=str(trace))
                    os.utime(meta)      # least recently used goes first
                    return wl
    except (OSError, ValueError, KeyError, HwsimError, zipfile.BadZipFile) as e:
        why = f"{type(e).__name__}: {e}"
    _warn(f"cache entry {meta} is stale or corrupt ({why}); lowering again")
    _remove(key)
    return None


def _read_tensors(npz: Path, sha256: Any) -> tuple[dict[str, np.ndarray], str | None]:
    """The arrays of ``npz`` if its SHA-256 is ``sha256`` (hashed as streamed, then read from
    the same open file), else ``({}, why)``."""
    with open(npz, "rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != sha256:
            return {}, "the tensor file's digest differs"
        f.seek(0)
        with np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, None


def _remove(key: TraceKey) -> None:
    for p in reversed(_paths(key)):       # meta first: a half-removed entry is never read
        p.unlink(missing_ok=True)


def store(key: TraceKey, wl: Workload, limit_bytes: int | None = None) -> None:
    """Write ``wl`` under ``key`` (payload first, meta last; every file atomically), then
    evict down to ``limit_bytes`` (default ``$HWSIM_CACHE_MAX_MB``)."""
    trace, npz, meta = _paths(key)
    doc, tensors = wl.to_dict()
    trace.parent.mkdir(parents=True, exist_ok=True)
    _remove(key)
    npz_bytes = npz_sha256 = None
    if tensors:                           # uncompressed: loading is the point
        atomic_write(npz, lambda f: np.savez(f, **tensors), binary=True)  # type: ignore[arg-type]
        npz_bytes = npz.stat().st_size
        with open(npz, "rb") as f:
            npz_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        doc["tensors"] = npz.name
    text = json.dumps(doc, separators=(",", ":")).encode()
    atomic_write(trace, text, binary=True)
    atomic_write(meta, json.dumps({"key": key.fields(), "trace_sha256": _digest(text), "npz_bytes": npz_bytes,
                                   "npz_sha256": npz_sha256, "created": time.time()}, indent=1))
    _evict(_max_bytes() if limit_bytes is None else limit_bytes)


def cached(key: TraceKey, make: Callable[[], Workload]) -> Workload:
    """The trace under ``key``, lowering it with ``make()`` and storing it on a miss."""
    limit = _max_bytes()                  # a bad setting is refused before any lowering
    wl = load(key)
    if wl is None:
        wl = make()
        try:
            store(key, wl, limit)
        except OSError as e:
            _warn(f"could not write the trace cache in {cache_dir()} ({e.strerror}); continuing without it")
    return wl


@dataclass(frozen=True)
class Entry:
    digest: str
    spec: str
    bytes: int
    used: float


def entries() -> list[Entry]:
    """The complete entries in the cache, most recently used first."""
    d = cache_dir()
    out: list[Entry] = []
    if not d.is_dir():
        return out
    for meta in d.glob("*.meta.json"):
        k = meta.name[:-len(".meta.json")]
        size = sum(p.stat().st_size for p in (meta, d / f"{k}.json", d / f"{k}.npz") if p.exists())
        try:
            spec = str(json.loads(meta.read_text(encoding="utf-8"))["key"]["spec"])
        except (OSError, ValueError, KeyError, TypeError):
            spec = "?"
        out.append(Entry(k, spec, size, meta.stat().st_mtime))
    # one-file entries: hwsim train's per-layer costs (analysis.train_cache) and the GPU SM
    # core's stepped main loops (sim.gpu.sm.mainloop)
    for pattern, kind, name in (("*.costs.json", "training costs", lambda k: str(k["model"])),
                                ("*.sm.json", "SM main loop", lambda k: f"{k['generation'] or 'gpu'} "
                                 f"{'x'.join(map(str, k['tile']))} {k['precision']} x{k['ctas']}")):
        for f in d.glob(pattern):
            try:
                spec = f"{name(json.loads(f.read_text(encoding='utf-8'))['key'])} ({kind})"
            except (OSError, ValueError, KeyError, TypeError):
                spec = f"? ({kind})"
            try:
                st = f.stat()
            except OSError:
                continue
            out.append(Entry(f.name[:-len(".json")], spec, st.st_size, st.st_mtime))
    return sorted(out, key=lambda e: -e.used)


def _evict(limit: int) -> None:
    total = 0
    for e in entries():
        total += e.bytes
        if total > limit:
            for suffix in (".meta.json", ".json", ".npz"):
                (cache_dir() / f"{e.digest}{suffix}").unlink(missing_ok=True)


def clear() -> tuple[int, int]:
    """Remove every cache entry, traces, training costs and SM main loops (and leftovers of interrupted
    writes); returns (entries, bytes)."""
    d = cache_dir()
    n = freed = 0
    if not d.is_dir():
        return 0, 0
    for p in d.iterdir():
        name = p.name
        if p.is_file() and (name.endswith((".json", ".npz")) or ".tmp" in name):
            n += name.endswith((".meta.json", ".costs.json", ".sm.json"))
            freed += p.stat().st_size
            p.unlink()
    return n, freed

"""A cache of per-layer training costs on disk, so that a later ``hwsim train`` of a zoo
transformer or a ``gpt:`` shape neither reads its lowered trace nor simulates its layer again.

An entry holds what :meth:`analysis.train.Model.costs` returns for one (model and its shape,
microbatch, tensor-parallel degree, sequence parallelism, recomputation, precision,
attention, optimizer, sequence length, device): the block names and each region's
:class:`~analysis.train.Region` (times, collectives, activations, parameters, ZeRO-3 steps).
Its key holds every one of those inputs, the device's whole description (its class and
every field), the hwsim and torch versions and a SHA-256 of the code that computes the
costs: the ``sim`` and ``workloads`` packages and ``analysis/train.py``, ``train_regions.py``,
``train_cache.py`` (so that a changed simulator or lowering never serves an old cost).

Each entry is one file, ``KEY.costs.json``, beside the trace cache's entries
(``workloads.cache.cache_dir()``: ``$HWSIM_CACHE_DIR/traces`` or the user cache directory), so
that ``hwsim cache clear`` removes it too; it repeats the key's fields and holds the SHA-256
of its payload. It is written atomically (``workloads.fileio.atomic_write``: a temporary file
renamed over the entry), so a reader sees a whole entry or none; an entry whose key fields
differ, whose payload does not check or that cannot be read is rebuilt, never trusted.
``--no-cache`` (``Model(job, cache=False)``) neither reads nor writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from .train_regions import Region

__all__ = ["COSTS_VERSION", "code_digest", "costs_dir", "encode", "decode", "load", "store", "fast"]

COSTS_VERSION = 1

_CODE_DIGEST: str | None = None


def fast() -> bool:
    """Whether the memoised paths run (default). ``HWSIM_TRAIN_REFERENCE=1`` runs the
    original computation instead: no cost cache on disk, nothing remembered beyond what
    ``hwsim train`` remembered before these paths existed (tests and ``benchmarks/train_speed.py``
    compare the two)."""
    return os.environ.get("HWSIM_TRAIN_REFERENCE", "") in ("", "0")


def code_digest() -> str:
    """SHA-256 over the sources that compute a layer's costs: every ``.py`` file of the
    ``sim`` and ``workloads`` packages (paths and bytes), ``analysis/train.py``, ``train_regions.py``
    and this module."""
    global _CODE_DIGEST
    if _CODE_DIGEST is None:
        from workloads.cache import files_digest
        root = Path(__file__).resolve().parent.parent
        files = [*sorted((root / "sim").rglob("*.py")), *sorted((root / "workloads").rglob("*.py")),
                 *(root / "analysis" / f for f in ("train.py", "train_regions.py", "train_cache.py"))]
        _CODE_DIGEST = files_digest(root, files)
    return _CODE_DIGEST


_VERSIONS: dict[str, str] = {}


def versions() -> dict[str, str]:
    """The hwsim and torch versions (torch's lowering makes the traces the costs come from)."""
    if not _VERSIONS:
        from workloads.cache import dist_version
        _VERSIONS.update(hwsim=dist_version("hwsim"), torch=dist_version("torch"))
    return dict(_VERSIONS)


def costs_dir() -> Path:
    """The trace cache's folder (the entries sit beside the traces)."""
    from workloads.cache import cache_dir
    return cache_dir()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The whole key: the caller's fields, the versions, the code digest and this format's."""
    return {**fields, **versions(), "code_sha256": code_digest(), "costs_version": COSTS_VERSION}


def _path(key: dict[str, Any]) -> Path:
    return costs_dir() / f"{_digest(json.dumps(key, sort_keys=True).encode())[:32]}.costs.json"


def encode(blocks: list[str], regions: dict[str, Region]) -> dict[str, Any]:
    """A Model's costs as JSON (floats keep every bit: JSON writes their shortest repr)."""
    import dataclasses
    return {"blocks": list(blocks),
            "regions": {name: {f.name: getattr(r, f.name) for f in dataclasses.fields(r)} for name, r in regions.items()}}


def decode(doc: dict[str, Any]) -> tuple[list[str], dict[str, Region]]:
    """:func:`encode`'s inverse (lists back to the tuples a Region holds)."""
    def steps(s: Any) -> Any:
        mods, fwd, bwd = s
        return (tuple((str(m), p) for m, p in mods), tuple((str(m), u) for m, u in fwd),
                tuple((str(m), u) for m, u in bwd))
    regions = {}
    for name, r in doc["regions"].items():
        r = dict(r)
        for f in ("fwd_comm", "bwd_comm", "comm_kinds", "comm_gemm_us"):
            r[f] = tuple(r[f])
        r["steps"] = steps(r["steps"])
        regions[str(name)] = Region(**r)
    return [str(b) for b in doc["blocks"]], regions


def _warn(msg: str) -> None:
    print(f"hwsim: {msg}", file=sys.stderr)


def load(fields: dict[str, Any]) -> tuple[list[str], dict[str, Region]] | None:
    """The costs stored under ``fields``, or None when there are none or they cannot be
    trusted (a stale or corrupt entry is reported on stderr and removed)."""
    key = key_fields(fields)
    path = _path(key)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        _warn(f"cost cache entry {path} cannot be read ({e.strerror}); simulating again")
        return None
    why = None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("key") != json.loads(json.dumps(key)):
            why = "its key fields differ"
        elif _digest(json.dumps(doc.get("costs"), sort_keys=True).encode()) != doc.get("costs_sha256"):
            why = "its payload's digest differs"
        else:
            return decode(doc["costs"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        why = f"{type(e).__name__}: {e}"
    _warn(f"cost cache entry {path} is stale or corrupt ({why}); simulating again")
    path.unlink(missing_ok=True)
    return None


def store(fields: dict[str, Any], blocks: list[str], regions: dict[str, Region]) -> None:
    """Write the costs under ``fields`` (atomically); a folder that cannot be written is
    reported and the run goes on without it."""
    from workloads.errors import HwsimError
    from workloads.fileio import atomic_write
    key = key_fields(fields)
    path = _path(key)
    costs = encode(blocks, regions)
    doc = {"key": key, "costs": costs,
           "costs_sha256": _digest(json.dumps(json.loads(json.dumps(costs)), sort_keys=True).encode())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, sort_keys=True))
    except OSError as e:
        _warn(f"could not write the cost cache in {path.parent} ({e.strerror}); continuing without it")
    except HwsimError as e:           # a full disk (workloads.fileio.NoRoom)
        _warn(f"could not write the cost cache ({e}); continuing without it")

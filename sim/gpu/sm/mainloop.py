"""A GEMM main loop's cycles per K step on one SM, from the stepped core.

The wave model (``sim.gpu.gemm``) needs one number per (card, CTA tile, precision, resident
CTAs): how long the resident CTAs take to advance one K step together when the SM's own
resources (issue, tensor pipes, shared memory, the stages' copy latency) decide it. This
module runs :func:`sim.gpu.sm.core.step` on :data:`KSTEPS` K steps of the CTA's program and
takes the steady state: the tensor instructions issued while every resident CTA is past its
prologue and none has reached the last :data:`DRAIN` steps, as cycles per K step of all
resident CTAs. The core is deterministic, so the result is cached per key: in the process,
and on disk beside the trace cache (``KEY.sm.json`` in ``workloads.cache.cache_dir()``, so that
``hwsim cache info`` lists and ``hwsim cache clear`` removes them), keyed by every input and a
SHA-256 of this package's code, written atomically and recomputed whenever an entry's key or
payload does not check; a cache folder that cannot be written only costs the recomputation
(``--no-cache``, :data:`disk_cache`, neither reads nor writes them).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator
from typing import TYPE_CHECKING

from workloads.errors import HwsimError

from ..precision import PRECISION_BYTES
from .core import step
from . import isa
from .isa import tensor_op
from .program import cta_program

if TYPE_CHECKING:
    from ..arch import GPUArch

__all__ = ["KSTEPS", "MEASURED", "DRAIN", "STORE_VERSION", "MainLoop", "main_loop", "disk_cache", "keep_on_disk"]

KSTEPS = 10          # K steps stepped: the stages' prologue, a steady state, the drain
MEASURED = 3         # the steps averaged, before the drain
DRAIN = 3            # the last steps left out: a CTA that finishes early frees the pipes for the others
                     # (a multistage program's: at least its last stages - 2, which copy nothing)
STORE_VERSION = 1    # the on-disk entries' format


@dataclass(frozen=True)
class MainLoop:
    cycles_per_kstep: float     # the resident CTAs each advance one K step in this many cycles
    tensor_share: float         # of those cycles, the share the tensor pipes are busy (1: the datasheet peak)
    structure: str              # the kernel's structure (sim.gpu.sm.program)
    instruction: str            # the tensor instruction issued


_CODE: str | None = None
# whether main loops are read from and written to the cache folder (``hwsim ... --no-cache``: not)
disk_cache: contextvars.ContextVar[bool] = contextvars.ContextVar("hwsim_sm_disk_cache", default=True)


@contextlib.contextmanager
def keep_on_disk(allowed: bool) -> Iterator[None]:
    """Within the block, main loops use the cache folder only if ``allowed`` (and the caller's
    setting allows it too): ``--no-cache``, a worker told so, a training model without its cache."""
    token = disk_cache.set(disk_cache.get() and allowed)
    try:
        yield
    finally:
        disk_cache.reset(token)


def _code_digest() -> str:
    """SHA-256 over the sources a main loop's cycles come from: this package and the precisions."""
    global _CODE
    if _CODE is None:
        from workloads.cache import files_digest
        here = Path(__file__).resolve().parent
        root = here.parent.parent.parent
        _CODE = files_digest(root, [*sorted(here.glob("*.py")), here.parent / "precision.py"])
    return _CODE


def _entry(key: dict[str, object]) -> Path:
    from workloads.cache import cache_dir
    return cache_dir() / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]}.sm.json"


def _load(key: dict[str, object]) -> MainLoop | None:
    try:
        doc = json.loads(_entry(key).read_bytes())
        res = doc["result"]
        if doc["key"] != key or hashlib.sha256(json.dumps(res, sort_keys=True).encode()).hexdigest() != doc["sha256"]:
            return None
        return MainLoop(float(res["cycles_per_kstep"]), float(res["tensor_share"]), str(res["structure"]),
                        str(res["instruction"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(key: dict[str, object], loop: MainLoop) -> None:
    from workloads.fileio import atomic_write
    res = asdict(loop)
    doc = {"key": key, "result": res, "sha256": hashlib.sha256(json.dumps(res, sort_keys=True).encode()).hexdigest()}
    try:
        path = _entry(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, sort_keys=True))
    except (OSError, HwsimError):
        pass          # a cache folder that cannot be written: the next process steps the core again


@functools.lru_cache(maxsize=4096)
def _run(generation: str, rate: float, mnk: tuple[int, int, int], in_smem: bool, tcs: int, precision: str,
         BM: int, BN: int, BK: int, stages: int, ctas: int, l2_latency: int, mma_sync: bool) -> MainLoop:
    key: dict[str, object] = {
        "generation": generation, "rate": rate, "mma_mnk": list(mnk), "operands_in_smem": in_smem, "tcs_per_sm": tcs,
        "precision": precision, "tile": [BM, BN, BK], "stages": stages, "ctas": ctas, "l2_latency": l2_latency,
        "mma_sync": mma_sync, "code_sha256": _code_digest(), "version": STORE_VERSION}
    use = disk_cache.get()
    loop = _load(key) if use else None
    if loop is None:
        loop = _step(generation, rate, mnk, in_smem, tcs, precision, BM, BN, BK, stages, ctas, l2_latency, mma_sync)
        if use:
            _store(key, loop)
    return loop


def _step(generation: str, rate: float, mnk: tuple[int, int, int], in_smem: bool, tcs: int, precision: str,
          BM: int, BN: int, BK: int, stages: int, ctas: int, l2_latency: int, mma_sync: bool) -> MainLoop:
    from types import SimpleNamespace
    arch = SimpleNamespace(generation=generation, mma_mnk=mnk, mma_operands_in_smem=in_smem, tcs_per_sm=tcs,
                           tc_fma_per_clk={precision: rate})
    op = tensor_op(arch, precision, BN, mma_sync=mma_sync)      # type: ignore[arg-type]
    timing = isa.GENERATION_TIMING[generation or isa.DEFAULT_GENERATION]
    in_b = PRECISION_BYTES[precision]
    # A multistage program copies stages - 1 steps ahead, so its last stages - 1 steps copy
    # nothing: the measured steps end before them (and before the drain), and the program is
    # stepped long enough for that (the presets' 2-3 stages: KSTEPS; a warp-specialised
    # producer is held back by the stages' releases instead)
    drain = DRAIN if op.warpgroup else max(DRAIN, stages - 2)
    first = KSTEPS - 1 - DRAIN - MEASURED          # past the prologue
    last = first + MEASURED
    ksteps = max(KSTEPS, last + 1 + drain)
    prog = cta_program(BM, BN, BK, in_b, op, stages, ksteps,
                       async_copy=generation not in ("volta", "turing"))
    run = step(prog, ctas, op, timing.smem_latency, timing.smem_bytes_per_clk, l2_latency,
               l2_latency + isa.TMA_EXTRA_CYCLES)
    # The SM's step, from the tensor work issued while every resident CTA is in its steady
    # state (between all having passed step `first` and the first to pass step `last`): CTAs
    # interleave on the pipes in patterns longer than a step, so one CTA's step times jitter
    # while the work per cycle does not.
    t1, t2 = max(m[first] for m in run.marks), min(m[last] for m in run.marks)
    rates = []
    for issues in run.tensor_issues:
        if not issues:
            continue
        per_step = len(issues) / ksteps               # every step issues the same instructions
        done = sum(1 for x in issues if t1 <= x < t2)
        if done:
            rates.append((t2 - t1) * per_step / done)
    per = max(rates) if rates and t2 > t1 else \
        sum(m[last] - m[first] for m in run.marks) / len(run.marks) / MEASURED
    ideal = ctas * BM * BN * BK / (tcs * rate)
    return MainLoop(per, ideal / per, prog.structure, op.name)


def main_loop(arch: GPUArch, BM: int, BN: int, BK: int, precision: str, ctas: int, stages: int, *,
              mma_sync: bool = False) -> MainLoop:
    """Steady-state cycles per K step (``BK`` elements) of ``ctas`` resident ``BM x BN`` CTAs
    of a ``stages``-stage kernel (``sim.gpu.kernel``) on ``arch``."""
    return _run(arch.generation, float(arch.tc_fma_per_clk[precision]), arch.mma_mnk, arch.mma_operands_in_smem,
                arch.tcs_per_sm, precision, BM, BN, BK, stages, ctas,
                arch.l2_latency_cycles, mma_sync)

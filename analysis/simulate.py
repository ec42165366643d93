"""One model on one design, as ``hwsim simulate`` and ``hwsim report`` run it: resolve the
MODEL (lowered, compressed or Winograd-rewritten as asked), apply the kernel options,
simulate and price it. The CLI and :func:`hwsim.simulate` both call :func:`simulate`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workloads.errors import HwsimError
from workloads.precision import NAMES as PRECISION_NAMES

if TYPE_CHECKING:                      # the CLI imports this module for --help: nothing heavy at import
    from sim.machine import Machine
    from workloads.spec import Lowering
    from workloads.trace import Workload

    from .report import Evaluation

__all__ = ["POLICIES", "TC_PRECISIONS", "compressed", "how", "kernels", "resolve_model", "simulate"]

POLICIES = PRECISION_NAMES      # the trace precisions (workloads.precision): autocast's, O2's, the FP8 recipes
TC_PRECISIONS = ("fp16", "bf16", "tf32", "fp8", "int8", "int4")


def how(train: bool = False, optimizer: str | None = None, recompute: str = "none", precision: str | None = None,
        attention: str = "unfused", decode: int | None = None) -> tuple[Lowering, str | None]:
    """(the Lowering, a tensor-core precision for the machine or None): ``precision`` is a
    trace precision policy or a GPU tensor-core type forced on every GEMM."""
    from workloads.spec import Lowering

    if precision is not None and precision not in POLICIES + TC_PRECISIONS:
        raise HwsimError(f"--precision: unknown {precision!r}; a trace precision ({', '.join(POLICIES)}) or, on "
                         f"GPUs, a tensor-core type ({', '.join(TC_PRECISIONS)})")
    if optimizer is not None and not train:
        raise HwsimError("--optimizer applies to a training step; add --train")
    policy = precision if precision in POLICIES else "fp32"
    tc = precision if precision in TC_PRECISIONS else None
    return Lowering(train=train, attention=attention, optimizer=optimizer or "adam", recompute=recompute,
                    precision=policy, decode=decode), tc


def kernels(desc: Machine, fuse: str | None, layout: str | None) -> Machine:
    """``desc`` with --fuse / --layout applied (the machine's ``fusion`` and ``layout`` fields)."""
    from sim.machine import HasKernelOptions

    for flag, field, value in (("--fuse", "fusion", fuse), ("--layout", "layout", layout)):
        if value is None:
            continue
        if not isinstance(desc, HasKernelOptions):
            raise HwsimError(f"{flag}: {desc.family} designs ({desc.name}) have no {field} choice; it applies to "
                             "GPU designs")
        desc = dataclasses.replace(desc, **{field: value})  # type: ignore[type-var]  # a frozen dataclass description
    return desc


def compressed(model: str, plan_path: str, seed: int, batch: int | None = None,
               seq_len: int | None = None) -> Workload:
    """Compress a torch model (the zoo's or ``file.py:factory``) or an ONNX model with a plan
    (no retraining) and lower it with its real weights, at ``batch`` and ``seq_len``."""
    from workloads.compress.job import compress_model

    return compress_model(model, plan=plan_path, seed=seed, batch=batch, seq_len=seq_len).trace()


def resolve_model(model: str, **kw: Any) -> Workload:
    """``workloads.spec.resolve`` with a counter of the ops recorded while a torch model lowers
    (nothing is shown, and torch not imported, on a cache hit)."""
    from workloads.progress import ON_OP
    from workloads.spec import resolve

    from .progress import counting

    with counting(f"lowering {model}", " ops", ON_OP):
        return resolve(model, **kw)


def simulate(model: str | Workload, arch: Any, *, batch: int | None = None, seq_len: int | None = None,
             seed: int | None = None, precision: str | None = None, energy_table: str | None = None,
             node_nm: float | None = None, compress: str | None = None, winograd: str | int | None = None,
             train: bool = False, optimizer: str | None = None, recompute: str = "none", attention: str = "unfused",
             decode: int | None = None, cache: bool = True, mapping: str = "fixed", objective: str = "edp",
             fuse: str | None = None, layout: str | None = None,
             progress: Callable[[Any], None] | None = None) -> Evaluation:
    """Simulate and price MODEL on ``arch`` (a preset name, an arch YAML path or a
    description) with every option of ``hwsim simulate`` under the same name; an
    :class:`~analysis.report.Evaluation`. ``energy_table`` None prices with the design's own
    table; ``precision`` is a trace precision or, on GPUs, a tensor-core type."""
    from sim.registry import options, resolve_arch
    from workloads.spec import Lowering, is_user_model
    from workloads.trace import Workload
    from workloads.usercode import seeded

    from .report import evaluate

    desc = kernels(resolve_arch(arch), fuse, layout)
    if mapping == "search":             # refused before any lowering where there is nothing to search
        from .mapping import families
        families(desc)
    lowering, tc = how(train, optimizer, recompute, precision, attention, decode)
    # only the options the user gave; the machine says which it takes
    if precision == "fp32" and "precision" in options(desc):
        tc = precision          # a machine that picks its own type (a GPU's tensor cores) is held to fp32 too
    kw: dict[str, Any] = {k: v for k, v in (("seed", seed), ("precision", tc)) if v is not None}
    if seed is not None and "seed" not in options(desc):
        if not (isinstance(model, str) and is_user_model(model)):   # else it seeds torch for the user's factory
            raise HwsimError(f"--seed: {desc.family} designs ({desc.name}) take no seed, and {model} runs no "
                             "code of yours (file.py:factory) to seed; drop --seed")
        del kw["seed"]
    for k in kw:
        if k not in options(desc):
            raise HwsimError(f"--{k}: {desc.family} designs ({desc.name}) take no {k}; "
                             f"their options: {', '.join(o for o in options(desc) if o != 'progress')}")
    if isinstance(model, Workload):
        if compress or batch is not None or seq_len is not None or lowering != Lowering():
            raise HwsimError("a Workload is already lowered: leave out batch, seq_len, compress and the lowering "
                             "options, or pass the MODEL's name")
        wl = model
    else:
        with seeded(seed):      # torch's seed before a file.py:factory runs (default: usercode.DEFAULT_SEED)
            if compress:
                if lowering != Lowering():
                    raise HwsimError("--compress lowers the compressed model for inference at fp32; leave out "
                                     "--train, --decode, --attention and --precision (or compress, save with "
                                     "'hwsim compress -o', and simulate the saved trace)")
                wl = compressed(model, compress, seed or 0, batch, seq_len)
            else:
                wl = resolve_model(model, batch=batch, seq_len=seq_len,
                                   keep_weights="sparse" if desc.uses_weight_values else False, how=lowering,
                                   cache=cache)
    if winograd:
        from workloads.compress.winograd import lower as wino
        wl = wino(wl, int(winograd))
    try:
        return evaluate(wl, desc, energy_table, node_nm, progress=progress, mapping=mapping, objective=objective,
                        **kw)
    except HwsimError as e:      # what this design cannot run: the message names the design's file
        if isinstance(arch, str) and arch.endswith((".yaml", ".yml")) and not str(e).startswith(arch):
            raise type(e)(f"{arch}: {e}") from None
        raise

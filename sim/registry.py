"""Every machine family and preset, and the one entry point that simulates a workload.

``FAMILIES`` is the one table: family name -> the package that implements it. A package
exports ``ARCH`` (its description class, a :class:`~sim.machine.Machine`), ``PRESETS``
(name -> description) and ``CONSTANTS`` (its model's constants with their sources). Code outside hwsim adds a family with :func:`register`.
``--arch`` takes a preset name, a YAML file ``{base: PRESET, FIELD: VALUE, ...}``, or
``zigzag:HARDWARE.yaml[:MAPPING.yaml]`` (ZigZag's hardware description, ``sim.spatial.zigzag``).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Mapping

from workloads.errors import HwsimError
from workloads.trace import Workload

from .constants import Constant
from .machine import Machine
from .result import SimResult

__all__ = [
    "FAMILIES", "register", "unregister", "constants", "families", "presets", "resolve_arch", "options", "check_options",
    "simulate",
]

FAMILIES: dict[str, str] = {
    "systolic": "sim.systolic",
    "eie": "sim.eie",
    "gpu": "sim.gpu",
    "spatial": "sim.spatial",
}

_registered: dict[str, tuple[type, Mapping[str, Any]]] = {}
_registered_constants: dict[str, tuple[Constant, ...]] = {}


def register(family: str, arch_type: type, presets: Mapping[str, Any],
             constants: tuple[Constant, ...] = ()) -> None:
    """Add a machine family from outside hwsim: its description class, its presets and the
    constants of its model (with their sources)."""
    if family in FAMILIES:
        raise HwsimError(f"machine family {family!r} is built in")
    for name, arch in presets.items():
        if not isinstance(arch, arch_type) or not isinstance(arch, Machine):
            raise HwsimError(f"preset {name!r}: must be an instance of {arch_type.__name__} implementing Machine")
    clash = set(presets) & {n for f, (_, p) in families().items() if f != family for n in p}
    if clash:
        raise HwsimError(f"preset names already taken: {', '.join(sorted(clash))}")
    _registered[family] = (arch_type, dict(presets))
    _registered_constants[family] = tuple(constants)


def unregister(family: str) -> None:
    """Remove a family added with :func:`register`."""
    _registered.pop(family, None)
    _registered_constants.pop(family, None)


def constants() -> dict[str, tuple[Constant, ...]]:
    """family -> the constants its model rests on, each with its kind and source."""
    out: dict[str, tuple[Constant, ...]] = {}
    for family, module in FAMILIES.items():
        out[family] = tuple(importlib.import_module(module).CONSTANTS)
    out.update(_registered_constants)
    return out


def families() -> dict[str, tuple[type, Mapping[str, Any]]]:
    """family -> (description class, presets)."""
    out = {}
    for family, module in FAMILIES.items():
        mod = importlib.import_module(module)
        out[family] = (mod.ARCH, mod.PRESETS)
    out.update(_registered)
    return out


def presets() -> dict[str, Any]:
    """preset name -> description, over all families."""
    return {name: arch for _, table in families().values() for name, arch in table.items()}


def resolve_arch(spec: str | Any) -> Any:
    """A preset name, a YAML override file, or a description (returned as it is)."""
    if not isinstance(spec, str):
        if not isinstance(spec, Machine):
            raise HwsimError(f"{type(spec).__name__} is not a machine description")
        return spec
    table = presets()
    if spec in table:
        return table[spec]
    if spec.startswith("zigzag:"):
        from .spatial.zigzag import load
        return load(spec[len("zigzag:"):])
    if spec.startswith("timeloop:"):          # AccelForge / Timeloop architecture files (sim.spatial.timeloop)
        from .spatial.timeloop import load as load_timeloop
        return load_timeloop(spec[len("timeloop:"):])
    if spec.endswith((".yaml", ".yml")):
        from .archbase import load_yaml_arch
        return load_yaml_arch(Path(spec), table)
    raise HwsimError(f"unknown architecture {spec!r}; presets: {', '.join(table)}; or a YAML file with 'base:'; "
                     "or zigzag:HARDWARE.yaml[:MAPPING.yaml]")


def options(arch: Any) -> tuple[str, ...]:
    """The keyword-only options of ``arch.simulate``."""
    sig = inspect.signature(type(arch).simulate)
    return tuple(n for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY)


def check_options(arch: Any, opts: Mapping[str, Any]) -> None:
    known = options(arch)
    for k in opts:
        if k not in known:
            raise HwsimError(f"{arch.family} designs ({arch.name}) take no option {k!r}; "
                             f"their options: {', '.join(known)}")


def simulate(workload: Workload, arch_spec: str | Any, **opts: Any) -> SimResult:
    """Simulate ``workload`` on a preset, YAML file or description, with checked options.

        >>> from workloads.build import gemm_op
        >>> from workloads.trace import Workload
        >>> wl = Workload("g", (gemm_op("g", 256, 256, 256, bits=8, dtype="int"),))
        >>> r = simulate(wl, "systolic-16")                 # a 16 x 16 array: 256 MACs a cycle at most
        >>> r.ops[0].macs, r.cycles >= 256 ** 3 // 256
        (16777216, True)
    """
    arch: Machine = resolve_arch(arch_spec)
    check_options(arch, opts)
    return arch.simulate(workload, **opts)

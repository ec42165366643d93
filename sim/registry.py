"""Every hardware preset by name, and the one entry point that simulates a workload on one.

``--arch`` takes a preset name or a YAML file ``{base: PRESET, FIELD: VALUE, ...}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from workloads.errors import HwsimError
from workloads.trace import Workload

from .result import SimResult


def _machines() -> dict[str, tuple[dict[str, Any], Callable]]:
    from . import eie
    machines = {"eie": (eie.PRESETS, eie.simulate)}
    try:
        from . import systolic
        machines["systolic"] = (systolic.PRESETS, systolic.simulate)
    except ImportError:
        pass
    try:
        from . import gpu
        machines["gpu"] = (gpu.PRESETS, gpu.simulate)
    except ImportError:
        pass
    return machines


def presets() -> dict[str, tuple[str, Any]]:
    """preset name -> (machine, description)."""
    out = {}
    for machine, (table, _) in _machines().items():
        for name, arch in table.items():
            out[name] = (machine, arch)
    return out


def resolve_arch(spec: str) -> tuple[str, Any]:
    """A preset name or a YAML override file -> (machine, description)."""
    table = presets()
    if spec in table:
        return table[spec]
    if spec.endswith((".yaml", ".yml")):
        from .archbase import load_yaml_arch
        import yaml
        p = Path(spec)
        try:
            base = (yaml.safe_load(p.read_text()) or {}).get("base")
        except (OSError, yaml.YAMLError, AttributeError):
            base = None
        machine = table[base][0] if base in table else None
        if machine is None:
            return "?", load_yaml_arch(p, {k: v for k, (_, v) in table.items()})
        return machine, load_yaml_arch(p, {k: v for k, (m, v) in table.items() if m == machine})
    raise HwsimError(f"unknown architecture {spec!r}; presets: {', '.join(table)}; or a YAML file with 'base:'")


def simulate(workload: Workload, arch_spec: str | Any, **kw) -> SimResult:
    machine, arch = resolve_arch(arch_spec) if isinstance(arch_spec, str) else (_machine_of(arch_spec), arch_spec)
    return _machines()[machine][1](workload, arch, **kw)


def _machine_of(arch) -> str:
    for machine, (table, _) in _machines().items():
        if any(type(a) is type(arch) for a in table.values()):
            return machine
    raise HwsimError(f"no simulator for {type(arch).__name__}")

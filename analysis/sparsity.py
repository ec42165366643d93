"""What a machine made of each op's sparsity: the part it exploited (fewer cycles or less
energy) and the part it ran as dense, from the machine's declaration
(:class:`sim.machine.DeclaresSparsity`) and the op's operands. Reports print both, so that a
what-if on density never silently does nothing."""

from __future__ import annotations

from typing import Any

from sim.machine import DeclaresSparsity
from workloads.trace import Op

__all__ = ["of_op", "ignored_note"]


def _has(op: Op) -> dict[str, str]:
    """The sparsity ``op`` carries, by kind (``weight_density`` -> ``weight 0.1``)."""
    out = {}
    w, a = op.operand("weight"), op.operand("input")
    if op.is_gemm and w is not None and w.density < 1:
        out["weight_density"] = f"weight {w.density:.3g}"
    if op.is_gemm and a is not None and a.density < 1:
        out["act_density"] = f"act {a.density:.3g}"
    if op.is_gemm and w is not None and w.structure:
        out["weight_structure"] = w.structure
    return out


def of_op(op: Op, arch: Any) -> tuple[str, str]:
    """(the sparsity ``arch`` exploited on ``op``, the sparsity it ran as dense), each as text
    ("" for none); on a machine that does not declare it, nothing is claimed either way."""
    if not isinstance(arch, DeclaresSparsity):
        return "", ""
    has = _has(op)
    used = arch.sparsity_exploited
    if "weight_structure" in has and "weight_structure" in used:
        has.pop("weight_density", None)           # the N:M density is the structure's
    return (", ".join(v for k, v in has.items() if k in used),
            ", ".join(v for k, v in has.items() if k not in used))


def ignored_note(rows: list[dict[str, Any]], arch: Any) -> str:
    """One line when ops carry sparsity the machine ran as dense, else ""."""
    n = sum(1 for r in rows if r.get("sparsity_ignored"))
    if not n:
        return ""
    kinds = sorted(arch.sparsity_exploited) if isinstance(arch, DeclaresSparsity) else []
    does = f"it exploits {', '.join(k.replace('_', ' ') for k in kinds)} only" if kinds else "it exploits none"
    return (f"sparsity not exploited by {arch.name} on {n} of {len(rows)} ops (timed and priced as dense: {does}; "
            "the sparsity_ignored column names it)")

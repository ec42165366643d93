"""Where every number comes from (``hwsim archs --sources``): each preset's own source line,
then the constants of each machine family's model, of the system model, of the energy
model's node scaling, of SCALE-Sim's compatible model and of lowering, each with its kind
(published, measured, modelling choice, assumption, policy, calibration) and source."""

from __future__ import annotations

from collections.abc import Iterator

from sim.constants import KINDS, Constant

__all__ = ["sections", "lines"]


def sections() -> list[tuple[str, tuple[Constant, ...]]]:
    """(title, constants) per model: each machine family, then the shared models."""
    from sim.registry import constants
    from sim.scalesim.compat import CONSTANTS as SCALESIM
    from sim.system.constants import CONSTANTS as SYSTEM
    from workloads.spec import MATERIALIZE_MACS

    from .technology import CONSTANTS as TECHNOLOGY

    lowering = (Constant("spec.MATERIALIZE_MACS", MATERIALIZE_MACS, "assumption",
                         "a zoo model whose forward is over this many MACs lowers on PyTorch's meta device (shapes "
                         "exact, densities declared 1.0): about 7 s of lowering at the ~15 GMAC/s measured on the "
                         "project's 2-core machine (ResNet-50 at batch 64, 262 GMAC, in 18 s); the transformers' "
                         "workloads.zoo.transformer.MATERIALIZE_MACS is the same rule"),)

    out = [(f"{family} model", cs) for family, cs in constants().items()]
    return out + [("systems (sim/system)", SYSTEM), ("energy node scaling (analysis/technology.py)", TECHNOLOGY),
                  ("SCALE-Sim's model (sim/scalesim)", SCALESIM), ("lowering (workloads)", lowering)]


def lines(width: int = 120) -> Iterator[str]:
    """The sections as text: one constant per entry, its value, kind and source wrapped."""
    import textwrap

    counts = {k: 0 for k in KINDS}
    for title, cs in sections():
        yield ""
        yield f"{title}: {len(cs)} constants"
        for c in cs:
            counts[c.kind] += 1
            yield textwrap.fill(f"{c.name} = {c.value!r} [{c.kind}]: {c.source}", width, initial_indent="  ",
                                subsequent_indent="      ")
    yield ""
    yield "by kind: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)

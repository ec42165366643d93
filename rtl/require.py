"""What each RTL generator supports, checked before anything is elaborated.

The RTL units are built from the simulators' hardware descriptions, but implement only a
part of what a description can say (the array is weight-stationary, the EIE PE has a
fixed four-stage pipeline). :func:`require` refuses a description outside that part with
the field, the value and what the RTL does support, so that a co-simulation never
"passes" on a design the RTL does not implement.
"""

from __future__ import annotations

from typing import Any, Callable

from workloads.errors import HwsimError

__all__ = ["MAX_ARRAY_PES", "checked", "require", "systolic", "eie_pe", "mma"]

# Elaboration time and memory grow with the PE count (an R x C array is R*C PE modules);
# beyond this the Python elaborator runs for many minutes.
MAX_ARRAY_PES = 64 * 64


def checked(component: Any, rule: Callable[[Any], None], arch: Any) -> None:
    """Run ``rule(arch)`` in a component's constructor; a refused component is not reported
    by Amaranth as created-but-never-elaborated."""
    try:
        rule(arch)
    except HwsimError:
        component._MustUse__silence = True
        raise


def require(unit: str, arch: Any, **rules: tuple[Callable[[Any], bool], str]) -> None:
    """``rules``: field -> (predicate on the field's value, what the RTL supports)."""
    for field, (ok, supported) in rules.items():
        v = getattr(arch, field)
        if not ok(v):
            raise HwsimError(f"{arch.name}: {field}: the {unit} RTL supports {supported}, not {v!r}")


def systolic(arch: Any) -> None:
    require("systolic array", arch,
            dataflow=(lambda v: v == "ws", "the weight-stationary dataflow (ws) only"),
            word_bits=(lambda v: 2 <= v <= 32, "operands of 2 to 32 bits"),
            acc_bits=(lambda v: arch.word_bits <= v <= 64, "accumulators of word_bits to 64 bits"))
    if arch.rows * arch.cols > MAX_ARRAY_PES:
        raise HwsimError(f"{arch.name}: rows x cols: the systolic RTL elaborates at most {MAX_ARRAY_PES} PEs "
                         f"(64 x 64), got {arch.rows} x {arch.cols}")


def eie_pe(arch: Any) -> None:
    require("EIE PE", arch,
            pipeline_depth=(lambda v: v == 4, "the paper's four-stage pipeline (pipeline_depth 4) only"),
            act_bits=(lambda v: 2 <= v <= 32, "activations of 2 to 32 bits"),
            weight_bits=(lambda v: 2 <= v <= 32, "codebook entries of 2 to 32 bits"))


def mma(arch: Any, fma_per_clock: int) -> None:
    """The MMA RTL is one 4x4x4 fp16 step per clock with fp32 accumulation (``rtl.mma``,
    ``fma_per_clock`` = its 64): a GPU whose tensor cores run that many fp16 FMA per clock and
    no other precision (v100)."""
    FMA_PER_CLOCK = fma_per_clock
    rates = dict(arch.tc_fma_per_clk)
    if rates != {"fp16": FMA_PER_CLOCK}:
        raise HwsimError(f"{arch.name}: tc_fma_per_clk: the tensor-core MMA RTL supports {{fp16: {FMA_PER_CLOCK}}} only "
                         f"(fp16 inputs, one 4x4x4 step per clock), not {rates}")

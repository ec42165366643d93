"""AccelForge's (Timeloop's successor's) architecture files, declared (pydantic, strict).

The keys are AccelForge 1.0's own (``accelforge/frontend/arch``: ``Memory``, ``Compute``,
``Container``, ``Spatial``, ``Action``), so its tutorial designs (``examples/arches``:
``tpu_v4i.yaml``, ``eyeriss.yaml``, ``nvdla.yaml``, ``simple.yaml``) read and a misspelt key is
refused with the nearest field. A number may be written as AccelForge writes it: a number or
an expression string (``1024*1024*4*8``, ``8 * 614e9``, ``weight.bits_per_value if weight else
0``), evaluated by :mod:`sim.spatial.timeloop`. Fields AccelForge reads for reports hwsim does
not make (``area``) or for its estimator plug-ins (``component_class``,
``extra_attributes_for_component_model``) are accepted as declared and do not change hwsim's
answer unless an action's energy is left to the plug-in (then the reader refuses it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Action", "Arch", "Compute", "Container", "Doc", "Memory", "Spatial", "Tensors", "NODES"]

Expr = Annotated[int | float | str, Field(description="a number or an AccelForge expression")]
TensorSet = Annotated[str, Field(description="a set expression over tensors: All, Nothing, input, weight, output, "
                                             "Inputs, Outputs, Intermediates, a memory's name (its kept tensors), "
                                             "~X, X | Y, X & Y")]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Action(_Doc):
    name: str
    energy: Annotated[Expr | None, Field(description="J per action; hwsim needs it given (or the file AccelForge "
                                                     "resolved: benchmarks/accelforge_peer.py --resolved)")] = None
    energy_scale: Expr = 1
    throughput: Annotated[Expr | None, Field(description="actions per second")] = None
    throughput_scale: Expr = 1
    bits_per_action: Annotated[Expr | None, Field(description="bits one action moves (AccelForge's default 1)")] = None
    latency: Expr | None = None          # deprecated by AccelForge: 1 / throughput
    values_per_action: dict[str, Any] | None = None


class Spatial(_Doc):
    name: str
    fanout: Expr
    reuse: TensorSet | None = None
    may_reuse: TensorSet | None = None
    min_usage: Expr = 0.0
    usage_scale: Expr = 1
    power_gateable: bool | str = False
    loop_bounds: list[Any] = []


class Tensors(_Doc):
    keep: TensorSet = "Nothing"
    may_keep: TensorSet = "Nothing"
    no_refetch_from_above: TensorSet | None = None
    tile_shape: list[Any] | None = None
    force_memory_hierarchy_order: bool | None = None


class _Component(_Doc):
    name: str
    component_class: str | None = None
    component_model: Any = None
    extra_attributes_for_component_model: dict[str, Any] = {}
    area: Expr | None = None
    area_scale: Expr = 1
    leak_power: Expr | None = None
    leak_power_scale: Expr = 1
    energy_scale: Expr = 1
    throughput_scale: Expr = 1
    total_latency: Expr | None = None
    enabled: bool | str = True
    spatial: list[Spatial] = []
    actions: list[Action] = []


class Memory(_Component):
    kind: Literal["Memory"]
    size: Expr
    tensors: Tensors = Tensors()
    bits_per_action: Expr | None = None
    bits_per_value: dict[str, Expr] = {}
    values_per_action: dict[str, Any] = {}


class Compute(_Component):
    kind: Literal["Compute"]
    bits_per_action: Expr | None = None


class Container(_Doc):
    kind: Literal["Container"]
    name: str
    spatial: list[Spatial] = []


NODES: dict[str, type[_Doc]] = {"Memory": Memory, "Compute": Compute, "Container": Container}


class Arch(_Doc):
    nodes: Annotated[list[dict[str, Any]], Field(min_length=1, description="!Memory, !Compute and !Container "
                                                                           "nodes, outermost first")]
    extra_attributes_for_all_component_models: dict[str, Any] = {}
    variables: dict[str, Any] = {}


class Doc(_Doc):
    """An AccelForge spec file with its architecture (other sections are refused: hwsim reads
    the workload from its own trace and searches the mapping)."""

    arch: Arch

"""Systems of many devices: nodes of devices joined by an intra-node fabric, nodes joined by
a network.

A fabric is ``switch`` (every device has a full-duplex port of ``bandwidth_gbs`` per
direction into a non-blocking switch: NVSwitch inside a DGX, a rail-optimised fat tree of
InfiniBand NICs between them) or ``torus2d`` (every device links to its four neighbours,
``bandwidth_gbs`` per link and direction: a TPU pod). ``latency_us`` is charged once per
transfer on a switch, once per hop on a torus.

Between nodes every device reaches the network through a NIC: one per device by default (DGX
A100 and H100: eight 200/400 Gb/s NICs per node, GPU i on NIC i, each NIC on its own rail of the
fat tree), or ``nics_per_node`` shared evenly by the node's devices. ``host_cpu`` (Intel or
AMD) is what NCCL's tuning model reads for its LL protocol's bandwidth across nodes
(``sim.system.nccl``).

``bandwidth_gbs`` is the line rate; ``efficiency`` is the fraction of it that NCCL's collectives
move at large messages (``bytes_per_us``, the rate every transfer gets): NVLink carries NCCL's
data in 128-byte payloads with their headers (and the GPU adds its own limits), InfiniBand its
packets' headers. Each preset's figure is NVIDIA's engineers' published nccl-tests bus bandwidth
over the line rate (``validation/data/collectives.csv`` holds them as ``fit`` rows, and
independent measurements as ``check`` rows):

* NVLink 3 (A100): ~230 GB/s all-reduce busbw of 12 x 25 = 300 GB/s: 0.767 (S. Jeaugey, NVIDIA,
  NVIDIA/nccl-tests issue 149, 2023-07-05: 25 GB/s per link "converts to ~20GB/s effective
  bandwidth with a 128B payload size", 240 GB/s, "some other bottlenecks on the GPUs limits it to
  ~230GB/s");
* NVLink 4 (H100): ~370 GB/s of 450 GB/s: 0.822 ("With the protocol overhead (~20%) NCCL can get
  an effective NVLink bandwidth of 370GB/s", S. Jeaugey, NVIDIA/nccl-tests issue 212, 2024-05-06:
  the busbw of rings, i.e. without NVLink SHARP, which is not modelled);
* HDR InfiniBand (200 Gb/s = 25 GB/s): 24 GB/s inter-node busbw per NIC: 0.96 (S. Jeaugey,
  NVIDIA/nccl issue 412, 2023-04-24);
* NDR InfiniBand (400 Gb/s = 50 GB/s): "46-48GB/s per NIC", 47: 0.94 (D. Addison, NVIDIA,
  NVIDIA/nccl-tests issue 290, 2025-03-03);
* TPU ICI: no published figure found; 1.0 (the line rate), an assumption.

Latencies are named assumptions, neither measured nor fitted to anything: 1 us for an NVLink/NVSwitch transfer and 2 us
across InfiniBand are the round figures commonly quoted for these links (1-2 us and
1-5 us), 0.5 us for a torus hop (ICI is quoted as sub-microsecond per neighbour).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Gt, Le

from workloads.errors import HwsimError

from ..archbase import NonNegative, Rate, check_fields, need

__all__ = [
    "FABRICS", "Fabric", "System", "NVLINK_LATENCY_US", "IB_LATENCY_US", "ICI_LATENCY_US", "PRESETS",
    "NVLINK3_EFFICIENCY", "NVLINK4_EFFICIENCY", "HDR_IB_EFFICIENCY", "NDR_IB_EFFICIENCY",
    "device_of", "resolve_system",
]

FabricKind = Literal["switch", "torus2d"]
FABRICS: tuple[FabricKind, ...] = typing.get_args(FabricKind)
Count = Annotated[int, Ge(1)]
Efficiency = Annotated[float, Gt(0), Le(1)]


@dataclass(frozen=True)
class Fabric:
    kind: FabricKind
    bandwidth_gbs: Rate     # GB/s per device port (switch) or per link (torus), each direction: line rate
    latency_us: NonNegative
    source: str = ""
    efficiency: Efficiency = 1.0    # the fraction of the line rate NCCL's collectives achieve


    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def bytes_per_us(self) -> float:
        """The achieved rate: the line rate times the efficiency, in bytes per microsecond."""
        return self.bandwidth_gbs * self.efficiency * 1e3


@dataclass(frozen=True)
class System:
    """``nodes`` x ``devices_per_node`` copies of ``device`` (a machine preset name, resolved
    by :func:`device_of`) joined by ``intra`` inside a node and ``inter`` between nodes."""

    kind_name: ClassVar[str] = "system"
    name: str
    device: str
    devices_per_node: Count
    nodes: Count
    intra: Fabric
    inter: Fabric | None = None
    source: str = ""
    device_overrides: tuple[tuple[str, Any], ...] = field(default=(), metadata={"json_schema": {
        "type": "object", "description": "fields of the device's description to change, as an architecture file does"}})
    nics_per_node: Count | None = None   # network ports per node (None: one per device, as on a DGX)
    host_cpu: Literal["intel", "amd"] = "intel"   # the hosts' CPUs: NCCL's LL protocol model reads it

    def __post_init__(self) -> None:
        if isinstance(self.intra, dict):
            object.__setattr__(self, "intra", _fabric(self.intra, "intra"))
        if isinstance(self.inter, dict):
            object.__setattr__(self, "inter", _fabric(self.inter, "inter"))
        if isinstance(self.device_overrides, dict):
            object.__setattr__(self, "device_overrides", tuple(sorted(self.device_overrides.items())))
        check_fields(self)
        need(bool(self.name), "name", "must be a non-empty string")
        need(bool(self.device), "device", "must name a device preset")
        need(isinstance(self.intra, Fabric), "intra", "must be a fabric {kind, bandwidth_gbs, latency_us}")
        need(self.inter is None or isinstance(self.inter, Fabric), "inter",
             "must be a fabric {kind, bandwidth_gbs, latency_us} or absent")
        if self.nodes > 1:
            need(self.inter is not None, "inter", "a system of several nodes needs a network between them")
        if self.intra.kind == "torus2d":
            need(self.nodes == 1, "nodes", "a torus system is one torus: give its size with devices_per_node")
        need(self.nics_per_node is None or self.nics_per_node <= self.devices_per_node, "nics_per_node",
             f"must be at most devices_per_node ({self.devices_per_node}): each NIC serves whole devices")

    @property
    def devices(self) -> int:
        return self.devices_per_node * self.nodes

    def node_of(self, d: int) -> int:
        return d // self.devices_per_node

    @property
    def nics(self) -> int:
        """Network ports per node: ``nics_per_node``, or one per device."""
        return self.nics_per_node or self.devices_per_node

    def nic_of(self, d: int) -> tuple[int, int]:
        """(node, port) of the NIC device ``d`` reaches the network through: the node's devices
        split evenly over its NICs, in order (with one NIC per device, device i of a node owns
        NIC i: the rail-optimised layout)."""
        g = self.devices_per_node
        return d // g, (d % g) * self.nics // g

    def torus_shape(self) -> tuple[int, int]:
        """The most nearly square X x Y with X * Y = devices."""
        n = self.devices_per_node
        x = int(math.isqrt(n))
        while n % x:
            x -= 1
        return n // x, x

    def with_devices(self, n: int) -> "System":
        """The same system with ``n`` devices (whole nodes, or part of one)."""
        need(isinstance(n, int) and n >= 1, "gpus", f"must be a positive integer, got {n!r}")
        if self.intra.kind == "torus2d":
            return dataclasses.replace(self, devices_per_node=n, nodes=1)
        g = self.devices_per_node
        if n <= g:
            nics = None if self.nics_per_node is None else max(1, self.nics_per_node * n // g)
            return dataclasses.replace(self, devices_per_node=n, nodes=1, nics_per_node=nics)
        need(n % g == 0, "gpus", f"{n} devices do not fill whole nodes of {g}; use a multiple of {g}")
        return dataclasses.replace(self, nodes=n // g)

    def describe(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["devices"] = self.devices
        return d


def _fabric(d: object, where: str) -> Fabric:
    if not isinstance(d, dict):
        raise HwsimError(f"{where}: must be a mapping {{kind, bandwidth_gbs, latency_us}}")
    unknown = set(d) - {"kind", "bandwidth_gbs", "latency_us", "source", "efficiency"}
    if unknown:
        raise HwsimError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    try:
        return Fabric(**d)
    except HwsimError as e:
        raise HwsimError(f"{where}.{e}") from None
    except TypeError as e:
        raise HwsimError(f"{where}: {e}") from None


NVLINK_LATENCY_US = 1.0     # assumption (see the module docstring)
IB_LATENCY_US = 2.0         # assumption
ICI_LATENCY_US = 0.5        # assumption
# achieved fractions of the line rate (published nccl-tests bus bandwidths; see the module docstring)
NVLINK3_EFFICIENCY = 230 / 300
NVLINK4_EFFICIENCY = 370 / 450
HDR_IB_EFFICIENCY = 24 / 25
NDR_IB_EFFICIENCY = 47 / 50

PRESETS = {
    "dgx-a100": System(
        "dgx-a100", "a100-80gb", 8, 1,
        intra=Fabric("switch", 300, NVLINK_LATENCY_US,
                     "NVLink 3 through 6 NVSwitches: 12 links x 25 GB/s = 300 GB/s per GPU each way (600 GB/s "
                     "bidirectional); NCCL reaches ~230 GB/s of it (nccl-tests issue 149)", NVLINK3_EFFICIENCY),
        inter=Fabric("switch", 25, IB_LATENCY_US,
                     "8 x 200 Gb/s HDR InfiniBand (ConnectX-6) per node, one per GPU: 25 GB/s each way, "
                     "rail-optimised non-blocking fat tree; NCCL reaches 24 GB/s per NIC (nccl issue 412)",
                     HDR_IB_EFFICIENCY),
        source="NVIDIA DGX A100 system architecture white paper (2020: two AMD EPYC 7742 hosts); Selene, "
               "Narayanan et al., SC 2021",
        host_cpu="amd"),
    "dgx-h100": System(
        "dgx-h100", "h100", 8, 1,
        intra=Fabric("switch", 450, NVLINK_LATENCY_US,
                     "NVLink 4 through 4 NVSwitch chips: 18 links, 900 GB/s per GPU bidirectional; NCCL's rings "
                     "reach ~370 GB/s of it (nccl-tests issue 212)", NVLINK4_EFFICIENCY),
        inter=Fabric("switch", 50, IB_LATENCY_US, "8 x 400 Gb/s NDR InfiniBand (ConnectX-7) per node, one per GPU; "
                     "NCCL reaches 46-48 GB/s per NIC (nccl-tests issue 290)", NDR_IB_EFFICIENCY),
        source="NVIDIA DGX H100 documentation (2022: two Intel Xeon Platinum 8480C hosts)"),
    "tpu-pod": System(
        "tpu-pod", "systolic-128", 1024, 1,
        intra=Fabric("torus2d", 82, ICI_LATENCY_US,
                     "TPUv3's inter-chip interconnect: 4 links per chip at 656 Gbit/s in a 32 x 32 2-D torus"),
        source="Jouppi et al., 'A Domain-Specific Supercomputer for Training Deep Neural Networks', CACM 2020 "
               "(TPUv3 pod); devices are the systolic-128 preset (TPUv3 cores are 128 x 128 MXUs) with 32 GiB "
               "HBM each",
        device_overrides=(("dram_gib", 32.0),)),
}


def device_of(system: System) -> Any:
    """The system's device description (a preset, with the system's overrides)."""
    from ..archbase import override
    from ..registry import resolve_arch
    arch = resolve_arch(system.device)
    if system.device_overrides:
        arch = override(arch, dict(system.device_overrides), where=f"{system.name}: device_overrides")
    return arch


def resolve_system(spec: str) -> System:
    """A preset name or a YAML file ``{base: PRESET, FIELD: VALUE, intra: {...}, ...}``."""
    if spec in PRESETS:
        return PRESETS[spec]
    if spec.endswith((".yaml", ".yml")):
        from ..archbase import load_yaml_arch
        sys: System = load_yaml_arch(spec, PRESETS, "system")
        try:
            device_of(sys)                            # a device that does not resolve fails here
        except HwsimError as e:
            raise HwsimError(f"{spec}: device: {e}") from None
        return sys
    raise HwsimError(f"unknown system {spec!r}; presets: {', '.join(PRESETS)}; or a YAML file with 'base:'")

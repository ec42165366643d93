"""The system model's constants and where they come from (``hwsim archs --sources``); the
values are the modules' own, named here once with their sources."""

from __future__ import annotations

from ..constants import Constant
from .collectives import TREE_CHUNKS
from .step import BUCKET_BYTES
from .topology import IB_LATENCY_US, ICI_LATENCY_US, NVLINK_LATENCY_US

__all__ = ["CONSTANTS"]

CONSTANTS: tuple[Constant, ...] = (
    Constant("topology.NVLINK_LATENCY_US", NVLINK_LATENCY_US, "assumption",
             "per NVLink/NVSwitch transfer: the round figure commonly quoted (1-2 us); neither measured nor fitted"),
    Constant("topology.IB_LATENCY_US", IB_LATENCY_US, "assumption",
             "per InfiniBand transfer between nodes: the round figure commonly quoted (1-5 us); neither measured "
             "nor fitted"),
    Constant("topology.ICI_LATENCY_US", ICI_LATENCY_US, "assumption",
             "per torus hop of a TPU pod's ICI (quoted as sub-microsecond per neighbour)"),
    Constant("collectives.TREE_CHUNKS", TREE_CHUNKS, "assumption",
             "pipelined chunks per tree all-reduce (NCCL sizes its chunks by message size); fitted to nothing"),
    Constant("step.BUCKET_BYTES", BUCKET_BYTES, "published",
             "PyTorch DistributedDataParallel's default bucket_cap_mb = 25: gradients all-reduced per 25 MiB bucket"),
)

"""The system model's constants and where they come from (``hwsim archs --sources``); the
values are the modules' own, named here once with their sources."""

from __future__ import annotations

from ..constants import Constant
from .collectives import TREE_CHUNKS
from .step import BUCKET_BYTES
from .topology import (HDR_IB_EFFICIENCY, IB_LATENCY_US, ICI_LATENCY_US, NDR_IB_EFFICIENCY, NVLINK3_EFFICIENCY,
                       NVLINK4_EFFICIENCY, NVLINK_LATENCY_US)

__all__ = ["CONSTANTS"]

CONSTANTS: tuple[Constant, ...] = (
    Constant("topology.NVLINK_LATENCY_US", NVLINK_LATENCY_US, "assumption",
             "per NVLink/NVSwitch transfer: the round figure commonly quoted (1-2 us); neither measured nor fitted"),
    Constant("topology.IB_LATENCY_US", IB_LATENCY_US, "assumption",
             "per InfiniBand transfer between nodes: the round figure commonly quoted (1-5 us); neither measured "
             "nor fitted"),
    Constant("topology.ICI_LATENCY_US", ICI_LATENCY_US, "assumption",
             "per torus hop of a TPU pod's ICI (quoted as sub-microsecond per neighbour)"),
    Constant("topology.NVLINK3_EFFICIENCY", NVLINK3_EFFICIENCY, "published",
             "NCCL's achieved fraction of A100 NVLink 3's 300 GB/s line rate: ~230 GB/s all-reduce busbw (S. Jeaugey, "
             "NVIDIA, NVIDIA/nccl-tests issue 149, 2023-07-05); the fit row coll-a100-nvlink-allreduce-8gpu-busbw-fit"),
    Constant("topology.NVLINK4_EFFICIENCY", NVLINK4_EFFICIENCY, "published",
             "NCCL's achieved fraction of H100 NVLink 4's 450 GB/s line rate: 370 GB/s effective, the busbw of "
             "non-all-reduce collectives and rings (S. Jeaugey, NVIDIA, NVIDIA/nccl-tests issue 212, 2024-05-06); "
             "the fit row coll-h100-nvlink-allgather-8gpu-busbw-fit"),
    Constant("topology.HDR_IB_EFFICIENCY", HDR_IB_EFFICIENCY, "published",
             "NCCL's achieved fraction of a 200 Gb/s HDR NIC's 25 GB/s: 24 GB/s inter-node busbw (S. Jeaugey, NVIDIA, "
             "NVIDIA/nccl issue 412, 2023-04-24); the fit row coll-hdr-ib-allreduce-1nic-busbw-fit"),
    Constant("topology.NDR_IB_EFFICIENCY", NDR_IB_EFFICIENCY, "published",
             "NCCL's achieved fraction of a 400 Gb/s NDR NIC's 50 GB/s: '46-48GB/s per NIC', 47 taken (D. Addison, "
             "NVIDIA, NVIDIA/nccl-tests issue 290, 2025-03-03); the fit row coll-ndr-ib-allreduce-1nic-busbw-fit"),
    Constant("collectives.TREE_CHUNKS", TREE_CHUNKS, "assumption",
             "pipelined chunks per tree all-reduce (NCCL sizes its chunks by message size); fitted to nothing"),
    Constant("step.BUCKET_BYTES", BUCKET_BYTES, "published",
             "PyTorch DistributedDataParallel's default bucket_cap_mb = 25: gradients all-reduced per 25 MiB bucket"),
)

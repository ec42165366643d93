"""The system model's constants and where they come from (``hwsim archs --sources``); the
values are the modules' own, named here once with their sources."""

from __future__ import annotations

from ..constants import Constant
from .collectives import TREE_CHUNKS
from .framework import (COPY_ISSUE_US, CPP_OP_US, DS2021_LAUNCH_US, DS2021_PRE_LAUNCH_US, DS2021_REDUCE, HOST,
                        LAUNCH_HOST_US, PY_CALL_US, PY_VIEW_OP_US)
from .nccl import BASE_LAT_US, HW_LAT_US, LL128_GENERATIONS, LL_MAX_BW_GBS, TREE_CORRECTION
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
    Constant("nccl.BASE_LAT_US", BASE_LAT_US, "published",
             "NCCL's base latency per algorithm (tree, ring) and protocol (LL, LL128, Simple), us: baseLat of "
             "NVIDIA/nccl v2.9.6-1 src/graph/tuning.cc (2021-04-12)"),
    Constant("nccl.HW_LAT_US", HW_LAT_US, "published",
             "NCCL's latency per step on NVLink and on the network, per algorithm and protocol, us: hwLat of NVIDIA/nccl "
             "v2.9.6-1 src/graph/tuning.cc (ring Simple 3.4 us per NVLink step, 9.6 us per network step)"),
    Constant("nccl.LL_MAX_BW_GBS", LL_MAX_BW_GBS, "published",
             "NCCL's cap on the LL protocol's bus bandwidth (one node by GPU, across nodes by host CPU; 1, 2, more "
             "nodes), GB/s: llMaxBws of NVIDIA/nccl v2.9.6-1 src/graph/tuning.cc"),
    Constant("nccl.TREE_CORRECTION", TREE_CORRECTION, "published",
             "NCCL's correction of tree bandwidth by size, 64 B to 256 MB: treeCorrectionFactor of NVIDIA/nccl v2.9.6-1 "
             "src/graph/tuning.cc; with the protocols' factors there (LL 1/4, LL128 0.92 or 0.7, tree 0.92, 1/3.8, "
             "7/9 or 0.915) and the ring all-reduce's 1.9x latency across nodes (ncclTopoGetAlgoTime)"),
    Constant("nccl.LL128_GENERATIONS", LL128_GENERATIONS, "published",
             "GPUs whose LL128 NCCL enables over NVLink: Volta and Ampere (v2.9.6-1 tuning.cc), Hopper (v2.18.1-1)"),
    Constant("step.BUCKET_BYTES", BUCKET_BYTES, "published",
             "PyTorch DistributedDataParallel's default bucket_cap_mb = 25: gradients all-reduced per 25 MiB bucket"),
    Constant("framework.PY_VIEW_OP_US", PY_VIEW_OP_US, "published",
             "host us of a Python-level torch op that launches nothing (narrow, view, .data): 'Overhead for torch "
             "functions consuming tensors is on the order of 2 us' (R. Gommers, pytorch/pytorch PR 34645, 2020-03-12); "
             "torch.split of a CUDA tensor into 2 views 2.2-3.4 us (operator_benchmark, pytorch/pytorch PR 32194)"),
    Constant("framework.PY_CALL_US", PY_CALL_US, "assumption",
             "host us of a small pure-Python helper per rank (torch 1.8 distributed_c10d.get_rank(group)): half a "
             "Python-level torch op; nothing measured"),
    Constant("framework.CPP_OP_US", CPP_OP_US, "published",
             "host us of a torch op called from C++ (c10d's flat[j] select, copy_'s dispatch): 'same operation called "
             "using c++ API would take about a microsecond' (N. Gimelshein, pytorch/pytorch issue 41383, 2020-07-14)"),
    Constant("framework.COPY_ISSUE_US", COPY_ISSUE_US, "published",
             "host us to submit one small device-to-device cudaMemcpyAsync: 'approximately 5-7 us' (Wu et al., "
             "DualPath, arXiv:2602.21548, 2026, Sec. 5.2), the low end; c10d's recordStream per rank not counted"),
    Constant("framework.LAUNCH_HOST_US", LAUNCH_HOST_US, "published",
             "host us of an eager kernel launch: back-to-back tiny kernels on an A100 80GB, 2.62 us each "
             "(github.com/te42kyfo/gpu-benches gpu-small-kernels/a100_80.txt); Host.op_us adds PY_VIEW_OP_US"),
    Constant("framework.DS2021_PRE_LAUNCH_US", DS2021_PRE_LAUNCH_US, "published",
             "DeepSpeed 0.3.16 + PyTorch 1.8.0, 8 A100s: _allgather_param before the collective 'typically takes "
             "130us' (zarzen, microsoft/DeepSpeed issue 1069, 2021-06-21); one measurement, a sync wait included"),
    Constant("framework.DS2021_LAUNCH_US", DS2021_LAUNCH_US, "published",
             "the same: torch.distributed.all_gather of one parameter over 8 ranks 'takes 250us about' (its 8 "
             "per-rank copies included); the per-collective host time is these less 8 ranks' modelled work"),
    Constant("framework.DS2021_REDUCE.fixed_us", DS2021_REDUCE.fixed_us, "assumption",
             "host us per reduce-scatter besides its per-rank work: the all-gather's measured launch (250 us) less "
             "its 8 copies, c10d's reduce_scatter taken as all_gather's mirror; DeepSpeed's per-tensor Python left "
             "out"),
    Constant("framework.Host.optimizer_tensor_us", HOST.optimizer_tensor_us, "modelling choice",
             "host us per parameter tensor of a fused optimizer (apex / DeepSpeed FusedAdam): p.grad.data and p.data "
             "to build its multi-tensor lists, two view-like Python ops (PY_VIEW_OP_US each)"),
    Constant("framework.Host.data_loading_us", HOST.data_loading_us, "policy",
             "data loading per step the loader's workers do not hide: off (0) unless a study sets it"),
)

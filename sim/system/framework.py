"""Framework (host-side) overheads of a training step: what the training framework's host
thread does besides launching the model's kernels, as named terms of the step
(``StepResult.framework``), shown apart from compute and communication.

* **ZeRO-3 list collectives** (``zero3_collectives``): PyTorch 1.8's list-form ``all_gather``
  and ``reduce_scatter`` (``ProcessGroupNCCL::allgather`` / ``reduce_scatter`` of
  ``torch/lib/c10d/ProcessGroupNCCL.cpp``: ``flatten_for_scatter_gather``, then per rank a
  ``recordStream`` and a ``copy_`` between the flat buffer and the rank's tensor, after an
  all-gather, before a reduce-scatter), called by DeepSpeed v0.3.14 per parameter tensor
  with a Python loop over the ranks (``partition_parameters.py``: ``_allgather_param`` builds
  ``flat_tensor.narrow(...)`` and calls ``torch.distributed.get_rank(group)`` per rank;
  ``_reduce_scatter_gradient`` builds ``param.grad.view(-1).narrow(...)`` per rank). Per
  collective over n ranks: host time ``fixed + n x (views x PY_VIEW_OP_US + calls x
  PY_CALL_US + 2 CPP_OP_US + COPY_ISSUE_US)`` (c10d's ``flat[j]`` select and ``copy_``, then
  its cudaMemcpyAsync); on the device n copies of S/n bytes each (the device's eager kernel
  gap plus the bytes read and written at its DRAM bandwidth), issued as the host gets to them,
  and DeepSpeed's pass over the whole buffer (an all-gather's ``torch.zeros``, a
  reduce-scatter's ``div_`` in ``average_tensor``) (:meth:`ListCollective.stream_us`). Where
  the framework synchronises the device (DeepSpeed 2021's fetch, ``sim.system.zero``), the
  compute waits for this host time;
* **host-bound launches** (``launch``): a chunk's pass takes at least its kernels times the
  host time of one eager PyTorch op (``Host.op_us``), the device waiting for the host (small
  models, small microbatches);
* **optimizer host part** (``optimizer``): per parameter tensor, what a fused optimizer's
  Python does before its multi-tensor kernels run (``Host.optimizer_tensor_us``);
* **data loading** (``data_loading``): host time per step not hidden by the loader's workers;
  off (0) unless set.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PY_VIEW_OP_US", "PY_CALL_US", "CPP_OP_US", "COPY_ISSUE_US", "LAUNCH_HOST_US", "DS2021_PRE_LAUNCH_US",
           "DS2021_LAUNCH_US", "DS2021_MEASURED_RANKS", "ListCollective", "DS2021_GATHER", "DS2021_REDUCE",
           "Host", "HOST", "copy_us", "dram_gbs"]

# A Python-level torch op that launches nothing (a view: narrow, view; .data), host us:
# "Overhead for torch functions consuming tensors is on the order of 2 us" (R. Gommers,
# pytorch/pytorch PR 34645, 2020-03-12, the __torch_function__ micro-benchmarks); torch.split of
# a CUDA tensor into 2 views 2.2-3.4 us (operator_benchmark split_M*_N*_parts2_cuda, pytorch/pytorch
# PR 32194, 2020-01-14)
PY_VIEW_OP_US = 2.0
# A small pure-Python helper per rank (torch 1.8 distributed_c10d.get_rank(group): four calls and
# two dictionary lookups): half a Python-level torch op; nothing measured
PY_CALL_US = 1.0                 # assumption
# A torch op called from C++ (c10d's flat[j] select, copy_'s dispatch before its memcpy): "same
# operation called using c++ API would take about a microsecond" (N. Gimelshein, NVIDIA,
# pytorch/pytorch issue 41383, 2020-07-14, of x * x that takes about 2 us from Python)
CPP_OP_US = 1.0
# One small device-to-device cudaMemcpyAsync submitted from the host: "approximately 5-7 us"
# per copy (Wu et al., DualPath, arXiv:2602.21548, 2026, Sec. 5.2); the low end. c10d's
# recordStream per rank is not counted (not measured)
COPY_ISSUE_US = 5.0
# Host time of a kernel launched eagerly from C++: back-to-back dependent tiny kernels, A100 80GB,
# 2.62 us each (github.com/te42kyfo/gpu-benches gpu-small-kernels/a100_80.txt, the figure
# sim/gpu's eager_extra_us starts from)
LAUNCH_HOST_US = 2.62
# DeepSpeed 0.3.16 + PyTorch 1.8.0 on 8 A100s (one p4d node), one parameter's all-gather:
# "The pre_launch typically takes 130us, the launch takes 250us about" (zarzen, microsoft/DeepSpeed
# issue 1069, comment of 2021-06-21; 0.3.16's _allgather_param is 0.3.14's). pre_launch is
# _allgather_param before the collective (torch.zeros, torch.cuda.synchronize, debug f-strings, the
# per-rank narrow loop), launch the torch.distributed.all_gather call (its per-rank copies included)
DS2021_PRE_LAUNCH_US = 130.0
DS2021_LAUNCH_US = 250.0
DS2021_MEASURED_RANKS = 8


@dataclass(frozen=True)
class ListCollective:
    """One list-form collective as the framework issues it, per tensor: per rank ``views``
    Python view ops, ``calls`` Python helper calls and one copy (two C++ ops and a
    cudaMemcpyAsync; after the collective for an all-gather, ``copies_after``, before it for a
    reduce-scatter); ``fixed_us`` of host time per collective; ``passes`` bytes read or
    written per byte of the buffer by the framework's own kernel on it before the collective."""

    views: int
    calls: int
    copies_after: bool
    fixed_us: float
    passes: float

    def python_us(self) -> float:
        """Host time per rank before the collective is enqueued (the Python loop)."""
        return self.views * PY_VIEW_OP_US + self.calls * PY_CALL_US

    @staticmethod
    def copy_issue_us() -> float:
        """Host time per rank of c10d's copy: a select and copy_'s dispatch, then the memcpy."""
        return 2 * CPP_OP_US + COPY_ISSUE_US

    def host_us(self, n: int) -> float:
        """The host's time to issue the collective over ``n`` ranks."""
        return self.fixed_us + n * (self.python_us() + self.copy_issue_us())

    def stream_us(self, nccl_us: float, n: int, nbytes: float, device: object) -> float:
        """From the host starting to issue it to the collective done on its stream, ``nccl_us``
        NCCL's time alone, ``nbytes`` the whole buffer: the fixed part, the Python loop and
        the framework's pass over the buffer first; an all-gather's n copies (d each on the
        device, :func:`copy_us`) queue behind NCCL, each also waiting for its issue (one every
        c), so the last ends at max(max(c, T) + n d, n c + d); a reduce-scatter's run as
        issued, max(c + n d, n c + d), and NCCL after them."""
        c, d = self.copy_issue_us(), copy_us(nbytes / n, device)
        pre = self.fixed_us + n * self.python_us() + self.passes * nbytes / (1e3 * dram_gbs(device))
        if self.copies_after:
            return pre + max(max(c, nccl_us) + n * d, n * c + d)
        return pre + max(c + n * d, n * c + d) + nccl_us


_RANK_AG = PY_VIEW_OP_US + PY_CALL_US + 2 * CPP_OP_US + COPY_ISSUE_US
# DeepSpeed v0.3.14 _allgather_param: per rank flat_tensor.narrow(...) and get_rank(group); the
# measured 130 + 250 us less 8 ranks' per-rank work: the per-collective rest. Its torch.zeros
# writes the gathered buffer once
DS2021_GATHER = ListCollective(1, 1, True, DS2021_PRE_LAUNCH_US + DS2021_LAUNCH_US - DS2021_MEASURED_RANKS * _RANK_AG,
                               1.0)
# _reduce_scatter_gradient: per rank param.grad.view(-1).narrow(...); per collective c10d's launch
# as measured for the all-gather less its 8 copies (an assumption: reduce_scatter's C++ path is
# all_gather's mirror), DeepSpeed's own per-tensor Python left out. average_tensor's div_ reads
# and writes the gradients once
DS2021_REDUCE = ListCollective(2, 0, False, DS2021_LAUNCH_US - DS2021_MEASURED_RANKS * ListCollective.copy_issue_us(),
                               2.0)


def dram_gbs(device: object) -> float:
    """The device's sustained DRAM bandwidth, GB/s (``dram_gbs x dram_efficiency``); inf
    where it has none (the framework's device passes then take no time)."""
    try:
        return float(getattr(device, "dram_gbs")) * float(getattr(device, "dram_efficiency", 1.0))
    except (AttributeError, TypeError):
        return float("inf")


def copy_us(nbytes: float, device: object) -> float:
    """One device-to-device copy of ``nbytes`` on ``device`` (a GPUArch): its eager kernel gap
    (``kernel_overhead_us + eager_extra_us``) plus the bytes read and written at its sustained
    DRAM bandwidth; 0 on a device without these."""
    try:
        gap = float(getattr(device, "kernel_overhead_us")) + float(getattr(device, "eager_extra_us"))
    except (AttributeError, TypeError):
        return 0.0
    return gap + 2 * nbytes / (1e3 * dram_gbs(device))


@dataclass(frozen=True)
class Host:
    """The host's per-op costs for the step's framework terms."""

    op_us: float = PY_VIEW_OP_US + LAUNCH_HOST_US   # one eager op: Python and dispatch, then its launch
    # a fused optimizer (apex / DeepSpeed FusedAdam) per parameter tensor: p.grad.data and p.data,
    # two Python-level view-like ops, to build its multi-tensor lists
    optimizer_tensor_us: float = 2 * PY_VIEW_OP_US
    data_loading_us: float = 0.0                    # per step, not hidden by the loader (off)


HOST = Host()

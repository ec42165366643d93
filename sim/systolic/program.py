"""A workload as one instruction stream, as the TPU runs it (Jouppi et al., ISCA 2017, Sec. 2).

The TPU's host sends CISC instructions: Read_Host_Memory brings a batch's input over PCIe
into the unified buffer, Read_Weights fills the weight FIFO from DRAM, MatrixMultiply /
Convolve stream the buffer through the matrix unit, Activate applies the nonlinearity and
writes the buffer, Write_Host_Memory returns the results. Read_Weights follows the
decoupled access/execute philosophy: the weight FIFO loads the next op's first tiles while
the matrix unit is still busy, drains, or waits for the activation of the layer before.

Here each trace op is one of those instructions' runs, one at a time in trace order
(``sim.graph.schedule_in_order``; an op waits for its producers, the RAW stall):

* with ``host_link_bytes_per_cycle``, the first op waits for the workload's input over the
  host link (``Workload.input_shape``, or the first op's input where the trace gives none;
  Table 3's input stalls), and an op whose output no op reads sends it back over the link
  after it ends. Both move elements at the array's word width (the host sends quantised
  data). Constants with no producer (an embedding table, a causal mask) are the model's own
  data, loaded with it, not the request's;
* with ``decoupled_weight_reads``, the cycles the DRAM channel sits idle before an op
  begins (after the last transfer of the op that used it last, and during the op's own
  host read) are its head start (``timing``): its first ``prefetch_depth`` folds load then.

Ops are simulated with the head start they meet, once per distinct (shape, head start,
host transfer) and reused, so a network of repeated layers costs one run per layer kind.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Callable, Hashable

from workloads.trace import Op, Workload

from ..graph import schedule_in_order
from ..result import OpResult, SimResult, assemble, checked

if TYPE_CHECKING:
    from ..machine import Progress
    from .arch import SystolicArch

__all__ = ["PCIE3_X16_BYTES_PER_S", "host_bytes", "input_bytes", "run_program"]

# PCIe 3.0 x16, one direction: 16 lanes x 8 GT/s x 128b/130b encoding = 15.75 GB/s of link
# symbols (PCI-SIG, PCI Express Base Specification 3.0); of each transaction-layer packet,
# a 256-byte payload (assumption: the maximum payload size servers of the time configured)
# and 26 bytes of framing token, sequence number, 4-DW header and LCRC (the same
# specification): 256 / 282 of it carries data. DLLP traffic (acks, flow control) is left out.
PCIE3_X16_BYTES_PER_S = 16 * 8e9 * 128 / 130 / 8 * 256 / 282


def host_bytes(op: Op, role: str, bits: int) -> float:
    """Bytes of ``op``'s ``role`` operand (``input`` or ``output``) over all its instances,
    at ``bits`` per element (the array's width: the host sends quantised data)."""
    o = op.operand(role)
    if o is None:
        return 0.0
    return o.numel * op.instances * bits / 8


def input_bytes(workload: Workload, bits: int) -> float:
    """Bytes of the workload's input, at ``bits`` per element: ``input_shape``'s elements, or
    the first op's input where the trace gives no input shape."""
    if workload.input_shape:
        return math.prod(workload.input_shape) * bits / 8
    return host_bytes(workload.ops[0], "input", bits) if workload.ops else 0.0


def _with_host(r: OpResult, read: int, write: int) -> OpResult:
    """``r`` preceded by ``read`` and followed by ``write`` host-link cycles, the array idle."""
    if not read and not write:
        return r
    extra = dataclasses.replace(r.extra, host_read_cycles=read, host_write_cycles=write,
                                channel_end=r.extra.channel_end + read)
    return dataclasses.replace(r, cycles=r.cycles + read + write, stall_cycles=r.stall_cycles + read,
                               tail_cycles=0 if write else r.tail_cycles, extra=extra)


def run_program(workload: Workload, arch: SystolicArch, simulate_op: Callable[[Op, int], OpResult],
                same: Callable[[Op], Hashable], progress: Progress | None = None) -> SimResult:
    """Run ``workload`` as one instruction stream (module docstring). ``simulate_op(op,
    head)`` runs one op with a head start; ``same(op)`` keys ops that run alike."""
    ops = workload.ops
    read_by = {p for op in ops for p in op.producers}
    link = arch.host_link_bytes_per_cycle
    results: list[OpResult] = []
    done: dict[Hashable, OpResult] = {}
    chan_free = 0                        # the cycle the DRAM channel's last transfer ended

    def run(i: int, start: int) -> tuple[int, int]:
        nonlocal chan_free
        op = ops[i]
        read = write = 0
        if link:
            if i == 0:
                read = math.ceil(input_bytes(workload, arch.word_bits) / link)
            if op.name not in read_by:
                write = math.ceil(host_bytes(op, "output", arch.word_bits) / link)
        head = read + max(0, start - chan_free) if arch.decoupled_weight_reads and op.is_gemm else 0
        key = (same(op), head)
        if key in done:
            r = dataclasses.replace(done[key], name=op.name, op=op.op)
        else:
            r = done[key] = simulate_op(op, head)
        r = checked(arch, op, _with_host(r, read, write))
        if r.extra.dram_busy_cycles:
            chan_free = start + r.extra.channel_end
        results.append(r)
        if progress:
            progress(op)
        return r.cycles, r.tail_cycles

    tl = schedule_in_order(ops, run)
    return assemble(workload, arch, results, tl)

"""Where a systolic machine's cycles go, as the TPU paper's performance counters split them.

Jouppi et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit", ISCA 2017
(arXiv:1704.04760), Table 3 reports for each workload, as fractions of all cycles:

1. array active cycles: the matrix unit computes; split into
2. useful MACs (the share of the 64K MACs' peak that does the workload's work) and
3. unused MACs (active MACs holding no useful weight: partial tiles);
4. weight stall cycles: the matrix unit waits for weights from DRAM;
5. weight shift cycles: a weight tile shifts in and nothing streams;
6. non-matrix cycles: everything else (rows 1, 4, 5 and 6 total 100%); of those,
7. RAW stalls: an op waits for its producer's results, and
8. input data stalls: waits for input over PCIe.

Here every row comes from the simulation, cycle by cycle (``timing``): rows 1, 4 and 5
are the GEMM ops' ``array_active_cycles``, ``dram_wait_cycles`` and
``weight_shift_cycles``; row 6 is the rest of the makespan (vector ops, drains, RAW
stalls, host transfers); row 7 is the cycles the array waits for results a matrix op
reads: a producer's drain (the schedule's ``raw_stall_cycles``, ``sim.graph``) and the
element-wise ops between it and the matrix op before (``feeds_matrix``: the Activate whose
output the next MatrixMultiply reads, less their own host transfers);
row 8 is the ops' ``host_read_cycles`` (``program``: the input arriving over the host
link), ``None`` on a design without a host link.
"""

from __future__ import annotations

from ..result import SimResult

__all__ = ["ROWS", "table3"]

ROWS = ("array_active_%", "useful_macs_%", "unused_macs_%", "weight_stall_%", "weight_shift_%",
        "non_matrix_%", "raw_stall_%", "input_stall_%", "TOPS")


def table3(res: SimResult, pes: int, host: bool = False) -> dict[str, float | None]:
    """The Table 3 rows of one systolic run (percent of the makespan; TOPS at 2 ops per MAC);
    ``host``: the design has a host link (else row 8 is ``None``)."""
    cyc = res.cycles
    if not cyc:
        return {k: 0.0 for k in ROWS}
    gemm = [o for o in res.ops if o.macs]
    active = sum(o.extra.array_active_cycles for o in gemm)
    stall = sum(o.extra.dram_wait_cycles for o in gemm)
    shift = sum(o.extra.weight_shift_cycles for o in gemm)
    pct = 100.0 / cyc
    useful = 100.0 * sum(o.useful_macs for o in res.ops) / (pes * cyc)
    return {"array_active_%": active * pct, "useful_macs_%": useful, "unused_macs_%": active * pct - useful,
            "weight_stall_%": stall * pct, "weight_shift_%": shift * pct,
            "non_matrix_%": (cyc - active - stall - shift) * pct,
            "raw_stall_%": (sum(o.raw_stall_cycles for o in res.ops)
                            + sum(o.cycles - o.extra.host_read_cycles - o.extra.host_write_cycles
                                  for o in res.ops if o.extra.feeds_matrix)) * pct,
            "input_stall_%": sum(o.extra.host_read_cycles for o in res.ops) * pct if host else None,
            "TOPS": 2 * res.macs / (res.time_us * 1e-6) / 1e12}

"""Event-driven reference for the tensor-core GEMM model (simpy; the unit of time is a cycle).

Each CTA is a process on its SM (CTAs go to SMs round robin, at most ``ctas_per_sm``
resident); each SM's tensor cores are one resource the resident CTAs take turns on; all
global->shared copies and the epilogue's stores share one memory pipe whose per-byte time
is the slower of L2 and DRAM for this GEMM's mix. A CTA runs the software pipeline for
real: it issues the loads of the first ``stages - 1`` K steps, then for every step waits
for its data, issues the load ``stages - 1`` steps ahead, and runs its MMAs; every load
also waits the DRAM latency after its transfer.

``gemm.gemm_time`` is the fast closed form of the same machine; tests hold the two within
a tolerance on compute-bound, memory-bound and wave-boundary shapes (they are not equal
cycle for cycle: the closed form charges each wave its slowest resource, the events let
waves overlap at the edges).
"""

from __future__ import annotations

import math

import simpy

from .arch import PRECISION_BYTES, GPUArch
from .gemm import MMA_EFFICIENCY, gemm_time


def gemm_events(M: int, N: int, K: int, arch: GPUArch, precision: str = "fp16", count: int = 1,
                tile: tuple[int, int] | None = None, acc_bytes: int = 4,
                mma_efficiency: float = MMA_EFFICIENCY, out_bytes: float | None = None,
                a_unique_bytes: float | None = None, split_k: int = 1) -> int:
    """Cycles of the GEMM in the event model (same tile and occupancy as the fast model);
    with ``split_k`` S, the S-times-wider grid of K/S slices plus the reduction kernel."""
    if split_k > 1:
        from .gemm import reduction_cycles
        ks = -(-K // split_k)
        base = gemm_events(M, N, ks, arch, precision, count * split_k, tile, acc_bytes, mma_efficiency,
                           out_bytes=acc_bytes, a_unique_bytes=a_unique_bytes)
        out_b = PRECISION_BYTES[precision] if out_bytes is None else out_bytes
        return int(math.ceil(base + reduction_cycles(M * N * count * split_k * acc_bytes, M * N * count * out_b,
                                                     arch)))
    fast = gemm_time(M, N, K, arch, precision, count=count, tile=tile, acc_bytes=acc_bytes,
                     mma_efficiency=mma_efficiency, out_bytes=out_bytes, a_unique_bytes=a_unique_bytes, split_k=1)
    BM, BN, BK = fast.tile
    in_b = PRECISION_BYTES[precision]
    per_sm = fast.ctas_per_sm
    nk = math.ceil(K / BK)
    ctas = fast.ctas
    stages = arch.pipeline_stages
    sm_rate = arch.sm_fma_per_clk(precision) * mma_efficiency
    mma = BM * BN * BK / sm_rate
    load_bytes = (BM + BN) * BK * in_b
    dram_frac = min(1.0, fast.dram_bytes / max(fast.l2_bytes, 1.0))
    per_byte = max(1.0 / arch.l2_bytes_per_clk, dram_frac / arch.dram_bytes_per_clk)
    tile_out = BM * BN * (in_b if out_bytes is None else out_bytes)
    lat = arch.dram_latency_cycles

    env = simpy.Environment()
    pipe = simpy.Resource(env, capacity=1)
    cores = [simpy.Resource(env, capacity=1) for _ in range(arch.sms)]
    slots = [simpy.Resource(env, capacity=per_sm) for _ in range(arch.sms)]

    def transfer(nbytes: float, done: simpy.Event):
        with pipe.request() as req:
            yield req
            yield env.timeout(nbytes * per_byte)
        yield env.timeout(lat)
        done.succeed()

    def cta(sm: int):
        with slots[sm].request() as slot:
            yield slot
            ready = [env.event() for _ in range(nk)]
            for k in range(min(stages - 1, nk)):
                env.process(transfer(load_bytes, ready[k]))
            for k in range(nk):
                yield ready[k]
                nxt = k + stages - 1
                if nxt < nk:
                    env.process(transfer(load_bytes, ready[nxt]))
                with cores[sm].request() as core:
                    yield core
                    yield env.timeout(mma)
            done = env.event()
            env.process(transfer(tile_out, done))
            yield done

    for i in range(ctas):
        env.process(cta(i % arch.sms))
    env.run()
    return int(math.ceil(env.now))

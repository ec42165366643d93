"""Every constant of the tensor-core GPU model, its value and where it comes from.

Each entry names the constant as the code does (``module.NAME``, or ``GPUArch.field`` for a
default that presets inherit), its value, and its source: a datasheet or whitepaper, a
paper, a library's source, a measurement file in ``benchmarks/data/``, or, where nothing
published fixes it, "modelling choice" or "calibration" with what it was checked against.
No constant was fitted to make a throughput come out; ``tests/test_gpu.py`` holds the
values here equal to the code's. Per-card figures (SMs, clocks, bandwidths, latencies)
are in each preset's ``source`` (``hwsim archs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Constant:
    name: str          # module.NAME or GPUArch.field
    value: Any
    kind: str          # published | measured | modelling choice | calibration
    source: str


H200_MATMUL = "benchmarks/data/NVIDIA_H200_matmul.csv"

CONSTANTS: tuple[Constant, ...] = (
    Constant("gemm.TILES", ((256, 128), (128, 256), (128, 128), (256, 64), (64, 256), (128, 64), (64, 128),
                            (64, 64), (64, 32), (32, 64), (32, 32)), "published",
             "CUTLASS's SM80 tensor-op threadblock shapes (cutlass_library generator), the set cuBLAS-like "
             "heuristics choose among; the model takes the fastest, as an autotuner would"),
    Constant("gemm.BK_BYTES", 64, "published",
             "CUTLASS SM80 tensor-op kernels: a K step of 32 fp16 / 64 int8 / 16 tf32 values (64 bytes)"),
    Constant("gemm.MMA_EFFICIENCY", 0.9, "modelling choice",
             "share of the datasheet tensor-core rate a main loop sustains (issue gaps, clock below boost); "
             f"checked, not fitted: the best GEMM measured on an H200 reaches 0.80 of peak with every overhead "
             f"included (4096^3 bf16, 795 of 989 TFLOPS, {H200_MATMUL})"),
    Constant("gemm.BIG_TILE_THREADS", 256, "modelling choice",
             "8 warps for tiles of 128x128 outputs or more, as CUTLASS's large SM80 tiles use"),
    Constant("gemm.SMALL_TILE_THREADS", 128, "modelling choice", "4 warps for smaller tiles"),
    Constant("gemm.REGISTER_OVERHEAD", 40, "modelling choice",
             "registers per thread beyond the accumulators (addresses, loop counters, fragments); only "
             "limits occupancy"),
    Constant("gemm.L2_OPERAND_SHARE", 0.5, "modelling choice",
             "A and B that fit in half the L2 are read from DRAM once (the other half serves outputs and "
             "other streams)"),
    Constant("gemm.EPILOGUE_LATENCY_SHARE", 0.5, "modelling choice",
             "half the DRAM latency of an epilogue's stores is exposed (stores need no round trip)"),
    Constant("gemm.SPLITS", (1, 2, 4, 8, 16, 32), "modelling choice",
             "split-K factors searched with every tile (CUTLASS's parallel split-K), powers of two"),
    Constant("gemm.SECONDS_PER_WAVE", 3e-6, "measured",
             "wall time per wave and tile shape of this model (perf_counter on the project's 2-core "
             "machine); used only to refuse requests over the time limit"),
    Constant("simulate.VECTOR_BLOCK_THREADS", 128, "published",
             "PyTorch's element-wise CUDA kernels: 4 warps per block (aten/src/ATen/native/cuda/Loops.cuh)"),
    Constant("simulate.VECTOR_ELEMENTS_PER_BLOCK", 512, "published",
             "PyTorch's element-wise kernels: 4 elements per thread (Loops.cuh thread_work_size)"),
    Constant("simulate.FLASH_BLOCK", 128, "published",
             "FlashAttention-2's query and key block for head dimensions up to 128 (Dao 2023, Sec. 3.3)"),
    Constant("simulate.SPARSE_PRECISIONS", ("fp16", "bf16", "fp8", "int8", "int4"), "published",
             "input types the sparse tensor cores run 2:4 at twice the dense rate (A100 whitepaper: FP16/BF16 "
             "624, INT8 1248 TOPS sparse; H100 whitepaper: FP8 3958 sparse); TF32 takes 1:2 instead"),
    Constant("GPUArch.sparse_structures", (), "published",
             "no sparse tensor cores by default; a100/h100 (and h200, a100-80gb) set ('2:4',): 2:4 fine-grained "
             "structured sparsity, twice the MMA rate and half the operand (NVIDIA blog 'Exploiting NVIDIA Ampere "
             "Structured Sparsity with cuSPARSELt', 2021) plus a 2-bit position per kept value (cuSPARSELt's "
             "compressed layout)"),
    Constant("event.SECTOR_BYTES", 32, "published",
             "the L2 moves data in 32-byte sectors (CUDA C++ Best Practices Guide, coalesced access to global "
             "memory; the Volta/Ampere/Hopper tuning guides); the event model rounds each block row up to them"),
    Constant("GPUArch.kernel_overhead_us", 2.0, "calibration",
             "launch and prologue no overlap hides; checked against the shortest CUDA-graph GEMM "
             f"measured on an H200, 2.9-3.1 us for 256^3 (launch, prologue and DRAM latency, {H200_MATMUL})"),
    Constant("GPUArch.fusion", "epilogue", "published",
             "what inference libraries run: cuDNN's fused conv-bias-activation, CUTLASS epilogues, TensorRT's "
             "layer fusion (see sim/gpu/fusion.py)"),
    Constant("GPUArch.streams", 1, "published", "PyTorch eager issues kernels on one stream"),
)


def table() -> str:
    """The constants as a Markdown table (name, value, kind, source)."""
    lines = ["| constant | value | kind | source |", "|---|---|---|---|"]
    for c in CONSTANTS:
        lines.append(f"| `{c.name}` | {c.value} | {c.kind} | {c.source} |")
    return "\n".join(lines)

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

from ..constants import Constant
from .dvfs import A100_PCIE_POWER, GA100_VF

__all__ = ["CONSTANTS", "FIT_ROWS", "H200_MATMUL", "Constant"]

H200_MATMUL = "benchmarks/data/NVIDIA_H200_matmul.csv"

CONSTANTS: tuple[Constant, ...] = (
    Constant("gemm.TILES", ((256, 128), (128, 256), (128, 128), (256, 64), (64, 256), (128, 64), (64, 128),
                            (64, 64), (64, 32), (32, 64), (32, 32)), "published",
             "CUTLASS's SM80 tensor-op threadblock shapes (cutlass_library generator), the set cuBLAS-like "
             "heuristics choose among; the model takes the fastest, as an autotuner would"),
    Constant("GPUArch.k_step_bytes", 64, "published",
             "CUTLASS SM70-SM80 tensor-op kernels: a K step of 32 fp16 / 64 int8 / 16 tf32 values (64 bytes); the "
             "Hopper presets take SM90's 128 bytes (64 fp16, 128 fp8), sim.gpu.kernel"),
    Constant("GPUArch.pipeline_stages", 3, "published",
             "CUTLASS SM80 multistage kernels' stage count for their large tiles (cutlass_library generator: 256x128x32 "
             "and 128x256x32 at 3 stages); presets: V100 and T4 2 (MmaPipelined), Hopper 0 = as many as fit "
             "(CUTLASS SM90's StageCountAutoCarveout)"),
    Constant("GPUArch.cluster_ctas", 1, "published",
             "no thread-block clusters before Hopper; the Hopper presets take 2: CUTLASS's SM90 16-bit GEMMs are "
             "instantiated in clusters of 1x2x1 and 2x1x1 (cutlass_library generator, NVIDIA/cutlass 7107b055), whose "
             "TMA multicast reads a block shared by the cluster's CTAs from L2 once (CUDA C++ Programming Guide, "
             "distributed shared memory and multicast; the FA3 tiles' clusters of 2 share K and V the same way)"),
    Constant("kernel.RESERVED_SMEM_BYTES", 1024, "published",
             "shared memory the system reserves per thread block on compute capability 8.x and 9.0 (CUDA C++ "
             "Programming Guide): the largest block's share of an H100's 228 KiB is 227 KiB, CUTLASS's "
             "sm90_smem_capacity_bytes (232,448)"),
    Constant("kernel.PIPELINE_BARRIER_BYTES", 16, "published",
             "a TMA pipeline stage's full and empty mbarriers, 8 bytes each (CUTLASS PipelineTmaAsync's SharedStorage, "
             "counted per stage by compute_stage_count_or_override in include/cutlass/gemm/collective/builders/"
             "sm90_gmma_builder.inl, NVIDIA/cutlass 7107b055)"),
    Constant("kernel.EPILOGUE_TILE", (128, 32), "published",
             "the SM90 cooperative kernel's automatic epilogue tile, min(128, BM) x min(32, BN) outputs, whose C and D "
             "stages the kernel's shared memory sets aside before its mainloop stages (NVIDIA/cutlass 7107b055, "
             "include/cutlass/epilogue/collective/builders/sm90_builder.inl, EpilogueTileAuto and the stage counts)"),
    Constant("flash.MMA_EFFICIENCY", 0.9, "modelling choice",
             "share of the datasheet tensor-core rate an attention block's GEMMs sustain (issue gaps, clock below "
             "boost); GEMMs no longer use it (their main loop is stepped on the SM core, sim.gpu.sm), attention's "
             f"programs are not yet stepped. Checked, not fitted: the best GEMM measured on an H200 reaches 0.80 of "
             f"peak with every overhead included (4096^3 bf16, 795 of 989 TFLOPS, {H200_MATMUL})"),
    Constant("sm.isa.SMSPS", 4, "published",
             "sub-partitions (warp schedulers, one instruction per clock each) per SM, Volta to Hopper (NVIDIA "
             "Volta/Ampere/Hopper whitepapers; GPGPU-Sim's QV100 config: four schedulers per core, one issue per cycle)"),
    Constant("sm.isa.WARP_LOAD_BYTES", 512, "published",
             "one warp's 16-byte-per-thread shared load or async copy: ldmatrix.x4, LDS.128, LDGSTS.128 (PTX ISA)"),
    Constant("sm.isa.TMA_EXTRA_CYCLES", 105, "measured",
             "a TMA bulk copy's latency over a plain L2 load: 369 against 264 cycles of dependent accesses over "
             "L2-resident footprints on an H800 PCIe (github.com/HPMLL/NVIDIA-Hopper-Benchmark, NewFeatures/TMA/"
             "Latency/tma_lat_random h800_tma.txt against h800_pcie.txt)"),
    Constant("sm.isa.HOPPER_MMA_SYNC_SHARE", 490.7 / 756.5, "measured",
             "mma.sync m16n8k16 on Hopper, of the wgmma rate: 490.7 of 756.5 TFLOPS on an H800 (Luo et al., "
             "'Benchmarking and Dissecting the Nvidia Hopper GPU Architecture', IPDPS 2024, Table VII; the FA3 blog's "
             "footnote 1 rounds it to 2/3); FA2 on Hopper (sim.gpu.flash) and the SM core's mma.sync both take it"),
    Constant("sm.isa.WGMMA_SS_CYCLES", ((8, 18), (16, 20), (32, 24), (64, 32), (128, 64), (256, 128)), "measured",
             "wgmma m64nNk16 f16->f32, A and B in shared memory: latency by N (Luo et al., 'Dissecting the NVIDIA "
             "Hopper Architecture through Microbenchmarking and Multiple Level Analysis', arXiv 2501.12084, Table 9, "
             "H800); one warpgroup issuing back to back reaches one instruction per latency (477 TFLOPS at N = 32)"),
    Constant("sm.isa.DEFAULT_GENERATION", "ampere", "modelling choice",
             "the latencies and shared-memory port a card described only by its fields (generation empty) takes"),
    Constant("sm.mainloop.KSTEPS", 10, "modelling choice",
             "K steps stepped to find a main loop's steady state (the stages' prologue, the measured steps, the drain)"),
    Constant("sm.mainloop.MEASURED", 3, "modelling choice", "K steps the steady state is measured over"),
    Constant("sm.mainloop.STORE_VERSION", 1, "modelling choice",
             "the format of the stepped main loops kept in the cache folder (KEY.sm.json); a change of it, or of "
             "sim/gpu/sm's code, keys new entries"),
    Constant("sm.mainloop.DRAIN", 3, "modelling choice",
             "last K steps left out: a CTA finishing early frees the pipes for the others"),
    Constant("kernel.REGISTER_OVERHEAD", 40, "modelling choice",
             "registers per thread beyond the accumulators and the MMA fragments kernel.registers counts "
             "(addresses, loop counters, indices); only limits occupancy"),
    Constant("gemm.L2_OPERAND_SHARE", 0.5, "modelling choice",
             "A and B that fit in half the L2 are read from DRAM once (the other half serves outputs and "
             "other streams)"),
    Constant("gemm.EPILOGUE_LATENCY_SHARE", 0.5, "modelling choice",
             "half the DRAM latency of an epilogue's stores is exposed (stores need no round trip)"),
    Constant("gemm.SPLITS", (1, 2, 4, 8, 16, 32), "modelling choice",
             "split-K factors searched with every tile, each reduced by a second kernel (CUTLASS's parallel split-K) "
             "and in the kernel (serial split-K), powers of two"),
    Constant("gemm.HANDOFF_L2_TRIPS", 3, "published",
             "L2 round trips one serial split-K hand-off waits: the spinning ld.global.acquire seeing the previous "
             "slice's release, the load of the tile it summed, and the st.global.release that orders this slice's "
             "stores of the tile (NVIDIA/cutlass include/cutlass/semaphore.h and gemm/kernel/gemm.h, SplitKSerial)"),
    Constant("GPUArch.l2_latency_cycles", 300, "modelling choice",
             "an L2 hit's load-to-use latency for a card described by its fields, an assumption within the measured "
             "213-386 cycles of the presets; presets: pointer chasing (github.com/te42kyfo/gpu-benches: README "
             "cuda-latency V100 214 cycles at 1380 MHz; cuda-latency/a100_40.txt 213 near / 425 far partition at "
             "1410 MHz; gpu-latency/h100_pcie.txt 265 / 475 at 1755 MHz), the mean of the two partitions, converted "
             "to ns and back at the preset's clock (v100 237, a100 319, h100/h200 386); t4: 236 cycles measured on the "
             "same TU104 die (RTX 2070, github.com/sjfeng1999/gpu-arch-microbenchmark README)"),
    Constant("v100.dram_latency_cycles", 483, "published",
             "DRAM load-to-use latency 436 cycles at 1380 MHz (316 ns; gpu-benches README cuda-latency table, V100 PCIe "
             "16GB) at 1530 MHz; the earlier 600 was an assumption. Also a100 574 (cuda-latency/a100_40.txt, "
             "1410 MHz) and h100/h200 686 (658 cycles at 1755 MHz on an H100 PCIe, gpu-latency/h100_pcie.txt, "
             "carried to the SXM parts' HBM3/HBM3e at 1830 MHz); t4 keeps 600, an assumption (no measurement found)"),
    Constant("a100.l2_bytes_per_clk", 3830, "published",
             "achievable L2 read bandwidth, 5.4 TB/s over 2-25 MB working sets on an A100 80GB "
             "(github.com/te42kyfo/gpu-benches gpu-l2-cache/a100_80.txt), at 1410 MHz; replaces the 5120 B/clk "
             "peak. v100: 2482 GB/s (gpu-benches README cuda-cache table, V100 PCIe 16GB, 1 MB set) = 1622 B/clk at "
             "1530 MHz; h100/h200: 9.8 TB/s over 4-40 MB sets on an H200 (gpu-l2-cache/h200.txt; the H100 SXM is the "
             "same die, SMs and L2) = 5355 B/clk at 1830 MHz; t4 keeps 1024 B/clk, an assumption (no measurement "
             "found)"),
    Constant("GPUArch.launch", "graph", "published",
             "kernels replayed from a CUDA graph: what this project's H200 rows measured (benchmarks/gpu_matmul_timing.py, "
             "gpu_model_timing.py); eager adds eager_extra_us per kernel"),
    Constant("GPUArch.eager_extra_us", 1.28, "published",
             "per-kernel time eager launches add over CUDA-graph launches, from back-to-back dependent 64 kB scale "
             "kernels (github.com/te42kyfo/gpu-benches gpu-small-kernels, best block size): A100 80GB 2.62 us eager "
             "(a100_80.txt) against 1.34 us graph (a100_80_graph.txt); presets without a measurement take it; h100/h200: "
             "0.18 us, H200 2.52 us eager (h200.txt) against 2.34 us graph (h200_graph.txt). These C++ launches "
             "exclude a framework's own per-op host time"),
    Constant("gemm.SECONDS_PER_WAVE", 3e-6, "measured",
             "wall time per wave and tile shape of this model (perf_counter on the project's 2-core "
             "machine); used only to refuse requests over the time limit"),
    Constant("simulate.VECTOR_BLOCK_THREADS", 128, "published",
             "PyTorch's element-wise CUDA kernels: 4 warps per block (aten/src/ATen/native/cuda/Loops.cuh)"),
    Constant("simulate.VECTOR_ELEMENTS_PER_BLOCK", 512, "published",
             "PyTorch's element-wise kernels: 4 elements per thread (Loops.cuh thread_work_size)"),
    Constant("flash.FLASH_KERNELS", ("fa2", "fa3"), "published",
             "the fused-attention kernels modelled: FlashAttention-2 (Dao, arXiv:2307.08691) and -3 (Shah et al., "
             "arXiv:2407.08608)"),
    Constant("flash.HEAD_DIMS", (64, 128, 256), "published",
             "the head dimensions FA3's release compiles (a head dimension between them runs padded to the next) and "
             "those FA2's release gives the tiles modelled here for"),
    Constant("flash.FA2_HEAD_DIM_STEP", 32, "published",
             "FA2 compiles head dimensions 32, 64, 96, ..., 256 (csrc/flash_attn/src/flash_fwd_hdim*.cu) and pads to them"),
    Constant("flash.MAX_SPLITS", 128, "published",
             "FA2's cap on the key blocks' split (csrc/flash_attn/flash_api.cpp, num_splits_heuristic(..., 128))"),
    Constant("flash.MUFU_PER_CLK", 16, "published",
             "exp2 results per clock per SM on A100/H100 (CUDA C++ Programming Guide, native arithmetic instruction "
             "throughput; FA3 paper footnote 5: 16 x 132 SMs x 1830 MHz = 3.9 TFLOPS of special functions)"),
    Constant("flash.FWD_OPS", 3.5, "modelling choice",
             "FP32-pipe instructions per score element of FA2/FA3's online softmax (flash_attn/src/softmax.h): row max "
             "FMNMX, scaled subtraction FFMA, row sum FADD, half an F2FP pack; at the FP32 lanes' rate, a named "
             "assumption"),
    Constant("flash.BWD_OPS", 4.0, "modelling choice",
             "backward per score element: P again (FFMA), dS = P (dP - D) (FADD, FMUL), the 16-bit packs of P and dS"),
    Constant("flash.MASK_OPS", 1.0, "modelling choice", "a masked (diagonal) block's compare-and-select per element"),
    Constant("flash.OVERLAP_EXPOSED", 0.5, "calibration",
             "share of the shorter of a block's GEMMs and softmax not hidden behind the longer; fitted on FA3's "
             "ablation (Shah et al. 2024, Table 2: {4, 8448, 16, 128} fp16 forward, 661 TFLOPS at 1830 MHz), used "
             "for FA2 too; checked on FA3 at head dimensions 64 and 256 (corpus rows); FA2 on an A100 at d 128 comes out "
             "221 TFLOPS forward where its paper says up to 230 (not a corpus row)"),
    Constant("flash.SMEM_BYTES_PER_CLK", 128, "published",
             "shared memory: 32 banks, each 32 bits per clock (CUDA C++ Programming Guide, shared memory, compute "
             "capability 5.x and later)"),
    Constant("flash.FA2_BWD_ROUNDTRIP", 14, "modelling choice",
             "FA2's backward per score element: P and dS written to shared memory (2 accesses) and read back as the A "
             "operands of dV = P^T dO, dK = dS^T Q, dQ = dS K, each by the 4 warps of a row of the 2 x 4 warp layout "
             "(12); flash_bwd_kernel.h (sP, sdS between __syncthreads), an approximation of its per-head-dim layouts"),
    Constant("flash.MAX_PLACED", 200_000, "modelling choice",
             "CTAs placed one by one; a larger grid takes list scheduling's bound (run-time policy)"),
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
    Constant("GPUArch.dram_efficiency", 1.0, "published",
             "share of the datasheet DRAM bandwidth that kernels sustain, for every DRAM time (energy per byte, the "
             "ridge and peaks() keep dram_gbs); 1 where no measurement was found (t4, an assumption). Presets: a "
             "STREAM triad (a[i] = b[i] + s * c[i]: two read streams, one write) measured on the card over its "
             "dram_gbs, below"),
    Constant("v100.dram_efficiency", 814 / 900, "published",
             "814 GB/s, triad at full occupancy (1024 threads x 2 blocks/SM) on a V100 (the repository's examples name a "
             "Tesla V100 PCIe 16GB: 900 GB/s HBM2, the SXM2's memory; read 866, scale 802): D. Ernst, "
             "github.com/te42kyfo/gpu-benches gpu-stream/v100.txt; over 900 GB/s"),
    Constant("a100.dram_efficiency", 1360 / 1555, "published",
             "1360 GB/s, triad at full occupancy on an A100 40GB (form factor not stated; both 40GB parts are 1555 GB/s "
             "HBM2; read 1490, scale 1381): github.com/te42kyfo/gpu-benches gpu-stream/a100_40.txt; over 1555 GB/s"),
    Constant("a100-80gb.dram_efficiency", 1700 / 2039, "published",
             "1.70 TB/s, Triad on an A100-SXM4-80GB (Copy 1.61, Dot 1.75): Microsoft Azure, ND A100 v4 results, "
             "github.com/Azure/AI-benchmarking-guide Azure_Results/ND_A100_v4_results.md; over 2039 GB/s. "
             "gpu-benches cuda-stream/a100_80.txt measures 1759 GB/s triad on an A100 80GB"),
    Constant("h100.dram_efficiency", 2970 / 3350, "published",
             "2.97 TB/s, Triad on an 'NVIDIA H100 80GB HBM3' (the SXM5 part; Copy 2.90, Dot 3.18): Microsoft Azure, "
             "ND H100 v5 results, Azure/AI-benchmarking-guide Azure_Results/ND_H100_v5_results.md (read from the "
             "forks yosoyjay/ and samuel-bohman/AI-benchmarking-guide); over 3350 GB/s. The H100 PCIe (HBM2e, "
             "2 TB/s) and H800 measurements of gpu-benches and Luo et al. 2024 are another memory and not used"),
    Constant("h200.dram_efficiency", 4150 / 4800, "published",
             "4.15 TB/s, Triad on an H200 141GB (Copy 4.01, Dot 4.48): Microsoft Azure, ND H200 v5 results, "
             "github.com/Azure/AI-benchmarking-guide Azure_Results/ND_H200_v5_results.md; over 4800 GB/s. "
             "gpu-benches gpu-stream/h200.txt measures less (triad 3534 GB/s with only 2 blocks per SM); this "
             f"project's H200 GEMV 1x8192x8192 bf16 moves 134 MB in 34.7 us, 3.87 TB/s with launch ({H200_MATMUL})"),
    Constant("GPUArch.kernel_overhead_us", 2.0, "calibration",
             "launch and prologue no overlap hides, kernels in a CUDA graph; checked against the shortest CUDA-graph "
             f"GEMM measured on an H200, 2.9-3.1 us for 256^3 (launch, prologue and DRAM latency, {H200_MATMUL}); "
             "consistent with the 2.34 us between back-to-back tiny kernels of a CUDA graph on an H200 "
             "(github.com/te42kyfo/gpu-benches gpu-small-kernels/h200_graph.txt)"),
    Constant("power.WARP_TILE", 64, "published",
             "CUTLASS SM70-SM80 tensor-op kernels tile a 128x128-class CTA into 64x64 warp tiles (the warp "
             "shapes of cutlass_library's generator); each FMA reads 1/64 of an A and a B element from shared memory"),
    Constant("power.WGMMA_M", 64, "published",
             "Hopper wgmma.mma_async is m64nNk16 (PTX ISA): a warpgroup's tile is 64 rows x the CTA's N, A and B "
             "read from shared memory by descriptor"),
    Constant("GPUArch.mma_mnk", (16, 8, 32), "published",
             "the MMA instruction as (m, n, K bytes): Ampere mma.sync m16n8k16 fp16 (CUTLASS mma_sm80.h); presets: "
             "Volta m8n8k4 (8, 8, 8), Turing m16n8k8 (16, 8, 16), Hopper wgmma m64nNk16 (64, N, 32); each MMA reads "
             "and writes its accumulators in registers, 2 x acc bytes / k per FMA"),
    Constant("GPUArch.tdp_w", 0.0, "published",
             "board power limit, none by default; presets: V100 SXM2 300 W, T4 70 W, A100 SXM4 400 W (datasheets), "
             "H100 SXM5 700 W, H200 700 W (NVML's enforced limit, benchmarks/data/NVIDIA_H200_power.csv)"),
    Constant("GPUArch.vf_curve", (), "published",
             "no curve: the voltage stays nominal as the power manager lowers the clock (v100, t4: no voltage data found); "
             "a100, a100-80gb: sim.gpu.dvfs.GA100_VF, derived from an A100-PCIe's NVML board power at ten locked clocks "
             "running one FP32 kernel (KernelTuner/kernel_tuner_tutorial energy/data/"
             "synthetic_fp32_cache_NVIDIA_A100-PCIE-40GB.json @ 9d3f087): linear to 1005 MHz (constant voltage; an A100 "
             "SXM4 reads 712.5 mV at 1080 MHz as at 210 MHz idle, NVIDIA/nvidia-docker#1648), then v = sqrt((P - P0) / "
             "(c f)): 0.726 of the top voltage at and below 0.71 of the clock; an upper bound on the rise (leakage grows "
             "too). h100, h200: the same curve in shares of the nominal clock, a named assumption (no GH100 voltage data "
             "published)"),
    Constant("simulate.DRAM_BOUND_SHARE", 0.75, "modelling choice",
             "a memory-bound kernel whose DRAM bytes take at least 3/4 of its time keeps its DRAM time as the power "
             "manager lowers the clock (sim.gpu.dvfs); an L2-bound GEMM (8192^3 fp16 on h100: DRAM 0.6 of its time, "
             "overlapped) stretches whole"),
    Constant("dvfs.HELD_AT_LIMIT", 0.97, "modelling choice",
             "analysis.gpu_calibration: an NVML loop averaging within 3% of the power limit ran held at it (the H200's "
             "GEMM loops 690-695 W of 700 W; its GEMV 478 W)"),
    Constant("dvfs.A100_PCIE_POWER", A100_PCIE_POWER, "measured",
             "board power (W) of an A100-PCIE-40GB at ten locked SM clocks (MHz) running one synthetic FP32 kernel, NVML "
             "(KernelTuner/kernel_tuner_tutorial energy/data/synthetic_fp32_cache_NVIDIA_A100-PCIE-40GB.json @ 9d3f087)"),
    Constant("dvfs.A100_PCIE_KNEE_MHZ", 1005.0, "measured",
             "the last clock of that table's linear part (0.042-0.049 W/MHz up to it, 0.10-0.27 above)"),
    Constant("dvfs.GA100_VF", GA100_VF, "measured",
             "(clock share, voltage share) derived from A100_PCIE_POWER by sim.gpu.dvfs.vf_from_power"),
    Constant("h100.mac_pj", {"fp16": 1.040, "bf16": 1.040, "tf32": 2.391, "fp8": 0.6108, "int8": 0.1559},
             "calibration",
             "pJ per tensor-core FMA at the nominal clock and voltage: Horowitz's 45 nm multiply at the input width + "
             "fp32 add (ISSCC 2014) x k = 0.5198, the on-chip scale fitted with the active power to NVML energy of a "
             "4096^3 fp16 GEMM and an 1x8192x8192 GEMV on an H200 (analysis.gpu_calibration, "
             f"{H200_MATMUL}); the GEMM's loop ran held at the power limit, at 0.83 of the clock (its burst time over "
             "its loop time) and so at the voltage vf_curve gives there, which the fit divides out; h200 inherits it"),
    Constant("h100.rf_pj_per_byte", 1.793, "calibration",
             "Horowitz's SRAM curve at a 64 KB SM sub-partition register file x k (as mac_pj)"),
    Constant("h100.smem_pj_per_byte", 3.234, "calibration", "Horowitz's SRAM curve at 228 KB x k (as mac_pj)"),
    Constant("h100.l2_pj_per_byte", 39.97, "calibration", "Horowitz's SRAM curve at 50 MiB x k (as mac_pj)"),
    Constant("h100.dram_pj_per_byte", 31.2, "published",
             "3.9 pJ/bit: HBM2 (O'Connor et al., 'Fine-grained DRAM', MICRO 2017) and Samsung's HBM3E figure "
             "(3.9 pJ/bit, reported by chinaflashmarket.com); the DRAM's own energy, not scaled with the logic node"),
    Constant("h100.active_power_w", 52.97, "calibration",
             "W drawn beyond idle while a kernel keeps every SM busy at full clock (AccelWattch's constant and SM "
             "activation power, MICRO 2021), scaled by the share of SMs a kernel's CTAs fill; an energy per SM cycle, "
             "fitted with k over each GEMM's CUDA-graph burst time (as mac_pj)"),
    Constant("GPUArch.die_transistors_b", 0.0, "published",
             "transistors on the whole die, billions; presets: GV100 21.1, TU104 13.6, GA100 54.2, GH100 80 (the Volta, "
             "Turing, Ampere and Hopper whitepapers); with die_sms (full-die SMs: 84, 48, 128, 144) it scales active "
             "power between dies (analysis.gpu_calibration.transfer)"),
    Constant("GPUArch.die_sms", 0, "published", "SMs on the full die before any are disabled (whitepapers; see "
             "die_transistors_b)"),
    Constant("a100.mac_pj", {"fp16": 1.485, "bf16": 1.485, "tf32": 3.416, "int8": 0.2228, "int4": 0.1114},
             "calibration",
             "the h100 calibration carried from TSMC 4N (N5 family) to N7: k x 0.40 / 0.28 (TSMC's published power at "
             "the same speed: N7 -60% vs 16FF+, N5 -30% vs N7) on Horowitz's 45 nm relative costs "
             "(analysis.gpu_calibration.transfer); held out against published A100 GEMMs "
             "(benchmarks/data/published_gemm.csv: -20% and -25% in TFLOPS, in a loop at the 400 W limit, benchmarks/data/published_gemm_compare.txt)"),
    Constant("a100.rf_pj_per_byte", 2.561, "calibration", "Horowitz's SRAM curve at 64 KB x the transferred k (as mac_pj)"),
    Constant("a100.smem_pj_per_byte", 3.965, "calibration", "Horowitz's SRAM curve at 164 KB x the transferred k (as mac_pj)"),
    Constant("a100.l2_pj_per_byte", 51.48, "calibration", "Horowitz's SRAM curve at 40 MiB x the transferred k (as mac_pj)"),
    Constant("a100.active_power_w", 36.36, "calibration",
             "h100's 52.97 W x the process ratio 0.40 / 0.28 x enabled transistors (54.2 B x 108/128 over 80 B x 132/144) "
             "x clock (1410 / 1830 MHz) (analysis.gpu_calibration.transfer)"),
    Constant("v100.mac_pj", {"fp16": 0.3955}, "published",
             "the energy table's: Horowitz's 45 nm, 0.9 V fp16 multiply + fp32 add (ISSCC 2014) scaled to 12 nm at its "
             "nominal 0.775 V by the energy model's Dennard rule (analysis.technology, "
             "analysis.gpu_calibration.table_prices); t4 takes the same at int8/int4 too. The "
             "h100 calibration carried to 12 nm by TSMC's process power would put 8192^3 fp16 on v100 at 24 TFLOPS "
             "against a published 97 (benchmarks/data/published_gemm.csv), so it is not used"),
    Constant("v100.rf_pj_per_byte", 0.6821, "published", "the energy table's SRAM curve at 64 KB, 12 nm (as mac_pj)"),
    Constant("v100.l2_pj_per_byte", 5.68, "published", "the energy table's SRAM curve at 6 MiB, 12 nm (as mac_pj)"),
    Constant("t4.dram_pj_per_byte", 60.0, "published",
             "7.5 pJ/bit: GDDR6's average device power in Micron's GDDR6X comparison table (GDDR6 7.5, GDDR6X 7.25, "
             "HBM2E 6.0 pJ/bit; reproduced at kylolab.com/ultra-bandwidth-solutions.html); the energy table's gddr6"),
    Constant("t4.static_power_w", 16.0, "measured",
             "nvidia-smi of an idle Tesla T4 at P0 with no processes, 16 W (github.com/sagemathinc/cocalc-docker README, "
             "2020); a P8 (deep idle) T4 reads 9 W in other logs"),
    Constant("GPUArch.fusion", "epilogue", "published",
             "what inference libraries run: cuDNN's fused conv-bias-activation, CUTLASS epilogues, TensorRT's "
             "layer fusion (see sim/gpu/fusion.py)"),
    Constant("GPUArch.streams", 1, "published", "PyTorch eager issues kernels on one stream"),
    Constant("GPUArch.layout", "nhwc", "published",
             "what inference libraries and PyTorch's channels_last run; with nchw (PyTorch's default) cuDNN transposes "
             "a tensor-core convolution's input to NHWC and its output back (cuDNN developer guide, Tensor "
             "Transformations: 'NCHW-to-NHWC transformations to call the Tensor Core operations'; MosaicML Composer's "
             "channels-last method card), each a memory-bound kernel with its own launch"),
)


def table() -> str:
    """The constants as a Markdown table (name, value, kind, source)."""
    lines = ["| constant | value | kind | source |", "|---|---|---|---|"]
    for c in CONSTANTS:
        lines.append(f"| `{c.name}` | {c.value} | {c.kind} | {c.source} |")
    return "\n".join(lines)

# The validation corpus's rows each calibrated constant was set on (validation/data/, role
# ``fit``): they are listed apart by ``hwsim validate`` and never count as evidence of accuracy.
_H200_ENERGY_ROWS = ("h200-meas-fp16-4096x4096x4096-energy", "h200-meas-fp16-1x8192x8192-energy")
FIT_ROWS: dict[str, tuple[str, ...]] = {
    "GPUArch.kernel_overhead_us": ("h200-meas-fp16-256x256x256-time",),
    "flash.MMA_EFFICIENCY": ("h200-meas-bf16-4096x4096x4096-time",),
    "flash.OVERLAP_EXPOSED": ("h100-fa3-ablation-4x16x8448x128-fwd-tflops",),
    **{f"{card}.{f}": _H200_ENERGY_ROWS for card in ("h100", "a100")
       for f in ("mac_pj", "rf_pj_per_byte", "smem_pj_per_byte", "l2_pj_per_byte", "active_power_w")},
    "v100.mac_pj": ("v100-gemm-8192x8192x8192-fp16-tflops-published",),
}

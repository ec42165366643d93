"""Tensor-core GPU descriptions (the NVIDIA V100, A100 and H100 whitepapers and the T4 and
H200 datasheets; microbenchmark figures where named).

``tc_fma_per_clk`` is the dense FMA rate of one tensor core per clock, per input
precision; a precision missing from it is not supported by that generation's tensor
cores. Bandwidths are per second at the preset's clock; ``l2_bytes_per_clk`` is the
whole-chip L2 read bandwidth per clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
import typing
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Mapping

from annotated_types import Gt, Le

from workloads.errors import HwsimError

from ..archbase import Clock, NonNegative, NonNegativeInt, Nm, Positive, PositiveInt, Rate, check_fields, need
from ..machine import MemoryLevel, Peaks, describe_fields
from .dvfs import GA100_VF
from .fusion import Fusion
from .precision import PRECISION_BYTES

if TYPE_CHECKING:
    from workloads.trace import Workload

    from ..machine import Progress
    from ..result import OpResult, SimResult

__all__ = ["PRECISION_BYTES", "ENGINES", "GENERATIONS", "LAYOUTS", "LAUNCHES", "POWER_STATES", "L2_ACHIEVED_GBS", "LATENCY_NS", "GPUArch",
           "PRESETS", "ARCH"]

ENGINES = ("fast", "events")
# the generations whose tensor cores the presets describe (rates, MMA shapes, energies from
# their whitepapers); a description of another has no data behind it
GENERATIONS = ("volta", "turing", "ampere", "hopper")
Layout = Literal["nhwc", "nchw"]
LAYOUTS: tuple[Layout, ...] = typing.get_args(Layout)
Launch = Literal["graph", "eager"]
LAUNCHES: tuple[Launch, ...] = typing.get_args(Launch)
PowerState = Literal["sustained", "burst"]
AttentionKernel = Literal["auto", "fa2", "fa3"]
POWER_STATES: tuple[PowerState, ...] = typing.get_args(PowerState)
# a share of a datasheet figure, in (0, 1]
Efficiency = Annotated[float, Gt(0), Le(1)]

# Device memory as the driver reports it (nvidia-smi's "Memory-Usage" total, MiB = 2^20 bytes)
# on each card, read from public nvidia-smi printouts: the "80GB" of an H100 is 81,559 MiB
# (85.5e9 bytes), not 80e9. The CUDA context's few hundred MiB are not subtracted (a named
# assumption: training frameworks run close to the total).
MEMORY_MIB = {"v100": 32510,        # Tesla V100-SXM2-32GB
              "t4": 15360,          # Tesla T4
              "a100": 40536,        # A100-SXM4-40GB
              "a100-80gb": 81920,   # A100-SXM4-80GB
              "h100": 81559,        # NVIDIA H100 80GB HBM3 (SXM5)
              "h200": 143771}       # NVIDIA H200 (141 GB HBM3e)


def _memory_gb(card: str) -> float:
    return MEMORY_MIB[card] * 2 ** 20 / 1e9


# Sustained DRAM bandwidth a streaming kernel reaches, measured (GB/s), and the kernel and source
# (sim/gpu/constants.py registers them): the presets' dram_efficiency is this over dram_gbs
DRAM_ACHIEVED_GBS = {
    "v100": 814.0,      # triad, gpu-benches gpu-stream/v100.txt (a V100 PCIe 16GB: 900 GB/s HBM2, as SXM2)
    "a100": 1360.0,     # triad, gpu-benches gpu-stream/a100_40.txt (an A100 40GB: 1555 GB/s HBM2)
    "a100-80gb": 1700.0,  # Triad, Azure ND A100 v4 (A100-SXM4-80GB)
    "h100": 2970.0,     # Triad, Azure ND H100 v5 (H100 80GB HBM3, the SXM5 part)
    "h200": 4150.0,     # Triad, Azure ND H200 v5 (H200 141GB)
}

# Read bandwidth a kernel sustains from the whole L2 (GB/s), measured with a working set
# inside the L2 (sim/gpu/constants.py registers them): the presets' l2_bytes_per_clk is this
# over their clock. D. Ernst, github.com/te42kyfo/gpu-benches: the cuda-cache table of its
# README (V100 PCIe 16GB, 1 MB set: 2482 GB/s), gpu-l2-cache/a100_80.txt (plateau over 2-25 MB
# sets: 5.4 TB/s), gpu-l2-cache/h200.txt (plateau over 4-40 MB sets: 9.8 TB/s; the h100 preset
# is the same GH100 die with the same 132 SMs and 50 MB L2)
L2_ACHIEVED_GBS = {"v100": 2482.0, "a100": 5400.0, "h100": 9800.0}

# Load-to-use latencies measured by pointer chasing (ns; cycles over the measuring clock),
# github.com/te42kyfo/gpu-benches: README's cuda-latency table (V100 PCIe at 1380 MHz: L2 214,
# DRAM 436 cycles), cuda-latency/a100_40.txt (1410 MHz: L2 213 near / 425 far partition, DRAM
# 574), gpu-latency/h100_pcie.txt (1755 MHz: L2 265 near / 475 far, DRAM 658). An L2 hit is
# the mean of the near and far partition (a semaphore or partial tile sits in one partition;
# the SMs touching it are spread over both: a modelling choice); the presets take cycles at
# their own clock.
LATENCY_NS = {
    "v100": {"l2": 214 / 1.380, "dram": 436 / 1.380},
    "a100": {"l2": (213 + 425) / 2 / 1.410, "dram": 574 / 1.410},
    "h100": {"l2": (265 + 475) / 2 / 1.755, "dram": 658 / 1.755},
}


def _cycles(card: str, level: str, clock_mhz: float) -> int:
    return round(LATENCY_NS[card][level] * clock_mhz / 1e3)


def _l2_per_clk(card: str, clock_mhz: float) -> int:
    return round(L2_ACHIEVED_GBS[card] * 1e3 / clock_mhz)


@dataclass(frozen=True)
class GPUArch:
    """A tensor-core GPU; implements ``sim.machine.Machine``.

    The model runs per wave of CTAs (``sim.gpu.gemm``), each tile's kernel as CUTLASS would
    instantiate it (``sim.gpu.kernel``) and its main loop stepped cycle by cycle on one SM
    (``sim.gpu.sm``), with an event-driven reference (``sim.gpu.event``). Kernels run one at a time on
    ``streams = 1`` (PyTorch eager issues one stream); with more streams, independent
    kernels overlap while their SM slots and DRAM bandwidth together fit the GPU.
    """

    family: ClassVar[str] = "gpu"
    uses_weight_values: ClassVar[bool] = False
    name: str
    sms: PositiveInt
    tcs_per_sm: PositiveInt
    tc_fma_per_clk: Mapping[str, Rate]
    clock_mhz: Clock
    dram_gbs: Rate
    dram_latency_cycles: NonNegativeInt
    l2_mib: Positive
    l2_bytes_per_clk: PositiveInt
    smem_per_sm_kib: PositiveInt
    regs_per_sm: PositiveInt = 65536    # 32-bit registers
    max_ctas_per_sm: PositiveInt = 32
    max_threads_per_sm: PositiveInt = 2048
    fp32_lanes_per_sm: PositiveInt = 64         # CUDA-core FMA lanes (depthwise convs, non-GEMM math)
    mma_shape: str = ""
    # global->shared software pipeline depth of the GEMM kernels; 0: as many stages as fit the
    # shared memory after the epilogue's share (CUTLASS SM90's StageCountAutoCarveout, sim.gpu.kernel)
    pipeline_stages: NonNegativeInt = 3
    # bytes of a GEMM kernel's K step per row of A and B (CUTLASS: 64 on SM70-SM80, 128 on SM90)
    k_step_bytes: PositiveInt = 64
    # CTAs of a thread-block cluster that share one operand's loads by TMA multicast (Hopper
    # and later; 1: no clusters), sim.gpu.kernel.multicast
    cluster_ctas: PositiveInt = 1
    kernel_overhead_us: NonNegative = 2.0     # launch + prologue that no overlap hides, kernels in a CUDA graph
    # how the framework launches kernels: graph (CUDA graph replay, what this project's H200
    # rows measured) or eager (one launch call per kernel, each adding eager_extra_us)
    launch: Launch = "graph"
    eager_extra_us: NonNegative = 1.28        # per-kernel time an eager launch adds over a graph launch
    l2_latency_cycles: NonNegativeInt = 300   # load-to-use latency of an L2 hit (split-K hand-offs, stream-K fix-ups)
    dram_type: str = "hbm2"             # the DRAM technology the energy table prices
    memory_gb: NonNegative = 0.0              # device memory (GB = 1e9 bytes), for training placements (presets: MEMORY_MIB)
    streams: PositiveInt = 1                    # concurrent streams the framework issues kernels on
    fusion: Fusion = "epilogue"            # epilogue: bias/BN/activation/residual run in the GEMM's epilogue
                                        # (inference libraries: cuDNN, CUTLASS, TensorRT); none: a kernel each
    layout: Layout = "nhwc"                # activations' layout: nhwc (inference libraries, PyTorch channels_last);
                                        # nchw (PyTorch's default): each tensor-core conv adds two transposes
    # N:M patterns the sparse tensor cores run on a pruned weight (A100/H100: 2:4)
    sparse_structures: tuple[str, ...] = ()
    # Share of dram_gbs that streaming kernels sustain (a measured STREAM-triad bandwidth over
    # the datasheet peak; sim/gpu/constants.py names each preset's source): every DRAM *time*
    # (GEMM operand and output streams, element-wise kernels, split-K reductions, the event
    # model's HBM server) runs at dram_gbs x dram_efficiency; DRAM energy per byte, the
    # roofline's ridge and peaks() keep the datasheet figure. 1: the peak (no measurement).
    dram_efficiency: Efficiency = 1.0
    # Idle power drawn over the run's time (sourced per preset; 0: dynamic energy only)
    static_power_w: NonNegative = 0.0
    tdp_w: NonNegative = 0.0                  # board power limit (W); kernels over it slow down (sim.gpu.dvfs); 0: none
    # the voltage-frequency curve the power manager lowers clock and voltage along
    # (sim.gpu.dvfs): (clock share, voltage share) points of the nominal clock and voltage,
    # ascending, ending at (1, 1); empty: the voltage stays nominal as the clock falls
    vf_curve: tuple[tuple[float, float], ...] = ()
    # the board's state the run sees (sim.gpu.dvfs): sustained (the workload in a loop, held
    # at tdp_w: the power manager's steady state) or burst (a run shorter than the limiter's
    # window from a cool card: every kernel at the nominal clock and voltage)
    power: PowerState = "sustained"
    # the FlashAttention kernel a fused attention runs (sim.gpu.flash): auto (FA3 on Hopper at
    # 16 bits or fp8, FA2 elsewhere), fa2 or fa3 (Hopper only)
    attention_kernel: AttentionKernel = "auto"
    # the MMA instruction: m, n and K in bytes (n 0: the CTA tile's N, as wgmma's m64nNk16);
    # operands_in_smem: A and B read from shared memory, not registers (Hopper wgmma)
    mma_mnk: tuple[int, int, int] = (16, 8, 32)
    mma_operands_in_smem: bool = False
    # The card's own per-event energies (sim/gpu/constants.py: calibrated, transferred or
    # from the energy table); empty/0: the energy table prices the MACs and levels by width
    # and capacity, and no power limit applies
    mac_pj: Mapping[str, Positive] = field(default_factory=dict)     # per tensor-core FMA, by precision
    rf_pj_per_byte: NonNegative = 0.0
    smem_pj_per_byte: NonNegative = 0.0
    l2_pj_per_byte: NonNegative = 0.0
    dram_pj_per_byte: NonNegative = 0.0
    active_power_w: NonNegative = 0.0         # drawn on top of idle while kernels keep every SM busy
    energy_source: str = ""             # where the own energies come from (stated by `hwsim archs`)
    die_transistors_b: NonNegative = 0.0      # transistors on the whole die (billions; whitepapers), and
    die_sms: NonNegativeInt = 0                    # its SMs before any are disabled: scale active power between dies
    technology_nm: Nm = 7
    generation: str = ""
    source: str = ""

    def _check_a_tile_fits(self) -> None:
        """The GEMM model's smallest CTA tile (``sim.gpu.gemm.TILES``) fits an SM (its kernel,
        ``sim.gpu.kernel``: ``pipeline_stages`` K steps of A and B in shared memory, threads,
        registers); a card where none fits could run no GEMM."""
        from .gemm import TILES
        from .kernel import kernel
        BM, BN = min(TILES, key=lambda t: t[0] * t[1])
        for p in self.tc_fma_per_clk:
            k = kernel(self, BM, BN, p)
            if k.ctas_per_sm(self) >= 1:
                continue
            stage = (BM + BN) * self.k_step_bytes
            need(k.smem_bytes <= self.smem_per_sm_kib * 1024, "pipeline_stages",
                 f"{k.stages} stages of the smallest CTA tile ({BM}x{BN}, {self.k_step_bytes}-byte K steps of A "
                 f"and B) need {k.smem_bytes / 1024:g} KiB of shared memory and the SM has {self.smem_per_sm_kib} KiB "
                 f"(smem_per_sm_kib): use at most {self.smem_per_sm_kib * 1024 // stage} stages "
                 "or more shared memory")
            need(False, "regs_per_sm", f"the smallest CTA tile ({BM}x{BN}) does not fit an SM's threads "
                 f"(max_threads_per_sm {self.max_threads_per_sm}) or registers (regs_per_sm {self.regs_per_sm})")

    def __post_init__(self) -> None:
        check_fields(self)
        mnk = self.mma_mnk
        need(isinstance(mnk, (list, tuple)) and len(mnk) == 3 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                      and x >= 0 for x in mnk) and mnk[0] > 0
             and mnk[2] > 0, "mma_mnk", f"must be [m, n, k_bytes] of non-negative integers (m, k_bytes > 0), got {mnk!r}")
        object.__setattr__(self, "mma_mnk", tuple(mnk))
        need(bool(mnk[1]) or self.mma_operands_in_smem, "mma_mnk",
             "n may be 0 (the CTA tile's N) only with mma_operands_in_smem: true")
        need(bool(self.tc_fma_per_clk), "tc_fma_per_clk", "needs at least one precision")
        for p, v in self.tc_fma_per_clk.items():
            need(p in PRECISION_BYTES, "tc_fma_per_clk", f"unknown precision {p!r}; one of {', '.join(PRECISION_BYTES)}")
        for p, v in self.mac_pj.items():
            need(p in PRECISION_BYTES, "mac_pj", f"unknown precision {p!r}; one of {', '.join(PRECISION_BYTES)}")
        if self.mac_pj:
            missing = [p for p in self.tc_fma_per_clk if p not in self.mac_pj]
            need(not missing, "mac_pj", f"the card's own energies need a price for every tensor-core precision; "
                                        f"missing {', '.join(missing)} (add them, or set mac_pj: {{}} and the "
                                        "*_pj_per_byte fields to 0 to price the card by the energy table)")
            need(min(self.rf_pj_per_byte, self.smem_pj_per_byte, self.l2_pj_per_byte, self.dram_pj_per_byte) > 0,
                 "rf_pj_per_byte", "with mac_pj, the rf, smem, l2 and dram prices must all be > 0")
        vf = self.vf_curve
        ok = isinstance(vf, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                                 for x in p) for p in vf)
        need(ok, "vf_curve", f"must be a list of [clock share, voltage share] pairs, got {vf!r}")
        pts = tuple((float(a), float(b)) for a, b in vf)
        if pts:
            need(all(0 < a <= 1 and 0 < b <= 1 for a, b in pts), "vf_curve",
                 "clock and voltage shares must be in (0, 1] (shares of the nominal clock and voltage)")
            need(all(x[0] < y[0] and x[1] <= y[1] for x, y in zip(pts, pts[1:])), "vf_curve",
                 "points must rise in clock, with the voltage never falling")
            need(pts[-1] == (1.0, 1.0), "vf_curve", "the last point must be [1, 1]: the nominal clock at the nominal voltage")
        object.__setattr__(self, "vf_curve", pts)
        if self.tdp_w and self.self_priced:
            need(self.tdp_w > self.static_power_w, "tdp_w", f"must exceed static_power_w ({self.static_power_w:g} W)")
        need(self.attention_kernel != "fa3" or self.generation == "hopper", "attention_kernel",
             f"fa3 needs a Hopper GPU (wgmma, TMA); this design's generation is {self.generation or 'unstated'}: "
             "use fa2 or auto")
        need(self.generation in ("", *GENERATIONS), "generation",
             f"this model has no tensor-core data for {self.generation!r}; known: {', '.join(GENERATIONS)} "
             "(or leave it empty for a card described wholly by its fields)")
        need(self.pipeline_stages > 0 or self.mma_operands_in_smem, "pipeline_stages",
             "0 (as many stages as fit, CUTLASS SM90's rule for TMA warp-specialised kernels) needs "
             "mma_operands_in_smem (a wgmma card); give a stage count, e.g. 3")
        need(self.cluster_ctas == 1 or self.mma_operands_in_smem, "cluster_ctas",
             "thread-block clusters sharing loads by TMA multicast need a Hopper-style card "
             "(mma_operands_in_smem); use 1")
        need(self.k_step_bytes % self.mma_mnk[2] == 0, "k_step_bytes",
             f"a K step of {self.k_step_bytes} bytes is not a whole number of the MMA's {self.mma_mnk[2]}-byte K "
             f"(mma_mnk): use a multiple of {self.mma_mnk[2]}")
        self._check_a_tile_fits()
        from workloads.trace import structure_nm
        ss = self.sparse_structures
        need(isinstance(ss, (list, tuple)) and all(isinstance(x, str) and structure_nm(x) for x in ss),
             "sparse_structures", f"must be a list of N:M patterns (e.g. [2:4]), got {ss!r}")
        object.__setattr__(self, "sparse_structures", tuple(ss))

    def check_precision(self, precision: str) -> None:
        if precision not in self.tc_fma_per_clk:
            raise HwsimError(f"precision {precision!r} is not supported by {self.name}'s tensor cores; "
                             f"supported: {', '.join(self.tc_fma_per_clk)}")

    def peak_tflops(self, precision: str = "fp16") -> float:
        """Dense tensor-core peak: SMs x TCs x FMA/clk x 2 x clock."""
        self.check_precision(precision)
        return self.sms * self.tcs_per_sm * self.tc_fma_per_clk[precision] * 2 * self.clock_mhz * 1e6 / 1e12

    @property
    def launch_us(self) -> float:
        """Time each kernel launch adds (us): ``kernel_overhead_us``, plus ``eager_extra_us``
        when kernels are launched eagerly rather than replayed from a CUDA graph."""
        return self.kernel_overhead_us + (self.eager_extra_us if self.launch == "eager" else 0.0)

    def sm_fma_per_clk(self, precision: str) -> float:
        self.check_precision(precision)
        return self.tcs_per_sm * self.tc_fma_per_clk[precision]

    @property
    def dram_achievable_gbs(self) -> float:
        """The DRAM bandwidth kernels sustain (GB/s): ``dram_gbs x dram_efficiency``."""
        return self.dram_gbs * self.dram_efficiency

    @property
    def dram_bytes_per_clk(self) -> float:
        """DRAM bytes per SM clock that kernels sustain (the achievable rate, not the peak):
        what every DRAM time of the model divides by."""
        return self.dram_achievable_gbs * 1e9 / (self.clock_mhz * 1e6)

    @property
    def ridge_flop_per_byte(self) -> float:
        return self.peak_tflops("fp16") * 1e12 / (self.dram_gbs * 1e9)

    # ---- the Machine interface ------------------------------------------------------
    def simulate(self, workload: Workload, *, precision: str | None = None, accumulate: str = "fp32",
                 output: str | None = None, engine: str = "fast", progress: Progress | None = None) -> SimResult:
        """Run ``workload``: ``precision`` forces the tensor-core input precision (default:
        from each op's operands); ``accumulate`` is fp32 or fp16; ``output`` the stored
        output precision (default the input's); ``engine`` "fast" (the per-wave closed form)
        or "events" (GEMM kernels timed by the event-driven reference, ``sim.gpu.event``)."""
        from .simulate import simulate
        need(engine in ENGINES, "engine", f"must be one of {', '.join(ENGINES)}, got {engine!r}")
        if precision is not None:
            need(precision in PRECISION_BYTES, "precision", f"unknown {precision!r}; one of {', '.join(PRECISION_BYTES)}")
            self.check_precision(precision)
        need(accumulate in ("fp32", "fp16"), "accumulate", f"must be fp32 or fp16, got {accumulate!r}")
        if output is not None:
            need(output in PRECISION_BYTES, "output", f"unknown {output!r}; one of {', '.join(PRECISION_BYTES)}")
        return simulate(workload, self, precision=precision, accumulate=accumulate, output=output, engine=engine,
                        progress=progress)

    @property
    def memory_capacity_bytes(self) -> float:
        return self.memory_gb * 1e9

    @property
    def sparsity_exploited(self) -> frozenset[str]:
        """N:M-pruned weights on the card's sparse tensor cores (its ``sparse_structures``);
        plain density is not: a GEMM with scattered zeros runs as a dense one."""
        return frozenset({"weight_structure"}) if self.sparse_structures else frozenset()

    @property
    def self_priced(self) -> bool:
        """True when the card prices its own MACs and accesses (and the power limit applies)."""
        return bool(self.mac_pj)

    def memory_levels(self) -> Mapping[str, MemoryLevel]:
        """Register file and shared memory (per SM), L2 and DRAM; at the card's own prices
        where it has them."""
        def own(kind: str, price: float, capacity: float = 0.0, technology: str = "") -> MemoryLevel:
            p = price if self.self_priced else None
            return MemoryLevel(kind, capacity, technology, read_pj_per_byte=p, write_pj_per_byte=p)
        # the register file is priced per SM sub-partition: Volta to Hopper SMs have four
        # processing blocks, each with a quarter of the SM's registers (Volta whitepaper, 64 KB each)
        return {"rf": own("rf", self.rf_pj_per_byte, self.regs_per_sm * 4 / 4),
                "smem": own("sram", self.smem_pj_per_byte, self.smem_per_sm_kib * 1024),
                "l2_sram": own("sram", self.l2_pj_per_byte, self.l2_mib * 2 ** 20),
                "dram": own("dram", self.dram_pj_per_byte, technology=self.dram_type)}

    def op_prices(self) -> Mapping[str, float]:
        """The card's own prices: a tensor-core FMA by precision, and an SM-cycle of active
        power (``active.sm_cycles``); empty when the energy table prices the card."""
        if not self.self_priced:
            return {}
        prices = {f"mac.{p}": v for p, v in self.mac_pj.items()}
        prices["active.sm_cycles"] = self.active_power_w / (self.sms * self.clock_mhz * 1e6) * 1e12
        return prices

    def peaks(self, precision: str | None = None) -> Peaks:
        p = precision or ("fp16" if "fp16" in self.tc_fma_per_clk else next(iter(self.tc_fma_per_clk)))
        return Peaks(p, self.peak_tflops(p) * 1e12 / 2,
                     {"dram": self.dram_gbs * 1e9, "l2_sram": self.l2_bytes_per_clk * self.clock_mhz * 1e6})

    def occupancy(self, result: OpResult) -> float:
        """1 on one stream; else the larger of the share of CTA slots the kernel's first
        wave fills and the share of DRAM bandwidth it uses over its time."""
        if self.streams == 1 or not result.cycles:
            return 1.0
        e = result.extra
        slots = e.ctas / (self.sms * max(e.ctas_per_sm, 1))
        levels = self.memory_levels()
        dram = sum(v for k, v in result.accesses.items() if not levels[k.split(".")[0]].on_chip)
        bw = dram / (result.cycles * self.dram_bytes_per_clk)
        return float(min(1.0, max(slots, bw)))

    @property
    def precision_policy(self) -> str:
        """What precision the trace's ops run at here (stated in summaries and `hwsim archs`)."""
        return (f"GEMMs on tensor cores ({', '.join(self.tc_fma_per_clk)}): float traces of more than 8 bits as fp16 "
                "with fp32 accumulation (mixed precision), 8-bit floats as fp8, integers as int8/int4; "
                "--precision forces one type for every GEMM; activations read from and written to device memory.")

    def describe(self) -> dict[str, Any]:
        return describe_fields(self, precision_policy=self.precision_policy, peak_fp16_tflops=self.peak_tflops("fp16") if "fp16" in self.tc_fma_per_clk
                               else math.nan, ops_overlap="one kernel at a time" if self.streams == 1
                               else f"independent kernels overlap on {self.streams} streams",
                               energy_model=self.energy_model)

    def kernel_note(self) -> str:
        """The report's line on this card's kernel choices (epilogue fusion, cuDNN's layout)."""
        return (f"Kernels: epilogue fusion {'on' if self.fusion == 'epilogue' else 'off'} (fusion: {self.fusion}); "
                f"activations in {self.layout.upper()} (layout: {self.layout}; NCHW adds two transpose kernels "
                "around each tensor-core convolution, as cuDNN runs them); per op the tensor-core tile, the K split "
                "or stream-K (one wave of persistent CTAs sharing out all K steps), the ops each GEMM's epilogue "
                "runs and the N:M pattern of a weight run on sparse tensor cores (tile, split_k, stream_k, fused, "
                "sparsity).")

    @property
    def energy_model(self) -> str:
        """How this card's energy is priced and whether its power limit applies (one line)."""
        if not self.self_priced:
            return "priced by the energy table; no power limit applied"
        own = f"own per-event energies ({self.energy_source})" if self.energy_source else "own per-event energies"
        active = f", {self.active_power_w:g} W active power" if self.active_power_w else ""
        limit = ""
        if self.tdp_w:
            limit = (f", the {self.tdp_w:g} W power limit held by lowering clock "
                     + ("and voltage (DVFS)" if self.vf_curve else "at the nominal voltage"))
        return own + active + limit


PRESETS = {
    "v100": GPUArch(
        name="v100", technology_nm=12, generation="volta", sms=80, tcs_per_sm=8, tc_fma_per_clk={"fp16": 64}, clock_mhz=1530,
        dram_gbs=900, dram_efficiency=DRAM_ACHIEVED_GBS["v100"] / 900,
        dram_latency_cycles=_cycles("v100", "dram", 1530), l2_mib=6, l2_bytes_per_clk=_l2_per_clk("v100", 1530),
        l2_latency_cycles=_cycles("v100", "l2", 1530), smem_per_sm_kib=96,
        fp32_lanes_per_sm=64, mma_shape="m8n8k4 (HMMA.884)", mma_mnk=(8, 8, 8), pipeline_stages=2, memory_gb=_memory_gb("v100"), static_power_w=56.6,
        tdp_w=300, die_transistors_b=21.1, die_sms=84,
        # the energy table's prices at 12 nm (analysis.gpu_calibration.table_prices), see sim/gpu/constants.py
        mac_pj={"fp16": 0.3955}, rf_pj_per_byte=0.6821, smem_pj_per_byte=0.8234, l2_pj_per_byte=5.68,
        dram_pj_per_byte=31.2, energy_source="the energy table's Horowitz 45 nm prices scaled to 12 nm",
        source="V100 SXM2 32GB: 80 SMs x 8 TCs x 64 FP16 FMA/clk at 1530 MHz = 125.3 TFLOPS, 900 GB/s HBM2, 6 MB L2, "
               "96 KB smem (NVIDIA whitepapers/datasheets); L2 read bandwidth and L2/DRAM latencies measured "
               "(L2_ACHIEVED_GBS, LATENCY_NS: a V100 PCIe's); idle 56.6 W: nvidia-smi -q of an idle V100-SXM2-32GB "
               "(no processes) in github.com/NVIDIA/nvidia-docker/issues/1076; kernels sustain 814 GB/s (STREAM triad on a V100, "
               "github.com/te42kyfo/gpu-benches gpu-stream/v100.txt); 300 W board power (V100 SXM2 datasheet); "
               "21.1 B transistors, 84 SMs on the full GV100 (Volta whitepaper); per-event energies: the energy table's at "
               "12 nm (the H200 calibration carried here by TSMC's process power puts 8192^3 fp16 at 24 TFLOPS against a "
               "published 97, so it is not used)"),
    "t4": GPUArch(
        name="t4", technology_nm=12, generation="turing", sms=40, tcs_per_sm=8, tc_fma_per_clk={"fp16": 64, "int8": 128, "int4": 256},
        clock_mhz=1590, dram_gbs=320, dram_latency_cycles=600, l2_mib=4, l2_bytes_per_clk=1024, l2_latency_cycles=236,
        smem_per_sm_kib=64, fp32_lanes_per_sm=64, mma_shape="m16n8k8 (HMMA.1688)", mma_mnk=(16, 8, 16), pipeline_stages=2,
        dram_type="gddr6", memory_gb=_memory_gb("t4"), tdp_w=70, static_power_w=16.0, die_transistors_b=13.6, die_sms=48,
        mac_pj={"fp16": 0.3955, "int8": 0.05932, "int4": 0.02966}, rf_pj_per_byte=0.6821, smem_pj_per_byte=0.6821,
        l2_pj_per_byte=4.705, dram_pj_per_byte=60.0,
        energy_source="the energy table's Horowitz 45 nm prices scaled to 12 nm",
        source="T4: 40 SMs x 8 TCs, 65 TFLOPS FP16 / 130 TOPS INT8 / 260 TOPS INT4 at 1590 MHz, 320 GB/s GDDR6, "
               "4 MB L2 (NVIDIA whitepapers/datasheets); smem 64 KB/SM, L2 1024 B/clk: assumed (Turing whitepaper); 70 W board "
               "power (T4 datasheet); idle 16 W: nvidia-smi of an idle Tesla T4 at P0, no processes "
               "(github.com/sagemathinc/cocalc-docker README); DRAM time at the 320 GB/s peak: no streaming-kernel measurement "
               "of a T4 was found (an assumption; other cards sustain 83-90%); 13.6 B transistors, 48 SMs on the full TU104 (Turing "
               "whitepaper); per-event energies: the energy table's at 12 nm (as v100)"),
    "a100": GPUArch(
        name="a100", technology_nm=7, generation="ampere", sms=108, tcs_per_sm=4,
        tc_fma_per_clk={"fp16": 256, "bf16": 256, "tf32": 128, "int8": 512, "int4": 1024}, clock_mhz=1410,
        dram_gbs=1555, dram_efficiency=DRAM_ACHIEVED_GBS["a100"] / 1555,
        dram_latency_cycles=_cycles("a100", "dram", 1410), l2_mib=40, l2_bytes_per_clk=_l2_per_clk("a100", 1410),
        l2_latency_cycles=_cycles("a100", "l2", 1410), smem_per_sm_kib=164,
        fp32_lanes_per_sm=64, mma_shape="m16n8k16 (HMMA.16816)", mma_mnk=(16, 8, 32), pipeline_stages=3,
        memory_gb=_memory_gb("a100"), sparse_structures=("2:4",), static_power_w=50.5, tdp_w=400, die_transistors_b=54.2, die_sms=128,
        vf_curve=GA100_VF,      # derived from an A100-PCIe's power at locked clocks (sim.gpu.dvfs)
        # the H200 calibration carried to N7 (analysis.gpu_calibration.transfer), see sim/gpu/constants.py
        mac_pj={"fp16": 1.485, "bf16": 1.485, "tf32": 3.416, "int8": 0.2228, "int4": 0.1114},
        rf_pj_per_byte=2.561, smem_pj_per_byte=3.965, l2_pj_per_byte=51.48, dram_pj_per_byte=31.2, active_power_w=36.36,
        energy_source="the H200 calibration carried from TSMC 4N to N7 by TSMC's published power at the same speed",
        source="A100 40GB: 108 SMs x 4 TCs x 256 FP16 FMA/clk at 1410 MHz = 311.9 TFLOPS (TF32 156, INT8 624), "
               "1555 GB/s, 40 GB HBM2, 40 MB L2, 164 KB smem (NVIDIA whitepapers/datasheets); L2 read bandwidth and latencies measured (L2_ACHIEVED_GBS, LATENCY_NS); "
               "2:4 sparse tensor cores at twice the dense rate (624 FP16 / 1248 INT8 TOPS sparse, A100 whitepaper); idle 50.5 W: "
               "nvidia-smi of two idle A100-SXM4-40GB at P0, 52 W and 49 W (github.com/mrnorman/miniWeather/issues/12); 400 W "
               "maximum (techpowerup.com/gpu-specs/a100-sxm4-40-gb.c3506, glennklockwood.com/garden/processors/A100); kernels "
               "sustain 1360 GB/s (STREAM triad on an A100 40GB, github.com/te42kyfo/gpu-benches gpu-stream/a100_40.txt); "
               "54.2 B transistors, 128 SMs on the full GA100 (A100 whitepaper); per-event energies and active power: the "
               "H200 calibration carried to N7 (analysis.gpu_calibration.transfer), checked against a published cuBLAS "
               "8192^3 (benchmarks/data/published_gemm.csv)"),
    "h100": GPUArch(
        name="h100", technology_nm=4, generation="hopper", sms=132, tcs_per_sm=4,
        tc_fma_per_clk={"fp16": 512, "bf16": 512, "tf32": 256, "fp8": 1024, "int8": 1024}, clock_mhz=1830,
        dram_gbs=3350, dram_efficiency=DRAM_ACHIEVED_GBS["h100"] / 3350,
        dram_latency_cycles=_cycles("h100", "dram", 1830), l2_mib=50, l2_bytes_per_clk=_l2_per_clk("h100", 1830),
        l2_latency_cycles=_cycles("h100", "l2", 1830), eager_extra_us=0.18, smem_per_sm_kib=228,
        fp32_lanes_per_sm=128, mma_shape="wgmma m64nNk16 (N = 8..256)", mma_mnk=(64, 0, 32), mma_operands_in_smem=True,
        pipeline_stages=0, k_step_bytes=128, cluster_ctas=2, memory_gb=_memory_gb("h100"), sparse_structures=("2:4",), static_power_w=81.0, tdp_w=700,
        die_transistors_b=80.0, die_sms=144,
        # no voltage-frequency data is published for GH100: GA100's curve (sim.gpu.dvfs) in
        # shares of the nominal clock, a named assumption (sim/gpu/constants.py)
        vf_curve=GA100_VF,
        # calibrated on an H200 (the same GH100 die): analysis.gpu_calibration, see sim/gpu/constants.py
        mac_pj={"fp16": 1.040, "bf16": 1.040, "tf32": 2.391, "fp8": 0.6108, "int8": 0.1559},
        rf_pj_per_byte=1.793, smem_pj_per_byte=3.234, l2_pj_per_byte=39.97, dram_pj_per_byte=31.2,
        active_power_w=52.97, energy_source="calibrated on an H200's NVML energy",
        source="H100 SXM5: 132 SMs x 4 TCs x 512 FP16 FMA/clk at 1830 MHz = 989.4 TFLOPS (FP8 1979, TF32 494.7), "
               "3.35 TB/s HBM3, 50 MB L2, 228 KB smem (NVIDIA whitepapers/datasheets); L2 read bandwidth and latencies measured (L2_ACHIEVED_GBS, LATENCY_NS: the H200's and an H100 PCIe's); "
               "2:4 sparse tensor cores at twice the dense rate (1979 FP16 TFLOPS sparse, H100 whitepaper); idle 81 W: the "
               "H200's NVML reading (same GH100 die and board class; benchmarks/data/NVIDIA_H200_power.csv), no H100 "
               "idle reading found; 700 W (hpctech.co.jp H100 SXM5 specifications); per-event energies and active power "
               "calibrated on an H200 (same die) from NVML energy, analysis.gpu_calibration; 80 B transistors, 144 SMs on the "
               "full GH100 (H100 whitepaper); kernels sustain 2970 GB/s (STREAM triad, Azure ND H100 v5, "
               "github.com/Azure/AI-benchmarking-guide Azure_Results/ND_H100_v5_results.md)"),
}

# H200: H100 compute with faster, larger HBM3e
# static_power_w: the card's idle draw read by NVML on an H200 SXM after 2 s idle: 81.0 W
# (benchmarks/data/NVIDIA_H200_power.csv, benchmarks/gpu_matmul_timing.py; an earlier run
# of the same script on another H200 read 77.4 W)
PRESETS["h200"] = replace(
    PRESETS["h100"], name="h200", dram_gbs=4800, dram_efficiency=DRAM_ACHIEVED_GBS["h200"] / 4800, memory_gb=_memory_gb("h200"),
    static_power_w=81.0,
    source="H200 SXM: H100 compute with 4.8 TB/s HBM3e, 141 GB (NVIDIA H200 datasheet); idle 81 W and a 700 W "
           "power limit (NVML, benchmarks/data/NVIDIA_H200_power.csv); per-event energies and active power calibrated "
           "from NVML energy of two GEMMs (analysis.gpu_calibration); kernels sustain 4150 GB/s (STREAM triad, Azure ND "
           "H200 v5, github.com/Azure/AI-benchmarking-guide Azure_Results/ND_H200_v5_results.md)")
# A100 80GB: the same chip with 2,039 GB/s HBM2e
PRESETS["a100-80gb"] = replace(
    PRESETS["a100"], name="a100-80gb", dram_gbs=2039, dram_efficiency=DRAM_ACHIEVED_GBS["a100-80gb"] / 2039,
    memory_gb=_memory_gb("a100-80gb"),
    source="A100 SXM4 80GB: the A100 40GB's compute with 80 GB HBM2e at 2,039 GB/s (NVIDIA A100 datasheet); kernels "
           "sustain 1700 GB/s (STREAM triad on A100-SXM4-80GB, Azure ND A100 v4, github.com/Azure/AI-benchmarking-guide "
           "Azure_Results/ND_A100_v4_results.md)")

ARCH = GPUArch

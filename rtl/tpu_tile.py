"""A TPU-style matrix-unit tile in Amaranth 0.5, parameterised by ``sim.systolic.SystolicArch``.

After the TPU's matrix unit (Jouppi et al., ISCA 2017, Sec. 2 and Fig. 4): weights come
from DRAM through a weight FIFO (``prefetch_depth`` tiles; the TPU's is four deep), are
shifted into the array in R cycles under the stream of the fold before (double-buffered
weights), activations stream in skewed by row, and partial sums add up across K folds in
accumulators. One DRAM channel moves ``dram_bw_bytes_per_cycle`` bytes a cycle, one
transfer at a time. The tile's own control decides when each transfer and each fold starts;
the rules it implements are those of ``sim.systolic.timing`` (its docstring), and the
co-simulation (``rtl.tile_sim``) checks per fold that the cycles agree.

Boundary (what the harness provides): three read ports on a *program* (one fold
descriptor per fold, :func:`desc_layout`: what each fold moves and computes, made by
``sim.systolic.mapping``; never when it runs), the weight memory (DRAM's contents, one tile
row per address) and the activation buffer (one im2col row of a K tile per address: the
TPU's unified buffer, or the ifmap SRAM the DRAM channel fills). Every port is a memory
whose address register sits in the tile: the harness answers an address in the cycle it
appears. Each fold's DRAM load is one transfer of its bytes, weight rows first (the
channel's byte count says when each weight row has arrived and the FIFO writer fetches it
from the weight port, one row a cycle); activations are read from their buffer only once
their fold's load is complete. Results leave through ``o_*`` (one lane per column) as the
last K fold of a chunk accumulates them, and its store (``store`` bytes) is a DRAM transfer
requested when the fold's last result is in the accumulators. With ``emit_partial`` (an
observation port, for running a prefix of a program) every fold's partial sums leave too.

Per PE three weight registers: *transit* (the shift chain the next tile moves down), *shadow*
(the next tile, latched from the chain at its last shift) and *active* (the tile in use,
taken from the shadow by a swap bit that travels with a fold's first operand, so each PE
swaps exactly when that fold reaches it). Column j shifts j cycles after column 0, as the
operands reach it: a tile may start shifting once its load is done and the fold before has
started, and a fold streams R cycles after its tile began shifting (``timing``'s
``start >= done + preload``; "the double buffer frees at the previous start"). The
accumulators are the bottom row's output registers: column j adds its partial sum into
accumulator memory j in the cycle the bottom PE computes it, so a fold's last result is in
place ``T + R + cols_used - 2`` cycles after its stream began (``timing``'s latency). Not
``rtl.systolic.PE``: that PE holds one weight, and a double-buffered tile needs the two more.

Functional coverage (:data:`POINTS`): one 32-bit counter per point, counted from reset and
read through ``coverage`` (point k in bits ``32k`` to ``32k + 31``); with ``cover=True`` each
point is also an Amaranth ``Cover`` (for a formal tool; Amaranth's simulator does not count
covers, so the counters are what the runs report).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from sim.systolic.arch import SystolicArch
from sim.systolic.mapping import weight_group
from workloads.errors import HwsimError

from .require import MAX_ARRAY_PES, checked, require

__all__ = ["BUGS", "POINTS", "FBITS", "CBITS", "QBITS", "ABITS", "OBITS", "MAX_DEPTH", "TileConfig", "desc_layout",
           "tile_rule", "DBPE", "TpuTile", "unpack_coverage"]

# deliberate mutations, for tests that the co-simulation catches a broken tile: "late-shift"
# starts shifting a tile one cycle after its load is done (a timing bug); "no-first" adds a
# chunk's first K fold to whatever the accumulators held (a data bug)
BUGS = ("late-shift", "no-first")

# functional coverage points, in the order of the ``coverage`` port (one counter each)
POINTS: dict[str, str] = {
    "weight_stall": "cycles the array could take the next fold (stream free, R cycles since the last start) but its "
                    "weight tile is not in (the stall counter)",
    "late_start": "folds started later than the pipeline allows (after at least one weight_stall cycle)",
    "back_to_back": "folds started exactly max(T, R) after the previous start (no bubble)",
    "fifo_full": "cycles every weight FIFO slot holds a tile of a fold not yet started: the next load waits for a slot",
    "shift_overlap": "cycles the next weight tile shifts in while a fold streams (the double buffer in use)",
    "channel_idle": "cycles the DRAM channel moves nothing while a fold streams",
    "store_wait": "stores that wait for the channel (taken after the cycle they are requested)",
    "accumulate": "folds that add into partial sums already in the accumulators (K folds after a chunk's first)",
    "partial_k": "folds of a partial K tile (kt < R: array rows idle, zero weights shifted in)",
    "partial_n": "folds of a partial column tile (xt < C: array columns idle, no accumulator writes)",
    "short_stream": "folds that stream fewer rows than the array has (T < R: the R-cycle shift sets the pace)",
    "acc_overflow": "accumulator writes whose add wraps (a signed overflow at acc_bits; the result wraps, as the reference does)",
}

# Named assumptions: field widths (a program outside them is refused by rtl.layer before it runs)
FBITS = 20      # folds in one program < 2^20 (resnet18 layer1.0.conv1 on 8x8: 2,304)
CBITS = 32      # cycles of one program < 2^32 (the same layer on 8x8: about 2.4 million)
QBITS = 32      # one transfer's bytes x q (bandwidth = p / q bytes a cycle) < 2^32
ABITS = 24      # rows of the weight memory and the activation buffer < 2^24 (the layer on 16x16: 112,896)
OBITS = 24      # output elements < 2^24 (layer1.0.conv1: 200,704)
MAX_DEPTH = 16  # policy: the weight FIFO slots the tile builds (the TPU's FIFO: 4; sim allows any)


def _bw(bw: float) -> Fraction:
    """The channel's rate as ``sim.systolic.timing`` reads it (``_bw``: a fraction p / q)."""
    return Fraction(bw).limit_denominator(1 << 20)


def chunk_rows(arch: SystolicArch) -> int:
    """Rows of partial sums that fit the active half of the accumulators: the streamed length
    of one chunk, as ``sim.systolic.mapping.folds`` cuts it (``t_max``)."""
    return max(1, int(arch.ofmap_sram_kib * 1024 / 2 // (arch.cols * arch.acc_bits / 8)))


@dataclass(frozen=True)
class TileConfig:
    """What the hardware is built with, from the arch."""

    R: int
    C: int
    wb: int          # operand bits
    ab: int          # accumulator bits
    depth: int       # weight FIFO slots (prefetch_depth)
    p: int           # the channel moves p / q bytes a cycle
    q: int
    t_max: int       # accumulator rows per column (one chunk)
    sq: int          # store queue entries

    @classmethod
    def of(cls, arch: SystolicArch) -> "TileConfig":
        bw = _bw(arch.dram_bw_bytes_per_cycle)
        d = arch.prefetch_depth
        # pending stores: those requested since the load of the next fold to start was
        # requested (a fold starts only once every earlier request is served): at most the
        # depth folds started since, plus the folds in flight at once (a fold lasts T + R +
        # C - 2 cycles and the next starts max(T, R) later: 2 + (C - 2) / R of them)
        return cls(arch.rows, arch.cols, arch.word_bits, arch.acc_bits, d, bw.numerator, bw.denominator,
                   chunk_rows(arch), d + 3 + arch.cols // arch.rows)


def desc_layout(cfg: TileConfig) -> data.StructLayout:
    """One fold's descriptor: its stream length ``T``, the rows (``kt``) and columns (``xt``)
    of its weight tile, whether it is the first/last K fold of its chunk, the DRAM bytes x q
    of its load, of one weight row (``wrow``) and of its store, and where its weight tile
    (``wbase``), activations (``abase``) and outputs (``obase``, row stride ``ostride``) are."""
    return data.StructLayout({
        "T": range(cfg.t_max + 1), "kt": range(cfg.R + 1), "xt": range(cfg.C + 1), "first": 1, "last": 1,
        "load": QBITS, "wrow": QBITS, "store": QBITS, "wbase": ABITS, "abase": ABITS, "obase": OBITS,
        "ostride": OBITS})


def _ctl_layout(cfg: TileConfig) -> data.StructLayout:
    """What travels with each streamed row to the bottom of the array, column by column."""
    return data.StructLayout({"valid": 1, "row": _idx(cfg.t_max), "first": 1, "last": 1, "eof": 1,
                              "xt": range(cfg.C + 1), "oaddr": OBITS, "store": QBITS})


def tile_rule(arch: Any) -> None:
    """What the tile implements of a ``SystolicArch`` (one-line HwsimError otherwise)."""
    require("TPU tile", arch,
            dataflow=(lambda v: v == "ws", "the weight-stationary dataflow (ws) only, the TPU's"),
            word_bits=(lambda v: v in (8, 16, 32), "operands of 8, 16 or 32 bits (whole bytes on the DRAM channel)"),
            acc_bits=(lambda v: arch.word_bits <= v <= 64, "accumulators of word_bits to 64 bits"),
            prefetch_depth=(lambda v: 1 <= v <= MAX_DEPTH, f"a weight FIFO of 1 to {MAX_DEPTH} tiles"),
            decoupled_weight_reads=(lambda v: not v, "one op from a cold start (false): a head start comes from "
                                    "the ops before, which the tile does not run"),
            host_link_bytes_per_cycle=(lambda v: v == 0, "no host link (0): the tile runs one op on its DRAM channel"))
    if weight_group(arch, 2) > 1:
        raise HwsimError(f"{arch.name}: pe_reg_bytes: the TPU tile RTL holds one weight tile per PE in use, not a "
                         f"weight register file of {arch.pe_reg_bytes['weight']:g} bytes")
    if arch.rows * arch.cols > MAX_ARRAY_PES:
        raise HwsimError(f"{arch.name}: rows x cols: the TPU tile RTL elaborates at most {MAX_ARRAY_PES} PEs "
                         f"(64 x 64), got {arch.rows} x {arch.cols}")
    bw = _bw(arch.dram_bw_bytes_per_cycle)
    # named assumption: the channel adds p (bytes x q) a cycle to its QBITS-wide count, so p
    # stays far below 2^QBITS; 65,536 is far above any DRAM channel (tpu-v1: 340/7)
    if bw.numerator >= 1 << 16:
        raise HwsimError(f"{arch.name}: dram_bw_bytes_per_cycle: the TPU tile RTL takes a rate p/q with p < 65536, "
                         f"got {bw}")


class DBPE(wiring.Component):
    """A PE with double-buffered weights (module docstring): ``sum = psum_in + a_in * w``
    where ``w`` is the shadow weight in the cycle the swap bit arrives, else the active one."""

    def __init__(self, word_bits: int = 8, acc_bits: int = 32):
        self.wb, self.ab = word_bits, acc_bits
        super().__init__({
            "a_in": In(signed(word_bits)), "sw_in": In(1), "psum_in": In(signed(acc_bits)),
            "w_in": In(signed(word_bits)), "shift": In(1), "latch": In(1),
            "a_out": Out(signed(word_bits)), "sw_out": Out(1), "psum_out": Out(signed(acc_bits)),
            "w_out": Out(signed(word_bits)), "sum": Out(signed(acc_bits))})

    def elaborate(self, platform):
        m = Module()
        transit, shadow, active = (Signal(signed(self.wb), name=n) for n in ("transit", "shadow", "active"))
        with m.If(self.shift):
            m.d.sync += transit.eq(self.w_in)
        with m.If(self.latch):
            m.d.sync += shadow.eq(self.w_in)
        with m.If(self.sw_in):
            m.d.sync += active.eq(shadow)
        w = Mux(self.sw_in, shadow, active)
        m.d.comb += [self.sum.eq(self.psum_in + self.a_in * w), self.w_out.eq(transit)]
        m.d.sync += [self.a_out.eq(self.a_in), self.sw_out.eq(self.sw_in), self.psum_out.eq(self.sum)]
        return m


def _idx(n: int) -> range:
    """An index below ``n`` (at least one bit wide: a 0-bit signal exports as ``[-1:0]``)."""
    return range(max(n, 2))


def _delayed(m: Module, sig: Any, n: int, name: str) -> Any:
    """``sig`` delayed ``n`` cycles through registers."""
    for k in range(n):
        r = Signal(sig.shape(), name=f"{name}_d{k + 1}")
        m.d.sync += r.eq(sig)
        sig = r
    return sig


class TpuTile(wiring.Component):
    """The tile (module docstring). ``checks``: Amaranth ``Assert``s on its invariants (for
    Amaranth's simulator); every backend also sees them as the sticky ``error`` output."""

    def __init__(self, arch: SystolicArch, bug: str | None = None, checks: bool = True, cover: bool = False):
        checked(self, tile_rule, arch)
        if bug is not None and bug not in BUGS:
            self._MustUse__silence = True
            raise HwsimError(f"unknown tile bug {bug!r}; one of {', '.join(BUGS)}")
        self.arch, self.bug, self.checks, self.cover = arch, bug, checks, cover
        self.cfg = cfg = TileConfig.of(arch)
        self.desc = desc_layout(cfg)
        R, C = cfg.R, cfg.C
        super().__init__({
            "n_folds": In(FBITS), "emit_partial": In(1),
            "p_ch_addr": Out(FBITS), "p_ch": In(self.desc),      # the channel's next load
            "p_wr_addr": Out(FBITS), "p_wr": In(self.desc),      # the FIFO writer's fold
            "p_ar_addr": Out(FBITS), "p_ar": In(self.desc),      # the next fold to shift in and start
            "w_addr": Out(ABITS), "w_data": In(C * cfg.wb),
            "a_addr": Out(ABITS), "a_data": In(R * cfg.wb),
            "o_valid": Out(C), "o_addr": Out(C * OBITS), "o_data": Out(C * cfg.ab),
            "started": Out(1), "stalls": Out(CBITS), "done": Out(1), "error": Out(1),
            "coverage": Out(len(POINTS) * CBITS)})
        self.pes = [[DBPE(cfg.wb, cfg.ab) for _ in range(C)] for _ in range(R)]
        for pe in (pe for row in self.pes for pe in row):
            pe._MustUse__silence = True

    def _check(self, m: Module, bad: Any, what: str, err: Any) -> None:
        """``bad`` must never hold: an Assert (simulator) and the sticky error flag (all backends)."""
        with m.If(bad):
            m.d.sync += err.eq(1)
        if self.checks:
            m.d.sync += Assert(~bad, what)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        R, C, wb, ab, D, P = cfg.R, cfg.C, cfg.wb, cfg.ab, cfg.depth, cfg.p
        F = self.n_folds
        err = Signal()
        now = Signal(CBITS)
        m.d.sync += now.eq(now + 1)
        self._check(m, now == (1 << CBITS) - 1, "cycle counter wraps", err)

        # ---- the DRAM channel: loads in fold order, stores in request order ---------------------
        busy, cur_load = Signal(), Signal()
        cur_fold, lnext, ldone, nstart = (Signal(FBITS, name=n) for n in ("cur_fold", "lnext", "ldone", "nstart"))
        need, moved = Signal(QBITS), Signal(QBITS)
        ring = Array(Signal(CBITS, name=f"start_ring_{i}") for i in range(D))   # start cycles of the last D folds
        ring_rd, ring_wr = Signal(_idx(D)), Signal(_idx(D))                     # lnext % D, nstart % D
        SQ = cfg.sq
        sq_e = Array(Signal(CBITS, name=f"sq_e_{i}") for i in range(SQ))          # request cycle
        sq_b = Array(Signal(QBITS, name=f"sq_b_{i}") for i in range(SQ))          # bytes x q
        sq_head, sq_tail, sq_n = Signal(_idx(SQ)), Signal(_idx(SQ)), Signal(range(SQ + 1))
        m.d.comb += self.p_ch_addr.eq(lnext)
        # a load is requested at cycle 0 for the first D folds, else when fold lnext - D starts
        load_ok = (lnext < F) & (lnext < nstart + D)
        rl = Mux(lnext < D, 0, ring[ring_rd])
        head_e = sq_e[sq_head]
        store_ok = (sq_n != 0) & (head_e <= now)
        take_load = Signal()
        m.d.comb += take_load.eq(~busy & load_ok & (~store_ok | (rl <= head_e)))    # loads first at a tie
        take_store = ~busy & store_ok & ~take_load
        new_need = Mux(take_load, self.p_ch.load, sq_b[sq_head])
        pop = Signal()
        m.d.comb += pop.eq(take_store)
        self._check(m, take_load & (self.p_ch.load == 0), "a load moves its weight tile: never 0 bytes", err)
        with m.If(busy):
            with m.If(need <= moved + P):
                m.d.sync += busy.eq(0)
                with m.If(cur_load):
                    m.d.sync += ldone.eq(ldone + 1)
            with m.Else():
                m.d.sync += moved.eq(moved + P)
        with m.Elif(take_load | take_store):
            with m.If(new_need <= P):
                with m.If(take_load):
                    m.d.sync += ldone.eq(ldone + 1)
            with m.Else():
                m.d.sync += [busy.eq(1), need.eq(new_need), moved.eq(P), cur_load.eq(take_load), cur_fold.eq(lnext)]
            with m.If(take_load):
                m.d.sync += [lnext.eq(lnext + 1), ring_rd.eq(Mux(ring_rd == D - 1, 0, ring_rd + 1))]
        # the bytes of the load in transfer after this cycle: the FIFO writer's pace
        cov_valid = (busy & cur_load) | take_load
        cov_fold = Mux(busy, cur_fold, lnext)
        cov_bytes = Mux(busy, moved + P, P)

        # ---- the weight FIFO and its writer ---------------------------------------------------------
        m.submodules.fifo = fifo = memory.Memory(shape=unsigned(C * wb), depth=D * R, init=[])
        f_rd, f_wr = fifo.read_port(domain="comb"), fifo.write_port()
        valid = Array(Signal(name=f"fifo_valid_{i}") for i in range(D * R))
        wfold, wslot, wi = Signal(FBITS), Signal(_idx(D)), Signal(range(R + 1))
        wacc = Signal(QBITS + 1)
        wp_valid, wp_slot, wp_row = Signal(), Signal(_idx(D)), Signal(_idx(R))
        m.d.comb += self.p_wr_addr.eq(wfold)
        thr = wacc + self.p_wr.wrow
        w_go = (wfold < F) & ((ldone > wfold) | (cov_valid & (cov_fold == wfold) & (cov_bytes >= thr)))
        row_w = self.p_wr.kt - 1 - wi
        m.d.sync += wp_valid.eq(w_go)
        with m.If(w_go):
            m.d.sync += [self.w_addr.eq(self.p_wr.wbase + row_w), wp_slot.eq(wslot), wp_row.eq(row_w)]
            with m.If(wi + 1 == self.p_wr.kt):
                m.d.sync += [wfold.eq(wfold + 1), wi.eq(0), wacc.eq(0), wslot.eq(Mux(wslot == D - 1, 0, wslot + 1))]
            with m.Else():
                m.d.sync += [wi.eq(wi + 1), wacc.eq(thr)]
        m.d.comb += [f_wr.addr.eq(wp_slot * R + wp_row), f_wr.data.eq(self.w_data), f_wr.en.eq(wp_valid)]
        with m.If(wp_valid):
            m.d.sync += valid[wp_slot * R + wp_row].eq(1)

        # ---- shifting the next tile in (fold nstart) ------------------------------------------------
        shifting, shifted = Signal(), Signal()
        u = Signal(_idx(R))
        sslot = Signal(_idx(D))
        m.d.comb += self.p_ar_addr.eq(nstart)
        ready = ldone > nstart
        if self.bug == "late-shift":
            late = Signal()
            m.d.sync += late.eq(ready)
            ready = late & ready
        s_go = ~shifting & ~shifted & (nstart < F) & ready
        sh_now = s_go | shifting
        ue = Mux(shifting, u, 0)
        row = R - 1 - ue
        in_tile = row < self.p_ar.kt
        rd_addr = sslot * R + row
        fwd = wp_valid & (wp_slot == sslot) & (wp_row == row)
        m.d.comb += f_rd.addr.eq(rd_addr)
        feed = Signal(C * wb)
        m.d.comb += feed.eq(Mux(sh_now & in_tile, Mux(fwd, self.w_data, f_rd.data), 0))
        self._check(m, sh_now & in_tile & ~(valid[rd_addr] | fwd), "a weight row shifts in before it arrived", err)
        shift_last = sh_now & (ue == R - 1)
        with m.If(sh_now):
            with m.If(in_tile):
                m.d.sync += valid[rd_addr].eq(0)
            with m.If(ue == R - 1):
                m.d.sync += [shifting.eq(0), shifted.eq(1)]
            with m.Else():
                m.d.sync += [shifting.eq(1), u.eq(ue + 1)]

        if self.checks:         # the program's contract: every fold in range is a tile the array holds
            for port, idx in ((self.p_ch, lnext), (self.p_wr, wfold), (self.p_ar, nstart)):
                ok = []
                for name, top in (("T", cfg.t_max), ("kt", R), ("xt", C)):
                    v = getattr(port, name)
                    ok.append(v != 0)
                    if (1 << len(v)) - 1 > top:         # (a comparison its width already decides is left out)
                        ok.append(v <= top)
                with m.If(idx < F):
                    m.d.sync += Assume(Cat(*ok).all(), "a fold's descriptor is in range")

        # ---- the stream and the fold starts -------------------------------------------------------
        streaming = Signal()
        tau = Signal(_idx(cfg.t_max))
        cur = Signal(self.desc)                 # the streaming fold's descriptor
        oacc = Signal(OBITS)
        since = Signal(range(R + 1))            # cycles since the last start, up to R
        stalls = Signal(CBITS)
        last_tau = tau == cur.T - 1
        go = Signal()
        m.d.comb += go.eq((shifted | shift_last) & (~streaming | last_tau) & (nstart < F))
        # a stall: the pipeline would take the next fold (the stream is free and R cycles
        # passed since the last start, or since cycle 0 for the first), but its tile is not in
        stall_now = Signal()
        m.d.comb += stall_now.eq((nstart < F) & ~streaming & (since == R))
        m.d.sync += since.eq(Mux(since == R, R, since + 1))
        with m.If(stall_now):
            m.d.sync += stalls.eq(stalls + 1)
        m.d.comb += self.stalls.eq(stalls)
        with m.If(streaming):
            m.d.sync += [self.a_addr.eq(self.a_addr + 1), oacc.eq(oacc + cur.ostride), tau.eq(Mux(last_tau, 0, tau + 1))]
            with m.If(last_tau):
                m.d.sync += streaming.eq(0)
        m.d.sync += self.started.eq(go)
        with m.If(go):
            m.d.sync += [nstart.eq(nstart + 1), ring[ring_wr].eq(now + 1), ring_wr.eq(Mux(ring_wr == D - 1, 0, ring_wr + 1)),
                         shifted.eq(0), sslot.eq(Mux(sslot == D - 1, 0, sslot + 1)), streaming.eq(1), tau.eq(0),
                         cur.eq(self.p_ar), self.a_addr.eq(self.p_ar.abase), oacc.eq(self.p_ar.obase), since.eq(0)]

        # ---- the array: skewed operand rows, skewed weight columns -----------------------------------
        a_lane = [Mux(streaming, self.a_data[i * wb:(i + 1) * wb], 0) for i in range(R)]
        swap = streaming & (tau == 0)
        pes = self.pes
        for i in range(R):
            a_i = Signal(signed(wb), name=f"row_{i}_a")
            m.d.comb += a_i.eq(a_lane[i])
            a_i = _delayed(m, a_i, i, f"row_{i}_a")
            sw_i = _delayed(m, swap, i, f"row_{i}_sw")
            for j in range(C):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [pe.a_in.eq(a_i if j == 0 else pes[i][j - 1].a_out),
                             pe.sw_in.eq(sw_i if j == 0 else pes[i][j - 1].sw_out),
                             pe.psum_in.eq(0 if i == 0 else pes[i - 1][j].psum_out)]
        for j in range(C):
            top = Signal(signed(wb), name=f"col_{j}_w")
            m.d.comb += top.eq(feed[j * wb:(j + 1) * wb])
            top = _delayed(m, top, j, f"col_{j}_w")
            sh_j = _delayed(m, sh_now, j, f"col_{j}_shift")
            lt_j = _delayed(m, shift_last, j, f"col_{j}_latch")
            for i in range(R):
                pe = pes[i][j]
                m.d.comb += [pe.w_in.eq(top if i == 0 else pes[i - 1][j].w_out), pe.shift.eq(sh_j), pe.latch.eq(lt_j)]

        # ---- the bottom: control delayed to each column, accumulators, outputs, fold ends ------------
        ctl_l = _ctl_layout(cfg)
        ctl = Signal(ctl_l)
        m.d.comb += [ctl.valid.eq(streaming), ctl.row.eq(tau), ctl.first.eq(cur.first), ctl.last.eq(cur.last),
                     ctl.eof.eq(last_tau), ctl.xt.eq(cur.xt), ctl.oaddr.eq(oacc), ctl.store.eq(cur.store)]
        col = _delayed(m, ctl, R - 1, "ctl")
        ended = Signal(FBITS)
        events, stores, overflows = [], [], []
        for j in range(C):
            if j:
                col = _delayed(m, col, 1, f"ctl_{j}")
            mem = memory.Memory(shape=unsigned(ab), depth=cfg.t_max, init=[])
            m.submodules[f"acc_{j}"] = mem
            rd, wr = mem.read_port(domain="comb"), mem.write_port()
            en = col.valid & (j < col.xt)
            prev = Signal(signed(ab), name=f"acc_{j}_prev")
            m.d.comb += prev.eq(rd.data.as_signed() if self.bug == "no-first" else Mux(col.first, 0, rd.data.as_signed()))
            total = Signal(signed(ab), name=f"acc_{j}_sum")
            m.d.comb += [rd.addr.eq(col.row), total.eq(prev + pes[R - 1][j].sum),
                         wr.addr.eq(col.row), wr.data.eq(total), wr.en.eq(en)]
            m.d.sync += [self.o_valid[j].eq(en & (col.last | self.emit_partial)), self.o_addr[j * OBITS:(j + 1) * OBITS].eq(col.oaddr + j),
                         self.o_data[j * ab:(j + 1) * ab].eq(total)]
            ov = Signal(name=f"acc_{j}_overflow")      # operands of one sign, a sum of the other
            m.d.comb += ov.eq(en & (prev[-1] == pes[R - 1][j].sum[-1]) & (total[-1] != prev[-1]))
            overflows.append(ov)
            ev = Signal(name=f"fold_end_{j}")
            m.d.comb += ev.eq(en & col.eof & (j == col.xt - 1))
            events.append(ev)
            stores.append(col.store)
        m.d.sync += ended.eq(ended + sum(events))
        # a fold's store is requested in the cycle after its last result is accumulated
        store_sel = Signal(QBITS)
        for ev, st in zip(events, stores):
            with m.If(ev & (st != 0)):
                m.d.comb += store_sel.eq(st)
        ev_bits = Cat(*(ev & (st != 0) for ev, st in zip(events, stores)))
        push = ev_bits.any()
        self._check(m, (ev_bits & (ev_bits - 1)).any(), "two stores requested in one cycle", err)
        self._check(m, push & ~pop & (sq_n == SQ), "the store queue overflows", err)
        with m.If(push):
            m.d.sync += [sq_e[sq_tail].eq(now + 1), sq_b[sq_tail].eq(store_sel),
                         sq_tail.eq(Mux(sq_tail == SQ - 1, 0, sq_tail + 1))]
        with m.If(pop):
            m.d.sync += sq_head.eq(Mux(sq_head == SQ - 1, 0, sq_head + 1))
        m.d.sync += sq_n.eq(sq_n + push - pop)
        m.d.comb += [self.done.eq((ended == F) & ~busy & (ldone == F) & (sq_n == 0)), self.error.eq(err)]

        # ---- functional coverage (POINTS): a counter per point, optionally a Cover ----------------
        stall_seen = Signal()                   # a weight_stall cycle since the last start
        m.d.sync += stall_seen.eq(~go & (stall_seen | stall_now))
        ovf = Cat(*overflows)
        hits = {
            "late_start": go & (stall_seen | stall_now),
            # the start (the cycle after go) is the last one's + R (since = R - 1: T <= R), or the
            # cycle after its stream (T > R; go needs the shift, R cycles from the last start)
            "back_to_back": go & (nstart != 0) & ((since == R - 1) | (streaming & last_tau)),
            "fifo_full": (lnext < F) & (lnext == nstart + D),
            "shift_overlap": sh_now & streaming,
            "channel_idle": streaming & ~busy & ~take_load & ~take_store,
            "store_wait": take_store & (head_e != now),
            "accumulate": go & ~self.p_ar.first,
            "partial_k": go & (self.p_ar.kt != R),
            "partial_n": go & (self.p_ar.xt != C),
            "short_stream": go & (self.p_ar.T < R),
        }
        counters = []
        for name in POINTS:
            if name == "weight_stall":
                cnt, hit = stalls, stall_now
            else:
                cnt = Signal(CBITS, name=f"cov_{name}")
                inc = sum(overflows) if name == "acc_overflow" else hits[name]
                hit = ovf.any() if name == "acc_overflow" else hits[name]
                m.d.sync += cnt.eq(cnt + inc)
            counters.append(cnt)
            if self.cover:
                m.d.comb += Cover(hit)      # (no message: Amaranth's simulator would print every hit)
        m.d.comb += self.coverage.eq(Cat(*counters))
        return m


def unpack_coverage(value: int) -> dict[str, int]:
    """The ``coverage`` port's value as {point: hits}, in :data:`POINTS` order."""
    mask = (1 << CBITS) - 1
    return {name: value >> (CBITS * k) & mask for k, name in enumerate(POINTS)}

"""An EIE array in Amaranth 0.5: the PEs with their activation queues and pointer banks,
and the central unit that finds and broadcasts the non-zero activations (Han et al., ISCA
2016, Sec. IV), parameterised by ``sim.eie.EIEArch``; :mod:`rtl.eie_layer` runs a layer on it.

Per cycle, as ``sim.eie.engine`` models it (and as the paper describes the hardware):

* **Central unit.** The activations sit in an activation memory; a register of non-zero
  flags is kept beside it (each write of an activation sets its flag: the leaves of the
  leading-non-zero-detection tree). ``start`` copies the flags into the LNZD's mask; a
  four-wise LNZD tree (the paper's) names the first non-zero left each cycle, and it is
  broadcast, with its column index, to every PE, only in a cycle in which every PE has
  room in its queue ("the broadcast is disabled if any PE has a full queue"); the
  broadcast clears its mask bit. The first broadcast is cycle 0.
* **PE: activation queue.** ``queue_depth`` slots (registers). A broadcast enters the
  queue at the end of its cycle and can be started in the next. An activation keeps its
  slot until its column's last entry is processed; the slot frees in that cycle, and a
  broadcast in the same cycle may take it (``room``).
* **PE: pointer read.** An idle PE takes the head of its queue and reads the column's
  start and end pointers p_j and p_j+1 in the same cycle from two single-ported banks,
  even and odd: "we store pointers in two SRAM banks and use the LSB of the address to
  select between banks. p_j and p_j+1 will always be in different banks" (Sec. IV). A
  column without entries on this PE costs this one cycle.
* **PE: sparse-matrix read and arithmetic.** The column's ``(v, z)`` entries stream one a
  cycle (the first overlapped with the pointer read) into four stages: (1) codebook lookup
  of ``v`` and the running row index (``z`` + 1 past the last row); (2) multiply by the
  activation, shifted right by the codebook's fraction bits; (3) add to the destination
  register, with the paper's bypass "if the same accumulator is selected on two adjacent
  cycles"; (4) write. Padding entries (``v = 0``) flow like any entry (they add zero).
  Each cycle of work (an entry, or the pointer read of an empty column) sends a token
  down the four stages; the pass ends when every token has left: ``sim.eie``'s count,
  first broadcast to the last work's write-back cycle, inclusive.
* **Readout.** The destination registers are ``acc_bits`` wide (guard bits above the
  ``act_bits`` output); an output is read saturated to ``act_bits``, as ``sim.eie`` clips.

The memories are initialised from an image of the layer (``image``), or written through
the load port (the paper's I/O mode, in which "all of the PEs are idle while the
activations and weights in every PE can be accessed by a DMA"): with no image, one
compiled model serves every layer of its geometry.

Performance and coverage counters (``STATS``, ``CCU_STATS``) count cycles, busy cycles and
the functional-coverage points (see :data:`POINTS`); they are cleared by ``start`` and read
through ``st_*``. With ``cover=True`` each point is also an Amaranth ``Cover`` (for a
formal tool; Amaranth's simulator only prints covers, so the counters are what count).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Cover
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sim.eie.arch import EIEArch
from workloads.errors import HwsimError

__all__ = ["Geometry", "PEImage", "EIELayerPE", "EIELayer", "STATS", "CCU_STATS", "POINTS", "BUGS", "MEM",
           "MAX_PES", "MAX_QUEUE", "COUNTER_BITS", "require_layer"]

# per-PE counters, in st_sel order: busy cycles, entries taken, then the coverage points
STATS = ("busy", "entries", "queue_full", "queue_empty", "ptr_even", "ptr_odd", "empty_column", "padding",
         "same_row", "guard_bits")
# central-unit counters (st_pe = num_pes)
CCU_STATS = ("cycles", "broadcasts", "broadcast_stall", "lnzd_skip")
POINTS: dict[str, str] = {
    "queue_full": "a PE's queue is full (no slot freeing) while the central unit holds a non-zero: it stalls the broadcast",
    "queue_empty": "a PE idles with an empty queue while the central unit holds a non-zero (starved)",
    "ptr_even": "a column starts at a pointer of the even bank (its end pointer from the odd one)",
    "ptr_odd": "a column starts at a pointer of the odd bank (its end pointer from the even one)",
    "empty_column": "a column with no entries on the PE (the pointer-read cycle only)",
    "padding": "a padding entry (v = 0, a run of more than 2**zero_run_bits - 1 zeros)",
    "same_row": "two entries to the same destination register on adjacent cycles (the adder's bypass)",
    "guard_bits": "a weight's sum leaves the act_bits output range (the accumulator's guard bits in use)",
    "broadcast_stall": "the central unit holds a non-zero and some queue is full",
    "lnzd_skip": "a broadcast column is not the one after the last broadcast (the LNZD skipped zeros)",
}
# load-port targets (ld_mem)
MEM = {"ptr_even": 0, "ptr_odd": 1, "spmat": 2, "codebook": 3, "act": 4}
# deliberate mutations, for tests that the layer check catches a broken PE
BUGS = ("late-free", "no-bypass")
# Named assumptions: counters 32 bits (a pass of up to 4e9 cycles); at most 64 PEs and 64 queue
# slots, to bound elaboration time (every PE is a module of its own; Amaranth's Python
# simulator elaborates a few PEs a second)
COUNTER_BITS = 32
MAX_PES = 64
MAX_QUEUE = 64


@dataclass(frozen=True)
class Geometry:
    """What the hardware is sized for: ``cols`` activations (columns), ``rows`` destination
    registers used per PE (at most ``act_regs``), ``entries`` sparse-matrix words per PE."""

    num_pes: int
    cols: int
    rows: int
    entries: int
    acc_bits: int = 32


@dataclass(frozen=True)
class PEImage:
    """One PE's SRAM contents: column pointers (cols + 1), entries (v, z), the codebook."""

    ptr: tuple[int, ...]
    v: tuple[int, ...]
    z: tuple[int, ...]
    codebook: tuple[int, ...]


def require_layer(arch: EIEArch) -> None:
    """What the EIE array RTL implements of an ``EIEArch`` (``rtl.require`` style)."""
    from .require import eie_pe, require
    eie_pe(arch)
    require("EIE array", arch,
            num_pes=(lambda v: 1 <= v <= MAX_PES, f"1 to {MAX_PES} PEs (elaboration time)"),
            queue_depth=(lambda v: 1 <= v <= MAX_QUEUE, f"activation queues of 1 to {MAX_QUEUE} slots"),
            index_bits=(lambda v: 1 <= v <= 8, "codebook indices of 1 to 8 bits"),
            zero_run_bits=(lambda v: 1 <= v <= 8, "relative row indices of 1 to 8 bits"),
            pointer_bits=(lambda v: v <= 32, "pointers of at most 32 bits"))


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


class EIELayerPE(wiring.Component):
    """One PE: queue, pointer banks, sparse-matrix memory, codebook, four-stage pipeline."""

    def __init__(self, arch: EIEArch, geom: Geometry, image: PEImage | None = None, bug: str | None = None,
                 cover: bool = False):
        from .require import checked
        checked(self, require_layer, arch)
        if bug is not None and bug not in BUGS:
            self._MustUse__silence = True
            raise HwsimError(f"unknown EIE PE bug {bug!r}; one of {', '.join(BUGS)}")
        self.arch, self.geom, self.image, self.bug, self.cover = arch, geom, image, bug, cover
        self.col_bits = max(2, _bits(geom.cols))
        self.depth = max(1, geom.entries)
        self.ld_bits = max(arch.pointer_bits, arch.act_bits, arch.weight_bits, arch.entry_bits)
        self.addr_bits = max(_bits(self.depth), _bits(geom.cols // 2 + 1), arch.index_bits, _bits(geom.cols))
        super().__init__({
            "push_valid": In(1), "push_a": In(signed(arch.act_bits)), "push_col": In(unsigned(self.col_bits)),
            "pending": In(1), "clear": In(1),
            "ld_en": In(1), "ld_mem": In(3), "ld_addr": In(self.addr_bits), "ld_data": In(self.ld_bits),
            "rd_addr": In(range(max(1, geom.rows))), "rd_data": Out(signed(arch.act_bits)),
            "st_sel": In(range(len(STATS))), "st_data": Out(COUNTER_BITS),
            "room": Out(1), "idle": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        arch, g, img = self.arch, self.geom, self.image
        D, ab, ib, zb = arch.queue_depth, arch.act_bits, arch.index_bits, arch.zero_run_bits
        rows = max(1, g.rows)
        ptr = list(img.ptr) if img else [0] * (g.cols + 1)
        # ---- memories: two pointer banks, the sparse matrix (z above v), the codebook
        m.submodules.ptr_even = ev_mem = Memory(shape=unsigned(arch.pointer_bits), depth=g.cols // 2 + 1,
                                                init=ptr[0::2])
        m.submodules.ptr_odd = od_mem = Memory(shape=unsigned(arch.pointer_bits), depth=max(1, (g.cols + 1) // 2),
                                               init=ptr[1::2] or [0])
        words = [(z << ib) | v for v, z in zip(img.v, img.z)] if img else []
        m.submodules.spmat = sp_mem = Memory(shape=unsigned(arch.entry_bits), depth=self.depth, init=words)
        m.submodules.codebook = cb_mem = Memory(shape=signed(arch.weight_bits), depth=1 << ib,
                                                init=list(img.codebook) if img else [])
        for key, mem in (("ptr_even", ev_mem), ("ptr_odd", od_mem), ("spmat", sp_mem), ("codebook", cb_mem)):
            wp = mem.write_port()
            m.d.comb += [wp.en.eq(self.ld_en & (self.ld_mem == MEM[key])), wp.addr.eq(self.ld_addr),
                         wp.data.eq(self.ld_data)]
        ev, od, mat, cbr = (mem.read_port(domain="comb") for mem in (ev_mem, od_mem, sp_mem, cb_mem))

        # ---- activation queue: an activation holds its slot until its column is done
        q_a = Array(Signal(signed(ab), name=f"q_a{i}") for i in range(D))
        q_c = Array(Signal(unsigned(self.col_bits), name=f"q_c{i}") for i in range(D))
        head, tail, count = Signal(range(D)), Signal(range(D)), Signal(range(D + 1))
        remaining = Signal(range(self.depth + 2))
        addr = Signal(range(self.depth + 1))
        row = Signal(range(rows + (1 << zb) + 1))
        a_cur = Signal(signed(ab))
        pop, take, done, busy = Signal(), Signal(), Signal(), Signal()
        n_col = Signal(range(self.depth + 2))
        e_addr, e_a, e_row = Signal.like(addr), Signal(signed(ab)), Signal.like(row)

        # ---- pointer read: p_j and p_j+1 from different banks in one cycle
        j = q_c[head]
        odd = j[0]
        half = j[1:]
        m.d.comb += [ev.addr.eq(Mux(odd, half + 1, half)), od.addr.eq(half)]
        p_start, p_end = Mux(odd, od.data, ev.data), Mux(odd, ev.data, od.data)
        m.d.comb += [
            pop.eq((remaining == 0) & (count != 0)),
            n_col.eq(p_end - p_start),
            take.eq(Mux(pop, n_col != 0, remaining != 0)),
            e_addr.eq(Mux(pop, p_start, addr)),
            e_a.eq(Mux(pop, q_a[head], a_cur)),
            mat.addr.eq(e_addr),
            busy.eq(pop | (remaining != 0)),
            done.eq(Mux(pop, n_col <= 1, remaining == 1)),
        ]
        v, z = mat.data[:ib], mat.data[ib:ib + zb]
        m.d.comb += [e_row.eq(Mux(pop, z, row + z + 1)), cbr.addr.eq(v)]
        room = (count != D) if self.bug == "late-free" else ((count != D) | done)
        m.d.comb += [self.room.eq(room), self.busy.eq(busy)]

        with m.If(pop):
            m.d.sync += [head.eq(Mux(head == D - 1, 0, head + 1)), a_cur.eq(q_a[head]),
                         remaining.eq(Mux(n_col != 0, n_col - 1, 0))]
        with m.Elif(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        with m.If(take):
            m.d.sync += [addr.eq(e_addr + 1), row.eq(e_row)]
        with m.If(self.push_valid):
            m.d.sync += [q_a[tail].eq(self.push_a), q_c[tail].eq(self.push_col),
                         tail.eq(Mux(tail == D - 1, 0, tail + 1))]
        m.d.sync += count.eq(count + self.push_valid - done)

        # ---- pipeline: 1 lookup, 2 multiply, 3 add (bypass), 4 write; t* = work tokens
        # the destination registers: a register file, one read port for the adder, one for readout
        m.submodules.acc = acc_mem = Memory(shape=signed(g.acc_bits), depth=rows, init=[])
        acc_rd, acc_out, acc_wr = acc_mem.read_port(domain="comb"), acc_mem.read_port(domain="comb"), \
            acc_mem.write_port()
        t1, t2, t3 = Signal(), Signal(), Signal()
        s1_v, s1_real, s1_val, s1_a, s1_row = Signal(), Signal(), Signal(signed(arch.weight_bits)), \
            Signal(signed(ab)), Signal.like(row)
        m.d.sync += [t1.eq(busy), s1_v.eq(take), s1_real.eq(take & (v != 0)), s1_val.eq(cbr.data), s1_a.eq(e_a),
                     s1_row.eq(e_row)]
        s2_v, s2_real, s2_prod, s2_row = Signal(), Signal(), Signal(signed(g.acc_bits)), Signal.like(row)
        m.d.sync += [t2.eq(t1), s2_v.eq(s1_v), s2_real.eq(s1_real), s2_prod.eq((s1_val * s1_a) >> arch.weight_frac_bits),
                     s2_row.eq(s1_row)]
        s3_v, s3_real, s3_sum, s3_row = Signal(), Signal(), Signal(signed(g.acc_bits)), Signal.like(row)
        bypass = s3_v & s2_v & (s3_row == s2_row)
        m.d.comb += acc_rd.addr.eq(s2_row)
        old = acc_rd.data if self.bug == "no-bypass" else Mux(bypass, s3_sum, acc_rd.data)
        m.d.sync += [t3.eq(t2), s3_v.eq(s2_v), s3_real.eq(s2_real), s3_sum.eq(old + s2_prod), s3_row.eq(s2_row)]
        m.d.comb += [acc_wr.en.eq(s3_v), acc_wr.addr.eq(s3_row), acc_wr.data.eq(s3_sum)]
        m.d.comb += self.idle.eq((count == 0) & (remaining == 0) & ~t1 & ~t2 & ~t3)

        # ---- readout, saturated to act_bits
        lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
        m.d.comb += acc_out.addr.eq(self.rd_addr)
        out = acc_out.data
        m.d.comb += self.rd_data.eq(Mux(out > hi, hi, Mux(out < lo, lo, out)))

        # ---- counters and coverage points
        events = {
            "busy": busy, "entries": take,
            "queue_full": self.pending & ~room,
            "queue_empty": self.pending & ~busy,
            "ptr_even": pop & ~odd, "ptr_odd": pop & odd,
            "empty_column": pop & (n_col == 0),
            "padding": take & (v == 0),
            "same_row": bypass,
            "guard_bits": s3_v & s3_real & ((s3_sum > hi) | (s3_sum < lo)),
        }
        counters = [Signal(COUNTER_BITS, name=f"n_{name}") for name in STATS]
        for name, cnt in zip(STATS, counters):
            m.d.sync += cnt.eq(Mux(self.clear, 0, cnt + events[name]))
            if self.cover and name in POINTS:
                m.d.comb += Cover(events[name])
        m.d.comb += self.st_data.eq(Array(counters)[self.st_sel])
        return m


def _lnzd(m: Module, mask: Signal, n: int) -> tuple[Signal, Signal]:
    """The leading-non-zero detection tree, four-wise (Han et al., Sec. IV): each node passes
    up whether any of its four children holds a non-zero and the first such one's index."""
    level = [(mask[i], Const(i, _bits(n))) for i in range(n)]
    depth = 0
    while len(level) > 1:
        nxt = []
        for k in range(0, len(level), 4):
            kids = level[k:k + 4]
            any_, idx = Signal(name=f"lnzd{depth}_{k // 4}_v"), Signal(_bits(n), name=f"lnzd{depth}_{k // 4}_i")
            pick = kids[-1][1]
            for kv, ki in reversed(kids[:-1]):
                pick = Mux(kv, ki, pick)
            m.d.comb += [any_.eq(Cat(*(kv for kv, _ in kids)).any()), idx.eq(pick)]
            nxt.append((any_, idx))
        level, depth = nxt, depth + 1
    v, i = level[0]
    any_, idx = Signal(name="lnzd_v"), Signal(_bits(n), name="lnzd_i")
    m.d.comb += [any_.eq(v), idx.eq(i)]
    return any_, idx


class EIELayer(wiring.Component):
    """The array: ``num_pes`` PEs and the central unit. ``start`` runs one pass over the
    loaded activations; ``done`` rises when every PE is idle and drained; outputs are read
    through ``rd_*`` (row ``rd_addr`` of PE ``rd_pe``: output row ``rd_addr * P + rd_pe``),
    counters through ``st_*`` (PE ``st_pe``; ``st_pe = num_pes``: the central unit's)."""

    def __init__(self, arch: EIEArch, geom: Geometry, images: list[PEImage] | None = None,
                 acts: list[int] | None = None, bug: str | None = None, cover: bool = False):
        from .require import checked
        checked(self, require_layer, arch)
        P = arch.num_pes
        if geom.num_pes != P or (images is not None and len(images) != P):
            self._MustUse__silence = True
            raise HwsimError(f"the geometry and images are for {geom.num_pes} PEs, the arch has {P}")
        self.arch, self.geom, self.acts = arch, geom, acts
        try:
            self.pes = [EIELayerPE(arch, geom, images[k] if images else None, bug, cover) for k in range(P)]
        except HwsimError:
            self._MustUse__silence = True
            raise
        for pe in self.pes:
            pe._MustUse__silence = True       # used when the array is
        pe0 = self.pes[0]
        super().__init__({
            "start": In(1), "done": Out(1),
            "ld_en": In(1), "ld_pe": In(range(P)), "ld_mem": In(3), "ld_addr": In(pe0.addr_bits),
            "ld_data": In(pe0.ld_bits),
            "rd_pe": In(range(P)), "rd_addr": In(range(max(1, geom.rows))), "rd_data": Out(signed(arch.act_bits)),
            "st_pe": In(range(P + 1)), "st_sel": In(range(max(len(STATS), len(CCU_STATS)))),
            "st_data": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        arch, g = self.arch, self.geom
        P, K = arch.num_pes, g.cols
        acts = list(self.acts) if self.acts is not None else []
        m.submodules.acts = act_mem = Memory(shape=signed(arch.act_bits), depth=K, init=acts)
        wp = act_mem.write_port()
        is_act = self.ld_en & (self.ld_mem == MEM["act"])
        m.d.comb += [wp.en.eq(is_act), wp.addr.eq(self.ld_addr), wp.data.eq(self.ld_data)]
        rp = act_mem.read_port(domain="comb")
        # the LNZD's leaves: one non-zero flag per activation, set as the activation is written
        nz = Signal(K, init=sum(1 << i for i, a in enumerate(acts) if a))
        with m.If(is_act):
            m.d.sync += nz.bit_select(self.ld_addr, 1).eq(self.ld_data[:arch.act_bits] != 0)
        mask = Signal(K)
        m.submodules.lnzd = lnzd = Module()
        any_nz, idx = _lnzd(lnzd, mask, K)
        running, done = Signal(), Signal()
        pending = Signal()
        m.d.comb += [rp.addr.eq(idx), pending.eq(running & any_nz)]
        rooms, idles = [], []
        for k, pe in enumerate(self.pes):
            m.submodules[f"pe{k}"] = pe
            m.d.comb += [pe.push_a.eq(rp.data), pe.push_col.eq(idx), pe.pending.eq(pending), pe.clear.eq(self.start),
                         pe.ld_en.eq(self.ld_en & (self.ld_pe == k)), pe.ld_mem.eq(self.ld_mem),
                         pe.ld_addr.eq(self.ld_addr), pe.ld_data.eq(self.ld_data),
                         pe.rd_addr.eq(self.rd_addr), pe.st_sel.eq(self.st_sel)]
            rooms.append(pe.room)
            idles.append(pe.idle)
        all_room, all_idle = Cat(*rooms).all(), Cat(*idles).all()
        bcast = Signal()
        m.d.comb += bcast.eq(pending & all_room)
        for pe in self.pes:
            m.d.comb += pe.push_valid.eq(bcast)
        active = any_nz | ~all_idle
        nxt = Signal(range(K + 1))           # the column after the last broadcast
        ccu = [Signal(COUNTER_BITS, name=f"n_{n}") for n in CCU_STATS]
        events = {"cycles": running & active, "broadcasts": bcast, "broadcast_stall": pending & ~all_room,
                  "lnzd_skip": bcast & (idx != nxt)}
        for name, cnt in zip(CCU_STATS, ccu):
            m.d.sync += cnt.eq(cnt + events[name])
        with m.If(bcast):
            m.d.sync += [mask.bit_select(idx, 1).eq(0), nxt.eq(idx + 1)]
        with m.If(running & ~active):
            m.d.sync += [running.eq(0), done.eq(1)]
        with m.If(self.start):
            m.d.sync += [running.eq(1), done.eq(0), mask.eq(nz), nxt.eq(0)] + [c.eq(0) for c in ccu]
        m.d.comb += self.done.eq(done)
        m.d.comb += self.rd_data.eq(Array(pe.rd_data for pe in self.pes)[self.rd_pe])
        sources = [pe.st_data for pe in self.pes] + [Array(ccu)[self.st_sel]]
        m.d.comb += self.st_data.eq(Array(sources)[self.st_pe])
        return m

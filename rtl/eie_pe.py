"""One EIE processing element in Amaranth 0.5, parameterised by ``sim.eie.EIEArch``.

Per cycle, as ``sim.eie.engine`` models it: a broadcast (``push_*``) enters the activation
FIFO (``queue_depth`` deep) and can be started from the next cycle, and keeps its slot
until its column is finished; an idle PE takes the head, reads the column's two
pointers in the same cycle, and streams the column's
``(v, z)`` entries one per cycle (an empty column costs the pointer-read cycle). Each
entry goes through four stages: (1) codebook lookup of the 4-bit ``v`` and accumulation
of the relative row index ``z``; (2) multiply by the activation (then shifted by the
codebook's fraction bits, 16-bit fixed point); (3) add to the destination register, with
a bypass from stage 4 when it writes the same row; (4) write.

The PE's slice is held in ROMs initialised from the encoding: pointers, entries
(``v`` in the low 4 bits, ``z`` in the high 4), and the 16-entry codebook. The RTL
returns one entry per cycle; the 64-bit, 8-entry SRAM word the simulator counts
accesses of is not modelled here.

``ready`` says the FIFO has a free slot (a push is kept only then). :class:`EIEPEProps`
holds the PE's formal properties (proved by ``rtl.formal``): every entry of every pushed
column is consumed exactly once, in order, with its activation; the PE is idle only when
all are; and neither the queued work nor a waiting push stalls for more than a bound.
"""

from __future__ import annotations

from amaranth import Array, Const, Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sim.eie.arch import EIEArch

__all__ = ["EIEPE", "EIEPEProps", "BUGS"]

# deliberate mutations, for tests that a check catches a broken PE
BUGS = ("drop-last",)


class EIEPE(wiring.Component):
    def __init__(self, arch: EIEArch, ptr, entries_v, entries_z, codebook, rows: int, frac_bits: int,
                 acc_bits: int = 32, bug: str | None = None):
        from .require import checked, eie_pe
        checked(self, eie_pe, arch)
        self.arch = arch
        self.bug = bug          # test hook: "drop-last" skips the last entry of a column of 3 or more
        self.ptr, self.v, self.z, self.cb = list(ptr), list(entries_v), list(entries_z), list(codebook)
        self.rows, self.frac, self.acc_bits = max(1, rows), frac_bits, acc_bits
        self.col_bits = max(1, (len(self.ptr)).bit_length())
        self.addr_bits = max(1, (len(self.v) + 1).bit_length())
        super().__init__({
            "push_valid": In(1), "push_a": In(signed(arch.act_bits)), "push_col": In(unsigned(self.col_bits)),
            "busy": Out(1), "pop": Out(1), "idle": Out(1), "ready": Out(1),
            "rd_addr": In(range(self.rows)), "rd_data": Out(signed(acc_bits)),
        })
        # what enters the pipeline each cycle (named here so that a property harness can watch it)
        self.take = Signal(name="take")
        self.entry = Signal(self.addr_bits, name="entry")
        self.entry_act = Signal(signed(arch.act_bits), name="entry_act")

    def elaborate(self, platform):
        m = Module()
        arch = self.arch
        D = arch.queue_depth
        ab = arch.act_bits
        # activation FIFO
        q_a = Array(Signal(signed(ab), name=f"q_a{i}") for i in range(D))
        q_c = Array(Signal(unsigned(self.col_bits), name=f"q_c{i}") for i in range(D))
        head = Signal(range(D))
        tail = Signal(range(D))
        count = Signal(range(D + 1))
        # ROMs
        m.submodules.ptr_rom = ptr_rom = Memory(shape=unsigned(arch.pointer_bits), depth=len(self.ptr), init=self.ptr)
        depth = max(1, len(self.v))
        m.submodules.mat_rom = mat_rom = Memory(shape=unsigned(8), depth=depth,
                                                init=[(z << 4) | v for v, z in zip(self.v, self.z)] or [0])
        m.submodules.cb_rom = cb_rom = Memory(shape=signed(arch.weight_bits), depth=len(self.cb), init=self.cb)
        p0 = ptr_rom.read_port(domain="comb")
        p1 = ptr_rom.read_port(domain="comb")
        mat = mat_rom.read_port(domain="comb")
        cbr = cb_rom.read_port(domain="comb")
        acc = Array(Signal(signed(self.acc_bits), name=f"acc{i}") for i in range(self.rows))

        remaining = Signal(range(depth + 2))
        addr = Signal(self.addr_bits)
        row = Signal(range(self.rows + 16 * (depth + 1)))
        a_cur = Signal(signed(ab))
        pop = Signal()
        first = Signal()
        take = self.take             # an entry enters stage 1 this cycle
        e_addr = self.entry
        e_a = self.entry_act
        e_row = Signal.like(row)
        n_col = Signal.like(remaining)

        m.d.comb += [p0.addr.eq(q_c[head]), p1.addr.eq(q_c[head] + 1)]
        m.d.comb += pop.eq((remaining == 0) & (count != 0))
        m.d.comb += n_col.eq(p1.data - p0.data)
        m.d.comb += self.pop.eq(pop)
        m.d.comb += first.eq(pop)
        # which entry (if any) is processed this cycle
        m.d.comb += [
            take.eq(Mux(pop, n_col != 0, remaining != 0)),
            e_addr.eq(Mux(pop, p0.data, addr)),
            e_a.eq(Mux(pop, q_a[head], a_cur)),
            mat.addr.eq(e_addr),
        ]
        v = mat.data[0:4]
        z = mat.data[4:8]
        m.d.comb += e_row.eq(Mux(first, z, row + z + 1))
        m.d.comb += cbr.addr.eq(v)
        m.d.comb += self.busy.eq(pop | (remaining != 0))
        m.d.comb += self.idle.eq((remaining == 0) & (count == 0))
        m.d.comb += self.ready.eq(count != D)

        with m.If(pop):
            m.d.sync += [head.eq(Mux(head == D - 1, 0, head + 1)), a_cur.eq(q_a[head])]
            cut = (n_col >= 3) if self.bug == "drop-last" else 0
            m.d.sync += remaining.eq(Mux(n_col != 0, n_col - 1 - cut, 0))
        with m.Elif(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        with m.If(take):
            m.d.sync += [addr.eq(e_addr + 1), row.eq(e_row)]
        with m.If(self.push_valid):
            m.d.sync += [q_a[tail].eq(self.push_a), q_c[tail].eq(self.push_col),
                         tail.eq(Mux(tail == D - 1, 0, tail + 1))]
        # an activation holds its FIFO slot until its column's last entry is processed
        done = Signal()
        m.d.comb += done.eq(Mux(pop, n_col <= 1, remaining == 1))
        m.d.sync += count.eq(count + self.push_valid - done)

        # pipeline: 1 lookup/address, 2 multiply, 3 add (bypass from 4), 4 write
        s1_v, s1_val, s1_a, s1_row = Signal(), Signal(signed(arch.weight_bits)), Signal(signed(ab)), Signal.like(row)
        m.d.sync += [s1_v.eq(take), s1_val.eq(cbr.data), s1_a.eq(e_a), s1_row.eq(e_row)]
        s2_v, s2_prod, s2_row = Signal(), Signal(signed(self.acc_bits)), Signal.like(row)
        m.d.sync += [s2_v.eq(s1_v), s2_prod.eq((s1_val * s1_a) >> self.frac), s2_row.eq(s1_row)]
        s3_v, s3_sum, s3_row = Signal(), Signal(signed(self.acc_bits)), Signal.like(row)
        s4_v, s4_sum, s4_row = Signal(), Signal(signed(self.acc_bits)), Signal.like(row)
        old = Signal(signed(self.acc_bits))
        m.d.comb += old.eq(Mux(s3_v & (s3_row == s2_row), s3_sum, acc[s2_row]))
        m.d.sync += [s3_v.eq(s2_v), s3_sum.eq(old + s2_prod), s3_row.eq(s2_row)]
        with m.If(s3_v):
            m.d.sync += acc[s3_row].eq(s3_sum)
        m.d.sync += [s4_v.eq(s3_v), s4_sum.eq(s3_sum), s4_row.eq(s3_row)]
        m.d.comb += self.rd_data.eq(acc[self.rd_addr])
        return m


class EIEPEProps(Elaboratable):
    """The PE's properties, for every push sequence (``push_valid``, ``push_a``,
    ``push_col`` are free) that respects ``ready`` and names a column of the slice
    (the two ``Assume``s):

    1. ``order``: each entry the PE takes into its pipeline is the next one of the reference's
       stream: the entries ptr[c] .. ptr[c+1]-1 of every pushed column c, columns in push
       order, each paired with its column's activation (so no entry is dropped, repeated or
       reordered while work is queued);
    2. ``complete``: when the PE says it is idle, the reference has no entry left;
    3. ``progress``: while the reference has entries left, the PE never goes more than
       max(0, queue_depth - 2) cycles in a row without taking one (it may retire the empty
       columns queued behind the column it finishes: the FIFO holds at most queue_depth - 2
       of them beside that column and the next non-empty one);
    4. ``accept``: ``ready`` is never low for more than L cycles in a row, L = the longest
       column's entries (at least 1), less one with two or more FIFO slots (a waiting push
       is accepted within that bound).

    Both bounds are tight where they are not zero: one cycle less gives a counterexample
    (checked at FIFO depths 1 to 3).

    The reference is a queue of the pushed non-empty columns with an offset into the head
    one, driven by the pushes and the PE's ``take`` alone."""

    def __init__(self, arch: EIEArch, ptr, entries_v, entries_z, codebook, rows: int, frac_bits: int,
                 bug: str | None = None, checks: str = "comb"):
        self.dut = EIEPE(arch, ptr, entries_v, entries_z, codebook, rows, frac_bits, bug=bug)
        self.checks = checks        # "sync": checked at clock edges (for Amaranth's simulator)
        self.ptr = list(ptr)
        self.push_valid = Signal(name="push_valid")
        self.push_a = Signal(signed(arch.act_bits), name="push_a")
        self.push_col = Signal(unsigned(self.dut.col_bits), name="push_col")
        self.inputs = (self.push_valid, self.push_a, self.push_col)
        self.ready = Signal(name="ready")

    def elaborate(self, platform):
        m = Module()
        dut = m.submodules.dut = self.dut
        ptr, D = self.ptr, dut.arch.queue_depth
        m.d.comb += [dut.push_valid.eq(self.push_valid), dut.push_a.eq(self.push_a), dut.push_col.eq(self.push_col),
                     self.ready.eq(dut.ready)]
        ncols = len(ptr) - 1
        m.d[self.checks] += Assume(self.push_col < ncols)
        m.d[self.checks] += Assume(~self.push_valid | dut.ready)
        start = Array(Const(p, dut.addr_bits) for p in ptr[:-1])
        length = Array(Const(b - a, dut.addr_bits) for a, b in zip(ptr, ptr[1:]))
        # reference queue: slot 0 is the head; n slots in use
        q_col = [Signal.like(self.push_col, name=f"ref_col{i}") for i in range(D)]
        q_a = [Signal.like(self.push_a, name=f"ref_act{i}") for i in range(D)]
        n = Signal(range(D + 1), name="ref_n")
        pos = Signal(dut.addr_bits, name="ref_pos")
        head_end = (pos + 1 == length[q_col[0]]) & (n != 0)
        popping = dut.take & head_end
        keep = self.push_valid & (length[self.push_col] != 0)
        expected = (n != 0) & (dut.entry == start[q_col[0]] + pos) & (dut.entry_act == q_a[0])
        m.d[self.checks] += Assert(~dut.take | expected, "order")
        with m.If(dut.take):
            m.d.sync += pos.eq(Mux(head_end, 0, pos + 1))
        after = n - popping                 # slots in use once the head has left
        for i in range(D):
            src_col = q_col[i + 1] if i + 1 < D else q_col[i]
            src_a = q_a[i + 1] if i + 1 < D else q_a[i]
            with m.If(popping):
                m.d.sync += [q_col[i].eq(src_col), q_a[i].eq(src_a)]
            with m.If(keep & (after == i)):
                m.d.sync += [q_col[i].eq(self.push_col), q_a[i].eq(self.push_a)]
        m.d.sync += n.eq(after + keep)
        m.d[self.checks] += Assert(~dut.idle | (n == 0), "complete")
        bound = max(0, D - 2)
        wait = Signal(range(bound + 2), name="ref_wait")      # cycles just past with entries left and none taken
        m.d.sync += wait.eq(Mux((n != 0) & ~dut.take, Mux(wait == bound + 1, bound + 1, wait + 1), 0))
        m.d[self.checks] += Assert(wait <= bound, "progress")
        # a column holds its slot for max(1, its entries) cycles; with two or more slots the FIFO
        # fills at the earliest a cycle after its head column started
        limit = max(max(b - a for a, b in zip(ptr, ptr[1:])), 1) - (D > 1)
        stuck = Signal(range(limit + 2), name="ref_not_ready")    # cycles just past with ready low
        m.d.sync += stuck.eq(Mux(dut.ready, 0, Mux(stuck == limit + 1, limit + 1, stuck + 1)))
        m.d[self.checks] += Assert(stuck <= limit, "accept")
        return m

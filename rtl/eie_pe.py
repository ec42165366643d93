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
"""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sim.eie.arch import EIEArch

__all__ = ["EIEPE"]


class EIEPE(wiring.Component):
    def __init__(self, arch: EIEArch, ptr, entries_v, entries_z, codebook, rows: int, frac_bits: int,
                 acc_bits: int = 32):
        from .require import checked, eie_pe
        checked(self, eie_pe, arch)
        self.arch = arch
        self.ptr, self.v, self.z, self.cb = list(ptr), list(entries_v), list(entries_z), list(codebook)
        self.rows, self.frac, self.acc_bits = max(1, rows), frac_bits, acc_bits
        self.col_bits = max(1, (len(self.ptr)).bit_length())
        self.addr_bits = max(1, (len(self.v) + 1).bit_length())
        super().__init__({
            "push_valid": In(1), "push_a": In(signed(arch.act_bits)), "push_col": In(unsigned(self.col_bits)),
            "busy": Out(1), "pop": Out(1), "idle": Out(1),
            "rd_addr": In(range(self.rows)), "rd_data": Out(signed(acc_bits)),
        })

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
        take = Signal()              # an entry enters stage 1 this cycle
        e_addr = Signal(self.addr_bits)
        e_a = Signal(signed(ab))
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

        with m.If(pop):
            m.d.sync += [head.eq(Mux(head == D - 1, 0, head + 1)), a_cur.eq(q_a[head])]
            m.d.sync += remaining.eq(Mux(n_col != 0, n_col - 1, 0))
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

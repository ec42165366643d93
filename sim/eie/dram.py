"""DRAM streaming of a layer that does not fit EIE's on-chip SRAMs, per activation vector.

A layer runs as passes (row batch x column tile), each of which fits a PE's sparse-matrix
and pointer SRAMs on its own (:func:`sim.eie.engine.column_tiles`). When all of them fit
together, the layer stays on chip and nothing is read from DRAM. Otherwise, per PE and per
SRAM, the passes stay resident in order until the SRAM is full, and the rest (the entries
and pointers beyond each SRAM's capacity) is read from DRAM for every vector: over a stream
of vectors, a pass that is loaded overwrites as much of the resident ones as it needs (and
alternating the pass order reloads only that), so the bytes per vector are the layer's
bytes minus what fits. One DMA reads them for all PEs at ``arch.dram_gbps``.

With ``L[i]`` the load cycles and ``c[i]`` the compute cycles of pass i (in order), a
vector takes

* ``stalled``: ``sum(c) + sum(L)``: the PEs idle while the DMA loads (the paper's I/O mode);
* ``pipelined`` (double-buffered: pass i + 1 loads into the second buffer while pass i
  computes): ``L[0] + sum_i max(c[i], L[i + 1])`` with ``L[n] = 0``;
* ``untimed``: ``sum(c)``.

:func:`stream_time` is that closed form; :func:`stream_cycles` steps the DMA, the two
buffers and the PEs one cycle at a time; tests prove the two equal.
"""

from __future__ import annotations

import math
import typing
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from .arch import EIEArch

__all__ = ["DRAM_GBPS", "DRAM_STREAMING", "DramStreaming", "pass_loads", "load_cycles", "stream_time",
           "stream_cycles"]

# How the part of a layer that does not fit the PEs' SRAMs is read from DRAM for every vector:
# "stalled": the PEs wait while it loads (the paper's I/O mode, Sec. IV: "all of the PEs are
# idle while the activations and weights in every PE can be accessed by a DMA"; the paper
# describes no second buffer); "pipelined": double-buffered, the next pass's part loads while
# this pass computes; "untimed": loads take no time (what the paper's own simulator evidently
# did: Fig. 11 scales VGG-6, whose pointers never fit, near-linearly to 256 PEs). The bytes
# are priced in energy in every mode.
DramStreaming = Literal["stalled", "pipelined", "untimed"]
DRAM_STREAMING: tuple[DramStreaming, ...] = typing.get_args(DramStreaming)
# GB/s (1e9 B/s) of EIE's DRAM: a named assumption. The paper gives no DRAM bandwidth; the DRAM
# its energy figures price is LPDDR2 (Sec. I, Table I, after Horowitz), and one x32 channel at
# LPDDR2-1066, the fastest grade of JEDEC JESD209-2, moves 1066e6 x 4 B = 4.264 GB/s.
DRAM_GBPS = 4.264  # named assumption: one x32 LPDDR2-1066 channel


def pass_loads(pe_entries: Sequence[NDArray[np.int64]], pointers: Sequence[int], arch: EIEArch) -> NDArray[np.float64]:
    """Bytes each pass reads from DRAM per vector. ``pe_entries[i]``: pass i's (v, z) entries
    on each PE; ``pointers[i]``: its column pointers per PE (columns + 1). Per PE and SRAM,
    the part of pass i beyond the capacity, counting the passes before it as resident:
    ``clip(cumsum - capacity, 0, pass)``."""
    n = len(pe_entries)
    if n == 0:
        return np.zeros(0)
    E = np.stack([np.asarray(e, dtype=np.int64) for e in pe_entries])          # passes x PEs
    over_e = np.clip(np.cumsum(E, axis=0) - arch.spmat_capacity, 0, E).sum(axis=1)
    p = np.asarray(pointers, dtype=np.int64)
    over_p = np.clip(np.cumsum(p) - arch.ptr_capacity, 0, p) * E.shape[1]      # every PE holds every pointer
    loads: NDArray[np.float64] = (over_e * arch.entry_bits + over_p * arch.pointer_bits) / 8.0
    return loads


def load_cycles(nbytes: float, arch: EIEArch) -> int:
    """Clock cycles the DMA takes to read ``nbytes`` at ``arch.dram_gbps`` (rounded up)."""
    if nbytes <= 0:
        return 0
    return math.ceil(nbytes * arch.clock_mhz / (arch.dram_gbps * 1e3) - 1e-9)


def stream_time(compute: Sequence[int], loads: Sequence[int], mode: str) -> int:
    """A vector's cycles from each pass's compute and load cycles (closed form, see above)."""
    c = np.asarray(compute, dtype=np.int64)
    L = np.asarray(loads, dtype=np.int64)
    if c.size == 0:
        return 0
    if mode == "untimed":
        return int(c.sum())
    if mode == "stalled":
        return int(c.sum() + L.sum())
    return int(L[0] + np.maximum(c, np.append(L[1:], 0)).sum())


def stream_cycles(compute: Sequence[int], loads: Sequence[int], mode: str) -> int:
    """Reference: step the DMA and the PEs one cycle at a time. The DMA loads the passes in
    order; a pass computes once it is loaded and the pass before it is done. ``stalled``:
    the DMA and the PEs never work in the same cycle (the DMA starts a pass's load only when
    every pass before it is done). ``pipelined``: two buffers, so pass j's load starts once
    pass j - 2 is done. ``untimed``: loads take no cycles."""
    n = len(compute)
    L = [0] * n if mode == "untimed" else [int(x) for x in loads]
    loaded = done = 0              # passes whose load / compute has finished
    load_left = comp_left = -1     # cycles left of the running load / compute; -1: none runs
    t = 0
    while True:
        changed = True             # start what can start in this cycle (zero-length tasks end at once)
        while changed:
            changed = False
            if load_left < 0 and loaded < n:
                free = (comp_left < 0 and done == loaded) if mode == "stalled" else loaded <= done + 1
                if free:
                    load_left, changed = L[loaded], True
                    if load_left == 0:
                        loaded, load_left = loaded + 1, -1
            if comp_left < 0 and done < loaded and (mode != "stalled" or load_left < 0):
                comp_left, changed = int(compute[done]), True
                if comp_left == 0:
                    done, comp_left = done + 1, -1
        if done == n:
            return t
        if load_left > 0:          # one cycle passes
            load_left -= 1
            if load_left == 0:
                loaded, load_left = loaded + 1, -1
        if comp_left > 0:
            comp_left -= 1
            if comp_left == 0:
                done, comp_left = done + 1, -1
        t += 1

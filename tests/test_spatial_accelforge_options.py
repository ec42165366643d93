"""AccelForge's modelling conventions as design options of a spatial design: latency as a
roofline over the components (``loading: roofline``), only factors that divide the layer
(``factors: divisors``), both set by the AccelForge reader (``sim.spatial.timeloop``) where
the file asks for them; numbers derived by hand on tiny designs."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from sim.registry import resolve_arch
from sim.spatial import Level, SpatialArch
from sim.spatial.array import largest_divisor
from sim.spatial.cost import allocate, evaluate, loops_for, spatial_factors, temporal
from sim.spatial.nest import Nest
from sim.spatial.reference import walk
from sim.spatial.search import _key, best, hoisted, units
from workloads.errors import HwsimError

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "benchmarks" / "data" / "accelforge"
BITS = {"input": 8, "weight": 8}


def gemm(m: int, k: int, n: int) -> Nest:
    """C[m,n] = A[m,k] @ B[k,n] as the nest: OX = m, C = k, K = n."""
    return Nest({"G": 1, "B": 1, "K": n, "C": k, "OY": 1, "OX": m, "FY": 1, "FX": 1}, in_w=m)


def tiny(rows: int = 2, cols: int = 2, dram_bits: float = 8, **kw: object) -> SpatialArch:
    """A rows x cols array under one buffer that holds the whole of a small layer (ports of
    1024 bits: never the slowest) and a DRAM of one shared port of ``dram_bits`` bits a cycle."""
    return SpatialArch(name="tiny", rows=rows, cols=cols, word_bits=8, acc_bits=8, mac_pj=1.0, levels=(
        Level("buf", ("input", "weight", "output"), 4096, read_bits=1024, write_bits=1024, read_pj=1.0,
              write_pj=1.0),
        Level("dram", ("input", "weight", "output"), 0, read_bits=dram_bits, write_bits=dram_bits,
              shared_port=True, read_pj=100.0, write_pj=100.0, kind="dram")),
        unrollings=(("C", "K"),), **kw)  # type: ignore[arg-type]


# ---- loading: roofline ------------------------------------------------------------------------
def test_roofline_is_the_dram_port_s_time_when_dram_is_slowest():
    """GEMM 4x4x4 on 2x2 (C2 | K2): 16 temporal iterations. The buffer holds the layer, so
    DRAM reads A and B once (16 + 16 bytes) and writes C once (16 bytes): 384 bits on one
    8-bit port = 48 cycles, the slowest component; nothing added before or after."""
    nest = gemm(4, 4, 4)
    c = best(nest, tiny(loading="roofline"), BITS, 8)
    assert c.compute_cycles == 16
    assert c.accesses["dram.input.reads"] == 16 and c.accesses["dram.weight.reads"] == 16
    assert c.accesses["dram.output.writes"] == 16
    assert c.cycles == 48
    tile = best(nest, tiny(), BITS, 8)          # the default adds the first tile's fill and the drain
    assert tile.cycles > 48 and tile.accesses == c.accesses and tile.energy_pj == c.energy_pj


def test_roofline_is_the_macs_time_when_they_are_slowest():
    """The same on a 64-bit DRAM port: 384 bits in 6 cycles; the array's 16 iterations win."""
    c = best(gemm(4, 4, 4), tiny(dram_bits=64, loading="roofline"), BITS, 8)
    assert c.cycles == 16


def test_roofline_counts_separate_ports_by_the_busier():
    """With separate 8-bit read and write ports DRAM reads 256 bits (32 cycles) while it
    writes 128 (16): 32 cycles."""
    arch = tiny(loading="roofline")
    top = dataclasses.replace(arch.levels[-1], shared_port=False)
    arch = dataclasses.replace(arch, levels=(arch.levels[0], top))
    assert best(gemm(4, 4, 4), arch, BITS, 8).cycles == 32


def test_roofline_is_refused_for_the_stepped_engine():
    with pytest.raises(HwsimError) as e:
        tiny(loading="roofline", timing="stepped")
    assert str(e.value).startswith("loading: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("field,value", [("loading", "fast"), ("factors", "all")])
def test_bad_values_are_refused_in_one_line_naming_the_field(field, value):
    with pytest.raises(HwsimError) as e:
        tiny(**{field: value})
    assert str(e.value).startswith(f"{field}") and "\n" not in str(e.value)


# ---- factors: divisors ------------------------------------------------------------------------
def test_largest_divisor():
    assert [largest_divisor(256, 14), largest_divisor(256, 12), largest_divisor(5, 4), largest_divisor(9, 8),
            largest_divisor(6, 6), largest_divisor(7, 1)] == [8, 8, 1, 3, 6, 1]


def test_divisors_run_whole_tiles():
    """GEMM M4 K2 N5 on 2x4 (C | K). Padded: K takes 4 columns, 2 trips of K (the second
    padded) x 4 of OX = 8 cycles on 8 PEs. Divisors: no factor of 5 but 1 fits in 4, so
    C2 x K1: 5 x 4 = 20 cycles on 2 PEs."""
    nest = gemm(4, 2, 5)
    padded = best(nest, tiny(2, 4), BITS, 8)
    assert (padded.compute_cycles, padded.active_pes, dict(padded.mapping.spatial)) == (8, 8, {"C": 2, "K": 4})
    div = best(nest, tiny(2, 4, factors="divisors"), BITS, 8)
    assert (div.compute_cycles, div.active_pes, dict(div.mapping.spatial)) == (20, 2, {"C": 2, "K": 1})


def test_divisors_keep_the_unrollings_that_use_the_most_pes():
    """The same with a second unrolling, C | OX: OX 4 divides into the 4 columns, 8 PEs,
    5 cycles (K timed). With divisors only it is searched (C | K puts 2 PEs to work), even
    for least energy; padded, both are, and C | K is 8 cycles either way."""
    nest = gemm(4, 2, 5)
    arch = tiny(2, 4, factors="divisors", objective="energy")
    arch = dataclasses.replace(arch, unrollings=(("C", "K"), ("C", "OX")))
    c = best(nest, arch, BITS, 8)
    assert (c.mapping.unrolling, c.active_pes, c.compute_cycles) == (("C", "OX"), 8, 5)


def test_eyeriss_s_256_gemm_runs_on_8_by_8():
    """AccelForge's eyeriss (14 x 12, weight reuse across the 14, output reuse across the 12)
    with min_usage 1: a 256-wide GEMM takes OX 8 and C 8 (the largest divisors of 256 that
    fit): 256^3 / 64 = 262,144 cycles, AccelForge's count."""
    arch = dataclasses.replace(resolve_arch(f"timeloop:{EX / 'eyeriss.resolved.yaml'}"), factors="divisors")
    c = best(gemm(256, 256, 256), arch, BITS, 8)
    assert c.active_pes == 64 and c.compute_cycles == 262_144
    assert sorted(v for v in c.mapping.spatial.values() if v > 1) == [8, 8]


def _exhaustive(nest, arch, objective):
    """Every unrolling the divisors rule leaves (the most PEs) and every order, each costed;
    the first of the lowest key wins (no bound, no pruning)."""
    cands = [(un, spatial_factors(nest, un, arch.rows, arch.cols, divisors=True)) for un in arch.unrollings]
    most = max(_n(sp) for _, sp in cands)
    found = None
    for un, sp in cands:
        if _n(sp) != most:
            continue
        trips = temporal(nest, sp)
        assert all(nest.sizes[d] == trips[d] * sp.get(d, 1) for d in trips)     # whole tiles
        for order in itertools.permutations(units(trips)):
            m = allocate(nest, arch, un, loops_for(tuple(d for u in order for d in u), trips), BITS)
            if m is None:
                continue
            second = hoisted(arch, m)
            for cand in (m, allocate(nest, arch, un, second, BITS) if second else None):
                if cand is not None:
                    c = evaluate(nest, arch, cand, BITS, 8)
                    if found is None or _key(c, objective) < _key(found, objective):
                        found = c
    return found


def _n(sp):
    out = 1
    for v in sp.values():
        out *= v
    return out


SMALL = SpatialArch(name="small", rows=2, cols=3, mac_pj=0.2, levels=(
    Level("wreg", ("weight",), 4, per_pe=True, read_bits=8, write_bits=8, read_pj=0.1, write_pj=0.1, kind="rf"),
    Level("oreg", ("output",), 8, per_pe=True, read_bits=32, write_bits=32, read_pj=0.3, write_pj=0.3, kind="rf"),
    Level("buf", ("input", "output"), 200, read_bits=64, write_bits=64, read_pj=4.0, write_pj=5.0),
    Level("dram", ("input", "weight", "output"), 0, read_pj=600.0, write_pj=700.0, kind="dram")),
    unrollings=(("C", "K"), ("OX", "K"), ("FY*C", "OY")), factors="divisors")


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_the_search_finds_what_costing_every_candidate_finds(data):
    """With divisors and either latency convention, the pruned search (its lower bound
    included) picks what costing every candidate picks, for every objective; and the
    chosen mapping's counts equal a walk of the nest (whole tiles: nothing padded)."""
    d = data.draw
    sizes = {"G": 1, "B": d(st.sampled_from([1, 2])), "K": d(st.sampled_from([3, 5, 6, 8])),
             "C": d(st.sampled_from([2, 3, 4, 6])), "OY": d(st.sampled_from([1, 2, 4])),
             "OX": d(st.sampled_from([3, 5, 6])), "FY": d(st.sampled_from([1, 3])), "FX": d(st.sampled_from([1, 3]))}
    nest = Nest(sizes, 1, 1, 1, 1, sizes["OY"] + sizes["FY"] - 1, sizes["OX"] + sizes["FX"] - 1)
    objective = d(st.sampled_from(["latency", "energy", "edp"]))
    arch = dataclasses.replace(SMALL, objective=objective, loading=d(st.sampled_from(["tile", "roofline"])))
    want = _exhaustive(nest, arch, objective)
    got = best(nest, arch, BITS, 8)
    assert (got.mapping, got.cycles, got.energy_pj) == (want.mapping, want.cycles, want.energy_pj)
    ref = walk(nest, arch, got.mapping, BITS, 8)
    assert {k: v for k, v in got.accesses.items() if v} == {k: v for k, v in ref.items() if v}


# ---- the AccelForge reader ----------------------------------------------------------------------
def test_the_reader_sets_accelforge_s_conventions():
    tpu = resolve_arch(f"timeloop:{EX / 'tpu_v4i.yaml'}")
    assert (tpu.loading, tpu.factors) == ("roofline", "divisors")
    # the resolved copy (benchmarks/accelforge_peer.py --resolved) keeps eyeriss.yaml's min_usage 1
    eye = resolve_arch(f"timeloop:{EX / 'eyeriss.resolved.yaml'}")
    assert (eye.loading, eye.factors) == ("roofline", "divisors")


def test_a_min_usage_above_1_is_refused(tmp_path):
    text = (EX / "tpu_v4i.yaml").read_text()
    assert "min_usage: 1" in text
    p = tmp_path / "bad.yaml"
    p.write_text(text.replace("min_usage: 1", "min_usage: 2", 1))
    with pytest.raises(HwsimError) as e:
        resolve_arch(f"timeloop:{p}")
    assert ".min_usage: must be a fraction" in str(e.value) and "\n" not in str(e.value)


# ---- bypass ---------------------------------------------------------------------------------------
def test_a_bypassed_weight_goes_straight_from_dram_to_the_array():
    """GEMM 4x4x4 on 2x2 for least energy. Held in the buffer, the 16 weight bytes cross
    DRAM -> buffer -> array: the buffer writes and reads 128 bits each at 1 pJ per 1024, 0.25
    pJ. Bypassed, the array reads them from DRAM once each (the weight-stationary order:
    OX innermost, a PE's weight changes every 4 iterations, 4 x 4 words), DRAM's traffic the
    same 16 bytes, and the 0.25 pJ are saved."""
    nest = gemm(4, 4, 4)
    hold = best(nest, tiny(objective="energy"), BITS, 8)
    arch = tiny(objective="energy")
    arch = dataclasses.replace(arch, levels=(dataclasses.replace(arch.levels[0], bypass=("weight",)),
                                             arch.levels[1]))
    c = best(nest, arch, BITS, 8)
    assert hold.accesses["buf.weight.writes"] == 16 and hold.accesses["buf.weight.reads"] == 16
    assert not any(k.startswith("buf.weight") for k in c.accesses)
    assert c.accesses["dram.weight.reads"] == hold.accesses["dram.weight.reads"] == 16
    assert c.energy_pj == pytest.approx(hold.energy_pj - 0.25)


def test_bypass_refusals_name_the_field():
    arch = tiny()
    buf, dram = arch.levels
    cases = [((dataclasses.replace(buf, operands=("input", "output")), dram), {}, "levels[0].bypass"),
             ((buf, dram), {}, "levels[1].bypass"),
             ((buf, dram), {"timing": "stepped"}, "timing")]
    for k, (levels, kw, field) in enumerate(cases):
        lv = [dict(name=x.name, operands=list(x.operands), size_bytes=x.size_bytes, kind=x.kind,
                   shared_port=x.shared_port) for x in levels]
        lv[0 if k != 1 else 1]["bypass"] = ["weight"]
        with pytest.raises(HwsimError) as e:
            dataclasses.replace(arch, levels=tuple(lv), **kw)
        assert str(e.value).startswith(f"{field}: ") and "\n" not in str(e.value), str(e.value)


def test_the_reader_lets_may_keep_levels_be_bypassed():
    tpu = resolve_arch(f"timeloop:{EX / 'tpu_v4i.yaml'}")
    assert {x.name: x.bypass for x in tpu.levels if x.bypass} == {"GlobalBuffer": ("input", "weight", "output")}
    nvdla = resolve_arch(f"timeloop:{EX / 'nvdla.yaml'}")
    assert not any(x.bypass for x in nvdla.levels)      # its GlobalBuffer keeps All


def test_more_bypasses_than_the_search_takes_are_refused():
    """Each (level, operand) bypass doubles the searches: seven (128 searches) are refused in one line."""
    arch = tiny()
    buf, dram = arch.levels
    ops = ("input", "weight", "output")
    lv = [dict(name=f"b{i}", operands=list(ops), size_bytes=buf.size_bytes * (i + 1), kind=buf.kind,
               shared_port=buf.shared_port, bypass=list(ops if i < 2 else ops[:1])) for i in range(3)]
    lv.append(dict(name=dram.name, operands=list(dram.operands), size_bytes=dram.size_bytes, kind=dram.kind,
                   shared_port=dram.shared_port))
    with pytest.raises(HwsimError) as e:
        dataclasses.replace(arch, levels=tuple(lv))
    assert str(e.value).startswith("levels: 7 (level, operand) bypasses") and "\n" not in str(e.value), str(e.value)
    lv[2]["bypass"] = []                                    # six: accepted
    assert sum(len(x.bypass) for x in dataclasses.replace(arch, levels=tuple(lv)).levels) == 6

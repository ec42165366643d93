"""EIE rows (Han et al., ISCA 2016) on the ``eie-64`` / ``eie-256`` presets: per-layer time of
the nine benchmark layers (model ``eie-benchmarks``, option ``layer``), and whole-design
figures (``theoretical_time_us``: a layer's work over the peak rate, as the paper's Table IV
computes its "Theoretical Time": the entries the PEs process, padding zeros included, over PEs x
clock, no load imbalance; ``power_w`` of a layer or the nine, ``per_pe=1`` for one PE's share; ``area_mm2``:
refused, hwsim has no area model; ``load_balance`` in %: busy PE-cycles over PEs x compute cycles,
of a layer or the nine together, Fig. 8's measure; ``speedup`` over the same design with 1 PE,
or ``base_pes=N`` PEs).
``pes=N`` and ``queue_depth=N`` change the preset as the paper's Fig. 11 and Fig. 8 sweeps do;
``dram=stalled|pipelined|untimed`` sets ``dram_streaming`` (how a layer that does not fit the
SRAMs reads DRAM; the paper's simulator did not time it, see the VGG-6 row)."""

from __future__ import annotations

import dataclasses

from sim.registry import resolve_arch
from workloads.errors import HwsimError

from .base import Reader, Unsupported, evaluation, opt_int, opt_str
from .schema import Row

__all__ = ["READER"]

QUANTITIES = {"time_us": ("us",), "theoretical_time_us": ("us",), "power_w": ("W", "mW"), "frames_per_s": ("frames/s",),
              "area_mm2": ("mm2",), "energy_efficiency_frames_per_j": ("frames/J",), "speedup": ("x",),
              "load_balance": ("%",)}
OPTIONS = frozenset({"layer", "pes", "queue_depth", "batch", "per_pe", "base_pes", "dram"})


def _design(row: Row):
    desc = resolve_arch(row.design)
    changes: dict[str, object] = {k: v for k, v in (("num_pes", opt_int(row, "pes")),
                                                    ("queue_depth", opt_int(row, "queue_depth")),
                                                    ("dram_streaming", opt_str(row, "dram"))) if v is not None}
    return dataclasses.replace(desc, **changes) if changes else desc


def _load_balance(row: Row, design) -> float:
    """Busy PE-cycles / (PEs x compute cycles) in %, over the layer or every GEMM of the model
    (compute cycles: the op's cycles less its DRAM stalls)."""
    df = evaluation(row.model, design).to_frame()
    df = df[df["load_balance"].notna()]
    layer = opt_str(row, "layer")
    if layer is not None:
        df = df[df["name"] == layer]
        if df.empty:
            raise HwsimError(f"{row.where}: options.layer {layer!r} is not a GEMM of {row.model}")
    compute = df["cycles"] - df["stall_cycles"]
    return 100.0 * float((df["load_balance"] * compute).sum() / compute.sum())


def _layer_time_us(row: Row, design) -> float:
    layer = opt_str(row, "layer")
    df = evaluation(row.model, design).to_frame()
    if layer is None:
        return float(df["time_us"].sum())
    hit = df[df["name"] == layer]
    if hit.empty:
        raise HwsimError(f"{row.where}: options.layer {layer!r} is not an op of {row.model}; one of "
                         f"{', '.join(df['name'])}")
    return float(hit["time_us"].iloc[0])


def _theoretical_time_us(row: Row, design) -> float:
    """The layer's entries (non-zeros and padding zeros of the columns whose activation is
    non-zero) over PEs x clock: its time with every PE equally loaded and never stalled."""
    layer = opt_str(row, "layer")
    if layer is None:
        raise HwsimError(f"{row.where}: theoretical_time_us is per layer; add options layer=NAME")
    df = evaluation(row.model, design).to_frame()
    hit = df[df["name"] == layer]
    if hit.empty or not float(hit["real_work_fraction"].iloc[0]):
        raise HwsimError(f"{row.where}: options.layer {layer!r} is not an EIE layer of {row.model}")
    entries = float(hit["effective_macs"].iloc[0]) / float(hit["real_work_fraction"].iloc[0])
    return entries / (design.num_pes * design.clock_mhz)


def measure(row: Row) -> float:
    q = row.quantity
    if q == "area_mm2":
        raise Unsupported("hwsim has no area model for EIE (the paper's Table II is place-and-route)")
    design = _design(row)
    if q == "time_us":
        return _layer_time_us(row, design)
    if q == "theoretical_time_us":
        return _theoretical_time_us(row, design)
    if q == "speedup":
        one = dataclasses.replace(design, num_pes=opt_int(row, "base_pes", 1))
        return _layer_time_us(row, one) / _layer_time_us(row, design)
    if q == "load_balance":
        return _load_balance(row, design)
    if q in ("frames_per_s", "energy_efficiency_frames_per_j"):
        t = _layer_time_us(row, design) * 1e-6
        if q == "frames_per_s":
            return 1.0 / t
        s = evaluation(row.model, design).to_frame()
        layer = opt_str(row, "layer")
        pj = float(s[s["name"] == layer]["energy_pj"].iloc[0] if layer else s["energy_pj"].sum())
        return 1.0 / (pj * 1e-12)
    if q == "power_w":
        df = evaluation(row.model, design).to_frame()
        layer = opt_str(row, "layer")
        if layer is not None:
            df = df[df["name"] == layer]
        w = float(df["energy_pj"].sum()) * 1e-12 / (float(df["time_us"].sum()) * 1e-6)
        if opt_int(row, "per_pe", 0):
            w /= design.num_pes          # one PE's share of the design's power
        return w * (1e3 if row.unit == "mW" else 1.0)
    raise Unsupported(f"{q} is not computed for EIE")


READER = Reader("eie", QUANTITIES, OPTIONS, measure)

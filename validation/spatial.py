"""Spatial-accelerator rows: ZigZag 3.9.1's stock designs (a peer tool's recorded outputs) and
the Eyeriss chip's published measurements (Chen et al., JSSC 2017), on ``sim/spatial``.

* ``zigzag-onnx:resnet18`` is ZigZag's bundled ``resnet18.onnx``: torchvision's ResNet-18 at
  224x224, batch 1, which is the zoo's ``resnet18`` (the same layers and names).
  ``zigzag-onnx:alexnet`` is ZigZag's own AlexNet export (the original two-GPU AlexNet of
  BVLC Caffe: grouped convolutions, LRN; its weights' external data file is not shipped), which
  is the zoo's ``alexnet-bvlc`` layer for layer. ``zigzag:tpu_like`` and ``zigzag:eyeriss_like``
  are ZigZag's stock hardware with its stock mapping (``examples/zigzag/``; ZigZag ships no
  eyeriss_like mapping, so ``default.yaml``, as ZigZag's own runs use). ZigZag's totals
  cover its conv/GEMM layers only, and so do these rows' network totals.
* ``eyeriss-like`` rows: the Eyeriss chip on AlexNet and VGG-16's convolutions (batch 4 and
  3); a layer's ``latency_ms``, ``power_mw``, ``dram_mb``; a network's ``frames_per_s``.
* ``timeloop:tpu_v4i``, ``timeloop:nvdla``, ``timeloop:eyeriss``: AccelForge 1.0.467's tutorial
  designs read by ``--arch timeloop:`` (``benchmarks/data/accelforge/``), against AccelForge's
  own results (``benchmarks/accelforge_peer.py``); option ``objective`` (AccelForge's mapper
  minimised energy).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sim.spatial.arch import PRESETS, SpatialArch
from workloads.errors import HwsimError

from .base import Reader, Unsupported, evaluation, opt_int, opt_str
from .schema import Row

__all__ = ["READER"]

ROOT = Path(__file__).resolve().parents[1]
ZIGZAG_DESIGNS = {
    "zigzag:tpu_like": ("examples/zigzag/tpu_like.yaml", "examples/zigzag/tpu_like_mapping.yaml"),
    "zigzag:eyeriss_like": ("examples/zigzag/eyeriss_like.yaml", "examples/zigzag/default_mapping.yaml"),
}
ZIGZAG_MODELS = {"zigzag-onnx:resnet18": "resnet18", "zigzag-onnx:alexnet": "alexnet-bvlc"}
# AccelForge 1.0.467's tutorial designs (copies in benchmarks/data/accelforge/; eyeriss's with the
# energies AccelForge's plug-ins computed, benchmarks/accelforge_peer.py --resolved)
ACCELFORGE_DESIGNS = {"timeloop:tpu_v4i": "benchmarks/data/accelforge/tpu_v4i.yaml",
                      "timeloop:nvdla": "benchmarks/data/accelforge/nvdla.yaml",
                      "timeloop:eyeriss": "benchmarks/data/accelforge/eyeriss.resolved.yaml"}
# The Eyeriss chip's rows run the preset as the chip was run: row stationary (the rows'
# conditions; the chip has no other dataflow), each layer in the mapping of least energy
# (Chen, Emer, Sze, ISCA 2016, Sec. V: the RS mapping of each layer is the one of lowest
# energy found by the optimisation framework; JSSC 2017 Sec. III uses those mappings).
EYERISS_CHIP = replace(PRESETS["eyeriss-like"], objective="energy", dataflow="rs")
QUANTITIES = {"cycles": ("cycles",), "energy_pj": ("pJ",), "latency_ms": ("ms",), "power_mw": ("mW",),
              "dram_mb": ("MB",), "frames_per_s": ("frames/s",)}


def _case(row: Row) -> tuple[str, str | SpatialArch]:
    design = row.design
    objective = opt_str(row, "objective")
    if design in ACCELFORGE_DESIGNS:
        from sim.registry import resolve_arch
        arch = resolve_arch(f"timeloop:{ROOT / ACCELFORGE_DESIGNS[design]}")
        return row.model, replace(arch, objective=objective) if objective else arch
    if objective:
        raise HwsimError(f"{row.where}: options.objective applies to the AccelForge designs "
                         f"({', '.join(ACCELFORGE_DESIGNS)}); leave it out")
    if design in ZIGZAG_DESIGNS:
        hw, mapping = (ROOT / p for p in ZIGZAG_DESIGNS[design])
        design = f"zigzag:{hw}:{mapping}"
    model = row.model
    if design == "eyeriss-like":
        return model, EYERISS_CHIP
    if model.startswith("zigzag-onnx:"):
        if model not in ZIGZAG_MODELS:
            raise Unsupported(f"{model}: not one of ZigZag's bundled workloads hwsim has ({', '.join(ZIGZAG_MODELS)})")
        model = ZIGZAG_MODELS[model]
    return model, design


def measure(row: Row) -> float:
    model, design = _case(row)
    ev = evaluation(model, design, batch=opt_int(row, "batch"))
    df = ev.to_frame()
    layer = opt_str(row, "layer")
    if layer is not None:
        df = df[df["name"] == layer]
        if df.empty:
            raise HwsimError(f"{row.where}: options.layer {layer!r} is not an op of {model}")
    else:                      # ZigZag and the Eyeriss measurements count the GEMM layers (convs, fc) only
        names = {o.name for o in ev.workload.ops if o.is_gemm}
        if row.design == "eyeriss-like":
            names = {o.name for o in ev.workload.ops if o.kind == "conv"}
        df = df[df["name"].isin(names)]
    q = row.quantity
    time_us = float(df["time_us"].sum())
    if q == "cycles":
        return float(df["cycles"].sum())
    if q == "energy_pj":
        return float(df["energy_pj"].sum())
    if q == "latency_ms":
        return time_us / 1e3
    if q == "power_mw":
        return float(df["energy_pj"].sum()) * 1e-12 / (time_us * 1e-6) * 1e3
    if q == "dram_mb":
        return float((df["dram_read_bytes"] + df["dram_write_bytes"]).sum()) / 1e6
    if q == "frames_per_s":
        return ev.workload.batch / (time_us * 1e-6)
    raise Unsupported(f"{q} is not computed for spatial designs")


READER = Reader("spatial", QUANTITIES, frozenset({"layer", "batch", "objective"}), measure)

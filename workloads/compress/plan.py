"""Compression plans and the pipeline that applies them: prune -> (retrain) -> share
weights or quantise -> (fine-tune codebooks) -> storage accounting -> compressed trace.

A plan (YAML)::

    default: {keep: 0.1, weight_bits: 5, index_bits: 4}
    layers:
      features.0: {keep: 0.84, weight_bits: 8}

``keep`` in (0, 1] is the fraction of weights kept; ``weight_bits`` the shared-weight
(codebook index) width; ``index_bits`` the relative-index width of the sparse format;
``structure`` ``"N:M"`` (e.g. ``"2:4"``, what sparse tensor cores run) prunes to at most N
non-zeros in every M consecutive weights along the reduction dimension instead of by
``keep`` (``"none"``: unstructured). The compressed trace marks those weights with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..declared import validate
from ..errors import HwsimError
from ..progress import step
from . import prune as P
from .plan_schema import MAX_BITS, LayerPlan, PlanDoc
from .share import codes_in_order, finetune_codebooks, share_weights
from .storage import LayerStorage, layer_storage, totals

__all__ = ["DEFAULT", "KEYS", "MAX_BITS", "CompressionResult", "Plan", "compress", "compressed_op", "compressed_trace", "load_plan",
           "plan_from_dict", "structures_of"]

KEYS = tuple(LayerPlan.model_fields)
DEFAULT = LayerPlan().model_dump()


@dataclass
class Plan:
    default: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)

    def for_layer(self, name: str) -> dict:
        return {**DEFAULT, **self.default, **self.layers.get(name, {})}


def load_plan(path: str | Path) -> Plan:
    from ..yamlio import load_yaml_lines, located

    doc, lines = load_yaml_lines(path, "plan")
    with located(path, lines):
        return plan_from_dict(doc, str(path))


def plan_from_dict(doc, where: str = "plan") -> Plan:
    """A plan from its document, checked against :class:`PlanDoc` (errors name ``where``)."""
    if not isinstance(doc, dict):
        raise HwsimError(f"{where}: a plan has 'default:' and/or 'layers:'")
    p = validate(PlanDoc, doc, where)
    return Plan(p.default.given(), {n: e.given() for n, e in p.layers.items()})


@dataclass
class CompressionResult:
    model: nn.Module | None         # None once an ONNX model's trace is rewritten (workloads.compress.onnx)
    layers: list[LayerStorage]
    shared: dict
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    act_bits: int | None = None
    structures: dict = field(default_factory=dict)      # layer -> "N:M"

    def report(self) -> dict:
        t = totals(self.layers)
        if self.accuracy_after is not None:
            t["accuracy"] = self.accuracy_after
            t["accuracy_before"] = self.accuracy_before
        return {"layers": [{"name": l.name, "weights": l.weights, "keep": l.keep, "weight_bits": l.weight_bits,
                            "index_bits": l.index_bits, "structure": self.structures.get(l.name, ""), "bits_p": l.bits_p, "bits_pq": l.bits_pq,
                            "bits_pqh": l.bits_pqh} for l in self.layers], "total": t}


def compress(model: nn.Module, plan: Plan, data=None, retrain_epochs: int = 20, finetune_epochs: int = 10,
             quant_bits: int | None = None, act_bits: int | None = None, calibration=None,
             seed: int = 0) -> CompressionResult:
    """Apply ``plan`` to ``model``. With ``data`` (digits), the model is retrained after
    pruning and its codebooks fine-tuned, and accuracy is measured before and after.
    ``act_bits`` quantises every layer's input activations to fixed point, the radix point
    from the range seen on ``calibration`` inputs (default: the training inputs)."""
    from .quantize import linear_quant
    from .train import accuracy, train

    layers = P.prunable(model)
    unknown = set(plan.layers) - set(layers)
    if unknown:
        raise HwsimError(f"plan: unknown layer(s) {', '.join(sorted(unknown))}; this model's layers: "
                         f"{', '.join(layers)}")
    settings = {n: plan.for_layer(n) for n in layers}
    structures = structures_of(settings, layers, plan.layers)
    for n in structures:
        if settings[n]["keep"] < 1:
            raise HwsimError(f"plan: layer {n!r} has both keep {settings[n]['keep']:g} and structure "
                             f"{settings[n]['structure']}; a layer is pruned by one of them (structure: none, or keep: 1)")
    before = accuracy(model, data[2], data[3]) if data is not None else None
    P.magnitude_prune(model, {n: s["keep"] for n, s in settings.items() if n not in structures})
    P.nm_prune(model, structures)
    step()                                  # progress: pruned
    if data is not None:   # the prune masks keep pruned weights at zero while retraining
        train(model, data, epochs=retrain_epochs, seed=seed)
    P.make_permanent(model)
    shared = {}
    if quant_bits is not None:
        with torch.no_grad():
            for n, m in layers.items():
                w = m.weight.detach().numpy()
                q, _, _ = linear_quant(w, quant_bits)
                m.weight.copy_(torch.from_numpy(np.where(w != 0, q, 0.0)).float())
        wbits = {n: quant_bits for n in layers}
    else:
        wbits = {n: s["weight_bits"] for n, s in settings.items()}
        to_share = {n: layers[n] for n in layers if wbits[n] < 32}
        shared = share_weights(to_share, wbits)
        if data is not None and shared:
            finetune_codebooks(model, layers, shared, data, epochs=finetune_epochs, seed=seed)
    if act_bits is not None:
        from .actquant import ActQuant
        calib = calibration if calibration is not None else (data[0] if data is not None else None)
        if calib is None:
            raise HwsimError("act_bits needs calibration inputs (or training data)")
        ActQuant(model, act_bits, calib)
    after = accuracy(model, data[2], data[3]) if data is not None else None
    rows = []
    for n, m in layers.items():
        w = m.weight.detach().numpy()
        codes = codes_in_order(shared[n]) if n in shared else None
        rows.append(layer_storage(n, w, settings[n]["index_bits"], wbits[n], codes))
        step()                              # progress: one layer's storage counted
    for n, (keep_n, group_m) in structures.items():     # sharing and quantisation keep zeros at zero
        assert P.satisfies_nm(layers[n].weight, keep_n, group_m), n
    return CompressionResult(model, rows, shared, before, after, act_bits,
                             {n: settings[n]["structure"] for n in structures})


def structures_of(settings: dict[str, dict], layers: Mapping[str, P.Layer] | None = None,
                  explicit: dict | None = None) -> dict[str, tuple[int, int]]:
    """Layer -> (N, M) for the layers a plan prunes N:M. A structure from the plan's
    default skips a layer whose reduction size is not a multiple of M (it stays dense, as
    NVIDIA's ASP leaves such layers); one named for the layer itself must fit."""
    from ..trace import structure_nm
    out = {}
    for n, s in settings.items():
        nm = structure_nm(s["structure"]) if s["structure"] != "none" else None
        if nm is None:
            continue
        if layers is not None and layers[n].weight[0].numel() % nm[1]:
            if explicit is not None and "structure" in explicit.get(n, {}):
                raise HwsimError(f"plan: layers.{n}.structure: {s['structure']} needs the layer's reduction size "
                                 f"({layers[n].weight[0].numel()}) to be a multiple of {nm[1]}; use structure: none")
            continue
        out[n] = nm
    return out


def compressed_trace(result: CompressionResult, example, name: str):
    """Lower the compressed model; weights carry their real density, codebook and index
    width, and their N:M structure where the plan pruned them so."""
    from ..lower import lower

    if result.model is None:
        raise HwsimError("this compression result has no torch model to lower (an ONNX model's: use "
                         "Compressed.trace())")
    wl = lower(result.model, example, name=name, keep_weights=True, source=f"compressed:{name}")
    return wl.with_ops([compressed_op(op, result) for op in wl.ops])


def compressed_op(op, result: CompressionResult):
    """``op`` with its operands as ``result`` left them: inputs at ``act_bits`` (fixed point)
    where activations were quantised, the weight's N:M structure, and shared weights as
    codebook indices (``dtype`` ``index``) or quantised ones as ints of their width."""
    from dataclasses import replace

    from ..trace import Operand

    bits = {l.name: l.weight_bits for l in result.layers}
    a = op.operand("input")
    if result.act_bits is not None and op.is_gemm and a is not None:
        na = Operand("input", a.shape, result.act_bits, "fixed", a.density)
        op = replace(op, operands=tuple(na if o.role == "input" else o for o in op.operands))
    w = op.operand("weight")
    if w is not None and op.phase == "forward" and op.name in result.structures:
        w = replace(w, structure=result.structures[op.name])
        op = replace(op, operands=tuple(w if o.role == "weight" else o for o in op.operands))
    if w is not None and op.name in result.shared:
        s = result.shared[op.name]
        nw = Operand("weight", w.shape, s.bits, "index", w.density, values=w.values, structure=w.structure,
                     codebook=s.codebook.numpy().astype(np.float32))
        op = replace(op, operands=tuple(nw if o.role == "weight" else o for o in op.operands))
    elif w is not None and op.name in bits and bits[op.name] < 32:
        nw = Operand("weight", w.shape, bits[op.name], "int", w.density, values=w.values, structure=w.structure)
        op = replace(op, operands=tuple(nw if o.role == "weight" else o for o in op.operands))
    return op

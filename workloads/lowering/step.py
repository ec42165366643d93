"""What a training step's lowering adds around the model: the default loss, the model's
repeated blocks (for recomputation) and each parameter's shape, width and the ops that
wrote its gradient."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..errors import HwsimError
from .events import resolve
from .recorder import Recorder
from .tensors import DTYPE_BITS

__all__ = ["blocks_of", "default_loss", "parameters"]


def default_loss(output: Any) -> torch.Tensor:
    """Cross-entropy over the last dimension against class 0 (a classifier's or a language
    model's head), or the mean square of a single-value output."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, torch.Tensor):
        raise HwsimError("training needs a tensor output (or a loss function) to differentiate")
    if out.dim() >= 2 and out.shape[-1] > 1 and out.is_floating_point():
        logits = out.reshape(-1, out.shape[-1])
        return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=out.device))
    return out.float().pow(2).mean()


def blocks_of(model: torch.nn.Module) -> list[str]:
    """The repeated blocks of a model (transformer layers, residual blocks): the children
    of every ModuleList (of any length) or Sequential (of two or more) holding non-leaf
    modules of one class."""
    out: list[str] = []
    for path, mod in model.named_modules():
        if isinstance(mod, (torch.nn.ModuleList, torch.nn.Sequential)):
            kids = list(mod.named_children())
            types = {type(c) for _, c in kids}
            least = 1 if isinstance(mod, torch.nn.ModuleList) else 2
            if len(kids) >= least and len(types) == 1 and any(True for _ in kids[0][1].children()):
                out.extend(f"{path}.{n}" if path else n for n, _ in kids)
    return out


def parameters(model: torch.nn.Module, lw: Recorder, alias: dict[int, int], names: dict[int, str],
               grad_writers: Mapping[int, frozenset[int]]) -> dict[str, Any]:
    """parameter name -> its shape, bits and the ops that wrote its gradient (noted when it
    was accumulated, or read from ``.grad`` after backward)."""
    out = {}
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        wrote = grad_writers.get(id(p), frozenset()) | (lw.reads(p.grad) if p.grad is not None else frozenset())
        writers = sorted({names[r] for r in (resolve(alias, x) for x in wrote) if r in names})
        out[pname] = {"shape": [int(s) for s in p.shape], "bits": DTYPE_BITS.get(p.dtype, (32, "float"))[0],
                      "grad": writers}
    return out

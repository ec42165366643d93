"""Magnitude pruning on ``torch.nn.utils.prune``: per layer or global, unstructured or
structured (whole filters / output rows), one-shot or iterative with retraining, and the
Dense-Sparse-Dense schedule (Han et al., ICLR 2017)."""

from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.utils.prune as tprune
from torch import nn

from ..errors import HwsimError

__all__ = ["Layer", "dense_sparse_dense", "iterative", "magnitude_prune", "make_permanent", "masks", "nm_mask",
           "nm_prune", "prunable", "satisfies_nm"]

Layer = nn.Linear | nn.Conv2d     # a layer with weights to prune


class UnsortedL1Unstructured(tprune.L1Unstructured):
    """``torch.nn.utils.prune.L1Unstructured`` with the same masks, faster: on CPU ``topk``
    picks the k smallest with ``std::nth_element`` and then sorts them unless ``sorted=False``
    (ATen's TopKImpl.h), and the mask depends only on which were picked, ties included."""

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        if t.device.type != "cpu":
            return super().compute_mask(t, default_mask)
        k = tprune._compute_nparams_toprune(self.amount, t.nelement())
        tprune._validate_pruning_amount(k, t.nelement())
        mask = default_mask.clone(memory_format=torch.contiguous_format)
        if k:
            mask.view(-1)[torch.topk(torch.abs(t).view(-1), k=k, largest=False, sorted=False).indices] = 0
        return mask


def prunable(model: nn.Module) -> dict[str, Layer]:
    """Layers with weights to prune: every Linear and Conv2d, by module path."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def magnitude_prune(model: nn.Module, keep: float | Mapping[str, float], scope: str = "layer",
                    structured: bool = False) -> nn.Module:
    """Keep the largest-magnitude fraction ``keep`` of weights (per layer, or ``scope='global'``
    across layers); ``structured`` removes whole output filters/rows by L2 norm."""
    layers = prunable(model)
    per = keep if isinstance(keep, Mapping) else {n: keep for n in layers}
    for n, k in per.items():
        if n not in layers:
            raise HwsimError(f"prune: no prunable layer {n!r}; layers: {', '.join(layers)}")
        if not 0 < k <= 1:
            raise HwsimError(f"prune: keep for {n!r} must be in (0, 1], got {k}")
        size = layers[n].weight.numel()
        if round(k * size) < 1:
            raise HwsimError(f"prune: keep {k:g} of {n!r}'s {size} weights keeps none; keep at least "
                             f"{1 / size:.3g} (one weight)")
    if scope == "global":
        if structured or isinstance(keep, Mapping):
            raise HwsimError("prune: global scope takes one unstructured keep fraction")
        tprune.global_unstructured([(layers[n], "weight") for n in per], pruning_method=UnsortedL1Unstructured,
                                   amount=1 - keep)
        return model
    if scope != "layer":
        raise HwsimError(f"prune: scope must be 'layer' or 'global', got {scope!r}")
    for n, k in per.items():
        if k >= 1:
            continue
        if structured:
            tprune.ln_structured(layers[n], "weight", amount=1 - k, n=2, dim=0)
        else:
            UnsortedL1Unstructured.apply(layers[n], "weight", amount=1 - k)     # as tprune.l1_unstructured
    return model


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The N:M mask of a Linear ([out, in]) or Conv2d ([out, in, kh, kw]) weight: in every
    group of ``m`` consecutive weights along the reduction dimension (in, then kh, kw: the
    GEMM's K, as the im2col view flattens it) keep the ``n`` of largest magnitude. Sparse
    tensor cores take 2:4 along K (NVIDIA A100 whitepaper, 2020)."""
    flat = weight.detach().reshape(weight.shape[0], -1)
    K = flat.shape[1]
    if K % m:
        raise HwsimError(f"prune: structure {n}:{m} needs the reduction size to be a multiple of {m}; "
                         f"this layer's is {K} (leave it out of the plan or give it structure: none)")
    groups = flat.abs().reshape(flat.shape[0], K // m, m)
    top = groups.topk(n, dim=-1, sorted=False).indices        # ties: torch's topk order, deterministic on CPU
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top, True)
    return mask.reshape(weight.shape)


def nm_prune(model: nn.Module, structures: Mapping[str, tuple[int, int]]) -> nn.Module:
    """Prune each named layer to its N:M structure; the masks stay on through retraining
    (``torch.nn.utils.prune.custom_from_mask``) until :func:`make_permanent`."""
    layers = prunable(model)
    for name, (n, m) in structures.items():
        if name not in layers:
            raise HwsimError(f"prune: no prunable layer {name!r}; layers: {', '.join(layers)}")
        tprune.custom_from_mask(layers[name], "weight", nm_mask(layers[name].weight, n, m))
    return model


def satisfies_nm(weight: torch.Tensor, n: int, m: int) -> bool:
    """Whether at most ``n`` of every ``m`` consecutive weights along K are non-zero."""
    flat = weight.detach().reshape(weight.shape[0], -1)
    if flat.shape[1] % m:
        return False
    return bool(((flat.reshape(flat.shape[0], -1, m) != 0).sum(-1) <= n).all())


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold masks into the weights (``weight_orig * weight_mask`` becomes ``weight``)."""
    for m in prunable(model).values():
        if tprune.is_pruned(m):
            tprune.remove(m, "weight")
    return model


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: (m.weight != 0) for n, m in prunable(model).items()}


def iterative(model: nn.Module, keeps: list[float], retrain: Callable[[nn.Module], nn.Module],
              scope: str = "layer") -> nn.Module:
    """Prune to each keep fraction in turn (decreasing), retraining after each step."""
    for k in keeps:
        make_permanent(model)
        magnitude_prune(model, k, scope)
        retrain(model)
    return make_permanent(model)


def dense_sparse_dense(model: nn.Module, keep: float, train_fn: Callable[..., nn.Module]) -> nn.Module:
    """DSD: prune to ``keep`` and retrain sparse, then drop the masks (pruned weights
    restart at zero) and retrain dense at a lower learning rate."""
    magnitude_prune(model, keep)
    train_fn(model, lr=1e-3)
    make_permanent(model)
    return train_fn(model, lr=1e-4)

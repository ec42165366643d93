"""Trained quantisation (Deep Compression): k-means weight sharing per layer and codebook
fine-tuning, where each centroid is updated by the sum of the gradients of its weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..progress import step
from .prune import Layer
from .quantize import kmeans_share

__all__ = ["Shared", "codes_in_order", "finetune_codebooks", "share_weights"]


@dataclass
class Shared:
    codebook: torch.Tensor      # (k,) shared values
    index: torch.Tensor         # per weight: cluster index, -1 where pruned
    bits: int

    def weight(self) -> torch.Tensor:
        w = self.codebook[self.index.clamp(min=0)]
        return torch.where(self.index >= 0, w, torch.zeros_like(w))


def share_weights(layers: Mapping[str, Layer], bits: Mapping[str, int]) -> dict[str, Shared]:
    """Cluster each layer's non-zero weights into ``2**bits`` centroids (linear init)."""
    out = {}
    for n, m in layers.items():
        w = m.weight.detach()
        mask = w != 0
        cb, idx = kmeans_share(w[mask].numpy(), bits[n])
        full = torch.full(w.shape, -1, dtype=torch.long)
        kept = torch.from_numpy(idx)
        full[mask] = kept
        s = Shared(torch.tensor(cb, dtype=torch.float32), full, bits[n])
        with torch.no_grad():                   # s.weight(), gathering only the kept weights
            m.weight.zero_()
            m.weight[mask] = s.codebook[kept]
        out[n] = s
        step()                                  # progress: one layer shared
    return out


def finetune_codebooks(model: nn.Module, layers: Mapping[str, Layer], shared: Mapping[str, Shared], data: Any,
                       epochs: int = 10, lr: float = 1e-3, seed: int = 0) -> None:
    """Train with shared weights: per step, each centroid moves by ``lr`` times the sum of
    its weights' gradients (the weights themselves are rewritten from the codebook); the
    other parameters (biases, unshared layers) train normally."""
    from .train import train

    shared_params = {id(layers[n].weight) for n in shared}
    others = [p for p in model.parameters() if id(p) not in shared_params]

    def after_backward(_m):
        with torch.no_grad():
            for n, s in shared.items():
                w = layers[n].weight
                g = w.grad
                assert g is not None            # every shared layer is in the forward
                sel = s.index >= 0
                gsum = torch.zeros_like(s.codebook).index_add_(0, s.index[sel], g[sel])
                s.codebook -= lr * gsum
                w.copy_(s.weight())
                w.grad = None
    train(model, data, epochs=epochs, lr=lr, seed=seed, after_backward=after_backward, params=others)
    with torch.no_grad():
        for n, s in shared.items():
            layers[n].weight.copy_(s.weight())


def codes_in_order(s: Shared) -> np.ndarray:
    """Cluster index of every kept weight in flattened order (for the Huffman stage)."""
    idx = s.index.flatten().numpy()
    return idx[idx >= 0]

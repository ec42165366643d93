"""Low-rank factorisation: a linear layer as two (SVD), a KxCxRxS conv as an R x 1 conv
into ``rank`` channels followed by a 1 x S conv (Jaderberg et al. 2014, scheme 2, by SVD)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import HwsimError

__all__ = ["split_conv", "svd_linear"]


def _rank(s: np.ndarray, rank: int | None, energy: float | None) -> int:
    if energy is not None:
        if not 0 < energy <= 1:
            raise HwsimError(f"low rank: energy must be in (0, 1], got {energy}")
        cum = np.cumsum(s ** 2) / np.sum(s ** 2)
        return int(np.searchsorted(cum, energy - 1e-12) + 1)
    if rank is None:
        raise HwsimError("low rank: give rank or energy")
    if rank < 1:
        raise HwsimError(f"low rank: rank must be >= 1, got {rank}")
    return min(rank, s.size)


def svd_linear(layer: nn.Linear, rank: int | None = None, energy: float | None = None) -> nn.Sequential:
    """``W ~ U_r S_r V_r^T``: Linear(in, r, no bias) then Linear(r, out)."""
    W = layer.weight.detach().double().numpy()
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    r = _rank(s, rank, energy)
    first = nn.Linear(W.shape[1], r, bias=False)
    second = nn.Linear(r, W.shape[0], bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(np.sqrt(s[:r])[:, None] * Vt[:r]).float())
        second.weight.copy_(torch.from_numpy(U[:, :r] * np.sqrt(s[:r])[None, :]).float())
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def split_conv(conv: nn.Conv2d, rank: int | None = None, energy: float | None = None) -> nn.Sequential:
    """A K x C x R x S conv as Conv(C -> r, R x 1) then Conv(r -> K, 1 x S)."""
    if conv.groups != 1 or conv.dilation != (1, 1):
        raise HwsimError("split_conv supports ungrouped, undilated convolutions")
    if isinstance(conv.padding, str):
        raise HwsimError(f"split_conv needs numeric padding, got padding={conv.padding!r}")
    W = conv.weight.detach().double().numpy()        # K, C, R, S
    K, C, R, S = W.shape
    M = W.transpose(1, 2, 0, 3).reshape(C * R, K * S)  # rows (c, y), cols (k, x)
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    r = _rank(s, rank, energy)
    v = (U[:, :r] * np.sqrt(s[:r])).reshape(C, R, r).transpose(2, 0, 1)[..., None]    # r, C, R, 1
    h = (np.sqrt(s[:r])[:, None] * Vt[:r]).reshape(r, K, S).transpose(1, 0, 2)[:, :, None, :]  # K, r, 1, S
    first = nn.Conv2d(C, r, (R, 1), stride=(conv.stride[0], 1), padding=(conv.padding[0], 0), bias=False)
    second = nn.Conv2d(r, K, (1, S), stride=(1, conv.stride[1]), padding=(0, conv.padding[1]),
                       bias=conv.bias is not None)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(v).float())
        second.weight.copy_(torch.from_numpy(h).float())
        if conv.bias is not None:
            assert second.bias is not None          # made with a bias where the conv has one
            second.bias.copy_(conv.bias)
    return nn.Sequential(first, second)

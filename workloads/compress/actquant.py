"""Activation quantisation: each Linear/Conv2d input rounded to signed fixed point with the
radix point chosen from the largest magnitude observed on calibration data (as Ristretto
and EIE's 16-bit fixed point do). Implemented as forward pre-hooks, so the quantised
model still lowers to a trace, whose activation operands then carry ``bits``."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import HwsimError
from .prune import prunable
from .quantize import radix_point

__all__ = ["ActQuant"]


class ActQuant:
    """Hooks that quantise every layer input to ``bits`` (call ``remove()`` to undo)."""

    def __init__(self, model: nn.Module, bits: int, calibration: torch.Tensor):
        if bits < 2:
            raise HwsimError(f"activation bits must be >= 2, got {bits}")
        self.bits = bits
        self.frac: dict[str, int] = {}
        seen: dict[str, float] = {}
        layers = prunable(model)
        hooks = [m.register_forward_pre_hook(self._observe(n, seen)) for n, m in layers.items()]
        model.eval()
        with torch.no_grad():
            model(calibration)
        for h in hooks:
            h.remove()
        for n, mx in seen.items():
            self.frac[n] = radix_point(torch.tensor([mx]).numpy(), bits)
        self.handles = [m.register_forward_pre_hook(self._quantise(n)) for n, m in layers.items()]

    @staticmethod
    def _observe(name, seen):
        def hook(mod, args):
            seen[name] = max(seen.get(name, 0.0), float(args[0].detach().abs().max()))
        return hook

    def _quantise(self, name):
        scale = 2.0 ** self.frac[name]
        lim = 2 ** (self.bits - 1)

        def hook(mod, args):
            x = args[0]
            return (torch.clamp(torch.round(x * scale), -lim, lim - 1) / scale,) + tuple(args[1:])
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

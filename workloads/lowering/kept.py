"""Kept weights (``lower(..., keep_weights=...)``) of a large model written to a temporary
folder and mapped back read-only, so that a trace holds them without holding them in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import HwsimError

__all__ = ["WeightFolder"]


@dataclass
class WeightFolder:
    """Where kept weights of at least ``min_bytes`` go while a model is lowered (written
    ``slice_bytes`` at a time); the folder is removed when the lowering ends, the trace's
    mappings of its files stay valid."""

    dir: Path
    min_bytes: int
    slice_bytes: int
    files: int = 0

    def write(self, arr: torch.Tensor) -> np.ndarray:
        """``arr`` (float32) written to the folder as a ``.npy`` file and mapped back
        read-only. It is written a slice at a time, so that a weight is never copied whole:
        a transposed view goes out in Fortran order."""
        self.files += 1
        path = self.dir / f"{self.files}.npy"
        reverse = tuple(range(arr.dim() - 1, -1, -1))
        fortran = not arr.is_contiguous() and arr.dim() > 1 and arr.permute(*reverse).is_contiguous()
        flat = (arr.permute(*reverse) if fortran else arr.contiguous()).reshape(-1)
        buf = torch.empty(max(1, min(flat.numel(), self.slice_bytes // 4)), dtype=torch.float32)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": fortran,
                  "shape": tuple(arr.shape)}
        try:
            with open(path, "wb") as f:
                np.lib.format.write_array_header_1_0(f, header)
                for i in range(0, flat.numel(), buf.numel()):
                    n = min(buf.numel(), flat.numel() - i)
                    buf[:n].copy_(flat[i:i + n])          # one buffer, reused: no slice copies left on the heap
                    f.write(buf[:n].numpy().data)
        except OSError as e:
            raise HwsimError(f"lowering with kept weights: could not write them to {self.dir} ({e}); free space "
                             "there or point TMPDIR at a larger disk") from None
        values: np.ndarray = np.load(path, mmap_mode="r")
        return values

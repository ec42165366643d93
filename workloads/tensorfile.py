"""A trace's ``.npz`` of kept tensors, written a slice at a time.

``np.savez_compressed`` writes each array whole, which pulls an array mapped from disk
(the kept weights of a large model, see ``workloads.lower``) into memory page by page and
keeps every page mapped until the trace is dropped. Here each array is written in slices
of ``CHUNK_BYTES``, and a mapped array's pages are released as soon as they are written,
so saving a trace costs one slice of memory, not the model. The file is what
``np.savez_compressed`` writes (a deflated zip of ``.npy`` entries) and ``np.load`` reads.
"""

from __future__ import annotations

import mmap
import zipfile
from typing import IO, Any, Mapping

import numpy as np

__all__ = ["CHUNK_BYTES", "release_pages", "write_npz"]

CHUNK_BYTES = 16 << 20        # policy: a slice of a few MB costs little memory and few calls


def _mapping(arr: Any) -> mmap.mmap | None:
    """The memory map under ``arr`` (an ``np.memmap`` or a view of one), if any."""
    b = arr
    while b is not None:
        if isinstance(b, mmap.mmap):
            return b
        m = getattr(b, "_mmap", None)
        if isinstance(m, mmap.mmap):
            return m
        b = getattr(b, "base", None)
    return None


def release_pages(arr: Any) -> None:
    """Let the pages of a mapped array (an ``np.memmap`` or a view of one) go once it has been
    read: they stay valid (a later read maps them back from the file) but stop counting
    in the process's memory. Nothing for an array in memory."""
    mapped = _mapping(arr)
    if mapped is not None:
        mapped.madvise(mmap.MADV_DONTNEED)


def write_npz(f: IO[bytes], tensors: Mapping[str, np.ndarray]) -> None:
    """Write ``tensors`` to the open binary file ``f`` as ``np.savez_compressed`` would."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for name, value in tensors.items():
            arr = np.asanyarray(value)
            with z.open(name + ".npy", "w", force_zip64=True) as out:
                if arr.dtype.hasobject or not (arr.flags.c_contiguous or arr.flags.f_contiguous):
                    np.lib.format.write_array(out, arr, allow_pickle=False)
                    continue
                np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(arr))
                flat = (arr if arr.flags.c_contiguous else arr.T).reshape(-1)    # the data in file order
                step = max(1, CHUNK_BYTES // max(1, arr.itemsize))
                mapped = _mapping(arr)
                for i in range(0, flat.size, step):
                    out.write(flat[i:i + step].tobytes())
                    if mapped is not None:
                        mapped.madvise(mmap.MADV_DONTNEED)      # written: let the pages go

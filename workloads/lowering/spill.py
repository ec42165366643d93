"""Spilling and paging while a training step is lowered: the tensors autograd saves for
backward go to a temporary folder and come back when their backward node runs, paged-out
weights are regenerated for the node that reads them, and a language model's log-softmax
gradient is computed over the reloaded output it alone reads."""

from __future__ import annotations

import contextlib
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import torch

from ..errors import HwsimError
from .recorder import Recorder
from .tensors import storage_key

if TYPE_CHECKING:
    from ..zoo.lazy import Pager

__all__ = ["Spill", "log_softmax_backward_in_place"]


class Spill:
    """Keep the tensors autograd saves for backward in a temporary folder while a training
    step is lowered (beyond the first ``keep_bytes``), and read each back when its backward
    node runs: the lowering's memory then stops growing with the model's depth (Chen et
    al. 2016 trade recomputation for memory; here it is a disk round trip, exact to the bit, so
    every density the trace measures is unchanged). The whole storage is kept with the
    view's geometry, and the events that wrote it (and a fake-quant width) are carried
    over to the reloaded storage, so producers and operands are what they would have
    been. The folder is removed when the step is recorded. Gradients are dropped as soon
    as they are accumulated, once the events that wrote them are noted. A model that makes
    its weights real as it runs (``workloads.zoo.lazy``) empties them after each module's
    forward; a backward node that reads one gets it regenerated (:meth:`page_in`).
    ``in_place`` computes a gradient over a reloaded tensor that only its node reads
    (:func:`log_softmax_backward_in_place`)."""

    def __init__(self, lw: Recorder, model: torch.nn.Module, min_bytes: int, keep_bytes: int,
                 in_place: Callable[[Mapping[str, Any]], torch.Tensor | None]) -> None:
        self.lw, self.model, self.min_bytes, self.keep_bytes = lw, model, min_bytes, keep_bytes
        self.in_place = in_place
        self.n = 0
        self.kept = 0
        self.grad_writers: dict[int, frozenset[int]] = {}
        self._stack = contextlib.ExitStack()
        # a model that makes its weights real as it runs may page them out (workloads.zoo.lazy)
        self.pager: Pager | None = next((getattr(m, "_hwsim_pager") for m in model.modules()
                                         if hasattr(m, "_hwsim_pager")), None)
        # paged-in module -> (events recorded when last unpacked, a storage key of it)
        self.resident: dict[int, tuple[int, int]] = {}

    def __enter__(self) -> "Spill":
        self.dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="hwsim-lower-")))
        self._stack.enter_context(torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack))
        self.hooked: weakref.WeakSet[torch.Tensor] = weakref.WeakSet()
        for p in self.model.parameters():
            self.watch(p)
        self.lw.on_param.append(self.watch)              # a model that makes its weights real in forward
        self._stack.callback(self.lw.on_param.remove, self.watch)
        self.lw.in_place = self.in_place
        self._stack.callback(setattr, self.lw, "in_place", None)
        if self.pager is not None:
            self.pager.enabled, self.lw.pager = True, self.pager
            self._stack.callback(setattr, self.pager, "enabled", False)
            self._stack.callback(setattr, self.lw, "pager", None)
        return self

    def watch(self, p: torch.Tensor) -> None:
        if isinstance(p, torch.nn.Parameter) and p.requires_grad and not p.is_meta and p not in self.hooked:
            self.hooked.add(p)
            self._stack.callback(p.register_post_accumulate_grad_hook(self.accumulated).remove)

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def accumulated(self, p: torch.Tensor) -> None:
        if p.grad is not None:
            self.grad_writers[id(p)] = self.grad_writers.get(id(p), frozenset()) | self.lw.reads(p.grad)
            p.grad = None

    def pack(self, t: torch.Tensor) -> Any:
        key = storage_key(t)
        if t.is_meta or key is None or key in self.lw.static or t.layout != torch.strided:
            return t
        nbytes = t.untyped_storage().nbytes()
        if nbytes < self.min_bytes or self.kept + nbytes <= self.keep_bytes:
            self.kept += nbytes
            return t
        self.n += 1
        path = self.dir / f"{self.n}.bin"
        self.lw.silent += 1                      # the copy out is not the model's work
        try:
            torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()).numpy().tofile(path)
        except OSError as e:
            raise HwsimError(f"lowering a training step: could not keep saved activations in {self.dir} ({e}); "
                             "free space there or point TMPDIR at a larger disk") from None
        finally:
            self.lw.silent -= 1
        return (path, t.dtype, t.size(), t.stride(), t.storage_offset(), t.requires_grad,
                list(self.lw.made_by.get(key, ())), self.lw.bits_of.get(key))

    def unpack(self, packed: Any) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            if self.pager is not None and self.pager.enabled:
                self.page_in(packed)
            return packed
        path, dtype, size, stride, offset, grad, written, bits = packed
        self.lw.silent += 1                      # nor is the copy back
        try:
            storage = torch.from_numpy(np.fromfile(path, dtype=np.uint8)).untyped_storage()
            t = torch.empty(0, dtype=dtype).set_(storage, offset, size, stride)
        finally:
            self.lw.silent -= 1
        key = storage_key(t)
        if key is not None:              # a new storage: whatever a freed one at this key left is gone
            self.lw.reloaded[key] = len(self.lw.events)     # private to the node that unpacks it
            self.lw.made_by[key] = list(written)
            if bits is not None:
                self.lw.bits_of[key] = bits
            else:
                self.lw.bits_of.pop(key, None)
        return t.requires_grad_(grad) if grad and t.is_floating_point() else t

    def page_in(self, t: torch.Tensor) -> None:
        """Refill a paged-out weight that a backward node is about to read, after emptying
        the weights paged in for earlier nodes. A node unpacks all it saved before it runs
        an op, so a weight unpacked before the last recorded event belongs to a node that
        has finished."""
        assert self.pager is not None
        key = storage_key(t)
        unit = self.pager.unit(key) if key is not None else None
        if key is None or unit is None:
            return
        now = len(self.lw.events)
        if self.pager.empty(key):
            for other, (mark, its_key) in list(self.resident.items()):
                if mark < now:
                    self.pager.release(its_key)
                    del self.resident[other]
            self.lw.silent += 1                  # regenerating values is not the model's work
            try:
                self.pager.refill(key)
            finally:
                self.lw.silent -= 1
        self.resident[unit] = (now, key)


def log_softmax_backward_in_place(b: Mapping[str, Any]) -> torch.Tensor | None:
    """A log-softmax's input gradient written over ``output``, a saved tensor that the
    spill folder (:class:`Spill`) gave back to this backward node and that nothing else reads
    (the caller checks, :meth:`Recorder.private`). A language model's loss otherwise
    holds three vocabulary-sized tensors at once (the gradient, the reloaded output and
    the result; 200 MB each for GPT-2 at 1,024 tokens), the peak of its training step.
    The op itself runs on blocks of rows (it works row by row, so the values are the same
    to the bit) and each block is copied over the rows of ``output`` it read. None where
    the output is not a contiguous tensor of the gradient's shape reduced over its last
    dimension: the op then runs as it is."""
    grad, output, dim = b.get("grad_output"), b.get("output"), b.get("dim")
    if not (isinstance(grad, torch.Tensor) and isinstance(output, torch.Tensor) and isinstance(dim, int)
            and output.dim() >= 1 and dim % output.dim() == output.dim() - 1 and output.is_contiguous()
            and output.dtype == grad.dtype and output.shape == grad.shape):
        return None
    width = output.shape[-1]
    rows_out, rows_grad = output.view(-1, width), grad.reshape(-1, width)
    step = max(1, _LOG_SOFTMAX_BLOCK_BYTES // max(1, width * output.element_size()))
    for r in range(0, rows_out.shape[0], step):
        rows_out[r:r + step] = torch.ops.aten._log_softmax_backward_data(
            rows_grad[r:r + step], rows_out[r:r + step], 1, b["input_dtype"])
    return output


# Rows of a log-softmax gradient computed at a time over a reloaded output (policy: a few MB)
_LOG_SOFTMAX_BLOCK_BYTES = 8 << 20

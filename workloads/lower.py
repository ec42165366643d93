"""Lower a ``torch.nn.Module`` plus an example input into a :class:`~workloads.trace.Workload`.

The model runs once under a ``TorchDispatchMode`` that sees every aten (and
``quantized::``) operation with its real tensors, while module pre/post hooks keep a
stack of module paths so each op is named after the layer it belongs to. This handles
control flow, depthwise convs, ``torch.nn.utils.prune`` masks, dynamic/static int8
quantized modules (weights unpacked from their packed params), fake-quant/QAT modules
(bits from ``log2(quant_max - quant_min + 1)``) and LSTM/GRU (oneDNN is switched off
inside RNN modules only, so an LSTM becomes one input GEMM plus one recurrent GEMM per
time step).

**The graph** comes from tensor identity: every tensor an op writes is tagged with the op
that made it (views and copies carry their source's tag, in-place ops retag the part of
the storage they write), and an op's producers are the tags of the tensors it reads.
Consecutive repetitions of one block of identical ops (an RNN's time steps, a layer
applied in a loop) are folded into one block: into ``steps`` when a repetition reads an
earlier one's output (the loop-carried edge then lives in ``steps``), else ``copies``.

**Attention** runs through PyTorch's math backend (``attention="unfused"``): Q/K/V
projections, QK^T and PV as batched GEMMs with heads as copies, the mask, the softmax.
With ``attention="fused"`` every ``scaled_dot_product_attention`` call becomes one
``attention`` op (see ``workloads.trace``), forward and backward. PyTorch's
``nn.MultiheadAttention``/``nn.Transformer*`` fast path is switched off while lowering, so
stock layers take the same route.

**Training** (``train=True``): the model runs in train mode with gradients, a loss is
taken (``loss(output)``, default cross-entropy over the last dimension), and
``loss.backward()`` runs under the same dispatch mode. Each backward op is named after
the forward op it differentiates (autograd's sequence numbers link them): a GEMM's
input-gradient GEMM is ``NAME.dgrad``, its weight-gradient GEMM ``NAME.wgrad``, other
gradients ``NAME.grad``; all have phase ``backward``. The optimizer update and activation
recomputation are added by ``workloads.training``.

**Big models** lower on PyTorch's meta device (parameters with shapes and no data):
densities cannot be measured there and take the ``density`` given (1.0 by default).
Densities are otherwise measured from the real tensors: weights after masking,
activations as they arrive at the op.

The parts live in :mod:`workloads.lowering`, one concept a module; this module is the
entry point and holds the memory policies (which the tests set here).
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from .aten_ops import IGNORED_OPS, NON_GEMM_OPS
from .errors import HwsimError, LoweringError
from .lowering.attention import ATTENTION_MODES, FusedSDPA
from .lowering.dispatch import Capture
from .lowering.events import fold, to_ops
from .lowering.kept import WeightFolder
from .lowering.recorder import Recorder
from .lowering.spill import Spill as _Spill, log_softmax_backward_in_place as _log_softmax_backward_in_place
from .lowering.step import blocks_of, default_loss, parameters
from .trace import Workload

__all__ = ["lower", "LoweringError", "NON_GEMM_OPS", "IGNORED_OPS", "ATTENTION_MODES", "blocks_of", "default_loss",
           "SPILL_MIN_BYTES", "SPILL_KEEP_BYTES", "KEEP_ON_DISK_BYTES", "KEEP_SLICE_BYTES"]

# A training step's lowering keeps the first SPILL_KEEP_BYTES of saved tensors in memory
# and spills later ones of at least SPILL_MIN_BYTES to a temporary folder (policies: a
# small model never touches the disk; a small tensor is not worth a file). None: nothing
# is spilled and gradients are kept until the end (the tests compare the two).
SPILL_MIN_BYTES: int | None = 1 << 20
SPILL_KEEP_BYTES = 16 << 20
# Kept weights (``keep_weights``) of at least KEEP_ON_DISK_BYTES are written to a temporary
# folder and mapped back read-only while a model is lowered, so a trace of a large model's
# weights does not hold them in memory (policy: a small tensor is not worth a file). None:
# kept weights stay in memory (the tests compare the two).
KEEP_ON_DISK_BYTES: int | None = 1 << 20
KEEP_SLICE_BYTES = 16 << 20      # written a slice of this size at a time (policy: a few MB)
# The policies above, ``_Spill`` and ``_log_softmax_backward_in_place`` are read from this
# module each time ``lower`` runs, so that setting them here (as the tests do) takes effect.


def lower(model: torch.nn.Module, example_input: Any, name: str | None = None, *,
          batch: int | None = None, keep_weights: bool | str = False, source: str = "",
          meta: dict[str, Any] | None = None, train: bool = False,
          loss: Callable[[Any], torch.Tensor] | None = None,
          attention: str = "unfused", density: float = 1.0) -> Workload:
    """Run ``model`` once on ``example_input`` and return its workload trace.

    ``example_input`` is a tensor or a tuple of positional inputs. ``batch`` defaults to
    the first dimension of the first input. ``keep_weights`` stores the real weight
    tensors in the trace (for sparse simulators and compression accounting); ``"sparse"``
    stores only those with zeros (a dense tensor's values change no simulator's timing). ``train``
    records forward, loss and backward (add the optimizer with ``workloads.training``);
    ``loss(output)`` defaults to :func:`default_loss`. ``attention`` is ``unfused`` (QK^T,
    softmax and PV as separate ops) or ``fused`` (one ``attention`` op). ``density`` is
    the declared density of tensors on the meta device, which has no values to count.
    """
    if not isinstance(model, torch.nn.Module):
        raise HwsimError(f"lower() needs a torch.nn.Module, got {type(model).__name__}")
    if attention not in ATTENTION_MODES:
        raise HwsimError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {attention!r}")
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    first = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
    if first is None:
        raise HwsimError("lower() needs at least one tensor in example_input")
    lw = Recorder(model, keep_weights, density)
    handles = []
    for _, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(lw.pre_hook))
        handles.append(mod.register_forward_hook(lw.post_hook))
    was_training = model.training
    fastpath = torch.backends.mha.get_fastpath_enabled()
    model.train(train)
    spill = None
    try:
        torch.backends.mha.set_fastpath_enabled(False)       # nn.MultiheadAttention's fused path
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.enable_grad() if train else torch.no_grad())
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message=".*TF32 acceleration.*")
            if attention == "unfused":
                from torch.nn.attention import SDPBackend, sdpa_kernel
                stack.enter_context(sdpa_kernel(SDPBackend.MATH))
            else:
                stack.enter_context(FusedSDPA(lw))
            stack.enter_context(Capture(lw))
            if keep_weights and KEEP_ON_DISK_BYTES is not None:
                # unlinked when the lowering ends; the trace's mappings of the files stay valid
                lw.kept = WeightFolder(Path(stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="hwsim-weights-", ignore_cleanup_errors=True))),
                    KEEP_ON_DISK_BYTES, KEEP_SLICE_BYTES)
            if train and SPILL_MIN_BYTES is not None:
                spill = stack.enter_context(_Spill(lw, model, SPILL_MIN_BYTES, SPILL_KEEP_BYTES,
                                                   _log_softmax_backward_in_place))
            out = model(*inputs)
            if train:
                with lw.scope("loss"):
                    value = (loss or default_loss)(out)
                del out                    # backward does not read the output; a vocabulary's logits are big
                value.backward()
    finally:
        for h in handles:
            h.remove()
        while lw.rnn_ctx:
            lw.rnn_ctx.pop().__exit__(None, None, None)
        model.train(was_training)
        torch.backends.mha.set_fastpath_enabled(fastpath)
    alias: dict[int, int] = {}
    ops, names = to_ops(fold(lw.events, alias), alias)
    info = dict(meta or {})
    if train:
        info["parameters"] = parameters(model, lw, alias, names, spill.grad_writers if spill else {})
        info.setdefault("blocks", blocks_of(model))
    return Workload(name=name or type(model).__name__.lower(), ops=tuple(ops),
                    batch=batch if batch is not None else int(first.shape[0]) if first.dim() else 1,
                    input_shape=tuple(first.shape), source=source or f"torch:{type(model).__name__}",
                    meta=info)

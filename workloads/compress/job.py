"""``hwsim compress`` as a function: a zoo model, ``file.py:factory``, an ONNX model (see
:mod:`workloads.compress.onnx`), or LeNet trained on scikit-learn's digits, compressed by a plan and the flags that override its defaults, on one thread so that the
accuracies and k-means codebooks do not depend on the machine's core count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workloads.errors import HwsimError

from .plan import CompressionResult, compress, compressed_trace, load_plan, plan_from_dict

__all__ = ["Compressed", "compress_model"]


@dataclass(frozen=True)
class Compressed:
    """A compressed model: ``result`` (per-layer masks, codebooks, accuracies), the example
    input it is lowered with and the MODEL's name; ``lowered``: the compressed trace itself
    where there is no torch model to lower (ONNX)."""

    model: str
    result: CompressionResult
    example: Any
    lowered: Any = None

    def report(self) -> dict[str, Any]:
        """Deep Compression's storage accounting per layer and total (``hwsim compress --format json``)."""
        return self.result.report()

    def trace(self) -> Any:
        """The compressed model lowered with its real weights and codebooks (a Workload)."""
        if self.lowered is not None:
            return self.lowered
        return compressed_trace(self.result, self.example, self.model)


def compress_model(model: str, *, plan: str | None = None, prune: float | None = None, share_bits: int | None = None,
                   quant_bits: int | None = None, act_bits: int | None = None, index_bits: int | None = None,
                   structure: str | None = None, train_on: str | None = None, seed: int = 0,
                   batch: int | None = None, seq_len: int | None = None) -> Compressed:
    """Compress ``model`` with the YAML ``plan`` (else no per-layer choices) whose defaults the
    flags override: ``prune`` (the fraction removed), ``share_bits`` (k-means sharing) or
    ``quant_bits`` (linear), ``act_bits``, ``index_bits``, ``structure`` (N:M). ``train_on``
    ``"digits"`` trains LeNet-300/LeNet-5 on 8x8 digits, retrains after pruning and reports
    accuracy. ``batch`` and ``seq_len`` size the example input the result is lowered with."""
    from .train import one_thread

    with one_thread():
        return _compress(model, plan, prune, share_bits, quant_bits, act_bits, index_bits, structure, train_on, seed,
                         batch, seq_len)


def _compress(model: str, plan: str | None, prune: float | None, share_bits: int | None, quant_bits: int | None,
              act_bits: int | None, index_bits: int | None, structure: str | None, train_on: str | None,
              seed: int, batch: int | None, seq_len: int | None) -> Compressed:
    import torch

    p = load_plan(plan) if plan else plan_from_dict({})
    if prune is not None:
        if not 0 <= prune < 1:
            raise HwsimError(f"--prune must be in [0, 1) (the fraction removed), got {prune}")
        p.default["keep"] = 1 - prune
    for flag, v in (("--share-bits", share_bits), ("--quant", quant_bits), ("--index-bits", index_bits),
                    ("--act-bits", act_bits)):
        if v is not None and not 1 <= v <= 32:
            raise HwsimError(f"{flag} must be in 1..32 (weights and activations are at most 32-bit), got {v}")
    if share_bits is not None:
        p.default["weight_bits"] = share_bits
    if structure is not None:
        from workloads.trace import structure_nm
        if structure != "none" and structure_nm(structure) is None:
            raise HwsimError(f"--structure must be N:M with integers 1 <= N < M <= 64 (e.g. 2:4) or none, "
                             f"got {structure!r}")
        if prune is not None and structure != "none":
            raise HwsimError("use --prune or --structure, not both (a layer is pruned by one of them)")
        p.default["structure"] = structure
    if index_bits is not None:
        p.default["index_bits"] = index_bits
    if share_bits is not None and quant_bits is not None:
        raise HwsimError("use --share-bits or --quant, not both")
    if train_on not in (None, "digits"):
        raise HwsimError(f"--train: the data set is digits (scikit-learn's 8x8 digits), got {train_on!r}")
    if act_bits is not None and act_bits < 2:
        raise HwsimError(f"--act-bits must be >= 2, got {act_bits}")
    if model.endswith(".onnx"):
        from workloads.onnx_input import read_onnx

        from .onnx import compress_onnx
        if train_on is not None:
            raise HwsimError(f"--train {train_on}: {model} is an ONNX model, which hwsim lowers but does not run; "
                             "retraining and accuracy need a torch model (lenet300 or lenet5)")
        if seq_len is not None:
            raise HwsimError(f"--seq-len: {model} is an ONNX model with its own input shape; leave out --seq-len")
        res, wl = compress_onnx(read_onnx(model, batch, keep_weights=True), p, quant_bits=quant_bits, act_bits=act_bits,
                                seed=seed)
        return Compressed(model, res, None, wl)
    torch.manual_seed(seed)
    data = None
    if train_on == "digits":
        from workloads.zoo.lenet import LeNet5, LeNet300

        from .train import digits, train
        builders = {"lenet300": LeNet300, "lenet5": LeNet5}
        if model not in builders:
            raise HwsimError(f"--train digits works with {', '.join(builders)} (8x8 inputs), not {model!r}")
        if seq_len is not None:
            raise HwsimError(f"--seq-len: {model} takes images, not sequences; leave out --seq-len")
        net: torch.nn.Module = builders[model](in_size=8)
        data = digits(seed)
        train(net, data, epochs=30, seed=seed)
        example = data[2][:batch or 1]
        if batch is not None and batch > len(data[2]):
            raise HwsimError(f"--batch {batch}: the digits test split has {len(data[2])} images; give at most that")
    else:
        from workloads.spec import torch_model
        net, example = torch_model(model, batch, seq_len)
    calib = data[0] if data is not None else (example if not isinstance(example, tuple) else None)
    res = compress(net, p, data=data, quant_bits=quant_bits, act_bits=act_bits, calibration=calib, seed=seed)
    return Compressed(model, res, example)

"""The option groups ``hwsim`` commands share (how a model is lowered, which design and how
it is priced, the trace cache, table columns), declared once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from .simulate import TC_PRECISIONS

__all__ = ["MODEL_HELP", "cache_option", "columns_option", "design_options", "lowering_options", "with_model_help"]

F = TypeVar("F", bound=Callable[..., Any])

MODEL_HELP = ("MODEL is a zoo name (see 'hwsim models'), a saved trace .json, a SCALE-Sim topology .csv, "
              "an ONNX model .onnx, "
              "path/to/file.py:factory, gpt:LAYERS,HIDDEN,HEADS[,SEQ,VOCAB], gemm:M,N,K[:fp16] or "
              "conv:N,C,H,W,K,R,S[,stride,pad]. A file.py:factory is your code: its print() goes to stderr, "
              "torch is seeded before it runs (with --seed where the command has one, else 0), and "
              "'hwsim --max-time' stops it when given.")


def with_model_help(cmd: click.Command) -> click.Command:
    """``cmd`` with MODEL's forms appended to its help."""
    cmd.help = inspect.cleandoc(cmd.help or "") + "\n\n" + MODEL_HELP
    return cmd


def _apply(f: F, options: list[Callable[[F], F]]) -> F:
    for opt in reversed(options):
        f = opt(f)
    return f


def lowering_options(f: F) -> F:
    """How a torch model is lowered: inference or a training step, precision, attention, decode."""
    return _apply(f, [
        click.option("--train", is_flag=True, help="Lower one training step: forward, loss, backward, optimizer."),
        click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]), default=None,
                     help="The update of a training step (SGD with momentum, Adam, AdamW)."),
        click.option("--recompute", type=click.Choice(["none", "selective", "full"]), default="none",
                     show_default=True, help="Activation recomputation of a training step."),
        click.option("--precision", default=None,
                     help=f"The trace's precision: fp32 (default); fp16-mixed, bf16-mixed, fp8-mixed as "
                          "torch.autocast runs them; fp16-o2, bf16-o2 with the model cast to 16 bits (Megatron-LM, "
                          "DeepSpeed, Apex O2); fp8-hybrid, bf16-o2 with a transformer's block Linear layers in FP8 "
                          f"and Transformer Engine's casts. On GPUs also a tensor-core type forced for every GEMM: "
                          f"{', '.join(TC_PRECISIONS)}."),
        click.option("--attention", type=click.Choice(["unfused", "fused"]), default="unfused", show_default=True,
                     help="Attention as separate QK^T/softmax/PV ops, or as one fused (FlashAttention-style) op."),
        click.option("--decode", type=int, default=None,
                     help="Decoders: after the prompt (--seq-len), generate N tokens one at a time with a KV cache."),
    ])


def cache_option(f: F) -> F:
    """--no-cache: lower a torch model afresh instead of reading the trace cache (see 'hwsim
    cache'); for the command's run it also keeps the GPU SM core's main loops off the cache
    folder (set and reset around the command, so that a refused option leaves nothing set)."""
    @functools.wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        from sim.gpu.sm.mainloop import keep_on_disk
        with keep_on_disk(not kwargs.get("no_cache")):
            return f(*args, **kwargs)
    return click.option("--no-cache", "no_cache", is_flag=True,
                        help="Lower the model afresh: neither read nor write the cache folder ('hwsim cache': "
                             "traces, and GPUs' stepped SM main loops).")(cast(F, run))


def columns_option(f: F) -> F:
    return click.option("--columns", default=None, metavar="NAME,...",
                        help="Table columns to show (CSV names, comma-separated, or 'all'); "
                             "the default is a chosen set that fits 120 characters.")(f)


def design_options(f: F) -> F:
    """The design, its energy pricing, the workload's shape and the rewrites applied before simulating."""
    return _apply(f, [
        click.option("--arch", "arch", required=True,
                     help="A preset (see 'hwsim archs') or a YAML file {base: PRESET, FIELD: VALUE}."),
        click.option("--batch", type=int, default=None, help="Batch size (default: the model's own)."),
        click.option("--seq-len", type=int, default=None, help="Sequence length of recurrent models."),
        click.option("--seed", type=click.IntRange(min=0), default=None,
                     help="Seed for synthetic weights/activations (machines that draw them: EIE) and torch's "
                          "seed before a file.py:factory runs (default 0)."),
        click.option("--energy-table", "table", default=None,
                     help="horowitz45, han45, eyeriss65 or a YAML table file (default: the design's "
                          "energy_table, else horowitz45)."),
        click.option("--node", type=float, default=None,
                     help="Technology node (nm) to scale the energy table to (default: the design's)."),
        click.option("--compress", "compress_plan", type=click.Path(dir_okay=False), default=None,
                     help="Compress the model with this plan (see 'hwsim compress') before simulating."),
        click.option("--winograd", type=click.Choice(["2", "4"]), default=None,
                     help="Run 3x3 stride-1 convs as Winograd F(2x2,3x3) or F(4x4,3x3)."),
        click.option("--mapping", type=click.Choice(["fixed", "search"]), default="fixed", show_default=True,
                     help="search: each op in the mapping family (dataflow) best for --objective (systolic "
                          "designs); spatial designs always search their mappings, for --objective here "
                          "(else the design's own objective)."),
        click.option("--objective", type=click.Choice(["edp", "latency", "energy"]), default="edp",
                     show_default=True, help="What --mapping search minimises per op."),
        click.option("--fuse", type=click.Choice(["epilogue", "none"]), default=None,
                     help="GPUs: run bias, batch norm, activation and residual add in the GEMM's epilogue, as "
                          "inference libraries do, or a kernel each, as eager PyTorch (default: the design's "
                          "fusion, epilogue on the presets)."),
        click.option("--layout", type=click.Choice(["nhwc", "nchw"]), default=None,
                     help="GPUs: activations' layout; nchw (PyTorch's default) adds cuDNN's two transposes around "
                          "each tensor-core convolution (default: the design's layout, nhwc on the presets)."),
        cache_option,
    ])

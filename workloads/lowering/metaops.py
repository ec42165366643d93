"""Functional aten ops on the meta device, run once per distinct input: a meta-device model's
N identical blocks call each op with the same shapes N times, and PyTorch's meta kernels
(its Python references) cost more than all the lowering's own work. An op whose outputs
are new tensors (no aliasing, no mutation) has outputs that depend on its inputs' metadata
and its other arguments alone; they are remembered by those, and later calls get new
empty meta tensors of the same sizes, strides and dtypes (each a storage of its own, as
the kernel's were)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from .tensors import storage_key, tensors

__all__ = ["MetaOps"]

_SCALARS = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format)
# (sizes, strides, dtype) of each tensor output, or None for an output that is None
_Out = tuple[tuple[int, ...], tuple[int, ...], torch.dtype] | None
_Spec = tuple[_Out, ...]


def _key(v: Any, out: list[Any]) -> int:
    """Append ``v``'s part of the cache key to ``out``; the number of tensors in it, or -1
    where it has no key (a tensor not on the meta device, an object the key cannot stand for)."""
    if isinstance(v, torch.Tensor):
        if type(v) not in (torch.Tensor, torch.nn.Parameter) or not v.is_meta or v.layout != torch.strided \
                or v.is_conj() or v.is_neg():
            return -1
        out.append((v.dtype, tuple(v.shape), v.stride(), v.storage_offset(), v.requires_grad))
        return 1
    if isinstance(v, (list, tuple)):
        out.append((type(v), len(v)))
        n = 0
        for x in v:
            m = _key(x, out)
            if m < 0:
                return -1
            n += m
        return n
    if type(v) in _SCALARS:
        out.append((type(v), v))
        return 0
    return -1


def _spec(out: Any, inputs: list[torch.Tensor]) -> _Spec | None:
    """How to make ``out`` again (a tensor or a tuple of tensors and Nones), or None where
    new empty tensors would not be the same: a storage larger than the view, an offset, a
    storage shared with another output or an input."""
    outs = out if isinstance(out, tuple) else (out,)
    seen = {storage_key(t) for t in inputs}
    spec: list[_Out] = []
    for t in outs:
        if t is None:
            spec.append(None)
            continue
        if type(t) is not torch.Tensor or not t.is_meta or t.layout != torch.strided or t.is_conj() or t.is_neg() \
                or t.requires_grad or t.storage_offset() != 0:
            return None
        k = storage_key(t)
        again = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
        if k is None or k in seen or again.untyped_storage().nbytes() != t.untyped_storage().nbytes():
            return None
        seen.add(k)
        spec.append((tuple(t.shape), t.stride(), t.dtype))
    return tuple(spec)


class MetaOps:
    """Runs an op, or makes its outputs from what the same op on the same inputs gave."""

    def __init__(self) -> None:
        self.seen: dict[tuple[Any, ...], _Spec | None] = {}
        self.returns: dict[Any, int] = {}      # op -> its tensor outputs if all are new (no aliasing, no mutation), else 0

    def _returns(self, func: Any) -> int:
        n = self.returns.get(func)
        if n is None:
            schema = func._schema
            new = not schema.is_mutable and all(r.alias_info is None and str(r.type) in ("Tensor", "Tensor?")
                                                for r in schema.returns)
            n = self.returns[func] = len(schema.returns) if new else 0
        return n

    def __call__(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        returns = self._returns(func)
        if not returns:
            return func(*args, **kwargs)
        parts: list[Any] = [func]
        n = _key(args, parts)
        m = _key(tuple(kwargs.items()), parts) if n >= 0 else -1
        if m < 0 or n + m == 0:
            return func(*args, **kwargs)
        key = tuple(parts)
        spec = self.seen.get(key)
        if spec is not None:
            made = tuple(None if s is None else torch.empty_strided(s[0], s[1], dtype=s[2], device="meta")
                         for s in spec)
            return made if returns > 1 else made[0]
        out = func(*args, **kwargs)
        if key not in self.seen:
            self.seen[key] = _spec(out, tensors((args, kwargs)))
        return out

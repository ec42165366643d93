"""Parameters made real module by module as a meta-device model runs, and paged out again.

A zoo transformer is built on PyTorch's meta device, and :func:`materialize_lazily` gives
each module real parameters just before its forward: initialised as the module's
``reset_parameters`` does, seeded by the parameter's name, so every run sees the same
values. Inference drops them after the forward. A training step needs them again in
backward, so while one is lowered the :class:`Pager` empties their storage after the
forward instead (the tensors keep their shapes and their identity) and regenerates the
values, bit for bit, when a saved tensor that views them is unpacked in backward. The
step's memory then holds a module's weights at a time rather than the whole model's.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import HwsimError

__all__ = ["PAGE_MIN_BYTES", "Pager", "materialize_lazily", "on_meta"]

# torch.nn.init's in-place initialisers, which modules' reset_parameters call
_INITS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
          "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_")

# A module whose parameters take fewer bytes than this keeps them through a training step
# (policy: regenerating a layer norm's 3 KB saves nothing worth its time).
PAGE_MIN_BYTES = 1 << 20


def _init(first: nn.Module, name: str) -> None:
    # the CPU generator's seed, which is all ``torch.manual_seed`` sets here: on a machine
    # without an initialised GPU it also queues a seeding (with a formatted stack, a few ms)
    # for each accelerator type, never run and never freed
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.random.default_generator.manual_seed(zlib.crc32(name.encode()))
        first.reset_parameters()  # type: ignore[operator]


def _key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


class Pager:
    """Which module (and seed name) makes each real parameter, so that its storage can be
    emptied and refilled with the same values. ``enabled`` is set by the lowering of a
    training step (``workloads.lowering.spill``), the only reader of the protocol: ``release``,
    ``refill``, ``unit`` and ``empty``, each taking a parameter storage's key."""

    def __init__(self) -> None:
        self.enabled = False
        self.units: dict[int, tuple[nn.Module, str]] = {}     # storage key -> first owner, seed name
        self.nbytes: dict[int, int] = {}

    def register(self, first: nn.Module, name: str) -> None:
        params = [p for p in first.parameters(recurse=False)]
        if sum(p.numel() * p.element_size() for p in params) < PAGE_MIN_BYTES:
            return
        for p in params:
            self.units[_key(p)] = (first, name)
            self.nbytes[_key(p)] = p.untyped_storage().nbytes()

    def unit(self, key: int) -> int | None:
        """The module that makes the parameter of storage ``key`` (None: not paged)."""
        u = self.units.get(key)
        return id(u[0]) if u is not None else None

    def empty(self, key: int) -> bool:
        u = self.units.get(key)
        return u is not None and any(p.untyped_storage().nbytes() == 0 for p in u[0].parameters(recurse=False))

    def release(self, key: int) -> None:
        """Empty the storage of every parameter its module makes (shapes and identity stay)."""
        u = self.units.get(key)
        if u is None:
            return
        for p in u[0].parameters(recurse=False):
            p.untyped_storage().resize_(0)
        _trim()

    def refill(self, key: int) -> None:
        """Give the module's emptied parameters their values back, through aliases of their
        storage: the parameters' version counters do not move, so autograd still accepts the
        tensors it saved from them."""
        u = self.units.get(key)
        if u is None:
            return
        first, name = u
        originals: dict[str, Any] = dict(first._parameters)
        try:
            for pname, p in originals.items():
                if p is None:
                    continue
                st = p.untyped_storage()
                if st.nbytes() == 0:
                    st.resize_(self.nbytes[_key(p)])
                alias = torch.empty(0, dtype=p.dtype).set_(st, p.storage_offset(), p.size(), p.stride())
                first._parameters[pname] = nn.Parameter(alias, requires_grad=False)
            _init(first, name)
        finally:
            first._parameters.update(originals)


def materialize_lazily(model: nn.Module) -> None:
    """Hooks that give each module of a meta-device ``model`` real parameters for its
    forward. A parameter shared by several modules (a tied LM head) is one real tensor in
    all of them, initialised by its first owner (the embedding). After the forward,
    inference drops them (back to the meta device); a training step keeps them, emptied
    by the model's :class:`Pager` (``model._hwsim_pager``) while the lowering enables it."""
    originals = list(model.parameters())      # kept alive: the lowering keyed their storages
    groups: dict[int, tuple[str, list]] = {}
    for mname, mod in model.named_modules(remove_duplicate=False):
        for pname, p in mod.named_parameters(recurse=False):
            groups.setdefault(id(p), (f"{mname}.{pname}".lstrip("."), []))[1].append((mod, pname))
    slot = {(id(m), n): g for g in groups.values() for m, n in g[1]}
    pager = Pager()

    def load(mod: nn.Module, args) -> None:
        firsts: dict[int, tuple[str, nn.Module]] = {}
        for pname, p in list(mod.named_parameters(recurse=False)):
            if not p.is_meta:
                if pager.empty(_key(p)):          # paged out after an earlier forward (a tied head)
                    pager.refill(_key(p))
                continue
            name, owners = slot[(id(mod), pname)]
            new = nn.Parameter(torch.empty(p.shape, dtype=p.dtype), requires_grad=p.requires_grad)
            for m, n in owners:
                setattr(m, n, new)
            firsts.setdefault(id(owners[0][0]), (name, owners[0][0]))
        for name, first in firsts.values():
            _init(first, name)
            pager.register(first, name)

    def drop(mod: nn.Module, args, out) -> None:
        if torch.is_grad_enabled():                 # a training step: backward reads them
            if pager.enabled:
                for p in mod.parameters(recurse=False):
                    pager.release(_key(p))
            return
        for pname, p in list(mod.named_parameters(recurse=False)):
            meta = nn.Parameter(torch.empty(p.shape, dtype=p.dtype, device="meta"), requires_grad=p.requires_grad)
            for m, n in slot[(id(mod), pname)][1]:
                setattr(m, n, meta)
        _trim()

    for mod in model.modules():
        if next(mod.parameters(recurse=False), None) is not None:
            if not hasattr(mod, "reset_parameters"):
                raise HwsimError(f"{type(mod).__name__} has parameters but no reset_parameters()")
            mod.register_forward_pre_hook(load)
            mod.register_forward_hook(drop)
    model._hwsim_meta_originals = originals      # type: ignore[assignment]
    model._hwsim_pager = pager                   # type: ignore[assignment]


def _trim() -> None:
    """Give freed heap memory back to the OS (glibc's ``malloc_trim``; nothing elsewhere).
    A layer's weights and activations of 1-32 MB land on the heap once glibc raises its
    mmap threshold, and freeing them there does not lower the process's footprint: without
    this GPT-2 medium at 1,024 tokens peaks at 1.4 GB instead of 0.7 GB."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC = lib if hasattr(lib, "malloc_trim") else False
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """PyTorch's meta device, with ``torch.nn.init``'s initialisers skipped on meta tensors:
    a meta tensor has no values to initialise, and the first initialiser run on one costs
    over a second (PyTorch then imports its Python decompositions: 1.28 s measured on this
    project's 2-core machine for one ``nn.Embedding``), which a model built on the meta
    device never needs (:func:`materialize_lazily` initialises each module when it is made
    real). Real tensors are initialised as ever."""
    import torch.nn.init as init

    saved = {n: getattr(init, n) for n in _INITS if hasattr(init, n)}

    def skip(f: Any) -> Any:
        def initialiser(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            return tensor if tensor.is_meta else f(tensor, *args, **kwargs)
        return initialiser
    try:
        for n, f in saved.items():
            setattr(init, n, skip(f))
        with torch.device("meta"):
            yield
    finally:
        for n, f in saved.items():
            setattr(init, n, f)


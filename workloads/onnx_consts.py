"""The values of an ONNX graph's constant tensors, so that a weight's measured density (and,
when kept, its values) reach the trace as a torch model's do.

A weight is an initialiser, inline or as external data (mapped read-only from its file,
not read into memory), or what the nodes that relabel or dequantise constants make of one:
``Identity``, ``Cast``, ``Transpose``, ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``,
``DequantizeLinear`` and ``Constant``. Any other constant subgraph has no value here; its
weight keeps the declared density 1.0 (what the trace always said of ONNX weights before).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HwsimError

__all__ = ["Constants"]

_EVALUATED = {"Identity", "Cast", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "DequantizeLinear",
              "Constant"}


class Constants:
    """Values of constant tensors, each computed once (a tensor read by two ops is one array,
    so a tied weight is recognised as such)."""

    def __init__(self, g: Any, path: Path, onnx: Any) -> None:
        self.onnx, self.path = onnx, path
        self.inits = {t.name: t for t in g.initializer}
        self.nodes: dict[str, Any] = {}          # constant tensor -> the node that makes it
        self.memo: dict[str, np.ndarray | None] = {}

    def made_by(self, node: Any) -> None:
        """Note that ``node`` (all of whose inputs are constant) makes its outputs."""
        for o in node.output:
            if o:
                self.nodes[o] = node

    def value(self, name: str) -> np.ndarray | None:
        """The tensor's value, or None when it is not computable here."""
        if name not in self.memo:
            self.memo[name] = self._value(name)
        return self.memo[name]

    def _value(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return self._initialiser(self.inits[name])
        node = self.nodes.get(name)
        if node is None or node.op_type not in _EVALUATED:
            return None
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        t = node.op_type
        if t == "Constant":
            v = attrs.get("value")
            return self.onnx.numpy_helper.to_array(v) if v is not None else None
        ins = [self.value(i) if i else None for i in node.input]
        x = ins[0]
        if x is None:
            return None
        try:
            if t == "Identity":
                return x
            if t == "Cast":
                return x.astype(self.onnx.helper.tensor_dtype_to_np_dtype(int(attrs["to"])))
            if t == "Transpose":
                perm = attrs.get("perm")
                return np.transpose(x, tuple(perm) if perm is not None else None)
            if t == "Reshape":
                if len(ins) < 2 or ins[1] is None:
                    return None
                shape = [int(d) for d in ins[1]]
                if not attrs.get("allowzero", 0):
                    shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
                return x.reshape(shape)
            if t == "Flatten":
                axis = int(attrs.get("axis", 1)) % max(x.ndim, 1)
                return x.reshape(math.prod(x.shape[:axis]), -1)
            if t in ("Squeeze", "Unsqueeze"):
                axes = attrs.get("axes")
                if axes is None and len(ins) > 1 and ins[1] is not None:
                    axes = [int(a) for a in ins[1]]
                if t == "Squeeze":
                    return np.squeeze(x, tuple(a % x.ndim for a in axes)) if axes else np.squeeze(x)
                if not axes:
                    return None         # Unsqueeze needs its axes
                out = x
                for a in sorted(a % (x.ndim + len(axes)) for a in axes):
                    out = np.expand_dims(out, a)
                return out
            if t == "DequantizeLinear":
                scale = ins[1] if len(ins) > 1 else None
                if scale is None:
                    return None
                zp = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros_like(scale)
                if scale.ndim == 1 and scale.size > 1:       # per-axis
                    axis = int(attrs.get("axis", 1)) % x.ndim
                    shape = [1] * x.ndim
                    shape[axis] = scale.size
                    scale, zp = scale.reshape(shape), zp.reshape(shape)
                return ((x.astype(np.float32) - zp.astype(np.float32)) * scale.astype(np.float32)).astype(np.float32)
        except (ValueError, TypeError, KeyError, IndexError):
            return None         # a constant subgraph numpy cannot follow: no value, as for other nodes
        return None

    def _initialiser(self, t: Any) -> np.ndarray | None:
        """An inline initialiser as an array; external data mapped read-only (checked against its dims)."""
        T = self.onnx.TensorProto
        if t.data_location != T.EXTERNAL:
            return self.onnx.numpy_helper.to_array(t)
        info = {e.key: e.value for e in t.external_data}
        try:
            dtype = np.dtype(self.onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
        except (KeyError, TypeError, ValueError):
            return None
        shape = tuple(int(d) for d in t.dims)
        nbytes = math.prod(shape) * dtype.itemsize
        f = (self.path.resolve().parent / info["location"])       # checked beside the model (onnx_input)
        offset = int(info.get("offset", 0))
        if "length" in info and int(info["length"]) != nbytes:
            raise HwsimError(f"{self.path}: initialiser {t.name!r}: external data length {info['length']} is not "
                             f"the {nbytes:,} bytes of its dims {list(shape)}; fix the export")
        size = f.stat().st_size
        if offset + nbytes > size:
            raise HwsimError(f"{self.path}: initialiser {t.name!r}: external data {info['location']!r} holds "
                             f"{size:,} bytes, short of the {offset + nbytes:,} its offset and dims need; fix the "
                             "export")
        if nbytes == 0:
            return np.zeros(shape, dtype)
        return np.memmap(f, dtype=dtype.newbyteorder("<"), mode="r", offset=offset, shape=shape)

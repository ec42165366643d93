"""An op of the workload trace: :class:`Op`, its :class:`Operand` tensors and its GEMM view
(:class:`Gemm`), with the checks that make each one valid on its own (see
:mod:`workloads.trace` for the kinds, dims, copies and steps)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, NoReturn, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .trace_schema import (DTYPES, FLOAT_BITS, GEMM_KINDS, KINDS, PHASES, REQUIRED_DIMS, ROLES, VECTOR_KINDS, ZERO_OK_DIMS,
                           OPERAND_BITS,
                           conv_output_size, is_positive_int, need, structure_nm)

__all__ = ["Tensor", "Gemm", "Operand", "Op", "op_row", "check_sizes", "GATHER_OPS"]

# Vector ops that gather from their first input (an embedding lookup, index_select, gather,
# advanced indexing): they read the elements they gather, so ``dims.inputs`` counts those and
# the indices, and the source operand (a 50257 x 768 embedding table) may be larger than it.
GATHER_OPS = frozenset({"embedding", "index_select", "gather", "index"})

Tensor: TypeAlias = NDArray[Any]     # a real tensor of the trace: any numeric dtype


@dataclass(frozen=True)
class Gemm:
    """A GEMM ``C[M,N] = A[M,K] @ B[K,N]``: ``copies`` independent instances per step, ``steps``
    dependent steps."""

    M: int
    N: int
    K: int
    copies: int = 1
    steps: int = 1

    @property
    def count(self) -> int:
        """Instances in all (copies x steps)."""
        return self.copies * self.steps

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K * self.count


@dataclass(frozen=True)
class Operand:
    """One tensor of an op (one instance of it, when the op has copies or steps).

    ``bits`` is the storage width of one element: 32/16 (/8) for float, any width for
    int and fixed point, and the codebook index width for ``dtype == "index"`` (then
    ``codebook`` holds the shared values). ``density`` is the measured fraction of
    non-zeros of the real tensor. ``structure`` is ``"N:M"`` when at most N of every M
    consecutive elements along the reduction (K) dimension are non-zero (2:4 for sparse
    tensor cores), ``""`` otherwise. ``values``, when kept, is the real (decoded) tensor.
    """

    role: str
    shape: tuple[int, ...]
    bits: int = 32
    dtype: str = "float"
    density: float = 1.0
    values: Tensor | None = field(default=None, compare=False, repr=False)
    codebook: Tensor | None = field(default=None, compare=False, repr=False)
    structure: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        _check_operand(self, f"operand {self.role!r}")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> float:
        """Dense storage in bytes at ``bits`` per element."""
        return self.numel * self.bits / 8


@dataclass(frozen=True)
class Op:
    """One operation of a workload; see the module docstring for kinds, dims, copies, steps."""

    name: str
    kind: str
    op: str
    dims: Mapping[str, int]
    operands: tuple[Operand, ...] = ()
    copies: int = 1
    steps: int = 1
    producers: tuple[str, ...] = ()
    phase: str = "forward"
    module: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", _FrozenDims({k: int(v) for k, v in dict(self.dims).items()}))
        object.__setattr__(self, "operands", tuple(self.operands))
        object.__setattr__(self, "producers", tuple(self.producers))
        _check_op(self, f"op {self.name!r}")

    def operand(self, role: str) -> Operand | None:
        for o in self.operands:
            if o.role == role:
                return o
        return None

    @property
    def is_gemm(self) -> bool:
        return self.kind in GEMM_KINDS

    @property
    def instances(self) -> int:
        """copies x steps."""
        return self.copies * self.steps

    @property
    def gemm(self) -> Gemm | None:
        """The GEMM view (im2col for convs, whose groups are copies), or None for vector ops."""
        d = self.dims
        if self.kind == "gemm":
            return Gemm(d["M"], d["N"], d["K"], self.copies, self.steps)
        if self.kind == "conv":
            g = d["groups"]
            return Gemm(d["N"] * d["P"] * d["Q"], d["K"] // g, d["C"] // g * d["R"] * d["S"], self.copies * g,
                        self.steps)
        return None

    @property
    def gemms(self) -> tuple[Gemm, ...]:
        """Every GEMM the op does: its GEMM view, or a fused attention's per-head GEMMs (heads
        as copies) in the order FlashAttention runs them; none for vector ops."""
        g = self.gemm
        if g is not None:
            return (g,)
        if self.kind != "attention":
            return ()
        d = self.dims
        c = self.copies * d["B"] * d["H"]
        qk = Gemm(d["Lq"], d["Lk"], d["E"], c, self.steps)
        pv = Gemm(d["Lq"], d["Ev"], d["Lk"], c, self.steps)
        if not d["backward"]:
            return (qk, pv)
        return (qk, Gemm(d["Lk"], d["Ev"], d["Lq"], c, self.steps), Gemm(d["Lq"], d["Lk"], d["Ev"], c, self.steps),
                Gemm(d["Lq"], d["E"], d["Lk"], c, self.steps), Gemm(d["Lk"], d["E"], d["Lq"], c, self.steps))

    @property
    def macs(self) -> int:
        return sum(g.macs for g in self.gemms)

    def unfused(self) -> tuple["Op", ...]:
        """A fused ``attention`` op as the ops a machine without a fused kernel runs: its
        GEMMs (activation x activation, heads as copies) and the softmax (forward) or its
        gradient (backward), in order, each reading the one before."""
        if self.kind != "attention":
            return (self,)
        d = self.dims
        q = self.operand("input")
        bits, dtype = (q.bits, q.dtype) if q is not None else (32, "float")
        parts: list[Op] = []
        for i, g in enumerate(self.gemms):
            parts.append(Op(f"{self.name}#gemm{i}", "gemm", "bmm", {"M": g.M, "N": g.N, "K": g.K},
                            copies=g.copies, steps=self.steps, phase=self.phase, module=self.module,
                            producers=(parts[-1].name,) if parts else (),
                            operands=(Operand("input", (g.M, g.K), bits, dtype), Operand("input2", (g.K, g.N), bits, dtype),
                                      Operand("output", (g.M, g.N), bits, dtype))))
            if i == 0:
                n = self.copies * d["B"] * d["H"] * d["Lq"] * d["Lk"]
                parts.append(Op(f"{self.name}#softmax", "softmax", "softmax_grad" if d["backward"] else "softmax",
                                {"elements": n, "inputs": n, "ops_per_element": 4 if d["backward"] else 3},
                                steps=self.steps, phase=self.phase, module=self.module, producers=(parts[-1].name,),
                                operands=(Operand("input", (n,), bits, dtype), Operand("output", (n,), bits, dtype))))
        return tuple(parts)

    @property
    def vector_ops(self) -> int:
        """Element operations of a non-GEMM op (all copies and steps)."""
        if self.is_gemm or self.kind == "attention":
            return 0
        return self.dims["elements"] * self.dims["ops_per_element"] * self.instances


class _FrozenDims(dict[str, int]):
    """A dict that refuses changes (an op's dims are part of a frozen description)."""

    def _ro(self, *a: object, **k: object) -> NoReturn:
        raise TypeError("an op's dims are read-only; build a new Op with dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _ro

    def __reduce__(self) -> tuple[type[_FrozenDims], tuple[dict[str, int]]]:
        return (_FrozenDims, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def op_row(op: Op) -> dict[str, Any]:
    """The per-op summary columns shared by ``hwsim lower`` and the simulators."""
    g = op.gemm or (op.gemms[0] if op.gemms else None)
    w = op.operand("weight")
    a = op.operand("input")
    return {
        "name": op.name, "op": op.op, "kind": op.kind, "phase": op.phase,
        "M": g.M if g else None, "N": g.N if g else None, "K": g.K if g else None,
        "copies": g.copies if g else op.copies, "steps": op.steps, "macs": op.macs,
        "weight_density": w.density if w else None, "act_density": a.density if a else None,
        "weight_bits": w.bits if w else None, "act_bits": a.bits if a else None,
        "producers": " ".join(op.producers),
    }


def _check_operand(o: Operand, w: str) -> None:
    need(o.role in ROLES, f"{w}.role", f"unknown role {o.role!r}; one of {', '.join(ROLES)}")
    need(o.dtype in DTYPES, f"{w}.dtype", f"unknown dtype {o.dtype!r}; one of {', '.join(DTYPES)}")
    need(all(s >= 0 for s in o.shape), f"{w}.shape", f"sizes must be >= 0, got {list(o.shape)}")
    lo, hi = OPERAND_BITS
    need(isinstance(o.bits, (int, np.integer)) and not isinstance(o.bits, bool) and lo <= o.bits <= hi, f"{w}.bits",
         f"must be an integer in {lo}..{hi}, got {o.bits!r}")
    if o.dtype == "float":
        need(o.bits in FLOAT_BITS, f"{w}.bits", f"a float operand is 8, 16, 32 or 64 bits, got {o.bits}")
    need(isinstance(o.density, (int, float)) and not isinstance(o.density, bool) and 0.0 <= o.density <= 1.0
         and not math.isnan(o.density), f"{w}.density", f"must be a fraction in [0, 1], got {o.density!r}")
    need(isinstance(o.structure, str), f"{w}.structure", f"must be a string 'N:M' or '', got {o.structure!r}")
    if o.structure:
        nm = structure_nm(o.structure)
        need(nm is not None, f"{w}.structure",
             f"must be 'N:M' with integers 1 <= N < M <= 64 (e.g. '2:4'), got {o.structure!r}")
        if nm is not None:
            need(o.density <= nm[0] / nm[1] + 1e-9, f"{w}.structure",
                 f"{o.structure} keeps at most {nm[0] / nm[1]:.3g} of the elements, but density is {o.density:.3g}")
    if o.values is not None:
        need(tuple(np.shape(o.values)) == o.shape, f"{w}.values",
             f"shape {list(np.shape(o.values))} does not match the operand shape {list(o.shape)}")
    if o.codebook is not None:
        need(o.dtype == "index", f"{w}.codebook", "a codebook needs dtype 'index'")
        need(np.ndim(o.codebook) == 1 and len(o.codebook) <= 2 ** o.bits, f"{w}.codebook",
             f"must be 1-D with at most 2**bits = {2 ** o.bits} entries")


def _check_op(op: Op, w: str) -> None:
    need(isinstance(op.name, str) and bool(op.name), f"{w}.name", "must be a non-empty string")
    need(op.kind in KINDS, f"{w}.kind", f"unknown kind {op.kind!r}; one of {', '.join(KINDS)}")
    need(op.phase in PHASES, f"{w}.phase", f"unknown phase {op.phase!r}; one of {', '.join(PHASES)}")
    for f in ("copies", "steps"):
        need(is_positive_int(getattr(op, f)), f"{w}.{f}", f"must be an integer >= 1, got {getattr(op, f)!r}")
    for p in op.producers:
        need(isinstance(p, str) and p != op.name, f"{w}.producers",
             f"must name other ops of the workload, got {p!r}" + (" (itself: a recurrence is expressed by "
                                                                    "'steps')" if p == op.name else ""))
    need(len(set(op.producers)) == len(op.producers), f"{w}.producers", f"lists an op twice: {list(op.producers)}")
    d = op.dims
    for k in REQUIRED_DIMS[op.kind]:
        need(k in d, f"{w}.dims.{k}", f"missing (a {op.kind} op needs {', '.join(REQUIRED_DIMS[op.kind])})")
        lo = 0 if (k in ZERO_OK_DIMS or op.kind in VECTOR_KINDS) else 1
        need(d[k] >= lo, f"{w}.dims.{k}", f"must be >= {lo}, got {d[k]}")
    if op.kind == "attention":
        need(d["Hkv"] >= 1 and d["H"] % d["Hkv"] == 0, f"{w}.dims.Hkv",
             f"query heads H={d['H']} must be a multiple of key/value heads Hkv={d['Hkv']}")
        for flag in ("causal", "backward"):
            need(d[flag] in (0, 1), f"{w}.dims.{flag}", f"must be 0 or 1, got {d[flag]}")
    if op.kind == "conv":
        g = d["groups"]
        need(d["C"] % g == 0 and d["K"] % g == 0, f"{w}.dims.groups",
             f"C={d['C']} and K={d['K']} must both be divisible by groups={g}")
        for out, size, k, s, p, dl in (("P", "H", "R", "stride_h", "pad_h", "dil_h"),
                                       ("Q", "W", "S", "stride_w", "pad_w", "dil_w")):
            want = conv_output_size(d[size], d[k], d[s], d[p], d[dl])
            need(d[out] == want, f"{w}.dims.{out}",
                 f"is {d[out]} but {size}={d[size]}, {k}={d[k]}, stride={d[s]}, pad={d[p]}, "
                 f"dilation={d[dl]} give {want}")
    roles = [o.role for o in op.operands]
    need(len(roles) == len(set(roles)), f"{w}.operands", f"duplicate roles {roles}")


def check_sizes(op: Op, w: str) -> None:
    """Every operand's shape agrees with the op's dims (a simulator reads the dims; a shape
    that disagrees means the trace says two different things). Checked on traces read from
    files: in a forward op the operands are the GEMM's (or the convolution's) tensors
    exactly; a backward GEMM may read a smaller tensor, and a convolution's gradient GEMMs
    read and write the forward's tensors through im2col / col2im (not checked)."""
    for o in op.operands:
        _check_size(op, o, w)


def _operand_elements(op: Op, role: str) -> tuple[int, str] | None:
    """The elements an operand of one instance of ``op`` holds by its dims, and the rule."""
    d = op.dims
    if op.kind == "gemm":
        M, N, K = d["M"], d["N"], d["K"]
        return {"weight": (N * K, "N x K"), "input": (M * K, "M x K"), "input2": (K * N, "K x N"),
                "output": (M * N, "M x N")}.get(role)
    if op.kind == "conv":
        return {"input": (d["N"] * d["C"] * d["H"] * d["W"], "N x C x H x W"),
                "weight": (d["K"] * (d["C"] // d["groups"]) * d["R"] * d["S"], "K x C/groups x R x S"),
                "output": (d["N"] * d["K"] * d["P"] * d["Q"], "N x K x P x Q")}.get(role)
    if op.kind in VECTOR_KINDS and role == "output":
        return d["elements"], "elements"
    return None


def _check_size(op: Op, o: Operand, w: str) -> None:
    n = math.prod(o.shape)
    if op.kind in VECTOR_KINDS and o.role in ("input", "input2"):
        if o.role == "input" and op.op in GATHER_OPS:      # the source; dims.inputs counts what is read
            return
        need(n <= op.dims["inputs"] * op.copies, f"{w}.dims.inputs",
             f"is {op.dims['inputs']} but the {o.role} operand alone has {n} elements (shape {list(o.shape)})")
        return
    want = _operand_elements(op, o.role)
    if want is None:
        return
    per = f"{want[1]} = {want[0]}" + (f" per copy ({op.copies} copies)" if op.copies > 1 else "")
    if op.kind == "gemm" and op.phase != "forward" and o.role != "weight":
        if op.op.startswith("conv"):
            # A convolution's gradient GEMMs read and write the forward's tensors through im2col
            # and col2im, whose geometry the GEMM's dims do not give: a tensor may hold fewer
            # elements than its GEMM view (overlapping windows) or more (windows that leave
            # pixels out: a 1x1 convolution of stride 2 reads a quarter of its input, and its
            # input gradient is zero elsewhere). Nothing to check against the dims.
            return
        # other gradient GEMMs may read a smaller tensor (a broadcast operand)
        need(n <= want[0] * op.copies, f"{w}.operands[{o.role}].shape",
             f"{list(o.shape)} holds {n} elements, more than the dims' {per}; fix the shape or the dims")
        return
    need(n in (want[0], want[0] * op.copies), f"{w}.operands[{o.role}].shape",
         f"{list(o.shape)} holds {n} elements but the dims give {per}; fix the shape or the dims")

"""Build trace ops by hand (no torch): ad-hoc GEMMs and convs, synthetic workloads."""

from __future__ import annotations

from .trace import Op, Operand, conv_output_size

__all__ = ["precision_bits", "gemm_op", "conv_op", "vector_op"]

_FLOAT_BITS = {"fp32": (32, "float"), "fp16": (16, "float"), "bf16": (16, "float"), "tf32": (32, "float"),
               "fp8": (8, "float"), "int8": (8, "int"), "int16": (16, "int"), "int4": (4, "int"),
               "int32": (32, "int")}


def precision_bits(name: str) -> tuple[int, str]:
    """``'fp16'`` -> ``(16, 'float')``; the precisions an ad-hoc spec may name."""
    from .errors import HwsimError
    try:
        return _FLOAT_BITS[name]
    except KeyError:
        raise HwsimError(f"unknown precision {name!r}; one of {', '.join(_FLOAT_BITS)}") from None


def gemm_op(name: str, M: int, N: int, K: int, *, copies: int = 1, steps: int = 1, bits: int = 32,
            dtype: str = "float", weight_density: float = 1.0, act_density: float = 1.0, op: str = "linear",
            weight: bool = True, out_bits: int | None = None, producers: tuple[str, ...] = ()) -> Op:
    """A GEMM op; ``weight=False`` makes the right operand an activation (``input2``)."""
    right = (Operand("weight", (N, K), bits, dtype, weight_density) if weight
             else Operand("input2", (K, N), bits, dtype, act_density))
    return Op(name=name, kind="gemm", op=op, dims={"M": M, "N": N, "K": K}, copies=copies, steps=steps,
              producers=producers,
              operands=(Operand("input", (M, K), bits, dtype, act_density), right,
                        Operand("output", (M, N), out_bits or bits, dtype, 1.0)))


def conv_op(name: str, N: int, C: int, H: int, W: int, K: int, R: int, S: int, *, stride: int = 1,
            pad: int = 0, groups: int = 1, bits: int = 32, dtype: str = "float", producers: tuple[str, ...] = (),
            weight_density: float = 1.0, act_density: float = 1.0, stride_w: int | None = None,
            pad_w: int | None = None) -> Op:
    sw = stride if stride_w is None else stride_w
    pw = pad if pad_w is None else pad_w
    P, Q = conv_output_size(H, R, stride, pad), conv_output_size(W, S, sw, pw)
    from .errors import HwsimError
    if P < 1 or Q < 1:
        raise HwsimError(f"{name}: a {R}x{S} filter with stride {stride} and padding {pad} does not fit "
                         f"a {H}x{W} input (output would be {P}x{Q})")
    dims = {"N": N, "C": C, "H": H, "W": W, "K": K, "R": R, "S": S, "P": P, "Q": Q, "stride_h": stride,
            "stride_w": sw, "pad_h": pad, "pad_w": pw, "dil_h": 1, "dil_w": 1, "groups": groups}
    return Op(name=name, kind="conv", op="conv2d", dims=dims, producers=producers,
              operands=(Operand("input", (N, C, H, W), bits, dtype, act_density),
                        Operand("weight", (K, C // groups, R, S), bits, dtype, weight_density),
                        Operand("output", (N, K, P, Q), bits, dtype, 1.0)))


def vector_op(name: str, kind: str, op: str, elements: int, *, inputs: int | None = None,
              ops_per_element: int = 1, copies: int = 1, steps: int = 1, bits: int = 32, dtype: str = "float",
              producers: tuple[str, ...] = ()) -> Op:
    inputs = elements if inputs is None else inputs
    return Op(name=name, kind=kind, op=op, copies=copies, steps=steps, producers=producers,
              dims={"elements": elements, "inputs": inputs, "ops_per_element": ops_per_element},
              operands=(Operand("input", (inputs,), bits, dtype, 1.0), Operand("output", (elements,), bits, dtype, 1.0)))

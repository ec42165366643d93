"""What the lowering makes of each aten operation that is not a GEMM: a vector op of some
kind with a number of element operations per output element, or nothing.

The per-element counts are operation counts of the standard formulas, not measurements:
one for an element-wise op or an activation (whatever its transcendental cost), a pooling
window's size (computed per op), 2 for batch norm (scale and shift with folded
statistics), 5 for layer/group norm (mean, variance, normalise, scale, shift), 3 for
softmax (exponent, sum, divide); a top-k selection is counted as a pooling window over the
dimension it selects from. A backward op counts the derivative and its product
with the incoming gradient: 2 for an activation, 4 for softmax (y (g - sum(g y))), twice
its forward for a normalisation, 1 per input element for pooling and embedding (a scatter).
"""

from __future__ import annotations

__all__ = ["NON_GEMM_OPS", "IGNORED_OPS", "FAKE_QUANT"]

NON_GEMM_OPS: dict[str, tuple[str, int]] = {
    **{n: ("activation", 1) for n in (
        "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardtanh", "hardtanh_", "gelu", "gelu_",
        "silu", "silu_", "leaky_relu", "leaky_relu_", "hardswish", "hardswish_", "hardsigmoid",
        "hardsigmoid_", "clamp", "clamp_", "clamp_min", "clamp_min_", "elu", "elu_", "threshold",
        "relu6", "log_sigmoid_forward", "softplus", "mish", "erf")},
    **{n: ("activation", 2) for n in (
        "threshold_backward", "gelu_backward", "silu_backward", "sigmoid_backward", "tanh_backward",
        "hardtanh_backward", "leaky_relu_backward", "elu_backward", "hardswish_backward",
        "hardsigmoid_backward", "log_sigmoid_backward", "softplus_backward", "mish_backward")},
    **{n: ("elementwise", 1) for n in (
        "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "rsub", "addcmul", "addcdiv",
        "neg", "exp", "log", "pow", "sqrt", "rsqrt", "reciprocal", "abs", "maximum", "minimum", "round", "floor",
        "where", "masked_fill", "masked_fill_", "cat", "stack", "embedding", "index_select",
        "constant_pad_nd", "quantize_per_tensor", "quantize_per_tensor_dynamic",
        "quantize_per_channel", "dequantize", "sum", "cumsum", "quantized::add",
        "quantized::add_relu", "quantized::mul", "quantized::cat", "quantized::add_scalar",
        "_fake_quantize_learnable_per_tensor_affine", "cos", "sin", "tril", "triu", "logical_not",
        "bitwise_not", "repeat_interleave", "index", "gather", "scatter", "scatter_add", "index_add", "lerp",
        "embedding_dense_backward", "slice_backward", "select_backward", "index_select_backward",
        "nll_loss_forward", "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward",
        "native_dropout_backward", "masked_fill_backward", "sgn", "sign")},
    **{n: ("elementwise", 2) for n in ("native_dropout",)},          # a random draw and a product
    **{n: ("elementwise", 3) for n in ("mse_loss", "mse_loss_backward", "binary_cross_entropy_with_logits")},
    **{n: ("pool", 1) for n in (
        "max_pool2d_with_indices", "max_pool2d", "avg_pool2d", "avg_pool3d", "_adaptive_avg_pool2d",
        "adaptive_max_pool2d", "mean", "amax", "quantized::max_pool2d", "max_pool1d",
        "avg_pool1d", "adaptive_avg_pool2d", "quantized_max_pool2d", "quantized_max_pool1d",
        "max_pool2d_with_indices_backward", "avg_pool2d_backward", "_adaptive_avg_pool2d_backward",
        "adaptive_max_pool2d_backward", "var_mean", "var", "argmax", "argmin",
        "topk")},                                       # a selection: a comparison per input element
    **{n: ("norm", 2) for n in (
        "_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit",
        "batch_norm", "_native_batch_norm_legit_functional")},
    **{n: ("norm", 4) for n in ("native_batch_norm_backward",)},
    "native_layer_norm": ("norm", 5),
    "native_group_norm": ("norm", 5),
    "_fused_rms_norm": ("norm", 4),
    "native_layer_norm_backward": ("norm", 10),
    "native_group_norm_backward": ("norm", 10),
    "_softmax": ("softmax", 3),
    "_safe_softmax": ("softmax", 3),
    "_log_softmax": ("softmax", 4),
    "_softmax_backward_data": ("softmax", 4),
    "_log_softmax_backward_data": ("softmax", 4),
}

# Operations that move no data worth costing (views, allocation, metadata) or whose
# work is accounted elsewhere (fake quantisation sets bits, it is not inference work).
IGNORED_OPS = frozenset((
    "view", "_unsafe_view", "transpose_", "t_", "squeeze_", "unsqueeze_", "as_strided_", "detach_", "reshape",
    "_reshape_alias", "t", "transpose", "permute", "expand", "squeeze", "unsqueeze", "flatten", "detach", "alias",
    "slice", "select", "split", "split_with_sizes", "chunk", "unsafe_split", "unsafe_chunk", "unsafe_split_with_sizes",
    "unbind", "clone", "copy_", "_to_copy", "contiguous", "as_strided", "empty", "empty_like", "empty_strided",
    "new_empty", "new_empty_strided", "zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full",
    "full_like", "fill_", "zero_", "lift_fresh", "lift_fresh_copy", "_local_scalar_dense", "scalar_tensor",
    "arange", "sym_size", "sym_stride", "is_nonzero", "item", "dropout",
    "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
    "fake_quantize_per_tensor_affine_cachemask", "fake_quantize_per_channel_affine_cachemask",
    "_fake_quantize_per_tensor_affine_cachemask_tensor_qparams", "fused_moving_avg_obs_fake_quant",
    "_fused_moving_avg_obs_fq_helper", "aminmax", "_choose_qparams_per_tensor", "choose_qparams",
    "quantized::linear_prepack", "quantized::conv2d_prepack", "q_scale", "q_zero_point",
    "int_repr", "_make_per_tensor_quantized_tensor", "copy", "resize_", "set_", "_copy_from",
    "_has_compatible_shallow_copy_type", "_pack_padded_sequence", "view_as_real", "view_as_complex", "unfold",
    "min", "max", "isnan", "any", "all", "eq", "ne", "lt", "gt", "le", "ge", "_assert_async",
    "_cudnn_rnn_flatten_weight", "stride", "numel", "dim", "size", "new_full", "expand_as", "view_as",
    "_unsafe_index", "lift", "empty_permuted", "bernoulli_", "uniform_", "normal_", "random_",
))

FAKE_QUANT = frozenset(n for n in IGNORED_OPS if "fake_quant" in n or "fq_helper" in n)

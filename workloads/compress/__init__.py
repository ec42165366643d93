"""Compression passes: pruning (magnitude, structured, iterative, DSD), weight sharing
with codebook fine-tuning, linear/fixed-point/binary/ternary quantisation, Huffman
storage accounting, low rank, Winograd, distillation; measured on scikit-learn digits."""

from .plan import CompressionResult, Plan, compress, compressed_trace, load_plan, plan_from_dict

__all__ = ["CompressionResult", "Plan", "compress", "compressed_trace", "load_plan", "plan_from_dict"]

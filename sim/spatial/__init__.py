"""Spatial accelerators described by their memory hierarchy (ZigZag/Timeloop style): a MAC
array of any number of dimensions, an ordered list of memory levels each shared along some
of them, the unrollings it supports; each op mapped by an exhaustive search over
unrollings and loop orders with LOMA's allocation."""

from .arch import ARCH, CONSTANTS, PRESETS, Level, SpatialArch
from .simulate import SpatialStats, simulate, simulate_op

__all__ = ["ARCH", "CONSTANTS", "PRESETS", "Level", "SpatialArch", "SpatialStats", "simulate", "simulate_op"]

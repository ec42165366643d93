"""Technology scaling of energy between CMOS nodes: E ~ C x Vdd^2 with C ~ L (Dennard), each
node at its nominal supply voltage unless the figures being scaled state their own.

The nominal supply per node comes from the predictive device models and roadmaps below,
not from fitting anything. Between two listed nodes the supply is interpolated linearly
in nm, and held at the end values outside them.
"""

from __future__ import annotations

from collections.abc import Mapping

from sim.constants import Constant

__all__ = ["CONSTANTS", "NOMINAL_VDD", "NODE_RANGE_NM", "node_factor", "vdd"]

_PTM = "Predictive Technology Model, high-performance bulk model card, nominal Vdd (ptm.asu.edu)"
_PTM_MG = ("PTM-MG multi-gate (FinFET) model cards, nominal Vdd (Sinha et al., 'Exploring sub-20nm FinFET design "
           "with Predictive Technology Models', DAC 2012)")

NOMINAL_VDD: Mapping[float, tuple[float, str]] = {
    # node (nm): (volts, source)
    65: (1.1, "ITRS high-performance logic as CACTI 6.5 / McPAT tabulate it (65 nm technology parameters)"),
    45: (1.0, _PTM + "; Horowitz's ISSCC 2014 figures are at 0.9 V and say so (energy tables declare it)"),
    32: (0.9, _PTM),
    22: (0.8, _PTM),
    20: (0.9, _PTM_MG),
    16: (0.85, _PTM_MG),
    14: (0.8, _PTM_MG),
    10: (0.75, _PTM_MG),
    7: (0.7, _PTM_MG),
    5: (0.7, "IRDS 2021 More Moore logic roadmap, 5 nm-class node (secondary transcription)"),
    3: (0.7, "IRDS 2022 More Moore logic roadmap, 3 nm-class node (secondary transcription)"),
}

# Node scaling extrapolates the table above (held at its ends); outside this range a
# number of nanometres is not a CMOS process (policy: 1 nm to 1 um).
NODE_RANGE_NM = (1.0, 1000.0)

CONSTANTS: tuple[Constant, ...] = tuple(
    Constant(f"technology.NOMINAL_VDD[{nm:g} nm]", volts, "published", source)
    for nm, (volts, source) in NOMINAL_VDD.items()) + (
    Constant("technology.NODE_RANGE_NM", NODE_RANGE_NM, "policy", "a number of nm outside this is not a CMOS node"),
)


_KNOWN = sorted(NOMINAL_VDD)


def vdd(node_nm: float) -> float:
    """The nominal supply voltage of a node (V), interpolated between the listed nodes."""
    known, volts = _KNOWN, {n: v for n, (v, _) in NOMINAL_VDD.items()}
    if node_nm <= known[0]:
        return volts[known[0]]
    for lo, hi in zip(known, known[1:]):
        if lo <= node_nm <= hi:
            f = (node_nm - lo) / (hi - lo)
            return volts[lo] + f * (volts[hi] - volts[lo])
    return volts[known[-1]]


def node_factor(from_nm: float, to_nm: float, from_vdd: float | None = None, to_vdd: float | None = None) -> float:
    """Energy at ``to_nm`` / energy at ``from_nm`` (Dennard: C ~ L, E ~ C V^2); each side at
    the given supply, else its node's nominal one (:func:`vdd`).

        >>> round(node_factor(45, 7, from_vdd=0.9), 4)      # Horowitz's 45 nm, 0.9 V figures at 7 nm, 0.7 V
        0.0941
    """
    v0 = from_vdd if from_vdd else vdd(from_nm)
    v1 = to_vdd if to_vdd else vdd(to_nm)
    return (to_nm / from_nm) * (v1 / v0) ** 2

"""Compression rows: Deep Compression's storage (Han, Mao, Dally, ICLR 2016) as hwsim's
compression passes account it, on the zoo's networks with the paper's per-layer plans
(``workloads/compress/plans/<model>_deep_compression.yaml``: kept fraction, shared-weight
and index bits, the paper's inputs).

The networks' weights are torch's initialisation (no trained weights ship): pruning keeps
the largest magnitudes, k-means shares them and Huffman codes the shared indices and the
relative row indices, as the paper does. The relative-index overhead depends only on the
kept fraction and index width; Huffman's gain depends on the trained weights' distribution,
which the initial weights do not have (the gap shows in the ``pqh`` rows).

Quantities: ``compression_ratio`` (``x``, whole network; ``% of original``: a layer's
compressed size over its 32-bit size, the paper's per-layer "compress rate"), ``size_mb``
(``stage=reference``: the 32-bit model; ``pqh``: compressed). Options: ``stage``
(``pruned`` | ``pq`` | ``pqh`` | ``reference``) and ``layer`` (the paper's layer names).
Accuracies are refused: they need the trained networks and ImageNet/MNIST.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from workloads.errors import HwsimError

from .base import Reader, Unsupported, opt_str
from .schema import Row

__all__ = ["READER", "PAPER_LAYERS"]

QUANTITIES = {"compression_ratio": ("x", "% of original"), "size_mb": ("MB", "KB"),
              "top1_error_percent": ("%",), "top5_error_percent": ("%",)}
PLANS = Path(__file__).resolve().parents[1] / "workloads" / "compress" / "plans"
# the paper's layer names -> hwsim's module names
PAPER_LAYERS = {
    "lenet300": {"ip1": "fc1", "ip2": "fc2", "ip3": "fc3"},
    "lenet5": {"conv1": "conv1", "conv2": "conv2", "ip1": "fc1", "ip2": "fc2"},
    "alexnet": {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8",
                "conv5": "features.10", "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"},
    "vgg16": {**{f"conv{b}_{i}": f"features.{n}" for (b, i), n in zip(
        [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3), (5, 1), (5, 2), (5, 3)],
        [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28])},
        "fc6": "classifier.0", "fc7": "classifier.3", "fc8": "classifier.6"},
}
SEED = 0


@functools.lru_cache(maxsize=8)
def report(model: str) -> dict[str, Any]:
    """hwsim's Deep Compression report of ``model`` under the paper's plan (``hwsim compress
    MODEL --plan ... --huffman``)."""
    import torch

    from workloads.compress import compress, load_plan
    from workloads.zoo import ZOO

    plan = PLANS / f"{model}_deep_compression.yaml"
    if not plan.exists() or model not in ZOO:
        raise Unsupported(f"no Deep Compression plan for {model}")
    torch.manual_seed(SEED)
    net, _ = ZOO[model].load()()
    return compress(net, load_plan(plan), seed=SEED).report()


def measure(row: Row) -> float:
    q = row.quantity
    if q.startswith(("top1", "top5")):
        raise Unsupported("accuracy needs the trained network and its data set (ImageNet, MNIST), not shipped")
    stage = opt_str(row, "stage", "pqh") or "pqh"
    if stage not in ("pruned", "pq", "pqh", "reference"):
        raise HwsimError(f"{row.where}: options.stage must be pruned, pq, pqh or reference")
    rep = report(row.model)
    key = {"pruned": "p", "pq": "pq", "pqh": "pqh"}.get(stage)
    layer = opt_str(row, "layer")
    if layer is not None:
        name = PAPER_LAYERS.get(row.model, {}).get(layer)
        rows = {r["name"]: r for r in rep["layers"]}
        if name not in rows:
            raise HwsimError(f"{row.where}: options.layer {layer!r} is not a layer of {row.model}; one of "
                             f"{', '.join(PAPER_LAYERS.get(row.model, {}))}")
        r = rows[name]
    else:
        r = rep["total"]
    if q == "compression_ratio":
        if key is None:
            raise HwsimError(f"{row.where}: a compression ratio needs stage pruned, pq or pqh")
        bits = r[f"bits_{key}"]
        return 32.0 / bits if row.unit == "x" else 100.0 * bits / 32.0
    if q == "size_mb":
        bits = 32.0 if stage == "reference" else r[f"bits_{key}"]
        size = r["weights"] * bits / 8
        return size / (1e6 if row.unit == "MB" else 1e3)
    raise Unsupported(f"{q} is not computed for compression")


READER = Reader("compression", QUANTITIES, frozenset({"stage", "layer"}), measure)

"""Real data that ships offline (scikit-learn's 8x8 digits) and a small training loop."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

__all__ = ["one_thread", "digits", "accuracy", "train", "distill"]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch and the BLAS numpy uses on one thread, so that training, k-means and the
    accuracies they give do not depend on the machine's core count (a parallel reduction
    sums in another order); the digits models are small enough not to miss the others."""
    from threadpoolctl import threadpool_limits      # scikit-learn's dependency

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(n)


def digits(seed: int = 0):
    """(x_train, y_train, x_test, y_test): 1797 8x8 digits scaled to [0, 1], 70/30 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.long)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    return xtr, ytr, xte, yte


def accuracy(model: nn.Module, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train(model: nn.Module, data, epochs: int = 30, lr: float = 1e-3, seed: int = 0, batch: int = 64,
          loss_fn: Callable | None = None, after_backward: Callable | None = None, params=None) -> nn.Module:
    """Adam on (x_train, y_train) with a fixed seed; ``after_backward(model)`` may edit
    gradients (keep pruned weights at zero, accumulate per-cluster gradients)."""
    xtr, ytr = data[0], data[1]
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=lr)
    lf = loss_fn or (lambda out, yb, xb: nn.functional.cross_entropy(out, yb))
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = lf(model(xtr[idx]), ytr[idx], xtr[idx])
            loss.backward()
            if after_backward:
                after_backward(model)
            opt.step()
    model.eval()
    return model


def distill(student: nn.Module, teacher: nn.Module, data, temperature: float = 4.0, alpha: float = 0.7,
            epochs: int = 30, lr: float = 1e-3, seed: int = 0) -> nn.Module:
    """Knowledge distillation (Hinton et al. 2015): the student matches the teacher's
    outputs softened by ``temperature`` (weight ``alpha``, scaled by T^2) and the labels."""
    teacher.eval()

    def loss(out, yb, xb):
        with torch.no_grad():
            soft = nn.functional.softmax(teacher(xb) / temperature, dim=1)
        kd = nn.functional.kl_div(nn.functional.log_softmax(out / temperature, dim=1), soft, reduction="batchmean")
        return alpha * temperature ** 2 * kd + (1 - alpha) * nn.functional.cross_entropy(out, yb)
    return train(student, data, epochs, lr, seed, loss_fn=loss)

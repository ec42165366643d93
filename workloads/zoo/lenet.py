"""LeNet-300-100 and LeNet-5 (the Caffe variant Deep Compression prunes: 20 and 50 5x5
filters, fc 500), for 28x28 MNIST-sized inputs or the 8x8 scikit-learn digits."""

from __future__ import annotations

import torch
from torch import nn

from .cnn import _init

__all__ = ["LeNet300", "LeNet5", "lenet300", "lenet5"]


class LeNet300(nn.Module):
    def __init__(self, in_size: int = 28, classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(in_size * in_size, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, classes)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    def __init__(self, in_size: int = 28, classes: int = 10):
        super().__init__()
        pad = 0 if in_size >= 28 else 2  # 8x8 digits: pad so both 5x5 convs fit
        self.conv1 = nn.Conv2d(1, 20, 5, padding=pad)
        self.conv2 = nn.Conv2d(20, 50, 5, padding=pad)
        s = in_size
        for _ in range(2):
            s = (s + 2 * pad - 4) // 2
        self.fc1 = nn.Linear(50 * s * s, 500)
        self.fc2 = nn.Linear(500, classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.conv1(x), 2)
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def _digits(batch, size):
    return torch.randn(batch, 1, size, size, generator=torch.Generator().manual_seed(4))


def lenet300(batch: int = 1):
    return _init(LeNet300()), _digits(batch, 28)


def lenet5(batch: int = 1):
    return _init(LeNet5()), _digits(batch, 28)

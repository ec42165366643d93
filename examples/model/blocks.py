"""A building block that net.py imports from beside it (the model file's folder is on the
import path while hwsim loads it)."""

from torch import nn


class Residual(nn.Module):
    """x + MLP(x): two linear layers with a ReLU between them."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.up = nn.Linear(width, hidden)
        self.act = nn.ReLU()
        self.down = nn.Linear(hidden, width)

    def forward(self, x):
        return x + self.down(self.act(self.up(x)))

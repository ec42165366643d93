"""A user model for hwsim: ``hwsim lower examples/model/net.py:factory``.

``factory`` returns (module, example input). It may take ``batch`` (and, for sequence
models, ``seq_len``); hwsim passes ``--batch`` / ``--seq-len`` through when they are given.
Loading this file runs its code, as ``python net.py`` would.
"""

import torch
from torch import nn

from blocks import Residual     # a module beside this file


def factory(batch: int = 4):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), Residual(128, 256), Residual(128, 256), nn.Linear(128, 10))
    return net.eval(), torch.randn(batch, 64)

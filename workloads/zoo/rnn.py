"""Recurrent models: an LSTM language model, a GRU, a NeuralTalk-style captioner.

All use ``batch_first`` inputs so a trace's batch is the first input dimension.
"""

from __future__ import annotations

import torch
from torch import nn

from .cnn import AlexNet, _init

__all__ = ["LSTMLanguageModel", "GRUModel", "Captioner", "lstm_lm", "gru", "captioner"]


class LSTMLanguageModel(nn.Module):
    """Zaremba et al. (2014) "medium" PTB model: 10k vocabulary, 2 x 650 LSTM, tied sizes."""

    def __init__(self, vocab: int = 10000, hidden: int = 650, layers: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.decoder(out)


class GRUModel(nn.Module):
    """A 2-layer GRU sequence model (hidden 512) over 80-dim frames, with a 1000-way head."""

    def __init__(self, features: int = 80, hidden: int = 512, layers: int = 2, classes: int = 1000):
        super().__init__()
        self.gru = nn.GRU(features, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out)


class Captioner(nn.Module):
    """NeuralTalk-style captioner: AlexNet fc7 features -> We (4096 x 600) -> LSTM(600) -> Wd
    (600 x 8791). The sizes are those of EIE's NT-We, NT-LSTM (1201 x 2400) and NT-Wd layers."""

    def __init__(self, vocab: int = 8791, hidden: int = 600):
        super().__init__()
        cnn = AlexNet()
        self.encoder = nn.Sequential(cnn.features, cnn.avgpool, nn.Flatten(), *list(cnn.classifier)[:-1])
        self.We = nn.Linear(4096, hidden)
        self.word_embedding = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.Wd = nn.Linear(hidden, vocab)

    def forward(self, image, tokens):
        img = self.We(self.encoder(image)).unsqueeze(1)
        seq = torch.cat([img, self.word_embedding(tokens)], 1)
        out, _ = self.lstm(seq)
        return self.Wd(out)


def _tokens(batch, seq_len, vocab):
    return torch.randint(0, vocab, (batch, seq_len), generator=torch.Generator().manual_seed(2))


def lstm_lm(batch: int = 1, seq_len: int = 35, **_):
    return _init(LSTMLanguageModel()), _tokens(batch, seq_len, 10000)


def gru(batch: int = 1, seq_len: int = 50, **_):
    return _init(GRUModel()), torch.randn(batch, seq_len, 80, generator=torch.Generator().manual_seed(3))


def captioner(batch: int = 1, seq_len: int = 16, **_):
    img = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    return _init(Captioner()), (img, _tokens(batch, seq_len - 1, 8791))

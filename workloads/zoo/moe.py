"""A mixture-of-experts MLP in plain torch, written with static shapes so that it lowers on
the meta device as well as with real weights.

Each token's router logits (a ``hidden x experts`` linear layer) go through a softmax, and
the token goes to its ``top_k`` experts with those probabilities as weights (Shazeer et al.,
ICLR 2017; Fedus, Zoph and Shazeer, JMLR 2022, "Switch Transformers"; Mixtral renormalises
the k weights to sum to one). The experts run as batched GEMMs over buffers of ``capacity``
token slots each (Lepikhin et al., ICLR 2021, "GShard"): a token's slot in its expert is
the number of tokens routed there before it (a cumulative sum over the routing mask), the
tokens are scattered into the buffers (``index_add``), each expert's SwiGLU/GELU MLP runs
on its buffer (``bmm`` with the experts as copies), and the outputs are gathered back
(``index_select``), weighted and summed over the k choices.

``capacity_factor`` None is dropless routing (Megatron-Core's default, as Mixtral and
DeepSeekMoE are trained): every routed token is computed. On one device that is ``tokens x
k`` expert rows, however unevenly they fall, so the buffers hold ``ceil(tokens x k /
experts)`` slots each: the same total work as a grouped GEMM over the real counts. (How the
counts fall matters once experts sit on different devices: expert parallelism, where the
busiest expert's device sets the pace; the lowering does not model that.) A number is
GShard's and Switch's capacity factor: ``ceil(cf x tokens x k / experts)`` slots per expert,
computed whether filled or not, and tokens past an expert's capacity dropped (their slot
index points at a spare row that is never read back).

With expert parallelism (``cfg.ep``: Lepikhin et al., 2021; Megatron-Core's
``--expert-model-parallel-size``) a device holds ``experts / ep`` of the experts and, after
the all-to-all dispatch (which the training step times: ``analysis.train_moe``), each of its
experts computes the tokens the ``ep`` devices of its group routed to it: ``ep x capacity``
rows, the same rows in all as without it. The buffers and the router keep their shapes; only
the experts' weights and the GEMMs' grouping change. Routing is uneven across the group in
practice (the auxiliary loss bounds it, does not remove it; Wang et al., 2024,
arXiv:2408.15664, measure it as MaxVio, the busiest expert's load over the mean, minus one):
with dropless routing the busiest device sets the pace, so ``cfg.load_imbalance`` (that
ratio for the group's devices) lowers the busiest device, its experts' buffers
``load_imbalance`` times the mean's rows.

Shared experts (Dai et al., 2024, "DeepSeekMoE") see every token; they run as one dense MLP
of ``shared_experts x expert width``, which computes the same as separate experts summed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .shapes import Config

__all__ = ["MoE", "capacity"]


def capacity(cfg: Config, tokens: int) -> int:
    """Token slots per expert for ``tokens`` tokens (see the module docstring)."""
    share = tokens * cfg.top_k / cfg.experts
    return max(1, math.ceil(share * (cfg.capacity_factor if cfg.capacity_factor is not None else 1.0)))


class _Dense(nn.Module):
    """The shared experts as one MLP (SwiGLU or GELU, as the model's)."""

    def __init__(self, cfg: Config, width: int):
        super().__init__()
        self.act = cfg.act
        if cfg.act == "swiglu":
            self.gate = nn.Linear(cfg.hidden, width, bias=cfg.bias)
        self.up = nn.Linear(cfg.hidden, width, bias=cfg.bias)
        self.down = nn.Linear(width, cfg.hidden, bias=cfg.bias)

    def forward(self, x):
        if self.act == "swiglu":
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x)))


class MoE(nn.Module):
    """A routed mixture of ``cfg.experts`` expert MLPs (plus shared experts), per token."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        E, h, f = cfg.experts // cfg.ep, cfg.hidden, cfg.expert_width      # this device's experts
        self.router = nn.Linear(h, cfg.experts, bias=False)
        if cfg.act == "swiglu":
            self.w_gate = nn.Parameter(torch.empty(E, h, f))
        self.w_up = nn.Parameter(torch.empty(E, h, f))
        self.w_down = nn.Parameter(torch.empty(E, f, h))
        if cfg.bias:
            self.b_up = nn.Parameter(torch.empty(E, 1, f))
            self.b_down = nn.Parameter(torch.empty(E, 1, h))
        self.shared = _Dense(cfg, cfg.shared_experts * f) if cfg.shared_experts else None

    def reset_parameters(self) -> None:
        """Each expert initialised as an ``nn.Linear`` of its shape would be (uniform in
        +-1/sqrt(fan_in), the bound of torch's default init); biases at zero."""
        with torch.no_grad():
            for name, p in self.named_parameters(recurse=False):
                if name.startswith("b_"):
                    nn.init.zeros_(p)
                else:
                    bound = 1 / math.sqrt(p.shape[1])
                    nn.init.uniform_(p, -bound, bound)

    def forward(self, x):
        cfg = self.cfg
        E, k = cfg.experts, cfg.top_k
        shape = x.shape
        xt = x.reshape(-1, shape[-1])
        T = xt.shape[0]
        C = capacity(cfg, T)
        probs = F.softmax(self.router(xt), dim=-1)
        weight, expert = torch.topk(probs, k, dim=-1)                       # [T, k]
        if cfg.renorm_top_k:
            weight = weight / weight.sum(-1, keepdim=True)
        choice = expert.reshape(-1)                                         # token t's j-th choice at t*k + j
        routed = (choice.unsqueeze(1) == torch.arange(E, device=x.device)).long()     # [T*k, E]
        slot = (torch.cumsum(routed, 0) - 1).gather(1, choice.unsqueeze(1)).squeeze(1)
        rows = math.ceil(cfg.ep * C * cfg.load_imbalance)                 # each local expert's buffer rows
        spare = E // cfg.ep * rows                                          # where dropped tokens go
        row = torch.where(slot < C, choice * C + slot, torch.full_like(slot, spare))
        src = xt.repeat_interleave(k, dim=0)                                # [T*k, h]
        buf = xt.new_zeros(spare + 1, shape[-1]).index_add(0, row, src)
        tokens = buf[:spare].view(E // cfg.ep, rows, shape[-1])            # each local expert: its rows from ep devices
        if cfg.act == "swiglu":
            hid = F.silu(torch.bmm(tokens, self.w_gate)) * torch.bmm(tokens, self.w_up)
        else:
            up = torch.bmm(tokens, self.w_up)
            hid = F.gelu(up + self.b_up if cfg.bias else up)
        out = torch.bmm(hid, self.w_down)
        if cfg.bias:
            out = out + self.b_down
        kept = (slot < C).to(weight.dtype).view(T, k)                       # a dropped choice adds nothing
        back = out.reshape(spare, shape[-1]).index_select(0, row.clamp(max=spare - 1))
        y = (back.view(T, k, shape[-1]) * (weight * kept).unsqueeze(-1)).sum(1)
        if self.shared is not None:
            y = y + self.shared(xt)
        return y.view(shape)

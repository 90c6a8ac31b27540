"""The small MLPs of the density heads (the original's ``ResnetFC`` with ``n_blocks = 0``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MLP(nn.Module):
    """``Linear(d_in, hidden) -> ReLU -> Linear(hidden, d_out)``, Kaiming-normal (fan in) weights, zero biases."""

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.lin_in = nn.Linear(d_in, hidden)
        self.lin_out = nn.Linear(hidden, d_out)
        for lin in (self.lin_in, self.lin_out):
            nn.init.kaiming_normal_(lin.weight, a=0, mode="fan_in")
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., d_in]`` to ``[..., d_out]``. When ``x`` is a view of channels-outermost data (``[d_in, ...]``
        in memory, points innermost: ``ViewTokens.tokens``), each layer runs as one matrix product ``W x + b`` on
        that memory and the result is returned as the same kind of view: the same products, with no transposing
        copy of the tokens (which costs more than the layers on the CPU, BENCHMARKS.md)."""
        if x.dim() >= 2 and x.shape[-1] > 1 and x.stride(-1) != 1 and x.stride(-2) == 1:
            return self.channels_outermost(x.movedim(-1, 0)).movedim(0, -1)
        return self.lin_out(self.lin_in(x).relu_())

    def channels_outermost(self, x: Tensor) -> Tensor:
        """``[d_in, ..., N]`` (points contiguous) to ``[d_out, ..., N]``: two GEMMs on the flattened points when
        the memory allows it (``x`` contiguous), else two per leading index (e.g. one view of several)."""
        if x.is_contiguous():
            return self._layers(x.reshape(x.shape[0], -1)).reshape(-1, *x.shape[1:])
        rows = x.reshape(x.shape[0], -1, x.shape[-1]) if x.dim() > 2 else x[:, None]  # a view where strides allow
        out = torch.stack([self._layers(rows[:, i]) for i in range(rows.shape[1])], dim=1)
        return out.reshape(-1, *x.shape[1:])

    def _layers(self, x: Tensor) -> Tensor:
        hidden = torch.addmm(self.lin_in.bias[:, None], self.lin_in.weight, x).relu_()
        return torch.addmm(self.lin_out.bias[:, None], self.lin_out.weight, hidden)

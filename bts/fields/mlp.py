"""The small MLPs of the density heads (the original's ``ResnetFC`` with ``n_blocks = 0``)."""

from __future__ import annotations

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
        return self.lin_out(self.lin_in(x).relu())

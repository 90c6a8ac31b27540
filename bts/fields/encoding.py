"""Positional encoding of the projected point (docs/method.md §1.3)."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

from bts.geometry.cameras import MIN_DEPTH


def inverse_depth_code(depth: Tensor, near: float, far: float) -> Tensor:
    """Map a camera z-depth to ``[-1, 1]`` linearly in inverse depth: +1 at ``near``, -1 at ``far``.

    ``d = 2 (1/max(z, 1e-3) - 1/far) / (1/near - 1/far) - 1``; it exceeds 1 closer than ``near`` (about 6231 at the
    camera plane for near 3, far 80), exactly as the original.
    """
    inv = 1.0 / depth.clamp_min(MIN_DEPTH)
    return 2.0 * (inv - 1.0 / far) / (1.0 / near - 1.0 / far) - 1.0


class PositionalEncoding(nn.Module):
    """NeRF encoding ``[x, sin(w_0 x), cos(w_0 x), ..., sin(w_{K-1} x), cos(w_{K-1} x)]``, ``w_k = f 2^k``.

    Each sin/cos group holds all input dimensions (``sin(w u), sin(w v), sin(w d)``). The cosine is computed as
    ``sin(w x + pi/2)`` like the original so that original checkpoints reproduce bit for bit.
    For 3 inputs and 6 frequencies the output has ``3 + 3 * 2 * 6 = 39`` values.
    """

    def __init__(self, num_inputs: int = 3, num_freqs: int = 6, freq_factor: float = 1.5, include_input: bool = True):
        super().__init__()
        freqs = freq_factor * 2.0 ** torch.arange(num_freqs, dtype=torch.float32)
        self.register_buffer("freqs", freqs.repeat_interleave(2).view(1, -1, 1), persistent=False)
        phases = torch.tensor([0.0, math.pi * 0.5]).repeat(num_freqs).view(1, -1, 1)
        self.register_buffer("phases", phases, persistent=False)
        self.include_input = include_input
        self.out_dim = num_inputs * 2 * num_freqs + (num_inputs if include_input else 0)

    def forward(self, x: Float[Tensor, "... D"]) -> Float[Tensor, "... E"]:
        parts = self.parts(x)
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def parts(self, x: Float[Tensor, "... D"]) -> list[Tensor]:
        """``forward``'s output as the parts ``[x, sin/cos block]`` whose concatenation along the last dimension it
        is (so that a caller can concatenate them with other blocks in one copy)."""
        shape = x.shape[:-1]
        flat = x.reshape(-1, 1, x.shape[-1])
        embedded = torch.sin(torch.addcmul(self.phases, flat, self.freqs)).reshape(*shape, -1)
        return [x, embedded] if self.include_input else [embedded]

    def channels_outermost_parts(self, x: Float[Tensor, "D ..."]) -> list[Tensor]:
        """The encoding of points laid out channels-outermost (``[D, ...]``), as the parts ``[x, sin/cos block]``
        whose concatenation along dim 0 is ``forward``'s ``[..., E]`` with its last dimension moved first: the same
        values in the same channel order."""
        d, rest = x.shape[0], x.shape[1:]
        flat = x.reshape(1, d, -1)
        embedded = torch.sin(torch.addcmul(self.phases.view(-1, 1, 1), flat, self.freqs.view(-1, 1, 1)))
        embedded = embedded.reshape(-1, *rest)
        return [x, embedded] if self.include_input else [embedded]

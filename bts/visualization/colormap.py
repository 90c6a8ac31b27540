"""Depth colouring: inverse depth between ``1/d_max`` and ``1/d_min`` through magma (docs/method.md §10)."""

from __future__ import annotations

import torch
from matplotlib import colormaps
from torch import Tensor

_MAGMA = torch.tensor(colormaps["magma"](torch.linspace(0, 1, 256).numpy())[:, :3], dtype=torch.float32)


def colorize_depth(depth: Tensor, d_min: float = 3.0, d_max: float = 40.0) -> Tensor:
    """RGB ``[..., 3, H, W]`` in ``[0, 1]`` for depth ``[..., H, W]``: near is bright, far is dark."""
    inv = (1.0 / depth.clamp_min(1e-6) - 1.0 / d_max) / (1.0 / d_min - 1.0 / d_max)
    # NaN (a diverged model) is drawn as the far colour, not turned into an out-of-range index.
    inv = torch.nan_to_num(inv, nan=0.0)
    index = (inv.clamp(0.0, 1.0) * 255).round().long()
    return _MAGMA.to(depth.device)[index].movedim(-1, -3)


def apply_magma(values: Tensor) -> Tensor:
    """RGB ``[..., 3, H, W]`` in ``[0, 1]`` for values ``[..., H, W]`` in ``[0, 1]`` (clamped), e.g. a BEV profile."""
    index = (torch.nan_to_num(values, nan=0.0).clamp(0.0, 1.0) * 255).round().long()
    return _MAGMA.to(values.device)[index].movedim(-1, -3)

"""Pure metric functions (method.md §8)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def depth_metrics(pred: Float[Tensor, "..."], gt: Float[Tensor, "..."], min_depth: float = 1e-3,
                  max_depth: float = 80.0) -> dict[str, float]:
    """Monodepth metrics over the pixels with ``min_depth < gt < max_depth``; the prediction is clamped to
    ``[min_depth, max_depth]`` (no median scaling: the models are metric through stereo).

    Returns NaN for every metric when no pixel is valid.
    """
    valid = (gt > min_depth) & (gt < max_depth)
    if not valid.any():
        return {k: float("nan") for k in DEPTH_METRICS}
    d = pred[valid].double().clamp(min_depth, max_depth)
    g = gt[valid].double()
    ratio = torch.maximum(d / g, g / d)
    return {
        "abs_rel": ((d - g).abs() / g).mean().item(),
        "sq_rel": ((d - g) ** 2 / g).mean().item(),
        "rmse": ((d - g) ** 2).mean().sqrt().item(),
        "rmse_log": ((d.log() - g.log()) ** 2).mean().sqrt().item(),
        "a1": (ratio < 1.25).double().mean().item(),
        "a2": (ratio < 1.25**2).double().mean().item(),
        "a3": (ratio < 1.25**3).double().mean().item(),
    }

"""Depth metrics (docs/method.md §8.2), used by the library's validation and by ``evaluation/depth.py``.

Pure functions on tensors; ``evaluation/metrics.py`` re-exports them beside the occupancy and novel-view metrics.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def median_scale_ratio(pred: Float[Tensor, "..."], gt: Float[Tensor, "..."], min_depth: float = 1e-3,
                       max_depth: float = 80.0) -> float:
    """``median(gt) / median(pred)`` over the pixels with ``min_depth < gt < max_depth`` (NaN when there are none).

    Medians are the middle value of the sorted values, the mean of the two middle ones for an even count (numpy's).
    """
    valid = (gt > min_depth) & (gt < max_depth)
    if not valid.any():
        return float("nan")
    return (gt[valid].double().quantile(0.5) / pred[valid].double().quantile(0.5)).item()


def depth_metrics(pred: Float[Tensor, "..."], gt: Float[Tensor, "..."], min_depth: float = 1e-3,
                  max_depth: float = 80.0, median_scaling: bool = False) -> dict[str, float]:
    """Monodepth metrics over the pixels with ``min_depth < gt < max_depth``; the prediction is clamped to
    ``[min_depth, max_depth]``.

    No median scaling by default (the models are metric through stereo); with ``median_scaling`` the prediction is
    first multiplied by :func:`median_scale_ratio` (per image), then clamped, as in the monocular protocol.
    Returns NaN for every metric when no pixel is valid.
    """
    valid = (gt > min_depth) & (gt < max_depth)
    if not valid.any():
        return {k: float("nan") for k in DEPTH_METRICS}
    d = pred[valid].double()
    if median_scaling:
        d = d * median_scale_ratio(pred, gt, min_depth, max_depth)
    d = d.clamp(min_depth, max_depth)
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

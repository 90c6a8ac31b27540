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


OCCUPANCY_METRICS = ("o_acc", "o_prec", "o_rec", "ie_acc", "ie_prec", "ie_rec")


def _ratio(num: Tensor, den: Tensor) -> float:
    return (num.double() / den.double()).item() if den > 0 else float("nan")


def occupancy_metrics(pred_occupied: Tensor, gt_occupied: Tensor, visible: Tensor) -> dict[str, float]:
    """Occupancy metrics of one image (method.md §8.1); visible points must already be GT-empty.

    - ``o_acc``: accuracy over all points; ``o_prec`` / ``o_rec``: precision / recall of "occupied";
    - ``ie_acc``: accuracy over the points that are not visible (occluded or outside the view);
    - ``ie_prec``: among invisible points predicted empty, the fraction that are empty;
    - ``ie_rec``: among invisible, GT-empty points, the fraction predicted empty.

    A metric without any point to average over is NaN (skipped when averaging over images, like the original).
    """
    pred, gt, vis = pred_occupied.bool(), gt_occupied.bool(), visible.bool()
    if (gt & vis).any():
        raise ValueError("visible points must be ground-truth empty")
    hidden = ~vis
    return {
        "o_acc": _ratio((pred == gt).sum(), torch.tensor(pred.numel())),
        "o_prec": _ratio((pred & gt).sum(), pred.sum()),
        "o_rec": _ratio((pred & gt).sum(), gt.sum()),
        "ie_acc": _ratio(((pred == gt) & hidden).sum(), hidden.sum()),
        "ie_prec": _ratio((~pred & ~gt & hidden).sum(), (~pred & hidden).sum()),
        "ie_rec": _ratio((~pred & ~gt & hidden).sum(), (~gt & hidden).sum()),
    }

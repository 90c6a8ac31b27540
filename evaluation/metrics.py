"""Pure metric functions (docs/method.md §8).

The depth metrics live in the library (:mod:`bts.metrics`, used by the training validation) and are re-exported
here, so that every metric of the evaluation is importable from this module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from bts.metrics import DEPTH_METRICS, depth_metrics, median_scale_ratio

__all__ = [
    "DEPTH_METRICS", "OCCUPANCY_METRICS", "depth_metrics", "median_scale_ratio", "occupancy_metrics", "psnr", "ssim",
]


OCCUPANCY_METRICS = ("o_acc", "o_prec", "o_rec", "ie_acc", "ie_prec", "ie_rec")


def _ratio(num: Tensor, den: Tensor) -> float:
    return (num.double() / den.double()).item() if den > 0 else float("nan")


def occupancy_metrics(pred_occupied: Tensor, gt_occupied: Tensor, visible: Tensor) -> dict[str, float]:
    """Occupancy metrics of one image (docs/method.md §8.1); visible points must already be GT-empty.

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


def psnr(pred: Float[Tensor, "C H W"], target: Float[Tensor, "C H W"], data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB, computed in float64 (skimage's
    ``peak_signal_noise_ratio``). Identical images give ``inf`` (MSE 0), as skimage does; it is not capped."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    mse = ((pred.double() - target.double()) ** 2).mean().item()
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(pred: Float[Tensor, "C H W"], target: Float[Tensor, "C H W"], data_range: float = 1.0,
         win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean structural similarity with the defaults of skimage's ``structural_similarity`` (docs/method.md §8.3).

    Per channel: local means, variances and covariance over a uniform ``win_size`` x ``win_size`` window, variances
    and covariance with the sample normalisation ``N / (N - 1)`` (``N = win_size^2``), ``C1 = (k1 R)^2``,
    ``C2 = (k2 R)^2``, ``S = (2 mu_x mu_y + C1)(2 cov + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2))``. The map
    is averaged over the windows that lie fully inside the image (skimage crops ``(win_size - 1) / 2`` pixels at
    each border), then over channels. Computed in float64.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be [C, H, W], got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if win_size % 2 == 0 or min(pred.shape[-2:]) < win_size:
        raise ValueError(f"win_size must be odd and at most the image size, got {win_size} for "
                         f"{tuple(pred.shape[-2:])}")
    x, y = pred.double()[:, None], target.double()[:, None]  # channels as a batch of 1-channel images
    mean = lambda t: F.avg_pool2d(t, win_size, stride=1)  # noqa: E731 - valid windows only
    n = win_size * win_size
    ux, uy = mean(x), mean(y)
    vx = (mean(x * x) - ux * ux) * n / (n - 1)
    vy = (mean(y * y) - uy * uy) * n / (n - 1)
    vxy = (mean(x * y) - ux * uy) * n / (n - 1)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3)).mean().item()

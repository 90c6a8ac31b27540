"""Photometric loss: L1 + SSIM on rendered patches, minimum over colour frames (docs/method.md §3.4).

Each colour-source frame j renders its own version of a patch; the per-pixel error of frame j is

    e_j = 0.85 mean_RGB[clamp(1 - SSIM(c_j, c), 0, 1) / 2] + 0.15 mean_RGB |c_j - c|,

and each pixel keeps ``min_j e_j``: a pixel occluded in one frame is explained by another (the monodepth2
minimum-reprojection idea), so the loss does not punish correct geometry for occlusions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from bts.losses.masking import masked_mean

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
# The original's 3x3 Gaussian-like window (sums to 0.9998, not 1; kept as is so that losses stay comparable).
SSIM_WINDOW = ((0.0947, 0.1183, 0.0947), (0.1183, 0.1478, 0.1183), (0.0947, 0.1183, 0.0947))


def _window_mean(x: Tensor) -> Tensor:
    """Weighted 3x3 mean of every channel of ``[N, C, h, w]`` with zero padding of 1 (the original's choice)."""
    c = x.shape[1]
    kernel = x.new_tensor(SSIM_WINDOW).expand(c, 1, 3, 3).contiguous()
    return F.conv2d(x, kernel, padding=1, groups=c)


def ssim(x: Float[Tensor, "*#batch C h w"], y: Float[Tensor, "*#batch C h w"]) -> Float[Tensor, "*#batch C h w"]:
    """Per-pixel, per-channel SSIM of two patches (or broadcastable stacks of patches).

    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x + s_y + C2))`` with local means and
    (co)variances over the zero-padded 3x3 window ``SSIM_WINDOW``, ``C1 = 0.01^2``, ``C2 = 0.03^2``. Identical
    inputs give exactly 1.
    """
    x, y = torch.broadcast_tensors(x, y)
    shape = x.shape
    x, y = x.reshape(-1, *shape[-3:]), y.reshape(-1, *shape[-3:])
    # One grouped convolution for all five local moments: on the CPU a convolution call costs more than its work
    # on small patches.
    mu_x, mu_y, xx, yy, xy = _window_mean(torch.cat([x, y, x * x, y * y, x * y], dim=1)).chunk(5, dim=1)
    sigma_x = xx - mu_x * mu_x
    sigma_y = yy - mu_y * mu_y
    sigma_xy = xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return (numerator / denominator).reshape(shape)


def photometric_error(
    rendered: Float[Tensor, "*#batch 3 h w"], target: Float[Tensor, "*#batch 3 h w"], ssim_weight: float = 0.85
) -> Float[Tensor, "*#batch h w"]:
    """Per-pixel ``e = a mean_RGB[clamp(1 - SSIM, 0, 1) / 2] + (1 - a) mean_RGB |rendered - target|``, ``a = 0.85``.

    ``rendered`` and ``target`` broadcast against each other.
    """
    dssim = (1.0 - ssim(rendered, target)).clamp(0.0, 1.0) / 2.0
    l1 = (rendered - target).abs()
    return ssim_weight * dssim.mean(dim=-3) + (1.0 - ssim_weight) * l1.mean(dim=-3)


@dataclass(frozen=True)
class PhotometricLoss:
    """The photometric term and its per-pixel parts (for logging and visualisation).

    Attributes:
        loss: mean over all pixels of ``min_j e_j (1 - mask)``, a scalar.
        per_pixel: ``min_j e_j`` before masking, ``[B, P, h, w]``.
        best_frame: the colour frame j attaining the minimum, ``[B, P, h, w]``.
    """

    loss: Float[Tensor, ""]
    per_pixel: Float[Tensor, "B P h w"]
    best_frame: Int[Tensor, "B P h w"]


def photometric_loss(
    rendered: Float[Tensor, "B F P 3 h w"],
    target: Float[Tensor, "B P 3 h w"],
    ray_mask: Bool[Tensor, "B P h w"] | None = None,
    *,
    ssim_weight: float = 0.85,
) -> PhotometricLoss:
    """The photometric term of docs/method.md §3.4: per-pixel minimum over the ``F`` colour frames, masked, averaged.

    Args:
        rendered: one rendered colour patch per colour frame, in ``[0, 1]``.
        target: the ground-truth patches of the loss frames, in ``[0, 1]``.
        ray_mask: rays to ignore (see :func:`bts.losses.masking.weight_guided_mask`); they count as 0 but stay in
            the denominator.
        ssim_weight: weight of the SSIM term against L1.
    """
    errors = photometric_error(rendered, target.unsqueeze(1), ssim_weight)  # [B, F, P, h, w]
    per_pixel, best_frame = errors.min(dim=1)
    return PhotometricLoss(loss=masked_mean(per_pixel, ray_mask), per_pixel=per_pixel, best_frame=best_frame)

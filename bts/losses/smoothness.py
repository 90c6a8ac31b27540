"""Edge-aware smoothness of the rendered distance (docs/method.md §3.6).

Depth may jump where the image has an edge, so disparity gradients are penalised less where the colour changes:

    d = 1 / clamp(D, 1e-3, 80),   d' = d / mean_patch(d),
    l = |dx d'| exp(-mean_RGB |dx I|) + |dy d'| exp(-mean_RGB |dy I|),

with forward differences whose last column (row) is zero. Normalising by the patch mean makes the term
independent of the scene's distance scale, so that it does not simply push all depths to be far away.
"""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from bts.losses.masking import masked_mean

# Range of the rendered distance before inversion (the original's clamp; 80 m is the far plane).
MIN_DISTANCE, MAX_DISTANCE = 1e-3, 80.0


def _forward_differences(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x[.., i, j+1] - x[.., i, j]`` and ``x[.., i+1, j] - x[.., i, j]``, zero-padded back to ``[.., h, w]``."""
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return dx, dy


def edge_aware_smoothness_map(
    distance: Float[Tensor, "*batch h w"], image: Float[Tensor, "*batch 3 h w"]
) -> Float[Tensor, "*batch h w"]:
    """Per-pixel smoothness penalty of rendered distance patches given their ground-truth image patches."""
    disparity = 1.0 / distance.clamp(MIN_DISTANCE, MAX_DISTANCE)
    disparity = disparity / disparity.mean(dim=(-2, -1), keepdim=True)
    d_dx, d_dy = _forward_differences(disparity)
    i_dx, i_dy = _forward_differences(image)
    weight_x = (-i_dx.abs().mean(dim=-3)).exp()
    weight_y = (-i_dy.abs().mean(dim=-3)).exp()
    return d_dx.abs() * weight_x + d_dy.abs() * weight_y


def edge_aware_smoothness(
    distance: Float[Tensor, "B P h w"],
    image: Float[Tensor, "B P 3 h w"],
    ray_mask: Bool[Tensor, "B P h w"] | None = None,
) -> Float[Tensor, ""]:
    """The smoothness term: :func:`edge_aware_smoothness_map` averaged over all pixels, masked rays counting 0.

    Args:
        distance: rendered distances ``D`` of the patches.
        image: the ground-truth patches ``I`` (in ``[0, 1]``).
        ray_mask: rays to ignore, as for the photometric term.
    """
    return masked_mean(edge_aware_smoothness_map(distance, image), ray_mask)

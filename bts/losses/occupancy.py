"""Binary cross-entropy of a density field against occupancy labels: the supervised upper bound's loss.

A density ``sigma >= 0`` becomes an occupancy probability through the opacity of a fixed length of ray:

    p(sigma) = 1 - exp(-a * sigma),   a = ln 2 / 0.5,

chosen so that ``p(0.5) = 1 - exp(-ln 2) = 1/2`` exactly: the decision ``p > 1/2`` is the evaluation's
``sigma > 0.5`` (``OCCUPANCY_THRESHOLD``). The loss of a point with label ``y`` in {0, 1} is

    l = -w * y * log p - (1 - y) * log(1 - p),   log p = log(-expm1(-a * sigma)),   log(1 - p) = -a * sigma,

computed in (at least) float32 without forming ``p``: ``log(1 - p)`` is exact; ``log p`` uses ``expm1``, accurate
for small ``a * sigma``, with ``a * sigma`` clamped below at ``MIN_RATE`` so that ``sigma = 0`` gives a finite loss
(below ``sigma = MIN_RATE / a``, about 7e-13, an occupied point's loss stays at ``-log(MIN_RATE)``, about 27.6).
``w`` is the positive-class weight (1: plain BCE). The loss is the mean over the valid points (points outside
the input frustum, which the field marks invalid, are excluded), as ``BCEWithLogitsLoss(pos_weight=w)`` would
average over all elements.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float
from torch import Tensor

OCCUPANCY_THRESHOLD = 0.5  # sigma > 0.5 counts as occupied (the evaluation's threshold)
RATE = math.log(2.0) / OCCUPANCY_THRESHOLD  # a: p(OCCUPANCY_THRESHOLD) = 1/2
MIN_RATE = 1e-12  # clamp of a * sigma inside log p


def _at_least_float32(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def occupancy_probability(sigma: Tensor) -> Tensor:
    """``p = 1 - exp(-a sigma)``; exactly 1/2 at ``sigma = 0.5``."""
    return -torch.expm1(-RATE * _at_least_float32(sigma))


def occupancy_log_probabilities(sigma: Tensor) -> tuple[Tensor, Tensor]:
    """``(log p, log(1 - p))`` of :func:`occupancy_probability`, computed stably."""
    x = RATE * _at_least_float32(sigma)
    return torch.log(-torch.expm1(-x.clamp_min(MIN_RATE))), -x


def occupancy_bce(sigma: Float[Tensor, "B N"], labels: Float[Tensor, "B N"], valid: Bool[Tensor, "B N"] | None = None,
                  pos_weight: float = 1.0) -> Float[Tensor, ""]:
    """Mean binary cross-entropy (module docstring) over the ``valid`` points; 0 (with a gradient path) if none."""
    log_p, log_q = occupancy_log_probabilities(sigma)
    y = labels.float()
    per_point = -(pos_weight * y * log_p + (1.0 - y) * log_q)
    if valid is None:
        return per_point.mean()
    v = valid.float()
    return (per_point * v).sum() / v.sum().clamp_min(1.0)


def occupancy_accuracy(sigma: Tensor, labels: Tensor, valid: Tensor | None = None) -> Tensor:
    """Share of (valid) points where ``sigma > 0.5`` agrees with the label."""
    right = ((sigma > OCCUPANCY_THRESHOLD) == (labels > 0.5)).float()
    if valid is None:
        return right.mean()
    v = valid.float()
    return (right * v).sum() / v.sum().clamp_min(1.0)

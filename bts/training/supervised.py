"""The supervised upper bound's training step: the BTS network fitted to exact occupancy (``loss.objective:
supervised``, ``python train.py -cn bts_supervised``).

One step: encode the input view (flipped with probability ``flip_probability``; the encoder mirrors its features
back, so the query points need no change), query the density at the batch's labelled points and score it with the
binary cross-entropy of :mod:`bts.losses.occupancy`. The batch must carry ``occupancy_points`` ``[B, N, 3]`` (in the
frame of the batch's ``cam_to_world``, view 0's camera frame) and ``occupancy_labels`` ``[B, N]`` (0/1); the
data layer adds them (``datasets/synthetic/occupancy_labels.py``, built by ``datasets.factory.build_dataset(...,
occupancy_labels=...)``); this module only sees tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from bts.fields import EncodedViews
from bts.losses import LossWeights, TotalLoss, combine_losses
from bts.losses.occupancy import OCCUPANCY_THRESHOLD, occupancy_accuracy, occupancy_bce

POINTS_KEY = "occupancy_points"
LABELS_KEY = "occupancy_labels"


@dataclass(frozen=True)
class SupervisedConfig:
    flip_probability: float = 0.5
    pos_weight: float = 1.0  # weight of the occupied class in the cross-entropy
    weights: LossWeights = field(default_factory=LossWeights)  # only ``occupancy`` is used


@dataclass(frozen=True)
class SupervisedStepOutput:
    """What the engine needs from a step (``loss``; ``metrics`` are logged beside the loss terms). Unlike the
    photometric :class:`~bts.training.objective.StepOutput` it has no ``render``, so the training logger writes no
    patch images for it (validation still logs the rendered depth)."""

    loss: TotalLoss
    metrics: dict[str, Tensor]  # detached scalars: accuracy, occupied share of labels and of predictions
    sigma: Tensor  # [B, N] density at the labelled points
    invalid: Tensor  # [B, N] outside the input frustum (excluded from the loss)
    labels: Tensor  # [B, N]
    encoded: EncodedViews


def supervised_step(model, batch: dict, config: SupervisedConfig, generator: torch.Generator | None = None,
                    flip: bool | None = None) -> SupervisedStepOutput:
    """The occupancy cross-entropy of one batch for a model with ``encode``, ``encoder_views`` and ``density``."""
    missing = [k for k in (POINTS_KEY, LABELS_KEY) if k not in batch]
    if missing:
        raise KeyError(f"the supervised objective needs {missing} in the batch: build the training set with exact "
                       "occupancy labels (datasets.factory.build_dataset(..., occupancy_labels=cfg['loss']['points']))")
    points, labels = batch[POINTS_KEY], batch[LABELS_KEY]
    if flip is None:
        flip = bool(torch.rand((), generator=generator) < config.flip_probability)
    views = model.encoder_views(batch["images"].shape[1], training=model.training)
    encoded = model.encode(batch["images"], batch["intrinsics"], batch["cam_to_world"], views, flip=flip)
    out = model.density(points, encoded)
    valid = ~out.invalid
    bce = occupancy_bce(out.sigma, labels, valid, pos_weight=config.pos_weight)
    with torch.no_grad():
        v = valid.float()
        count = v.sum().clamp_min(1.0)
        metrics = {
            "occupancy_accuracy": occupancy_accuracy(out.sigma, labels, valid),
            "occupied_share": (labels.float() * v).sum() / count,
            "predicted_occupied_share": ((out.sigma > OCCUPANCY_THRESHOLD).float() * v).sum() / count,
        }
    loss = combine_losses({"occupancy": bce}, config.weights)
    return SupervisedStepOutput(loss, metrics, out.sigma.detach(), out.invalid, labels, encoded)

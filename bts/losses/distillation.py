"""Distillation losses: what a KDBTS student learns from the frozen or jointly trained MVBTS teacher, per point.

Both take the raw (pre-softplus) outputs of the two heads at the same sample points, ``sigma = softplus(raw)``, and
never pass a gradient to the teacher (``sg`` below: stop-gradient). ``kd.loss`` selects one (:data:`KD_LOSSES`):

- ``l1`` (the KDBTS paper, docs/method.md §5): ``|clip(sigma_s, 0, 2) - clip(sg(sigma_t), 0, 2)|``. It fits the
  per-point median of the teacher's density; beyond the clip there is neither difference nor gradient.
- ``bce`` (probabilistic distillation, after KD-MVS; docs/method.md §5.3): each density as the probability that
  the point is occupied, ``p(sigma) = 1 - exp(-sigma ln 2 / tau)`` with ``tau = 0.5`` the evaluation threshold
  (``p = 0.5`` exactly at ``sigma = tau``: a student that matches the teacher's probabilities makes the same
  thresholded decisions), and the binary cross-entropy against the teacher's probability,
  ``-(p_t log p_s + (1 - p_t) log(1 - p_s))``. Written with ``k = ln 2 / tau``: ``log(1 - p_s) = -k sigma_s`` and
  ``log p_s = log(-expm1(-k sigma_s))``, so it is exact and finite for any density (the supervised bound's
  :func:`~bts.losses.occupancy.occupancy_log_probabilities`, with its floor of ``k sigma_s`` at 1e-12). Its
  gradient in ``sigma_s`` is ``k (1 - p_t / p_s)``: zero where the two agree, and it does not vanish for large
  densities as the clipped L1 does. It is not zero at agreement (it equals the entropy of
  ``p_t`` there), so the logged value is not a distance; ``bce_gap`` gives the KL divergence for that.

The teacher's probability is the soft target: nothing is thresholded before the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bts.losses.occupancy import occupancy_log_probabilities, occupancy_probability

KD_CLIP = 2.0


@dataclass
class DistillationAccumulator:
    """Sum and count of the per-point KD terms over the chunks of one render pass."""

    total: Tensor | float = 0.0
    count: int = 0

    def add(self, per_point: Tensor) -> None:
        self.total = self.total + per_point.sum()
        self.count += per_point.numel()

    def mean(self) -> Tensor:
        return torch.as_tensor(self.total) / max(self.count, 1)


def l1_distillation(student_raw: Tensor, teacher_raw: Tensor) -> Tensor:
    """Per-point L1 between clipped densities (the paper's ``L_KD``); no gradient reaches the teacher."""
    student = F.softplus(student_raw).clamp(0.0, KD_CLIP)
    teacher = F.softplus(teacher_raw.detach()).clamp(0.0, KD_CLIP)
    return (student - teacher).abs()


def bce_distillation(student_raw: Tensor, teacher_raw: Tensor) -> Tensor:
    """Per-point binary cross-entropy of the student's occupancy probability against the teacher's (see the
    module docstring for the formula); no gradient reaches the teacher."""
    p_t = occupancy_probability(F.softplus(teacher_raw.detach()))
    log_p, log_not_p = occupancy_log_probabilities(F.softplus(student_raw))
    return -(p_t * log_p + (1.0 - p_t) * log_not_p)


def bce_gap(student_raw: Tensor, teacher_raw: Tensor) -> Tensor:
    """The KL divergence of the student's occupancy probability from the teacher's: ``bce`` minus the entropy of
    the teacher's probability, zero exactly where the two agree (a distance to report, not to train with)."""
    p_t = occupancy_probability(F.softplus(teacher_raw.detach())).clamp(1e-12, 1 - 1e-12)
    entropy = -(p_t * p_t.log() + (1 - p_t) * (1 - p_t).log())
    return bce_distillation(student_raw, teacher_raw) - entropy


KD_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"l1": l1_distillation, "bce": bce_distillation}


def distillation_loss(student_raw: Tensor, teacher_raw: Tensor, kind: str = "l1") -> Tensor:
    """The per-point distillation term ``kind`` (:data:`KD_LOSSES`)."""
    return KD_LOSSES[check_kd_loss(kind)](student_raw, teacher_raw)


def check_kd_loss(kind: str) -> str:
    if kind not in KD_LOSSES:
        raise ValueError(f"kd.loss must be one of {sorted(KD_LOSSES)}, got {kind!r}")
    return kind

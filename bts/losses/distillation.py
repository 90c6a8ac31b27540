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

- ``vis_bce`` (the ray-termination cross-entropy, docs/method.md §5.4): on every rendered ray, the cross-entropy
  between the teacher's and the student's ray-termination distributions, ``-sum_i w^T_i log w^S_i``. With
  ``w_i = T_i alpha_i``, ``alpha_i = 1 - exp(-sigma_i delta_i)`` (the renderer's own samples and spacings) it equals,
  exactly, a sum of per-sample binary cross-entropies of the opacities weighted by the teacher's transmittance:

      -sum_i w^T_i log w^S_i = sum_j T^T_j BCE(alpha^S_j ; alpha^T_j),   T^T_j = prod_{i<j} (1 - alpha^T_i)

  (regroup ``log w^S_i = sum_{k<i} log(1 - alpha^S_k) + log alpha^S_i`` and use ``sum_{i>k} w^T_i = T^T_k (1 -
  alpha^T_k)``). So the student's samples decouple, and behind the teacher's first surface *as seen from that ray's
  camera* (``T^T_j = 0``) there is neither loss nor gradient. The rays of a training step come from the loss frames
  (other times, the stereo partner, the fisheyes), so this term reaches the input view's occluded space wherever
  another camera's ray passes through it before the teacher's surface, which the per-point losses cannot tell
  apart from space nobody saw. The last sample is left out: the renderer caps its opacity at 1 for both fields, so
  its term is 0. The loss is normalised by ``sum_j T^T_j`` over the samples inside the input view's frustum.

The teacher's probability is the soft target: nothing is thresholded before the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from bts.losses.occupancy import MIN_RATE, occupancy_log_probabilities, occupancy_probability
from bts.rendering.compositing import composite

KD_CLIP = 2.0


@dataclass
class DistillationAccumulator:
    """The KD term of one render pass, gathered over the chunks of points the renderer queries.

    A per-point loss (``l1``, ``bce``) is summed as it comes (:meth:`add`); the ray loss (``vis_bce``) needs every
    sample of a ray, so the raw outputs are kept in the renderer's order (:meth:`keep`) and the loss is computed once
    the sample distances are known (:meth:`loss`).
    """

    total: Tensor | float = 0.0
    count: int = 0
    kept: dict[str, list[Tensor]] = field(default_factory=dict)
    masked: list[float] = field(default_factory=lambda: [0, 0])  # kd.mask: points kept, points in the frustum
    kind: str = "vis_bce"  # the loss of the kept samples
    ray_mask: str | None = None  # the mask the kept samples wait for (kd.mask=photometric | learned)

    def count_coverage(self, kept: float, considered: int) -> None:
        self.masked[0] += kept
        self.masked[1] += considered

    def coverage(self) -> float | None:
        """The share of the points inside the input frustum that ``kd.mask`` kept (``None`` without a mask)."""
        return self.masked[0] / self.masked[1] if self.masked[1] else None

    def add(self, per_point: Tensor) -> None:
        self.total = self.total + per_point.sum()
        self.count += per_point.numel()

    def mean(self) -> Tensor:
        return torch.as_tensor(self.total) / max(self.count, 1)

    def keep(self, student_raw: Tensor, teacher_raw: Tensor, inside: Tensor, kind: str = "vis_bce",
             ray_mask: str | None = None, trust: Tensor | None = None) -> None:
        """Keep one chunk ``[B, n]`` of the flattened ``[B, R * K]`` samples, in the order they are queried, for a
        loss computed once the pass is rendered: the ray loss ``kind``, or a per-point ``kind`` weighted by a
        mask decided after the render (``ray_mask``, :data:`bts.losses.trust.RAY_MASKS`, whose per-sample weights
        :meth:`loss` is given); ``trust``: the learned mask's values at the samples (``kd.mask=learned``)."""
        if self.kept and (kind, ray_mask) != (self.kind, self.ray_mask):
            raise ValueError(f"one pass keeps one loss: got {kind!r} / {ray_mask!r} after {self.kind!r} / "
                             f"{self.ray_mask!r}")
        self.kind, self.ray_mask = kind, ray_mask
        chunk = {"student": student_raw, "teacher": teacher_raw, "inside": inside}
        if trust is not None:
            chunk["trust"] = trust
        for key, value in chunk.items():
            self.kept.setdefault(key, []).append(value)

    def kept_samples(self, shape: torch.Size, key: str | None = None) -> tuple[Tensor, Tensor, Tensor] | Tensor:
        """The kept ``(student_raw, teacher_raw, inside)``, or the one ``key``, reshaped to the render's
        ``[B, R, K]``."""
        if key is not None:
            return torch.cat(self.kept[key], dim=1).reshape(shape)
        return tuple(torch.cat(self.kept[k], dim=1).reshape(shape) for k in ("student", "teacher", "inside"))

    def loss(self, distances: Tensor, hard_alpha_cap: bool = True, select: Tensor | None = None) -> Tensor:
        """The distillation term of the pass: the mean of the per-point terms, or, for kept chunks, the loss on the
        samples at ``distances`` ``[B, R, K]``: the ray loss (:func:`ray_distillation`), or the per-point loss
        weighted by ``select`` ``[B, R, K]`` (a ray mask's decision or the learned mask's detached weights, in
        ``[0, 1]``; required with a ray mask), the weighted mean ``sum w l / sum w`` over the samples inside the
        frustum. With ``select`` the coverage counts ``sum w`` of the frustum's samples."""
        if not self.kept:
            return self.mean()
        student, teacher, inside = self.kept_samples(distances.shape)
        weight = inside.to(distances.dtype)
        if self.ray_mask is not None:
            if select is None:
                raise ValueError(f"kd.mask={self.ray_mask} needs its per-sample decision: pass select=")
            weight = weight * select.detach().to(weight.dtype)
            self.count_coverage(float(weight.sum()), int(inside.sum()))
        if self.kind in RAY_LOSSES:
            total, norm = ray_distillation(student, teacher, distances, weight, hard_alpha_cap)
            return total / norm.clamp_min(1e-6)
        per_point = distillation_loss(student, teacher, self.kind)
        return (per_point * weight).sum() / weight.sum().clamp_min(1e-6)


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


def _opacity_log_probabilities(sigma: Tensor, deltas: Tensor) -> tuple[Tensor, Tensor]:
    """``(log alpha, log(1 - alpha))`` of ``alpha = 1 - exp(-sigma delta)``, exact and finite (as the occupancy
    loss's ``log p``, with ``sigma delta`` floored at ``MIN_RATE`` inside ``log alpha``)."""
    x = sigma * deltas
    return torch.log(-torch.expm1(-x.clamp_min(MIN_RATE))), -x


def ray_distillation(student_raw: Tensor, teacher_raw: Tensor, distances: Tensor, inside: Tensor,
                     hard_alpha_cap: bool = True) -> tuple[Tensor, Tensor]:
    """``(sum_j m_j T^T_j BCE(alpha^S_j; alpha^T_j), sum_j m_j T^T_j)`` over all rays ``[..., K]`` (the module
    docstring's identity), with ``m_j`` the samples ``inside`` the input frustum, the last sample of every ray
    excluded. ``T^T`` and ``alpha^T`` come from the renderer's :func:`~bts.rendering.compositing.composite` on the
    teacher's densities (detached, at every sample of the ray, inside the frustum or not)."""
    teacher = composite(F.softplus(teacher_raw.detach()), distances, hard_alpha_cap=hard_alpha_cap)
    deltas = distances[..., 1:] - distances[..., :-1]
    alpha_t = teacher.alpha[..., :-1]
    log_a, log_not_a = _opacity_log_probabilities(F.softplus(student_raw[..., :-1]), deltas)
    bce = -(alpha_t * log_a + (1.0 - alpha_t) * log_not_a)
    weight = teacher.transmittance[..., :-1] * inside[..., :-1].to(bce.dtype)
    return (weight * bce).sum(), weight.sum()


def ray_cross_entropy(student_raw: Tensor, teacher_raw: Tensor, distances: Tensor,
                      hard_alpha_cap: bool = True) -> Tensor:
    """``-sum_i w^T_i log w^S_i`` summed over rays, from both fields' rendering weights: the quantity that
    :func:`ray_distillation` computes per sample (a reference for testing it)."""
    w_t = composite(F.softplus(teacher_raw.detach()), distances, hard_alpha_cap=hard_alpha_cap).weights
    w_s = composite(F.softplus(student_raw), distances, hard_alpha_cap=hard_alpha_cap).weights
    return -(w_t * w_s.clamp_min(1e-30).log()).sum()


KD_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"l1": l1_distillation, "bce": bce_distillation}
RAY_LOSSES = ("vis_bce",)  # computed along the rendered rays by DistillationAccumulator.loss


def distillation_loss(student_raw: Tensor, teacher_raw: Tensor, kind: str = "l1") -> Tensor:
    """The per-point distillation term ``kind`` (:data:`KD_LOSSES`)."""
    return KD_LOSSES[check_kd_loss(kind)](student_raw, teacher_raw)


def check_kd_loss(kind: str) -> str:
    known = sorted(KD_LOSSES) + list(RAY_LOSSES)
    if kind not in known:
        raise ValueError(f"kd.loss must be one of {known}, got {kind!r}")
    return kind

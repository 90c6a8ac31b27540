"""The learned selective-distillation mask (``kd.mask=learned``; docs/method.md §5.5).

A small head ``g_phi`` gives every sample point ``x`` of the training render a trust value ``m(x) in (0, 1)``: how
far the student should follow the teacher there. It sees only detached quantities (:func:`trust_features`): the
two fields' occupancy probabilities ``p_T``, ``p_S`` and their gap, the share of the teacher's other encoded views
whose frustum holds ``x``, and the teacher's tokens of those views, averaged.

**Training signal** (self-supervised, after MaskDecoder in "Selective Distillation of Stereo Knowledge"): the
photometric error of a *mixture field* on the colour frames the teacher did not encode (held out, as for
``kd.mask=photometric``: on its own inputs the teacher would be judged on images it has seen)::

    alpha^mix_j = m_j sg(alpha^T_j) + (1 - m_j) sg(alpha^S_j)          (per sample j of a loss ray)
    L_mix = mean over loss pixels of min_{j held out, usable} rho(C^mix_j, I_c)

so the gradient reaches only ``phi``: ``m`` rises where rendering through the teacher's opacities reconstructs the
held-out frames better than the student's and falls where it does worse. The student's term is weighted by the
detached mask, ``sum_j sg(m_j) s_j l_j / sum_j sg(m_j) s_j`` over the samples inside the input frustum (any
``kd.loss``; for ``vis_bce`` the weight multiplies the teacher's transmittance).

**Guards against the trivial masks:**

1. *No evidence.* Behind the mixture's surface a sample does not change the render, so its gradient is zero. The
   head starts at ``m = 0.05`` everywhere ("do not trust": the output bias at logit 0.05, small output weights), and
   the student's weight and the prior count only supported samples, ``s_j = [T^mix_j > 0.01]`` (the ray reaches
   them), so regions nobody sees neither drive the mask nor receive its weight.
2. *Global collapse* (one field better everywhere drives ``m`` to all 0 or all 1). A coverage prior ties the mean
   trust over supported samples to the non-learned photometric rule's share of rays ``rho``
   (:func:`bts.losses.trust.photometric_mask`, the same step's evidence): ``beta (mean_s m - rho)^2``, beta = 1.

``L_trust = L_mix + beta (mean_s m - rho)^2`` is logged as ``trust`` and weighted by ``loss.weights.trust``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from bts.fields.mlp import MLP
from bts.losses.occupancy import occupancy_probability
from bts.losses.trust import held_out_error
from bts.rendering.compositing import TRANSMITTANCE_EPS, composite

TRUST_INIT = 0.05  # the head's initial trust everywhere: "do not trust" until the held-out frames say otherwise
SUPPORT_MIN = 0.01  # a sample counts as seen by its loss ray when the mixture's transmittance there exceeds this
PRIOR_WEIGHT = 1.0  # beta of the coverage prior
TRUST_HIDDEN = 32
SCALAR_FEATURES = 4  # p_T, p_S, |p_T - p_S|, share of the other encoded views whose frustum holds the point


def trust_features(teacher_raw: Float[Tensor, "B N"], student_raw: Float[Tensor, "B N"],
                   tokens: Float[Tensor, "B V N D"], invalid: Bool[Tensor, "B V N"]) -> Float[Tensor, "B N F"]:
    """The head's inputs at each point (module docstring), all detached: ``F = 4 + D``."""
    p_t = occupancy_probability(nn.functional.softplus(teacher_raw.detach()))
    p_s = occupancy_probability(nn.functional.softplus(student_raw.detach()))
    inside = (~invalid[:, 1:]).to(p_t.dtype)  # [B, V-1, N]
    count = inside.sum(dim=1)
    share = count / max(invalid.shape[1] - 1, 1)
    pooled = (tokens[:, 1:].detach() * inside[..., None]).sum(dim=1) / count.clamp_min(1.0)[..., None]
    return torch.cat([torch.stack([p_t, p_s, (p_t - p_s).abs(), share], dim=-1), pooled], dim=-1)


class TrustHead(nn.Module):
    """``m(x) = sigmoid(MLP(features))``, initialised to :data:`TRUST_INIT` everywhere."""

    def __init__(self, token_dim: int, hidden: int = TRUST_HIDDEN):
        super().__init__()
        self.mlp = MLP(SCALAR_FEATURES + token_dim, hidden, 1)
        with torch.no_grad():
            self.mlp.lin_out.weight.mul_(0.01)
            self.mlp.lin_out.bias.fill_(math.log(TRUST_INIT / (1.0 - TRUST_INIT)))

    def forward(self, features: Float[Tensor, "B N F"]) -> Float[Tensor, "B N"]:
        return torch.sigmoid(self.mlp(features).squeeze(-1))


def mixture_weights(teacher_sigma: Float[Tensor, "B R K"], student_sigma: Float[Tensor, "B R K"],
                    trust: Float[Tensor, "B R K"], distances: Float[Tensor, "B R K"], hard_alpha_cap: bool = True
                    ) -> tuple[Float[Tensor, "B R K"], Float[Tensor, "B R K"]]:
    """Rendering weights and transmittances of the mixture ``alpha = m sg(alpha^T) + (1 - m) sg(alpha^S)``, with
    each field's opacities from the renderer's compositing; differentiable in ``trust`` only."""
    a_t = composite(teacher_sigma.detach(), distances, hard_alpha_cap=hard_alpha_cap).alpha
    a_s = composite(student_sigma.detach(), distances, hard_alpha_cap=hard_alpha_cap).alpha
    alpha = trust * a_t + (1.0 - trust) * a_s
    survive = torch.cumprod(1.0 - alpha + TRANSMITTANCE_EPS, dim=-1)
    transmittance = torch.cat([torch.ones_like(survive[..., :1]), survive[..., :-1]], dim=-1)
    return alpha * transmittance, transmittance


@dataclass(frozen=True)
class TrustTerms:
    loss: Float[Tensor, ""]  # L_mix + beta (mean_s m - rho)^2, gradient into the head only
    mixture: Float[Tensor, ""]  # L_mix alone (logged)
    select: Float[Tensor, "B R K"]  # the student's per-sample weight sg(m) s (DistillationAccumulator.loss)
    mean_trust: Float[Tensor, ""]  # mean m over supported samples inside the frustum (logged)


def learned_trust_terms(teacher_sigma: Float[Tensor, "B R K"], student_sigma: Float[Tensor, "B R K"],
                        trust: Float[Tensor, "B R K"], inside: Bool[Tensor, "B R K"], distances: Float[Tensor, "B R K"],
                        colours: Float[Tensor, "B F R K 3"], invalid: Bool[Tensor, "B F R K"],
                        target: Float[Tensor, "B P 3 ps ps"], held_out: Sequence[bool], rho: float | Tensor, *,
                        hard_alpha_cap: bool = True, invalid_threshold: float = 0.9, ssim_weight: float = 0.85,
                        prior_weight: float = PRIOR_WEIGHT) -> TrustTerms:
    """The learned mask's loss and the student's weights for one rendered pass (module docstring)."""
    if len(held_out) != colours.shape[1]:
        raise ValueError(f"held_out names {len(held_out)} colour frames, the colours have {colours.shape[1]}")
    keep = torch.as_tensor(list(held_out), dtype=torch.bool, device=distances.device)
    weights, transmittance = mixture_weights(teacher_sigma, student_sigma, trust, distances, hard_alpha_cap)
    error = held_out_error(weights, colours, invalid, target, keep, invalid_threshold, ssim_weight)
    scored = torch.isfinite(error)
    mixture = error.where(scored, error.new_zeros(())).sum() / scored.sum().clamp_min(1)
    supported = inside & (transmittance.detach() > SUPPORT_MIN)
    count = supported.sum().clamp_min(1)
    mean_trust = (trust * supported).sum() / count
    rho = torch.as_tensor(rho, dtype=trust.dtype, device=trust.device)
    loss = mixture + prior_weight * (mean_trust - rho) ** 2
    return TrustTerms(loss, mixture.detach(), (trust.detach() * supported), mean_trust.detach())

"""Distillation losses (bts/losses/distillation.py): the paper's clipped L1 and the probabilistic BCE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bts.losses.distillation import KD_LOSSES, bce_distillation, bce_gap, distillation_loss, l1_distillation
from bts.losses.occupancy import occupancy_probability


def raw_of(sigma: torch.Tensor) -> torch.Tensor:
    """The raw head output whose softplus is ``sigma``."""
    return sigma + torch.log(-torch.expm1(-sigma))


def test_occupancy_probability_is_one_half_at_the_evaluation_threshold():
    p = occupancy_probability(torch.tensor([0.0, 0.5, 1.0, 50.0]))
    assert p[0] == 0 and p[1].item() == pytest.approx(0.5) and p[2].item() == pytest.approx(0.75)
    assert p[3].item() == pytest.approx(1.0)


def test_bce_equals_the_cross_entropy_written_out_and_is_finite_everywhere():
    sigma_s = torch.tensor([0.05, 0.3, 0.5, 1.2, 4.0], dtype=torch.float64)
    sigma_t = torch.tensor([0.0, 0.8, 0.5, 0.1, 9.0], dtype=torch.float64)
    got = bce_distillation(raw_of(sigma_s), raw_of(sigma_t))
    want = F.binary_cross_entropy(1 - torch.exp(-sigma_s * math.log(2) / 0.5),
                                  1 - torch.exp(-sigma_t * math.log(2) / 0.5), reduction="none")
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)
    extreme = bce_distillation(torch.tensor([-80.0, 0.0, 80.0]), torch.tensor([80.0, 0.0, -80.0]))
    assert torch.isfinite(extreme).all() and (extreme > 0).all()


def test_each_loss_is_stationary_where_the_heads_agree_and_never_reaches_the_teacher():
    for name, loss in KD_LOSSES.items():
        s = torch.randn(200, dtype=torch.float64, requires_grad=True)
        t = s.detach().clone().requires_grad_()
        loss(s, t).sum().backward()
        assert s.grad.abs().max() < 1e-9, name  # agreement is a minimum (L1: the subgradient 0 at the kink)
        s.grad = None
        loss(s, t + 1.0).sum().backward()
        assert t.grad is None and s.grad.abs().sum() > 0, name
    assert distillation_loss(torch.zeros(3), torch.zeros(3), "l1").abs().max() == 0
    with pytest.raises(ValueError, match=r"kd.loss must be one of \['bce', 'l1'\], got 'kl'"):
        distillation_loss(torch.zeros(1), torch.zeros(1), "kl")


def test_unlike_the_clipped_l1_the_bce_still_pulls_large_densities_and_its_gap_is_a_distance():
    student, teacher = torch.tensor([20.0], requires_grad=True), torch.tensor([-5.0])  # sigma 20 against ~0.007
    assert l1_distillation(torch.tensor([10.0]), torch.tensor([20.0])).item() == 0  # both beyond the clip
    bce_distillation(student, teacher).sum().backward()
    assert student.grad.item() > 0.1  # descending lowers the student's density
    s = torch.randn(50, dtype=torch.float64)
    assert bce_gap(s, s).abs().max() < 1e-9
    assert (bce_gap(s, s + 1.0) > 0).all()


def test_a_student_fitted_by_bce_makes_the_teachers_occupancy_decisions():
    torch.manual_seed(0)
    teacher = torch.randn(400) * 2
    student = torch.zeros(400, requires_grad=True)
    opt = torch.optim.Adam([student], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        bce_distillation(student, teacher).mean().backward()
        opt.step()
    decided = (F.softplus(student) > 0.5) == (F.softplus(teacher) > 0.5)
    assert decided.float().mean() > 0.97

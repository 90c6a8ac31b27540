"""Distillation losses (bts/losses/distillation.py): the paper's clipped L1 and the probabilistic BCE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bts.losses.distillation import (KD_LOSSES, DistillationAccumulator, bce_distillation, bce_gap, distillation_loss,
                                     l1_distillation, ray_cross_entropy, ray_distillation)
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
    with pytest.raises(ValueError, match=r"kd.loss must be one of \['bce', 'l1', 'vis_bce'\], got 'kl'"):
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


# --- the ray-termination cross-entropy (kd.loss=vis_bce) -------------------------------------------------------------

def test_ray_loss_on_a_three_sample_ray_by_hand():
    """Samples at 1, 2, 4 m; teacher densities ln 2 and ln 4 give alpha^T = 1/2, 1 - 1/4^2 = 15/16 (the last sample
    is capped and left out); T^T = 1, 1/2. Student alpha^S = 1 - exp(-0.1), 1 - exp(-0.2 * 2)."""
    distances = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    sigma_t = torch.tensor([[math.log(2), math.log(4), 1.0]], dtype=torch.float64)
    sigma_s = torch.tensor([[0.1, 0.2, 3.0]], dtype=torch.float64)
    inside = torch.ones(1, 3, dtype=torch.bool)
    total, weight = ray_distillation(raw_of(sigma_s), raw_of(sigma_t), distances, inside)
    a_t, a_s = [0.5, 15 / 16], [1 - math.exp(-0.1), 1 - math.exp(-0.4)]
    bce = [-(t * math.log(s) + (1 - t) * math.log(1 - s)) for t, s in zip(a_t, a_s)]
    assert weight.item() == pytest.approx(1.5, rel=1e-9)
    assert total.item() == pytest.approx(bce[0] + 0.5 * bce[1], rel=1e-9)
    outside = torch.tensor([[True, False, True]])  # the second sample outside the input frustum: dropped
    total, weight = ray_distillation(raw_of(sigma_s), raw_of(sigma_t), distances, outside)
    assert total.item() == pytest.approx(bce[0], rel=1e-9) and weight.item() == pytest.approx(1.0)


def test_ray_loss_equals_the_cross_entropy_of_the_termination_distributions():
    """The identity of the module docstring, on random rays with the renderer's own compositing."""
    g = torch.Generator().manual_seed(0)
    distances = torch.sort(torch.rand(5, 24, generator=g, dtype=torch.float64) * 40 + 3, dim=-1).values
    teacher = torch.randn(5, 24, generator=g, dtype=torch.float64)
    student = torch.randn(5, 24, generator=g, dtype=torch.float64)
    for cap in (True, False):
        total, _ = ray_distillation(student, teacher, distances, torch.ones(5, 24, dtype=torch.bool), cap)
        assert total.item() == pytest.approx(ray_cross_entropy(student, teacher, distances, cap).item(), rel=1e-6)


def test_ray_loss_ignores_the_student_behind_the_teachers_surface_and_never_reaches_the_teacher():
    distances = torch.linspace(3.0, 30.0, 16, dtype=torch.float64)[None]
    sigma_t = torch.full((1, 16), 0.01, dtype=torch.float64)
    sigma_t[0, 5] = 1e4  # a wall: T^T = 0 behind it
    teacher = raw_of(sigma_t).requires_grad_()
    student = torch.randn(1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    inside = torch.ones(1, 16, dtype=torch.bool)
    total, _ = ray_distillation(student, teacher, distances, inside)
    total.backward()
    # behind: only the renderer's transmittance floor (1e-10) is left, against gradients of order 1e-2 in front
    assert student.grad[0, 7:].abs().max() < 1e-6 * student.grad[0, :6].abs().min()
    assert teacher.grad is None
    changed = student.detach().clone()
    changed[0, 7:] += 5.0
    again, _ = ray_distillation(changed, teacher, distances, inside)
    assert again.item() == pytest.approx(total.item(), rel=1e-8)


def test_ray_loss_is_stationary_where_the_student_equals_the_teacher():
    distances = torch.linspace(3.0, 30.0, 16, dtype=torch.float64)[None]
    teacher = torch.randn(1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    student = teacher.clone().requires_grad_()
    total, _ = ray_distillation(student, teacher, distances, torch.ones(1, 16, dtype=torch.bool))
    total.backward()
    assert student.grad.abs().max() < 1e-9


def test_the_accumulator_rebuilds_rays_from_the_renderers_chunks():
    g = torch.Generator().manual_seed(3)
    distances = torch.sort(torch.rand(2, 6, 8, generator=g) * 20 + 3, dim=-1).values
    student, teacher = torch.randn(2, 48, generator=g), torch.randn(2, 48, generator=g)
    inside = torch.rand(2, 48, generator=g) > 0.2
    kd = DistillationAccumulator()
    for part in (slice(0, 20), slice(20, 45), slice(45, 48)):  # chunks of the flattened [B, R * K] samples
        kd.keep(student[:, part], teacher[:, part], inside[:, part])
    total, weight = ray_distillation(student.reshape(2, 6, 8), teacher.reshape(2, 6, 8), distances,
                                     inside.reshape(2, 6, 8))
    assert kd.loss(distances).item() == pytest.approx((total / weight).item(), rel=1e-6)

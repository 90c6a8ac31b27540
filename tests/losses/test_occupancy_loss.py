"""The occupancy cross-entropy of the supervised bound against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from bts.losses.occupancy import (
    MIN_RATE,
    OCCUPANCY_THRESHOLD,
    RATE,
    occupancy_accuracy,
    occupancy_bce,
    occupancy_log_probabilities,
    occupancy_probability,
)

LN2 = math.log(2.0)


def test_probability_is_one_half_exactly_at_the_evaluation_threshold():
    assert OCCUPANCY_THRESHOLD == 0.5 and RATE == pytest.approx(2 * LN2)
    for dtype in (torch.float32, torch.float64):
        assert occupancy_probability(torch.tensor(0.5, dtype=dtype)).item() == 0.5
    p = occupancy_probability(torch.tensor([0.0, 1.0, 1.5, 100.0]))
    assert p.tolist() == pytest.approx([0.0, 0.75, 0.875, 1.0])  # 1 - 2^(-2 sigma)
    assert occupancy_probability(torch.tensor(0.5, dtype=torch.bfloat16)).dtype == torch.float32


def test_bce_values_by_hand():
    def bce(sigma, label, **kwargs):
        return occupancy_bce(torch.tensor([[sigma]]), torch.tensor([[label]]), **kwargs).item()

    assert bce(0.5, 1.0) == pytest.approx(LN2)  # -log(1/2)
    assert bce(0.5, 0.0) == pytest.approx(LN2)  # a * 0.5
    assert bce(1.0, 1.0) == pytest.approx(-math.log(0.75))
    assert bce(1.0, 0.0) == pytest.approx(2 * LN2)
    assert bce(0.0, 0.0) == 0.0
    assert bce(0.0, 1.0) == pytest.approx(-math.log(MIN_RATE))  # clamped: finite
    assert bce(100.0, 0.0) == pytest.approx(200 * LN2)  # exact where torch's BCE clamps its log at -100
    assert bce(1e-6, 1.0) == pytest.approx(-math.log(-math.expm1(-2 * LN2 * 1e-6)), rel=1e-6)
    assert bce(1.0, 1.0, pos_weight=3.0) == pytest.approx(-3 * math.log(0.75))
    assert bce(1.0, 0.0, pos_weight=3.0) == pytest.approx(2 * LN2)


def test_bce_matches_torch_on_moderate_densities_and_excludes_invalid_points():
    sigma = torch.tensor([[0.05, 0.3, 0.5, 0.8, 2.0, 4.0]], dtype=torch.float64)
    labels = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    reference = F.binary_cross_entropy(occupancy_probability(sigma), labels)
    assert occupancy_bce(sigma, labels).item() == pytest.approx(reference.item(), rel=1e-10)
    valid = torch.tensor([[True, True, False, True, False, True]])
    per_point = F.binary_cross_entropy(occupancy_probability(sigma), labels, reduction="none")
    assert occupancy_bce(sigma, labels, valid).item() == pytest.approx(per_point[valid].mean().item(), rel=1e-10)
    assert occupancy_bce(sigma, labels, torch.zeros_like(valid)).item() == 0.0


def test_gradients_are_finite_at_zero_density_and_push_the_right_way():
    sigma = torch.tensor([[0.0, 1e-9, 0.3, 0.3]], requires_grad=True)
    labels = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    occupancy_bce(sigma, labels).backward()
    g = sigma.grad[0]
    assert torch.isfinite(g).all()
    assert g[0] > 0 and g[1] < 0 and g[2] < 0 and g[3] > 0  # free: lower the density; occupied: raise it
    log_p, log_q = occupancy_log_probabilities(torch.tensor([0.0, 0.5]))
    assert torch.isfinite(log_p).all() and log_q.tolist() == pytest.approx([0.0, -LN2])


def test_accuracy_uses_the_strict_evaluation_threshold():
    sigma = torch.tensor([[0.5, 0.51, 0.2, 3.0]])
    labels = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    assert occupancy_accuracy(sigma, labels).item() == pytest.approx(0.75)
    assert occupancy_accuracy(sigma, labels, torch.tensor([[True, True, False, True]])).item() == 1.0

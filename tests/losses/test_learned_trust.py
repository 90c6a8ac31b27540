"""The learned selective-distillation mask (bts/losses/learned_trust.py, kd.mask=learned): its initial value, the
mixture render, the direction of its training signal on hand-built rays, its guards, and the KDBTS step."""

from __future__ import annotations

import pytest
import torch

from bts.checkpoints.format import save_checkpoint
from bts.inference import load_model
from bts.losses import LossWeights
from bts.losses.learned_trust import (SUPPORT_MIN, TRUST_INIT, TrustHead, learned_trust_terms, mixture_weights,
                                      trust_features)
from bts.models import build_model
from bts.rendering.compositing import composite
from bts.rendering.renderer import RendererConfig
from bts.training.config import TrainConfig
from bts.training.objective import ObjectiveConfig, training_step
from tests.losses.rays import _two_surface_rays
from tests.training.helpers import debug_config


def test_the_head_starts_at_do_not_trust_everywhere():
    torch.manual_seed(0)
    head = TrustHead(token_dim=5)
    m = head(torch.randn(2, 100, 4 + 5) * 3)
    assert m.shape == (2, 100)
    assert torch.allclose(m, torch.full_like(m, TRUST_INIT), atol=0.01)


def test_features_are_detached_and_pool_only_the_other_views_that_hold_the_point():
    tokens = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 3, 2, 4).requires_grad_()  # B V N D
    invalid = torch.tensor([[[False, False], [False, True], [True, True]]])  # point 1 only in view 0
    raw = torch.zeros(1, 2, requires_grad=True)
    f = trust_features(raw, raw, tokens, invalid)
    assert f.shape == (1, 2, 8) and not f.requires_grad
    assert f[0, :, 3].tolist() == [0.5, 0.0]  # share of the 2 other views whose frustum holds the point
    assert f[0, 0, 4:].tolist() == tokens[0, 1, 0].tolist()  # view 1's token alone
    assert f[0, 1, 4:].tolist() == [0.0] * 4  # no other view: nothing pooled


def test_the_mixture_renders_the_teacher_at_trust_1_and_the_student_at_trust_0():
    torch.manual_seed(0)
    t, s = torch.rand(1, 3, 5) * 2, torch.rand(1, 3, 5) * 2
    d = torch.linspace(3, 20, 5).expand(1, 3, 5)
    for m, field in ((1.0, t), (0.0, s)):
        w, _ = mixture_weights(t, s, torch.full((1, 3, 5), m), d)
        assert torch.allclose(w, composite(field, d).weights, atol=1e-6)


def _trust(value: float, shape=(1, 4, 2)) -> torch.Tensor:
    return torch.full(shape, value, requires_grad=True)


def test_the_mixture_loss_raises_trust_where_the_teacher_reconstructs_the_held_out_frame_better():
    target, colours, distances, near, far, invalid = _two_surface_rays()
    inside = torch.ones(1, 4, 2, dtype=torch.bool)
    for teacher, student, sign in ((near, far, -1.0), (far, near, 1.0)):
        m = _trust(0.5)
        out = learned_trust_terms(teacher, student, m, inside, distances, colours, invalid, target, [True, True],
                                  rho=0.5)
        out.loss.backward()
        # Only the first sample changes the render (the last one's opacity is 1 for both): its gradient says
        # "more teacher" when the teacher is right and "less" when it is wrong.
        assert (m.grad[..., 0] * sign > 0).all(), m.grad
    # At full trust in the right teacher the held-out frames are reconstructed exactly.
    exact = learned_trust_terms(near, far, _trust(1.0), inside, distances, colours, invalid, target, [True, True],
                                rho=1.0)
    assert float(exact.mixture) == pytest.approx(0.0, abs=1e-6)


def test_the_loss_is_the_mixture_error_plus_the_coverage_prior_over_supported_samples():
    target, colours, distances, near, far, invalid = _two_surface_rays()
    inside = torch.ones(1, 4, 2, dtype=torch.bool)
    m = _trust(0.0)
    with torch.no_grad():
        m[..., 0] = 1.0  # full trust at the teacher's surface: the ray stops there, sample 1 is unseen
    out = learned_trust_terms(near, far, m, inside, distances, colours, invalid, target, [True, True], rho=0.2)
    # Sample 1 lies behind the mixture's surface (transmittance < SUPPORT_MIN): no weight for the student, and it
    # does not count in the prior's mean, which is 1 over the supported first samples.
    assert SUPPORT_MIN > 0 and out.select[..., 1].abs().max() == 0 and out.select[..., 0].tolist() == [[1.0] * 4]
    assert float(out.mean_trust) == pytest.approx(1.0)
    assert float(out.loss.detach()) == pytest.approx(float(out.mixture) + (1.0 - 0.2) ** 2, abs=1e-6)
    # Nothing held out: no photometric evidence, only the prior speaks.
    blind = learned_trust_terms(near, far, m, inside, distances, colours, invalid, target, [False, False], rho=0.2)
    assert float(blind.mixture) == 0.0 and float(blind.loss.detach()) == pytest.approx(0.64, abs=1e-6)


def test_the_learned_mask_trains_only_its_head_on_its_own_term_and_weights_the_student(synthetic_root, kd_batch,
                                                                                      tmp_path):
    cfg = debug_config(synthetic_root, "kdbts", overrides=["kd.mask=learned"])
    train_cfg = TrainConfig.from_dict(cfg)
    assert train_cfg.kd.mask == "learned" and train_cfg.loss.weights.trust == 1.0
    objective = ObjectiveConfig(rays_per_element=128, weights=LossWeights(distillation=1.0))
    renderer = RendererConfig(num_samples=16, chunk_points=1000)
    torch.manual_seed(0)
    model = build_model(cfg["model"], distillation=train_cfg.kd.model_recipe()).train()
    assert model.trust_head is not None

    def step():
        return training_step(model, kd_batch, objective, renderer, generator=torch.Generator().manual_seed(0))

    out = step()
    assert {"trust", "distillation"} <= set(out.loss.terms)
    coverage = float(out.metrics["kd_coverage"])
    assert 0.0 < coverage <= TRUST_INIT + 0.01  # soft coverage: the initial trust on the supported samples
    assert 0.0 <= float(out.metrics["kd_trust_target"]) <= 1.0
    # The trust term moves the head and nothing else; the distillation term moves the student and not the head.
    model.zero_grad()
    out = step()
    out.loss.total.backward()
    assert model.trust_head.mlp.lin_out.weight.grad.abs().sum() > 0
    assert model.student_head.lin_in.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    trust_only = ObjectiveConfig(rays_per_element=128, weights=LossWeights(photometric=0.0, smoothness=0.0,
                                                                           distillation=0.0, trust=1.0))
    training_step(model, kd_batch, trust_only, renderer,
                  generator=torch.Generator().manual_seed(0)).loss.total.backward()
    assert model.trust_head.mlp.lin_out.weight.grad.abs().sum() > 0
    assert model.student_head.lin_in.weight.grad is None or model.student_head.lin_in.weight.grad.abs().sum() == 0
    model.zero_grad(set_to_none=True)
    kd_only = ObjectiveConfig(rays_per_element=128, weights=LossWeights(photometric=0.0, smoothness=0.0,
                                                                        distillation=1.0, trust=0.0))
    training_step(model, kd_batch, kd_only, renderer,
                  generator=torch.Generator().manual_seed(0)).loss.total.backward()
    assert model.student_head.lin_in.weight.grad.abs().sum() > 0
    head_grad = model.trust_head.mlp.lin_out.weight.grad
    assert head_grad is None or head_grad.abs().sum() == 0
    assert all(p.grad is None for p in model.field.parameters())  # the frozen teacher gets nothing

    # A checkpoint of such a run holds the head; rebuilding it for evaluation takes it back (the student renders).
    path = save_checkpoint(tmp_path / "kdbts.pt", model_kind="kdbts", config=cfg["model"], model=model.state_dict())
    loaded = load_model(path)
    assert torch.equal(loaded.model.trust_head.mlp.lin_out.bias, model.trust_head.mlp.lin_out.bias)

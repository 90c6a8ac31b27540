"""Selective distillation masks (bts/losses/trust.py, kd.mask): on hand-built two-view scenes, and in the KDBTS step."""

from __future__ import annotations

import pytest
import torch

from bts.fields import EncodedViews
from bts.fields.tokens import project_to_views
from bts.losses import LossWeights
from bts.losses.photometric import photometric_error
from bts.losses.trust import (agreement_mask, check_mask, depth_at, held_out_frames, photometric_mask,
                              single_view_decodes, trust_mask, visibility_mask, visible_in_views)
from bts.models import build_model
from bts.losses import trust as trust_module
from bts.rendering.renderer import RendererConfig
from bts.training.config import ConfigError, TrainConfig
from bts.training.objective import ObjectiveConfig, training_step
from tests.losses.rays import PATCH, _two_surface_rays
from tests.training.helpers import debug_config

# Two cameras looking down +z: view 0 at the origin, view 1 a frame further along the drive (z = 12 m).
INTRINSICS = torch.tensor([[0.5, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


def _views(z_offsets=(0.0, 12.0)) -> EncodedViews:
    cam_to_world = torch.eye(4).repeat(len(z_offsets), 1, 1)
    cam_to_world[:, 2, 3] = torch.tensor(z_offsets)
    return EncodedViews.create(torch.zeros(1, len(z_offsets), 1, 8, 8), INTRINSICS.expand(1, len(z_offsets), 3, 3),
                               cam_to_world[None])


def _visible(points, depth_0: float, depth_1: float) -> torch.Tensor:
    """Visibility of ``points`` [N, 3] when each view's depth image is one constant (a wall across the view)."""
    encoded = _views()
    uv, z, invalid = project_to_views(points[None], encoded)
    depth = torch.tensor([depth_0, depth_1]).reshape(1, 2, 1, 1).expand(1, 2, 4, 4)
    return visible_in_views(z, uv, invalid, depth)[0]


def test_visibility_of_a_point_behind_the_input_view_s_wall():
    behind = torch.tensor([[0.0, 0.0, 15.0]])  # 15 m ahead: behind view 0's wall at 10 m, 3 m in front of view 1
    vis = _visible(behind, depth_0=10.0, depth_1=50.0)
    assert vis.tolist() == [[False], [True]]  # hidden from the input view, seen by the later frame
    assert visibility_mask(vis[None]).tolist() == [[True]]
    hidden = _visible(behind, depth_0=10.0, depth_1=2.0)  # the later frame has a wall 2 m ahead too
    assert hidden.tolist() == [[False], [False]] and visibility_mask(hidden[None]).tolist() == [[False]]
    near = torch.tensor([[0.0, 0.0, 5.0]])  # in front of both walls, but behind camera 1 (z = 12 m)
    vis = _visible(near, depth_0=10.0, depth_1=50.0)
    assert vis.tolist() == [[True], [False]]  # outside view 1's frustum: only the input view sees it
    assert visibility_mask(vis[None]).tolist() == [[False]]  # no view but the input's: nothing new to distil
    on_wall = torch.tensor([[0.0, 0.0, 10.2]])  # the surface itself, within the relative tolerance
    assert _visible(on_wall, depth_0=10.0, depth_1=50.0)[0].item()


def test_depth_lookup_takes_the_nearest_pixel_at_a_depth_edge():
    depth = torch.tensor([[5.0, 5.0, 30.0, 30.0]]).reshape(1, 1, 1, 4)
    # Pixel centres of a 4-wide image at u = -0.75, -0.25, 0.25, 0.75; 0.05 left of the edge is still the near pixel.
    uv = torch.tensor([[-0.75, 0.0], [-0.05, 0.0], [0.05, 0.0], [0.75, 0.0]]).reshape(1, 1, 4, 2)
    assert depth_at(depth, uv)[0, 0].tolist() == [5.0, 5.0, 30.0, 30.0]


def test_agreement_needs_two_seeing_views_that_agree():
    # Points: seen by one view; by two agreeing (both occupied); by two disagreeing; by two agreeing (both empty),
    # where a third, non-seeing view disagrees (it has no vote).
    visible = torch.tensor([[[True, True, True, True],
                             [False, True, True, True],
                             [False, False, False, False]]])
    sigma = torch.tensor([[[2.0, 2.0, 2.0, 0.1],
                           [0.0, 3.0, 0.1, 0.2],
                           [9.0, 0.0, 0.0, 9.0]]])
    assert agreement_mask(sigma, visible).tolist() == [[False, True, False, True]]
    assert visibility_mask(visible).tolist() == [[False, True, True, True]]
    with pytest.raises(ValueError, match=r"kd.mask must be one of \['none', 'visibility', 'agreement', 'photo"):
        check_mask("oracle")


def test_single_view_decodes_see_one_view_each():
    def head(tokens, invalid):  # the mean of the first channel over the valid views
        valid = (~invalid).float()
        return (tokens[..., 0] * valid).sum(1) / valid.sum(1).clamp_min(1)

    tokens = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1).expand(1, 3, 5, 2).clone()
    invalid = torch.zeros(1, 3, 5, dtype=torch.bool)
    decodes = single_view_decodes(head, tokens, invalid)
    assert torch.allclose(decodes, torch.nn.functional.softplus(tokens[..., 0]))


@pytest.mark.parametrize("mask", ["visibility", "agreement"])
def test_a_mask_keeps_the_distillation_term_on_part_of_the_points(synthetic_root, kd_batch, mask, monkeypatch):
    cfg = debug_config(synthetic_root, "kdbts", overrides=[f"kd.mask={mask}"])
    assert TrainConfig.from_dict(cfg).kd.mask == mask
    objective = ObjectiveConfig(rays_per_element=128, weights=LossWeights(distillation=1.0))
    renders = []
    real = trust_module.render_depth
    monkeypatch.setattr(trust_module, "render_depth", lambda *a, **k: renders.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = build_model(cfg["model"], distillation=TrainConfig.from_dict(cfg).kd.model_recipe()).train()
    assert model.kd_mask == mask
    renderer = RendererConfig(num_samples=16, chunk_points=1000)  # several density calls in one step
    out = training_step(model, kd_batch, objective, renderer, generator=torch.Generator().manual_seed(0))
    coverage = float(out.metrics["kd_coverage"])
    assert 0.0 < coverage < 1.0, coverage
    views = out.encoded.num_views
    assert len(renders) == views  # one depth image per encoded view, rendered once per step, not per chunk
    out.loss.total.backward()
    assert model.student_head.lin_in.weight.grad.abs().sum() > 0
    model.configure("frozen", student_photometric=False, mask="none")
    plain = training_step(model, kd_batch, objective, renderer, generator=torch.Generator().manual_seed(0))
    assert "kd_coverage" not in plain.metrics
    assert plain.loss.terms["distillation"] != out.loss.terms["distillation"]


def test_an_unknown_mask_is_refused_naming_the_key(synthetic_root):
    with pytest.raises(ConfigError, match="kd.mask must be one of"):
        TrainConfig.from_dict(debug_config(synthetic_root, "kdbts", overrides=["kd.mask=oracle"]))


def test_held_out_frames_follow_the_render_order_of_the_colour_frames():
    # 4 pinhole views (0-3) and native fisheyes (4-7); the step renders the pinhole colour frames first.
    assert held_out_frames([1, 2, 5, 6], [0, 1, 3], num_pinhole=4) == [False, True, True, True]
    assert held_out_frames([6, 1], [0, 1], num_pinhole=4) == [False, True]  # rendered as [1, 6]
    assert held_out_frames([0, 3], [0, 1, 2, 3], num_pinhole=4) == [False, False]


def test_photometric_mask_keeps_the_rays_the_teacher_reconstructs_better():
    target, colours, distances, near, far, invalid = _two_surface_rays()
    both = [True, True]
    assert photometric_mask(near, far, distances, colours, invalid, target, both).tolist() == [[True] * 4]
    assert photometric_mask(far, near, distances, colours, invalid, target, both).tolist() == [[False] * 4]
    # Equal fields: the teacher does not beat the student (a strict comparison, margin 0).
    assert not photometric_mask(near, near, distances, colours, invalid, target, both).any()
    # The teacher's error is 0 (its render is the target); the student's render is the complement 1 - PATCH, so
    # a ray is kept exactly where the student's per-pixel error exceeds the margin.
    e_student = photometric_error((1.0 - PATCH).expand(3, 2, 2), PATCH.expand(3, 2, 2)).reshape(4)
    margin = float(e_student.median())
    kept = photometric_mask(near, far, distances, colours, invalid, target, both, margin=margin)
    assert kept[0].tolist() == (e_student > margin).tolist() and 0 < int(kept.sum()) < 4


def test_photometric_mask_judges_the_teacher_only_on_frames_it_did_not_encode():
    target, colours, distances, near, far, invalid = _two_surface_rays()
    # Neither colour frame is held out: no evidence, nothing kept.
    assert not photometric_mask(near, far, distances, colours, invalid, target, [False, False]).any()
    # The held-out frame does not see where the teacher's rays end (the weight-guided rule): nothing kept either.
    blind = invalid.clone()
    blind[:, 1, :, 0] = True
    assert not photometric_mask(near, far, distances, colours, blind, target, [False, True]).any()
    # ... but a frame that sees it decides, even if the student's own rays end outside every frame.
    assert photometric_mask(near, far, distances, colours, blind, target, [True, True]).all()
    with pytest.raises(ValueError, match="held_out names 3 colour frames, the colours have 2"):
        photometric_mask(near, far, distances, colours, invalid, target, [True, True, True])


def test_the_photometric_mask_has_no_value_at_a_point():
    with pytest.raises(ValueError, match="decided per loss ray"):
        trust_mask("photometric", None, torch.zeros(1, 1, 3), _views(), torch.ones(1, 2, 4, 4))


def test_the_photometric_mask_selects_loss_rays_in_the_kdbts_step(synthetic_root, kd_batch, monkeypatch):
    cfg = debug_config(synthetic_root, "kdbts", overrides=["kd.mask=photometric"])
    assert TrainConfig.from_dict(cfg).kd.mask == "photometric"
    objective = ObjectiveConfig(rays_per_element=128, weights=LossWeights(distillation=1.0))
    renderer = RendererConfig(num_samples=16, chunk_points=1000)  # several density calls in one step
    torch.manual_seed(0)
    model = build_model(cfg["model"], distillation=TrainConfig.from_dict(cfg).kd.model_recipe()).train()
    depth_renders = []
    monkeypatch.setattr(trust_module, "render_depth", lambda *a, **k: depth_renders.append(1))

    def step():
        return training_step(model, kd_batch, objective, renderer, generator=torch.Generator().manual_seed(0))

    out = step()
    coverage = float(out.metrics["kd_coverage"])
    assert 0.0 < coverage < 1.0, coverage  # an untrained teacher and student: each wins some rays
    assert not depth_renders  # the photometric rule needs no depth images
    out.loss.total.backward()
    assert model.student_head.lin_in.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.field.parameters())  # the frozen teacher gets nothing

    # The plumbing: a rule that keeps every ray gives the unmasked term; one that keeps none gives 0 and coverage 0.
    import bts.training.objective as objective_module

    seen = {}

    def every_ray(teacher, student, distances, colours, invalid, target, held_out, **kw):
        seen["held_out"] = held_out
        # Each field's density as rendered: softplus of its raw output, [B, R, K].
        assert teacher.shape == student.shape == distances.shape and (teacher >= 0).all()
        return torch.ones(distances.shape[:2], dtype=torch.bool)

    monkeypatch.setattr(objective_module, "photometric_mask", every_ray)
    kept_all = step()
    assert float(kept_all.metrics["kd_coverage"]) == 1.0
    assert len(seen["held_out"]) == 4 and any(seen["held_out"])  # the fisheye colour frames are never encoded
    monkeypatch.setattr(objective_module, "photometric_mask", lambda *a, **k: torch.zeros(a[2].shape[:2], dtype=bool))
    kept_none = step()
    assert float(kept_none.metrics["kd_coverage"]) == 0.0 and float(kept_none.loss.terms["distillation"]) == 0.0
    model.configure("frozen", student_photometric=False, mask="none")
    plain = step()
    assert float(kept_all.loss.terms["distillation"]) == pytest.approx(float(plain.loss.terms["distillation"]),
                                                                        rel=1e-6)

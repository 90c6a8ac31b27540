"""Selective distillation masks (bts/losses/trust.py, kd.mask): on hand-built two-view scenes, and in the KDBTS step."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import default_collate

from bts.fields import EncodedViews
from bts.fields.tokens import project_to_views
from bts.losses import LossWeights
from bts.losses.trust import (agreement_mask, check_mask, depth_at, single_view_decodes, visibility_mask,
                              visible_in_views)
from bts.models import build_model
from bts.losses import trust as trust_module
from bts.rendering.renderer import RendererConfig
from bts.training.config import ConfigError, TrainConfig
from bts.training.objective import ObjectiveConfig, training_step
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
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
    with pytest.raises(ValueError, match=r"kd.mask must be one of \['none', 'visibility', 'agreement'\]"):
        check_mask("oracle")


def test_single_view_decodes_see_one_view_each():
    def head(tokens, invalid):  # the mean of the first channel over the valid views
        valid = (~invalid).float()
        return (tokens[..., 0] * valid).sum(1) / valid.sum(1).clamp_min(1)

    tokens = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1).expand(1, 3, 5, 2).clone()
    invalid = torch.zeros(1, 3, 5, dtype=torch.bool)
    decodes = single_view_decodes(head, tokens, invalid)
    assert torch.allclose(decodes, torch.nn.functional.softplus(tokens[..., 0]))


@pytest.fixture(scope="module")
def kd_batch(synthetic_root):
    ds = Kitti360Dataset(synthetic_root, synthetic_root / "splits/train_files.txt",
                         Kitti360Config(image_size=(64, 240)))
    return default_collate([ds[0]])


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

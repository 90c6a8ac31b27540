"""The occupancy evaluation renders only the pixels its visibility test reads (``depth_render=lookup``): the same
depth values and jitter draws as the full image, and the same metrics."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from evaluation.selection import seeded
from bts.checkpoints.format import save_checkpoint
from bts.models.factory import build_model
from bts.rendering.renderer import RendererConfig, render_depth
from evaluation.protocols import DepthMap, lookup_pixels, visible_from_depth
from tests.evaluation.eval_fixtures import run_occupancy_entry as _run_entry
from tests.evaluation.eval_fixtures import TINY_MODEL

H, W = 12, 40
INTRINSICS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])  # normalised
CONFIG = RendererConfig(near=3.0, far=80.0, num_samples=16)


def bumpy(points: torch.Tensor):
    """A surface whose depth varies across the image (so that every pixel's value is its own)."""
    x, y, z = points.unbind(-1)
    surface = 8.0 + 3.0 * torch.sin(x) + 2.0 * torch.cos(3 * y)
    sigma = torch.where(z > surface, torch.full_like(z, 50.0), torch.zeros_like(z))
    return sigma, torch.zeros_like(z, dtype=torch.bool)


@pytest.mark.parametrize("ray_positions", ["centres", "align_corners"])
@pytest.mark.parametrize("jitter", [False, True])
def test_a_render_of_some_pixels_equals_the_full_render_there(ray_positions, jitter):
    pixels = torch.tensor([0, 5, 39, 40, 200, 201, 479, 5])  # unsorted, repeated, across chunk boundaries
    renders = []
    for chosen in (None, pixels):
        with seeded(3, torch.device("cpu")):
            renders.append(render_depth(bumpy, INTRINSICS[None], torch.eye(4)[None], H, W, CONFIG, jitter=jitter,
                                        rays_per_chunk=64, ray_positions=ray_positions, pixels=chosen)[0].reshape(-1))
    full, some = renders
    asked = torch.unique(pixels)
    assert torch.allclose(some[asked], full[asked], atol=1e-5, rtol=0)
    others = torch.ones(H * W, dtype=torch.bool)
    others[asked] = False
    assert torch.isnan(some[others]).all() and not torch.isnan(full).any()
    if jitter:  # a different seed gives other samples: the match above is the draws', not a coincidence
        with seeded(4, torch.device("cpu")):
            other = render_depth(bumpy, INTRINSICS[None], torch.eye(4)[None], H, W, CONFIG, jitter=True,
                                 rays_per_chunk=64, ray_positions=ray_positions, pixels=pixels)[0].reshape(-1)
        assert not torch.allclose(other[asked], full[asked], atol=1e-5, rtol=0)


def test_out_of_image_pixels_are_refused():
    with pytest.raises(ValueError, match="pixels must index the 12x40 image"):
        render_depth(bumpy, INTRINSICS[None], torch.eye(4)[None], H, W, CONFIG, pixels=torch.tensor([480]))


@pytest.mark.parametrize("ray_positions", ["centres", "align_corners"])
def test_the_lookup_pixels_are_what_the_visibility_test_reads(ray_positions):
    torch.manual_seed(0)
    points = torch.rand(500, 3) * torch.tensor([16.0, 6.0, 16.0]) - torch.tensor([8.0, 3.0, -4.0])
    full = render_depth(bumpy, INTRINSICS[None], torch.eye(4)[None], H, W, CONFIG, ray_positions=ray_positions)[0]
    pixels = lookup_pixels(points, INTRINSICS, H, W, ray_positions)
    assert len(pixels) < H * W  # the points do not read every pixel
    sparse = torch.full((H * W,), float("nan"))
    sparse[pixels] = full.reshape(-1)[pixels]
    both = [visible_from_depth(points, DepthMap(d.reshape(H, W), ray_positions), INTRINSICS) for d in (full, sparse)]
    assert torch.equal(both[0], both[1]) and both[0].any() and (~both[0]).any()
    # Read for points it was not rendered for, a sparse depth map says so instead of calling them hidden.
    with pytest.raises(ValueError, match="no value at .* of the points' pixels"):
        visible_from_depth(points[:1] * torch.tensor([-1.0, 1.0, 1.0]) + torch.tensor([0.3, 0.0, 0.0]),
                           DepthMap(torch.full((H, W), float("nan")), ray_positions), INTRINSICS)


def test_the_evaluation_gives_the_same_numbers_with_the_lookup_and_the_full_depth(synthetic_root, tmp_path):
    torch.manual_seed(0)
    tiny_checkpoint = save_checkpoint(tmp_path / "bts.pt", model_kind="bts", config=TINY_MODEL,
                                      model=build_model(TINY_MODEL, pretrained=False).state_dict())
    results = {}
    for mode in ("full", "lookup"):
        out = tmp_path / mode
        proc = _run_entry([f"checkpoint={tiny_checkpoint}", "data=synthetic", f"data.root={synthetic_root}",
                           "data.image_size=[48,176]", "max_frames=2", "protocol=exact", f"depth_render={mode}",
                           f"output_dir={out}"], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(out / "per_frame.csv", newline="") as f:
            results[mode] = [{k: v for k, v in row.items() if k != "gt_cached"} for row in csv.DictReader(f)]
        assert json.loads((out / "results.json").read_text())["frames"] == 2
    # Every per-frame number, the bts ones (which the model's depth decides) included, is the same.
    assert "bts.ie_acc" in results["full"][0] and len(results["full"]) == 2
    assert results["full"] == results["lookup"]
    bad = _run_entry([f"checkpoint={tiny_checkpoint}", "data=synthetic", f"data.root={synthetic_root}",
                      "max_frames=1", "depth_render=some", f"output_dir={tmp_path / 'bad'}"], tmp_path)
    assert bad.returncode != 0 and "depth_render must be one of ['lookup', 'full']" in bad.stderr

"""Material labels of the synthetic city (datasets/synthetic/materials.py): the encoder pretraining's 2D labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datasets.synthetic import SyntheticScene
from datasets.synthetic.materials import NUM_CLASSES, SKY, material_image, pixel_rays, surface_materials
from datasets.synthetic.scene import Ground, Lighting, Material, SceneDescription, make_primitive_set

# A camera 1.5 m above the road looking along +x (camera x right = world -y, camera y down = world -z).
CAM_TO_WORLD = np.array([[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 1.5], [0, 0, 0, 1.0]])
K = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees wide, centred
H, W = 33, 33


@pytest.fixture(scope="module")
def scene() -> SyntheticScene:
    """Road (half width 50 m) at z = 0; a car body x in [10, 12], y in [-1, 1], z in [0, 3]; a hedge to the left
    (world +y, the image's left) at y in [4, 6]."""
    style = [0.0, 0.0, 0.0, 0.0]
    boxes = [([10, -1, 0], [12, 1, 3], Material.CAR_BODY), ([5, 4, 0], [30, 6, 1], Material.HEDGE)]
    description = SceneDescription(
        Ground(road_half_width=50.0, kerb_height=0.0, sidewalk_width=1.0), Lighting((0.0, 0.0, 1.0), 0.3, 0.7),
        make_primitive_set("box", [([*lo, *hi], m, [0.5, 0.5, 0.5], style) for lo, hi, m in boxes]),
        make_primitive_set("cylinder", []), make_primitive_set("sphere", []))
    return SyntheticScene.from_description(description)


def test_pixel_rays_go_through_pixel_centres():
    rays = pixel_rays(K, 2, 4).reshape(2, 4, 3)
    assert torch.allclose(rays[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64))
    assert torch.allclose(rays[:, 0, 1], torch.tensor([-0.5, 0.5], dtype=torch.float64))
    assert (rays[..., 2] == 1).all()


def test_material_image_labels_each_pixel_by_the_first_surface(scene):
    labels = material_image(scene, K, CAM_TO_WORLD, H, W)
    assert labels.shape == (H, W) and labels.dtype == torch.long
    assert labels.min() >= 0 and labels.max() < NUM_CLASSES
    centre = H // 2
    assert labels[centre, centre] == Material.CAR_BODY     # straight ahead: the box's face at 10 m
    assert labels[0, centre] == SKY                        # 45 degrees up, above the 3 m box: nothing
    assert labels[-1, centre] == Material.ROAD             # 45 degrees down: the road 1.5 m ahead
    # The hedge (world +y) appears on the image's left below the horizon, never on its right.
    hedge = labels == Material.HEDGE
    assert hedge[:, : W // 2].any() and not hedge[:, W // 2 + 1:].any()
    # By hand: the box spans |y| <= 1 at x = 10, i.e. |u| <= 0.1 around the centre column (0.061 per pixel).
    row = labels[centre]
    columns = torch.nonzero(row == Material.CAR_BODY).flatten()
    u = (2.0 * columns + 1.0) / W - 1.0
    assert u.abs().max() <= 0.1 + 1e-9 and len(columns) == 3  # u = 0, +-0.061 (the next, +-0.121, miss)


def test_surface_materials_cover_primitives_then_the_ground(scene):
    table = surface_materials(scene)
    assert table.tolist()[:2] == [Material.CAR_BODY, Material.HEDGE]
    assert table.tolist()[2:] == [Material.ROAD, Material.SIDEWALK, Material.KERB]


def test_material_image_rejects_a_pose_that_is_not_4x4(scene):
    with pytest.raises(ValueError, match="4x4"):
        material_image(scene, K, CAM_TO_WORLD[:3], H, W)


def test_material_image_of_the_tiny_city_matches_its_exact_depth(synthetic_root):
    """On a generated tree: sky labels exactly where the exact depth is infinite, at the loader's resolution."""
    from datasets.kitti_360 import Kitti360Config, Kitti360Dataset

    dataset = Kitti360Dataset(synthetic_root, synthetic_root / "splits" / "train_files.txt",
                              Kitti360Config(image_size=(48, 176)))
    sequence, row, _ = dataset.datapoints[0]
    scene = SyntheticScene(synthetic_root, sequence)
    image, pose = dataset.perspective_view(sequence, "image_00", row)
    assert image.shape == (3, 48, 176) and 0 <= float(image.min()) and float(image.max()) <= 1
    labels = material_image(scene, dataset.intrinsics, pose, 48, 176)
    depth = scene.depth("image_00", int(dataset.poses[sequence].frame_ids[row]))
    h, w = depth.shape
    rows = ((torch.arange(48) + 0.5) * h / 48).long()
    cols = ((torch.arange(176) + 0.5) * w / 176).long()
    sky_by_depth = ~torch.isfinite(depth[rows][:, cols])
    agree = float(((labels == SKY) == sky_by_depth).float().mean())
    assert agree > 0.99, agree
    assert (labels == Material.ROAD).any() and not math.isnan(agree)
    with pytest.raises(ValueError, match="image_02"):
        dataset.perspective_view(sequence, "image_02", row)

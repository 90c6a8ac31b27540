"""Exact ground truth of the synthetic city: depth files, occupancy, lidar scans, and the ray caster."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bts.geometry import transform_points
from datasets.kitti_360.errors import MissingFileError
from datasets.kitti_360.layout import read_velodyne
from datasets.synthetic import load_scene
from datasets.synthetic.occupancy import occupied_reference
from datasets.synthetic.raycast import RayCaster
from datasets.synthetic.scene import Material, SceneDescription
from tests.synthetic.helpers import SEQUENCE, Tree, surface_points

FRAME = 4


@pytest.fixture(scope="module")
def tree(synthetic_root):
    return Tree(synthetic_root, SEQUENCE)


def test_depth_shape_dtype_and_sky(tree):
    w, h = tree.calib.rect_size["image_00"]
    for cam in ("image_00", "image_01"):
        depth = tree.scene.depth(cam, FRAME)
        assert depth.shape == (h, w) and depth.dtype == torch.float32
        assert torch.isinf(depth).any(), "the sky has no depth"
        finite = depth[torch.isfinite(depth)]
        assert finite.numel() > 0.5 * h * w and (finite > 0).all()
    with pytest.raises(ValueError):
        tree.scene.depth("image_02", FRAME)
    with pytest.raises(MissingFileError):
        tree.scene.depth("image_00", 10_000)


def test_depth_matches_occupancy(tree):
    """Just before a depth point the space is free, just behind it (inside the solid) it is occupied."""
    points, _, _ = surface_points(tree, "image_00", FRAME)
    origin = tree.cam_to_world("image_00", FRAME)[:3, 3]
    ray = (points - origin) / (points - origin).norm(dim=-1, keepdim=True)
    assert not tree.scene.occupied(points - 0.02 * ray).any()
    behind = tree.scene.occupied(points + 0.02 * ray)
    assert behind.float().mean() > 0.99, f"only {behind.float().mean():.3f} of the points behind surfaces occupied"


def test_occupied_inside_objects_and_free_in_the_air(tree):
    scene: SceneDescription = tree.scene.description
    boxes = scene.boxes
    centres = (boxes.params[:, :3] + boxes.params[:, 3:]) / 2
    building = centres[boxes.material == Material.FACADE][0]
    car = centres[boxes.material == Material.CAR_BODY][0]
    x = float(tree.poses.pose_to_world[0, 0, 3])
    points = torch.from_numpy(np.array([building, car, [x, -1.75, -0.5], [x, 8.0, 0.1]]))
    assert tree.scene.occupied(points).all()
    air = torch.tensor([[x, -1.75, 1.0], [x + 3.0, 0.0, 2.5], [x + 10.0, 1.75, 0.3], [x, 8.0, 0.2]])
    assert not tree.scene.occupied(air).any()


def test_occupancy_fast_path_matches_reference(tree):
    g = torch.Generator().manual_seed(0)
    x0 = float(tree.poses.pose_to_world[0, 0, 3])
    points = torch.rand(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([60.0, 60.0, 12.0])
    points += torch.tensor([x0 - 10.0, -30.0, -1.0])
    fast = tree.scene.occupied(points).numpy()
    assert 0.05 < fast.mean() < 0.95
    np.testing.assert_array_equal(fast, occupied_reference(tree.scene.description, points.numpy()))


def test_ray_caster_fast_path_matches_reference(tree):
    caster = RayCaster(tree.scene.description)
    origin = tree.cam_to_world("image_00", FRAME)[:3, 3].numpy()
    g = torch.Generator().manual_seed(1)
    dirs = torch.nn.functional.normalize(torch.randn(64 * 64, 3, generator=g), dim=-1)
    fast = caster.cast(origin, dirs.reshape(64, 64, 3)).distance.reshape(-1)
    reference = caster.cast_reference(origin, dirs)
    assert torch.isfinite(reference).float().mean() > 0.3
    assert torch.equal(fast, reference)


def test_scene_json_round_trip(tree):
    scene = tree.scene.description
    again = SceneDescription.from_json(scene.to_json())
    for a, b in zip(scene.sets(), again.sets()):
        np.testing.assert_array_equal(a.params, b.params)
        np.testing.assert_array_equal(a.material, b.material)
    assert again.ground == scene.ground and again.lighting == scene.lighting


def test_lidar_agrees_with_exact_depth(tree):
    """Lidar points, taken to image_00 through velodyne -> pose -> rectified camera, land on the exact depth."""
    scan = read_velodyne(tree.root / "data_3d_raw" / SEQUENCE / "velodyne_points" / "data" / f"{FRAME:010d}.bin")
    assert scan.shape[1] == 4 and len(scan) > 1000
    assert np.linalg.norm(scan[:, :3], axis=1).max() <= 100.0 + 1e-3
    velo_to_cam = np.linalg.inv(tree.calib.rect_cam_to_pose("image_00")) @ tree.calib.velo_to_pose()
    pts = transform_points(torch.from_numpy(velo_to_cam), torch.from_numpy(scan[:, :3]).double())
    model, w, h = tree.camera("image_00")
    proj = model.project(pts)
    px = ((proj.uv + 1) * torch.tensor([w, h]) / 2 - 0.5).round().long()
    keep = proj.valid & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    assert keep.sum() > 200
    exact = tree.scene.depth("image_00", FRAME).double()[px[keep, 1], px[keep, 0]]
    rel = ((proj.depth[keep] - exact) / exact).abs()
    assert rel.median() < 0.01, f"median relative difference {rel.median():.4f}"
    assert (rel < 0.05).float().mean() > 0.8


def test_load_scene_of_a_missing_sequence(synthetic_root):
    with pytest.raises(MissingFileError):
        load_scene(synthetic_root, "2013_05_28_drive_0010_sync")

"""The official KITTI-360 devkit (kitti360scripts) reads the synthetic calibration and projects like our images.

kitti360scripts 1.0.0 predates PyYAML 6 and numpy 2: its YAML reader calls ``yaml.load`` without a Loader and its
perspective ``cam2image`` uses ``np.int``; the tests patch both (docs/synthetic_city.md, Requirements, item 4).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from kitti360scripts.devkits.commons import loadCalibration
from kitti360scripts.helpers.project import CameraFisheye, CameraPerspective

from bts.geometry import normalized_to_pixels, pixel_grid, transform_directions, transform_points
from datasets.synthetic.render import fisheye_rays
from tests.synthetic.helpers import SEQUENCE, Tree, surface_points

FRAME = 5


@pytest.fixture()
def devkit_compat(monkeypatch):
    load = yaml.load
    monkeypatch.setattr(yaml, "load", lambda stream, Loader=yaml.SafeLoader: load(stream, Loader=Loader))
    monkeypatch.setattr(np, "int", int, raising=False)


@pytest.fixture(scope="module")
def tree(synthetic_root):
    return Tree(synthetic_root, SEQUENCE)


def test_devkit_reads_the_calibration(tree):
    calib_dir = tree.root / "calibration"
    to_pose = loadCalibration.loadCalibrationCameraToPose(str(calib_dir / "calib_cam_to_pose.txt"))
    for cam, matrix in tree.calib.cam_to_pose.items():
        np.testing.assert_allclose(to_pose[cam], matrix, atol=1e-10)
    to_velo = loadCalibration.loadCalibrationRigid(str(calib_dir / "calib_cam_to_velo.txt"))
    np.testing.assert_allclose(to_velo, tree.calib.cam_to_velo, atol=1e-10)
    intrinsics = loadCalibration.loadPerspectiveIntrinsic(str(calib_dir / "perspective.txt"))
    for cam in ("00", "01"):
        np.testing.assert_allclose(intrinsics[f"P_rect_{cam}"][:3], tree.calib.p_rect[f"image_{cam}"], atol=1e-9)
        np.testing.assert_allclose(intrinsics[f"R_rect_{cam}"], tree.calib.r_rect[f"image_{cam}"], atol=1e-10)


@pytest.mark.parametrize("camera", ["image_02", "image_03"])
def test_devkit_fisheye_projects_surface_points_onto_their_pixels(tree, devkit_compat, camera):
    """Exact surface points seen by fisheye pixels project back onto those pixel centres (within 1e-3 px)."""
    devkit = CameraFisheye(str(tree.root), SEQUENCE, int(camera[-1]))
    calib = tree.calib.fisheye[camera]
    assert (devkit.width, devkit.height) == (calib.width, calib.height)
    rays = fisheye_rays(calib)
    model, w, h = tree.camera(camera)
    uv = pixel_grid(h, w, dtype=torch.float64).reshape(-1, 2)
    dirs, _ = model.unproject(uv)
    valid = torch.zeros(h * w, dtype=torch.bool)
    valid[rays.pixel[rays.valid]] = True
    cam_to_world = tree.cam_to_world(camera, FRAME)
    hits = tree.scene.cast(cam_to_world[:3, 3], transform_directions(cam_to_world, dirs[valid]))
    seen = torch.isfinite(hits.distance)
    points = cam_to_world[:3, 3] + transform_directions(cam_to_world, dirs[valid][seen]) * hits.distance[seen, None]
    assert len(points) > 1000
    (u, v), depth = devkit.project_vertices(points.numpy(), FRAME)
    expected = normalized_to_pixels(uv[valid][seen], w, h).numpy()
    assert np.abs(u - expected[:, 0]).max() < 1e-3 and np.abs(v - expected[:, 1]).max() < 1e-3
    # The devkit signs the distance with the camera z: negative beyond 90 degrees from the optical axis.
    np.testing.assert_allclose(np.abs(depth), hits.distance[seen].numpy(), rtol=1e-4)


@pytest.mark.parametrize("camera", ["image_02", "image_03"])
def test_devkit_fisheye_agrees_with_our_camera_model(tree, devkit_compat, camera):
    """Points seen by image_00, projected into a later fisheye frame by the devkit and by MeiFisheyeCamera."""
    points, _, _ = surface_points(tree, "image_00", 2)
    frame = 10
    devkit = CameraFisheye(str(tree.root), SEQUENCE, int(camera[-1]))
    (u, v), depth = devkit.project_vertices(points.numpy(), frame)
    model, w, h = tree.camera(camera)
    proj = model.project(transform_points(torch.linalg.inv(tree.cam_to_world(camera, frame)), points))
    ours = normalized_to_pixels(proj.uv, w, h)[proj.valid].numpy()
    assert proj.valid.sum() > 1000
    du = np.abs(u[proj.valid.numpy()] - ours[:, 0]).max()
    dv = np.abs(v[proj.valid.numpy()] - ours[:, 1]).max()
    assert max(du, dv) < 1e-3, f"devkit and MeiFisheyeCamera differ by {max(du, dv):.2e} px"


@pytest.mark.parametrize("camera", ["image_00", "image_01"])
def test_devkit_perspective_projects_depth_points_onto_their_pixels(tree, devkit_compat, camera):
    devkit = CameraPerspective(str(tree.root), SEQUENCE, int(camera[-1]))
    points, _, pixels = surface_points(tree, camera, FRAME)
    (u, v), depth = devkit.project_vertices(points.numpy(), FRAME)
    w = tree.calib.rect_size[camera][0]
    np.testing.assert_array_equal(u, (pixels % w).numpy())
    np.testing.assert_array_equal(v, (pixels // w).numpy())
    np.testing.assert_allclose(depth, tree.scene.depth(camera, FRAME).reshape(-1)[pixels].numpy(), rtol=1e-4)

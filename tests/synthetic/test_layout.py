"""The synthetic tree follows the KITTI-360 layout, file formats, rig conventions and split rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from datasets.kitti_360.calibration import read_calibration
from datasets.kitti_360.poses import read_poses
from datasets.kitti_360.splits import read_split
from datasets.synthetic import MANIFEST, PRESETS, SEQUENCE_NAMES
from datasets.synthetic.splits import FRAMES_AHEAD
from tests import SYNTHETIC_PARAMS

FRAMES = SYNTHETIC_PARAMS["frames"]
SEQUENCES = list(SEQUENCE_NAMES[: SYNTHETIC_PARAMS["sequences"]])


def test_every_frame_has_all_files(synthetic_root):
    calib = read_calibration(synthetic_root / "calibration")
    w, h = calib.rect_size["image_00"]
    for seq in SEQUENCES:
        raw = synthetic_root / "data_2d_raw" / seq
        for frame in range(FRAMES + 2):  # images from frame id 0; poses from id 2
            name = f"{frame:010d}"
            for cam in ("image_00", "image_01"):
                image = np.asarray(Image.open(raw / cam / "data_rect" / f"{name}.png").convert("RGB"))
                assert image.shape == (h, w, 3)
                assert (synthetic_root / "ground_truth" / seq / "depth" / cam / f"{name}.npy").is_file()
            for cam in ("image_02", "image_03"):
                image = np.asarray(Image.open(raw / cam / "data_rgb" / f"{name}.png").convert("RGB"))
                f = calib.fisheye[cam]
                assert image.shape == (f.height, f.width, 3)
                assert (image[0, 0] == 0).all(), "outside the image circle is black"
            assert (synthetic_root / "data_3d_raw" / seq / "velodyne_points" / "data" / f"{name}.bin").is_file()
        assert not (raw / "image_00" / "data_rect" / f"{FRAMES + 2:010d}.png").exists()


def test_manifest_and_sizes(synthetic_root):
    manifest = json.loads((synthetic_root / MANIFEST).read_text())
    assert {k: manifest[k] for k in SYNTHETIC_PARAMS} == SYNTHETIC_PARAMS
    preset = PRESETS[SYNTHETIC_PARAMS["size"]]
    calib = read_calibration(synthetic_root / "calibration")
    assert calib.rect_size["image_00"] == (preset.perspective_width, preset.perspective_height)
    assert calib.fisheye["image_02"].width == preset.fisheye_size


def test_poses_and_cam0_to_world(synthetic_root):
    calib = read_calibration(synthetic_root / "calibration")
    for seq in SEQUENCES:
        poses = read_poses(synthetic_root / "data_poses" / seq / "poses.txt")
        np.testing.assert_array_equal(poses.frame_ids, np.arange(2, FRAMES + 2))
        rows = np.loadtxt(synthetic_root / "data_poses" / seq / "cam0_to_world.txt")
        assert rows.shape == (FRAMES, 17)
        np.testing.assert_array_equal(rows[:, 0], poses.frame_ids)
        expected = poses.pose_to_world @ calib.rect_cam_to_pose("image_00")
        np.testing.assert_allclose(rows[:, 1:].reshape(-1, 4, 4), expected, atol=1e-9)


def test_the_drive_varies_speed_and_heading(synthetic_root):
    poses = read_poses(synthetic_root / "data_poses" / SEQUENCES[0] / "poses.txt").pose_to_world
    steps = np.diff(poses[:, :3, 3], axis=0)
    speed = np.linalg.norm(steps, axis=1)
    assert 0.6 < speed.mean() < 1.4 and speed.std() > 0.01
    heading = np.arctan2(poses[:, 1, 0], poses[:, 0, 0])
    assert np.ptp(heading) > 2e-3 and np.ptp(np.diff(heading)) > 1e-4, "the heading varies from frame to frame"
    # Pose axes: x forward along the street, z down.
    assert (poses[:, 0, 0] > 0.99).all() and np.allclose(poses[:, :3, 2], [0, 0, -1])


def test_rig_conventions(synthetic_root):
    calib = read_calibration(synthetic_root / "calibration")
    t00, t01 = calib.cam_to_pose["image_00"][:3, 3], calib.cam_to_pose["image_01"][:3, 3]
    np.testing.assert_allclose(t01 - t00, [0.0, 0.6, 0.0])
    assert t00[2] < 0, "the cameras sit above the pose origin (pose z points down)"
    # Rectified cameras share one orientation, pitched about 5 degrees down; the baseline is in P_rect_01.
    r0, r1 = calib.rect_cam_to_pose("image_00")[:3, :3], calib.rect_cam_to_pose("image_01")[:3, :3]
    np.testing.assert_allclose(r0, r1, atol=1e-12)
    forward = r0[:, 2]
    assert abs(np.degrees(np.arcsin(forward[2])) - 5.0) < 1e-6
    assert not np.allclose(calib.r_rect["image_00"], np.eye(3))
    p = calib.p_rect["image_01"]
    assert p[0, 3] == pytest.approx(-0.6 * p[0, 0])
    # Side-looking fisheyes: image_02 to the left (pose -y), image_03 to the right.
    assert calib.cam_to_pose["image_02"][1, 2] < -0.99 and calib.cam_to_pose["image_03"][1, 2] > 0.99
    velo_rotation = calib.velo_to_pose()[:3, :3]
    np.testing.assert_allclose(velo_rotation, np.diag([1.0, -1.0, -1.0]), atol=0.02)


def test_splits(synthetic_root):
    splits = {s: read_split(synthetic_root / "splits" / f"{s}_files.txt") for s in ("train", "val", "test")}
    test_seqs = {e.sequence for e in splits["test"]}
    assert test_seqs == {SEQUENCES[-1]}
    assert SEQUENCES[-1] not in {e.sequence for s in ("train", "val") for e in splits[s]}
    assert {e.side for e in splits["train"]} == {"l", "r"}
    assert {e.side for e in splits["val"]} == {"l"} == {e.side for e in splits["test"]}
    train = {(e.sequence, e.frame_id) for e in splits["train"]}
    val = {(e.sequence, e.frame_id) for e in splits["val"]}
    assert not train & val, "with two sequences val is a window that train leaves out"
    for name, entries in splits.items():
        for e in entries:
            ids = read_poses(synthetic_root / "data_poses" / e.sequence / "poses.txt").frame_ids
            assert e.frame_id + FRAMES_AHEAD in ids, f"{name}: frame {e.frame_id} has no frame t+{FRAMES_AHEAD}"

"""The data check of a KITTI-360 tree (``python -m datasets.kitti_360.check``): a good tree passes, and each of three
broken copies of the synthetic city fails on the camera pairs it breaks, with a report per pair."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from bts.geometry import rotation_y
from datasets.kitti_360.calibration import read_calibration, write_calibration
from datasets.kitti_360.check import MIN_SCORE, check_tree, main
from datasets.kitti_360.fisheye import fisheye_camera, resample, virtual_pinhole_grid, virtual_rotation
from datasets.kitti_360.layout import read_image
from datasets.kitti_360.poses import read_poses, write_poses

# The tiny city's sequences have 14 frames: a fisheye offset of 8 leaves six scans per pair.
OFFSET = 8


def _copy(synthetic_root, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(synthetic_root, root)
    return root


def _yaw_fisheye(root):
    calib = read_calibration(root / "calibration")
    turn = np.eye(4)
    turn[:3, :3] = rotation_y(10.0).numpy()  # about the camera's vertical axis
    cam_to_pose = dict(calib.cam_to_pose, image_02=calib.cam_to_pose["image_02"] @ turn)
    write_calibration(dataclasses.replace(calib, cam_to_pose=cam_to_pose), root / "calibration")


def _shift_poses(root):
    """Every row of poses.txt one frame late: frame f gets the pose of f + 1 (scans and all cameras together)."""
    for path in (root / "data_poses").glob("*/poses.txt"):
        poses = read_poses(path)
        write_poses(path, poses.frame_ids[:-1], poses.pose_to_world[1:])


def _shift_fisheye_frames(root):
    """The fisheye images one frame off their poses (a renumbered folder): the image of frame f is stored as f + 1."""
    for folder in root.glob("data_2d_raw/*/image_0[23]/data_rgb"):
        for path in sorted(folder.glob("*.png"), reverse=True):
            path.rename(folder / f"{int(path.stem) + 1:010d}.png")


def _pinhole_fisheyes(root):
    """The virtual-pinhole crops (what the loader makes of a fisheye) stored in place of the raw fisheye images."""
    calib = read_calibration(root / "calibration")
    for camera in ("image_02", "image_03"):
        f = calib.fisheye[camera]
        k = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        grid = virtual_pinhole_grid(fisheye_camera(f), k, virtual_rotation(camera, (0.0, -15.0)), f.height, f.width)
        for path in root.glob(f"data_2d_raw/*/{camera}/data_rgb/*.png"):
            image = resample(read_image(path, camera), grid)
            Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def _scores(root):
    return {(r.sequence, r.camera): r for r in check_tree(root, fisheye_offset=OFFSET)}


def test_a_consistent_tree_passes_every_pair(synthetic_root):
    reports = _scores(synthetic_root)
    assert len(reports) == 2 * 4  # two sequences, four pairs each
    for r in reports.values():
        assert r.status == "ok" and r.score > MIN_SCORE + 0.1 and r.points >= 200, r
        assert r.frames >= 4


@pytest.mark.parametrize(("breakage", "broken", "intact"), [
    (_yaw_fisheye, {"image_02"}, {"image_00", "image_01", "image_03"}),
    (_shift_fisheye_frames, {"image_02", "image_03"}, {"image_00", "image_01"}),
    (_pinhole_fisheyes, {"image_02", "image_03"}, {"image_00", "image_01"}),
])
def test_each_broken_tree_fails_on_the_pairs_it_breaks(synthetic_root, tmp_path, breakage, broken, intact):
    root = _copy(synthetic_root, tmp_path)
    breakage(root)
    reports = _scores(root)
    for (_, camera), r in reports.items():
        if camera in broken:
            assert r.status == "FAIL" and r.score < MIN_SCORE - 0.05, r
        else:
            assert camera in intact and r.status == "ok", r


def test_a_uniform_pose_shift_is_not_observable_on_a_smooth_drive(synthetic_root, tmp_path):
    """All poses one frame late (scans and cameras together) keep every relative pose but for the change of speed
    between neighbouring frames, about 1 cm here: no multi-view check can see it, and this one does not claim to.
    It is also nearly harmless for training, which uses only relative poses. The next-frame pair moves a little."""
    good = _scores(synthetic_root)
    root = _copy(synthetic_root, tmp_path)
    _shift_poses(root)
    shifted = _scores(root)
    for key, r in shifted.items():
        assert r.status == "ok", r
        assert r.score <= good[key].score + 0.02
    assert all(shifted[(s, "image_00")].score < good[(s, "image_00")].score for s, _ in good)


def test_the_command_reports_every_pair_and_exits_1_on_a_broken_tree(synthetic_root, tmp_path, capsys):
    assert main(["--root", str(synthetic_root), "--fisheye-offset", str(OFFSET), "--frames", "3"]) == 0
    assert capsys.readouterr().out.count(" ok") == 8
    root = _copy(synthetic_root, tmp_path)
    _yaw_fisheye(root)
    out_json = tmp_path / "report.json"
    assert main(["--root", str(root), "--fisheye-offset", str(OFFSET), "--json", str(out_json)]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "image_02" in captured.err
    assert {r["camera"] for r in json.loads(out_json.read_text()) if r["status"] == "FAIL"} == {"image_02"}


def test_a_tree_without_poses_is_named(tmp_path, capsys):
    (tmp_path / "calibration").mkdir()
    assert main(["--root", str(tmp_path)]) == 1
    assert "calibration" in capsys.readouterr().err

"""Camera paths: built-in trajectories in the pitched camera frame, the trajectory file format, the transition."""

import math

import numpy as np
import pytest

from bts.visualization.trajectories import (
    TrajectoryFileError,
    builtin_trajectory,
    load_trajectory,
    resolve_trajectory,
    transition_pose,
    transition_progress,
)


def is_rigid(poses: np.ndarray) -> bool:
    r = poses[:, :3, :3]
    return bool(np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-9) and np.allclose(np.linalg.det(r), 1.0)
                and np.allclose(poses[:, 3], [0, 0, 0, 1]))


@pytest.mark.parametrize("name", ["forward", "sideways", "orbit"])
def test_builtin_trajectories_start_at_the_input_camera(name):
    poses = builtin_trajectory(name, 12, scale=1.0, pitch_deg=5.0)
    assert poses.shape == (12, 4, 4) and is_rigid(poses)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-12)
    assert np.abs(poses[1:, :3, 3]).max() > 0.1  # the camera moves


def test_forward_follows_the_road_not_the_pitched_optical_axis():
    end = builtin_trajectory("forward", 5, scale=1.0, pitch_deg=5.0)[-1]
    # 4 m along the levelled z axis, seen from a camera pitched 5° down: slightly up (y < 0) in the camera frame.
    s, c = math.sin(math.radians(5)), math.cos(math.radians(5))
    np.testing.assert_allclose(end[:3, 3], [0.0, -4 * s, 4 * c], atol=1e-9)
    np.testing.assert_allclose(end[:3, :3], np.eye(3), atol=1e-12)


def test_sideways_scale_and_orbit_yaw():
    side = builtin_trajectory("sideways", 8, scale=2.0, pitch_deg=0.0)
    assert np.abs(side[:, 0, 3]).max() == pytest.approx(2.0) and np.abs(side[:, 2, 3]).max() < 1e-9
    orbit = builtin_trajectory("orbit", 8, scale=1.0, pitch_deg=0.0)
    quarter = orbit[2]  # a quarter loop: right of the input camera, turned back towards the middle (yaw -5°)
    assert quarter[0, 3] == pytest.approx(0.5) and quarter[2, 3] == pytest.approx(1.0)
    assert math.degrees(math.atan2(quarter[0, 2], quarter[2, 2])) == pytest.approx(-5.0)


def test_unknown_builtin_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="forward"):
        builtin_trajectory("zigzag", 4)


@pytest.mark.parametrize("layout", ["npy44", "npy34", "npy12", "npy16", "txt12", "csv16"])
def test_trajectory_files_round_trip(tmp_path, layout):
    poses = builtin_trajectory("orbit", 6, pitch_deg=5.0)
    if layout.startswith("npy"):
        path = tmp_path / "path.npy"
        array = {"npy44": poses, "npy34": poses[:, :3], "npy12": poses[:, :3].reshape(6, 12),
                 "npy16": poses.reshape(6, 16)}[layout]
        np.save(path, array)
    else:
        path = tmp_path / f"path.{layout[:3]}"
        rows = poses[:, :3].reshape(6, 12) if layout == "txt12" else poses.reshape(6, 16)
        sep = " " if layout == "txt12" else ","
        path.write_text("# camera-to-input poses\n" + "\n".join(sep.join(f"{v:.12f}" for v in r) for r in rows) + "\n")
    np.testing.assert_allclose(load_trajectory(path), poses, atol=1e-9)
    np.testing.assert_allclose(resolve_trajectory(str(path), 99), poses, atol=1e-9)


@pytest.mark.parametrize("content, problem", [
    (np.zeros((5, 3, 3)), "shape"),
    (np.tile(np.diag([1.0, 1.0, 2.0, 1.0]), (3, 1, 1)), "orthonormal"),
    (np.tile(np.diag([1.0, 1.0, -1.0, 1.0]), (3, 1, 1)), "determinant"),
    (np.tile(np.eye(4) + np.eye(4, k=-3), (3, 1, 1)), "last row"),
    (np.full((2, 12), np.nan), "NaN"),
])
def test_malformed_npy_names_the_file_and_the_expected_layout(tmp_path, content, problem):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(TrajectoryFileError, match=problem) as info:
        load_trajectory(path)
    assert str(path) in str(info.value) and "[N, 4, 4]" in str(info.value)


def test_malformed_text_files_name_the_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(" ".join(["1"] * 12) + "\n1 2 3\n")
    with pytest.raises(TrajectoryFileError, match="line 2 has 3 numbers"):
        load_trajectory(bad)
    bad.write_text("1 0 0 0 0 1 0 0 0 0 one 0\n")
    with pytest.raises(TrajectoryFileError, match="line 1 is not a list of numbers"):
        load_trajectory(bad)
    (tmp_path / "path.json").write_text("[]")
    with pytest.raises(TrajectoryFileError, match="unknown suffix"):
        load_trajectory(tmp_path / "path.json")
    with pytest.raises(TrajectoryFileError, match="does not exist"):
        resolve_trajectory(str(tmp_path / "missing.npy"), 3)


def test_transition_progress_and_end_pose():
    p = transition_progress(30, 5)
    assert len(p) == 35 and p[0] == 0 and p[29] == 1 and (p[29:] == 1).all()
    assert p[15] == pytest.approx((15 / 29) ** 2)
    end = transition_pose(1.0, pitch_deg=85.0, height=6.0, distance=10.0)
    a = math.radians(85)
    np.testing.assert_allclose(end[:3, 3], [0, -6 * math.sin(a), 10 * (1 - math.cos(a))], atol=1e-12)
    # The optical axis of the end camera points down (+y) in the input camera frame.
    np.testing.assert_allclose(end[:3, 2], [0, math.sin(a), math.cos(a)], atol=1e-12)

"""The KITTI-360 sensor rig of the synthetic city: calibration, vehicle trajectory and lidar beams.

Frames follow the real calibration files (docs/synthetic_city.md, Requirements, item 4):

- cameras: x right, y down, z forward; the pose (IMU) frame of ``poses.txt``: x forward, y right, z down; the
  velodyne: x forward, y left, z up (velodyne-to-pose rotation about ``diag(1, -1, -1)``);
- world-from-pose = yaw about world z composed with ``diag(1, -1, -1)``; the pose origin is ``IMU_HEIGHT`` above
  the road, so ``z = -0.65`` in the pose frame puts the perspective cameras 1.58 m above the road;
- the unrectified perspective cameras are pitched 5 degrees down and carry small individual rotations, which
  ``R_rect_0X`` removes: the rectified cameras share one orientation and sit 0.6 m apart along its x axis, so the
  rendered (rectified) pair is an exact stereo pair and ``P_rect_01 = [K | -f * 0.6, 0, 0]``;
- the fisheyes look sideways (image_02 left, image_03 right) with MEI parameters close to the real ones,
  scaled to the preset's image size.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bts.geometry import rotation_x, rotation_y, rotation_z
from datasets.kitti_360.calibration import Calibration, FisheyeCalibration
from datasets.synthetic.presets import SizePreset

IMU_HEIGHT = 0.93
PITCH_DEG = 5.0
BASELINE = 0.6
LIDAR_ELEVATION_DEG = (2.0, -25.0)
LIDAR_MAX_RANGE = 100.0
FLIP = np.diag([1.0, -1.0, -1.0])

# Camera axes (x right, y down, z forward) expressed in the pose frame (x forward, y right, z down).
_FORWARD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
_LEFT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_RIGHT = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

# Mounting of every sensor in the pose frame: position and a small rotation (degrees about x, y, z).
_MOUNT = {
    "image_00": ((1.50, 0.00, -0.65), (0.25, -0.35, 0.15)),
    "image_01": ((1.50, BASELINE, -0.65), (-0.30, 0.20, -0.25)),
    "image_02": ((0.60, -0.45, -0.78), (1.00, -0.50, 0.80)),
    "image_03": ((0.60, 1.05, -0.78), (-0.70, 0.60, -1.10)),
    "velodyne": ((0.80, 0.30, -0.80), (0.20, -0.15, 0.30)),
}

# MEI parameters of the real fisheyes at 1400 x 1400 (docs/decisions.md §6).
_FISHEYE_1400 = {
    "image_02": FisheyeCalibration(2.2134, 0.0168, 1.6549, 4.3e-4, -3.2e-4, 1336.3, 1335.8, 716.9, 705.8, 1400, 1400),
    "image_03": FisheyeCalibration(2.5535, 0.0494, 4.5068, -2.4e-4, 5.1e-4, 1485.4, 1484.9, 698.9, 698.0, 1400, 1400),
}


def _small_rotation(angles_deg) -> np.ndarray:
    ax, ay, az = angles_deg
    return (rotation_z(az) @ rotation_y(ay) @ rotation_x(ax)).numpy()


def _rigid(rotation: np.ndarray, translation) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = translation
    return m


def rectified_rotation() -> np.ndarray:
    """The common orientation of the rectified perspective cameras in the pose frame: forward, 5 degrees down."""
    return _FORWARD @ rotation_x(-PITCH_DEG).numpy()


def perspective_intrinsics(width: int, height: int) -> np.ndarray:
    """``K`` in pixels, scaled from the real 1408x376 one with pixel centres kept aligned."""
    f = 552.55 * width / 1408.0
    cx = (682.05 + 0.5) * width / 1408.0 - 0.5
    cy = (238.77 + 0.5) * height / 376.0 - 0.5
    return np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def build_calibration(preset: SizePreset) -> Calibration:
    w, h = preset.perspective_width, preset.perspective_height
    k = perspective_intrinsics(w, h)
    r_common = rectified_rotation()
    cam_to_pose, r_rect, p_rect = {}, {}, {}
    for cam, base in (("image_00", _FORWARD), ("image_01", _FORWARD), ("image_02", _LEFT), ("image_03", _RIGHT)):
        position, angles = _MOUNT[cam]
        small = _small_rotation(angles)
        if cam in ("image_00", "image_01"):
            rot = r_common @ small
            r_rect[cam] = r_common.T @ rot  # rect_cam_to_pose = cam_to_pose @ inv(R_rect) has rotation r_common
            p = np.zeros((3, 4))
            p[:, :3] = k
            p[0, 3] = -k[0, 0] * BASELINE if cam == "image_01" else 0.0
            p_rect[cam] = p
        else:
            rot = base @ small
        cam_to_pose[cam] = _rigid(rot, position)
    position, angles = _MOUNT["velodyne"]
    velo_to_pose = _rigid(FLIP @ _small_rotation(angles), position)
    size = preset.fisheye_size
    return Calibration(
        p_rect=p_rect, r_rect=r_rect, rect_size={"image_00": (w, h), "image_01": (w, h)},
        cam_to_pose=cam_to_pose, cam_to_velo=np.linalg.inv(velo_to_pose) @ cam_to_pose["image_00"],
        fisheye={cam: f.scaled(size, size) for cam, f in _FISHEYE_1400.items()},
    )


def _smooth_noise(rng: np.random.Generator, n: int, periods=(12.0, 70.0)) -> np.ndarray:
    """A smooth random signal of ``n`` samples in about ``[-1, 1]``: three sinusoids of random period and phase."""
    i = np.arange(n, dtype=np.float64)
    p = rng.uniform(*periods, size=3)
    phase = rng.uniform(0, 2 * math.pi, size=3)
    amp = rng.uniform(0.5, 1.0, size=3)
    return (amp[:, None] * np.sin(2 * math.pi * i[None] / p[:, None] + phase[:, None])).sum(0) / amp.sum()


def trajectory(rng: np.random.Generator, count: int, start_x: float, lateral: float = -0.5) -> np.ndarray:
    """Pose-to-world matrices ``[count, 4, 4]`` of a drive along +x: about 1 m per frame, with speed, lateral
    offset (about ``lateral``, the pose origin's y) and heading varying smoothly from frame to frame."""
    speed = 1.0 + 0.2 * _smooth_noise(rng, count)
    x = start_x + np.concatenate([[0.0], np.cumsum(speed[:-1])])
    y = lateral + 0.2 * _smooth_noise(rng, count, periods=(25.0, 90.0))
    heading = np.arctan2(np.gradient(y), np.gradient(x)) + math.radians(1.2) * _smooth_noise(rng, count)
    poses = np.zeros((count, 4, 4))
    for i in range(count):
        yaw = rotation_z(math.degrees(heading[i])).numpy()
        poses[i] = _rigid(yaw @ FLIP, (x[i], y[i], IMU_HEIGHT))
    return poses


def travel_length(count: int) -> float:
    """An upper bound of the distance :func:`trajectory` covers in ``count`` frames."""
    return 1.2 * count + 1.0


def lidar_directions(beams: int, azimuths: int) -> torch.Tensor:
    """Unit beam directions ``[beams, azimuths, 3]`` in the velodyne frame (x forward, y left, z up)."""
    el = torch.deg2rad(torch.linspace(*LIDAR_ELEVATION_DEG, beams, dtype=torch.float64))
    az = torch.arange(azimuths, dtype=torch.float64) * (2 * math.pi / azimuths)
    el, az = torch.meshgrid(el, az, indexing="ij")
    return torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], dim=-1)

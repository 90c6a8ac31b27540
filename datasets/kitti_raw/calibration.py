"""The KITTI Raw calibration of one recording date (``<root>/<date>/``), as the official devkit defines it.

- ``calib_cam_to_cam.txt``: ``P_rect_0X`` (3x4), ``R_rect_00`` (3x3) and ``S_rect_0X`` (width height), among
  other keys (``calib_time``, the unrectified ``K_0X``/``D_0X``, ...) that are ignored;
- ``calib_velo_to_cam.txt``: ``R`` (9 numbers) and ``T`` (3 numbers), velodyne to the unrectified camera 0.

``P_rect_0X`` maps a point in the *rectified camera-0* frame to camera X's image, so a velodyne point ``x`` lands
at ``P_rect_0X · R_rect_00 · T_velo→cam · x`` (devkit ``readme.txt``). Camera 2 is the left colour camera, camera 3
the right one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.kitti_raw.errors import MalformedFileError, calibration_archive, require_file

COLOUR_CAMERAS = ("image_02", "image_03")
CAM_TO_CAM = "calib_cam_to_cam.txt"
VELO_TO_CAM = "calib_velo_to_cam.txt"


@dataclass(frozen=True)
class RawCalibration:
    """Calibration of the colour cameras of one date; float64 numpy matrices."""

    p_rect: dict[str, np.ndarray]  # image_02/03 -> 3x4
    rect_size: dict[str, tuple[int, int]]  # image_02/03 -> (width, height)
    r_rect_00: np.ndarray  # 3x3
    velo_to_cam: np.ndarray  # 4x4, velodyne -> unrectified camera 0

    def velo_to_image(self, camera: str) -> np.ndarray:
        """``P_rect · R_rect_00 · T_velo→cam`` (3x4): velodyne points to homogeneous pixels of ``camera``."""
        r = np.eye(4)
        r[:3, :3] = self.r_rect_00
        return self.p_rect[camera] @ r @ self.velo_to_cam

    def intrinsics(self, camera: str) -> np.ndarray:
        """Pixel intrinsics ``K`` (3x3) of a rectified colour camera."""
        return self.p_rect[camera][:, :3].copy()

    def camera_offset(self, camera: str) -> np.ndarray:
        """``t`` with ``P_rect = K [I | t]``: a rectified camera's frame is the rectified camera-0 frame + ``t``."""
        p = self.p_rect[camera]
        return np.linalg.solve(p[:, :3], p[:, 3])

    def cam_to_cam(self, source: str, target: str) -> np.ndarray:
        """4x4 transform from rectified camera ``source`` to ``target`` (the rectified rig differs by translation)."""
        m = np.eye(4)
        m[:3, 3] = self.camera_offset(target) - self.camera_offset(source)
        return m


def _read_keyed(path: Path, wanted: dict[str, int]) -> dict[str, np.ndarray]:
    """``key: numbers`` lines for the keys in ``wanted`` (key -> count); other keys, such as ``calib_time``, are
    skipped without being parsed."""
    found: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        key, sep, rest = line.partition(":")
        key = key.strip()
        if key not in wanted:
            continue
        if not sep:
            raise MalformedFileError(path, lineno, f"expected '{key}: <{wanted[key]} numbers>', got {line!r}")
        parts = rest.split()
        if len(parts) != wanted[key]:
            raise MalformedFileError(path, lineno, f"{key}: expected {wanted[key]} numbers, found {len(parts)}")
        try:
            found[key] = np.array([float(p) for p in parts], dtype=np.float64)
        except ValueError as e:
            raise MalformedFileError(path, lineno, f"{key}: expected {wanted[key]} numbers: {e}") from None
    missing = [k for k in wanted if k not in found]
    if missing:
        expected = ", ".join(f"'{k}: <{wanted[k]} numbers>'" for k in missing)
        raise MalformedFileError(path, None, f"missing entries {expected}")
    return found


def read_cam_to_cam(path: Path) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, int]], np.ndarray]:
    """``P_rect_02/03``, ``S_rect_02/03`` and ``R_rect_00`` of a ``calib_cam_to_cam.txt``."""
    wanted = {"R_rect_00": 9}
    for cam in COLOUR_CAMERAS:
        wanted.update({f"P_rect_{cam[-2:]}": 12, f"S_rect_{cam[-2:]}": 2})
    v = _read_keyed(path, wanted)
    p_rect, size = {}, {}
    for cam in COLOUR_CAMERAS:
        p_rect[cam] = v[f"P_rect_{cam[-2:]}"].reshape(3, 4)
        w, h = v[f"S_rect_{cam[-2:]}"]
        if w <= 0 or h <= 0 or w != int(w) or h != int(h):
            raise MalformedFileError(path, None, f"S_rect_{cam[-2:]} must be two positive integers, got {w} {h}")
        if abs(np.linalg.det(p_rect[cam][:, :3])) < 1e-12:
            raise MalformedFileError(path, None, f"P_rect_{cam[-2:]}: the left 3x3 block (K) is singular")
        size[cam] = (int(w), int(h))
    return p_rect, size, v["R_rect_00"].reshape(3, 3)


def read_velo_to_cam(path: Path) -> np.ndarray:
    """The 4x4 velodyne-to-camera-0 transform of a ``calib_velo_to_cam.txt`` (``R``: 9 numbers, ``T``: 3)."""
    v = _read_keyed(path, {"R": 9, "T": 3})
    m = np.eye(4)
    m[:3, :3] = v["R"].reshape(3, 3)
    m[:3, 3] = v["T"]
    return m


def read_raw_calibration(date_dir: Path | str) -> RawCalibration:
    """Read the calibration files of one date folder, ``<root>/<date>/``."""
    d = Path(date_dir)
    archive = calibration_archive(d.name)
    cam = require_file(d / CAM_TO_CAM, "the camera calibration (P_rect_02/03, R_rect_00, S_rect_02/03)", archive)
    velo = require_file(d / VELO_TO_CAM, "the velodyne-to-camera transform (R: 9 numbers, T: 3 numbers)", archive)
    p_rect, size, r_rect = read_cam_to_cam(cam)
    return RawCalibration(p_rect=p_rect, rect_size=size, r_rect_00=r_rect, velo_to_cam=read_velo_to_cam(velo))

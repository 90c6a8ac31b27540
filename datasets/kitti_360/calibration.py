"""Reading and writing the KITTI-360 calibration files (docs/method.md §7.2).

Files under ``<root>/calibration/``:

- ``perspective.txt``: ``P_rect_00``/``P_rect_01`` (3x4), ``R_rect_00``/``R_rect_01`` (3x3) and the rectified
  image sizes ``S_rect_00``/``S_rect_01`` (width height);
- ``calib_cam_to_pose.txt``: one line ``image_0X: 12 numbers`` per camera, the (unrectified) camera to the
  pose (IMU) frame, whose axes are x forward, y right, z down;
- ``calib_cam_to_velo.txt``: 12 numbers, camera 0 (unrectified) to the velodyne;
- ``image_02.yaml``/``image_03.yaml``: the MEI fisheye models, OpenCV YAML with a ``%YAML:1.0`` first line.

Chains (all ``a_to_b`` matrices are 4x4):

- rectified perspective camera to pose: ``cam_to_pose[image_0X] @ inv(R_rect_0X)``;
- fisheye camera to pose: ``cam_to_pose[image_0X]``;
- velodyne to pose: ``cam_to_pose[image_00] @ inv(cam_to_velo)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from datasets.kitti_360.errors import PACKAGE_CALIBRATION, MalformedFileError, require_file

PERSPECTIVE_CAMERAS = ("image_00", "image_01")
FISHEYE_CAMERAS = ("image_02", "image_03")
ALL_CAMERAS = PERSPECTIVE_CAMERAS + FISHEYE_CAMERAS


@dataclass(frozen=True)
class FisheyeCalibration:
    """MEI parameters of one fisheye, in pixels of a ``width x height`` image."""

    xi: float
    k1: float
    k2: float
    p1: float
    p2: float
    gamma1: float
    gamma2: float
    u0: float
    v0: float
    width: int
    height: int

    def scaled(self, width: int, height: int) -> FisheyeCalibration:
        """The same camera for an image resized to ``width x height`` (pixel centres kept aligned)."""
        sx, sy = width / self.width, height / self.height
        return FisheyeCalibration(
            self.xi, self.k1, self.k2, self.p1, self.p2,
            self.gamma1 * sx, self.gamma2 * sy, (self.u0 + 0.5) * sx - 0.5, (self.v0 + 0.5) * sy - 0.5,
            width, height,
        )


@dataclass(frozen=True)
class Calibration:
    """The KITTI-360 calibration. Matrices are float64 numpy arrays."""

    p_rect: dict[str, np.ndarray]  # image_00/01 -> 3x4
    r_rect: dict[str, np.ndarray]  # image_00/01 -> 3x3
    rect_size: dict[str, tuple[int, int]]  # image_00/01 -> (width, height)
    cam_to_pose: dict[str, np.ndarray]  # image_00..03 -> 4x4
    cam_to_velo: np.ndarray  # 4x4, unrectified camera 0 -> velodyne
    fisheye: dict[str, FisheyeCalibration]  # image_02/03

    def rect_cam_to_pose(self, camera: str) -> np.ndarray:
        """Rectified perspective camera (``image_00``/``image_01``) to pose."""
        r = np.eye(4)
        r[:3, :3] = self.r_rect[camera]
        return self.cam_to_pose[camera] @ np.linalg.inv(r)

    def velo_to_pose(self) -> np.ndarray:
        return self.cam_to_pose["image_00"] @ np.linalg.inv(self.cam_to_velo)

    def camera_to_pose(self, camera: str) -> np.ndarray:
        """Camera to pose for any camera: rectified for perspective cameras, raw for fisheyes."""
        if camera in PERSPECTIVE_CAMERAS:
            return self.rect_cam_to_pose(camera)
        return self.cam_to_pose[camera]


def _parse_numbers(path: Path, lineno: int, text: str, count: int, what: str) -> np.ndarray:
    parts = text.split()
    if len(parts) != count:
        raise MalformedFileError(path, lineno, f"{what}: expected {count} numbers, found {len(parts)}")
    try:
        return np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError as e:
        raise MalformedFileError(path, lineno, f"{what}: {e}") from None


def _read_keyed(path: Path, wanted: dict[str, int]) -> dict[str, np.ndarray]:
    """Read ``key: numbers`` lines for the keys in ``wanted`` (key -> number count); other keys are ignored."""
    found: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        key = key.strip()
        if key in wanted:
            if not sep:
                raise MalformedFileError(path, lineno, f"expected '{key}: <numbers>'")
            found[key] = _parse_numbers(path, lineno, rest, wanted[key], key)
    missing = [k for k in wanted if k not in found]
    if missing:
        raise MalformedFileError(path, None, f"missing entries {missing}")
    return found


def _rigid(values: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :] = values.reshape(3, 4)
    return m


def read_perspective(path: Path):
    require_file(path, "the rectified perspective intrinsics (P_rect_0X, R_rect_0X, S_rect_0X)", PACKAGE_CALIBRATION)
    wanted = {}
    for cam in ("00", "01"):
        wanted.update({f"P_rect_{cam}": 12, f"R_rect_{cam}": 9, f"S_rect_{cam}": 2})
    v = _read_keyed(path, wanted)
    p_rect, r_rect, size = {}, {}, {}
    for cam in ("00", "01"):
        name = f"image_{cam}"
        p_rect[name] = v[f"P_rect_{cam}"].reshape(3, 4)
        r_rect[name] = v[f"R_rect_{cam}"].reshape(3, 3)
        w, h = v[f"S_rect_{cam}"]
        if w <= 0 or h <= 0 or w != int(w) or h != int(h):
            raise MalformedFileError(path, None, f"S_rect_{cam} must be two positive integers, got {w} {h}")
        size[name] = (int(w), int(h))
    return p_rect, r_rect, size


def read_cam_to_pose(path: Path) -> dict[str, np.ndarray]:
    require_file(path, "camera-to-pose transforms 'image_0X: 12 numbers'", PACKAGE_CALIBRATION)
    v = _read_keyed(path, {c: 12 for c in ALL_CAMERAS})
    return {c: _rigid(v[c]) for c in ALL_CAMERAS}


def read_cam_to_velo(path: Path) -> np.ndarray:
    require_file(path, "the camera-0-to-velodyne transform (12 numbers)", PACKAGE_CALIBRATION)
    lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    if len(lines) != 1:
        raise MalformedFileError(path, None, f"expected one line of 12 numbers, found {len(lines)} lines")
    lineno, line = lines[0]
    return _rigid(_parse_numbers(path, lineno, line, 12, "cam_to_velo"))


_FISHEYE_KEYS = {
    "mirror_parameters": ("xi",),
    "distortion_parameters": ("k1", "k2", "p1", "p2"),
    "projection_parameters": ("gamma1", "gamma2", "u0", "v0"),
}


def read_fisheye(path: Path) -> FisheyeCalibration:
    require_file(path, "the MEI fisheye model (OpenCV YAML)", PACKAGE_CALIBRATION)
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("%YAML"):
        raise MalformedFileError(path, 1, "expected the OpenCV header '%YAML:1.0'")
    # OpenCV writes 'key:value' without a space in places; YAML needs the space.
    body = re.sub(r":([^ \n])", r": \1", "\n".join(lines[1:]))
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise MalformedFileError(path, mark.line + 2 if mark else None, f"invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise MalformedFileError(path, None, "expected a YAML mapping")
    values: dict[str, float] = {}
    for group, keys in _FISHEYE_KEYS.items():
        sub = data.get(group)
        if not isinstance(sub, dict):
            raise MalformedFileError(path, None, f"missing section '{group}'")
        for k in keys:
            if k not in sub:
                raise MalformedFileError(path, None, f"missing '{group}.{k}'")
            try:
                values[k] = float(sub[k])
            except (TypeError, ValueError):
                raise MalformedFileError(path, None, f"'{group}.{k}' is not a number: {sub[k]!r}") from None
    for k in ("image_width", "image_height"):
        if not isinstance(data.get(k), int) or data[k] <= 0:
            raise MalformedFileError(path, None, f"'{k}' must be a positive integer, got {data.get(k)!r}")
    return FisheyeCalibration(**values, width=data["image_width"], height=data["image_height"])


def read_calibration(calibration_dir: Path | str) -> Calibration:
    """Read all calibration files of a KITTI-360 ``calibration/`` folder."""
    d = Path(calibration_dir)
    p_rect, r_rect, size = read_perspective(d / "perspective.txt")
    return Calibration(
        p_rect=p_rect,
        r_rect=r_rect,
        rect_size=size,
        cam_to_pose=read_cam_to_pose(d / "calib_cam_to_pose.txt"),
        cam_to_velo=read_cam_to_velo(d / "calib_cam_to_velo.txt"),
        fisheye={c: read_fisheye(d / f"{c}.yaml") for c in FISHEYE_CAMERAS},
    )


def _fmt(values) -> str:
    return " ".join(f"{float(x):.12e}" for x in np.asarray(values).reshape(-1))


def write_calibration(calib: Calibration, calibration_dir: Path | str) -> None:
    """Write ``calib`` in the KITTI-360 formats (used by the synthetic city)."""
    d = Path(calibration_dir)
    d.mkdir(parents=True, exist_ok=True)
    lines = []
    for cam in ("00", "01"):
        name = f"image_{cam}"
        w, h = calib.rect_size[name]
        lines += [
            f"S_rect_{cam}: {_fmt([w, h])}",
            f"R_rect_{cam}: {_fmt(calib.r_rect[name])}",
            f"P_rect_{cam}: {_fmt(calib.p_rect[name])}",
        ]
    (d / "perspective.txt").write_text("\n".join(lines) + "\n")
    (d / "calib_cam_to_pose.txt").write_text(
        "".join(f"{c}: {_fmt(calib.cam_to_pose[c][:3, :])}\n" for c in ALL_CAMERAS)
    )
    (d / "calib_cam_to_velo.txt").write_text(_fmt(calib.cam_to_velo[:3, :]) + "\n")
    for cam, f in calib.fisheye.items():
        (d / f"{cam}.yaml").write_text(
            "%YAML:1.0\n---\nmodel_type: MEI\n"
            f"camera_name: {cam}\nimage_width: {f.width}\nimage_height: {f.height}\n"
            f"mirror_parameters:\n   xi: {f.xi:.16e}\n"
            f"distortion_parameters:\n   k1: {f.k1:.16e}\n   k2: {f.k2:.16e}\n"
            f"   p1: {f.p1:.16e}\n   p2: {f.p2:.16e}\n"
            f"projection_parameters:\n   gamma1: {f.gamma1:.16e}\n   gamma2: {f.gamma2:.16e}\n"
            f"   u0: {f.u0:.16e}\n   v0: {f.v0:.16e}\n"
        )

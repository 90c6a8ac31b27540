"""Camera paths for novel-view videos: built-in ones, one read from a file, and the front-to-top transition.

Every path is an array ``[N, 4, 4]`` of **camera-to-input** poses: pose ``i`` maps points of novel camera ``i``
(x right, y down, z forward, metres) to the input camera's frame, so the identity is the input camera itself.

Built-in paths move the camera over the ground: they are made in the levelled frame (no pitch) and conjugated into
the pitched input-camera frame, so "forward" follows the road rather than diving 5° into it.

Trajectory files (``nvs.trajectory=path``), camera-to-input poses in metres:

- ``.npy``: an array ``[N, 4, 4]``, ``[N, 3, 4]``, ``[N, 12]`` or ``[N, 16]`` (rows of the matrix, row-major);
- ``.txt`` / ``.csv``: one pose per line, 12 numbers (the KITTI odometry pose format, ``[R | t]`` row-major) or 16
  numbers, separated by spaces or commas; ``#`` starts a comment.

Every rotation must be orthonormal with determinant +1 (tolerance 1e-3) and a 4x4 pose must end in ``0 0 0 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bts.errors import UserError
from bts.geometry import camera_from_level, rotation_x, rotation_y

ROTATION_TOLERANCE = 1e-3


class TrajectoryFileError(ValueError, UserError):
    """A trajectory file that does not hold camera poses in one of the documented layouts."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"trajectory file {path}: {problem}. Expected camera-to-input poses as an .npy array "
                         "[N, 4, 4], [N, 3, 4], [N, 12] or [N, 16], or a .txt/.csv file with 12 or 16 numbers per "
                         "line (row-major [R | t]); see bts/visualization/trajectories.py")
        self.path = path


def _pose(rotation: np.ndarray, translation) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = translation
    return m


def _yaw(deg: float) -> np.ndarray:
    return rotation_y(deg).numpy()


def to_camera_frame(poses_levelled: np.ndarray, pitch_deg: float) -> np.ndarray:
    """Conjugate levelled-frame motions into the input-camera frame of a camera pitched ``pitch_deg`` down."""
    level_to_cam = camera_from_level(pitch_deg).numpy()
    return level_to_cam @ poses_levelled @ np.linalg.inv(level_to_cam)


def forward(num_frames: int, scale: float = 1.0) -> np.ndarray:
    """Drive straight ahead by ``4 * scale`` metres."""
    return np.stack([_pose(np.eye(3), (0.0, 0.0, 4.0 * scale * i / max(num_frames - 1, 1)))
                     for i in range(num_frames)])


def sideways(num_frames: int, scale: float = 1.0) -> np.ndarray:
    """Sway left and right by ``scale`` metres, once (a sine, so the video loops)."""
    return np.stack([_pose(np.eye(3), (scale * math.sin(2 * math.pi * i / num_frames), 0.0, 0.0))
                     for i in range(num_frames)])


def orbit(num_frames: int, scale: float = 1.0) -> np.ndarray:
    """A loop like the original's ``simple_movement``: x in ``[-0.5, 0.5] * scale``, z in ``[0, 2] * scale``,
    yawing up to ±5° towards the middle of the scene."""
    poses = []
    for i in range(num_frames):
        a = 2 * math.pi * i / num_frames
        poses.append(_pose(_yaw(-5.0 * math.sin(a)), (0.5 * scale * math.sin(a), 0.0, scale * (1 - math.cos(a)))))
    return np.stack(poses)


BUILTIN: dict[str, Callable[[int, float], np.ndarray]] = {"forward": forward, "sideways": sideways, "orbit": orbit}


def builtin_trajectory(name: str, num_frames: int, scale: float = 1.0, pitch_deg: float = 5.0) -> np.ndarray:
    """A built-in path by name, as camera-to-input poses of a camera pitched ``pitch_deg`` down."""
    if name not in BUILTIN:
        raise ValueError(f"unknown trajectory {name!r}: expected one of {sorted(BUILTIN)} or a path to a file")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return to_camera_frame(BUILTIN[name](num_frames, scale), pitch_deg)


def _read_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as e:
            raise TrajectoryFileError(path, f"not a plain NumPy array ({e})") from None
    if path.suffix in (".txt", ".csv"):
        rows = []
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            line = line.split("#")[0].replace(",", " ").strip()
            if not line:
                continue
            try:
                rows.append([float(v) for v in line.split()])
            except ValueError:
                raise TrajectoryFileError(path, f"line {lineno} is not a list of numbers: {line[:60]!r}") from None
            if len(rows[-1]) not in (12, 16):
                raise TrajectoryFileError(path, f"line {lineno} has {len(rows[-1])} numbers")
        if len({len(r) for r in rows}) > 1:
            raise TrajectoryFileError(path, "lines mix 12 and 16 numbers")
        return np.array(rows)
    raise TrajectoryFileError(path, f"unknown suffix {path.suffix!r} (use .npy, .txt or .csv)")


def _as_poses(array: np.ndarray, path: Path) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number):
        raise TrajectoryFileError(path, f"holds {array.dtype} values, not numbers")
    a = array.astype(np.float64)
    if a.ndim == 2 and a.shape[1] in (12, 16):
        a = a.reshape(len(a), a.shape[1] // 4, 4)
    if a.ndim != 3 or a.shape[1:] not in ((3, 4), (4, 4)) or len(a) == 0:
        raise TrajectoryFileError(path, f"has shape {array.shape}")
    if not np.isfinite(a).all():
        raise TrajectoryFileError(path, "holds NaN or infinite values")
    if a.shape[1] == 4 and not np.allclose(a[:, 3], [0.0, 0.0, 0.0, 1.0]):
        bad = int(np.flatnonzero(~np.isclose(a[:, 3], [0, 0, 0, 1]).all(axis=1))[0])
        raise TrajectoryFileError(path, f"pose {bad} has last row {a[bad, 3].tolist()}, not [0, 0, 0, 1]")
    rot = a[:, :3, :3]
    err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(rot)
    bad_rot = np.flatnonzero((err > ROTATION_TOLERANCE) | (det < 0))
    if len(bad_rot):
        raise TrajectoryFileError(path, f"pose {int(bad_rot[0])} has a rotation that is not orthonormal with "
                                  f"determinant +1 (deviation {err[bad_rot[0]]:.2g}, det {det[bad_rot[0]]:.3g})")
    out = np.tile(np.eye(4), (len(a), 1, 1))
    out[:, :3] = a[:, :3]
    return out


def load_trajectory(path: Path | str) -> np.ndarray:
    """Camera-to-input poses ``[N, 4, 4]`` from a file in one of the layouts of the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise TrajectoryFileError(path, "does not exist")
    return _as_poses(_read_array(path), path)


def resolve_trajectory(spec: str, num_frames: int, scale: float = 1.0, pitch_deg: float = 5.0) -> np.ndarray:
    """A built-in name (``forward``, ``sideways``, ``orbit``) or a file path (whose poses are used as they are)."""
    if spec in BUILTIN:
        return builtin_trajectory(spec, num_frames, scale, pitch_deg)
    if not Path(spec).exists() and not Path(spec).suffix:
        raise TrajectoryFileError(Path(spec), f"is neither a built-in trajectory ({', '.join(BUILTIN)}) nor a file")
    return load_trajectory(spec)


def transition_progress(num_frames: int = 30, hold: int = 5) -> np.ndarray:
    """Progress ``p = min((i / (num_frames - 1))^2, 1)`` of the front-to-top transition, plus ``hold`` end frames."""
    i = np.arange(num_frames + hold, dtype=np.float64)
    return np.minimum((i / max(num_frames - 1, 1)) ** 2, 1.0)


def transition_pose(progress: float, pitch_deg: float = 85.0, height: float = 6.0, distance: float = 10.0
                    ) -> np.ndarray:
    """Camera-to-input pose at ``progress`` in [0, 1] (docs/method.md §10): pitched down by ``pitch_deg * p`` about x,
    raised to ``y = -height * sin(a)`` and moved to ``z = distance * (1 - cos(a))``, ``a = pitch_deg * p``."""
    a = pitch_deg * progress
    r = math.radians(a)
    return _pose(rotation_x(-a).numpy(), (0.0, -height * math.sin(r), distance * (1.0 - math.cos(r))))

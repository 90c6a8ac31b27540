"""Errors of the KITTI-360 data layer, with the file, the line and the download package named."""

from __future__ import annotations

from pathlib import Path

from datasets import errors as _base

# The official KITTI-360 download packages (https://www.cvlibs.net/datasets/kitti-360/download.php).
PACKAGE_CALIBRATION = "calibration (calibration.zip)"
PACKAGE_POSES = "vehicle poses (data_poses.zip)"
PACKAGE_PERSPECTIVE = "perspective images (data_2d_raw, download_2d_perspective.sh)"
PACKAGE_FISHEYE = "fisheye images (data_2d_raw, download_2d_fisheye.sh)"
PACKAGE_VELODYNE = "raw velodyne scans (data_3d_raw, download_3d_velodyne.sh)"


class Kitti360Error(_base.DataError):
    """Base class of the data layer's errors."""


class MissingFileError(Kitti360Error, _base.MissingFileError):
    """A file or folder of the KITTI-360 layout is missing."""

    source_kind = "KITTI-360 download package"


class MalformedFileError(Kitti360Error, _base.MalformedFileError):
    """A calibration, pose or split file has a line that cannot be parsed."""


def require_file(path: Path, expected: str, package: str | None = None) -> Path:
    """Return ``path`` if it is a file, otherwise raise :class:`MissingFileError`."""
    return _base.require_file(path, expected, package, MissingFileError)


def require_dir(path: Path, expected: str, package: str | None = None) -> Path:
    """Return ``path`` if it is a folder, otherwise raise :class:`MissingFileError`."""
    return _base.require_dir(path, expected, package, MissingFileError)

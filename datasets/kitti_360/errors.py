"""Errors of the KITTI-360 data layer, with the file, the line and the download package named."""

from __future__ import annotations

from pathlib import Path

# The official KITTI-360 download packages (https://www.cvlibs.net/datasets/kitti-360/download.php).
PACKAGE_CALIBRATION = "calibration (calibration.zip)"
PACKAGE_POSES = "vehicle poses (data_poses.zip)"
PACKAGE_PERSPECTIVE = "perspective images (data_2d_raw, download_2d_perspective.sh)"
PACKAGE_FISHEYE = "fisheye images (data_2d_raw, download_2d_fisheye.sh)"
PACKAGE_VELODYNE = "raw velodyne scans (data_3d_raw, download_3d_velodyne.sh)"


class Kitti360Error(RuntimeError):
    """Base class of the data layer's errors."""


class MissingFileError(Kitti360Error, FileNotFoundError):
    """A file or folder of the KITTI-360 layout is missing."""

    def __init__(self, path: Path | str, expected: str, package: str | None = None):
        self.path = Path(path)
        msg = f"missing {self.path}: expected {expected}"
        if package:
            msg += f"; it comes with the KITTI-360 download package '{package}'"
        super().__init__(msg)


class MalformedFileError(Kitti360Error, ValueError):
    """A calibration, pose or split file has a line that cannot be parsed."""

    def __init__(self, path: Path | str, line: int | None, problem: str):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {problem}")


def require_file(path: Path, expected: str, package: str | None = None) -> Path:
    """Return ``path`` if it is a file, otherwise raise :class:`MissingFileError`."""
    if not path.is_file():
        raise MissingFileError(path, expected, package)
    return path


def require_dir(path: Path, expected: str, package: str | None = None) -> Path:
    """Return ``path`` if it is a folder, otherwise raise :class:`MissingFileError`."""
    if not path.is_dir():
        raise MissingFileError(path, expected, package)
    return path

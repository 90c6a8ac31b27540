"""Errors of the KITTI Raw data layer, with the file, the line and the download archive named."""

from __future__ import annotations

from pathlib import Path


def calibration_archive(date: str) -> str:
    """The official archive a date's calibration files come from."""
    return f"calibration of {date} ({date}_calib.zip)"


def drive_archive(drive: str) -> str:
    """The official archive of a drive's synced and rectified images and velodyne scans."""
    return f"synced+rectified data of {drive} ({drive}.zip)"


class KittiRawError(RuntimeError):
    """Base class of the KITTI Raw data layer's errors."""


class MissingFileError(KittiRawError, FileNotFoundError):
    """A file or folder of the KITTI Raw layout is missing."""

    def __init__(self, path: Path | str, expected: str, archive: str | None = None):
        self.path = Path(path)
        msg = f"missing {self.path}: expected {expected}"
        if archive:
            msg += f"; it comes with the KITTI Raw download '{archive}'"
        super().__init__(msg)


class MalformedFileError(KittiRawError, ValueError):
    """A calibration, split or velodyne file that cannot be parsed."""

    def __init__(self, path: Path | str, line: int | None, problem: str):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {problem}")


def require_file(path: Path, expected: str, archive: str | None = None) -> Path:
    if not path.is_file():
        raise MissingFileError(path, expected, archive)
    return path


def require_dir(path: Path, expected: str, archive: str | None = None) -> Path:
    if not path.is_dir():
        raise MissingFileError(path, expected, archive)
    return path

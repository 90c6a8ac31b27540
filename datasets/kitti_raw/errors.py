"""Errors of the KITTI Raw data layer, with the file, the line and the download archive named."""

from __future__ import annotations

from pathlib import Path

from datasets import errors as _base


def calibration_archive(date: str) -> str:
    """The official archive a date's calibration files come from."""
    return f"calibration of {date} ({date}_calib.zip)"


def drive_archive(drive: str) -> str:
    """The official archive of a drive's synced and rectified images and velodyne scans."""
    return f"synced+rectified data of {drive} ({drive}.zip)"


class KittiRawError(_base.DataError):
    """Base class of the KITTI Raw data layer's errors."""


class MissingFileError(KittiRawError, _base.MissingFileError):
    """A file or folder of the KITTI Raw layout is missing."""

    source_kind = "KITTI Raw download"


class MalformedFileError(KittiRawError, _base.MalformedFileError):
    """A calibration, split or velodyne file that cannot be parsed."""


def require_file(path: Path, expected: str, archive: str | None = None) -> Path:
    """Return ``path`` if it is a file, otherwise raise :class:`MissingFileError`."""
    return _base.require_file(path, expected, archive, MissingFileError)


def require_dir(path: Path, expected: str, archive: str | None = None) -> Path:
    """Return ``path`` if it is a folder, otherwise raise :class:`MissingFileError`."""
    return _base.require_dir(path, expected, archive, MissingFileError)

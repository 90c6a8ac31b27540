"""Errors shared by the data layers (KITTI-360, KITTI Raw): the file, the line and where the file comes from named.

Each dataset subclasses :class:`MissingFileError` and :class:`MalformedFileError` under its own base error, naming
its download (``source``): ``missing <path>: expected <what>; it comes with the <source>``.
"""

from __future__ import annotations

from pathlib import Path

from bts.errors import UserError


class DataError(RuntimeError, UserError):
    """Base class of every data layer's errors."""


class MissingFileError(DataError, FileNotFoundError):
    """A file or folder of a dataset layout is missing."""

    source_kind = "download"  # how the message names where the file comes from

    def __init__(self, path: Path | str, expected: str, source: str | None = None):
        self.path = Path(path)
        msg = f"missing {self.path}: expected {expected}"
        if source:
            msg += f"; it comes with the {self.source_kind} '{source}'"
        super().__init__(msg)


class MalformedFileError(DataError, ValueError):
    """A calibration, pose, split or scan file that cannot be parsed (with the line, when there is one)."""

    def __init__(self, path: Path | str, line: int | None, problem: str):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {problem}")


def require_file(path: Path, expected: str, source: str | None = None,
                 error: type[MissingFileError] = MissingFileError) -> Path:
    """Return ``path`` if it is a file, otherwise raise ``error``."""
    if not path.is_file():
        raise error(path, expected, source)
    return path


def require_dir(path: Path, expected: str, source: str | None = None,
                error: type[MissingFileError] = MissingFileError) -> Path:
    """Return ``path`` if it is a folder, otherwise raise ``error``."""
    if not path.is_dir():
        raise error(path, expected, source)
    return path

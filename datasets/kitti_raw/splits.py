"""KITTI Raw split lists in the Eigen line format: ``<date>/<drive> <10-digit frame id> <l|r>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from datasets.kitti_raw.errors import MalformedFileError, require_file

SHIPPED_SPLITS = Path(__file__).parent / "splits"
EIGEN_TEST = SHIPPED_SPLITS / "eigen" / "test_files.txt"
LINE_FORMAT = "'<date>/<drive> <frame id> <l|r>', e.g. '2011_09_26/2011_09_26_drive_0002_sync 0000000069 l'"
_DATE = re.compile(r"^\d{4}_\d{2}_\d{2}$")
SIDE_CAMERAS = {"l": "image_02", "r": "image_03"}


@dataclass(frozen=True)
class RawSplitEntry:
    """One frame: a date folder, a drive folder inside it, a frame id and the side of the input camera."""

    date: str
    drive: str
    frame_id: int
    side: str
    line: int  # line number in the split file, for error messages

    @property
    def camera(self) -> str:
        """``image_02`` (left colour camera) for side ``l``, ``image_03`` for ``r``."""
        return SIDE_CAMERAS[self.side]

    @property
    def name(self) -> str:
        return f"{self.date}/{self.drive} {self.frame_id:010d} {self.side}"


def parse_line(path: Path, lineno: int, line: str) -> RawSplitEntry:
    parts = line.split()
    if len(parts) != 3:
        raise MalformedFileError(path, lineno, f"expected {LINE_FORMAT}, got {line!r}")
    folder, frame, side = parts
    date, sep, drive = folder.partition("/")
    if not sep or not drive or "/" in drive or not _DATE.match(date):
        raise MalformedFileError(path, lineno, f"the first field must be '<YYYY_MM_DD>/<drive folder>', got {folder!r}")
    if not frame.isdigit():
        raise MalformedFileError(path, lineno, f"frame id must be a non-negative integer, got {frame!r}")
    if side not in SIDE_CAMERAS:
        raise MalformedFileError(path, lineno, f"side must be 'l' or 'r', got {side!r}")
    return RawSplitEntry(date, drive, int(frame), side, lineno)


def read_raw_split(path: Path | str) -> list[RawSplitEntry]:
    """Parse a split file; a malformed line names the file, the line number and the expected format."""
    path = Path(path)
    require_file(path, f"a KITTI Raw split list with lines {LINE_FORMAT}")
    entries = [parse_line(path, i, line) for i, line in enumerate(path.read_text().splitlines(), start=1)
               if line.strip()]
    if not entries:
        raise MalformedFileError(path, None, f"the split is empty; expected lines {LINE_FORMAT}")
    return entries

"""Split files in the BTS line format: ``<sequence> <10-digit frame id> <l|r>`` (docs/method.md §7.4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets.kitti_360.errors import MalformedFileError, require_file


@dataclass(frozen=True)
class SplitEntry:
    """One datapoint: a sequence, a frame id and the side of the input camera (``l`` = image_00)."""

    sequence: str
    frame_id: int
    side: str
    line: int  # line number in the split file, for error messages


def read_split(path: Path | str) -> list[SplitEntry]:
    """Parse a split file; a malformed line names the file and the line number."""
    path = Path(path)
    require_file(path, "a split list with lines '<sequence> <frame id> <l|r>'")
    entries = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise MalformedFileError(path, lineno, f"expected '<sequence> <frame id> <l|r>', got {line!r}")
        sequence, frame, side = parts
        if not frame.isdigit():
            raise MalformedFileError(path, lineno, f"frame id must be a non-negative integer, got {frame!r}")
        if side not in ("l", "r"):
            raise MalformedFileError(path, lineno, f"side must be 'l' or 'r', got {side!r}")
        entries.append(SplitEntry(sequence, int(frame), side, lineno))
    if not entries:
        raise MalformedFileError(path, None, "the split is empty")
    return entries


def write_split(path: Path | str, entries: list[tuple[str, int, str]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{seq} {frame:010d} {side}\n" for seq, frame, side in entries))

"""On-disk cache of model-independent occupancy ground truth (docs/decisions.md §8).

One file per protocol and frame: ``<folder>/<protocol>/<key>.pt``. The key hashes every protocol parameter and the
identity of the data: the dataset root, the split file, the sequence and frame, and the path, size and content digest
of every file the ground truth is built from. Changing any of them (new scans, even rewritten with the same size and
mtime; another root; another grid) misses the cache; nothing stale is ever read. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import Tensor

from datasets.kitti_360.errors import MissingFileError
from evaluation.protocols import Frame, OccupancyProtocol


_DIGESTS: dict[tuple, str] = {}  # content digests of this process, by (path, size, mtime, ctime, inode)


def _identity(path: Path) -> list:
    """``[path, size, content digest]``: a file rewritten with the same size and mtime still misses the cache.

    The digest (BLAKE2b of the bytes) is computed once per file and process; neighbouring frames share most of their
    scans, so a frame of the ``bts`` protocol hashes about one new scan (~2 MB, a few milliseconds)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MissingFileError(path, "a file the occupancy ground truth is built from") from None
    memo = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    digest = _DIGESTS.get(memo)
    if digest is None:
        with path.open("rb") as f:
            digest = _DIGESTS[memo] = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    return [str(path), st.st_size, digest]


def cache_key(protocol: OccupancyProtocol, frame: Frame) -> str:
    ds = frame.dataset
    identity = {
        "params": protocol.describe(),
        "root": str(Path(ds.layout.root).resolve()),
        "split": _identity(Path(ds.split_file).resolve()),
        "sequence": frame.sequence,
        "frame_id": frame.frame_id,
        "files": [_identity(Path(p).resolve()) for p in protocol.ground_truth_files(frame)],
        "version": 2,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


class GroundTruthCache:
    """``get`` returns a frame's ground truth and whether it came from the cache; ``folder=None`` disables it."""

    def __init__(self, folder: Path | str | None):
        self.folder = Path(folder) if folder is not None else None
        self.hits = 0
        self.misses = 0

    def path(self, protocol: OccupancyProtocol, frame: Frame) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / protocol.name / f"{frame.sequence}_{frame.frame_id:010d}_{cache_key(protocol, frame)}.pt"

    def get(self, protocol: OccupancyProtocol, frame: Frame) -> tuple[dict[str, Tensor], bool]:
        path = self.path(protocol, frame)
        if path is not None and path.is_file():
            try:
                gt = torch.load(path, map_location="cpu", weights_only=True)
                self.hits += 1
                return gt, True
            except Exception:  # noqa: BLE001 - a damaged cache file is recomputed, never trusted
                path.unlink(missing_ok=True)
        gt = protocol.ground_truth(frame)
        self.misses += 1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            torch.save(gt, tmp)
            os.replace(tmp, path)
        return gt, False

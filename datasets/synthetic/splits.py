"""Train/val/test split lists of a synthetic tree, in the BTS line format ``<sequence> <%010d frame> <l|r>``.

- test: the last sequence, whole (l only);
- val: with three or more sequences the second-to-last, whole; with two, a window at the end of the first
  sequence that train then leaves out (l only);
- train: the remaining frames, each as ``l`` and ``r`` (the stereo roles mirrored, as in the real lists).

The last :data:`FRAMES_AHEAD` posed frames of every sequence are in no split, so that the fisheye frames at
``t + 10`` and ``t + 11`` (docs/method.md §3.1) exist for every datapoint.
"""

from __future__ import annotations

from pathlib import Path

from datasets.kitti_360.splits import write_split

FRAMES_AHEAD = 11
VAL_FRACTION = 0.2  # share of the usable frames of the train sequence used as val when there are two sequences


def usable_frames(posed_frame_ids: list[int]) -> list[int]:
    return list(posed_frame_ids[: max(0, len(posed_frame_ids) - FRAMES_AHEAD)])


def make_splits(posed: dict[str, list[int]]) -> dict[str, list[tuple[str, int, str]]]:
    """Split lists from the posed frame ids of every sequence (in sequence order)."""
    names = list(posed)
    if len(names) < 2:
        raise ValueError("the synthetic city needs at least 2 sequences: one is held out for test")
    usable = {s: usable_frames(posed[s]) for s in names}
    test = [(names[-1], f, "l") for f in usable[names[-1]]]
    if len(names) >= 3:
        train_seqs, val = names[:-2], [(names[-2], f, "l") for f in usable[names[-2]]]
        train_frames = {s: usable[s] for s in train_seqs}
    else:
        first = usable[names[0]]
        n_val = max(1, round(VAL_FRACTION * len(first)))
        val = [(names[0], f, "l") for f in first[len(first) - n_val:]]
        train_frames = {names[0]: first[: len(first) - n_val]}
    train = [(s, f, side) for s, frames in train_frames.items() for f in frames for side in ("l", "r")]
    splits = {"train": train, "val": val, "test": test}
    empty = [k for k, v in splits.items() if not v]
    if empty:
        raise ValueError(f"too few frames per sequence: the {empty} split(s) would be empty; use more frames "
                         f"(each sequence keeps its last {FRAMES_AHEAD} posed frames out of the splits)")
    return splits


def write_splits(root: Path, posed: dict[str, list[int]]) -> dict[str, int]:
    """Write ``splits/{train,val,test}_files.txt``; returns the line count of each."""
    splits = make_splits(posed)
    for name, entries in splits.items():
        write_split(root / "splits" / f"{name}_files.txt", entries)
    return {k: len(v) for k, v in splits.items()}

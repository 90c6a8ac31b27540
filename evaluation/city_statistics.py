"""What the occupancy protocol's slice asks on a synthetic city: ``python -m evaluation.city_statistics ROOT``.

For frames of a split (by default the *training* sequences, so that the city is never calibrated on the test
sequence), the papers' query slice (``configs/protocol/bts.yaml``: x in [-4, 4] m, z in [4, 20] m, 0.375 m below
the levelled camera) is scored against the exact scene, model-free:

- ``occupied``: share of the slice's points inside an object;
- ``occluded``: share of the points the input camera does not see (exact ray casting, as ``protocol=exact``);
- ``occupied_of_occluded``: share of the occluded points that are occupied. This is what the all-empty baseline
  gets wrong, so ``1 - occupied_of_occluded`` is its IE_acc. For a model with IE_rec < 1, IE_acc =
  p * occ_acc + (1 - p) * IE_rec with the occupied share p and occ_acc <= 1, so p >= (IE_acc - IE_rec) /
  (1 - IE_rec). The BTS project page's KITTI-360 table (IE_acc / IE_rec 0.82 / 0.47, and 0.73 / 0.16 without
  fisheyes) then puts p at 0.66 or more on KITTI-360 (its lidar-built truth; see docs/synthetic_city.md);
- ``occupied_left`` / ``occupied_right``: occupied share of the slice's left (x < 0) and right half, which
  says whether objects on both sides of the street are in reach of the slice;
- ``occupied_of_occluded_z<a>-<b>``: occupied share of the occluded points per depth band (z 4-8, ..., 16-20 m);
- on a tree with lidar scans, ``lidar_occupied_of_occluded``: the same share under the papers' lidar-built truth
  (``protocol=bts``: 20 aggregated scans, visible = free in the first scan or in front of the depth, here the exact
  depth, as a model with perfect depth would be scored). This is the figure comparable with KITTI-360's.

Pooled over all points of all evaluated frames, and as per-frame means. ``--layout SEED`` scores streets and
drives straight from the generator (no images rendered, seconds per sequence), for calibrating the city:
``python -m evaluation.city_statistics --layout 0 --sequences 0,1,2,3`` are the training sequences of the
reproduction's city (``preset=reproduce``: 6 sequences, the last one held out for test).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bts.results import write_json
from datasets.kitti_360 import FrameSelection, Kitti360Config, Kitti360Dataset
from evaluation.protocols import BtsProtocol, Frame, exact_truth

BANDS = ((4.0, 8.0), (8.0, 12.0), (12.0, 16.0), (16.0, 20.0))


@dataclass(frozen=True)
class SliceTruth:
    """The exact truth of one frame's slice: points in the levelled frame, occupancy and visibility."""

    points_level: torch.Tensor  # [P, 3]
    occupied: torch.Tensor  # [P] bool
    visible: torch.Tensor  # [P] bool: nothing lies between the camera and the point, and it is empty


def slice_truth(scene, world_from_cam: torch.Tensor, protocol: BtsProtocol | None = None) -> SliceTruth:
    """The protocol's slice (default: the papers' ``bts`` grid) in front of a camera with pose ``world_from_cam``
    (float64 4x4), scored exactly as ``protocol=exact`` scores it."""
    protocol = protocol or BtsProtocol()
    world_from_level = world_from_cam.double() @ protocol.cam_from_level
    occupied, visible = exact_truth(scene, world_from_level, protocol.points_level)
    return SliceTruth(protocol.points_level, occupied, visible)


def _share(mask: torch.Tensor, of: torch.Tensor | None = None) -> float:
    if of is None:
        return float(mask.float().mean())
    return float(mask[of].float().mean()) if of.any() else float("nan")


def frame_statistics(truth: SliceTruth) -> dict[str, float]:
    occluded = ~truth.visible
    x, z = truth.points_level[:, 0], truth.points_level[:, 2]
    out = {"occupied": _share(truth.occupied), "occluded": _share(occluded),
           "occupied_of_occluded": _share(truth.occupied, occluded),
           "occupied_left": _share(truth.occupied, x < 0), "occupied_right": _share(truth.occupied, x > 0)}
    for lo, hi in BANDS:
        band = occluded & (z >= lo) & (z < hi)
        out[f"occupied_of_occluded_z{lo:g}-{hi:g}"] = _share(truth.occupied, band)
    return out


def city_statistics(root: Path | str, split: str = "train", stride: int = 5, max_frames: int | None = None,
                    side: str = "l", lidar: bool = True) -> dict:
    """Statistics of the slice over every ``stride``-th datapoint (of one ``side``) of a split of a synthetic tree."""
    from datasets.synthetic import load_scene  # noqa: PLC0415

    root = Path(root)
    config = Kitti360Config(frames=FrameSelection(num_timesteps=1, stereo=False, fisheye=False))
    dataset = Kitti360Dataset(root, root / "splits" / f"{split}_files.txt", config)
    picked = [i for i, (_, _, s) in enumerate(dataset.datapoints) if s == side][::stride]
    if max_frames is not None:
        picked = picked[:max_frames]
    if not picked:
        raise ValueError(f"{root}: no datapoints of side {side!r} in the {split} split")
    protocol = BtsProtocol()
    scenes: dict[str, object] = {}
    per_frame, pooled = [], {"occupied": [], "visible": [], "points": []}
    lidar_occupied, lidar_hidden = [], []
    for i in picked:
        sequence, row, s = dataset.datapoints[i]
        if sequence not in scenes:
            scenes[sequence] = load_scene(root, sequence)
        camera = "image_00" if s == "l" else "image_01"
        world_from_cam = torch.from_numpy(dataset.poses[sequence].pose_to_world[row] @ dataset.cam_to_pose[camera])
        truth = slice_truth(scenes[sequence], world_from_cam, protocol)
        per_frame.append(frame_statistics(truth))
        if lidar:
            gt = protocol.ground_truth(Frame(dataset, i, dataset[i]))
            hidden = ~(gt["visible_first_scan"] | truth.visible)
            lidar_occupied.append(gt["occupied"][hidden])
            lidar_hidden.append(hidden)
            per_frame[-1]["lidar_occupied_of_occluded"] = _share(gt["occupied"], hidden)
        pooled["occupied"].append(truth.occupied)
        pooled["visible"].append(truth.visible)
        pooled["points"].append(truth.points_level)
    all_truth = SliceTruth(torch.cat(pooled["points"]), torch.cat(pooled["occupied"]), torch.cat(pooled["visible"]))
    keys = per_frame[0].keys()
    mean = {k: float(np.nanmean([f[k] for f in per_frame])) for k in keys}
    pooled_stats = frame_statistics(all_truth)
    if lidar_occupied:
        pooled_stats["lidar_occupied_of_occluded"] = _share(torch.cat(lidar_occupied))
    return {"root": str(root), "split": split, "frames": len(picked), "sequences": sorted(scenes),
            "pooled": pooled_stats, "per_frame_mean": mean}


def layout_statistics(seed: int, sequences: list[int], frames: int = 100, stride: int = 5) -> dict:
    """Statistics of the slice on the streets and drives the generator makes for sequence indices ``sequences`` of
    a tree with ``seed`` (``frames`` posed frames each, every ``stride``-th frame of the split's usable frames),
    without rendering anything."""
    from datasets.synthetic import rig  # noqa: PLC0415
    from datasets.synthetic.ground_truth import SyntheticScene  # noqa: PLC0415
    from datasets.synthetic.presets import UNPOSED_LEADING_FRAMES, get_preset  # noqa: PLC0415
    from datasets.synthetic.splits import FRAMES_AHEAD  # noqa: PLC0415
    from datasets.synthetic.writer import frame_ids, sequence_layout, sequence_rng  # noqa: PLC0415

    camera = rig.build_calibration(get_preset("tiny")).rect_cam_to_pose("image_00")  # the rig is size-independent
    protocol = BtsProtocol()
    per_frame, truths = [], []
    for index in sequences:
        ids, _ = frame_ids(frames)
        description, poses = sequence_layout(sequence_rng(seed, index), len(ids))  # the generator's street and drive
        scene = SyntheticScene.from_description(description)
        for row in range(UNPOSED_LEADING_FRAMES, len(ids) - FRAMES_AHEAD, stride):
            truth = slice_truth(scene, torch.from_numpy(poses[row] @ camera), protocol)
            per_frame.append(frame_statistics(truth))
            truths.append(truth)
    if not truths:
        raise ValueError(f"no usable frames: {frames} frames per sequence, {FRAMES_AHEAD} kept for frames ahead")
    pooled = SliceTruth(*(torch.cat([getattr(t, f) for t in truths]) for f in ("points_level", "occupied", "visible")))
    mean = {k: float(np.nanmean([f[k] for f in per_frame])) for k in per_frame[0]}
    return {"layout_seed": seed, "sequence_indices": list(sequences), "frames": len(truths),
            "pooled": frame_statistics(pooled), "per_frame_mean": mean}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, nargs="?",
                        help="a synthetic city tree (python -m datasets.synthetic --out ROOT)")
    parser.add_argument("--layout", type=int, metavar="SEED", default=None,
                        help="score the generator's streets for this seed instead of a tree (nothing rendered)")
    parser.add_argument("--sequences", default="0,1,2,3", help="with --layout: sequence indices (default 0,1,2,3)")
    parser.add_argument("--frames", type=int, default=100, help="with --layout: posed frames per sequence")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"),
                        help="the split whose frames are scored (default train: never calibrate on test)")
    parser.add_argument("--stride", type=int, default=5, help="every n-th datapoint")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--no-lidar", action="store_true", help="skip the lidar-built truth (faster)")
    parser.add_argument("--json", type=Path, default=None, help="also write the statistics to this file")
    args = parser.parse_args(argv)
    if args.layout is not None:
        indices = [int(v) for v in args.sequences.split(",")]
        stats = layout_statistics(args.layout, indices, args.frames, args.stride)
        print(f"{stats['frames']} frames of the generator's sequences {indices} (seed {args.layout}), nothing rendered")
    elif args.root is None:
        parser.error("give a tree ROOT or --layout SEED")
    else:
        stats = city_statistics(args.root, args.split, args.stride, args.max_frames, lidar=not args.no_lidar)
        print(f"{stats['frames']} frames of the {stats['split']} split ({', '.join(stats['sequences'])})")
    for name in stats["pooled"]:
        print(f"  {name:<34} pooled {stats['pooled'][name]:.3f}   per-frame mean {stats['per_frame_mean'][name]:.3f}")
    if args.json is not None:
        write_json(args.json, stats, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the resized image folders that the loader reads instead of resizing on the fly (docs/method.md §7.3).

    python -m datasets.kitti_360.preprocess --root $KITTI360_ROOT --split data/splits/kitti_360/train_files.txt

For every frame that a datapoint of the split loads, this writes ``image_00|01/data_<H>x<W>/<frame>.png``
(bilinear resize) and ``image_02|03/data_<H>x<W>_<rx>x<ry>/<frame>.png`` (the fisheye resampled to the virtual
pinhole). Existing files are kept. Values are rounded to 8 bits (the original truncated them).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.kitti_360.dataset import Kitti360Config, Kitti360Dataset
from datasets.kitti_360.frames import FrameSelection, View, select_views
from datasets.kitti_360.layout import resized_folder

log = logging.getLogger(__name__)


class _FrameJobs(torch.utils.data.Dataset):
    """The unique (sequence, camera, frame) images of a split that still lack a resized copy."""

    def __init__(self, dataset: Kitti360Dataset):
        self.dataset = dataset
        h, w = dataset.config.image_size
        jobs = {}
        for sequence, row, side in dataset.datapoints:
            poses = dataset.poses[sequence]
            for view in select_views(dataset.config.frames, row, side, len(poses)):
                frame_id = int(poses.frame_ids[view.row])
                folder = resized_folder(view.camera, h, w, dataset.config.fisheye_rotation)
                out = dataset.layout.image_file(sequence, view.camera, frame_id, folder)
                if not out.is_file():
                    jobs[out] = (sequence, view, frame_id)
        self.jobs = sorted(jobs.items(), key=lambda kv: str(kv[0]))

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> str:
        out, (sequence, view, frame_id) = self.jobs[i]
        image = self.dataset._load_pinhole(sequence, View(view.camera, view.row, view.offset), frame_id)
        array = (image.permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.png")
        Image.fromarray(array).save(tmp)
        tmp.replace(out)  # never leave a truncated PNG behind
        return str(out)


def preprocess(root: Path, split: Path, config: Kitti360Config, workers: int = 2) -> int:
    """Write the resized folders for ``split``; returns the number of images written."""
    dataset = Kitti360Dataset(root, split, replace(config, use_preprocessed=False, color_jitter=False,
                                                   fisheye_mode="pinhole", lidar_depth=False))
    jobs = _FrameJobs(dataset)
    loader = DataLoader(jobs, batch_size=None, num_workers=workers)
    for _ in tqdm(loader, total=len(jobs), desc="resizing", unit="img"):
        pass
    return len(jobs)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="KITTI-360 root folder")
    p.add_argument("--split", type=Path, required=True, help="split file whose frames to resize")
    p.add_argument("--size", type=int, nargs=2, default=(192, 640), metavar=("H", "W"))
    p.add_argument("--fisheye-rotation", type=float, nargs=2, default=(0.0, -15.0), metavar=("RX", "RY"))
    p.add_argument("--no-fisheye", action="store_true", help="resize the perspective images only")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = Kitti360Config(image_size=tuple(a.size), fisheye_rotation=tuple(a.fisheye_rotation),
                            frames=FrameSelection(fisheye=not a.no_fisheye))
    n = preprocess(a.root, a.split, config, a.workers)
    log.info("wrote %d resized images under %s", n, a.root / "data_2d_raw")


if __name__ == "__main__":
    main()

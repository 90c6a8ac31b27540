"""Data-loading throughput: samples per second of a ``DataLoader`` over the KITTI-360 loader.

    python -m datasets.benchmark                       # synthetic city, `default` preset, 192x640, 2 workers
    python -m datasets.benchmark --root $KITTI360_ROOT --split datasets/kitti_360/splits/seg/train_files.txt

Each sample is one datapoint with its 8 frames (stereo, two timesteps, fisheyes), with colour jitter, as in
training. The first batches are not timed (worker start-up).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from datasets.kitti_360 import FrameSelection, Kitti360Config, Kitti360Dataset


def measure(dataset: Kitti360Dataset, workers: int, batch_size: int, batches: int, warmup: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=False, generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=None, help="dataset root; default: the synthetic city")
    p.add_argument("--split", type=Path, default=None, help="split file; default: <root>/splits/train_files.txt")
    p.add_argument("--preset", default="default", help="synthetic city size preset when --root is not given")
    p.add_argument("--size", type=int, nargs=2, default=(192, 640), metavar=("H", "W"))
    p.add_argument("--fisheye-mode", default="pinhole", choices=("pinhole", "native"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--batches", type=int, default=25)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args(argv)
    root = a.root
    if root is None:
        from datasets.synthetic import PRESETS, ensure_synthetic_city

        preset = PRESETS[a.preset]
        root = ensure_synthetic_city(sequences=preset.sequences, frames=preset.frames, seed=0, size=a.preset)
    split = a.split or root / "splits" / "train_files.txt"
    config = Kitti360Config(image_size=tuple(a.size), frames=FrameSelection(), fisheye_mode=a.fisheye_mode,
                            color_jitter=True)
    dataset = Kitti360Dataset(root, split, config)
    rate = measure(dataset, a.workers, a.batch_size, a.batches, a.warmup)
    print(json.dumps({
        "samples_per_s": round(rate, 2), "frames_per_sample": 8, "size": list(a.size),
        "fisheye_mode": a.fisheye_mode, "workers": a.workers, "batch_size": a.batch_size, "root": str(root),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
    }))


if __name__ == "__main__":
    main()

"""Seconds per frame of the occupancy evaluation: ground truth cold, ground truth cached, model queries.

    python -m evaluation.benchmark [--frames 5] [--device cpu|cuda] [--threads 2] [--protocols bts exact]
                                   [--depth-render lookup full]

Runs on the synthetic city (the `small` tree of the demo, generated on first use) with an untrained ResNet-50 BTS at
192x640, the paper's configuration: the timing does not depend on the weights.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch

from bts.checkpoints.format import save_checkpoint
from bts.inference import load_model
from bts.models.factory import build_model
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
from datasets.kitti_360.frames import FrameSelection
from datasets.synthetic import ensure_synthetic_city
from evaluation.gt_cache import GroundTruthCache
from evaluation.occupancy import evaluate_occupancy
from evaluation.protocols import build_protocol

PAPER_MODEL = {"kind": "bts", "encoder": {"depth": 50, "pretrained": False, "on_missing_weights": "error",
                                          "decoder_widths": [32, 32, 64, 128, 256], "feature_dim": 64},
               "field": {"hidden_dim": 64, "num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--protocols", nargs="+", default=["bts", "exact"])
    p.add_argument("--size", nargs=2, type=int, default=[192, 640])
    p.add_argument("--sequences", type=int, default=3, help="of the small synthetic city (6: the reproduction's)")
    p.add_argument("--depth-render", nargs="+", default=["lookup", "full"], choices=["lookup", "full"],
                   help="the depth image for visibility: only the pixels the points read (the default), every pixel")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    root = ensure_synthetic_city(sequences=a.sequences, frames=100, seed=0, size="small")
    cfg = Kitti360Config(image_size=tuple(a.size), frames=FrameSelection(num_timesteps=1, stereo=False, fisheye=False))
    dataset = Kitti360Dataset(root, root / "splits" / "test_files.txt", cfg)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        ckpt = save_checkpoint(Path(tmp) / "bts.pt", model_kind="bts", config=PAPER_MODEL,
                               model=build_model(PAPER_MODEL, pretrained=False).state_dict())
        loaded = load_model(ckpt, device=a.device)
        indices = list(range(min(a.frames, len(dataset))))
        print(f"occupancy evaluation, ResNet-50 BTS at {a.size[0]}x{a.size[1]}, {a.device}, {a.threads} threads, "
              f"{len(indices)} frames of the synthetic city")
        for name in a.protocols:
            protocol = build_protocol(name)
            cache = GroundTruthCache(Path(tmp) / "cache")
            for mode in a.depth_render:
                cold = evaluate_occupancy(loaded, dataset, protocol, cache, indices=indices, progress=False,
                                          depth_render=mode)
                warm = evaluate_occupancy(loaded, dataset, protocol, cache, indices=indices, progress=False,
                                          depth_render=mode)
                c, w = cold.timing, warm.timing
                cold_gt = "(cached already)" if math.isnan(c["ground_truth_cold"]) else f"{c['ground_truth_cold']:.3f}"
                print(f"  {name:6s} depth_render={mode:6s} ground truth cold {cold_gt} s/frame, cached "
                      f"{w['ground_truth']:.4f} s/frame; model (depth + {len(protocol.points_level)} queries) "
                      f"{w['model']:.3f} s/frame; total with cache {w['ground_truth'] + w['model']:.3f} s/frame")


if __name__ == "__main__":
    main()

"""Time single-image inference and the frames of every video kind: ``python -m scripts.render_benchmark``.

    python -m scripts.render_benchmark [--size 192 640] [--depth 50] [--threads 2] [--frames 3]

Untrained weights (the timing does not depend on them) on a random image with the training camera. Prints a
Markdown table: encoding, depth rendering, and the time per frame of nvs, sequence (depth + BEV profile),
transition and export (the default 256 x 256 x 32 grid).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bts.config import register_configs
from bts.export import VoxelGridSpec, occupancy_grid
from bts.inference import LoadedModel
from bts.models.factory import build_model
from bts.rendering.renderer import RendererConfig
from bts.visualization.bev import BevGrid
from bts.visualization.frames import (
    FrameSettings,
    InputView,
    TransitionSettings,
    encode_view,
    nvs_frames,
    sequence_frames,
    transition_frames,
)
from bts.visualization.inputs import training_camera
from bts.visualization.render import render_view
from bts.visualization.trajectories import builtin_trajectory

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def untrained_model(depth: int) -> LoadedModel:
    """The paper's BTS model config (``-cn bts``, composed with its groups) with a ResNet of ``depth``, untrained."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        composed = compose(config_name="bts",
                           overrides=[f"model.encoder.depth={depth}", "model.encoder.pretrained=false"])
    cfg = OmegaConf.to_container(composed.model, resolve=True)
    model = build_model(cfg, pretrained=False).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(model, "bts", cfg, Path(f"untrained-resnet{depth}"))


def random_view(height: int, width: int) -> InputView:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(1, 3, height, width, generator=g) * 2 - 1
    return InputView("random", images, training_camera()[None], torch.eye(4)[None])


def per_frame(frames: Iterator, count: int) -> float:
    """Seconds per frame over ``count`` frames (the first frame, which also encodes, included)."""
    start = time.perf_counter()
    for _ in range(count):
        next(frames)
    return (time.perf_counter() - start) / count


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def benchmark(height: int, width: int, depth: int, frames: int, num_samples: int) -> list[tuple[str, float]]:
    model, view = untrained_model(depth), random_view(height, width)
    s = FrameSettings(RendererConfig(num_samples=num_samples))
    best_of(lambda: encode_view(model, view), 1)  # warm-up
    encode_s = best_of(lambda: encode_view(model, view), frames)
    density = encode_view(model, view)
    depth_s = best_of(lambda: render_view(density, view.intrinsics[0], view.cam_to_world[0], height, width,
                                          s.renderer), frames)
    poses = builtin_trajectory("orbit", frames)
    rows = [
        (f"encode (ResNet-{depth})", encode_s),
        (f"depth, {num_samples} samples per ray", depth_s),
        ("nvs frame (colour + depth)", per_frame(nvs_frames(model, view, poses, s), frames)),
        ("sequence frame (encode, depth, BEV 128x128x64)",
         per_frame(sequence_frames(model, iter([view] * frames), s, BevGrid(resolution=(128, 128))), frames)),
        ("transition frame (mean over the path)",
         per_frame(transition_frames(model, view, s, TransitionSettings(frames, 0)), frames)),
        ("export (encode + 256x256x32 grid)", best_of(
            lambda: occupancy_grid(model.density_fn(model.encode(view.images[None], view.intrinsics[None],
                                                                 view.cam_to_world[None])),
                                   VoxelGridSpec(), view.level_to_world(5.0), 0.5), 1)),
    ]
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=2, default=(192, 640), metavar=("H", "W"))
    p.add_argument("--depth", type=int, default=50, help="ResNet depth of the encoder")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=3, help="frames (and repeats) per measurement")
    p.add_argument("--num-samples", type=int, default=64)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = benchmark(a.size[0], a.size[1], a.depth, a.frames, a.num_samples)
    h, w = a.size
    print(f"| {h}x{w}, ResNet-{a.depth}, {a.num_samples} samples, CPU, {a.threads} threads "
          f"({platform.machine()}, torch {torch.__version__}) | seconds |")
    print("|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()

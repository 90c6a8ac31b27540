"""Depth evaluation: ``python evaluation/depth.py checkpoint=PATH [data=...] [gt=lidar|exact] [median_scaling=true]``.

Rebuilds the model from the checkpoint (BTS, KDBTS's student, a single-view export, or MVBTS with ``views=<subset>``),
renders the z-depth of every pixel of each test frame's input view, and scores it per image against one of three
ground truths (docs/method.md §8.2), averaging over images:

- ``kitti360_lidar``: KITTI-360 (or the synthetic city) with the velodyne scan of the frame projected at the input
  size (the depth of training validation), ``gt=lidar``;
- ``exact`` (synthetic city only): the scene's exact z-depth at the tree's image size, ``gt=exact``;
- ``kitti_raw_eigen``: KITTI Raw Eigen test frames (``data=kitti_raw``) with their raw velodyne ground truth at
  the image's own size, Eigen (Garg) crop.

Prediction: midpoint samples (``jitter=true``: jittered with ``seed``, the original), nearest upsampling to the
ground truth's size, optional per-image median scaling, clamp to ``[min_depth, max_depth]``. Prints a table naming
protocol, model and data; writes ``results.json`` and ``per_frame.csv`` into the output folder, and with
``figures=[i, ...]`` one figure per listed frame (image, ground truth, prediction, error) into ``figures/``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hydra  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from jaxtyping import Bool, Float  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bts.cli import friendly_errors  # noqa: E402
from bts.inference import LoadedModel  # noqa: E402
from bts.rendering.renderer import RendererConfig, render_depth  # noqa: E402
from bts.runs import register_resolvers  # noqa: E402
from evaluation.reporting import mean_over_frames, metrics_table, write_results, written  # noqa: E402
from evaluation.selection import (data_config, frame_indices, frame_selection, input_size, iterate, load,  # noqa: E402
                                  model_views, resolved_data, seeded, with_frames)
from evaluation.metrics import DEPTH_METRICS, depth_metrics, median_scale_ratio  # noqa: E402

log = logging.getLogger("evaluation.depth")

GROUND_TRUTHS = ("lidar", "exact")


@dataclass
class DepthData:
    """What a depth protocol evaluates on: the frames, their ground truth and their names."""

    protocol: str
    dataset: Dataset
    ground_truth: Callable[[int, dict[str, Any]], Tensor]  # (index, item) -> [H, W], <= 0 / inf / NaN: none
    name_of: Callable[[int, dict[str, Any]], str]
    crop: Callable[[int, int], Tensor] | None = None  # (H, W) -> bool mask of the evaluated region
    info: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def predict_depth(loaded: LoadedModel, item: dict[str, Any], renderer: RendererConfig, *, jitter: bool = False,
                  seed: int = 0, rays_per_chunk: int = 4096) -> Float[Tensor, "H W"]:
    """Rendered z-depth of every pixel of the item's input view (view 0) at the item's image size, on the CPU (rays
    cast the model's way: :attr:`~bts.inference.LoadedModel.ray_positions`)."""
    images, intr, c2w = item["images"][None], item["intrinsics"][None], item["cam_to_world"][None]
    encoded = loaded.encode(images, intr, c2w)
    dev = loaded.device
    h, w = images.shape[-2:]
    with seeded(seed, dev):
        depth = render_depth(loaded.density_fn(encoded), intr[:, 0].to(dev), c2w[:, 0].to(dev), h, w, renderer,
                             jitter=jitter, rays_per_chunk=rays_per_chunk, ray_positions=loaded.ray_positions)
    return depth[0].cpu()


def upsample_nearest(depth: Float[Tensor, "h w"], size: tuple[int, int]) -> Float[Tensor, "H W"]:
    """Nearest-neighbour resize (``torch.nn.functional.interpolate``'s ``nearest``, as the original)."""
    if tuple(depth.shape) == tuple(size):
        return depth
    return F.interpolate(depth[None, None], size=tuple(size), mode="nearest")[0, 0]


def evaluate_frame(pred: Float[Tensor, "h w"], gt: Float[Tensor, "H W"], crop: Bool[Tensor, "H W"] | None = None,
                   *, min_depth: float = 1e-3, max_depth: float = 80.0,
                   median_scaling: bool = False) -> dict[str, float]:
    """Depth metrics of one image: the prediction upsampled (nearest) to the ground truth's size, pixels outside
    ``crop`` or without ground truth ignored; also ``valid_pixels`` and the median ``scale`` applied (1 without)."""
    pred = upsample_nearest(pred, tuple(gt.shape))
    gt = torch.nan_to_num(gt.float(), nan=0.0)
    if crop is not None:
        gt = torch.where(crop, gt, torch.zeros_like(gt))
    metrics = depth_metrics(pred, gt, min_depth, max_depth, median_scaling=median_scaling)
    valid = int(((gt > min_depth) & (gt < max_depth)).sum())
    scale = median_scale_ratio(pred, gt, min_depth, max_depth) if median_scaling else 1.0
    return {**metrics, "valid_pixels": valid, "scale": scale}


def kitti360_data(cfg: DictConfig, data: DictConfig, size: tuple[int, int], loaded: LoadedModel) -> DepthData:
    """The test split of KITTI-360 (or the synthetic city) with lidar or exact ground truth."""
    from datasets.factory import build_dataset  # noqa: PLC0415 - only for this data

    if cfg.gt not in GROUND_TRUTHS:
        raise ValueError(f"gt must be one of {GROUND_TRUTHS}, got {cfg.gt!r}")
    data = with_frames(data, frame_selection(model_views(loaded), need_stereo=False), size)
    dataset = build_dataset(resolved_data(cfg, data), cfg.paths, cfg.split, lidar_depth=cfg.gt == "lidar")
    root = Path(dataset.layout.root)

    def name_of(index: int, item: dict[str, Any]) -> str:
        return f"{dataset.datapoints[index][0]}/{int(item['frame_ids'][0]):010d}"

    info = {"name": data.name, "root": str(root), "split": cfg.split, "image_size": list(size)}
    if cfg.gt == "lidar":
        return DepthData("kitti360_lidar", dataset, lambda i, item: item["lidar_depth"][0], name_of, info=info)
    if not (root / "ground_truth").is_dir():
        raise ValueError(f"gt=exact needs the synthetic city's exact depth, but {root / 'ground_truth'} does not "
                         "exist (only the synthetic city has it; use gt=lidar for KITTI-360)")
    from datasets.synthetic import load_scene  # noqa: PLC0415

    scenes: dict[str, Any] = {}

    def exact(index: int, item: dict[str, Any]) -> Tensor:
        sequence = dataset.datapoints[index][0]
        if sequence not in scenes:
            scenes[sequence] = load_scene(root, sequence)
        return scenes[sequence].depth(f"image_0{int(item['cameras'][0])}", int(item["frame_ids"][0]))

    return DepthData("exact", dataset, exact, name_of, info=info)


def kitti_raw_data(cfg: DictConfig, data: DictConfig, size: tuple[int, int], loaded: LoadedModel) -> DepthData:
    """The KITTI Raw Eigen test frames with raw velodyne ground truth and the Eigen crop."""
    from datasets.kitti_raw import EIGEN_TEST, KittiRawConfig, KittiRawDataset, eigen_crop_mask  # noqa: PLC0415

    if not loaded.single_view:
        raise ValueError(f"KITTI Raw items have one input view; {loaded.description} needs more (use views=mono)")
    if cfg.gt != "lidar":
        raise ValueError(f"gt={cfg.gt} is not available on KITTI Raw: its ground truth is the velodyne scan (gt=lidar)")
    if data.root is None:
        raise ValueError("data=kitti_raw needs the KITTI Raw root: set KITTI_RAW_ROOT or data.root=<folder with "
                         "<date>/calib_cam_to_cam.txt and <date>/<drive>/ folders>")
    if data.crop not in ("eigen", "none"):
        raise ValueError(f"data.crop must be 'eigen' or 'none', got {data.crop!r}")
    split = Path(data.split_file) if data.split_file is not None else EIGEN_TEST
    dataset = KittiRawDataset(data.root, split, KittiRawConfig(image_size=size, image_ext=data.image_ext))

    def crop(h: int, w: int) -> Tensor:
        return torch.from_numpy(eigen_crop_mask(h, w))

    def name_of(index: int, item: dict[str, Any]) -> str:
        e = dataset.entries[index]
        return f"{e.date}/{e.drive}/{e.frame_id:010d}"

    return DepthData("kitti_raw_eigen", dataset, lambda i, item: item["depth_gt"], name_of,
                     crop if data.crop == "eigen" else None,
                     {"name": "kitti_raw", "root": str(data.root), "split": str(split), "image_size": list(size),
                      "crop": data.crop})


def evaluate_depth(loaded: LoadedModel, source: DepthData, renderer: RendererConfig, indices: list[int], *,
                   min_depth: float, max_depth: float, median_scaling: bool, jitter: bool, seed: int,
                   rays_per_chunk: int, num_workers: int = 0, progress: bool = True,
                   figures: tuple[int, ...] = (), figure_dir: Path | None = None) -> list[dict[str, Any]]:
    """Per-frame rows: ``index``, ``frame``, the depth metrics, ``valid_pixels`` and ``scale``; for the dataset
    indices in ``figures`` also ``figure_dir/<sequence>_<frame>.png`` (:func:`evaluation.figures.depth_figure`)."""
    missing = sorted(set(figures) - set(indices))
    if missing:
        raise ValueError(f"figures={list(missing)}: not among the evaluated frames (the dataset indices chosen by "
                         f"frames / frame_stride / max_frames, {len(indices)} of them)")
    rows = []
    for index, item in tqdm(iterate(source.dataset, indices, num_workers), total=len(indices),
                            desc=f"depth ({source.protocol})", unit="frame", disable=not progress):
        pred = predict_depth(loaded, item, renderer, jitter=jitter, seed=seed, rays_per_chunk=rays_per_chunk)
        gt = source.ground_truth(index, item)
        crop = source.crop(*gt.shape) if source.crop is not None else None
        metrics = evaluate_frame(pred, gt, crop, min_depth=min_depth, max_depth=max_depth,
                                 median_scaling=median_scaling)
        rows.append({"index": index, "frame": source.name_of(index, item), **metrics})
        if index in figures and figure_dir is not None:
            from evaluation.figures import depth_figure  # noqa: PLC0415

            shown = upsample_nearest(pred, tuple(gt.shape)).clamp(min_depth, max_depth)
            image = F.interpolate(item["images"][0][None], size=tuple(gt.shape), mode="bilinear",
                                  align_corners=False)[0]
            name = rows[-1]["frame"]  # <sequence>/<frame>: named as the occupancy figures, <sequence>_<frame>.png
            depth_figure(image, shown, gt, figure_dir / f"{name.replace('/', '_')}.png",
                         title=f"{name} ({source.protocol} ground truth, abs_rel {metrics['abs_rel']:.3f})")
    return rows


def summarise(cfg: DictConfig, loaded: LoadedModel, source: DepthData, renderer: RendererConfig,
              rows: list[dict[str, Any]], data_from: str) -> dict[str, Any]:
    without = sum(1 for r in rows if r["valid_pixels"] == 0)
    summary: dict[str, Any] = {
        "protocol": {"name": source.protocol, "min_depth": cfg.min_depth, "max_depth": cfg.max_depth,
                     "median_scaling": cfg.median_scaling, "upsampling": "nearest", "jitter": cfg.jitter,
                     "seed": cfg.seed, "crop": source.info.get("crop", "none"), "num_samples": renderer.num_samples,
                     "near": renderer.near, "far": renderer.far},
        "model": loaded.record(),
        "data": {**source.info, "data_from": data_from},
        "metrics": mean_over_frames(rows, DEPTH_METRICS),
        "frames": len(rows),
        "frames_without_ground_truth": without,
    }
    if cfg.median_scaling:
        scales = [r["scale"] for r in rows if not math.isnan(r["scale"])]
        mean = sum(scales) / len(scales) if scales else math.nan
        std = math.sqrt(sum((s - mean) ** 2 for s in scales) / len(scales)) if scales else math.nan
        summary["median_scale"] = {"mean": mean, "std": std}
    return summary


def table(summary: dict[str, Any]) -> str:
    p, m, d = summary["protocol"], summary["model"], summary["data"]
    title = (f"depth | protocol={p['name']} | model={m['description']} ({m['checkpoint']}) | data={d['name']} "
             f"{Path(str(d['split'])).name}, {summary['frames']} frames | median_scaling="
             f"{'on' if p['median_scaling'] else 'off'}")
    lines = [metrics_table(title, summary["metrics"], DEPTH_METRICS)]
    if summary["frames_without_ground_truth"]:
        lines.append(f"{summary['frames_without_ground_truth']} frame(s) had no valid ground truth pixel (skipped)")
    if "median_scale" in summary:
        s = summary["median_scale"]
        lines.append(f"median scale: mean {s['mean']:.4f}, std {s['std']:.4f}")
    return "\n".join(lines)


def run(cfg: DictConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Evaluate, write ``results.json`` and ``per_frame.csv`` into ``out_dir`` and return the summary."""
    loaded = load(cfg)
    data, data_from = data_config(cfg, loaded)
    size = input_size(cfg.image_size, loaded, data)
    build = kitti_raw_data if data.name == "kitti_raw" else kitti360_data
    source = build(cfg, data, size, loaded)
    overrides = {k: cfg[k] for k in ("num_samples", "chunk_points") if cfg[k] is not None}
    renderer = loaded.renderer_config(**overrides)
    indices = frame_indices(len(source.dataset), cfg.frames, cfg.max_frames, cfg.frame_stride)
    log.info("depth: %s on %s (data from %s), %d frames", loaded.description, source.protocol, data_from,
             len(indices))
    rows = evaluate_depth(loaded, source, renderer, indices, min_depth=cfg.min_depth, max_depth=cfg.max_depth,
                          median_scaling=cfg.median_scaling, jitter=cfg.jitter, seed=cfg.seed,
                          rays_per_chunk=cfg.rays_per_chunk, num_workers=data.num_workers, progress=progress,
                          figures=tuple(cfg.figures), figure_dir=out_dir / "figures")
    summary = summarise(cfg, loaded, source, renderer, rows, data_from)
    write_results(out_dir, summary, rows, ["index", "frame", *DEPTH_METRICS, "valid_pixels", "scale"])
    return summary


register_resolvers()  # ${run_dir:...} of the config's output folder


@hydra.main(config_path="../configs", config_name="eval_depth", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = run(cfg, out_dir)
    print(table(summary))
    print(written(out_dir))


if __name__ == "__main__":
    main()

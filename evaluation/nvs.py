"""Novel-view synthesis: ``python evaluation/nvs.py checkpoint=PATH [data=...] [views=...]`` (docs/method.md §8.3).

For each test frame, the model encodes its input view (view 0; an MVBTS model its view subset), renders the stereo
partner's image at time t (for KITTI-360 items ``image_01`` when the input is ``image_00``; for KITTI Raw
``image_03``) with colour sampled only from the input image, and compares it with the real image after cropping 5%
on every side: PSNR and SSIM (skimage's defaults: 7x7 uniform window, data range 1, mean over channels) and LPIPS
(AlexNet, inputs in [0, 1] with ``normalize=True``) when its backbone weights are available, otherwise ``null`` with
the reason. Rendering is at the model's input size. Prints a table; writes ``results.json`` and ``per_frame.csv``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hydra  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from jaxtyping import Float  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bts.cli import friendly_errors  # noqa: E402
from bts.inference import LoadedModel  # noqa: E402
from bts.rendering.colour import sample_colours_pinhole  # noqa: E402
from bts.rendering.rays import Rays, image_rays  # noqa: E402
from bts.rendering.renderer import RendererConfig, render_colours, render_rays  # noqa: E402
from bts.runs import register_resolvers  # noqa: E402
from evaluation.reporting import mean_over_frames, metrics_table, write_results, written  # noqa: E402
from evaluation.selection import (data_config, frame_indices, frame_selection, input_size, iterate, load,  # noqa: E402
                                  model_views, resolved_data, seeded, select_device, stereo_partner, with_frames)
from evaluation.metrics import psnr, ssim  # noqa: E402
from evaluation.perceptual import Lpips, build_lpips  # noqa: E402

log = logging.getLogger("evaluation.nvs")

NVS_METRICS = ("psnr", "ssim", "lpips")


@torch.no_grad()
def render_novel_view(loaded: LoadedModel, item: dict[str, Any], target: int, renderer: RendererConfig, *,
                      jitter: bool = False, seed: int = 0, rays_per_chunk: int = 4096) -> Float[Tensor, "3 H W"]:
    """The image of view ``target`` rendered from the model's density with colours read from view 0 only, in
    ``[0, 1]`` at the item's image size, on the CPU; rays cast the model's way (through pixel centres, or the
    original's positions for an imported model)."""
    images, intr, c2w = item["images"][None], item["intrinsics"][None], item["cam_to_world"][None]
    encoded = loaded.encode(images, intr, c2w)
    density_fn = loaded.density_fn(encoded)
    dev = loaded.device
    h, w = images.shape[-2:]
    source = ((images[:, :1] + 1.0) / 2.0).to(dev)
    source_intr, source_c2w = intr[:, :1].to(dev), c2w[:, :1].to(dev)
    rays = image_rays(intr[:, target].to(dev), c2w[:, target].to(dev), h, w, ray_positions=loaded.ray_positions)
    colours = []
    with seeded(seed, dev):
        for start in range(0, rays.origins.shape[1], rays_per_chunk):
            part = slice(start, start + rays_per_chunk)
            render = render_rays(density_fn, Rays(rays.origins[:, part], rays.directions[:, part],
                                                  rays.valid[:, part]), renderer, jitter=jitter)
            points = render.points.reshape(1, -1, 3)
            sampled = sample_colours_pinhole(points, source, source_intr, source_c2w)
            colours.append(render_colours(render, sampled.colours)[:, 0])
    return torch.cat(colours, dim=1)[0].reshape(h, w, 3).permute(2, 0, 1).clamp(0.0, 1.0).cpu()


def crop_border(image: Float[Tensor, "C H W"], fraction: float) -> Float[Tensor, "C h w"]:
    """Drop ``int(fraction * H)`` rows at the top and at the bottom and ``int(fraction * W)`` columns on each side."""
    if not 0.0 <= fraction < 0.5:
        raise ValueError(f"crop must be in [0, 0.5), got {fraction}")
    h, w = image.shape[-2:]
    dy, dx = int(fraction * h), int(fraction * w)
    return image[..., dy:h - dy, dx:w - dx]


def image_metrics(pred: Float[Tensor, "3 H W"], target: Float[Tensor, "3 H W"], lpips: Lpips,
                  crop: float = 0.05) -> dict[str, float | None]:
    """PSNR, SSIM and LPIPS (``None`` when unavailable) of a rendered image against the real one, both in [0, 1],
    after the border crop."""
    p, t = crop_border(pred, crop), crop_border(target, crop)
    return {"psnr": psnr(p, t), "ssim": ssim(p, t), "lpips": lpips(p, t)}


def nvs_dataset(cfg: DictConfig, data: DictConfig, size: tuple[int, int], loaded: LoadedModel) -> tuple[Dataset, Any]:
    """The test frames with the stereo partner loaded, and ``(index, item) -> frame name``."""
    if data.name == "kitti_raw":
        from datasets.kitti_raw import EIGEN_TEST, KittiRawConfig, KittiRawDataset  # noqa: PLC0415

        if not loaded.single_view:
            raise ValueError(f"KITTI Raw items have one input view; {loaded.description} needs more (use views=mono)")
        if data.root is None:
            raise ValueError("data=kitti_raw needs the KITTI Raw root: set KITTI_RAW_ROOT or data.root=<folder>")
        split = Path(data.split_file) if data.split_file is not None else EIGEN_TEST
        raw = KittiRawDataset(data.root, split, KittiRawConfig(image_size=size, image_ext=data.image_ext, stereo=True))
        e = raw.entries
        return raw, lambda i, item: f"{e[i].date}/{e[i].drive}/{e[i].frame_id:010d}"
    from datasets.factory import build_dataset  # noqa: PLC0415

    data = with_frames(data, frame_selection(model_views(loaded), need_stereo=True), size)
    dataset = build_dataset(resolved_data(cfg, data), cfg.paths, cfg.split)
    return dataset, lambda i, item: f"{dataset.datapoints[i][0]}/{int(item['frame_ids'][0]):010d}"


def evaluate_nvs(loaded: LoadedModel, dataset: Dataset, name_of, renderer: RendererConfig, indices: list[int],
                 lpips: Lpips, *, crop: float, jitter: bool, seed: int, rays_per_chunk: int, num_workers: int = 0,
                 progress: bool = True) -> list[dict[str, Any]]:
    """Per-frame rows: ``index``, ``frame``, ``target_view`` and the metrics."""
    rows = []
    warned = False
    for index, item in tqdm(iterate(dataset, indices, num_workers), total=len(indices), desc="novel views",
                            unit="frame", disable=not progress):
        target = stereo_partner(item["cameras"], item["frame_ids"])
        if not warned and target in loaded.encoder_views(item["images"].shape[0]):
            log.warning("the target view %d is one of the encoded views of %s: it is not a novel view", target,
                        loaded.description)
            warned = True
        pred = render_novel_view(loaded, item, target, renderer, jitter=jitter, seed=seed,
                                 rays_per_chunk=rays_per_chunk)
        real = (item["images"][target] + 1.0) / 2.0
        rows.append({"index": index, "frame": name_of(index, item), "target_view": target,
                     **image_metrics(pred, real, lpips, crop)})
    return rows


def table(summary: dict[str, Any]) -> str:
    m, d = summary["model"], summary["data"]
    title = (f"novel views | protocol={summary['protocol']['name']} | model={m['description']} ({m['checkpoint']}) | "
             f"data={d['name']} {Path(str(d['split'])).name}, {summary['frames']} frames")
    lines = [metrics_table(title, summary["metrics"], NVS_METRICS)]
    if summary["lpips_reason"]:
        lines.append(summary["lpips_reason"])
    return "\n".join(lines)


def run(cfg: DictConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Evaluate, write ``results.json`` and ``per_frame.csv`` into ``out_dir`` and return the summary."""
    device = select_device(cfg.device)
    lpips = build_lpips(cfg.lpips_alexnet_weights, device, enabled=cfg.lpips)
    if lpips.reason:
        log.warning("%s", lpips.reason)
    loaded = load(cfg)
    data, data_from = data_config(cfg, loaded)
    size = input_size(cfg.image_size, loaded, data)
    dataset, name_of = nvs_dataset(cfg, data, size, loaded)
    overrides = {k: cfg[k] for k in ("num_samples", "chunk_points") if cfg[k] is not None}
    renderer = loaded.renderer_config(**overrides)
    indices = frame_indices(len(dataset), cfg.frames, cfg.max_frames, cfg.frame_stride)
    rows = evaluate_nvs(loaded, dataset, name_of, renderer, indices, lpips, crop=cfg.crop, jitter=cfg.jitter,
                        seed=cfg.seed, rays_per_chunk=cfg.rays_per_chunk, num_workers=data.num_workers,
                        progress=progress)
    summary = {
        "protocol": {"name": "stereo_nvs", "target": "stereo partner at t", "colour_from": "input view only",
                     "crop": cfg.crop, "ssim": "7x7 uniform window, sample covariance, K1 0.01, K2 0.03, range 1",
                     "psnr_data_range": 1.0, "lpips_net": "alex", "jitter": cfg.jitter, "seed": cfg.seed,
                     "num_samples": renderer.num_samples, "near": renderer.near, "far": renderer.far},
        "model": loaded.record(),
        "data": {"name": data.name, "root": str(getattr(dataset, "root", None) or dataset.layout.root),
                 "split": cfg.split if data.name != "kitti_raw" else str(dataset.split_file),
                 "image_size": list(size), "data_from": data_from},
        "metrics": mean_over_frames(rows, NVS_METRICS),
        "lpips_reason": lpips.reason,
        "lpips_weights": str(lpips.weights) if lpips.weights else None,
        "frames": len(rows),
    }
    write_results(out_dir, summary, rows, ["index", "frame", "target_view", *NVS_METRICS])
    return summary


register_resolvers()  # ${run_dir:...} of the config's output folder


@hydra.main(config_path="../configs", config_name="eval_nvs", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = run(cfg, out_dir)
    print(table(summary))
    print(written(out_dir))


if __name__ == "__main__":
    main()

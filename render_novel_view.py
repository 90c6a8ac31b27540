"""Videos, figures and exports of the predicted scene: ``python render_novel_view.py checkpoint=PATH [mode=...]``.

Modes (``configs/render.yaml`` lists every option):

- ``sequence`` (default): every frame of a sequence: input frame over its depth, bird's-eye profile on the right;
- ``nvs``: novel views (colour from the input frame only, and depth) along a built-in or file trajectory;
- ``transition``: the depth of a camera moving from the front view to a top-down view;
- ``figure``: one PNG of input, depth and profile (``image=photo.png`` for an own image);
- ``export``: the predicted occupancy as a point cloud (PLY), voxel grid (NumPy, SemanticKITTI .bin) and mesh (OBJ).

Files go to ``<output.dir>/<mode>/<checkpoint>/``; the written path is printed at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hydra
import imageio.v3 as iio
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from bts.cli import friendly_errors
from bts.export import VoxelGridSpec, export_grid, occupancy_grid
from bts.inference import LoadedModel
from bts.runs import register_resolvers
from bts.visualization.bev import BevGrid
from bts.visualization.frames import (
    FrameSettings,
    InputView,
    TransitionSettings,
    depth_and_profile,
    nvs_frames,
    sequence_frames,
    transition_frames,
)
from bts.visualization.inputs import load_user_image
from bts.visualization.trajectories import BUILTIN, resolve_trajectory
from bts.visualization.video import FrameWriter, to_uint8
from datasets.factory import build_dataset
from evaluation.selection import data_config, input_size, load, resolved_data

log = logging.getLogger("render")


def checkpoint_name(path: Path) -> str:
    """``<config>_<run>_<file stem>`` for a checkpoint inside a training run folder, else the file stem."""
    p = Path(path).resolve()
    if p.parent.name == "checkpoints":
        run = p.parent.parent
        return f"{run.parent.name}_{run.name}_{p.stem}"
    return p.stem


def model_size(cfg: DictConfig, loaded: LoadedModel) -> tuple[int, int]:
    """The (H, W) the model sees: ``image_size``, else the training run's, else the data's (as the evaluations)."""
    return input_size(cfg.image_size, loaded, data_config(cfg, loaded)[0])


def input_data(cfg: DictConfig, loaded: LoadedModel) -> dict[str, Any]:
    """The data of the input views, chosen as in the evaluations (``data=`` of the command line, else the training
    run's, else the KITTI-360 defaults; :func:`evaluation.selection.data_config`), at the model's input size and
    reduced to the input view for single-view models. Data named on the command line keep their own image size
    (``data.image_size=``), unless ``image_size`` is set."""
    data, source = data_config(cfg, loaded)
    log.info("input data from %s: %s", source, data.get("name"))
    out: dict[str, Any] = OmegaConf.to_container(resolved_data(cfg, data), resolve=True)  # type: ignore[assignment]
    if cfg.image_size is not None or source != "command line":
        out["image_size"] = list(input_size(cfg.image_size, loaded, data))
    if loaded.single_view:
        out["frames"] = {**out["frames"], "num_timesteps": 1, "stereo": False, "fisheye": False}
    return out


def dataset_views(cfg: DictConfig, loaded: LoadedModel, count: int | None, step: int = 1
                  ) -> tuple[list[str], Iterator[InputView]]:
    """``count`` datapoints of one sequence of the split, from ``input.index`` on: their names
    (``<sequence>_<frame id>``) and the input views (loaded lazily)."""
    dataset = build_dataset(input_data(cfg, loaded), cfg.paths, cfg.input.split)
    rows = sorted((seq, row, i) for i, (seq, row, side) in enumerate(dataset.datapoints) if side == "l")
    sequences = list(dict.fromkeys(seq for seq, _, _ in rows))
    sequence = cfg.input.sequence or sequences[0]
    if sequence not in sequences:
        raise ValueError(f"input.sequence={sequence!r} is not in the {cfg.input.split} split; it has {sequences}")
    in_sequence = [(row, i) for seq, row, i in rows if seq == sequence]
    if not 0 <= cfg.input.index < len(in_sequence):
        raise ValueError(f"input.index={cfg.input.index} is outside the {len(in_sequence)} frames of {sequence} in "
                         f"the {cfg.input.split} split")
    if step < 1 or (count is not None and count < 1):
        raise ValueError(f"sequence.count and sequence.step must be >= 1, got {count} and {step}")
    chosen = in_sequence[cfg.input.index:][::step][:count]
    frame_ids = dataset.poses[sequence].frame_ids
    names = [f"{sequence}_{int(frame_ids[row]):010d}" for row, _ in chosen]

    def views() -> Iterator[InputView]:
        for name, (_, i) in zip(names, chosen):
            item = dataset[i]
            view = InputView(name, item["images"], item["intrinsics"], item["cam_to_world"], item["world_from_view0"])
            yield view.to(loaded.device)

    return names, views()


def single_view(cfg: DictConfig, loaded: LoadedModel) -> InputView:
    """The input of the one-view modes: an own image, or the chosen datapoint."""
    if cfg.image is None:
        return next(dataset_views(cfg, loaded, 1)[1])
    c = cfg.camera
    image, intrinsics = load_user_image(cfg.image, model_size(cfg, loaded), c.fit, c.focal, c.principal_point,
                                        c.calibration, c.calibration_key)
    view = InputView(Path(cfg.image).stem, image[None] * 2.0 - 1.0, intrinsics[None], torch.eye(4)[None])
    return view.to(loaded.device)


def write_video(frames: Iterator[torch.Tensor], total: int, stem: Path, cfg: DictConfig, desc: str) -> Path:
    video = stem.with_name(stem.name + ".mp4") if cfg.output.video else None
    frames_dir = stem.with_name(stem.name + "_frames") if cfg.output.frames else None
    with FrameWriter(video, frames_dir, cfg.output.fps) as writer:
        for frame in tqdm(frames, total=total, desc=desc, unit="frame"):
            writer.write(frame)
    return video or frames_dir  # type: ignore[return-value]


def run_sequence(cfg: DictConfig, loaded: LoadedModel, s: FrameSettings, out: Path) -> Path:
    if cfg.image is not None:
        raise ValueError("mode=sequence renders a sequence of the dataset; use mode=figure (or nvs) for an own image")
    names, views = dataset_views(cfg, loaded, cfg.sequence.count, cfg.sequence.step)
    stem = cfg.output.name or f"{names[0]}-{names[-1].rsplit('_', 1)[1]}"
    return write_video(sequence_frames(loaded, views, s, bev_grid(cfg)), len(names), out / stem, cfg, "sequence")


def run_nvs(cfg: DictConfig, loaded: LoadedModel, s: FrameSettings, out: Path) -> Path:
    poses = resolve_trajectory(str(cfg.nvs.trajectory), cfg.nvs.num_frames, cfg.nvs.scale, cfg.pitch_deg)
    view = single_view(cfg, loaded)
    trajectory = cfg.nvs.trajectory if cfg.nvs.trajectory in BUILTIN else Path(cfg.nvs.trajectory).stem
    stem = cfg.output.name or f"{view.name}_{trajectory}"
    return write_video(nvs_frames(loaded, view, poses, s), len(poses), out / stem, cfg, "nvs")


def run_transition(cfg: DictConfig, loaded: LoadedModel, s: FrameSettings, out: Path) -> Path:
    t = cfg.transition
    settings = TransitionSettings(t.num_frames, t.hold, t.pitch_deg, t.height, t.distance,
                                  tuple(t.near_far_start), tuple(t.near_far_end))
    view = single_view(cfg, loaded)
    stem = cfg.output.name or f"{view.name}_transition"
    return write_video(transition_frames(loaded, view, s, settings), settings.total_frames, out / stem, cfg,
                       "transition")


def run_figure(cfg: DictConfig, loaded: LoadedModel, s: FrameSettings, out: Path) -> Path:
    view = single_view(cfg, loaded)
    path = out / f"{cfg.output.name or view.name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, to_uint8(depth_and_profile(loaded, view, s, bev_grid(cfg))))
    return path


def run_export(cfg: DictConfig, loaded: LoadedModel, s: FrameSettings, out: Path) -> Path:
    e = cfg.export
    spec = VoxelGridSpec(tuple(e.shape), e.voxel_size, tuple(e.origin))
    view = single_view(cfg, loaded)
    encoded = loaded.encode(view.images[None], view.intrinsics[None], view.cam_to_world[None])
    grid = occupancy_grid(loaded.density_fn(encoded), spec, view.level_to_world(cfg.pitch_deg), e.threshold,
                          s.renderer.chunk_points)
    stem = out / (cfg.output.name or view.name)
    written = export_grid(grid, stem, list(e.formats), e.threshold, e.binary_ply)
    log.info("%d of %d cells occupied; wrote %s", int(grid.occupied.sum()), grid.occupied.numel(),
             ", ".join(str(p) for p in written.values()))
    return stem.parent


def bev_grid(cfg: DictConfig) -> BevGrid | None:
    b = cfg.bev
    if not b.enabled:
        return None
    return BevGrid(tuple(b.x_range), tuple(b.z_range), tuple(b.y_range), tuple(b.resolution), b.num_slices,
                   b.threshold)


RUNNERS: dict[str, Callable[[DictConfig, LoadedModel, FrameSettings, Path], Path]] = {
    "sequence": run_sequence, "nvs": run_nvs, "transition": run_transition, "figure": run_figure,
    "export": run_export,
}


def render(cfg: DictConfig) -> Path:
    """Run one mode of a composed ``render`` config; returns the written file (or folder).

    Gradients are off and ``threads`` applies inside only: the caller's autograd state and thread count are kept."""
    if cfg.mode not in RUNNERS:
        raise ValueError(f"mode must be one of {list(RUNNERS)}, got {cfg.mode!r}")
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            return _render(cfg)
    finally:
        torch.set_num_threads(threads)


def _render(cfg: DictConfig) -> Path:
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    loaded = load(cfg)
    log.info("model: %s from %s", loaded.description, loaded.checkpoint)
    renderer = loaded.renderer_config(num_samples=cfg.render.num_samples)
    rays_per_chunk = cfg.render.rays_per_chunk or max(1, renderer.chunk_points // renderer.num_samples)
    settings = FrameSettings(renderer, cfg.depth.d_min, cfg.depth.d_max, cfg.pitch_deg, cfg.nvs.layout, rays_per_chunk,
                             cfg.output.labels, loaded.ray_positions)
    if loaded.ray_positions != "centres":
        log.info("imported original model: rays cast the original way (ray_positions=%s)", loaded.ray_positions)
    out = Path(cfg.output.dir) / cfg.mode / checkpoint_name(loaded.checkpoint)
    return RUNNERS[cfg.mode](cfg, loaded, settings, out)


register_resolvers()  # ${run_dir:...} of the log folder


@hydra.main(config_path="configs", config_name="render", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    print(f"wrote {render(cfg)}")


if __name__ == "__main__":
    main()

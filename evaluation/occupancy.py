"""Occupancy evaluation in occluded regions: ``python evaluation/occupancy.py checkpoint=PATH [protocol=...]``.

Rebuilds the model from the checkpoint's saved config (BTS, KDBTS's student, a single-view export, or MVBTS with
``views=<subset>``), evaluates the test split of the data (by default the data the model was trained on, read from
its run folder; ``data=kitti_360`` or ``data=synthetic`` to choose), and prints O_acc, IE_acc, IE_rec (and O_prec,
O_rec, IE_prec) with the protocol named. Writes ``results.json`` and ``per_frame.csv`` (and bird's-eye figures of
the frames listed in ``figures``) into the output folder. Model-independent ground truth is cached on disk.

Options (``configs/eval_occupancy.yaml``): ``protocol=bts|exact|kyn`` with its parameters (``protocol.num_scans=N``),
``views=stereo``, ``prediction=empty|behind_depth`` (trivial baselines), ``prediction=exact_behind
[prediction_margin=K]`` (ceilings from the exact truth, below), ``max_frames=N``, ``frames=[0,5]``, ``figures=[0]``,
``cache=false``, ``device=cpu|cuda``, ``save_predictions=true`` (per-point predictions and truth in
``predictions.npz``, which ``python -m evaluation.compare`` reads to compare two models point by point),
``trust_masks=true`` (MVBTS with ``save_predictions=true``: also the selective-distillation masks of
:mod:`bts.losses.trust` at every point, ``trust_visibility`` and ``trust_agreement``, which ``evaluation.compare``
scores against where the model is right).

Ceilings (synthetic city only; :mod:`evaluation.ceilings`), under ``protocol=exact`` and ``protocol=bts``; the
checkpoint still picks the data and the input size, but the model is not run:

- ``prediction=exact_behind``: everything behind the exact first surface is occupied;
- ``prediction=exact_behind prediction_margin=2``: occupied between the exact first surface and 2 m behind it
  (any K > 0; ``null``, the default, is everything behind).

Distances are along the camera ray (the exact ray cast of the ``exact`` protocol's visibility), not in z-depth. The
"model's depth" of the ``bts`` visibility is then the exact z-depth of the input view. Results name the prediction
(``model.prediction``, ``model.prediction_margin``; tables print ``exact_behind+2m``). On a KITTI-360 tree they fail
with an error saying they need the synthetic city's exact scene.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hydra  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bts.cli import friendly_errors  # noqa: E402
from bts.errors import UserError  # noqa: E402
from bts.fields.multi_view import MultiViewField  # noqa: E402
from bts.fields.tokens import project_to_views  # noqa: E402
from bts.geometry import invert_rigid  # noqa: E402
from bts.inference import LoadedModel  # noqa: E402
from bts.losses.trust import POINT_MASKS, teacher_view_depths, trust_mask  # noqa: E402
from bts.rendering.renderer import query_density, render_depth  # noqa: E402
from bts.results import write_json  # noqa: E402
from bts.runs import register_resolvers  # noqa: E402
from datasets.factory import build_dataset  # noqa: E402
from datasets.kitti_360.dataset import Kitti360Dataset  # noqa: E402
from evaluation.ceilings import CEILINGS, ExactScenes, check_margin, frame_ceiling, prediction_label  # noqa: E402
from evaluation.reporting import cell, mean_over_frames, write_results, written  # noqa: E402
from evaluation.selection import (data_config, frame_indices, frame_selection, input_size, load,  # noqa: E402
                                  model_views, resolved_data, seeded, with_frames)
from evaluation.gt_cache import GroundTruthCache  # noqa: E402
from evaluation.protocols import (DepthMap, ExactProtocol, Frame, OccupancyProtocol, build_protocol,  # noqa: E402
                                  lookup_pixels, observed_from, visible_from_depth)
from evaluation.protocols import register_protocol_schemas  # noqa: E402

log = logging.getLogger("evaluation.occupancy")

METRICS = ("o_acc", "ie_acc", "ie_rec", "o_prec", "o_rec", "ie_prec")
PREDICTIONS = ("density", "empty", "behind_depth", *CEILINGS)
PREDICTION_TRUTH = ("exact_occupied", "exact_visible", "occupied", "visible_first_scan")
TRUST_MASKS = POINT_MASKS  # kd.mask=photometric is decided per training ray: it has no value at a point


@dataclass
class OccupancyResult:
    protocol: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    per_frame: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    predictions: dict[str, list[Any]] = field(default_factory=dict)

    def keep(self, frame: str, occupied: torch.Tensor, sigma: torch.Tensor | None, gt: dict[str, torch.Tensor],
             trust: dict[str, torch.Tensor] | None = None, seen_by: torch.Tensor | None = None) -> None:
        """Keep one frame's per-point prediction (and density) with the model-independent truth of the protocol:
        ``exact_occupied`` / ``exact_visible`` under ``exact``, the lidar votes' ``occupied`` / ``visible_first_scan``
        under both; ``trust``: the selective-distillation masks at the points (``trust_<name>``); ``seen_by``: how
        many other encoded views exactly observe each point (``exact_seen_by``)."""
        rows = {"frame": frame, "pred_occupied": occupied.bool().numpy(),
                "sigma": (sigma if sigma is not None else torch.full(occupied.shape, math.nan)).float().numpy()}
        if seen_by is not None:
            rows["exact_seen_by"] = seen_by.to(torch.int16).numpy()
        for name, mask in (trust or {}).items():
            rows[f"trust_{name}"] = mask.bool().numpy()
        for key in PREDICTION_TRUTH:
            if key in gt:
                rows[key] = gt[key].bool().numpy()
        for key, value in rows.items():
            self.predictions.setdefault(key, []).append(value)

    def groups(self) -> list[str]:
        names: list[str] = []
        for row in self.per_frame:
            names += [g for g in row["metrics"] if g not in names]
        return names

    def mean(self) -> dict[str, dict[str, float]]:
        """Per-group means over frames, skipping NaN values (a frame without occluded points has no IE_*)."""
        out: dict[str, dict[str, float]] = {}
        for g in self.groups():
            rows = [row["metrics"][g] for row in self.per_frame if g in row["metrics"]]
            keys = sorted({k for row in rows for k in row}, key=lambda k: (METRICS.index(k) if k in METRICS else 99, k))
            out[g] = {k: math.nan if v is None else v for k, v in mean_over_frames(rows, keys).items()}
        return out

    def to_json(self) -> dict[str, Any]:
        scans = [row["num_scans"] for row in self.per_frame]
        wanted = self.protocol.get("num_scans")
        return {"protocol": self.protocol, "model": self.model, "data": self.data, "metrics": self.mean(),
                "frames": len(self.per_frame),
                "frames_with_fewer_scans": sum(1 for s in scans if wanted is not None and s < wanted),
                "timing_s_per_frame": self.timing}

    def table(self) -> str:
        name = self.protocol["protocol"]
        label = prediction_label(self.model["prediction"], self.model.get("prediction_margin"))
        lines = [f"occupancy | protocol={name} | model={self.model['description']} ({self.model['checkpoint']}) | "
                 f"prediction={label} | data={self.data['name']} {self.data['split']}, "
                 f"{len(self.per_frame)} frames"]
        header = f"{'scored as':<16}" + "".join(f"{m.upper():>9}" for m in METRICS)
        lines += [header, "-" * len(header)]
        for g, values in self.mean().items():
            if g == "lidar_vs_exact":
                continue
            lines.append(f"{g:<16}" + "".join(cell(values.get(m), 9) for m in METRICS))
        agreement = self.mean().get("lidar_vs_exact")
        if agreement:
            lines.append("lidar ground truth vs exact: " + ", ".join(f"{k} {v:.4f}" for k, v in agreement.items()))
        fewer = self.to_json()["frames_with_fewer_scans"]
        if fewer:
            lines.append(f"{fewer} frame(s) near a sequence end had fewer than {self.protocol['num_scans']} scans "
                         "(ground truth from the scans there are, as the protocol defines)")
        return "\n".join(lines)


def check_prediction(prediction: str, margin=None) -> float | None:
    """Refuse an unknown ``prediction`` or an invalid ``prediction_margin`` (naming the key and what is allowed);
    returns the margin as a float or ``None``."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return check_margin(prediction, margin)


DEPTH_RENDERS = ("lookup", "full")


@torch.no_grad()
def predict(loaded: LoadedModel, protocol: OccupancyProtocol, frame: Frame, prediction: str,
            chunk_points: int, margin: float | None = None, scenes: ExactScenes | None = None,
            depth_render: str = "lookup") -> tuple[torch.Tensor, DepthMap | None, torch.Tensor | None]:
    """The model's occupancy at the protocol's points, (when the protocol needs it) its depth map, and (for
    ``prediction=density``) the densities the occupancy was thresholded from. A ceiling (``exact_behind``) comes
    from the exact scene instead of the model, with the exact depth as the depth map. The depth map is rendered with
    the model's ray convention (:attr:`~bts.inference.LoadedModel.ray_positions`) and read back with it."""
    if prediction in CEILINGS:
        occupied, depth = frame_ceiling(protocol, frame, margin, scenes or ExactScenes(f"prediction={prediction}"),
                                        need_depth=protocol.needs_model_depth)
        return occupied, depth, None
    item = frame.item
    images, intr, c2w = item["images"][None], item["intrinsics"][None], item["cam_to_world"][None]
    encoded = loaded.encode(images, intr, c2w)
    density_fn = loaded.density_fn(encoded)
    dev = loaded.device
    depth = None
    p = protocol.params
    points = protocol.points_cam(frame)
    if protocol.needs_model_depth or prediction == "behind_depth":
        h, w = images.shape[-2:]
        renderer = loaded.renderer_config(chunk_points=chunk_points)
        # Every consumer of the depth map reads it at the protocol's points only (visible_from_depth): render those
        # pixels (the same values, the same jitter draws) unless depth_render=full asks for the whole image.
        pixels = None if depth_render == "full" else lookup_pixels(points, item["intrinsics"][0], h, w,
                                                                    loaded.ray_positions)
        with seeded(p.jitter_seed, dev):
            depth = DepthMap(render_depth(density_fn, intr[:, 0].to(dev), c2w[:, 0].to(dev), h, w, renderer,
                                          jitter=p.depth_jitter, ray_positions=loaded.ray_positions,
                                          pixels=pixels)[0].cpu(),
                             loaded.ray_positions)
    sigma = None
    if prediction == "density":
        sigma, _ = query_density(density_fn, points[None].to(dev), chunk_points)
        sigma = sigma[0].cpu()
        occupied = sigma > p.sigma_threshold
    elif prediction == "empty":
        occupied = torch.zeros(len(points), dtype=torch.bool)
    else:  # behind_depth: everything behind the model's depth is occupied
        occupied = ~visible_from_depth(points, depth, item["intrinsics"][0])
    return occupied, depth, sigma


def trust_field(loaded: LoadedModel) -> MultiViewField:
    """The multi-view field whose trust masks ``trust_masks=true`` saves; an error for any other model."""
    field = getattr(loaded.model, "field", None)
    if not loaded.multi_view or not isinstance(field, MultiViewField):
        raise ValueError(f"trust_masks=true needs a multi-view model (MVBTS, views=<subset>); {loaded.checkpoint} is "
                         f"{loaded.description}")
    return field


@torch.no_grad()
def trust_at_points(loaded: LoadedModel, protocol: OccupancyProtocol, frame: Frame
                    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """The selective-distillation masks (:data:`TRUST_MASKS`) of a multi-view model at the protocol's points: where
    another encoded view sees the point, where two seeing views agree (:mod:`bts.losses.trust`); and, under
    ``protocol=exact``, how many of the encoded views other than the input *exactly* observe each point
    (:func:`exact_seen_by`; ``None`` under another protocol)."""
    field = trust_field(loaded)
    item = frame.item
    encoded = loaded.encode(item["images"][None], item["intrinsics"][None], item["cam_to_world"][None])
    points = protocol.points_cam(frame)[None].to(loaded.device)
    depths = teacher_view_depths(field, encoded)
    masks = {name: trust_mask(name, field, points, encoded, depths)[0].cpu() for name in TRUST_MASKS}
    seen_by = exact_seen_by(protocol, frame, encoded, points[0]) if isinstance(protocol, ExactProtocol) else None
    return masks, seen_by


def exact_seen_by(protocol: ExactProtocol, frame: Frame, encoded, points_cam: torch.Tensor) -> torch.Tensor:
    """Per point (input camera frame), the number of encoded views ``k >= 1`` that observe it in the exact scene
    (:func:`evaluation.protocols.observed_from`): the regions of the teacher's evidence. 0 everywhere for a
    single encoded view."""
    if encoded.num_views < 2:
        return torch.zeros(len(points_cam), dtype=torch.int64)
    _, _, invalid = project_to_views(points_cam[None], encoded)  # [1, V, P]
    world_from_view0 = frame.item["world_from_view0"].double()
    centres = invert_rigid(encoded.world_to_cam[0].double())[1:, :3, 3]  # the other views, in view 0's frame
    to_world = lambda x: x @ world_from_view0[:3, :3].T + world_from_view0[:3, 3]  # noqa: E731
    observed = observed_from(protocol.exact_scene(frame), to_world(centres.cpu()), to_world(points_cam.double().cpu()),
                             ~invalid[0, 1:].cpu())
    return observed.sum(dim=0)


def evaluate_occupancy(loaded: LoadedModel, dataset: Kitti360Dataset, protocol: OccupancyProtocol,
                       cache: GroundTruthCache, *, indices: list[int] | None = None, prediction: str = "density",
                       prediction_margin: float | None = None, chunk_points: int = 100_000,
                       figures: tuple[int, ...] = (), figure_dir: Path | None = None,
                       progress: bool = True, data_info: dict[str, Any] | None = None,
                       keep_predictions: bool = False, trust_masks: bool = False,
                       depth_render: str = "lookup") -> OccupancyResult:
    """Evaluate ``loaded`` on ``dataset`` (all datapoints, or ``indices``) under ``protocol``. With
    ``keep_predictions`` the per-point predictions and model-independent truth are kept for ``predictions.npz``
    (with ``trust_masks``, also the masks of :func:`trust_at_points`).
    ``prediction_margin`` (metres) goes with ``prediction="exact_behind"`` (see :mod:`evaluation.ceilings`)."""
    margin = check_prediction(prediction, prediction_margin)
    if depth_render not in DEPTH_RENDERS:
        raise ValueError(f"depth_render must be one of {list(DEPTH_RENDERS)}, got {depth_render!r}")
    if trust_masks:  # both refusals before any frame is evaluated
        if not keep_predictions:
            raise ValueError("trust_masks=true writes the masks into predictions.npz: add save_predictions=true")
        trust_field(loaded)
    indices = frame_indices(len(dataset), indices, None)
    scenes = None
    if prediction in CEILINGS:  # fail before any work on a tree without the exact scene
        scenes = ExactScenes(f"prediction={prediction}")
        for seq in dict.fromkeys(dataset.datapoints[i][0] for i in indices):
            scenes.get(dataset.layout.root, seq)
    result = OccupancyResult(
        protocol=protocol.describe(),
        model={**loaded.record(), "prediction": prediction, "prediction_margin": margin},
        data={"root": str(dataset.layout.root), "split": dataset.split_file.name, **(data_info or {})})
    result.data.setdefault("name", "kitti_360")
    t_gt = t_model = t_gt_cold = 0.0
    cold = 0
    for i in tqdm(indices, desc=f"occupancy ({protocol.name})", unit="frame", disable=not progress):
        frame = Frame(dataset, i, dataset[i])
        t0 = time.perf_counter()
        gt, hit = cache.get(protocol, frame)
        t1 = time.perf_counter()
        occupied, depth, sigma = predict(loaded, protocol, frame, prediction, chunk_points, margin, scenes,
                                         depth_render)
        t2 = time.perf_counter()
        metrics = protocol.score(gt, occupied, depth, frame)
        t_gt += t1 - t0
        t_model += t2 - t1
        if not hit:
            cold += 1
            t_gt_cold += t1 - t0
        result.per_frame.append({"index": i, "frame": frame.name, "num_scans": int(gt["num_scans"]),
                                 "gt_cached": hit, "metrics": metrics})
        if keep_predictions:
            masks, seen_by = trust_at_points(loaded, protocol, frame) if trust_masks else (None, None)
            result.keep(frame.name, occupied, sigma, gt, masks, seen_by)
        if i in figures and figure_dir is not None:
            from evaluation.figures import occupancy_figure  # noqa: PLC0415

            occupancy_figure(protocol, gt, occupied, depth, frame,
                             figure_dir / f"{frame.sequence}_{frame.frame_id:010d}.png", sigma=sigma,
                             title=f"{loaded.description} ({Path(loaded.checkpoint).name}, prediction={prediction}), "
                                   f"{frame.sequence} frame {frame.frame_id}, protocol={protocol.name}")
    n = max(len(indices), 1)
    result.timing = {"ground_truth": t_gt / n, "model": t_model / n,
                     "ground_truth_cold": t_gt_cold / cold if cold else math.nan, "cache_hits": cache.hits,
                     "cache_misses": cache.misses}
    return result


def write_outputs(result: OccupancyResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if result.predictions:
        # [frames, points] arrays, in the order of per_frame; read by `python -m evaluation.compare`.
        arrays = {k: np.stack(v) for k, v in result.predictions.items() if k != "frame"}
        np.savez_compressed(out_dir / "predictions.npz", frame=np.asarray(result.predictions["frame"]),
                            protocol=np.asarray(json.dumps(result.protocol, default=float)),
                            model=np.asarray(json.dumps(result.model, default=str)), **arrays)
    columns = [(g, m) for g in result.groups() for m in (METRICS if g != "lidar_vs_exact" else
                                                         sorted(result.per_frame[0]["metrics"][g]))]
    rows = [{"index": row["index"], "frame": row["frame"], "num_scans": row["num_scans"], "gt_cached": row["gt_cached"],
             **{f"{g}.{m}": row["metrics"].get(g, {}).get(m, math.nan) for g, m in columns}}
            for row in result.per_frame]
    write_results(out_dir, result.to_json(), rows,
                  ["index", "frame", "num_scans", "gt_cached", *(f"{g}.{m}" for g, m in columns)])


def protocol_of(cfg: DictConfig) -> OccupancyProtocol:
    """The protocol of the ``protocol`` config node, logged with its numerics."""
    protocol_cfg = OmegaConf.to_container(cfg.protocol, resolve=True)
    protocol = build_protocol(protocol_cfg.pop("name"), protocol_cfg)
    log.info("protocol %s, %s", protocol.name, protocol.describe_numerics())
    return protocol


def split_dataset(cfg: DictConfig, data: DictConfig) -> Kitti360Dataset:
    """The dataset of ``cfg.split`` for a ``data`` node (with the run's ``paths``)."""
    return build_dataset(resolved_data(cfg, data), cfg.paths, cfg.split)


def ground_truth_cache(cfg: DictConfig) -> GroundTruthCache:
    """The cache of the model-independent ground truth: ``cache_dir``, or ``<cache>/occupancy_gt``."""
    cache_root = cfg.cache_dir
    if cache_root is None:
        from datasets.synthetic import default_cache_dir  # noqa: PLC0415

        base = Path(cfg.paths.cache_dir) if cfg.paths.cache_dir else default_cache_dir()
        cache_root = base / "occupancy_gt"
    return GroundTruthCache(cache_root if cfg.cache else None)


def cache_ground_truth(cfg: DictConfig, out_dir: Path, progress: bool = True) -> dict:
    """``ground_truth_only=true``: build (or find) the ground truth of every selected frame in the cache, without a
    model, so that later evaluations of any number of models pay only for their own queries. Writes
    ``ground_truth.json`` (protocol, data, frames, hits, misses, seconds)."""
    if cfg.get("data") is None:
        raise UserError("ground_truth_only=true has no checkpoint to take the data from: name it, e.g. "
                        "data=kitti_360 data.root=PATH (or data=synthetic)")
    if not cfg.cache:
        raise UserError("ground_truth_only=true fills the ground-truth cache; it cannot run with cache=false")
    protocol = protocol_of(cfg)
    # The ground truth reads poses, calibration, lidar (and the exact scene), not the images: load the fewest.
    data = with_frames(cfg.data, frame_selection((0,), need_stereo=False), tuple(cfg.data.image_size))
    dataset = split_dataset(cfg, data)
    cache = ground_truth_cache(cfg)
    indices = frame_indices(len(dataset), cfg.frames, cfg.max_frames, cfg.frame_stride)
    start = time.perf_counter()
    for i in tqdm(indices, desc=f"ground truth ({protocol.name})", unit="frame", disable=not progress):
        cache.get(protocol, Frame(dataset, i, dataset[i]))
    summary = {"protocol": protocol.describe(), "data": {"name": data.get("name"), "root": str(dataset.layout.root),
                                                         "split": cfg.split},
               "cache_dir": str(cache.folder), "frames": len(indices), "cache_hits": cache.hits,
               "cache_misses": cache.misses, "seconds": time.perf_counter() - start}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "ground_truth.json", summary)
    return summary


def run(cfg: DictConfig, out_dir: Path) -> OccupancyResult:
    margin = check_prediction(cfg.prediction, cfg.get("prediction_margin"))
    loaded = load(cfg)
    protocol = protocol_of(cfg)
    data, source = data_config(cfg, loaded)
    # Load only the frames the model encodes (one image for single-view models), at the model's input size.
    data = with_frames(data, frame_selection(model_views(loaded), need_stereo=False),
                       input_size(cfg.image_size, loaded, data))
    log.info("data from %s: %s", source, data.get("name"))
    if loaded.ray_positions != "centres":
        log.info("imported original model: depth rendered and looked up the original way (ray_positions=%s)",
                 loaded.ray_positions)
    dataset = split_dataset(cfg, data)
    cache = ground_truth_cache(cfg)
    indices = frame_indices(len(dataset), cfg.frames, cfg.max_frames, cfg.frame_stride)
    result = evaluate_occupancy(loaded, dataset, protocol, cache, indices=indices, prediction=cfg.prediction,
                                prediction_margin=margin, chunk_points=cfg.chunk_points, figures=tuple(cfg.figures),
                                figure_dir=out_dir / "figures",
                                data_info={"name": data.get("name"), "split": cfg.split, "data_from": source,
                                           "image_size": list(data.image_size),
                                           "pixel_convention": data.get("pixel_convention", "center")},
                                keep_predictions=cfg.save_predictions, trust_masks=cfg.trust_masks,
                                depth_render=cfg.depth_render)
    write_outputs(result, out_dir)
    return result


register_resolvers()  # ${run_dir:...} of the config's output folder
register_protocol_schemas()  # configs/protocol/*.yaml extend protocol/<name>_schema


@hydra.main(config_path="../configs", config_name="eval_occupancy", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.ground_truth_only:
        summary = cache_ground_truth(cfg, out_dir)
        print(f"ground truth of {summary['frames']} frames ({summary['protocol']['protocol']}) in "
              f"{summary['cache_dir']}: cache hits {summary['cache_hits']}, misses {summary['cache_misses']}, "
              f"{summary['seconds']:.1f} s; wrote {out_dir / 'ground_truth.json'}")
        return
    result = run(cfg, out_dir)
    print(result.table())
    t = result.timing
    print(f"seconds per frame: ground truth {t['ground_truth']:.3f} (cold {t['ground_truth_cold']:.3f}), "
          f"model {t['model']:.3f}; cache hits {t['cache_hits']}, misses {t['cache_misses']}")
    print(written(out_dir))


if __name__ == "__main__":
    main()

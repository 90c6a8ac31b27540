"""Ceilings from the exact truth of the synthetic city: ``prediction=exact_behind [prediction_margin=K]``.

Every occupancy table carries, besides the trivial baselines (``empty``, ``behind_depth``), predictions made from
the exact scene instead of a model. They bound what "completing the scene behind the first surface" can give:

- ``exact_behind`` (``prediction_margin=null``): every point behind the exact first surface is occupied, everything
  in front of it empty (the exact-depth version of ``behind_depth``);
- ``exact_behind`` with ``prediction_margin=K`` (metres, > 0): the points between the exact first surface and ``K``
  metres behind it are occupied, everything else empty (the papers' "depth + 4 m" baseline, with exact depth).

"Behind" and "K metres behind" are measured **along the camera ray**: a point at Euclidean distance ``d`` from the
camera centre, whose ray (from the camera centre through the point) first meets a surface at distance ``s`` (the
exact ray cast ``scene.ray_distance`` from the camera origin, the same cast as the ``exact`` protocol's
visibility), is occupied when ``s + tolerance < d`` (and ``d <= s + K`` with a margin). With no margin this is
exactly the complement of the ``exact`` protocol's visibility (``s >= d - tolerance``), so the prediction is
"occupied" on every occluded point and "empty" on every visible one. Rays that meet nothing predict empty.

Under ``protocol=bts`` the visibility of the lidar protocol also uses "the model's depth"; for these ceilings it is
the exact z-depth of the input view at the model's input size (a ray cast through every pixel centre, the rays the
model's depth is rendered along), ``inf`` where a ray meets nothing. The ``exact`` protocol's side-by-side ``bts``
numbers use the same depth.

They need the synthetic city's exact scene (``ground_truth/<seq>/scene.json``); on a KITTI-360 tree they fail with
an error saying so. Nothing here is cached (one ray per query point and per pixel; milliseconds to a fraction of a
second per frame), so the on-disk ground-truth cache (:mod:`evaluation.gt_cache`) is untouched.

Programmatic use: :func:`exact_ceiling` (world points, camera origin, scene, margin) and :func:`exact_depth_map`.
"""

from __future__ import annotations

import math
from numbers import Real
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.rendering.compositing import distance_to_depth
from bts.rendering.rays import image_rays
from evaluation.lidar_occupancy import transform
from evaluation.protocols import RAY_TOLERANCE, DepthMap, first_hits

CEILINGS = ("exact_behind",)


def check_margin(prediction: str, margin: Any) -> float | None:
    """``prediction_margin`` as a float (or ``None``): a positive finite number of metres, and only for a ceiling."""
    if margin is None:
        return None
    if prediction not in CEILINGS:
        raise ValueError(f"prediction_margin={margin!r} applies only to prediction={'|'.join(CEILINGS)} "
                         f"(got prediction={prediction}); leave it null")
    if isinstance(margin, bool) or not isinstance(margin, Real) or not math.isfinite(margin) or margin <= 0:
        raise ValueError(f"prediction_margin must be null (everything behind the exact first surface) or a positive "
                         f"number of metres behind it, e.g. prediction_margin=2; got {margin!r}")
    return float(margin)


def prediction_label(prediction: str, margin: float | None) -> str:
    """``exact_behind``, ``exact_behind+2m``, ... (the name printed in tables)."""
    return prediction if margin is None else f"{prediction}+{margin:g}m"


def exact_ceiling(points_world: Float[Tensor, "P 3"], origin: Float[Tensor, "3"], scene,
                  margin: float | None = None, tolerance: float = RAY_TOLERANCE) -> Bool[Tensor, "P"]:
    """The ceiling prediction at world points seen from a camera at ``origin`` in a
    :class:`~datasets.synthetic.SyntheticScene`: occupied when the point lies behind the first surface on its ray
    (``s + tolerance < d``, ``d`` the point's distance from ``origin``, ``s`` the first hit's), and with ``margin``
    at most ``margin`` metres behind it along the ray (``d <= s + margin``)."""
    if len(points_world) == 0:
        return torch.zeros(0, dtype=torch.bool, device=points_world.device)
    distance, hit = first_hits(scene, origin, points_world)
    occupied = distance > hit + tolerance
    if margin is not None:
        occupied &= distance <= hit + margin
    return occupied.to(points_world.device)


def exact_depth_map(scene, intrinsics: Float[Tensor, "3 3"], cam_to_world: Float[Tensor, "4 4"], height: int,
                    width: int) -> Float[Tensor, "H W"]:
    """The exact z-depth (float32, ``inf`` where nothing is hit) of a pinhole view: the project's normalised
    intrinsics and an absolute camera-to-world pose, rays through the pixel centres as the renderer's
    :func:`~bts.rendering.renderer.render_depth`."""
    c2w = cam_to_world.double()
    rays = image_rays(intrinsics.double()[None], c2w[None], height, width)
    hits = scene.ray_distance(c2w[:3, 3].float(), rays.directions[0].float())
    cam_dirs = rays.directions[0] @ c2w[:3, :3]
    return distance_to_depth(hits.double(), cam_dirs).float().reshape(height, width)


class ExactScenes:
    """Loads (once) the exact scene of each sequence of a tree, with an error naming what is missing."""

    def __init__(self, what: str = "prediction=exact_behind"):
        self.what = what
        self._scenes: dict[tuple[str, str], Any] = {}

    def get(self, root: Path | str, sequence: str):
        from datasets.synthetic import load_scene  # noqa: PLC0415 - only the ceilings need the generator package

        key = (str(root), sequence)
        if key not in self._scenes:
            try:
                self._scenes[key] = load_scene(root, sequence)
            except FileNotFoundError as e:
                raise ValueError(f"{self.what} needs the synthetic city's exact scene "
                                 f"(ground_truth/{sequence}/scene.json), which a KITTI-360 tree does not have; use "
                                 f"data=synthetic: {e}") from None
        return self._scenes[key]


def frame_ceiling(protocol, frame, margin: float | None, scenes: ExactScenes,
                  need_depth: bool = True) -> tuple[Bool[Tensor, "P"], DepthMap | None]:
    """The ceiling at the protocol's query points of one evaluated frame (the points exactly as the ``exact``
    protocol places them) and, with ``need_depth``, the exact z-depth of the input view at its input size."""
    scene = scenes.get(frame.dataset.layout.root, frame.sequence)
    world_from_view0 = frame.item["world_from_view0"].double()
    world_from_level = world_from_view0 @ protocol.cam_from_level.double()
    points = transform(world_from_level, protocol.points_level.double())
    occupied = exact_ceiling(points, world_from_level[:3, 3], scene, margin)
    depth = None
    if need_depth:
        h, w = frame.item["images"].shape[-2:]
        c2w = world_from_view0 @ frame.item["cam_to_world"][0].double()
        depth = DepthMap(exact_depth_map(scene, frame.item["intrinsics"][0], c2w, h, w), "centres")
    return occupied, depth

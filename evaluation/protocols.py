"""Occupancy evaluation protocols (docs/method.md §8.1, docs/decisions.md §8).

A protocol says which points are queried, how the ground truth of a frame is built, and how a model's prediction is
scored. Each is a class with a parameter dataclass and a config file ``configs/protocol/<name>.yaml``; a new
protocol is one more class registered in :data:`PROTOCOLS` plus its config.

- ``bts``: the protocol of the BTS and KDBTS papers with every quirk (levelled frame, one slice, 20 lidar scans,
  polar profiles, vote threshold, visibility from the first scan and from the model's own depth, sigma > 0.5).
- ``exact`` (synthetic city only): the same grid scored against the exact occupancy of the scene, visibility by ray
  casting in the exact scene (the same occluded set for every method); also reports the ``bts`` numbers of the same
  model and how often the lidar-built ground truth disagrees with the exact one.
- ``kyn``: the protocol of KYN (CVPR 2024) and ViPOcc: the ``bts`` grid out to z = 50 m (80 x 460 points),
  300 lidar scans, visibility from the first scan only, the far invisible area cut, O_acc / IE_acc / IE_rec, and
  the same three inside the objects' widened bounding rectangles where KYN's object label maps are given.

The model's own depth image (visibility) is read back the way its rays were cast (:class:`DepthMap`: pixel centres
for this project's models, the original's ``linspace(-1, 1)`` for imported ones). ``numerics=original`` builds the
levelled frame and the lidar chain in the original evaluator's float32 (:func:`original_chain_float32`); the default
``float64`` builds them relative to the input view. Both are printed with the results.

Ground truth that does not depend on the model (:meth:`OccupancyProtocol.ground_truth`) is what the cache stores.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from bts.errors import UserError
from bts.rendering.pixels import check_ray_positions
from datasets.kitti_360.dataset import Kitti360Dataset
from datasets.kitti_360.layout import read_velodyne
from evaluation.lidar_occupancy import (level_transform, lidar_votes, polar_profile, query_grid, slice_mask, transform,
                                        vote_threshold)
from evaluation.metrics import occupancy_metrics


class ExactTruthUnavailable(ValueError, UserError):
    """``protocol=exact`` on data without the synthetic city's exact scene (a KITTI-360 tree)."""


@dataclass
class Frame:
    """One evaluated datapoint: the dataset item and where it comes from."""

    dataset: Kitti360Dataset
    index: int
    item: dict[str, Any]

    @property
    def sequence(self) -> str:
        return self.dataset.datapoints[self.index][0]

    @property
    def row(self) -> int:
        """Row of the input frame in the sequence's poses file."""
        return self.dataset.datapoints[self.index][1]

    @property
    def frame_id(self) -> int:
        return int(self.item["frame_ids"][0])

    @property
    def name(self) -> str:
        return f"{self.sequence}/{self.frame_id:010d}"


@dataclass
class GridParams:
    """The query grid and prediction rule shared by the lidar and exact protocols (the papers' values)."""

    x_range: tuple[float, float] = (-4.0, 4.0)
    y_range: tuple[float, float] = (0.0, 0.75)
    z_range: tuple[float, float] = (20.0, 4.0)
    ppm: float = 10.0               # points per metre in x and z
    ppm_y: float = 4.0
    y_res: int | None = 1           # 1: one slice in the middle of y_range
    pitch_deg: float = 5.0          # camera pitch undone by the levelled frame
    sigma_threshold: float = 0.5    # predicted occupied <=> sigma > threshold
    depth_jitter: bool = True       # the model's depth for visibility: jittered samples (the original) or midpoints
    jitter_seed: int = 0
    numerics: str = "float64"       # float64, or original: the original evaluator's float32 chain (NUMERICS)

    def __post_init__(self):
        if self.numerics not in NUMERICS:
            raise ValueError(f"protocol.numerics must be one of {sorted(NUMERICS)}, got {self.numerics!r}")


@dataclass
class BtsParams(GridParams):
    num_scans: int = 20             # lidar scans of frames t .. t + num_scans - 1 (pose rows)
    num_bins: int = 360
    min_distance: float = 3.0       # the lidar's blind zone: closer points vote "occupied / unknown"
    homogeneous_norm: bool = True   # the original's √(x²+y²+z²+1) against the 2D radius (docs/method.md §11-10)
    min_scans: int = 1              # frames with fewer scans (sequence end) are evaluated as the rule defines


@dataclass
class ExactParams(BtsParams):
    """The grid of ``bts``; the lidar parameters serve the side-by-side ``bts`` numbers and the disagreement."""

    depth_jitter: bool = False      # the exact protocol's own numbers do not use the model's depth


NUMERICS = {
    "float64": "the levelled frame, the lidar chain and the query points in float64 (the project's default)",
    "original": "the original evaluator's float32 chain: poses read as float32, the levelled frame inverted from the "
                "absolute float32 pose (world coordinates of a few km, errors up to ~2e-4 m), lidar profiles and "
                "votes in float32, the query points through that frame",
}
REMOVED_KEYS = {
    "depth_lookup_align_corners": "the lookup of the model's depth now follows the convention its rays were rendered "
                                  "with (pixel centres for this project's models, align_corners for imported original "
                                  "models), so render and lookup cannot disagree",
}


def make_params(cls: type, values: dict[str, Any], where: str):
    """A parameter dataclass from a config mapping; an unknown key is an error naming it and the known ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    removed = sorted(set(values) & set(REMOVED_KEYS))
    if removed:
        raise ValueError(f"{where}: {removed[0]!r} was removed: {REMOVED_KEYS[removed[0]]}")
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(known)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**kwargs)


@dataclass(frozen=True)
class DepthMap:
    """A z-depth image of the input view and where its rays passed (``centres`` or ``align_corners``,
    :data:`bts.rendering.pixels.RAY_POSITIONS`): the lookup of :func:`visible_from_depth` follows it, so a depth map
    is always read the way it was rendered."""

    values: Float[Tensor, "H W"]
    ray_positions: str = "centres"

    def __post_init__(self):
        check_ray_positions(self.ray_positions)


def visible_from_depth(points_cam: Float[Tensor, "P 3"], depth: DepthMap,
                       intrinsics: Float[Tensor, "3 3"]) -> Bool[Tensor, "P"]:
    """Points in front of a depth map: ``z <= depth`` at the point's pixel (nearest lookup, border padding).

    The pixel is the one whose ray passes nearest to the point's projection: with rays through the pixel centres
    the ``align_corners=False`` lookup, with the original's ``linspace(-1, 1)`` rays the ``align_corners=True`` one
    (the original evaluator's render and lookup)."""
    z = points_cam[:, 2]
    looked = _lookup(depth.values.float(), points_cam, intrinsics, depth.ray_positions)
    if torch.isnan(looked).any():
        raise ValueError(f"the depth map has no value at {int(torch.isnan(looked).sum())} of the points' pixels: it "
                         "was rendered for other points (render_depth(pixels=lookup_pixels(...)) of these points)")
    return z <= looked


def _lookup(image: Float[Tensor, "H W"], points_cam: Float[Tensor, "P 3"], intrinsics: Float[Tensor, "3 3"],
            ray_positions: str) -> Float[Tensor, "P"]:
    """``image`` at each point's pixel: the nearest-pixel lookup of :func:`visible_from_depth`."""
    z = points_cam[:, 2]
    uv = (points_cam @ intrinsics.to(points_cam.dtype).T)[:, :2] / z.clamp(min=1e-6)[:, None]
    return F.grid_sample(image[None, None], uv[None, None].float(), mode="nearest", padding_mode="border",
                         align_corners=ray_positions == "align_corners").view(-1)


def lookup_pixels(points_cam: Float[Tensor, "P 3"], intrinsics: Float[Tensor, "3 3"], height: int, width: int,
                  ray_positions: str = "centres") -> Tensor:
    """The flat indices of the pixels :func:`visible_from_depth` reads for these points (each point's nearest pixel,
    by the very lookup it uses), unique and sorted: the only depth values the visibility test needs, so that the
    evaluation renders those rays instead of the whole image (``render_depth(pixels=...)``)."""
    index = torch.arange(height * width, dtype=torch.float32).reshape(height, width)  # exact below 2^24
    return torch.unique(_lookup(index, points_cam, intrinsics, ray_positions).long())


RAY_TOLERANCE = 1e-4  # metres: a point this close to the first hit on its ray counts as reached


def first_hits(scene, origin: Float[Tensor, "3"], points_world: Float[Tensor, "P 3"]
               ) -> tuple[Float[Tensor, "P"], Float[Tensor, "P"]]:
    """Distance (float64) of each world point from ``origin`` and of the first surface on the ray towards it, by
    exact ray casting in a :class:`~datasets.synthetic.SyntheticScene` (``inf`` where the ray meets nothing)."""
    points, origin = points_world.double(), origin.double()
    offsets = points - origin
    distance = offsets.norm(dim=-1)
    hit = scene.ray_distance(origin.float(), offsets.float(), max_distance=float(distance.max()) + 1.0)
    return distance, hit.double().to(distance.device)


def exact_truth(scene, world_from_level: Float[Tensor, "4 4"], points_level: Float[Tensor, "P 3"]
                ) -> tuple[Bool[Tensor, "P"], Bool[Tensor, "P"]]:
    """The exact occupancy of levelled query points and their visibility from the levelled frame's origin (nothing
    between the camera and the point, and the point itself empty): the ``exact`` protocol's ground truth."""
    points = transform(world_from_level, points_level.double())
    occupied = scene.occupied(points.float())
    distance, hit = first_hits(scene, world_from_level[:3, 3], points)
    return occupied, (hit >= distance - RAY_TOLERANCE) & ~occupied


SURFACE_LAYER = 0.2  # metres (two grid steps of the papers' 10 points per metre): how deep behind the first surface
# a view's ray still observes a point, so that an occupied point at a surface the view sees counts as observed


def observed_from(scene, origins_world: Float[Tensor, "V 3"], points_world: Float[Tensor, "P 3"],
                  in_frustum: Bool[Tensor, "V P"], layer: float = SURFACE_LAYER) -> Bool[Tensor, "V P"]:
    """Whether camera ``v`` (centre ``origins_world[v]``) observes each point in the exact scene: inside its
    frustum and at most ``layer`` behind the first surface on the ray towards it (an empty point in front of every
    surface, or an occupied one in the surface layer the view sees). Exact ray casting, float64 distances."""
    out = []
    for v in range(origins_world.shape[0]):
        distance, hit = first_hits(scene, origins_world[v], points_world)
        out.append(in_frustum[v].to(distance.device) & (distance - hit <= layer))
    return torch.stack(out)


ORIGINAL_LEVEL_DIGITS = 7  # the original's levelling matrix is written with 7 decimals (0.9961947, 0.0871557)


def original_level_float32(pitch_deg: float) -> Float[Tensor, "4 4"]:
    """``R_x(-pitch)`` as the original evaluator writes it: cosine and sine rounded to 7 decimals, float32."""
    c = round(math.cos(math.radians(pitch_deg)), ORIGINAL_LEVEL_DIGITS)
    s = round(math.sin(math.radians(pitch_deg)), ORIGINAL_LEVEL_DIGITS)
    return torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, c, s, 0.0], [0.0, -s, c, 0.0], [0.0, 0.0, 0.0, 1.0]],
                        dtype=torch.float32)


def original_chain_float32(frame: Frame, pitch_deg: float, rows: range | list[int]
                           ) -> tuple[Float[Tensor, "4 4"], Float[Tensor, "S 4 4"]]:
    """The levelled frame as the original evaluator builds it, in float32 (``protocol.numerics=original``).

    The original reads the poses as float32 and chains the calibration in float32 (rectified camera to pose
    ``T_cam_to_pose @ inv(R_rect)``, velodyne to pose ``T_rect_00_to_pose @ R_rect_00 @ inv(T_cam0_to_velo)``), inverts
    the *absolute* float32 camera-to-world pose of the input view (KITTI-360 world coordinates are a few km, so the
    product ``level <- world <- camera`` is the levelling rotation only up to ~1e-4 m) and puts every lidar scan
    into that frame with float32 products. Returns ``level <- input camera`` (the original's ``poses[0, 0]``) and
    ``level <- lidar`` of each row in ``rows``.
    """
    ds, seq = frame.dataset, frame.sequence
    calib = ds.calibration
    f32 = np.float32

    def rect_to_pose(camera: str) -> np.ndarray:
        r = np.eye(4, dtype=f32)
        r[:3, :3] = calib.r_rect[camera].astype(f32)
        return calib.cam_to_pose[camera].astype(f32) @ np.linalg.inv(r)

    camera = f"image_0{int(frame.item['cameras'][0])}"
    if camera not in calib.r_rect:
        raise ValueError(f"{frame.name}: protocol.numerics=original needs a perspective input view, got {camera}")
    r00 = np.eye(4, dtype=f32)
    r00[:3, :3] = calib.r_rect["image_00"].astype(f32)
    velo_to_pose = torch.from_numpy(rect_to_pose("image_00") @ (r00 @ np.linalg.inv(calib.cam_to_velo.astype(f32))))
    pose_to_world = ds.poses[seq].pose_to_world
    cam_to_world = torch.from_numpy(pose_to_world[frame.row].astype(f32) @ rect_to_pose(camera))
    level_from_world = original_level_float32(pitch_deg) @ torch.linalg.inv(cam_to_world)
    level_from_lidar = [level_from_world @ torch.from_numpy(pose_to_world[r].astype(f32)) @ velo_to_pose
                        for r in rows]
    lidar = torch.stack(level_from_lidar) if level_from_lidar else torch.empty(0, 4, 4)
    return level_from_world @ cam_to_world, lidar


class OccupancyProtocol(ABC):
    """A named protocol with its parameters; see the module docstring."""

    name: ClassVar[str]
    params_class: ClassVar[type]
    needs_model_depth: ClassVar[bool] = True

    def __init__(self, params: dict[str, Any] | None = None):
        self.params = make_params(self.params_class, dict(params or {}), f"protocol {self.name!r}")
        p = self.params
        self.points_level, self.grid_size = query_grid(p.x_range, p.y_range, p.z_range, p.ppm, p.ppm_y, p.y_res)
        self.level_from_cam = level_transform(p.pitch_deg)
        self.cam_from_level = torch.linalg.inv(self.level_from_cam)

    def describe(self) -> dict[str, Any]:
        """Name and every parameter: printed beside the numbers and part of the cache key."""
        return {"protocol": self.name, **dataclasses.asdict(self.params)}

    def describe_numerics(self) -> str:
        return f"numerics={self.params.numerics}: {NUMERICS[self.params.numerics]}"

    def points_cam(self, frame: Frame | None = None) -> Float[Tensor, "P 3"]:
        """The query points in the input camera's frame (the frame the model's ``cam_to_world`` of view 0 is): the
        exact levelling in float64, or (``numerics=original``) through the frame's float32 chain, where the original
        evaluator's network sees them."""
        if self.params.numerics == "original":
            if frame is None:
                raise ValueError("protocol.numerics=original places the query points through each frame's float32 "
                                 "pose: pass the frame")
            level_from_cam, _ = original_chain_float32(frame, self.params.pitch_deg, [])
            return transform(torch.linalg.inv(level_from_cam), self.points_level.float())
        return transform(self.cam_from_level, self.points_level.double()).float()

    @abstractmethod
    def ground_truth_files(self, frame: Frame) -> list[Path]:
        """The files the frame's ground truth is built from (their sizes and mtimes key the cache)."""

    @abstractmethod
    def ground_truth(self, frame: Frame) -> dict[str, Tensor]:
        """The model-independent ground truth of one frame (cached)."""

    @abstractmethod
    def score(self, gt: dict[str, Tensor], pred_occupied: Bool[Tensor, "P"], depth: DepthMap | None,
              frame: Frame) -> dict[str, dict[str, float]]:
        """Metric groups of one frame, e.g. ``{"bts": {...}}``."""


class BtsProtocol(OccupancyProtocol):
    name = "bts"
    params_class = BtsParams

    def scan_rows(self, frame: Frame) -> range:
        n = len(frame.dataset.poses[frame.sequence])
        return range(frame.row, min(frame.row + self.params.num_scans, n))

    def ground_truth_files(self, frame: Frame) -> list[Path]:
        ds, seq = frame.dataset, frame.sequence
        poses = ds.poses[seq]
        velo = [ds.layout.velodyne_file(seq, int(poses.frame_ids[r])) for r in self.scan_rows(frame)]
        calib = sorted(p for p in ds.layout.calibration_dir.iterdir() if p.is_file())
        return [ds.layout.poses_file(seq), *calib, *velo]

    def level_from_lidar(self, frame: Frame, rows: range | list[int]) -> Float[Tensor, "S 4 4"]:
        """``level <- lidar`` of each scan row: float64 and relative to the input view, or (``numerics=original``)
        the original's float32 chain through the absolute poses (:func:`original_chain_float32`)."""
        if self.params.numerics == "original":
            return original_chain_float32(frame, self.params.pitch_deg, rows)[1]
        ds = frame.dataset
        pose_to_world = ds.poses[frame.sequence].pose_to_world
        level_from_world = self.level_from_cam @ torch.linalg.inv(frame.item["world_from_view0"].double())
        velo_to_pose = torch.from_numpy(np.asarray(ds.velo_to_pose, dtype=np.float64))
        return torch.stack([level_from_world @ torch.from_numpy(pose_to_world[r]).double() @ velo_to_pose
                            for r in rows])

    def ground_truth(self, frame: Frame) -> dict[str, Tensor]:
        p, ds, seq = self.params, frame.dataset, frame.sequence
        poses = ds.poses[seq]
        rows = self.scan_rows(frame)
        if len(rows) < p.min_scans:
            raise ValueError(f"{frame.name}: {len(rows)} lidar scans left in the sequence, the protocol needs "
                             f"at least min_scans={p.min_scans}")
        level_from_lidar = self.level_from_lidar(frame, rows)
        dtype = level_from_lidar.dtype
        far = math.hypot(p.z_range[0], p.x_range[0])  # the original's √(z_far² + x_min²)
        profiles = []
        for r, t in zip(rows, level_from_lidar):
            scan = torch.from_numpy(read_velodyne(ds.layout.velodyne_file(seq, int(poses.frame_ids[r])))[:, :3])
            scan = scan.to(dtype)
            keep = slice_mask(transform(t, scan), p.y_range, far)
            profiles.append(polar_profile(scan[keep, :2], p.num_bins))
        votes = lidar_votes(self.points_level.to(dtype), torch.stack(profiles), torch.linalg.inv(level_from_lidar),
                            p.min_distance, p.homogeneous_norm)
        return {"occupied": vote_threshold(votes.sum(0), len(rows)), "visible_first_scan": ~votes[0],
                "num_scans": torch.tensor(len(rows))}

    def bts_metrics(self, gt: dict[str, Tensor], pred_occupied: Tensor, depth: DepthMap, frame: Frame):
        visible_pred = visible_from_depth(self.points_cam(frame), depth, frame.item["intrinsics"][0])
        visible = gt["visible_first_scan"] | visible_pred
        occupied = gt["occupied"] & ~visible
        return occupancy_metrics(pred_occupied, occupied, visible), occupied, visible

    def score(self, gt, pred_occupied, depth, frame):
        metrics, _, _ = self.bts_metrics(gt, pred_occupied, depth, frame)
        return {"bts": metrics}


class ExactProtocol(BtsProtocol):
    name = "exact"
    params_class = ExactParams

    def __init__(self, params: dict[str, Any] | None = None):
        super().__init__(params)
        self._scenes: dict[tuple[str, str], Any] = {}

    def _scene(self, frame: Frame):
        from datasets.synthetic import load_scene  # noqa: PLC0415 - only this protocol needs the generator package

        key = (str(frame.dataset.layout.root), frame.sequence)
        if key not in self._scenes:
            try:
                self._scenes[key] = load_scene(frame.dataset.layout.root, frame.sequence)
            except FileNotFoundError as e:
                raise ExactTruthUnavailable(f"protocol=exact needs the synthetic city's exact scene: {e}") from None
        return self._scenes[key]

    def exact_scene(self, frame: Frame):
        """The frame's exact synthetic scene (:class:`~datasets.synthetic.SyntheticScene`), loaded once."""
        return self._scene(frame)

    def ground_truth_files(self, frame: Frame) -> list[Path]:
        scene = frame.dataset.layout.root / "ground_truth" / frame.sequence / "scene.json"
        if not scene.is_file():
            raise ExactTruthUnavailable(
                f"protocol=exact needs the synthetic city's exact scene, {scene} is missing: a KITTI-360 tree has no "
                "exact truth; evaluate it with protocol=bts, or evaluate on the synthetic city (data=synthetic)")
        return [scene, *super().ground_truth_files(frame)]

    def ground_truth(self, frame: Frame) -> dict[str, Tensor]:
        world_from_level = frame.item["world_from_view0"].double() @ self.cam_from_level
        occupied, visible = exact_truth(self._scene(frame), world_from_level, self.points_level)
        lidar = super().ground_truth(frame)
        return {"exact_occupied": occupied, "exact_visible": visible, **lidar}

    def score(self, gt, pred_occupied, depth, frame):
        exact = occupancy_metrics(pred_occupied, gt["exact_occupied"], gt["exact_visible"])
        bts, bts_occupied, bts_visible = self.bts_metrics(gt, pred_occupied, depth, frame)
        lidar_occ = gt["occupied"] & ~gt["visible_first_scan"]  # the model-independent part of the lidar truth
        truth = gt["exact_occupied"]
        hidden = ~gt["exact_visible"]
        agreement = {
            "disagree": float((lidar_occ != truth).float().mean()),
            "false_occupied": float((lidar_occ & ~truth).float().mean()),
            "false_empty": float((~lidar_occ & truth).float().mean()),
            "disagree_hidden": float((lidar_occ != truth)[hidden].float().mean()) if hidden.any() else math.nan,
            "disagree_with_model_visibility": float((bts_occupied != truth).float().mean()),
        }
        return {"exact": exact, "bts": bts, "lidar_vs_exact": agreement}


@dataclass
class KynParams(BtsParams):
    """The KYN (CVPR 2024) evaluator's values; ViPOcc runs the same code with ``z_range=[20, 4]``."""

    z_range: tuple[float, float] = (50.0, 4.0)
    num_scans: int = 300            # scans of frames t .. t + 299 (the rest of the sequence near its end)
    depth_jitter: bool = False      # unused: visibility comes from the first lidar scan only
    cut_far_invisible: bool = True  # drop the rows more than cut_margin beyond the farthest visible one
    cut_margin: float = 2.0         # metres (2 * ppm rows)
    object_labels: str | None = None  # folder of KYN's <sequence>_<frame:010d>_occgt_anno.png maps (Object_Label)
    object_z_expand: float = 2.0    # each object's bounding rectangle widened by 2 m in z ...
    object_x_expand: float = 0.5    # ... and 0.5 m in x
    ground_truth_maps: str | None = None  # folder of KYN's precomputed <name>_occgt.npy / _visgt.npy (GT_Occ)


KYN_METRICS = ("o_acc", "ie_acc", "ie_rec")


class KynProtocol(BtsProtocol):
    """The occupancy protocol of KYN (CVPR 2024) and ViPOcc (docs/method.md §8.1): the ``bts`` grid reaching 50 m,
    300 lidar scans, visibility from the first scan only (never from the model's depth), the far invisible area cut,
    and object-level scores where KYN's object label maps are given."""

    name = "kyn"
    params_class = KynParams
    needs_model_depth = False

    def __init__(self, params: dict[str, Any] | None = None):
        super().__init__(params)
        p = self.params
        if p.cut_margin < 0 or p.object_z_expand < 0 or p.object_x_expand < 0:
            raise ValueError("protocol kyn: cut_margin, object_z_expand and object_x_expand must be >= 0, got "
                             f"{p.cut_margin}, {p.object_z_expand}, {p.object_x_expand}")

    def _map_file(self, folder: str | None, frame: Frame, suffix: str) -> Path | None:
        return None if folder is None else Path(folder) / f"{frame.sequence}_{frame.frame_id:010d}{suffix}"

    def ground_truth_files(self, frame: Frame) -> list[Path]:
        p = self.params
        maps = [self._map_file(p.ground_truth_maps, frame, s) for s in ("_occgt.npy", "_visgt.npy")]
        if p.ground_truth_maps is not None:
            files = [m for m in maps if m is not None]
            for f in files:
                if not f.is_file():
                    raise FileNotFoundError(f"protocol kyn: ground_truth_maps={p.ground_truth_maps} has no {f.name} "
                                            f"for {frame.name} (KYN's GT_Occ maps, one .npy pair per frame)")
        else:
            files = super().ground_truth_files(frame)
        labels = self._map_file(p.object_labels, frame, "_occgt_anno.png")
        return files + ([labels] if labels is not None and labels.is_file() else [])

    def _bev(self, values: np.ndarray, what: str, path: Path) -> Tensor:
        """A ``[Z, X]`` map of KYN's layout (row 0 the far end) as a flat ``[P]`` tensor in the grid's order."""
        x_res, y_res, z_res = self.grid_size
        if values.shape != (z_res, x_res) or y_res != 1:
            raise ValueError(f"{path}: {what} of shape {values.shape}, the protocol's grid is {z_res} x {x_res} "
                             f"(z x x) with one slice")
        return torch.from_numpy(np.ascontiguousarray(values)).reshape(-1)

    def ground_truth(self, frame: Frame) -> dict[str, Tensor]:
        p = self.params
        if p.ground_truth_maps is not None:
            occ_file, vis_file = (self._map_file(p.ground_truth_maps, frame, s) for s in ("_occgt.npy", "_visgt.npy"))
            gt = {"occupied": self._bev(np.load(occ_file).astype(bool), "occupancy", occ_file),
                  "visible_first_scan": self._bev(np.load(vis_file).astype(bool), "visibility", vis_file),
                  "num_scans": torch.tensor(p.num_scans)}
        else:
            gt = super().ground_truth(frame)
        labels = self._map_file(p.object_labels, frame, "_occgt_anno.png")
        if labels is not None and labels.is_file():
            from PIL import Image  # noqa: PLC0415

            gt["object_region"] = self._bev(self.object_region(np.asarray(Image.open(labels))), "object labels",
                                            labels)
        return gt

    def object_region(self, labels: np.ndarray) -> np.ndarray:
        """The union of every labelled object's bounding rectangle, widened by ``object_z_expand`` rows-worth in z
        and ``object_x_expand`` in x (KYN: rows ``[z0 - 20, z1 + 20)``, columns ``[x0 - 5, x1 + 5)``). Label values:
        0 free, 255 occupied, anything else an object id."""
        p = self.params
        ez, ex = int(p.object_z_expand * p.ppm), int(p.object_x_expand * p.ppm)
        region = np.zeros(labels.shape[:2], dtype=bool)
        for obj in np.unique(labels):
            if obj in (0, 255):
                continue
            rows, cols = np.nonzero(labels == obj)
            region[max(rows.min() - ez, 0):rows.max() + ez, max(cols.min() - ex, 0):cols.max() + ex] = True
        return region

    def far_cut(self, visible: Tensor) -> Tensor:
        """The points kept by the far invisible area cut: every row (z, far to near) from ``cut_margin`` beyond the
        farthest row with a visible point on; all points when nothing is visible or the cut is off."""
        x_res, y_res, z_res = self.grid_size
        rows = visible.reshape(y_res, z_res, x_res).any(dim=(0, 2)).nonzero().flatten()
        keep = torch.ones(y_res, z_res, x_res, dtype=torch.bool)
        if self.params.cut_far_invisible and len(rows):
            first = max(int(rows.min()) - int(self.params.cut_margin * self.params.ppm), 0)
            keep[:, :first] = False
        return keep.reshape(-1)

    def score(self, gt, pred_occupied, depth, frame):
        visible = gt["visible_first_scan"]
        occupied = gt["occupied"] & ~visible
        nan = dict.fromkeys(KYN_METRICS, math.nan)

        def three(mask: Tensor) -> dict[str, float]:
            m = occupancy_metrics(pred_occupied[mask], occupied[mask], visible[mask])
            return {k: m[k] for k in KYN_METRICS}

        # KYN scores a frame without any visible point as NaN (its cut is undefined there)
        scene = three(self.far_cut(visible)) if visible.any() else nan
        out = {"kyn": scene}
        if "object_region" in gt:
            region = gt["object_region"]
            out["kyn_object"] = three(region) if region.any() else nan  # before the cut, as KYN
        return out


PROTOCOLS: dict[str, type[OccupancyProtocol]] = {"bts": BtsProtocol, "exact": ExactProtocol, "kyn": KynProtocol}


def protocol_schema(name: str) -> type:
    """The structured-config schema of ``configs/protocol/<name>.yaml``: the protocol's parameter dataclass plus the
    ``name`` key that selects it, so that each default is written once (in the dataclass) and an unknown key or a
    wrongly typed value fails when the config is composed."""
    params = PROTOCOLS[name].params_class
    return dataclasses.make_dataclass(f"{params.__name__}Config", [("name", str, dataclasses.field(default=name))],
                                      bases=(params,))


def register_protocol_schemas() -> None:
    """Register ``protocol/<name>_schema`` for every protocol with Hydra's ConfigStore (before composing)."""
    from hydra.core.config_store import ConfigStore  # noqa: PLC0415

    store = ConfigStore.instance()
    for name in PROTOCOLS:
        store.store(group="protocol", name=f"{name}_schema", node=protocol_schema(name))


def build_protocol(name: str, params: dict[str, Any] | None = None) -> OccupancyProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown occupancy protocol {name!r}; known: {sorted(PROTOCOLS)}")
    return PROTOCOLS[name](params)


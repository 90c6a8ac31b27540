"""Exact occupancy labels for the supervised upper bound (``python train.py -cn bts_supervised``).

:class:`OccupancyLabelledDataset` wraps the :class:`~datasets.kitti_360.Kitti360Dataset` of a synthetic city and
adds to every item

- ``occupancy_points`` ``[N, 3]`` float32: query points in the item's frame (view 0's camera frame, the frame of
  the item's ``cam_to_world``; ``world_from_view0`` is its absolute pose);
- ``occupancy_labels`` ``[N]`` float32: 1 where :meth:`SyntheticScene.occupied` says the world point is inside the
  ground or an object, 0 where it is free;
- ``occupancy_modes`` ``[N]`` int64: how each point was drawn (:data:`UNIFORM`, :data:`SURFACE`, :data:`BEHIND`).

Sampling (:class:`OccupancySampling`): every point lies on the ray through the centre of a random pixel of view 0's
exact depth image (``scene.depth`` of the main camera at the item's frame, z-depth at the tree's resolution; the
normalised intrinsics make that resolution independent of the working one), unprojected with the item's normalised
intrinsics. Its distance ``t`` along the unit ray is, for a fixed share of the points each,

- ``uniform``: uniform in ``[near, far]`` (the renderer's range);
- ``surface``: ``t_s + U(-surface_band, surface_band)`` around the first surface ``t_s`` (in front and behind);
- ``behind``: ``t_s + U(0, behind_max)``, the occluded space behind the first surface.

``t_s = depth * |(x, y, 1)|`` is the ray distance of the pixel's z-depth. Where the pixel has no surface in
``[near, far]`` (sky, or too close or too far) its surface and behind points are drawn uniformly instead (their mode
says ``uniform``); every distance is then clipped to ``[near, far]``, the range the renderer queries.

Randomness: a NumPy generator per item. With ``seed=None`` (training) its seed is drawn from torch's global
generator, which the training loop sets per item from the run's seed, the epoch and the item's position
(``bts.training.sampling``), so runs are reproducible (also across a resume), independent of the number of
DataLoader workers, and every epoch draws new points; with an integer ``seed`` it is derived from ``(seed, index)``,
so an item always gets the same points.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.kitti_360 import Kitti360Dataset
from datasets.kitti_360.errors import MissingFileError
from datasets.synthetic.ground_truth import SyntheticScene

UNIFORM, SURFACE, BEHIND = 0, 1, 2


class MissingSceneError(MissingFileError):
    """The data root has no exact scene (e.g. a real KITTI-360 tree): the supervised bound cannot be trained."""

    def __init__(self, path: Path, sequence: str):
        super().__init__(path, f"the exact scene description of sequence {sequence}. The supervised upper bound "
                               "(loss.objective=supervised, -cn bts_supervised) needs the synthetic city's exact "
                               "scene (ground_truth/<sequence>/scene.json), which a real KITTI-360 tree does not "
                               "have: use data=synthetic (or unset KITTI360_ROOT)")


@dataclass(frozen=True)
class OccupancySampling:
    """How many labelled points an item gets and where they lie (the ``loss.points`` config node)."""

    points_per_element: int = 4096
    uniform_share: float = 0.4
    surface_share: float = 0.4
    behind_share: float = 0.2
    surface_band: float = 0.5  # metres in front of and behind the first surface
    behind_max: float = 4.0  # metres behind the first surface
    near: float = 3.0  # the renderer's range (distances along unit rays)
    far: float = 80.0
    seed: int | None = None  # None: drawn per item from torch's global generator (seeded per worker)

    def __post_init__(self):
        if self.points_per_element < 1:
            raise ValueError(f"points_per_element must be >= 1, got {self.points_per_element}")
        shares = (self.uniform_share, self.surface_share, self.behind_share)
        if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6:
            raise ValueError(f"uniform_share, surface_share and behind_share must be >= 0 and sum to 1, got {shares}")
        if not 0 < self.near < self.far:
            raise ValueError(f"need 0 < near < far, got near={self.near}, far={self.far}")
        if self.surface_band < 0 or self.behind_max < 0:
            raise ValueError(f"surface_band and behind_max must be >= 0, got {self.surface_band}, {self.behind_max}")

    def counts(self) -> tuple[int, int, int]:
        """Points per mode (uniform, surface, behind); the rounding remainder goes to ``behind``."""
        n = self.points_per_element
        uniform = int(round(n * self.uniform_share))
        surface = min(int(round(n * self.surface_share)), n - uniform)
        return uniform, surface, n - uniform - surface


def sampling_from_config(node: dict) -> OccupancySampling:
    """An :class:`OccupancySampling` from a plain config dict; an unknown key fails with its name."""
    known = {f.name for f in dataclasses.fields(OccupancySampling)}
    unknown = sorted(set(node) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in the occupancy sampling config (loss.points); known: "
                         f"{sorted(known)}")
    return OccupancySampling(**node)


def sample_distances(rng: np.random.Generator, surface: np.ndarray, sampling: OccupancySampling
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Distances along the rays (float64 ``[N]``) and the mode of each point, given each ray's first-surface
    distance ``surface`` (``inf`` where none). The draws do not depend on the surfaces, so the same generator state
    always consumes the same numbers."""
    n = len(surface)
    u, s, _ = sampling.counts()
    modes = np.full(n, BEHIND, dtype=np.int64)
    modes[:u] = UNIFORM
    modes[u:u + s] = SURFACE
    uniform = rng.uniform(sampling.near, sampling.far, n)
    around = rng.uniform(-sampling.surface_band, sampling.surface_band, n)
    behind = rng.uniform(0.0, sampling.behind_max, n)
    has_surface = np.isfinite(surface) & (surface >= sampling.near) & (surface <= sampling.far)
    modes[~has_surface] = UNIFORM
    with np.errstate(invalid="ignore"):
        t = np.where(modes == SURFACE, surface + around, np.where(modes == BEHIND, surface + behind, uniform))
    return np.clip(t, sampling.near, sampling.far), modes


class OccupancyLabelledDataset(Dataset):
    """A synthetic-city :class:`Kitti360Dataset` whose items carry exact occupancy labels (module docstring)."""

    def __init__(self, base: Kitti360Dataset, sampling: OccupancySampling | None = None):
        self.base = base
        self.sampling = sampling or OccupancySampling()
        self.root = Path(base.layout.root)
        for sequence in base.poses:
            path = self.root / "ground_truth" / sequence / "scene.json"
            if not path.is_file():
                raise MissingSceneError(path, sequence)
        self._scenes: dict[str, SyntheticScene] = {}

    def __len__(self) -> int:
        return len(self.base)

    def scene(self, sequence: str) -> SyntheticScene:
        """The exact scene of a sequence, loaded once (per process: each DataLoader worker keeps its own)."""
        if sequence not in self._scenes:
            self._scenes[sequence] = SyntheticScene(self.root, sequence)
        return self._scenes[sequence]

    def generator(self, index: int) -> np.random.Generator:
        if self.sampling.seed is None:
            entropy = int(torch.randint(0, 2**62, (), dtype=torch.int64))
            return np.random.default_rng(np.random.SeedSequence([entropy, index]))
        return np.random.default_rng(np.random.SeedSequence([int(self.sampling.seed), index]))

    def __getitem__(self, index: int) -> dict:
        item = self.base[index]
        sequence = self.base.datapoints[index][0]
        item.update(self.labels(item, self.scene(sequence), self.generator(index)))
        return item

    def labels(self, item: dict, scene: SyntheticScene, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Points, labels and modes of one item (view 0's camera, frame and pose taken from the item)."""
        camera = f"image_0{int(item['cameras'][0])}"
        depth = scene.depth(camera, int(item["frame_ids"][0])).numpy().astype(np.float64)
        h, w = depth.shape
        n = self.sampling.points_per_element
        rows = rng.integers(0, h, n)
        cols = rng.integers(0, w, n)
        k = item["intrinsics"][0].double().numpy()
        u, v = (2.0 * cols + 1.0) / w - 1.0, (2.0 * rows + 1.0) / h - 1.0
        rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones(n)], axis=-1)  # z = 1
        length = np.linalg.norm(rays, axis=-1)
        t, modes = sample_distances(rng, depth[rows, cols] * length, self.sampling)
        points = rays / length[:, None] * t[:, None]  # view 0's camera frame, float64
        world = torch.from_numpy(points) @ item["world_from_view0"][:3, :3].T + item["world_from_view0"][:3, 3]
        occupied = scene.occupied(world)
        return {
            "occupancy_points": torch.from_numpy(points).float(),
            "occupancy_labels": occupied.float(),
            "occupancy_modes": torch.from_numpy(modes),
        }


__all__ = ["BEHIND", "SURFACE", "UNIFORM", "MissingSceneError", "OccupancyLabelledDataset", "OccupancySampling",
           "sample_distances", "sampling_from_config"]

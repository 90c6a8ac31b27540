"""Reading the exact ground truth of a synthetic tree: :func:`load_scene` returns a :class:`SyntheticScene`.

Everything is in the world frame of ``poses.txt`` (z up, street along +x). ``occupied`` and ``ray_distance`` are
computed from ``ground_truth/<seq>/scene.json``; ``depth`` reads the rendered z-depth of a perspective frame.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from datasets.kitti_360.errors import MissingFileError
from datasets.synthetic.occupancy import OccupancyTester
from datasets.synthetic.raycast import Hits, RayCaster
from datasets.synthetic.render import TILE
from datasets.synthetic.scene import SceneDescription

DEPTH_CAMERAS = ("image_00", "image_01")


class SyntheticScene:
    """The exact scene of one sequence of a synthetic tree."""

    def __init__(self, root: Path, sequence: str):
        self.root = Path(root)
        self.sequence = sequence
        path = self.root / "ground_truth" / sequence / "scene.json"
        if not path.is_file():
            raise MissingFileError(path, f"the scene description of {sequence} (is {root} a synthetic city tree?)")
        self._set_description(SceneDescription.load(path))

    def _set_description(self, description: SceneDescription) -> None:
        self.description = description
        self._occupancy = OccupancyTester(description)
        self._caster = RayCaster(description)

    @classmethod
    def from_description(cls, description: SceneDescription, sequence: str = "") -> SyntheticScene:
        """The exact scene of a description that was never written to disk (``depth`` is unavailable)."""
        scene = cls.__new__(cls)
        scene.root, scene.sequence = Path(), sequence
        scene._set_description(description)
        return scene

    def occupied(self, points_world: Float[Tensor, "N 3"]) -> Bool[Tensor, "N"]:
        """Whether each world point lies inside the ground or an object (exact)."""
        return self._occupancy(points_world)

    def depth(self, camera: str, frame: int) -> Float[Tensor, "H W"]:
        """The z-depth image (float32, ``inf`` where nothing is hit) of a perspective camera at a frame id."""
        if camera not in DEPTH_CAMERAS:
            raise ValueError(f"depth exists for {DEPTH_CAMERAS}, not {camera!r}")
        path = self.root / "ground_truth" / self.sequence / "depth" / camera / f"{frame:010d}.npy"
        if not path.is_file():
            raise MissingFileError(path, f"the exact depth of {camera}, frame {frame}")
        return torch.from_numpy(np.load(path))

    def ray_distance(self, origin: Float[Tensor, "3"], directions: Float[Tensor, "N 3"],
                     max_distance: float = math.inf) -> Float[Tensor, "N"]:
        """Distance along each ray from one world ``origin`` to the first surface (``inf`` if none)."""
        return self.cast(origin, directions, max_distance).distance

    def cast(self, origin: Float[Tensor, "3"], directions: Float[Tensor, "N 3"],
             max_distance: float = math.inf) -> Hits:
        """First hits ``[N]`` of rays from one world ``origin``: metric distance (``inf`` if none), unit normal and
        surface index (see :class:`~datasets.synthetic.raycast.Hits`; ``-1`` where nothing is hit).

        ``directions`` need not be unit length. Rays are culled in consecutive groups of 64, so passing
        neighbouring rays next to each other (pixel order) is faster, though any order gives the exact result.
        """
        device = directions.device
        d = directions.detach().to("cpu", torch.float64)
        d = (d / d.norm(dim=-1, keepdim=True)).float()
        n, size = len(d), TILE * TILE
        if n == 0:
            return Hits(torch.empty(0), torch.empty(0, 3), torch.empty(0, dtype=torch.long))
        padded = torch.cat([d, d[-1:].expand(-n % size, 3)]) if n % size else d
        hits = self._caster.cast(origin.detach().cpu().double().numpy(), padded.reshape(-1, size, 3),
                                 max_distance=max_distance)
        return Hits(*(v.reshape(-1, *v.shape[2:])[:n].to(device) for v in (hits.distance, hits.normal, hits.surface)))


def load_scene(root: Path | str, sequence: str) -> SyntheticScene:
    return SyntheticScene(Path(root), sequence)

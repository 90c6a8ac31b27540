"""Exact occupancy of a synthetic scene: is a world point inside the ground or inside any primitive?

The test is exact (float64, from the scene description). It is fast on large point sets because primitives are
binned into slabs along the street (x) and each point is tested only against the primitives of its slab.
Surfaces themselves count as free (strict inequalities); they have measure zero.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from datasets.synthetic.scene import SceneDescription

SLAB_WIDTH = 8.0  # metres along x
POINT_CHUNK = 65536


class OccupancyTester:
    """Precomputed slab index of a scene; call it with world points ``[N, 3]``."""

    def __init__(self, scene: SceneDescription):
        self.ground = scene.ground
        self.boxes = torch.from_numpy(scene.boxes.params)
        self.cylinders = torch.from_numpy(scene.cylinders.params)
        self.spheres = torch.from_numpy(scene.spheres.params)
        # x extent of every primitive, to find the primitives that overlap a slab.
        self._extents = {
            "box": (self.boxes[:, 0], self.boxes[:, 3]),
            "cylinder": (self.cylinders[:, 0] - self.cylinders[:, 4], self.cylinders[:, 0] + self.cylinders[:, 4]),
            "sphere": (self.spheres[:, 0] - self.spheres[:, 3], self.spheres[:, 0] + self.spheres[:, 3]),
        }

    def _in_slab(self, kind: str, slab: int) -> Tensor:
        lo, hi = self._extents[kind]
        return (hi >= slab * SLAB_WIDTH) & (lo <= (slab + 1) * SLAB_WIDTH)

    def __call__(self, points_world: Float[Tensor, "N 3"]) -> Bool[Tensor, "N"]:
        if points_world.ndim != 2 or points_world.shape[-1] != 3:
            raise ValueError(f"points must have shape [N, 3], got {tuple(points_world.shape)}")
        device = points_world.device
        p = points_world.detach().to("cpu", torch.float64)
        occupied = p[:, 2] < self.ground.height(p[:, 1])
        slab = torch.floor(p[:, 0] / SLAB_WIDTH).long()
        order = torch.argsort(slab, stable=True)
        slabs, counts = torch.unique_consecutive(slab[order], return_counts=True)
        start = 0
        for s, n in zip(slabs.tolist(), counts.tolist()):
            idx = order[start:start + n]
            start += n
            boxes = self.boxes[self._in_slab("box", s)]
            cyls = self.cylinders[self._in_slab("cylinder", s)]
            sphs = self.spheres[self._in_slab("sphere", s)]
            for c in range(0, n, POINT_CHUNK):
                sub = idx[c:c + POINT_CHUNK]
                occupied[sub] |= _inside(p[sub], boxes, cyls, sphs)
        return occupied.to(device)


def _inside(p: Tensor, boxes: Tensor, cyls: Tensor, sphs: Tensor) -> Tensor:
    q = p[:, None, :]
    hit = ((q > boxes[None, :, :3]) & (q < boxes[None, :, 3:])).all(-1).any(-1)
    d2 = (q[..., 0] - cyls[None, :, 0]) ** 2 + (q[..., 1] - cyls[None, :, 1]) ** 2
    in_cyl = (d2 < cyls[None, :, 4] ** 2) & (q[..., 2] > cyls[None, :, 2]) & (q[..., 2] < cyls[None, :, 3])
    hit |= in_cyl.any(-1)
    d2s = ((q - sphs[None, :, :3]) ** 2).sum(-1)
    hit |= (d2s < sphs[None, :, 3] ** 2).any(-1)
    return hit


def occupied_reference(scene: SceneDescription, points_world: np.ndarray) -> np.ndarray:
    """Plain reference of :class:`OccupancyTester`: every point against every primitive (for tests)."""
    p = torch.from_numpy(np.asarray(points_world, dtype=np.float64))
    ground = p[:, 2] < scene.ground.height(p[:, 1])
    return (ground | _inside(p, torch.from_numpy(scene.boxes.params), torch.from_numpy(scene.cylinders.params),
                             torch.from_numpy(scene.spheres.params))).numpy()

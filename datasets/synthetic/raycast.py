"""Exact, vectorised ray casting against a :class:`SceneDescription`.

All cameras of the rig (pinholes, the MEI fisheyes, the lidar) are central: the rays of one image share one origin.
Rays come in tiles ``[T, S, 3]`` of ``S`` neighbouring rays. Each tile is bounded by a cone (its mean direction and
the largest angle to it), each primitive by a sphere; a primitive whose sphere lies outside a tile's cone cannot be
hit by any ray of the tile and is skipped. The surviving (tile, primitive) pairs are intersected with every ray of
the tile and the nearest hit per ray is kept. Culling only removes pairs that cannot hit, so the result is the same
as testing every ray against every primitive (:meth:`RayCaster.cast_reference`, kept as the test oracle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from datasets.synthetic import intersect
from datasets.synthetic.scene import SceneDescription

PAIR_CHUNK = 1 << 20  # ray-primitive tests per batch (bounds memory)
CULL_MARGIN = 1e-3  # radians added to every cone, so rounding never culls a primitive that is hit
NO_HIT = -1
KINDS = ("box", "cylinder", "sphere")
GROUND_SURFACES = ("road", "raised", "kerb")  # surfaces P, P + 1, P + 2 after the P primitives


@dataclass(frozen=True)
class Hits:
    """Nearest hits of rays ``[...]``: ``distance`` along the unit ray (``inf`` if none), world ``normal``, and
    ``surface``: the global index of the hit primitive (the scene's boxes, then cylinders, then spheres), or
    ``P + i`` for the i-th of :data:`GROUND_SURFACES` (``P`` primitives), or ``NO_HIT``."""

    distance: Tensor
    normal: Tensor
    surface: Tensor


class RayCaster:
    def __init__(self, scene: SceneDescription):
        self.scene = scene
        sets = scene.sets()
        self.params = {ps.kind: torch.from_numpy(ps.params) for ps in sets}
        self.offsets = {}
        start = 0
        for ps in sets:
            self.offsets[ps.kind] = start
            start += len(ps)
        self.count = start
        b, c, s = self.params["box"], self.params["cylinder"], self.params["sphere"]
        self.bound_center = torch.cat([
            (b[:, :3] + b[:, 3:]) / 2,
            torch.stack([c[:, 0], c[:, 1], (c[:, 2] + c[:, 3]) / 2], dim=-1),
            s[:, :3],
        ])
        self.bound_radius = torch.cat([
            (b[:, 3:] - b[:, :3]).norm(dim=-1) / 2,
            torch.sqrt(c[:, 4] ** 2 + ((c[:, 3] - c[:, 2]) / 2) ** 2),
            s[:, 3],
        ])

    def _local(self, origin: Tensor) -> dict[str, Tensor]:
        """Primitive parameters relative to ``origin`` (float64 in, float32 out)."""
        b, c, s = self.params["box"], self.params["cylinder"], self.params["sphere"]
        c_local = c.clone()
        c_local[:, :2] -= origin[:2]
        c_local[:, 2:4] -= origin[2]
        s_local = s.clone()
        s_local[:, :3] -= origin
        return {"box": (b - origin.repeat(2)).float(), "cylinder": c_local.float(), "sphere": s_local.float()}

    def _ground(self, d: Tensor, origin: Tensor) -> tuple[Tensor, Tensor]:
        g = self.scene.ground
        ox, oy, oz = origin.tolist()
        return intersect.ground(d, -oz, g.kerb_height - oz, g.road_half_width - oy, -g.road_half_width - oy)

    def _candidates(self, d: Tensor, valid: Tensor, origin: Tensor, max_distance: float) -> Tensor:
        """``[T, P]``: which primitives may be hit by a ray of each tile."""
        w = valid[..., None].to(d.dtype)
        axis = (d * w).sum(1)
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        cos_min = torch.where(valid, (d * axis[:, None]).sum(-1), 1.0).amin(dim=1)
        half = torch.acos(cos_min.clamp(-1.0, 1.0))
        v = (self.bound_center - origin).float()
        dist = v.norm(dim=-1)
        r = self.bound_radius.float()
        cos_beta = (axis @ (v / dist[:, None].clamp_min(1e-9)).T).clamp(-1.0, 1.0)
        alpha = torch.asin((r / dist.clamp_min(1e-9)).clamp(max=1.0))
        cand = (torch.acos(cos_beta) <= half[:, None] + alpha[None] + CULL_MARGIN) | (dist <= r)[None]
        cand &= (dist - r <= max_distance)[None] & valid.any(dim=1)[:, None]
        return cand

    def cast(self, origin, directions: Tensor, valid: Tensor | None = None, max_distance: float = math.inf) -> Hits:
        """Cast tiles of unit rays ``directions [T, S, 3]`` (float32, world frame) from one world ``origin [3]``.

        Rays with ``valid`` false (default: all valid) and hits beyond ``max_distance`` count as misses.
        """
        origin = torch.as_tensor(np.asarray(origin, dtype=np.float64))
        d = _nudge(directions.float())
        valid = torch.ones(d.shape[:2], dtype=torch.bool) if valid is None else valid
        T, S = d.shape[:2]
        local = self._local(origin)
        best, ground_code = self._ground(d, origin)
        best = best.reshape(-1).clone()
        pairs = self._candidates(d, valid, origin, max_distance).nonzero()
        kinds = _kind_of(pairs[:, 1], self.offsets)
        results = []  # (flat ray index [k, S], distance [k, S], global primitive [k])
        lane = torch.arange(S)
        for kind in KINDS:
            sel = pairs[kinds == _KIND_CODE[kind]]
            chunk = max(1, PAIR_CHUNK // S)
            for i in range(0, len(sel), chunk):
                tile, prim = sel[i:i + chunk].unbind(-1)
                p = local[kind][prim - self.offsets[kind]][:, None]
                t, _ = _kernel(kind, d[tile], p)
                flat = tile[:, None] * S + lane
                best.scatter_reduce_(0, flat.reshape(-1), t.reshape(-1), reduce="amin")
                results.append((flat, t, prim))
        winner = torch.full((T * S,), self.count, dtype=torch.long)
        for flat, t, prim in results:
            is_best = (t == best[flat]) & torch.isfinite(t)
            ids = torch.where(is_best, prim[:, None], self.count)
            winner.scatter_reduce_(0, flat.reshape(-1), ids.reshape(-1), reduce="amin")
        best = torch.where(valid.reshape(-1) & (best <= max_distance), best, math.inf)
        surface = torch.where(winner < self.count, winner, self.count + ground_code.reshape(-1))
        surface = torch.where(torch.isfinite(best), surface, NO_HIT)
        normal = self._normals(d.reshape(-1, 3), best, surface, local)
        return Hits(best.reshape(T, S), normal.reshape(T, S, 3), surface.reshape(T, S))

    def _normals(self, d: Tensor, t: Tensor, surface: Tensor, local: dict) -> Tensor:
        normal = torch.zeros_like(d)
        g = surface >= self.count
        normal[g] = intersect.normals("ground", d[g], t[g], surface[g] - self.count, d[g])
        for kind in KINDS:
            off, n = self.offsets[kind], len(self.params[kind])
            m = (surface >= off) & (surface < off + n)
            if m.any():
                p = local[kind][surface[m] - off]
                tk, code = _kernel(kind, d[m], p)
                normal[m] = intersect.normals(kind, d[m], tk, code, p)
        return normal

    def cast_reference(self, origin, directions: Tensor, max_distance: float = math.inf) -> Tensor:
        """Distances ``[N]`` of rays ``[N, 3]`` against every primitive, without culling (the test oracle)."""
        origin = torch.as_tensor(np.asarray(origin, dtype=np.float64))
        d = _nudge(directions.float())
        local = self._local(origin)
        best, _ = self._ground(d, origin)
        for kind in KINDS:
            if len(local[kind]):
                t, _ = _kernel(kind, d[:, None], local[kind][None])
                best = torch.minimum(best, t.amin(dim=1))
        return torch.where(best <= max_distance, best, math.inf)


_KIND_CODE = {k: i for i, k in enumerate(KINDS)}


def _kind_of(prim: Tensor, offsets: dict[str, int]) -> Tensor:
    return (prim >= offsets["cylinder"]).long() + (prim >= offsets["sphere"]).long()


def _kernel(kind: str, d: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    if kind == "box":
        return intersect.box(d, p[..., :3], p[..., 3:])
    if kind == "cylinder":
        return intersect.cylinder(d, p)
    return intersect.sphere(d, p)


def _nudge(d: Tensor) -> Tensor:
    """Replace exact zero components (which would give 0 * inf = nan in the slab tests) by a tiny value."""
    return torch.where(d == 0, torch.full_like(d, 1e-12), d)

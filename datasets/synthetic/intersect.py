"""Analytic ray-primitive intersections for rays that start at the origin of the local frame.

Every caster call first moves the scene so that the rays' common origin is at ``0``; the formulas below then lose
their origin terms and, more importantly, stay accurate in float32 although world coordinates are hundreds of
metres large. Directions are unit vectors ``[..., 3]`` without exact zero components (the caster nudges them), and
parameters broadcast against them. Each function returns the distance of the first hit in front of the origin
(``inf`` if none) and a small integer telling which face was hit, from which :func:`normals` rebuilds the normal.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-4  # hits closer than this (metres) are ignored, so a ray never hits the surface it starts on
INF = float("inf")


def box(d: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Slab test against axis-aligned boxes; the face code is the axis (0, 1, 2) of the entry face."""
    inv = 1.0 / d
    t1, t2 = lo * inv, hi * inv
    near, axis = torch.minimum(t1, t2).max(dim=-1)
    far = torch.maximum(t1, t2).amin(dim=-1)
    hit = (far >= near) & (near > EPS)
    return torch.where(hit, near, INF), axis


def cylinder(d: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Vertical cylinders ``c = (x, y, z0, z1, r)``; face code 0 side, 1 top cap, 2 bottom cap."""
    cx, cy, z0, z1, r = c.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    a = (dx * dx + dy * dy).clamp_min(1e-20)
    tc = (cx * dx + cy * dy) / a
    # Squared distance between the axis and the ray in the xy plane, from a cross product (no cancellation).
    cross = cx * dy - cy * dx
    disc = r * r - cross * cross / a
    t_side = tc - torch.sqrt(disc.clamp_min(0.0) / a)
    z = t_side * dz
    side = (disc >= 0) & (t_side > EPS) & (z >= z0) & (z <= z1)
    t_side = torch.where(side, t_side, INF)

    def cap(z_cap: Tensor, facing: Tensor) -> Tensor:
        t = z_cap / dz
        ex, ey = t * dx - cx, t * dy - cy
        ok = facing & (t > EPS) & (ex * ex + ey * ey <= r * r)
        return torch.where(ok, t, INF)

    t_top = cap(z1, z1 < 0)  # the origin is above the top cap
    t_bottom = cap(z0, z0 > 0)  # the origin is below the bottom cap
    t, code = torch.stack([t_side, t_top, t_bottom], dim=-1).min(dim=-1)
    return t, code


def sphere(d: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """Spheres ``s = (x, y, z, r)``; the face code is always 0."""
    c, r = s[..., :3], s[..., 3]
    tc = (c * d).sum(-1)
    cx, cy, cz = c.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    # Squared distance between the centre and the ray, from a cross product (no cancellation).
    h2 = (cy * dz - cz * dy).square() + (cz * dx - cx * dz).square() + (cx * dy - cy * dx).square()
    disc = r * r - h2
    t = tc - torch.sqrt(disc.clamp_min(0.0))
    hit = (disc >= 0) & (t > EPS)
    return torch.where(hit, t, INF), torch.zeros_like(t, dtype=torch.long)


def ground(d: Tensor, road_z: float, kerb_z: float, y_left: float, y_right: float) -> tuple[Tensor, Tensor]:
    """The stepped ground in local coordinates: the road plane ``z = road_z`` between ``y_right < y < y_left``,
    the raised plane ``z = kerb_z`` outside, and the two kerb faces between them.

    Face code 0 for the road, 1 for the raised plane, 2 for a kerb face.
    """
    dx, dy, dz = d.unbind(-1)
    t_road = road_z / dz
    y = t_road * dy
    road = (t_road > EPS) & (y > y_right) & (y < y_left)
    t_raised = kerb_z / dz
    y = t_raised * dy
    raised = (t_raised > EPS) & ((y >= y_left) | (y <= y_right))
    t_kerb = torch.full_like(dz, INF)
    for y_face in (y_left, y_right):
        t = y_face / dy
        z = t * dz
        ok = (t > EPS) & (z >= road_z) & (z <= kerb_z)
        t_kerb = torch.minimum(t_kerb, torch.where(ok, t, INF))
    candidates = [torch.where(road, t_road, INF), torch.where(raised, t_raised, INF), t_kerb]
    t, code = torch.stack(candidates, dim=-1).min(dim=-1)
    return t, code


def normals(kind: str, d: Tensor, t: Tensor, code: Tensor, params: Tensor) -> Tensor:
    """Unit surface normals ``[N, 3]`` at hits of :func:`box`, :func:`cylinder`, :func:`sphere` or :func:`ground`
    (``params`` are the hit primitives' local parameters ``[N, k]``; unused for the ground)."""
    n = torch.zeros_like(d)
    if kind == "box":
        sign = -torch.sign(d.gather(-1, code[:, None]))
        n.scatter_(-1, code[:, None], sign)
    elif kind == "cylinder":
        p = d * t[:, None]
        radial = (p[:, :2] - params[:, :2]) / params[:, 4:5]
        n[:, :2] = torch.where((code == 0)[:, None], radial, 0.0)
        n[:, 2] = torch.where(code == 1, 1.0, torch.where(code == 2, -1.0, 0.0))
    elif kind == "sphere":
        n = (d * t[:, None] - params[:, :3]) / params[:, 3:4]
    elif kind == "ground":
        n[:, 2] = torch.where(code < 2, 1.0, 0.0)
        n[:, 1] = torch.where(code == 2, -torch.sign(d[:, 1]), 0.0)
    else:
        raise ValueError(f"unknown primitive kind {kind!r}")
    return n

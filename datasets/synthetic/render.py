"""Rendering the synthetic city: colour and distance images of the cameras, and lidar scans.

Rays are built once per sensor in its own frame (:class:`SensorRays`), grouped into small tiles of neighbouring
pixels or beams so that the caster's cone culling is tight, and rotated into the world for every frame. Pinhole
pixels follow the project's convention (the centre of pixel ``i`` is at ``u = (2i + 1) / W - 1``, which is the
OpenCV/KITTI-360 pixel ``x = i``); fisheye pixels outside the MEI model's domain or beyond the lens's 100 degree
half field of view are black and invalid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bts.geometry import PinholeCamera, pixel_grid
from datasets.kitti_360.calibration import FisheyeCalibration
from datasets.kitti_360.fisheye import fisheye_camera
from datasets.synthetic.appearance import Appearance
from datasets.synthetic.raycast import NO_HIT, RayCaster
from datasets.synthetic.scene import Material, SceneDescription

TILE = 8  # tiles of 8 x 8 pixels
FISHEYE_MAX_ANGLE_DEG = 100.0  # half field of view of the lens: the image circle
# Materials and colours of the three ground surfaces (road, raised ground, kerb faces) that follow the primitives.
GROUND_MATERIALS = (Material.ROAD, Material.SIDEWALK, Material.KERB)
GROUND_COLORS = ((0.33, 0.33, 0.34), (0.58, 0.56, 0.52), (0.62, 0.62, 0.60))


@dataclass(frozen=True)
class SensorRays:
    """Unit ray directions of one sensor in its own frame, in tiles ``[T, S, 3]``; ``pixel [T, S]`` is the flat
    index into the ``height x width`` image (``-1`` for padding); ``valid`` excludes padding and dead pixels."""

    directions: Tensor
    valid: Tensor
    pixel: Tensor
    height: int
    width: int


def _tiles(height: int, width: int, th: int, tw: int) -> Tensor:
    """Flat pixel indices ``[T, th * tw]`` of ``th x tw`` tiles covering the image, ``-1`` outside it."""
    rows = -(-height // th) * th
    cols = -(-width // tw) * tw
    y = torch.arange(rows)[:, None].expand(rows, cols)
    x = torch.arange(cols)[None, :].expand(rows, cols)
    flat = torch.where((y < height) & (x < width), y * width + x, -1)
    return flat.reshape(rows // th, th, cols // tw, tw).permute(0, 2, 1, 3).reshape(-1, th * tw)


def _grouped(dirs: Tensor, ok: Tensor, height: int, width: int, th: int, tw: int) -> SensorRays:
    pixel = _tiles(height, width, th, tw)
    safe = pixel.clamp_min(0)
    d = dirs.reshape(-1, 3)[safe].float()
    d = d / d.norm(dim=-1, keepdim=True)
    valid = (pixel >= 0) & ok.reshape(-1)[safe]
    return SensorRays(d, valid, pixel, height, width)


def pinhole_rays(intrinsics_pixels: np.ndarray, width: int, height: int) -> SensorRays:
    cam = PinholeCamera.from_pixels(torch.from_numpy(intrinsics_pixels), width, height)
    dirs = cam.unproject(pixel_grid(height, width, dtype=torch.float64).reshape(-1, 2))
    return _grouped(dirs, torch.ones(height * width, dtype=torch.bool), height, width, TILE, TILE)


def fisheye_rays(calib: FisheyeCalibration) -> SensorRays:
    """Rays of the radial MEI model, as the official devkit projects (``p1``, ``p2`` are written, not applied)."""
    h, w = calib.height, calib.width
    dirs, in_domain = fisheye_camera(calib).unproject(pixel_grid(h, w, dtype=torch.float64).reshape(-1, 2))
    ok = in_domain & (dirs[:, 2] >= math.cos(math.radians(FISHEYE_MAX_ANGLE_DEG)))
    return _grouped(dirs, ok, h, w, TILE, TILE)


def lidar_rays(directions: Tensor) -> SensorRays:
    """Beam directions ``[beams, azimuths, 3]`` as an image of ``beams`` rows, in tiles of 4 beams x 16 steps."""
    beams, azimuths = directions.shape[:2]
    return _grouped(directions, torch.ones(beams * azimuths, dtype=torch.bool), beams, azimuths, 4, 16)


@dataclass(frozen=True)
class Rendered:
    """Images ``[H, W, ...]`` of one sensor: ``rgb`` in ``[0, 1]`` (black where invalid), ``distance`` along the
    ray (``inf`` for sky and invalid pixels), ``albedo`` of the hit surface (0 for sky)."""

    rgb: Tensor
    distance: Tensor
    albedo: Tensor


class Renderer:
    """Renders any sensor of one sequence's scene."""

    def __init__(self, scene: SceneDescription, seed: int):
        self.caster = RayCaster(scene)
        self.appearance = Appearance(seed, scene.ground, scene.lighting)
        sets = scene.sets()
        self.material = torch.cat([torch.from_numpy(ps.material) for ps in sets]
                                  + [torch.tensor([int(m) for m in GROUND_MATERIALS])])
        self.color = torch.cat([torch.from_numpy(ps.color).float() for ps in sets]
                               + [torch.tensor(GROUND_COLORS, dtype=torch.float32)])
        self.style = torch.cat([torch.from_numpy(ps.style).float() for ps in sets] + [torch.zeros(3, 4)])

    def world_directions(self, rays: SensorRays, sensor_to_world: np.ndarray) -> Tensor:
        # Elementwise rotation rather than a matmul: bit-identical results whatever the BLAS threading.
        r = torch.from_numpy(sensor_to_world[:3, :3]).float()
        d = rays.directions
        w = d[..., 0:1] * r[:, 0] + d[..., 1:2] * r[:, 1] + d[..., 2:3] * r[:, 2]
        return w / w.norm(dim=-1, keepdim=True)

    def render(self, rays: SensorRays, sensor_to_world: np.ndarray, max_distance: float = math.inf) -> Rendered:
        origin = sensor_to_world[:3, 3]
        d = self.world_directions(rays, sensor_to_world)
        hits = self.caster.cast(origin, d, rays.valid, max_distance)
        flat_d = d.reshape(-1, 3)
        t, surface = hits.distance.reshape(-1), hits.surface.reshape(-1)
        rgb = torch.zeros_like(flat_d)
        albedo = torch.zeros_like(flat_d)
        hit = surface != NO_HIT
        sky = rays.valid.reshape(-1) & ~hit
        rgb[sky] = self.appearance.sky(flat_d[sky])
        s = surface[hit]
        points = torch.from_numpy(origin).float() + flat_d[hit] * t[hit, None]
        normals = hits.normal.reshape(-1, 3)[hit]
        albedo[hit] = self.appearance.albedo(self.material[s], points, normals, self.color[s], self.style[s])
        rgb[hit] = self.appearance.shade(albedo[hit], normals)
        return Rendered(*(_to_image(v, rays) for v in (rgb, t, albedo)))


def _to_image(values: Tensor, rays: SensorRays) -> Tensor:
    """Scatter per-ray values (tile order) into an ``[H, W, ...]`` image."""
    pixel = rays.pixel.reshape(-1)
    keep = pixel >= 0
    fill = math.inf if values.ndim == 1 else 0.0
    out = torch.full((rays.height * rays.width, *values.shape[1:]), fill, dtype=values.dtype)
    out[pixel[keep]] = values[keep]
    return out.reshape(rays.height, rays.width, *values.shape[1:])

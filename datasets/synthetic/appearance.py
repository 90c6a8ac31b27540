"""Appearance of the synthetic city: procedural albedo per material, Lambertian shading, sky.

Everything here is a function of the world surface point and its normal only (plus the sky's function of the ray
direction), never of the viewing camera: a point has the same colour in every camera and frame, which is what the
photometric losses of BTS assume. Patterns are deliberately soft (smoothstep edges of a few centimetres, noise
wavelengths of decimetres and more), so that images interpolate well at the working resolutions while every surface
keeps enough texture for a photometric loss to have a gradient.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from datasets.synthetic.noise import NoiseBank
from datasets.synthetic.scene import Ground, Lighting, Material

NOISE_CHANNELS = 12
SUN_COLOR = (1.0, 0.97, 0.92)
SKY_HORIZON = (0.80, 0.85, 0.90)
SKY_ZENITH = (0.36, 0.55, 0.84)


def smoothstep(e0: float, e1: float, x: Tensor) -> Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def band(x: Tensor, lo: float | Tensor, hi: float | Tensor, soft: float) -> Tensor:
    """1 inside ``[lo, hi]``, 0 outside, with soft edges of width ``soft``."""
    return ((x - lo) / soft + 0.5).clamp(0, 1) * ((hi - x) / soft + 0.5).clamp(0, 1)


def _rgb(values, like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype)


class Appearance:
    """Albedo, shading and sky of one sequence."""

    def __init__(self, seed: int, ground: Ground, lighting: Lighting):
        self.noise = NoiseBank(seed, NOISE_CHANNELS)
        self.ground = ground
        self.lighting = lighting
        self.sun = torch.tensor(lighting.sun_direction, dtype=torch.float32)
        self._albedo = {
            Material.ROAD: self._road, Material.SIDEWALK: self._sidewalk, Material.KERB: self._kerb,
            Material.FACADE: self._facade, Material.CAR_BODY: self._car_body,
            Material.CAR_CABIN: self._car_cabin, Material.TYRE: self._plain(0, 2.0, 0.3),
            Material.BARK: self._plain(1, 2.0, 0.2), Material.FOLIAGE: self._plain(2, 4.0, 0.25),
            Material.METAL: self._plain(3, 2.0, 0.1), Material.SIGN: self._plain(4, 2.0, 0.08),
            Material.HEDGE: self._plain(2, 1.5, 0.35), Material.FENCE: self._plain(1, 1.0, 0.25),
            Material.WALL: self._plain(0, 3.0, 0.15), Material.BIN: self._plain(3, 1.0, 0.12),
            Material.VAN_BODY: self._van_body,
        }
        # |y| of the solid lines between the driving and the parking lanes
        self.lane_line_y = ground.road_half_width - ground.parking_width

    def albedo(self, material: Tensor, p: Tensor, n: Tensor, color: Tensor, style: Tensor) -> Tensor:
        """Albedo ``[M, 3]`` of surface points ``p [M, 3]`` (world) with normals ``n`` and per-point material,
        base ``color [M, 3]`` and ``style [M, 4]``."""
        out = torch.zeros_like(p)
        for mat, fn in self._albedo.items():
            m = material == int(mat)
            if m.any():
                out[m] = fn(p[m], n[m], color[m], style[m])
        return out.clamp(0.0, 1.0)

    def shade(self, albedo: Tensor, normals: Tensor) -> Tensor:
        lam = (normals * self.sun).sum(-1).clamp_min(0.0)[:, None]
        light = self.lighting.ambient + self.lighting.diffuse * lam * _rgb(SUN_COLOR, albedo)
        return (albedo * light).clamp(0.0, 1.0)

    def sky(self, d: Tensor) -> Tensor:
        """Sky colour ``[M, 3]`` of unit world directions: a horizon-to-zenith gradient, brighter towards the sun,
        with soft clouds on a virtual plane."""
        dz = d[:, 2].clamp(-1.0, 1.0)
        s = (torch.asin(dz.clamp_min(0.0)) / (math.pi / 2)).pow(0.6)[:, None]
        col = _rgb(SKY_HORIZON, d) * (1 - s) + _rgb(SKY_ZENITH, d) * s
        col = col + 0.05 * (d * self.sun).sum(-1, keepdim=True)
        plane = d[:, :2] / (dz.clamp_min(0.0) + 0.15)[:, None]
        cloud = smoothstep(0.0, 1.8, self.noise.sample(5, plane[:, 0] / 6.0, plane[:, 1] / 6.0))
        cloud = (0.45 * cloud * smoothstep(0.0, 0.2, dz))[:, None]
        return (col * (1 - cloud) + 0.95 * cloud).clamp(0.0, 1.0)

    # --- materials -------------------------------------------------------------------------------------------

    def _plain(self, channel: int, period: float, amplitude: float):
        def fn(p, n, color, style):
            return color * (1.0 + amplitude * self.noise.triplanar(channel, p, n, period))[:, None]
        return fn

    def _road(self, p, n, color, style):
        x, y = p[:, 0], p[:, 1]
        ns = self.noise.sample
        tone = 1.0 + 0.10 * ns(6, x / 5.0, y / 5.0) + 0.10 * ns(7, x / 23.0, y / 23.0)
        tone = tone - 0.12 * smoothstep(0.8, 1.6, ns(8, x / 17.0, y / 17.0))  # repaired patches
        base = color * tone[:, None]
        dash = band(torch.remainder(x, 9.0), 1.0, 5.5, 0.3)
        lines = band(y, -0.12, 0.12, 0.2) * dash
        lines = lines + band(y.abs(), self.lane_line_y - 0.12, self.lane_line_y + 0.12, 0.2)
        paint = 0.62 * (1.0 + 0.05 * ns(9, x / 3.0, y / 3.0))
        w = lines.clamp(0, 1)[:, None]
        return base * (1 - w) + paint[:, None] * w

    def _sidewalk(self, p, n, color, style):
        x, y = p[:, 0], p[:, 1]
        joints = torch.maximum(band(torch.remainder(x + 0.75, 1.5), 0.6, 0.9, 0.25),
                               band(torch.remainder(y + 0.75, 1.5), 0.6, 0.9, 0.25))
        tone = (1.0 + 0.10 * self.noise.sample(9, x / 5.0, y / 5.0)) * (1.0 - 0.12 * joints)
        # The paved strip meets the verge beyond it with a soft edge.
        verge = smoothstep(-0.25, 0.25, y.abs() - (self.ground.road_half_width + self.ground.sidewalk_width))
        grass = self._verge(p)
        return color * tone[:, None] * (1 - verge[:, None]) + grass * verge[:, None]

    def _verge(self, p):
        """Grass and dirt beyond the paved sidewalk (alleys, back yards)."""
        x, y = p[:, 0], p[:, 1]
        grass = _rgb((0.26, 0.34, 0.15), p) * (1.0 + 0.25 * self.noise.sample(10, x / 6.0, y / 6.0))[:, None]
        dirt = _rgb((0.40, 0.34, 0.26), p)
        w = smoothstep(0.3, 1.5, self.noise.sample(11, x / 20.0, y / 20.0))[:, None]
        return grass * (1 - w) + dirt * w

    def _kerb(self, p, n, color, style):
        return color * (1.0 + 0.08 * self.noise.sample(0, p[:, 0] / 3.0, p[:, 2] / 3.0))[:, None]

    def _facade(self, p, n, color, style):
        along_x = n[:, 1].abs() > 0.5
        h = torch.where(along_x, p[:, 0], p[:, 1])
        v = p[:, 2]
        ns = self.noise.sample
        tone = 1.0 + 0.10 * ns(1, h / 9.0, v / 9.0) + 0.07 * ns(2, h / 6.0 + 0.3, v / 6.0)
        wall = color * tone[:, None]
        spacing, width, floor_h, phase = style.unbind(-1)
        f = torch.remainder(v, floor_h)
        g = torch.remainder(h - phase, spacing)
        soft = 0.35
        window = band(f, 0.9, 0.9 + 0.5 * floor_h, soft) * band(g, (spacing - width) / 2, (spacing + width) / 2, soft)
        # Glass darker than the wall but tied to it, so that bright facades do not get harsh window edges.
        glass = (0.5 * wall + _rgb((0.08, 0.10, 0.14), p)) * (1.0 + 0.15 * ns(3, h / 5.0, v / 5.0))[:, None]
        facade = wall * (1 - window[:, None]) + glass * window[:, None]
        roof = _rgb((0.26, 0.25, 0.24), p) * (1.0 + 0.15 * ns(4, p[:, 0] / 5.0, p[:, 1] / 5.0))[:, None]
        return torch.where((n[:, 2] > 0.5)[:, None], roof, facade)

    def _car_body(self, p, n, color, style):
        tone = 1.0 + 0.06 * self.noise.triplanar(6, p, n, 2.5)
        sill = 1.0 - 0.45 * (1.0 - smoothstep(0.35, 0.55, p[:, 2]))
        return color * (tone * sill)[:, None]

    def _van_body(self, p, n, color, style):
        """Box body of a van or truck: paint with panel seams every ``spacing`` metres along the street, a darker
        sill, and the cab's glass (windscreen and side windows, 1.15-1.75 m high) between ``cab0`` and ``cab1``."""
        spacing, phase, cab0, cab1 = style.unbind(-1)
        x, z = p[:, 0], p[:, 2]
        tone = 1.0 + 0.12 * self.noise.triplanar(6, p, n, 1.5)
        seam = band(torch.remainder(x - phase, spacing), 0.0, 0.05, 0.04)
        sill = 1.0 - 0.45 * (1.0 - smoothstep(0.35, 0.55, z))
        body = color * (tone * sill * (1.0 - 0.45 * seam))[:, None]
        window = band(z, 1.15, 1.75, 0.05) * band(x, cab0 + 0.1, cab1 - 0.1, 0.05) * (n[:, 2].abs() < 0.5)
        glass = _rgb((0.09, 0.11, 0.14), p) * (1.0 + 0.35 * self.noise.triplanar(7, p, n, 2.0))[:, None]
        return body * (1 - window[:, None]) + glass * window[:, None]

    def _car_cabin(self, p, n, color, style):
        glass = _rgb((0.09, 0.11, 0.14), p) * (1.0 + 0.35 * self.noise.triplanar(7, p, n, 2.0))[:, None]
        return torch.where((n[:, 2] > 0.5)[:, None], color, glass)

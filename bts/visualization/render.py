"""Depth and colour of a (novel) pinhole view of an encoded scene, as the video scripts render them
(docs/method.md §10).

Rays have *unnormalised* directions (``z = 1`` in the camera frame), so the ray parameter, ``near`` / ``far`` and the
rendered depth are all camera z-depths. Colour is image-based (docs/method.md §1.6): every sample point is projected
into the colour source (for novel views: the input frame only) and its RGB composited with the rendering weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from bts.geometry import PinholeCamera, camera_rays
from bts.rendering.colour import sample_colours_pinhole
from bts.rendering.pixels import image_uv
from bts.rendering.rays import Rays
from bts.rendering.renderer import DensityFn, RendererConfig, render_colours, render_rays


@dataclass(frozen=True)
class ColourSource:
    """Frames to read colour from: images in ``[0, 1]`` ``[F, 3, H, W]`` with normalised intrinsics and poses."""

    images: Float[Tensor, "F 3 H W"]
    intrinsics: Float[Tensor, "F 3 3"]
    cam_to_world: Float[Tensor, "F 4 4"]


@dataclass(frozen=True)
class ViewRender:
    depth: Float[Tensor, "H W"]  # z-depth
    rgb: Float[Tensor, "3 H W"] | None  # in [0, 1], when a colour source was given


def zdepth_rays(intrinsics: Float[Tensor, "3 3"], cam_to_world: Float[Tensor, "4 4"], height: int, width: int,
                ray_positions: str = "centres") -> Rays:
    """Rays through the pixels of an ``height x width`` view with ``z = 1`` camera-frame directions (through the
    pixel centres, or the original's ``align_corners`` positions)."""
    uv = image_uv(height, width, dtype=intrinsics.dtype, device=intrinsics.device, ray_positions=ray_positions)
    origins, directions, valid = camera_rays(PinholeCamera(intrinsics[None]), uv[None], cam_to_world[None],
                                             normalize=False)
    return Rays(origins, directions, valid)


@torch.no_grad()
def render_view(density_fn: DensityFn, intrinsics: Float[Tensor, "3 3"], cam_to_world: Float[Tensor, "4 4"],
                height: int, width: int, config: RendererConfig, colour: ColourSource | None = None,
                rays_per_chunk: int = 4096, ray_positions: str = "centres") -> ViewRender:
    """Render the z-depth (and, with ``colour``, the RGB of its first frame) of one pinhole view, with stratum
    midpoints (deterministic); ``ray_positions`` as in :func:`zdepth_rays`."""
    rays = zdepth_rays(intrinsics, cam_to_world, height, width, ray_positions)
    depths, colours = [], []
    for start in range(0, height * width, rays_per_chunk):
        part = slice(start, start + rays_per_chunk)
        chunk = Rays(rays.origins[:, part], rays.directions[:, part], rays.valid[:, part])
        out = render_rays(density_fn, chunk, config, jitter=False)
        depths.append(out.distance[0])
        if colour is not None:
            points = out.points.reshape(1, -1, 3)
            sampled = sample_colours_pinhole(points, colour.images[None, :1].to(points), colour.intrinsics[None, :1]
                                             .to(points), colour.cam_to_world[None, :1].to(points))
            colours.append(render_colours(out, sampled.colours)[0, 0])
    depth = torch.cat(depths).reshape(height, width).cpu()
    rgb = None if colour is None else torch.cat(colours).reshape(height, width, 3).permute(2, 0, 1).clamp(0, 1).cpu()
    return ViewRender(depth, rgb)

"""Rays through sampled pixels, for pinhole and MEI fisheye frames (docs/method.md §2, "Ray generation").

Directions have unit length, so distances along a ray (and ``near`` / ``far``) are metric; with the
project's pixel-centre convention the ray of pixel (i, j) passes through that pixel's centre.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from bts.geometry import Camera, PinholeCamera, camera_rays
from bts.rendering.pixels import PatchBatch, image_uv


@dataclass(frozen=True)
class Rays:
    """World-frame rays: ``x(s) = origins + s * directions`` with unit ``directions``.

    ``valid`` is false for fisheye pixels outside the lens model's domain (image corners beyond its outermost
    ray), whose direction is meaningless; such rays belong in the loss mask. Pinhole rays are always valid.
    """

    origins: Float[Tensor, "*batch R 3"]
    directions: Float[Tensor, "*batch R 3"]
    valid: Bool[Tensor, "*batch R"]


def select_frames(camera: Camera, frame: Int[Tensor, "B P"]) -> Camera:
    """Pick, per patch, the camera of its frame from a camera batched ``[B, F]``; the result is batched ``[B, P]``.

    Works for any camera dataclass whose tensor fields have leading dimensions ``[B, F]`` (pinhole intrinsics
    ``[B, F, 3, 3]``, fisheye parameters ``[B, F]`` and ``[B, F, 2]``).
    """
    batch_idx = torch.arange(frame.shape[0], device=frame.device)[:, None]
    picked = {
        f.name: getattr(camera, f.name)[batch_idx, frame]
        for f in dataclasses.fields(camera)
        if isinstance(getattr(camera, f.name), Tensor)
    }
    return dataclasses.replace(camera, **picked)


def patch_rays(
    patches: PatchBatch, camera: Camera, cam_to_world: Float[Tensor, "B F 4 4"]
) -> Rays:
    """Rays through every pixel of every patch.

    Args:
        patches: from :func:`bts.rendering.pixels.sample_patches`; ``patches.frame`` indexes the frames below.
        camera: the loss frames' camera, batched ``[B, F]`` (e.g. ``PinholeCamera(intrinsics[B, F, 3, 3])``).
        cam_to_world: the loss frames' poses.

    Returns:
        Rays of shape ``[B, P * S, 3]`` (``valid``: ``[B, P * S]``), patch-major then row-major inside a patch.
    """
    frame = patches.frame.to(cam_to_world.device)
    cam = select_frames(camera, frame)
    pose = cam_to_world[torch.arange(frame.shape[0], device=frame.device)[:, None], frame]  # [B, P, 4, 4]
    origins, directions, valid = camera_rays(cam, patches.uv.to(cam_to_world), pose)
    b, p, s, _ = origins.shape
    return Rays(origins.reshape(b, p * s, 3), directions.reshape(b, p * s, 3), valid.reshape(b, p * s))


def image_rays(
    intrinsics: Float[Tensor, "B 3 3"], cam_to_world: Float[Tensor, "B 4 4"], height: int, width: int,
    *, ray_positions: str = "centres",
) -> Rays:
    """Rays through every pixel of a pinhole image, row-major, ``[B, H * W, 3]`` (for evaluation): through the pixel
    centres, or with ``ray_positions="align_corners"`` where the original code cast them
    (:func:`bts.rendering.pixels.image_uv`)."""
    uv = image_uv(height, width, dtype=intrinsics.dtype, device=intrinsics.device, ray_positions=ray_positions)
    uv = uv.expand(intrinsics.shape[0], -1, -1)
    return Rays(*camera_rays(PinholeCamera(intrinsics), uv, cam_to_world))

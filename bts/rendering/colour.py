"""Image-based colour: read each sample point's colour from the colour-source frames (docs/method.md §1.6).

BTS predicts no colour. A sample point is projected into every colour-source frame j and the frame's RGB is read
there with bilinear interpolation (``align_corners=False``, border padding), giving one colour per frame; the
photometric loss later keeps the best frame per pixel (docs/method.md §3.4). A point outside frame j's frustum gets a
clamped border colour and is flagged invalid for that frame; the caller also ORs in the point's feature-invalid flag
(outside the input frustum) before the weight-guided mask of docs/method.md §3.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from bts.geometry import Camera, PinholeCamera, invert_rigid, transform_points


@dataclass(frozen=True)
class SampledColours:
    """Colours of ``N`` points in ``F`` frames and whether each point lies outside each frame.

    Attributes:
        colours: RGB ``[B, F, N, 3]`` in the range of the source images.
        invalid: ``[B, F, N]``, true where the point is not seen by the frame (behind it or outside the image).
    """

    colours: Float[Tensor, "B F N 3"]
    invalid: Bool[Tensor, "B F N"]


def sample_colours(
    points_world: Float[Tensor, "B N 3"],
    images: Float[Tensor, "B F 3 H W"],
    camera: Camera,
    cam_to_world: Float[Tensor, "B F 4 4"],
) -> SampledColours:
    """Project world points into ``F`` frames of any camera model and read their colours, all frames at once.

    Args:
        points_world: sample points in the frame-0 world frame.
        images: the frames' images, usually in ``[0, 1]`` (the loader's ``[-1, 1]`` mapped by ``(x + 1) / 2``).
        camera: the frames' camera, batched ``[B, F]`` (:class:`PinholeCamera` or :class:`MeiFisheyeCamera`).
        cam_to_world: the frames' poses.

    Returns:
        Colours and invalid flags; invalid is ``not projection.valid``, which for a pinhole is
        ``z <= 1e-3 or |u| > 1 or |v| > 1`` (docs/method.md §1.2).
    """
    b, f, c, h, w = images.shape
    points_cam = transform_points(invert_rigid(cam_to_world), points_world[:, None])  # [B, F, N, 3]
    projection = camera.project(points_cam)
    grid = projection.uv.reshape(b * f, -1, 1, 2).to(images.dtype)
    # One grid_sample over all B*F frames: each frame reads its own N points.
    sampled = F.grid_sample(
        images.reshape(b * f, c, h, w), grid, mode="bilinear", padding_mode="border", align_corners=False
    )  # [B*F, C, N, 1]
    colours = sampled[..., 0].reshape(b, f, c, -1).transpose(-1, -2)
    return SampledColours(colours=colours, invalid=~projection.valid)


def sample_colours_pinhole(
    points_world: Float[Tensor, "B N 3"],
    images: Float[Tensor, "B F 3 H W"],
    intrinsics: Float[Tensor, "B F 3 3"],
    cam_to_world: Float[Tensor, "B F 4 4"],
) -> SampledColours:
    """:func:`sample_colours` for pinhole frames given by normalised intrinsics."""
    return sample_colours(points_world, images, PinholeCamera(intrinsics), cam_to_world)


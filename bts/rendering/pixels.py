"""Which pixels become rays: random patches for training (docs/method.md §3.3) and full images for evaluation.

Pixels are addressed by integer (row, column) and mapped to normalised coordinates at their *centres*
(``u = (2x + 1) / W - 1``, the ``align_corners=False`` convention of :mod:`bts.geometry.cameras`), so a ray
through pixel (i, j) hits exactly the texel that ``grid_sample`` reads for that pixel. ``ray_positions=
"align_corners"`` reproduces the original code instead: its rays pass through ``u = 2x / (W - 1) - 1``
(``torch.linspace(-1, 1, W)``) while its colours and features are read with ``align_corners=False``, so the ray of
column x hits the continuous pixel coordinate ``x W / (W - 1) - 0.5`` (docs/method.md §11-2); the target colour is
the integer pixel in both conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from bts.geometry import pixel_grid, pixels_to_normalized

RAY_POSITIONS = ("centres", "align_corners")


@dataclass(frozen=True)
class PatchBatch:
    """Square patches drawn from the loss frames of every batch element.

    Rays are numbered patch-major and row-major inside a patch: ray ``s`` of a patch is pixel
    ``(top + s // patch_size, left + s % patch_size)``.

    Attributes:
        frame: index into the loss frames, ``[B, P]``.
        top: row of the top-left pixel, ``[B, P]``.
        left: column of the top-left pixel, ``[B, P]``.
        pixels: ``(x, y)`` = (column, row) of every ray's pixel, ``[B, P, S, 2]`` with ``S = patch_size**2``.
        uv: normalised coordinates of the pixel centres, ``[B, P, S, 2]``.
        patch_size: side length of a patch in pixels.
    """

    frame: Int[Tensor, "B P"]
    top: Int[Tensor, "B P"]
    left: Int[Tensor, "B P"]
    pixels: Float[Tensor, "B P S 2"]
    uv: Float[Tensor, "B P S 2"]
    patch_size: int


def sample_patches(
    num_patches: int,
    patch_size: int,
    height: int,
    width: int,
    num_frames: int,
    generator: torch.Generator | None = None,
    *,
    batch_size: int = 1,
    exclusive_bound: bool = False,
    ray_positions: str = "centres",
    device: torch.device | str | None = None,
    frame_weights: Tensor | None = None,
) -> PatchBatch:
    """Draw ``num_patches`` patches per batch element, each from a uniformly chosen frame (or one drawn with
    probabilities proportional to ``frame_weights [num_frames]``).

    The top-left corner is uniform with row in ``[0, H - ps]`` and column in ``[0, W - ps]``, both inclusive, so
    every pixel can be covered. ``exclusive_bound`` reproduces the original's ``[0, H - ps)`` range, which never
    covers the last row and column. The draws are made in the original's order: frames, rows, columns.

    Args:
        num_patches: patches per batch element (BTS: 4096 rays / 64 = 64 patches).
        patch_size: side length ``ps`` (BTS: 8).
        height, width: size of the loss frames.
        num_frames: number of loss frames to choose from.
        generator: random source; draws happen on the CPU so that results do not depend on the device.
        batch_size: number of batch elements ``B``.
        exclusive_bound: reproduce the original's exclusive upper bound.
        ray_positions: where a pixel's ray passes, see :func:`make_patches`.
        device: where the returned tensors live.

    Returns:
        The patches; see :class:`PatchBatch`.
    """
    if patch_size > height or patch_size > width:
        raise ValueError(f"patch size {patch_size} does not fit a {height}x{width} image")
    if num_frames < 1:
        raise ValueError("need at least one frame to draw patches from")
    extra = 0 if exclusive_bound else 1
    if height - patch_size + extra < 1 or width - patch_size + extra < 1:
        raise ValueError(f"no valid exclusive-bound corner for patch size {patch_size} in {height}x{width}")
    shape = (batch_size, num_patches)
    if frame_weights is None:
        frame = torch.randint(0, num_frames, shape, generator=generator)
    else:
        if frame_weights.shape != (num_frames,) or bool((frame_weights < 0).any()) or not frame_weights.sum() > 0:
            raise ValueError(f"frame_weights must be {num_frames} non-negative weights, not all zero; got "
                             f"{frame_weights.tolist()}")
        frame = torch.multinomial(frame_weights.double().cpu().expand(batch_size, -1), num_patches,
                                  replacement=True, generator=generator)
    top = torch.randint(0, height - patch_size + extra, shape, generator=generator)
    left = torch.randint(0, width - patch_size + extra, shape, generator=generator)
    return make_patches(frame, top, left, patch_size, height, width, ray_positions=ray_positions, device=device)


def make_patches(
    frame: Int[Tensor, "B P"],
    top: Int[Tensor, "B P"],
    left: Int[Tensor, "B P"],
    patch_size: int,
    height: int,
    width: int,
    *,
    ray_positions: str = "centres",
    device: torch.device | str | None = None,
) -> PatchBatch:
    """The patches with the given frames and top-left corners (drawn by :func:`sample_patches`, or given and
    checked by :func:`check_patches`).

    ``ray_positions``: ``centres`` (the project's) puts each ray through its pixel's centre; ``align_corners`` at
    the original's ``u = 2x / (W - 1) - 1``, ``v = 2y / (H - 1) - 1`` (see the module docstring).
    """
    check_ray_positions(ray_positions)
    frame, top, left = frame.to(device), top.to(device), left.to(device)
    shape = frame.shape
    offsets = torch.arange(patch_size, device=device)
    rows = (top[..., None, None] + offsets[:, None]).expand(*shape, patch_size, patch_size)
    cols = (left[..., None, None] + offsets[None, :]).expand(*shape, patch_size, patch_size)
    pixels = torch.stack([cols, rows], dim=-1).reshape(*shape, patch_size * patch_size, 2).float()
    uv = pixel_uv(pixels, width, height, ray_positions)
    return PatchBatch(frame=frame, top=top, left=left, pixels=pixels, uv=uv, patch_size=patch_size)


def check_ray_positions(ray_positions: str) -> str:
    if ray_positions not in RAY_POSITIONS:
        raise ValueError(f"ray_positions must be one of {RAY_POSITIONS}, got {ray_positions!r}")
    return ray_positions


def pixel_uv(pixels: Float[Tensor, "... 2"], width: int, height: int, ray_positions: str = "centres"
             ) -> Float[Tensor, "... 2"]:
    """Normalised ``(u, v)`` where the rays of integer pixels ``(x, y)`` pass: ``centres``: ``u = (2x + 1) / W - 1``;
    ``align_corners``: ``u = 2x / (W - 1) - 1`` (the original's ``linspace(-1, 1, W)``); see the module docstring."""
    if check_ray_positions(ray_positions) == "centres":
        return pixels_to_normalized(pixels, width, height)
    return 2.0 * pixels / pixels.new_tensor([max(width - 1, 1), max(height - 1, 1)]) - 1.0


def check_patches(frame: Tensor, top: Tensor, left: Tensor, patch_size: int, height: int, width: int,
                  num_frames: int) -> None:
    """Refuse given patches (not drawn by :func:`sample_patches`, which draws valid ones) that do not fit: other
    shapes than one ``[B, P]``, a frame outside ``[0, num_frames)`` or a corner that puts the patch off the image."""
    if frame.shape != top.shape or frame.shape != left.shape or frame.dim() != 2:
        raise ValueError(f"patch frames, rows and columns must share one [B, P] shape, got {tuple(frame.shape)}, "
                         f"{tuple(top.shape)} and {tuple(left.shape)}")
    if bool((frame < 0).any() or (frame >= num_frames).any()):
        raise ValueError(f"a given patch frame lies outside the group's {num_frames} loss frames")
    if bool((top < 0).any() or (left < 0).any() or (top > height - patch_size).any()
            or (left > width - patch_size).any()):
        raise ValueError(f"a {patch_size}x{patch_size} patch corner lies outside the {height}x{width} image")


def gather_patches(images: Float[Tensor, "B F C H W"], patches: PatchBatch) -> Float[Tensor, "B P C ps ps"]:
    """Cut the patches out of their frames, e.g. the ground-truth colours of the loss frames.

    Pixel centres coincide with texels, so this is exact indexing, not interpolation.
    """
    b = patches.frame.shape[0]
    batch_idx = torch.arange(b, device=images.device)[:, None, None]
    frame_idx = patches.frame[..., None].to(images.device)
    cols = patches.pixels[..., 0].long().to(images.device)
    rows = patches.pixels[..., 1].long().to(images.device)
    picked = images.permute(0, 1, 3, 4, 2)[batch_idx, frame_idx, rows, cols]  # [B, P, S, C]
    return to_patches(picked, patches.patch_size)


def to_patches(values: Float[Tensor, "*batch P S C"], patch_size: int) -> Float[Tensor, "*batch P C ps ps"]:
    """Arrange per-ray values ``[..., P, S, C]`` (row-major inside each patch) as image patches."""
    *batch, p, s, c = values.shape
    if s != patch_size * patch_size:
        raise ValueError(f"{s} rays per patch do not form a {patch_size}x{patch_size} patch")
    return values.reshape(*batch, p, patch_size, patch_size, c).movedim(-1, -3)


def image_uv(height: int, width: int, dtype=torch.float32, device=None, *, ray_positions: str = "centres"
             ) -> Float[Tensor, "HW 2"]:
    """Normalised coordinates of every pixel's ray, row-major: the rays of a full render, through the pixel centres
    (``centres``) or at the original's ``linspace(-1, 1)`` positions (``align_corners``, for imported models)."""
    if check_ray_positions(ray_positions) == "centres":
        return pixel_grid(height, width, dtype=dtype, device=device).reshape(height * width, 2)
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing="ij")
    return pixel_uv(torch.stack([u, v], dim=-1).reshape(height * width, 2), width, height, ray_positions)

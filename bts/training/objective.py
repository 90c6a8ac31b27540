"""The self-supervised training signal of BTS (docs/method.md §3): where a pixel becomes a loss.

One step: split the views into loss and colour frames, encode the input view (flipped with probability 1/2),
cast rays through random patches of the loss frames, render their densities, read every sample's colour from
each colour frame, composite per frame, and score the best frame per pixel (L1 + SSIM) plus edge-aware
smoothness of the rendered distance, over rays that at least one colour frame sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from bts.fields import EncodedViews
from bts.losses import LossWeights, TotalLoss, combine_losses, edge_aware_smoothness, photometric_loss
from bts.losses import weight_guided_mask
from bts.models.kdbts import DistillationAccumulator
from bts.rendering import Rays, gather_patches, patch_rays, sample_colours, sample_patches, to_patches
from bts.rendering.renderer import RendererConfig, RenderOutput, render_colours, render_rays
from bts.training.views import ViewGroup, num_views, split_frames, view_groups


@dataclass(frozen=True)
class ObjectiveConfig:
    patch_size: int = 8
    rays_per_element: int = 4096  # 64 patches of 8x8
    frame_split: str = "kitti360_mono"
    num_timesteps: int = 2
    flip_probability: float = 0.5
    invalid_threshold: float = 0.9
    ssim_weight: float = 0.85
    exclusive_patch_bound: bool = False  # True reproduces the original's never-sampled last row and column
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass(frozen=True)
class StepOutput:
    loss: TotalLoss
    render: RenderOutput
    rendered: Tensor  # [B, F, P, 3, ps, ps] colours of each colour frame
    target: Tensor  # [B, P, 3, ps, ps]
    ray_mask: Tensor  # [B, P, ps, ps], True where the ray is masked
    encoded: EncodedViews


def _patches_per_group(total: int, groups: list[ViewGroup], patch_size: int) -> list[int]:
    """Patches per group, proportional to its number of frames (so each frame is equally likely)."""
    num_patches = total // (patch_size * patch_size)
    if num_patches < 1:
        raise ValueError(f"rays_per_element={total} is less than one {patch_size}x{patch_size} patch")
    frames = [g.num_frames for g in groups]
    counts = [num_patches * f // sum(frames) for f in frames]
    counts[0] += num_patches - sum(counts)
    return counts


def sample_loss_rays(groups: list[ViewGroup], config: ObjectiveConfig, generator: torch.Generator | None
                     ) -> tuple[Rays, Tensor]:
    """Rays through random patches of the loss frames and their target colours ``[B, P, 3, ps, ps]``."""
    rays, targets = [], []
    b = groups[0].images.shape[0]
    device = groups[0].images.device
    for group, count in zip(groups, _patches_per_group(config.rays_per_element, groups, config.patch_size)):
        if count == 0:
            continue
        h, w = group.images.shape[-2:]
        patches = sample_patches(count, config.patch_size, h, w, group.num_frames, generator, batch_size=b,
                                 exclusive_bound=config.exclusive_patch_bound, device=device)
        rays.append(patch_rays(patches, group.camera, group.cam_to_world))
        targets.append(gather_patches(group.images, patches))
    joined = Rays(*(torch.cat([getattr(r, f) for r in rays], dim=1) for f in ("origins", "directions", "valid")))
    return joined, torch.cat(targets, dim=1)


def training_step(model, batch: dict, config: ObjectiveConfig, renderer: RendererConfig,
                  generator: torch.Generator | None = None, flip: bool | None = None) -> StepOutput:
    """Losses of one batch for a model with ``encode``, ``encoder_views`` and ``density`` (BTS, MVBTS, KDBTS).

    A model with ``training_density`` (KDBTS) renders through it and adds its distillation term.
    """
    total_views = num_views(batch)
    loss_views, colour_views = split_frames(total_views, config.num_timesteps, config.frame_split, generator)
    if flip is None:
        flip = bool(torch.rand((), generator=generator) < config.flip_probability)
    views = model.encoder_views(batch["images"].shape[1], training=model.training)
    encoded = model.encode(batch["images"], batch["intrinsics"], batch["cam_to_world"], views, flip=flip)

    kd = DistillationAccumulator() if hasattr(model, "training_density") else None

    def density_fn(points: Tensor):
        out = model.training_density(points, encoded, kd) if kd is not None else model.density(points, encoded)
        return out.sigma, out.invalid

    rays, target = sample_loss_rays(view_groups(batch, loss_views), config, generator)
    render = render_rays(density_fn, rays, renderer, jitter=True, generator=generator)
    b, r, k = render.weights.shape
    points = render.points.reshape(b, r * k, 3)
    colours, invalid = [], []
    for group in view_groups(batch, colour_views):
        sampled = sample_colours(points, group.images, group.camera, group.cam_to_world)
        colours.append(render_colours(render, sampled.colours))
        invalid.append(sampled.invalid.reshape(b, -1, r, k))
    # A sample without a feature (outside the input frustum) cannot give a colour either (docs/method.md §1.6).
    invalid_all = torch.cat(invalid, dim=1) | render.invalid[:, None]
    ps = config.patch_size
    num_patches = r // (ps * ps)
    ray_mask = weight_guided_mask(render.weights, invalid_all, config.invalid_threshold) | ~rays.valid
    ray_mask = ray_mask.reshape(b, num_patches, ps, ps)
    rendered = to_patches(torch.cat(colours, dim=1).reshape(b, -1, num_patches, ps * ps, 3), ps)
    distance = render.distance.reshape(b, num_patches, ps, ps)
    terms = {
        "photometric": photometric_loss(rendered, target, ray_mask, ssim_weight=config.ssim_weight).loss,
        "smoothness": edge_aware_smoothness(distance, target, ray_mask),
    }
    if kd is not None:
        terms["distillation"] = kd.mean()
    return StepOutput(combine_losses(terms, config.weights), render, rendered, target, ray_mask, encoded)

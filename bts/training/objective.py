"""The self-supervised training signal of BTS (docs/method.md §3): where a pixel becomes a loss.

One step: split the views into loss and colour frames, encode the input view (flipped with probability 1/2),
cast rays through random patches of the loss frames, render their densities, read every sample's colour from
each colour frame, composite per frame, and score the best frame per pixel (L1 + SSIM) plus edge-aware
smoothness of the rendered distance, over rays that at least one colour frame sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from bts.fields import EncodedViews
from bts.losses import LossWeights, TotalLoss, combine_losses, edge_aware_smoothness, photometric_loss
from bts.losses import weight_guided_mask
from bts.losses.distillation import DistillationAccumulator
from bts.losses.learned_trust import learned_trust_terms
from bts.losses.trust import held_out_frames, photometric_mask
from bts.models.contract import Batch, DistillingModel, FieldModel
from bts.models.views import FISHEYE_VIEWS
from bts.rendering import Rays, gather_patches, make_patches, patch_rays, sample_colours, sample_patches, to_patches
from bts.rendering.pixels import RAY_POSITIONS, check_patches
from bts.rendering.renderer import RendererConfig, RenderOutput, render_colours, render_rays
from bts.training.views import ViewGroup, grouped_views, num_views, split_frames, view_groups


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
    ray_positions: str = "centres"  # align_corners: the original's rays through linspace(-1, 1) (pixels.py)
    # The share of the loss patches cast from the fisheye loss frames (views 4-7), the rest from the perspective ones;
    # None: as the frames are counted (half each with the standard 8 views; the paper's). A recipe variant of the
    # synthetic city's completion study (docs/reproduce/oracle_loss.md: the fisheye rays prefer the true scene to
    # its hidden-space shadow, the perspective rays the reverse).
    fisheye_share: float | None = None
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self):
        if self.ray_positions not in RAY_POSITIONS:
            raise ValueError(f"loss.ray_positions must be one of {list(RAY_POSITIONS)}, got {self.ray_positions!r}")
        if self.fisheye_share is not None and not 0.0 <= self.fisheye_share <= 1.0:
            raise ValueError(f"loss.fisheye_share must be null or in [0, 1], got {self.fisheye_share!r}")


@dataclass(frozen=True)
class StepDraws:
    """The random choices of one training step, given instead of drawn: the seam through which a step of another
    implementation is replayed (tests/training/test_parity_train.py replays the original code's). A field left
    ``None`` is drawn from the step's generator as usual.

    Attributes:
        loss_views, colour_views: the frame split (view indices, in slot order).
        flip: whether the encoder input is flipped.
        encoder_views: the encoded views, in slot order (MVBTS draws them).
        patches: per group of loss frames (pinhole, then native fisheye; :func:`bts.training.views.view_groups`),
            the ``(frame, top, left)`` of every patch, each ``[B, P]``; ``frame`` indexes the group's frames.
        distances: the sample distances along the loss rays, ``[B, R, K]``, after jitter.
        view_dropout: MVBTS and KDBTS: the dropped (view, point) pairs of the encoded views, ``[B, V, R * K]``
            (view 0 never dropped); it needs the render's points in one density call (``renderer.chunk_points``).
    """

    loss_views: list[int] | None = None
    colour_views: list[int] | None = None
    flip: bool | None = None
    encoder_views: list[int] | None = None
    patches: list[tuple[Tensor, Tensor, Tensor]] | None = None
    distances: Tensor | None = None
    view_dropout: Tensor | None = None

    def __post_init__(self):
        if (self.loss_views is None) != (self.colour_views is None):
            raise ValueError("StepDraws needs both loss_views and colour_views, or neither")


@dataclass(frozen=True)
class StepOutput:
    loss: TotalLoss
    rays: Rays  # the loss rays, [B, R]
    render: RenderOutput
    rendered: Tensor  # [B, F, P, 3, ps, ps] colours of each colour frame
    target: Tensor  # [B, P, 3, ps, ps]
    ray_mask: Tensor  # [B, P, ps, ps], True where the ray is masked
    encoded: EncodedViews
    metrics: dict[str, Tensor] = field(default_factory=dict)  # logged beside the loss terms, not optimised
    patch_views: Tensor | None = None  # [B, P]: the datapoint view (docs/method.md §3.1 order) of every loss patch
    photometric_per_pixel: Tensor | None = None  # [B, P, ps, ps]: the error the photometric term averages (unmasked)


def _patches_per_group(total: int, shares: list[float], patch_size: int) -> list[int]:
    """Patches per group, proportional to its share (its number of frames, so that each frame is equally likely, or
    its frames' drawing weights); the rounding remainder goes to the first group."""
    num_patches = total // (patch_size * patch_size)
    if num_patches < 1:
        raise ValueError(f"rays_per_element={total} is less than one {patch_size}x{patch_size} patch")
    counts = [int(num_patches * f // sum(shares)) for f in shares]
    counts[0] += num_patches - sum(counts)
    return counts


def _fisheye_weights(groups: list[ViewGroup], frame_views: list[int], share: float) -> list[Tensor]:
    """Per group, the drawing weight of each frame such that ``share`` of all patches come from the fisheye views
    (``FISHEYE_VIEWS``), spread evenly over them, and the rest evenly over the perspective views."""
    fisheye = [v in FISHEYE_VIEWS for v in frame_views]
    kinds = {"fisheye": sum(fisheye), "perspective": len(fisheye) - sum(fisheye)}
    for kind, wanted in (("fisheye", share), ("perspective", 1.0 - share)):
        if wanted > 0 and kinds[kind] == 0:
            raise ValueError(f"loss.fisheye_share={share} asks for {kind} loss patches, but the loss frames "
                             f"(views {frame_views}) hold no {kind} view (fisheyes are views {list(FISHEYE_VIEWS)})")
    per_frame = [share / kinds["fisheye"] if f else (1.0 - share) / max(kinds["perspective"], 1) for f in fisheye]
    out, start = [], 0
    for group in groups:
        out.append(torch.tensor(per_frame[start:start + group.num_frames], dtype=torch.float64))
        start += group.num_frames
    return out


def sample_loss_rays(groups: list[ViewGroup], config: ObjectiveConfig, generator: torch.Generator | None,
                     patches: list[tuple[Tensor, Tensor, Tensor]] | None = None,
                     frame_views: list[int] | None = None) -> tuple[Rays, Tensor, Tensor]:
    """Rays through random patches of the loss frames, their target colours ``[B, P, 3, ps, ps]`` and the frame of
    every patch ``[B, P]`` (an index into all groups' frames, one group after the other).

    ``patches``: the ``(frame, top, left)`` of every group's patches, instead of drawing them. ``frame_views``: the
    datapoint view of every frame (all groups, in order), which ``loss.fisheye_share`` needs.
    """
    rays, targets, frames, offset = [], [], [], 0
    b = groups[0].images.shape[0]
    device = groups[0].images.device
    if patches is not None and len(patches) != len(groups):
        raise ValueError(f"given patches for {len(patches)} groups of loss frames, the batch has {len(groups)}")
    weights: list[Tensor | None] = [None] * len(groups)
    shares: list[float] = [g.num_frames for g in groups]
    if config.fisheye_share is not None and patches is None:
        if frame_views is None:
            raise ValueError("loss.fisheye_share needs the loss frames' views (frame_views)")
        weights = _fisheye_weights(groups, frame_views, config.fisheye_share)
        shares = [float(w.sum()) for w in weights]
    counts = _patches_per_group(config.rays_per_element, shares, config.patch_size)
    for i, (group, count) in enumerate(zip(groups, counts)):
        h, w = group.images.shape[-2:]
        if patches is not None:
            frame, top, left = patches[i]
            check_patches(frame, top, left, config.patch_size, h, w, group.num_frames)
            drawn = make_patches(frame, top, left, config.patch_size, h, w, ray_positions=config.ray_positions,
                                 device=device)
        elif count == 0:
            continue
        else:
            drawn = sample_patches(count, config.patch_size, h, w, group.num_frames, generator, batch_size=b,
                                   exclusive_bound=config.exclusive_patch_bound,
                                   ray_positions=config.ray_positions, device=device, frame_weights=weights[i])
        rays.append(patch_rays(drawn, group.camera, group.cam_to_world))
        targets.append(gather_patches(group.images, drawn))
        frames.append(drawn.frame.to(device) + offset)
        offset += group.num_frames
    joined = Rays(*(torch.cat([getattr(r, f) for r in rays], dim=1) for f in ("origins", "directions", "valid")))
    return joined, torch.cat(targets, dim=1), torch.cat(frames, dim=1)


def training_step(model: FieldModel, batch: Batch, config: ObjectiveConfig, renderer: RendererConfig,
                  generator: torch.Generator | None = None, flip: bool | None = None,
                  draws: StepDraws | None = None) -> StepOutput:
    """Losses of one batch for a :class:`~bts.models.contract.FieldModel` (BTS, MVBTS, KDBTS).

    A :class:`~bts.models.contract.DistillingModel` (KDBTS) renders through its ``training_density`` and adds its
    distillation term; a model with ``training_density`` that does not meet the rest of that contract is an error,
    not a silently dropped term. ``draws`` replaces the step's random choices (:class:`StepDraws`); ``flip`` is a
    shorthand for ``draws.flip``.
    """
    kd = DistillationAccumulator() if isinstance(model, DistillingModel) else None
    if kd is None and hasattr(model, "training_density"):
        missing = [name for name in ("kind", "encoder_views", "encode", "density", "density_fn")
                   if not hasattr(model, name)]
        raise TypeError(f"{type(model).__name__} has training_density but is not a DistillingModel "
                        f"(bts/models/contract.py): it lacks {', '.join(missing)}, so its distillation term "
                        "would be dropped")
    draws = draws or StepDraws()
    total_views = num_views(batch)
    if draws.loss_views is not None:
        loss_views, colour_views = list(draws.loss_views), list(draws.colour_views)
    else:
        loss_views, colour_views = split_frames(total_views, config.num_timesteps, config.frame_split, generator)
    flip = draws.flip if flip is None else flip
    if flip is None:
        flip = bool(torch.rand((), generator=generator) < config.flip_probability)
    views = draws.encoder_views
    if views is None:
        views = model.encoder_views(batch["images"].shape[1], training=model.training)
    encoded = model.encode(batch["images"], batch["intrinsics"], batch["cam_to_world"], views, flip=flip)


    given = {} if draws.view_dropout is None else {"dropped": draws.view_dropout}

    def density_fn(points: Tensor):
        if kd is not None:
            out = model.training_density(points, encoded, kd, **given)
        else:
            out = model.density(points, encoded, **given)
        return out.sigma, out.invalid

    frame_views = grouped_views(batch, loss_views)
    rays, target, patch_frames = sample_loss_rays(view_groups(batch, loss_views), config, generator, draws.patches,
                                                  frame_views)
    patch_views = torch.tensor(frame_views, device=patch_frames.device)[patch_frames]
    render = render_rays(density_fn, rays, renderer, jitter=True, generator=generator, distances=draws.distances)
    b, r, k = render.weights.shape
    points = render.points.reshape(b, r * k, 3)
    colours, invalid, per_sample = [], [], []
    for group in view_groups(batch, colour_views):
        sampled = sample_colours(points, group.images, group.camera, group.cam_to_world)
        colours.append(render_colours(render, sampled.colours))
        invalid.append(sampled.invalid.reshape(b, -1, r, k))
        per_sample.append(sampled.colours.reshape(b, -1, r, k, 3))
    # A sample without a feature (outside the input frustum) cannot give a colour either (docs/method.md §1.6).
    invalid_all = torch.cat(invalid, dim=1) | render.invalid[:, None]
    ps = config.patch_size
    num_patches = r // (ps * ps)
    ray_mask = weight_guided_mask(render.weights, invalid_all, config.invalid_threshold) | ~rays.valid
    ray_mask = ray_mask.reshape(b, num_patches, ps, ps)
    rendered = to_patches(torch.cat(colours, dim=1).reshape(b, -1, num_patches, ps * ps, 3), ps)
    distance = render.distance.reshape(b, num_patches, ps, ps)
    photometric = photometric_loss(rendered, target, ray_mask, ssim_weight=config.ssim_weight)
    terms = {
        "photometric": photometric.loss,
        "smoothness": edge_aware_smoothness(distance, target, ray_mask),
    }
    metrics = {}
    if kd is not None:
        select = None
        if kd.ray_mask is not None:  # kd.mask=photometric | learned: decided on this pass's colours
            student, teacher, inside = kd.kept_samples(render.distances.shape)
            teacher, student = F.softplus(teacher), F.softplus(student)
            evidence = (render.distances, torch.cat(per_sample, dim=1), invalid_all, target,
                        held_out_frames(colour_views, views, batch["images"].shape[1]))
            options = {"hard_alpha_cap": renderer.hard_alpha_cap, "invalid_threshold": config.invalid_threshold,
                       "ssim_weight": config.ssim_weight}
            won = photometric_mask(teacher, student, *evidence, **options)  # [B, R]
            if kd.ray_mask == "photometric":  # the rays where the teacher's render wins
                select = won[..., None].expand_as(inside)
            else:
                trust = learned_trust_terms(teacher, student, kd.kept_samples(render.distances.shape, "trust"),
                                            inside, *evidence, rho=won.float().mean(), **options)
                select, terms["trust"] = trust.select, trust.loss
                metrics.update(kd_trust_mixture=trust.mixture, kd_trust_mean=trust.mean_trust,
                               kd_trust_target=won.float().mean())
        terms["distillation"] = kd.loss(render.distances, renderer.hard_alpha_cap, select=select)
        if kd.coverage() is not None:
            metrics["kd_coverage"] = torch.tensor(kd.coverage())
    return StepOutput(combine_losses(terms, config.weights), rays, render, rendered, target, ray_mask, encoded,
                      metrics, patch_views, photometric.per_pixel)

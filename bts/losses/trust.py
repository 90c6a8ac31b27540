"""Where to trust the teacher: per-point masks of selective distillation (``kd.mask``; docs/method.md §5.5).

The MVBTS teacher can only add what the student cannot see where one of its other encoded views sees the point; in
space no encoded view sees, it is a prior with the student's own blind spot. A mask keeps the distillation term on
the points where the teacher has evidence and drops it elsewhere. Notation: encoded views ``k = 0 .. V-1`` (view 0 is
the student's input), a point ``x`` with camera z ``z_k(x)`` and normalised image position ``u_k(x)`` in view ``k``,
``in_k(x)`` when it projects inside view ``k``'s frustum, and ``D_k`` the teacher's depth image rendered from camera
``k``:

- **visibility** (geometry, no learning)::

      vis_k(x) = in_k(x) * [ z_k(x) <= D_k(u_k(x)) * (1 + rel_tol) ]
      n_vis(x) = sum_{k >= 1} vis_k(x),        m(x) = [ n_vis(x) >= 1 ]

  the point is seen (not hidden behind the teacher's own surface) by at least one encoded view other than the input.
- **agreement** (per-view decodes)::

      sigma_k(x) = the teacher's head with only view k valid
      m(x) = [ sum_{k >= 0} vis_k(x) >= 2 ] * [ the occupancy decisions sigma_k(x) > 0.5 of those views are equal ]

  at least two views see the point and, decoded alone, they say the same. Only views that see ``x`` vote: a view's
  decode in its own occluded space is a prior with the student's bias, not evidence.
- **photometric** (per loss ray, after Depth Hints; training only): render the ray ``r`` of loss camera ``c``
  through the teacher and through the student, colour it from every colour frame ``j`` (the step's own samples, as
  the photometric loss does) and keep the ray where the teacher reconstructs the target better::

      e^X(r) = min_{j held out} rho(C^X_j(r), I_c(r)),     X in {teacher, student},  rho = the loss's L1 + SSIM
      m(r) = [ e^T(r) + margin < e^S(r) ]              (every sample of the ray inherits m(r))

  Held out means a colour frame the teacher did not encode in this step: on its own inputs the teacher would be
  judged on images it has seen. A frame whose samples fall outside it (the weight-guided rule, threshold 0.9, with
  each field's own weights) does not count; a ray no held-out frame scores for the teacher is not kept. The rule
  speaks for what camera ``c`` sees along ``r``, which is where the ray losses put their weight.

:func:`visible_in_views`, :func:`visibility_mask`, :func:`agreement_mask` and :func:`photometric_mask` are pure
functions of tensors (tested on hand-built scenes); :func:`teacher_view_depths` and :func:`trust_mask` apply the
point masks to a multi-view field (:class:`bts.fields.multi_view.MultiViewField`: the KDBTS teacher in training, an
MVBTS model in evaluation); the training step applies the photometric one (:mod:`bts.training.objective`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from bts.fields.tokens import EncodedViews, project_to_views
from bts.geometry import invert_rigid
from bts.losses.masking import weight_guided_mask
from bts.losses.photometric import photometric_error
from bts.rendering.compositing import composite, composite_values
from bts.rendering.pixels import to_patches
from bts.rendering.renderer import RendererConfig, render_depth

MASKS = ("none", "visibility", "agreement", "photometric", "learned")
# Decided after the training step's render pass, from its colours (training only; no value at an evaluation point):
# the photometric rule per loss ray, and the learned mask (bts/losses/learned_trust.py), trained on that evidence.
RAY_MASKS = ("photometric", "learned")
POINT_MASKS = tuple(m for m in MASKS if m not in ("none", *RAY_MASKS))
PHOTOMETRIC_MARGIN = 0.0  # Depth Hints' argmin over the two fields: no margin
# The teacher's depth image of each encoded view: at 1/4 of the feature map's size, 32 midpoint samples per ray (a
# coarse surface is enough to tell seen from hidden; it costs about one more render pass of the training step).
MASK_DOWNSAMPLE = 4
MASK_RENDERER = RendererConfig(num_samples=32)
OCCUPIED_SIGMA = 0.5  # the evaluation's decision: occupied <=> sigma > 0.5
REL_TOL = 0.05  # a point up to 5 % behind the rendered surface of a view still counts as seen (the surface itself)


def check_mask(name: str) -> str:
    if name not in MASKS:
        raise ValueError(f"kd.mask must be one of {list(MASKS)}, got {name!r}")
    return name


def depth_at(depth: Float[Tensor, "B V h w"], uv: Float[Tensor, "B V N 2"]) -> Float[Tensor, "B V N"]:
    """Each view's depth image at the points' normalised positions (``[-1, 1]``, pixel centres; nearest pixel, so
    that a depth edge is not blurred into the space between a surface and its background)."""
    b, v, h, w = depth.shape
    grid = uv.reshape(b * v, 1, -1, 2)
    out = F.grid_sample(depth.reshape(b * v, 1, h, w), grid, mode="nearest", padding_mode="border",
                        align_corners=False)
    return out.reshape(b, v, -1)


def visible_in_views(z: Float[Tensor, "B V N"], uv: Float[Tensor, "B V N 2"], invalid: Bool[Tensor, "B V N"],
                     depth: Float[Tensor, "B V h w"], rel_tol: float = REL_TOL) -> Bool[Tensor, "B V N"]:
    """``vis_k(x)``: inside view ``k``'s frustum and not behind its rendered surface (module docstring)."""
    return ~invalid & (z <= depth_at(depth, uv) * (1.0 + rel_tol))


def visibility_mask(visible: Bool[Tensor, "B V N"]) -> Bool[Tensor, "B N"]:
    """Seen by at least one encoded view other than the input view 0."""
    return visible[:, 1:].any(dim=1)


def agreement_mask(sigma_views: Float[Tensor, "B V N"], visible: Bool[Tensor, "B V N"],
                   threshold: float = OCCUPIED_SIGMA) -> Bool[Tensor, "B N"]:
    """Seen by at least two encoded views whose single-view decodes make the same occupancy decision."""
    occupied = sigma_views > threshold
    seen = visible.sum(dim=1)
    any_occupied = (occupied & visible).any(dim=1)
    any_empty = (~occupied & visible).any(dim=1)
    return (seen >= 2) & ~(any_occupied & any_empty)


def single_view_decodes(head, tokens: Float[Tensor, "B V N D"], invalid: Bool[Tensor, "B V N"]
                        ) -> Float[Tensor, "B V N"]:
    """``sigma_k(x)``: the fusion head run with only view ``k`` valid, for every view (where ``x`` is outside view
    ``k``'s frustum the value means nothing; the callers' visibility masks it)."""
    v = tokens.shape[1]
    out = []
    for k in range(v):
        only = torch.ones_like(invalid)
        only[:, k] = False  # decoded even outside view k's frustum (border features), so no view is all-masked
        out.append(F.softplus(head(tokens, only)))
    return torch.stack(out, dim=1)


@torch.no_grad()
def teacher_view_depths(field, encoded: EncodedViews, downsample: int = MASK_DOWNSAMPLE,
                        renderer: RendererConfig = MASK_RENDERER) -> Float[Tensor, "B V h w"]:
    """The z-depth image of every encoded view rendered through the multi-view ``field`` (fused over all encoded
    views, no view dropout), at ``1/downsample`` of the feature map's size."""
    h, w = encoded.features.shape[-2:]
    h, w = max(1, h // downsample), max(1, w // downsample)
    cam_to_world = invert_rigid(encoded.world_to_cam)

    def fused(points: Tensor):
        tokens = field.tokens(points, encoded)
        out = field(points, encoded, tokens=tokens, dropped=torch.zeros_like(tokens.invalid))
        return out.sigma, out.invalid

    return torch.stack([render_depth(fused, encoded.intrinsics[:, k], cam_to_world[:, k], h, w, renderer)
                        for k in range(encoded.num_views)], dim=1)


@torch.no_grad()
def trust_mask(name: str, field, points: Float[Tensor, "B N 3"], encoded: EncodedViews,
               depths: Float[Tensor, "B V h w"], tokens=None) -> Bool[Tensor, "B N"]:
    """Mask ``name`` (``visibility`` or ``agreement``) of the multi-view ``field`` at ``points``, with the views'
    depth images ``depths`` (:func:`teacher_view_depths`) and, if already computed, the points' ``tokens``."""
    if check_mask(name) == "none":
        raise ValueError("kd.mask=none keeps every point: there is no mask to compute")
    if name in RAY_MASKS:
        raise ValueError(f"kd.mask={name} is decided per loss ray in training (photometric_mask), not per point")
    uv, z, invalid = project_to_views(points, encoded)
    visible = visible_in_views(z, uv, invalid, depths)
    if name == "visibility":
        return visibility_mask(visible)
    tokens = tokens if tokens is not None else field.tokens(points, encoded)
    return agreement_mask(single_view_decodes(field.head, tokens.tokens, tokens.invalid), visible)


def held_out_frames(colour_views: list[int], encoded_views: list[int], num_pinhole: int) -> list[bool]:
    """For each colour frame, in the order the training step renders them (the pinhole views, then the native
    fisheye views; :func:`bts.training.views.view_groups`), whether the teacher did not encode it."""
    ordered = [v for v in colour_views if v < num_pinhole] + [v for v in colour_views if v >= num_pinhole]
    return [v not in encoded_views for v in ordered]


def photometric_mask(teacher_sigma: Float[Tensor, "B R K"], student_sigma: Float[Tensor, "B R K"],
                     distances: Float[Tensor, "B R K"], colours: Float[Tensor, "B F R K 3"],
                     invalid: Bool[Tensor, "B F R K"], target: Float[Tensor, "B P 3 ps ps"],
                     held_out: Sequence[bool], *, hard_alpha_cap: bool = True, invalid_threshold: float = 0.9,
                     ssim_weight: float = 0.85, margin: float = PHOTOMETRIC_MARGIN) -> Bool[Tensor, "B R"]:
    """The ``photometric`` rule of the module docstring: the loss rays (``R = P ps^2``, in patch order) on which the
    teacher's render reconstructs the target from the held-out colour frames better than the student's.

    ``colours``/``invalid``: each colour frame's colour at every sample and whether the sample is outside that
    frame (or the input frustum); ``held_out``: per colour frame (:func:`held_out_frames`). No gradient flows."""
    if len(held_out) != colours.shape[1]:
        raise ValueError(f"held_out names {len(held_out)} colour frames, the colours have {colours.shape[1]}")
    b, r, _ = distances.shape
    keep = torch.as_tensor(list(held_out), dtype=torch.bool, device=distances.device)

    def error(sigma: Tensor) -> Tensor:
        weights = composite(sigma, distances, hard_alpha_cap=hard_alpha_cap).weights
        return held_out_error(weights, colours, invalid, target, keep, invalid_threshold, ssim_weight)

    with torch.no_grad():
        e_teacher, e_student = error(teacher_sigma.detach()), error(student_sigma.detach())
        return (torch.isfinite(e_teacher) & (e_teacher + margin < e_student)).reshape(b, r)


def held_out_error(weights: Float[Tensor, "B R K"], colours: Float[Tensor, "B F R K 3"],
                   invalid: Bool[Tensor, "B F R K"], target: Float[Tensor, "B P 3 ps ps"], held_out: Bool[Tensor, "F"],
                   invalid_threshold: float = 0.9, ssim_weight: float = 0.85) -> Float[Tensor, "B P ps ps"]:
    """Per pixel of the loss patches, the photometric error (L1 + SSIM) of the rays rendered with ``weights`` from
    the best usable ``held_out`` colour frame; ``inf`` where none is usable (weight-guided rule on ``weights``).
    Differentiable in ``weights`` (the learned mask's mixture render)."""
    b, r, _ = weights.shape
    ps = target.shape[-1]
    rendered = composite_values(weights[:, None], colours)  # [B, F, R, 3]
    rendered = to_patches(rendered.reshape(b, rendered.shape[1], -1, ps * ps, 3), ps)
    errors = photometric_error(rendered, target.unsqueeze(1), ssim_weight)  # [B, F, P, ps, ps]
    outside = torch.stack([weight_guided_mask(weights, invalid[:, j:j + 1], invalid_threshold)
                           for j in range(invalid.shape[1])], dim=1)  # [B, F, R]: frame j unusable
    usable = ~outside.reshape(errors.shape) & held_out[None, :, None, None, None]
    return errors.where(usable, errors.new_full((), float("inf"))).min(dim=1).values

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

:func:`visible_in_views`, :func:`visibility_mask` and :func:`agreement_mask` are pure functions of tensors (tested on
hand-built scenes); :func:`teacher_view_depths` and :func:`trust_mask` apply them to a multi-view field
(:class:`bts.fields.multi_view.MultiViewField`: the KDBTS teacher in training, an MVBTS model in evaluation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from bts.fields.tokens import EncodedViews, project_to_views
from bts.geometry import invert_rigid
from bts.rendering.renderer import RendererConfig, render_depth

MASKS = ("none", "visibility", "agreement")
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
    uv, z, invalid = project_to_views(points, encoded)
    visible = visible_in_views(z, uv, invalid, depths)
    if name == "visibility":
        return visibility_mask(visible)
    tokens = tokens if tokens is not None else field.tokens(points, encoded)
    return agreement_mask(single_view_decodes(field.head, tokens.tokens, tokens.invalid), visible)

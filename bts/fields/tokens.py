"""Where a 3D point meets an encoded image: projection, feature sampling and the per-view token
(docs/method.md §1.2-1.3).

All views are handled in one batched projection and one ``grid_sample`` call, never a Python loop over views.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from bts.fields.encoding import PositionalEncoding, inverse_depth_code
from bts.geometry import PinholeCamera, invert_rigid, transform_points


@dataclass(frozen=True)
class EncodedViews:
    """Feature maps of encoded images with their cameras (a returned value, never state on a module)."""

    features: Float[Tensor, "B V C h w"]
    intrinsics: Float[Tensor, "B V 3 3"]  # normalised
    world_to_cam: Float[Tensor, "B V 4 4"]

    @classmethod
    def create(cls, features: Tensor, intrinsics: Tensor, cam_to_world: Tensor) -> EncodedViews:
        return cls(features, intrinsics, invert_rigid(cam_to_world))

    @property
    def num_views(self) -> int:
        return self.features.shape[1]

    def select(self, views: list[int] | tuple[int, ...]) -> EncodedViews:
        idx = list(views)
        return EncodedViews(self.features[:, idx], self.intrinsics[:, idx], self.world_to_cam[:, idx])


@dataclass(frozen=True)
class ViewTokens:
    """Per-view tokens ``[feature, encoding]`` of query points, with the out-of-frustum flags."""

    tokens: Float[Tensor, "B V N D"]
    invalid: Bool[Tensor, "B V N"]


def project_to_views(points: Float[Tensor, "B N 3"], encoded: EncodedViews):
    """Normalised image coordinates ``[B, V, N, 2]``, camera z ``[B, V, N]`` and invalid flags ``[B, V, N]``."""
    cam = transform_points(encoded.world_to_cam, points[:, None])  # [B, V, N, 3]
    proj = PinholeCamera(encoded.intrinsics).project(cam)
    return proj.uv, proj.depth, ~proj.valid


def sample_features(features: Float[Tensor, "B V C h w"], uv: Float[Tensor, "B V N 2"]) -> Tensor:
    """Bilinear features at ``uv`` (``align_corners=False``, border padding): ``[B, V, N, C]``."""
    b, v, c, h, w = features.shape
    grid = uv.reshape(b * v, -1, 1, 2)
    out = F.grid_sample(features.reshape(b * v, c, h, w), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.reshape(b, v, c, -1).transpose(-1, -2)


def view_tokens(points: Float[Tensor, "B N 3"], encoded: EncodedViews, encoding: PositionalEncoding,
                code_near: float, code_far: float) -> ViewTokens:
    """Tokens ``[f_v ; gamma(u_v, v_v, d_v)]`` of every point in every encoded view (feature first)."""
    uv, z, invalid = project_to_views(points, encoded)
    code = encoding(torch.cat([uv, inverse_depth_code(z, code_near, code_far).unsqueeze(-1)], dim=-1))
    return ViewTokens(torch.cat([sample_features(encoded.features, uv), code], dim=-1), invalid)

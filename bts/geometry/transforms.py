"""Rigid transforms as homogeneous 4x4 matrices.

Conventions: a matrix named ``a_to_b`` maps points expressed in frame ``a`` to frame ``b``
(``p_b = a_to_b @ p_a``). Camera poses of the datasets are ``cam_to_world``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def make_rigid(rotation: Tensor, translation: Tensor) -> Tensor:
    """Build ``[..., 4, 4]`` matrices from rotations ``[..., 3, 3]`` and translations ``[..., 3]``."""
    batch = rotation.shape[:-2]
    out = torch.zeros(*batch, 4, 4, dtype=rotation.dtype, device=rotation.device)
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def invert_rigid(transform: Tensor) -> Tensor:
    """Inverse of rigid ``[..., 4, 4]`` transforms, using ``R^T`` rather than a general inverse."""
    rotation = transform[..., :3, :3]
    translation = transform[..., :3, 3]
    rot_t = rotation.transpose(-1, -2)
    return make_rigid(rot_t, -(rot_t @ translation.unsqueeze(-1)).squeeze(-1))


def transform_points(transform: Tensor, points: Tensor) -> Tensor:
    """Apply ``[..., 4, 4]`` transforms to points ``[..., N, 3]`` (batch dimensions broadcast)."""
    rotation = transform[..., :3, :3]
    translation = transform[..., None, :3, 3]
    return points @ rotation.transpose(-1, -2) + translation


def transform_directions(transform: Tensor, directions: Tensor) -> Tensor:
    """Rotate direction vectors ``[..., N, 3]`` (no translation)."""
    return directions @ transform[..., :3, :3].transpose(-1, -2)


def relative_to(reference: Tensor, poses: Tensor) -> Tensor:
    """Re-express ``cam_to_world`` poses ``[..., V, 4, 4]`` in the frame of ``reference`` ``[..., 4, 4]``.

    The result maps camera coordinates to the reference camera's coordinates, so the reference camera
    becomes the origin. Compute in float64 when the world coordinates are large (KITTI-360 poses are
    hundreds of metres from their origin) and cast afterwards.
    """
    return invert_rigid(reference).unsqueeze(-3) @ poses


def rotation_x(angle_deg: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """Rotation about the x axis by ``angle_deg`` degrees (right-handed)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=dtype)


def rotation_y(angle_deg: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """Rotation about the y axis by ``angle_deg`` degrees (right-handed)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=dtype)


def rotation_z(angle_deg: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """Rotation about the z axis by ``angle_deg`` degrees (right-handed)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)


def pad_3x4(matrix: Tensor) -> Tensor:
    """Append the ``[0, 0, 0, 1]`` row to ``[..., 3, 4]`` matrices."""
    return make_rigid(matrix[..., :3, :3], matrix[..., :3, 3])

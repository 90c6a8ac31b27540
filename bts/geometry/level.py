"""The levelled frame of a pitched camera: the camera frame rotated back up by the pitch (docs/method.md §8.1, §10).

KITTI-360's perspective cameras (and those of the synthetic city) are pitched about 5° down, so grids and motions
that should be parallel to the road (the occupancy slice of the evaluation, the bird's-eye profile, the voxel grid,
the built-in camera paths) are defined in a *levelled* frame: origin at the camera, x right, y down, z forward,
rotated about x so that the x-z plane is parallel to the road. A point straight ahead on the road plane then has
y = camera height.

Both directions are built here from :func:`~bts.geometry.transforms.rotation_x`, in float64, each straight from its
own angle (``R_x(-pitch)`` and ``R_x(+pitch)``), not one as the inverse of the other, so that every user gets the
same numbers bit for bit.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from bts.geometry.transforms import make_rigid, rotation_x


def level_from_camera(pitch_deg: float) -> Float[Tensor, "4 4"]:
    """``T_level<-cam``: undoes a camera pitched ``pitch_deg`` down, ``R_x(-pitch)`` as a 4x4 float64 matrix."""
    return make_rigid(rotation_x(-pitch_deg), torch.zeros(3, dtype=torch.float64))


def camera_from_level(pitch_deg: float) -> Float[Tensor, "4 4"]:
    """``T_cam<-level``: a levelled point in a camera pitched ``pitch_deg`` down, ``R_x(+pitch)`` as a 4x4 float64
    matrix (the inverse of :func:`level_from_camera`)."""
    return make_rigid(rotation_x(pitch_deg), torch.zeros(3, dtype=torch.float64))

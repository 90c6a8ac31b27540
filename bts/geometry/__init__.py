"""Camera models, rigid transforms and rays."""

from bts.geometry.cameras import (
    Camera,
    MeiFisheyeCamera,
    PinholeCamera,
    PixelConvention,
    Projection,
    camera_rays,
    denormalize_intrinsics,
    normalize_intrinsics,
    normalized_to_pixels,
    pixel_grid,
    pixels_to_normalized,
)
from bts.geometry.level import camera_from_level, level_from_camera
from bts.geometry.transforms import (
    invert_rigid,
    make_rigid,
    relative_to,
    rotation_x,
    rotation_y,
    rotation_z,
    transform_directions,
    transform_points,
)

__all__ = [
    "Camera", "MeiFisheyeCamera", "PinholeCamera", "PixelConvention", "Projection", "camera_rays",
    "denormalize_intrinsics", "normalize_intrinsics", "normalized_to_pixels", "pixel_grid", "pixels_to_normalized",
    "camera_from_level", "level_from_camera", "invert_rigid", "make_rigid", "relative_to", "rotation_x", "rotation_y",
    "rotation_z", "transform_directions", "transform_points",
]

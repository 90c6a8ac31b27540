"""Own images as model input: reading, intrinsics (given, from a calibration file, or the training camera's) and
fitting to the model's input size.

Intrinsics are normalised (:mod:`bts.geometry.cameras`), so a resize keeps them; a centre crop rescales them. An
image of another aspect ratio is either resized anisotropically (``resize``, like KITTI-360's 376x1408 -> 192x640)
or centre-cropped to the model's aspect ratio first (``crop``, which keeps square pixels square).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from bts.errors import UserError
from bts.geometry import normalize_intrinsics

log = logging.getLogger(__name__)

# The rectified KITTI-360 perspective camera (image_00, 1408x376): the camera of every training set of this project
# (the synthetic city scales the same intrinsics to its image size).
TRAINING_CAMERA_PIXELS = (552.554261, 552.554261, 682.049453, 238.769549)
TRAINING_CAMERA_SIZE = (1408, 376)
CALIBRATION_KEYS = ("P_rect_00", "P2", "P_rect_02")
FIT_MODES = ("resize", "crop")


def pixel_matrix(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)


def training_camera() -> Float[Tensor, "3 3"]:
    """Normalised intrinsics of the training camera (KITTI-360 rectified perspective)."""
    return normalize_intrinsics(pixel_matrix(*TRAINING_CAMERA_PIXELS), *TRAINING_CAMERA_SIZE).float()


def read_calibration_file(path: Path | str, key: str | None = None) -> Tensor:
    """The 3x3 pixel intrinsics of a KITTI-style calibration file: the first of ``P_rect_00`` (KITTI-360
    ``perspective.txt``, KITTI raw ``calib_cam_to_cam.txt``), ``P2`` (KITTI odometry/object ``calib.txt``) or
    ``P_rect_02`` found, or the line named ``key``. The line holds a 3x4 projection matrix, row-major."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file {path} does not exist")
    lines = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z_0-9]+)\s*:\s*(.*)", line)
        if m:
            lines[m.group(1)] = m.group(2)
    keys = (key,) if key else CALIBRATION_KEYS
    found = next((k for k in keys if k in lines), None)
    if found is None:
        raise ValueError(f"calibration file {path} has no line {' / '.join(keys)}: expected e.g. "
                         "'P_rect_00: fx 0 cx 0 0 fy cy 0 0 0 1 0' (12 numbers, a 3x4 matrix row-major)")
    try:
        values = [float(v) for v in lines[found].split()]
    except ValueError:
        values = []
    if len(values) != 12:
        raise ValueError(f"calibration file {path}: line {found} must hold 12 numbers (a 3x4 matrix), got "
                         f"{lines[found][:80]!r}")
    return torch.tensor(values, dtype=torch.float64).reshape(3, 4)[:, :3]


def user_intrinsics(width: int, height: int, focal=None, principal_point=None, calibration: str | None = None,
                    calibration_key: str | None = None) -> Float[Tensor, "3 3"] | None:
    """Normalised intrinsics of a ``width x height`` image from a focal length (a number or ``[fx, fy]``, pixels)
    and principal point (``[cx, cy]``, pixels; default the image centre), or from a calibration file; ``None`` when
    neither is given."""
    if calibration is not None and focal is not None:
        raise ValueError("give either camera.calibration or camera.focal (with camera.principal_point), not both")
    if calibration is not None:
        k = read_calibration_file(calibration, calibration_key)
    elif focal is not None:
        f = [float(focal)] * 2 if isinstance(focal, (int, float)) else [float(v) for v in focal]
        pp = [(width - 1) / 2, (height - 1) / 2] if principal_point is None else [float(v) for v in principal_point]
        if len(f) != 2 or len(pp) != 2 or min(f) <= 0:
            raise ValueError(f"camera.focal must be a positive number or [fx, fy] and camera.principal_point "
                             f"[cx, cy] (pixels), got {focal} and {principal_point}")
        k = pixel_matrix(f[0], f[1], pp[0], pp[1])
    elif principal_point is not None:
        raise ValueError("camera.principal_point needs camera.focal as well")
    else:
        return None
    return normalize_intrinsics(k, width, height).float()


class ImageFileError(ValueError, UserError):
    """An ``image=`` file that cannot be read as an image (the file and the readable formats named)."""


def read_image(path: Path | str) -> Float[Tensor, "3 H W"]:
    """An image file as RGB in ``[0, 1]`` (grey is repeated, alpha dropped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        array = np.asarray(iio.imread(path))
    except Exception as e:  # noqa: BLE001 - imageio's plugins raise many types for a file they cannot read
        raise ImageFileError(f"{path} is not an image this reads ({type(e).__name__}): expected PNG, JPEG, BMP, TIFF "
                             "or another format imageio reads, as RGB(A) or grey") from e
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image {path} has shape {array.shape}; expected an RGB(A) or grey image")
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    return torch.from_numpy(array[..., :3].astype(np.float32) / scale).permute(2, 0, 1).contiguous()


def crop_box(height: int, width: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of the largest centred box with the aspect ratio of ``target`` (H, W)."""
    th, tw = target
    if width * th > height * tw:  # too wide
        w = max(1, round(height * tw / th))
        return 0, (width - w) // 2, height, w
    h = max(1, round(width * th / tw))
    return (height - h) // 2, 0, h, width


def crop_intrinsics(intrinsics: Float[Tensor, "3 3"], width: int, height: int, box: tuple[int, int, int, int]
                    ) -> Float[Tensor, "3 3"]:
    """Normalised intrinsics of a crop ``(top, left, h, w)``: ``u' = u W / w + (W - 2 left - w) / w``."""
    top, left, h, w = box
    k = intrinsics.clone()
    k[0] = intrinsics[0] * (width / w) + intrinsics[2] * ((width - 2 * left - w) / w)
    k[1] = intrinsics[1] * (height / h) + intrinsics[2] * ((height - 2 * top - h) / h)
    return k


def fit_image(image: Float[Tensor, "3 H W"], intrinsics: Float[Tensor, "3 3"], size: tuple[int, int],
              mode: str = "crop") -> tuple[Float[Tensor, "3 h w"], Float[Tensor, "3 3"]]:
    """Bring an image and its normalised intrinsics to the model's input ``size`` (H, W) by ``resize`` or
    ``crop``."""
    if mode not in FIT_MODES:
        raise ValueError(f"camera.fit must be one of {FIT_MODES}, got {mode!r}")
    _, h, w = image.shape
    if mode == "crop":
        box = crop_box(h, w, size)
        intrinsics = crop_intrinsics(intrinsics, w, h, box)
        top, left, bh, bw = box
        image = image[:, top:top + bh, left:left + bw]
    if tuple(image.shape[1:]) != tuple(size):
        image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return image.clamp(0, 1), intrinsics


def load_user_image(path: Path | str, size: tuple[int, int], fit: str = "crop", focal=None, principal_point=None,
                    calibration: str | None = None, calibration_key: str | None = None
                    ) -> tuple[Float[Tensor, "3 h w"], Float[Tensor, "3 3"]]:
    """An own image at the model's input size with its normalised intrinsics. Without intrinsics a warning, and the
    fitted image is taken to be one of the training camera."""
    image = read_image(path)
    _, h, w = image.shape
    intrinsics = user_intrinsics(w, h, focal, principal_point, calibration, calibration_key)
    if intrinsics is None:
        log.warning("no intrinsics given for %s: assuming the training camera (KITTI-360 rectified perspective, "
                    "stretched to the image). The depth scale and the bird's-eye profile are skewed if the camera "
                    "differs; pass camera.focal=[fx,fy] camera.principal_point=[cx,cy] (pixels) or "
                    "camera.calibration=FILE", path)
        fitted, _ = fit_image(image, training_camera(), size, fit)
        return fitted, training_camera()  # the model's input image is taken to be a training-camera image
    return fit_image(image, intrinsics, size, fit)

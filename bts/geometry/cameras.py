"""Camera models: pinhole and the MEI unified fisheye of KITTI-360.

Both models work in *normalised image coordinates*: ``u, v`` in ``[-1, 1]`` span the image from the outer
edge of the first pixel to the outer edge of the last one, which is ``grid_sample(align_corners=False)``.
A pixel coordinate ``x`` in the OpenCV / KITTI-360 convention (the centre of pixel ``i`` is at ``x = i``) maps
to ``u = (2x + 1) / W - 1``. Normalised coordinates make the intrinsics independent of the working
resolution, so a camera calibrated at 1408x376 is used unchanged on 192x640 images.

``PixelConvention.CORNER`` reproduces the original BTS mapping ``u = 2x / W - 1`` (half a pixel off); it exists
only so that original checkpoints can be reproduced exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.geometry.transforms import transform_directions

# Depth below which a point counts as behind the pinhole camera (the original's 1e-3).
MIN_DEPTH = 1e-3


class PixelConvention(str, enum.Enum):
    """Where the integer pixel coordinate ``i`` lies in normalised coordinates."""

    CENTER = "center"  # pixel i spans [i - 0.5, i + 0.5]: the project's convention
    CORNER = "corner"  # the original BTS mapping, u = 2x / W - 1


def _offset(convention: PixelConvention | str) -> float:
    return 1.0 if PixelConvention(convention) is PixelConvention.CENTER else 0.0


def pixels_to_normalized(
    pixels: Float[Tensor, "... 2"], width: int, height: int, convention: PixelConvention | str = "center"
) -> Float[Tensor, "... 2"]:
    """Pixel coordinates ``(x, y)`` to normalised ``(u, v)``."""
    off = _offset(convention)
    scale = pixels.new_tensor([2.0 / width, 2.0 / height])
    shift = pixels.new_tensor([off / width - 1.0, off / height - 1.0])
    return pixels * scale + shift


def normalized_to_pixels(
    uv: Float[Tensor, "... 2"], width: int, height: int, convention: PixelConvention | str = "center"
) -> Float[Tensor, "... 2"]:
    """Normalised ``(u, v)`` to pixel coordinates ``(x, y)``; the inverse of :func:`pixels_to_normalized`."""
    off = _offset(convention)
    size = uv.new_tensor([float(width), float(height)])
    return ((uv + 1.0) * size - off) / 2.0


def pixel_grid(height: int, width: int, dtype=torch.float32, device=None) -> Float[Tensor, "H W 2"]:
    """Normalised ``(u, v)`` of every pixel centre of an ``H x W`` image."""
    u = (2.0 * torch.arange(width, dtype=dtype, device=device) + 1.0) / width - 1.0
    v = (2.0 * torch.arange(height, dtype=dtype, device=device) + 1.0) / height - 1.0
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1)


def normalize_intrinsics(
    intrinsics_pixels: Float[Tensor, "... 3 3"],
    width: int,
    height: int,
    convention: PixelConvention | str = "center",
) -> Float[Tensor, "... 3 3"]:
    """Pixel intrinsics ``K`` of a ``width x height`` image to normalised intrinsics ``K_n``."""
    off = _offset(convention)
    k = intrinsics_pixels.clone()
    k[..., 0, :] = intrinsics_pixels[..., 0, :] * (2.0 / width)
    k[..., 1, :] = intrinsics_pixels[..., 1, :] * (2.0 / height)
    k[..., 0, 2] += off / width - 1.0
    k[..., 1, 2] += off / height - 1.0
    return k


def denormalize_intrinsics(
    intrinsics_normalized: Float[Tensor, "... 3 3"],
    width: int,
    height: int,
    convention: PixelConvention | str = "center",
) -> Float[Tensor, "... 3 3"]:
    """Normalised intrinsics to the pixel intrinsics of a ``width x height`` image."""
    off = _offset(convention)
    k = intrinsics_normalized.clone()
    k[..., 0, 2] = intrinsics_normalized[..., 0, 2] + 1.0 - off / width
    k[..., 1, 2] = intrinsics_normalized[..., 1, 2] + 1.0 - off / height
    k[..., 0, :] = k[..., 0, :] * (width / 2.0)
    k[..., 1, :] = k[..., 1, :] * (height / 2.0)
    return k


@dataclass(frozen=True)
class Projection:
    """Result of projecting camera-frame points.

    ``uv``: normalised image coordinates; ``depth``: the z coordinate for a pinhole camera, the distance from the
    projection centre for a fisheye; ``valid``: in front of the camera and inside the image.
    """

    uv: Float[Tensor, "... N 2"]
    depth: Float[Tensor, "... N"]
    valid: Bool[Tensor, "... N"]


@dataclass(frozen=True)
class PinholeCamera:
    """A pinhole camera given by normalised intrinsics ``[..., 3, 3]`` (batch dimensions allowed)."""

    intrinsics_normalized: Float[Tensor, "... 3 3"]

    @classmethod
    def from_pixels(
        cls, intrinsics_pixels: Tensor, width: int, height: int, convention: PixelConvention | str = "center"
    ) -> PinholeCamera:
        return cls(normalize_intrinsics(intrinsics_pixels, width, height, convention))

    def intrinsics_pixels(self, width: int, height: int, convention: PixelConvention | str = "center") -> Tensor:
        return denormalize_intrinsics(self.intrinsics_normalized, width, height, convention)

    def project(self, points_cam: Float[Tensor, "... N 3"]) -> Projection:
        """Project points; ``u = (K p)_x / max(z, 1e-3)`` as in BTS, so points behind stay finite."""
        q = points_cam @ self.intrinsics_normalized.transpose(-1, -2)
        z = points_cam[..., 2]
        uv = q[..., :2] / z.clamp_min(MIN_DEPTH).unsqueeze(-1)
        valid = (z > MIN_DEPTH) & (uv.abs() <= 1.0).all(dim=-1)
        return Projection(uv=uv, depth=z, valid=valid)

    def unproject(self, uv: Float[Tensor, "... N 2"]) -> Float[Tensor, "... N 3"]:
        """Directions with ``z = 1`` through normalised image points (scale by a z-depth to get points)."""
        k = self.intrinsics_normalized
        fx, fy = k[..., 0, 0, None], k[..., 1, 1, None]
        cx, cy = k[..., 0, 2, None], k[..., 1, 2, None]
        x = (uv[..., 0] - cx) / fx
        y = (uv[..., 1] - cy) / fy
        return torch.stack([x, y, torch.ones_like(x)], dim=-1)


@dataclass(frozen=True)
class MeiFisheyeCamera:
    """The MEI unified camera model of the KITTI-360 fisheyes, in normalised coordinates.

    A unit-sphere point ``(x, y, z)`` maps to ``m = (x, y) / (z + xi)``, is distorted radially by
    ``1 + k1 r^2 + k2 r^4`` (``r = |m|``) and, only if ``apply_tangential``, tangentially by ``p1, p2`` (the
    official devkit ignores ``p1, p2``, so by default they are kept but not applied), and is then mapped by the
    focal lengths ``gamma`` and the centre. Here ``gamma`` and ``center`` are normalised; :meth:`from_pixels`
    converts the values of ``image_02.yaml``. All parameters are tensors ``[...]`` that broadcast.
    """

    xi: Tensor
    k1: Tensor
    k2: Tensor
    p1: Tensor
    p2: Tensor
    gamma: Float[Tensor, "... 2"]
    center: Float[Tensor, "... 2"]
    apply_tangential: bool = False

    @classmethod
    def from_pixels(
        cls,
        *,
        xi: float,
        k1: float,
        k2: float,
        p1: float,
        p2: float,
        gamma1: float,
        gamma2: float,
        u0: float,
        v0: float,
        width: int,
        height: int,
        apply_tangential: bool = False,
        dtype: torch.dtype = torch.float64,
        convention: PixelConvention | str = "center",
    ) -> MeiFisheyeCamera:
        t = lambda x: torch.tensor(float(x), dtype=dtype)  # noqa: E731
        center = pixels_to_normalized(torch.tensor([u0, v0], dtype=dtype), width, height, convention)
        gamma = torch.tensor([2.0 * gamma1 / width, 2.0 * gamma2 / height], dtype=dtype)
        return cls(t(xi), t(k1), t(k2), t(p1), t(p2), gamma, center, apply_tangential)

    def pack(self) -> Float[Tensor, "... 9"]:
        """Parameters as one tensor ``[..., 9]``: xi, k1, k2, p1, p2, gamma_u, gamma_v, center_u, center_v."""
        scalars = torch.stack(torch.broadcast_tensors(self.xi, self.k1, self.k2, self.p1, self.p2), dim=-1)
        return torch.cat([scalars, self.gamma, self.center], dim=-1)

    @classmethod
    def unpack(cls, params: Float[Tensor, "... 9"], apply_tangential: bool = False) -> MeiFisheyeCamera:
        """The inverse of :meth:`pack`, batched over the leading dimensions."""
        p = params
        return cls(p[..., 0], p[..., 1], p[..., 2], p[..., 3], p[..., 4], p[..., 5:7], p[..., 7:9], apply_tangential)

    def to(self, dtype: torch.dtype | None = None, device=None) -> MeiFisheyeCamera:
        c = lambda x: x.to(dtype=dtype, device=device)  # noqa: E731
        return MeiFisheyeCamera(
            c(self.xi), c(self.k1), c(self.k2), c(self.p1), c(self.p2), c(self.gamma), c(self.center),
            self.apply_tangential,
        )

    def _radial(self, m: Tensor) -> Tensor:
        r2 = (m * m).sum(-1, keepdim=True)
        k1, k2 = self.k1[..., None, None], self.k2[..., None, None]
        return m * (1.0 + k1 * r2 + k2 * r2 * r2)

    def _tangential(self, m: Tensor) -> Tensor:
        p1, p2 = self.p1[..., None], self.p2[..., None]
        x, y = m[..., 0], m[..., 1]
        r2 = x * x + y * y
        return torch.stack([2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x), p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y],
                           dim=-1)

    def _distort(self, m: Tensor) -> Tensor:
        out = self._radial(m)
        return out + self._tangential(m) if self.apply_tangential else out

    def _undistort_radial(self, md: Tensor, iterations: int = 20) -> Tensor:
        # Solve r + k1 r^3 + k2 r^5 = r_d by Newton's method (monotonic for k1, k2 >= 0).
        rd = md.norm(dim=-1)
        k1, k2 = self.k1[..., None], self.k2[..., None]
        r = rd.clone()
        for _ in range(iterations):
            r2 = r * r
            f = r * (1.0 + k1 * r2 + k2 * r2 * r2) - rd
            df = 1.0 + 3.0 * k1 * r2 + 5.0 * k2 * r2 * r2
            r = r - f / df
        scale = torch.where(rd > 1e-12, r / rd.clamp_min(1e-12), torch.ones_like(rd))
        return md * scale.unsqueeze(-1)

    def _undistort(self, md: Tensor, iterations: int = 10) -> Tensor:
        m = self._undistort_radial(md)
        if self.apply_tangential:
            # radial(m) = md - tangential(m); the tangential terms are small, so this fixed point converges fast.
            for _ in range(iterations):
                m = self._undistort_radial(md - self._tangential(m))
        return m

    def project(self, points_cam: Float[Tensor, "... N 3"]) -> Projection:
        norm = points_cam.norm(dim=-1)
        unit = points_cam / norm.clamp_min(1e-12).unsqueeze(-1)
        denom = unit[..., 2] + self.xi[..., None]
        m = unit[..., :2] / denom.clamp_min(1e-9).unsqueeze(-1)
        uv = self._distort(m) * self.gamma[..., None, :] + self.center[..., None, :]
        # For xi > 1 the projection folds over at cos(theta) = -1/xi: directions further back land on the same
        # image points as directions in front of the fold, so they are not valid.
        in_front_of_fold = unit[..., 2] * self.xi[..., None] > -1.0
        valid = in_front_of_fold & (norm > 1e-9) & (uv.abs() <= 1.0).all(dim=-1)
        return Projection(uv=uv, depth=norm, valid=valid)

    def unproject(self, uv: Float[Tensor, "... N 2"]) -> tuple[Float[Tensor, "... N 3"], Bool[Tensor, "... N"]]:
        """Unit directions through normalised image points, and whether the point lies in the model's domain
        (image corners beyond the outermost ray of the lens do not)."""
        md = (uv - self.center[..., None, :]) / self.gamma[..., None, :]
        m = self._undistort(md)
        r2 = (m * m).sum(-1)
        xi = self.xi[..., None]
        disc = 1.0 + (1.0 - xi * xi) * r2
        factor = (xi + disc.clamp_min(0.0).sqrt()) / (1.0 + r2)
        dirs = torch.stack([factor * m[..., 0], factor * m[..., 1], factor - xi], dim=-1)
        # Outside the domain (disc < 0) the lift is off the sphere; normalise so that rays stay unit length.
        return dirs / dirs.norm(dim=-1, keepdim=True), disc >= 0.0


Camera = PinholeCamera | MeiFisheyeCamera


def camera_rays(
    camera: Camera, uv: Float[Tensor, "... N 2"], cam_to_world: Float[Tensor, "... 4 4"], normalize: bool = True
) -> tuple[Float[Tensor, "... N 3"], Float[Tensor, "... N 3"], Bool[Tensor, "... N"]]:
    """World-frame ray origins, directions and validity for normalised image points of a camera.

    With ``normalize`` the directions have unit length, so distances along the ray are metric; for a pinhole
    camera without it the directions have ``z = 1`` in the camera frame, so the ray parameter is a z-depth.
    Fisheye directions are always unit length, and fisheye points outside the lens model's domain (image corners
    beyond its outermost ray) are not valid: their directions mean nothing. Pinhole rays are always valid.
    """
    if isinstance(camera, MeiFisheyeCamera):
        dirs, valid = camera.unproject(uv)
    else:
        dirs = camera.unproject(uv)
        if normalize:
            dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        valid = torch.ones(dirs.shape[:-1], dtype=torch.bool, device=dirs.device)
    directions = transform_directions(cam_to_world, dirs)
    origins = cam_to_world[..., None, :3, 3].expand_as(directions)
    return origins, directions, valid.expand(directions.shape[:-1])

"""Periodic, band-limited noise textures: the building block of every procedural surface pattern.

Each channel is white noise on an ``N x N`` torus filtered in the Fourier domain to wavelengths between
``N / k_max`` and ``N / k_min`` texels (amplitude ``1 / |k|``), then normalised to zero mean and unit variance.
Being band-limited, a channel is smooth at the scale of a texel, so its bilinear interpolation is a continuous,
almost exact evaluation of a smooth function of the surface point: a point gets the same value whichever camera
sees it, and images of it interpolate well. Coordinates are in *periods*: ``sample(c, u, v)`` repeats with period 1
in ``u`` and ``v``; callers divide metric coordinates by the period they want, which sets the feature size.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

TEXTURE_SIZE = 256
K_MIN, K_MAX = 1, 10  # wavelengths from a tenth of the period to the whole period


class NoiseBank:
    """``channels`` independent periodic noise textures generated from ``seed``."""

    def __init__(self, seed: int, channels: int, size: int = TEXTURE_SIZE):
        rng = np.random.default_rng(seed)
        white = rng.standard_normal((channels, size, size))
        k = np.fft.fftfreq(size) * size
        kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
        band = (kk >= K_MIN) & (kk <= K_MAX)
        gain = np.where(band, 1.0 / np.maximum(kk, 1.0), 0.0)
        fields = np.real(np.fft.ifft2(np.fft.fft2(white) * gain))
        fields -= fields.mean(axis=(1, 2), keepdims=True)
        fields /= fields.std(axis=(1, 2), keepdims=True)
        self.size = size
        self.texels = torch.from_numpy(fields.reshape(channels, -1)).float()

    def sample(self, channel: int, u: Tensor, v: Tensor) -> Tensor:
        """Bilinear, periodic lookup of one channel at ``(u, v)`` (in periods); same shape as ``u``."""
        n = self.size
        x, y = u * n - 0.5, v * n - 0.5
        x0, y0 = torch.floor(x), torch.floor(y)
        fx, fy = x - x0, y - y0
        ix0 = torch.remainder(x0.long(), n)
        iy0 = torch.remainder(y0.long(), n)
        ix1, iy1 = torch.remainder(ix0 + 1, n), torch.remainder(iy0 + 1, n)
        tex = self.texels[channel]
        top = tex[iy0 * n + ix0] * (1 - fx) + tex[iy0 * n + ix1] * fx
        bottom = tex[iy1 * n + ix0] * (1 - fx) + tex[iy1 * n + ix1] * fx
        return top * (1 - fy) + bottom * fy

    def triplanar(self, channel: int, points: Tensor, normals: Tensor, period: float) -> Tensor:
        """Noise on curved surfaces: the three axis-aligned planar lookups blended by the squared normal."""
        q = points / period
        w = normals * normals
        return (w[:, 0] * self.sample(channel, q[:, 1], q[:, 2])
                + w[:, 1] * self.sample(channel, q[:, 0] + 0.37, q[:, 2])
                + w[:, 2] * self.sample(channel, q[:, 0], q[:, 1] + 0.61)) / w.sum(-1).clamp_min(1e-12)

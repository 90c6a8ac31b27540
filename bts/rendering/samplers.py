"""Distances of the samples along each ray (docs/method.md §2, "Samples").

BTS places K samples between ``near`` and ``far`` uniformly in *disparity* (``lindisp``), which spends most
samples close to the camera where a pixel covers little space. Training jitters each sample inside its stratum;
evaluation defaults to the stratum midpoints so that depth and occupancy are deterministic (docs/decisions.md §3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor


def sample_distances(
    num_rays: int,
    num_samples: int,
    near: float,
    far: float,
    *,
    lindisp: bool = True,
    jitter: bool,
    generator: torch.Generator | None = None,
    batch_shape: Sequence[int] = (),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Float[Tensor, "*batch R K"]:
    """Sorted sample distances along ``num_rays`` rays.

    With ``t_k = (k + xi_k) / K`` (``xi_k ~ U[0, 1)`` when ``jitter``, else ``xi_k = 0.5``) for ``k = 0..K-1``:

    - ``lindisp``: ``s_k = 1 / ((1 - t_k) / near + t_k / far)``, uniform in disparity;
    - otherwise: ``s_k = near + t_k (far - near)``.

    Example: ``K = 2``, ``near = 1``, ``far = 3``, midpoints, linear: ``t = [0.25, 0.75]``, ``s = [1.5, 2.5]``.

    Args:
        num_rays: rays ``R``.
        num_samples: samples per ray ``K``.
        near, far: distances along the ray bounding the samples (BTS: 3 and 80).
        lindisp: sample uniformly in disparity rather than distance.
        jitter: stratified random offsets (training) instead of midpoints (evaluation).
        generator: random source for the jitter; drawn on the CPU so results do not depend on the device.
        batch_shape: leading dimensions of the output.
        dtype, device: of the output.

    Returns:
        Distances ``[*batch_shape, R, K]``, increasing along the last dimension, inside ``[near, far]``.
    """
    if not 0.0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    shape = (*batch_shape, num_rays, num_samples)
    if jitter:
        xi = torch.rand(shape, generator=generator, dtype=dtype).to(device)
    else:
        xi = torch.full(shape, 0.5, dtype=dtype, device=device)
    t = (torch.arange(num_samples, dtype=dtype, device=device) + xi) / num_samples
    if lindisp:
        return 1.0 / ((1.0 - t) / near + t / far)
    return near + t * (far - near)


def sample_points(
    origins: Float[Tensor, "*batch R 3"],
    directions: Float[Tensor, "*batch R 3"],
    distances: Float[Tensor, "*batch R K"],
) -> Float[Tensor, "*batch R K 3"]:
    """Points ``x_k = o + s_k d`` at the sample distances."""
    return origins[..., None, :] + distances[..., None] * directions[..., None, :]

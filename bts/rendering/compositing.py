"""Volume rendering as pure functions of densities and sample distances (docs/method.md §2, "Compositing").

Per ray with samples at distances ``s_0 < ... < s_{K-1}`` and densities ``sigma_k``:

- ``delta_k = s_{k+1} - s_k``, with ``delta_{K-1} = last_delta`` (1e10, "to infinity");
- ``alpha_k = 1 - exp(-delta_k sigma_k)``, and ``alpha_{K-1} = 1`` with the hard alpha cap;
- ``T_k = prod_{m<k} (1 - alpha_m + 1e-10)``, the probability that the ray reaches sample k;
- ``w_k = alpha_k T_k``, the probability that it terminates there.

The cap makes every ray terminate by the far plane, so ``sum_k w_k = 1`` (up to the 1e-10 terms) and an empty
ray renders its last sample. :func:`composite_reference` is the loop version used as the test oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

# Added to every factor of the transmittance product, as in the original, so that it never becomes exactly 0.
TRANSMITTANCE_EPS = 1e-10


@dataclass(frozen=True)
class RenderWeights:
    """Per-sample opacities ``alpha``, transmittances ``T`` and weights ``w = alpha T``, all ``[..., K]``."""

    alpha: Float[Tensor, "*batch K"]
    transmittance: Float[Tensor, "*batch K"]
    weights: Float[Tensor, "*batch K"]


def _deltas(distances: Tensor, last_delta: float) -> Tensor:
    last = torch.full_like(distances[..., :1], last_delta)
    return torch.cat([distances[..., 1:] - distances[..., :-1], last], dim=-1)


def composite(
    sigma: Float[Tensor, "*batch K"],
    distances: Float[Tensor, "*batch K"],
    *,
    hard_alpha_cap: bool = True,
    last_delta: float = 1e10,
) -> RenderWeights:
    """Rendering weights of samples with densities ``sigma`` at sorted ``distances`` (see the module docstring).

    Example: two samples at ``s = [1, 2]`` with ``sigma = [ln 2, 0]`` give ``alpha = [0.5, 1]`` (capped),
    ``T = [1, 0.5]`` and ``w = [0.5, 0.5]``, so the expected distance is 1.5.
    """
    if sigma.shape[-1] != distances.shape[-1]:
        raise ValueError(f"sigma has {sigma.shape[-1]} samples per ray, distances {distances.shape[-1]}")
    alpha = 1.0 - torch.exp(-_deltas(distances, last_delta) * sigma)
    if hard_alpha_cap:
        alpha = torch.cat([alpha[..., :-1], torch.ones_like(alpha[..., -1:])], dim=-1)
    survive = torch.cumprod(1.0 - alpha + TRANSMITTANCE_EPS, dim=-1)
    transmittance = torch.cat([torch.ones_like(survive[..., :1]), survive[..., :-1]], dim=-1)
    return RenderWeights(alpha=alpha, transmittance=transmittance, weights=alpha * transmittance)


def composite_reference(
    sigma: Tensor, distances: Tensor, *, hard_alpha_cap: bool = True, last_delta: float = 1e10
) -> RenderWeights:
    """A slow loop over samples, written straight from the formulas; only for testing :func:`composite`."""
    num = sigma.shape[-1]
    alphas, trans, weights = [], [], []
    t = torch.ones_like(sigma[..., 0])
    for k in range(num):
        delta = distances[..., k + 1] - distances[..., k] if k + 1 < num else torch.full_like(t, last_delta)
        a = 1.0 - torch.exp(-delta * sigma[..., k])
        if hard_alpha_cap and k == num - 1:
            a = torch.ones_like(a)
        alphas.append(a)
        trans.append(t)
        weights.append(a * t)
        t = t * (1.0 - a + TRANSMITTANCE_EPS)
    stack = lambda xs: torch.stack(xs, dim=-1)
    return RenderWeights(alpha=stack(alphas), transmittance=stack(trans), weights=stack(weights))


def expected_distance(
    weights: Float[Tensor, "*batch K"], distances: Float[Tensor, "*batch K"]
) -> Float[Tensor, "*batch"]:
    """Rendered distance along the ray, ``D = sum_k w_k s_k``."""
    return (weights * distances).sum(dim=-1)


def composite_values(
    weights: Float[Tensor, "*#batch K"], values: Float[Tensor, "*#batch K C"]
) -> Float[Tensor, "*#batch C"]:
    """Rendered values ``sum_k w_k v_k``, e.g. the colour ``c_j = sum_k w_k c_j(x_k)`` of one source frame."""
    return (weights[..., None] * values).sum(dim=-2)


def distance_to_depth(
    distance: Float[Tensor, "*batch"], directions: Float[Tensor, "*batch 3"]
) -> Float[Tensor, "*batch"]:
    """Distance along the ray to camera z-depth, ``z = D d_z / |d|``, with directions in the camera frame."""
    return distance * directions[..., 2] / directions.norm(dim=-1)

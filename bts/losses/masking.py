"""Which rays may not contribute to the loss (docs/method.md §3.5, ``invalid_policy: weight_guided``).

A ray is only trusted if at least one colour-source frame actually sees where the ray terminates. For frame j,
``m_j = sum_k w_k invalid_kj`` is the share of the ray's termination probability that falls outside the frame
(or outside the input frustum); frame j is unusable when ``m_j > threshold``, and the ray is masked when every
frame is unusable. Masked rays contribute 0 but still count in the mean, as in the original.
"""

from __future__ import annotations

from jaxtyping import Bool, Float
from torch import Tensor


def weight_guided_mask(
    weights: Float[Tensor, "*batch R K"],
    invalid: Bool[Tensor, "*batch F R K"],
    threshold: float = 0.9,
) -> Bool[Tensor, "*batch R"]:
    """Rays whose rendered colour no colour frame can be trusted for.

    Args:
        weights: rendering weights ``w_k`` of each ray's samples.
        invalid: per colour frame j and sample k, whether the sample is outside frame j (or the input frustum).
        threshold: the share of weight outside a frame above which the frame is unusable (0.9).

    Returns:
        True where the ray is masked: ``all_j (sum_k w_k invalid_kj > threshold)``.
    """
    outside = (weights.detach().unsqueeze(-3) * invalid.to(weights.dtype)).sum(dim=-1)  # [..., F, R]
    return (outside > threshold).all(dim=-2)


def masked_mean(values: Float[Tensor, "*shape"], mask: Bool[Tensor, "*shape"] | None) -> Float[Tensor, ""]:
    """``mean(values * (1 - mask))`` over *all* elements: masked ones count as zeros in the denominator."""
    if mask is None:
        return values.mean()
    # where() rather than a product, so that a non-finite value of a masked pixel cannot leak into the mean.
    return values.where(~mask, values.new_zeros(())).mean()

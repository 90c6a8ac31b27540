"""The BTS density field: a point, projected into one encoded image, becomes a density (docs/method.md §1.2-1.5)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

from bts.fields.encoding import PositionalEncoding
from bts.fields.mlp import MLP
from bts.fields.tokens import EncodedViews, view_tokens


@dataclass(frozen=True)
class DensityOutput:
    sigma: Float[Tensor, "B N"]  # softplus(raw) >= 0
    raw: Float[Tensor, "B N"]  # head output before the activation
    invalid: Bool[Tensor, "B N"]  # outside the input view's frustum (still given a border-clamped density)


class SingleViewField(nn.Module):
    """``sigma = softplus(MLP([f(u, v) ; gamma(u, v, d)]))`` from one encoded view (view 0 by default)."""

    def __init__(self, feature_dim: int = 64, hidden_dim: int = 64, num_freqs: int = 6, freq_factor: float = 1.5,
                 code_near: float = 3.0, code_far: float = 80.0):
        super().__init__()
        self.encoding = PositionalEncoding(3, num_freqs, freq_factor)
        self.head = MLP(feature_dim + self.encoding.out_dim, hidden_dim, 1)
        self.code_near, self.code_far = code_near, code_far  # the inverse-depth code's range, not the rays'

    def forward(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews, view: int = 0) -> DensityOutput:
        tokens = view_tokens(points, encoded.select([view]), self.encoding, self.code_near, self.code_far)
        raw = self.head(tokens.of_view(0)).squeeze(-1)
        return DensityOutput(F.softplus(raw), raw, tokens.invalid[:, 0])

"""The MVBTS density field: tokens of a point in every encoded view, fused by a head (docs/method.md §4.1)."""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

from bts.fields.encoding import PositionalEncoding
from bts.fields.fusion import drop_views
from bts.fields.single_view import DensityOutput
from bts.fields.tokens import EncodedViews, ViewTokens, view_tokens


class MultiViewField(nn.Module):
    """``sigma = softplus(head(tokens, invalid))``; in training, views v >= 1 are dropped per point."""

    def __init__(self, head: nn.Module, num_freqs: int = 6, freq_factor: float = 1.5, code_near: float = 3.0,
                 code_far: float = 80.0, view_dropout: float = 0.5):
        super().__init__()
        self.encoding = PositionalEncoding(3, num_freqs, freq_factor)
        self.head = head
        self.code_near, self.code_far = code_near, code_far  # the inverse-depth code's range, not the rays'
        self.view_dropout = view_dropout

    def tokens(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews) -> ViewTokens:
        return view_tokens(points, encoded, self.encoding, self.code_near, self.code_far)

    def forward(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews,
                tokens: ViewTokens | None = None, dropped: Bool[Tensor, "B V N"] | None = None) -> DensityOutput:
        """``dropped``: the view dropout to apply instead of drawing it (a replayed training step); True where a
        (view, point) pair is dropped, never for view 0."""
        tokens = tokens if tokens is not None else self.tokens(points, encoded)
        fused_invalid = drop_views(tokens.invalid, self.view_dropout if self.training else 0.0, dropped=dropped)
        raw = self.head(tokens.tokens, fused_invalid)
        # A point seen by no encoded view has no feature to predict from (colour-invalid, docs/method.md §4.1-4).
        return DensityOutput(F.softplus(raw), raw, tokens.invalid.all(dim=1))

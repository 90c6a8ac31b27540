"""Multi-view fusion heads: per-view tokens ``[B, V, N, D]`` and invalid flags ``[B, V, N]`` to a raw density.

- :class:`ConfidenceFusionHead`, the released MVBTS head (docs/method.md §4.2): per view a confidence logit and a
  16-d feature from ``phi_1``; softmax of the logits over the valid views; ``phi_2`` on the weighted feature.
- :class:`TransformerFusionHead`, the transformer variant (docs/method.md §4.5): embedded tokens behind a learned
  readout token, self-attention with a key-padding mask that really masks (the original added a float mask to
  the logits instead, docs/method.md §11-8), density from the readout token.

Both are invariant to the order of the views, and invalid views have no influence.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from bts.fields.mlp import MLP

MASKED_LOGIT = -1e9  # as the original: with every view invalid, the softmax becomes uniform


class ConfidenceFusionHead(nn.Module):
    def __init__(self, d_in: int = 103, hidden_dim: int = 128, feature_dim: int = 16, out_hidden_dim: int = 16):
        super().__init__()
        self.phi1 = MLP(d_in, hidden_dim, 1 + feature_dim)
        self.phi2 = MLP(feature_dim, out_hidden_dim, 1)

    def forward(self, tokens: Float[Tensor, "B V N D"], invalid: Bool[Tensor, "B V N"]) -> Float[Tensor, "B N"]:
        e = self.phi1(tokens)
        logits = e[..., 0].masked_fill(invalid, MASKED_LOGIT)
        weights = logits.softmax(dim=1)
        fused = (weights.unsqueeze(-1) * e[..., 1:]).sum(dim=1)
        return self.phi2(fused).squeeze(-1)


class TransformerFusionHead(nn.Module):
    def __init__(self, d_in: int = 103, token_dim: int = 32, embed_hidden: int = 64, num_layers: int = 3,
                 num_heads: int = 4, ff_dim: int = 32, dropout: float = 0.1, probe_hidden: int = 16):
        super().__init__()
        self.norm = nn.LayerNorm(d_in)
        self.embed = nn.Sequential(nn.Linear(d_in, embed_hidden), nn.ELU(), nn.Linear(embed_hidden, token_dim))
        self.residual = nn.Linear(d_in, token_dim)  # applied to the un-normalised token, as in the original
        self.readout = nn.Parameter(torch.rand(1, 1, token_dim))
        layer = nn.TransformerEncoderLayer(token_dim, num_heads, ff_dim, dropout, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.probe = nn.Sequential(nn.Linear(token_dim, probe_hidden), nn.ELU(), nn.Linear(probe_hidden, 1))

    def forward(self, tokens: Float[Tensor, "B V N D"], invalid: Bool[Tensor, "B V N"]) -> Float[Tensor, "B N"]:
        b, v, n, d = tokens.shape
        x = tokens.permute(0, 2, 1, 3).reshape(b * n, v, d)
        x = self.embed(self.norm(x)) + self.residual(x)
        x = torch.cat([self.readout.expand(b * n, 1, -1), x], dim=1)
        mask = torch.cat([invalid.new_zeros(b, 1, n), invalid], dim=1).permute(0, 2, 1).reshape(b * n, v + 1)
        out = self.transformer(x, src_key_padding_mask=mask)
        return self.probe(out[:, 0]).reshape(b, n)


def drop_views(invalid: Bool[Tensor, "B V N"], rate: float, generator: torch.Generator | None = None,
               dropped: Bool[Tensor, "B V N"] | None = None) -> Tensor:
    """View dropout (docs/method.md §4.3): every (point, view) pair of the views v >= 1 becomes invalid with
    probability ``rate``; view 0, the input image, is never dropped. ``dropped``: the dropped pairs to apply instead
    of drawing them (a replayed training step)."""
    if dropped is not None:
        if dropped.shape != invalid.shape or bool(dropped[:, 0].any()):
            raise ValueError(f"a given view dropout must have the tokens' shape {tuple(invalid.shape)} (views by "
                             f"points of one density call) and never drop view 0; got {tuple(dropped.shape)}")
        return invalid | dropped.to(invalid.device)
    if rate <= 0.0:
        return invalid
    drop = torch.rand(invalid.shape, generator=generator, device="cpu").to(invalid.device) < rate
    drop[:, 0] = False
    return invalid | drop


__all__ = ["ConfidenceFusionHead", "TransformerFusionHead", "drop_views"]

"""MVBTS: several encoded views, fused per point by a multi-view head (docs/method.md §4)."""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.encoders import ImageEncoder
from bts.fields import DensityOutput, EncodedViews
from bts.fields.multi_view import MultiViewField
from bts.models.bts import BTSModel
from bts.models.views import view_subset


class MVBTSModel(BTSModel):
    """Encoder plus multi-view field. In training it encodes view 0 and ``num_train_views - 1`` views drawn from
    ``train_candidates`` (the stereo style: two of the next frame, the stereo partner and its next frame); in
    evaluation the named subset ``eval_views`` (docs/decisions.md §7)."""

    kind = "mvbts"

    def __init__(self, encoder: ImageEncoder, field: MultiViewField, num_train_views: int = 3,
                 train_candidates: tuple[int, ...] = (1, 2, 3), eval_views: str = "mono"):
        super().__init__(encoder, field)  # type: ignore[arg-type]
        if not 1 <= num_train_views <= len(train_candidates) + 1:
            raise ValueError(f"num_train_views={num_train_views} needs {num_train_views - 1} of {train_candidates}")
        self.num_train_views = num_train_views
        self.train_candidates = tuple(train_candidates)
        self.eval_views = eval_views
        view_subset(eval_views)  # fail early on an unknown name

    def encoder_views(self, num_views: int, training: bool) -> list[int]:
        if training:
            order = torch.randperm(len(self.train_candidates)).tolist()
            return [0] + sorted(self.train_candidates[i] for i in order[: self.num_train_views - 1])
        views = list(view_subset(self.eval_views)) if self.eval_views != "all" else list(range(num_views))
        missing = [v for v in views if v >= num_views]
        if missing:
            raise ValueError(f"view subset {self.eval_views!r} needs views {missing}, the batch has {num_views}")
        return views

    def density(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews,
                dropped: Bool[Tensor, "B V N"] | None = None) -> DensityOutput:
        """``dropped``: a given view dropout (see :meth:`MultiViewField.forward`)."""
        return self.field(points, encoded, dropped=dropped)

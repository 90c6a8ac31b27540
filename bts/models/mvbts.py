"""MVBTS: several encoded views, fused per point by a multi-view head (docs/method.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.encoders import ImageEncoder
from bts.fields import DensityOutput, EncodedViews
from bts.fields.multi_view import MultiViewField
from bts.models.bts import BTSModel
from bts.models.views import view_subset


@dataclass
class ViewChoice:
    """Which views a multi-view field encodes: in training view 0 and ``num_train_views - 1`` views drawn (with
    torch's global generator) from ``train_candidates`` (the stereo style: two of the next frame, the stereo partner
    and its next frame); in evaluation the named subset ``eval_views`` (docs/decisions.md §7). MVBTS and the KDBTS
    teacher choose the same way."""

    num_train_views: int = 3
    train_candidates: Sequence[int] = (1, 2, 3)  # kept as a tuple
    eval_views: str = "mono"

    def __post_init__(self):
        self.train_candidates = tuple(self.train_candidates)
        if not 1 <= self.num_train_views <= len(self.train_candidates) + 1:
            raise ValueError(f"num_train_views={self.num_train_views} needs {self.num_train_views - 1} of "
                             f"{self.train_candidates}")
        view_subset(self.eval_views)  # fail early on an unknown name

    def __call__(self, num_views: int, training: bool) -> list[int]:
        if training:
            order = torch.randperm(len(self.train_candidates)).tolist()
            return [0] + sorted(self.train_candidates[i] for i in order[: self.num_train_views - 1])
        views = list(view_subset(self.eval_views)) if self.eval_views != "all" else list(range(num_views))
        missing = [v for v in views if v >= num_views]
        if missing:
            raise ValueError(f"view subset {self.eval_views!r} needs views {missing}, the batch has {num_views}")
        return views


class MVBTSModel(BTSModel):
    """Encoder plus multi-view field, encoding the views of its :class:`ViewChoice` (``eval_views``: the subset
    evaluated, which ``load_model(views=...)`` sets)."""

    kind = "mvbts"

    def __init__(self, encoder: ImageEncoder, field: MultiViewField, num_train_views: int = 3,
                 train_candidates: Sequence[int] = (1, 2, 3), eval_views: str = "mono"):
        super().__init__(encoder, field)  # type: ignore[arg-type]
        self.choice = ViewChoice(num_train_views, train_candidates, eval_views)

    @property
    def eval_views(self) -> str:
        return self.choice.eval_views

    @eval_views.setter
    def eval_views(self, name: str) -> None:
        view_subset(name)
        self.choice.eval_views = name

    def encoder_views(self, num_views: int, training: bool) -> list[int]:
        return self.choice(num_views, training)

    def density(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews,
                dropped: Bool[Tensor, "B V N"] | None = None) -> DensityOutput:
        """``dropped``: a given view dropout (see :meth:`MultiViewField.forward`)."""
        return self.field(points, encoded, dropped=dropped)

"""BTS: one encoded image, a single-view density field (docs/method.md §1)."""

from __future__ import annotations

from collections.abc import Callable

from jaxtyping import Float
from torch import Tensor, nn

from bts.encoders import ImageEncoder
from bts.fields import DensityOutput, EncodedViews, SingleViewField
from bts.fields.multi_view import MultiViewField


class BTSModel(nn.Module):
    """Encoder plus single-view field. ``encode`` returns the encoding; nothing is kept on the module."""

    kind = "bts"

    def __init__(self, encoder: ImageEncoder, field: SingleViewField | MultiViewField):  # MVBTS: its multi-view field
        super().__init__()
        self.encoder = encoder
        self.field = field

    def encoder_views(self, num_views: int, training: bool) -> list[int]:
        """Which of a datapoint's views the model encodes: only the input view."""
        return [0]

    def encode(self, images: Float[Tensor, "B V 3 H W"], intrinsics: Float[Tensor, "B V 3 3"],
               cam_to_world: Float[Tensor, "B V 4 4"], views: list[int], flip: bool = False) -> EncodedViews:
        return encode_views(self.encoder, images, intrinsics, cam_to_world, views, flip)

    def density(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews) -> DensityOutput:
        return self.field(points, encoded)

    def density_fn(self, encoded: EncodedViews):
        """``points -> (sigma, invalid)`` for the renderer, bound to one encoding (evaluation and rendering)."""
        return bound_density(self.density, encoded)


def encode_views(encoder: ImageEncoder, images: Float[Tensor, "B V 3 H W"], intrinsics: Float[Tensor, "B V 3 3"],
                 cam_to_world: Float[Tensor, "B V 4 4"], views: list[int], flip: bool = False) -> EncodedViews:
    """The chosen views of a batch through one encoder call (views folded into the batch)."""
    b, v = images.shape[0], len(views)
    features = encoder(images[:, views].flatten(0, 1), flip=flip)
    return EncodedViews.create(features.unflatten(0, (b, v)), intrinsics[:, views], cam_to_world[:, views])


def bound_density(density: Callable[[Tensor, EncodedViews], DensityOutput], encoded: EncodedViews):
    """``points -> (sigma, invalid)``: a model's ``density`` bound to one encoding, as the renderer calls it."""

    def fn(points: Tensor):
        out = density(points, encoded)
        return out.sigma, out.invalid

    return fn

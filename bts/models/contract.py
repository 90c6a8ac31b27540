"""The model contract: what training, evaluation and rendering call on a model, and what a batch holds.

Every model of the project (:class:`~bts.models.bts.BTSModel`, :class:`~bts.models.mvbts.MVBTSModel`,
:class:`~bts.models.kdbts.KDBTSModel`) is a :class:`FieldModel`: it chooses which views of a datapoint it encodes,
encodes them, and answers density queries at world points against that encoding. A :class:`DistillingModel`
(KDBTS) also has ``training_density``, which the training step renders through and which adds the distillation term.
Which kinds exist, how each is built from its config and whether it is evaluated on one view is the registry of
:mod:`bts.models.factory` (:data:`~bts.models.factory.MODELS`).

Batches (:class:`Batch`) are the collated items of the data layer (``datasets/kitti_360/dataset.py``): views in the
fixed order of docs/method.md §3.1 (view 0 the input view), images in [-1, 1], intrinsics normalised to [-1, 1]
image coordinates (pixel centres), ``cam_to_world`` into view 0's camera frame at the input time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol, TypedDict, runtime_checkable

from jaxtyping import Bool, Float, Int
from torch import Tensor

from bts.fields import DensityOutput, EncodedViews
from bts.losses.distillation import DistillationAccumulator

DensityFn = Callable[[Tensor], tuple[Tensor, Tensor]]  # world points [B, N, 3] -> (sigma [B, N], invalid [B, N])


class Batch(TypedDict, total=False):
    """A collated batch. ``images``, ``intrinsics`` and ``cam_to_world`` are what every model needs; the rest is
    read by the training step, the evaluations or the supervised bound where present."""

    images: Float[Tensor, "B V 3 H W"]
    intrinsics: Float[Tensor, "B V 3 3"]
    cam_to_world: Float[Tensor, "B V 4 4"]
    world_from_view0: Float[Tensor, "B 4 4"]   # view 0's absolute pose (the levelled evaluation frame starts here)
    frame_ids: Int[Tensor, "B V"]
    cameras: Int[Tensor, "B V"]                 # 0, 1 perspective (left, right); 2, 3 fisheye
    lidar_depth: Float[Tensor, "B V H W"]       # the depth evaluation's projected lidar (KITTI-360)
    occupancy_points: Float[Tensor, "B N 3"]    # the supervised bound: labelled points in view 0's frame
    occupancy_labels: Float[Tensor, "B N"]
    occupancy_modes: Int[Tensor, "B N"]


@runtime_checkable
class FieldModel(Protocol):
    """What every entry point calls on a model."""

    kind: ClassVar[str]
    training: bool  # nn.Module's mode: the training step encodes the training views when set

    def encoder_views(self, num_views: int, training: bool) -> list[int]:
        """The indices of a datapoint's ``num_views`` views that the model encodes (view 0 first)."""
        ...

    def encode(self, images: Float[Tensor, "B V 3 H W"], intrinsics: Float[Tensor, "B V 3 3"],
               cam_to_world: Float[Tensor, "B V 4 4"], views: list[int], flip: bool = False) -> EncodedViews:
        """Feature maps of the chosen ``views`` with their cameras (a returned value, never state)."""
        ...

    def density(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews) -> DensityOutput:
        """The density the model renders and is evaluated with, at world points."""
        ...

    def density_fn(self, encoded: EncodedViews) -> DensityFn:
        """:meth:`density` bound to one encoding, as the renderer calls it."""
        ...


@runtime_checkable
class DistillingModel(FieldModel, Protocol):
    """A model trained with a distillation term (KDBTS): the training step renders through ``training_density``."""

    def training_density(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews, kd: DistillationAccumulator,
                         dropped: Bool[Tensor, "B V N"] | None = None) -> DensityOutput:
        """The density the photometric loss renders during training; adds the distillation term to ``kd``."""
        ...

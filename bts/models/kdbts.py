"""KDBTS: a single-view student head distilled from the MVBTS teacher on a shared encoder (docs/method.md §5).

Built by composition: the shared encoder, the teacher's multi-view field (with MVBTS's :class:`ViewChoice` of
encoded views in training), the student head, and the distillation recipe, all given to the constructor. It is not
an MVBTS model: it encodes and renders one view outside training.

Rendering and evaluation (``density``) always use the student: the original silently rendered through the teacher
(docs/method.md §11-4). During training, ``training_density`` returns the density that the photometric loss renders (the
student for the ``frozen`` recipe, the teacher for ``joint``) and accumulates the distillation loss over the sample
points inside the input frustum: the paper's ``L_KD = mean |clip(softplus(s), 0, 2) - clip(softplus(sg(t)), 0, 2)|``
or, with ``kd.loss=bce``, the cross-entropy of occupancy probabilities, or, with ``kd.loss=vis_bce``, the
ray-termination cross-entropy along the rendered rays (:mod:`bts.losses.distillation`). ``kd.mask`` keeps the term
only where the teacher has evidence (:mod:`bts.losses.trust`: ``visibility``, ``agreement``, per point; ``photometric``,
per loss ray, where the teacher's render reconstructs the target from colour frames it did not encode better than
the student's; ``learned``, a head's trust per point trained on that evidence, :mod:`bts.losses.learned_trust`;
``none``, the paper, keeps every point inside the input frustum).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

from bts.encoders import ImageEncoder
from bts.fields import DensityOutput, EncodedViews
from bts.fields.mlp import MLP
from bts.fields.multi_view import MultiViewField
from bts.losses.distillation import RAY_LOSSES, DistillationAccumulator, check_kd_loss, distillation_loss
from bts.losses.learned_trust import TrustHead, trust_features
from bts.losses.trust import RAY_MASKS, check_mask, teacher_view_depths, trust_mask
from bts.models.bts import bound_density, encode_views
from bts.models.mvbts import ViewChoice

RECIPES = ("frozen", "joint")


class KDBTSModel(nn.Module):
    kind = "kdbts"

    def __init__(self, encoder: ImageEncoder, field: MultiViewField, student_hidden_dim: int = 64,
                 num_train_views: int = 3, train_candidates: Sequence[int] = (1, 2, 3),
                 eval_views: str = "mono", *, recipe: str = "frozen", student_photometric: bool = False,
                 loss: str = "l1", mask: str = "none"):
        super().__init__()
        self.encoder = encoder
        self.field = field  # the teacher
        self.student_head = MLP(encoder.feature_dim + field.encoding.out_dim, student_hidden_dim, 1)
        self.teacher_views = ViewChoice(num_train_views, train_candidates, eval_views)
        self.trust_head: TrustHead | None = None  # kd.mask=learned: where to follow the teacher (trained, not frozen)
        self.configure(recipe, student_photometric, loss, mask)
        # kd.mask's depth images of one encoding, held by a weak reference to it: the cache keeps neither the
        # encoder's features nor their graph alive after the step.
        self._view_depths: tuple[weakref.ref, Tensor] | None = None

    def configure(self, recipe: str, student_photometric: bool, loss: str = "l1", mask: str = "none") -> None:
        """The distillation recipe (docs/decisions.md §4), set by the constructor (and here to change it):
        ``frozen`` freezes the encoder and the teacher and keeps them in eval mode (no teacher view dropout);
        ``joint`` trains everything. ``loss``: the distillation term (:data:`bts.losses.distillation.KD_LOSSES`:
        the paper's ``l1``, ``bce`` on occupancy probabilities, or the ray loss ``vis_bce``); ``mask``: where the
        term applies (:data:`bts.losses.trust.MASKS`)."""
        if recipe not in RECIPES:
            raise ValueError(f"kd.recipe must be one of {RECIPES}, got {recipe!r}")
        self.kd_loss = check_kd_loss(loss)
        self.kd_mask = check_mask(mask)
        self.recipe, self.student_photometric = recipe, student_photometric
        frozen = recipe == "frozen"
        for module in (self.encoder, self.field):
            for p in module.parameters():
                p.requires_grad_(not frozen)
        if mask == "learned":
            self.add_trust_head()

    def add_trust_head(self) -> None:
        """The learned mask's head (``kd.mask=learned``), if the model has none yet: also what rebuilding a
        checkpoint that holds one needs (:func:`bts.inference.load_model`)."""
        if self.trust_head is None:
            self.trust_head = TrustHead(self.encoder.feature_dim + self.field.encoding.out_dim)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.recipe == "frozen":  # batch statistics and dropout of the frozen parts stay in eval mode
            self.encoder.eval()
            self.field.eval()
        return self

    def encoder_views(self, num_views: int, training: bool) -> list[int]:
        # The teacher's views in training; evaluation and rendering see one image: the student is single-view.
        return self.teacher_views(num_views, training) if training else [0]

    def encode(self, images: Float[Tensor, "B V 3 H W"], intrinsics: Float[Tensor, "B V 3 3"],
               cam_to_world: Float[Tensor, "B V 4 4"], views: list[int], flip: bool = False) -> EncodedViews:
        return encode_views(self.encoder, images, intrinsics, cam_to_world, views, flip)

    def _student(self, tokens) -> DensityOutput:
        raw = self.student_head(tokens.of_view(0)).squeeze(-1)
        return DensityOutput(F.softplus(raw), raw, tokens.invalid[:, 0])

    def density(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews) -> DensityOutput:
        return self._student(self.field.tokens(points, encoded.select([0])))

    def density_fn(self, encoded: EncodedViews):
        """The student's ``points -> (sigma, invalid)`` for the renderer."""
        return bound_density(self.density, encoded)

    def training_density(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews,
                         kd: DistillationAccumulator, dropped: Bool[Tensor, "B V N"] | None = None) -> DensityOutput:
        tokens = self.field.tokens(points, encoded)
        student = self._student(tokens)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.recipe == "joint"):
            teacher = self.field(points, encoded, tokens=tokens, dropped=dropped)
        inside = ~tokens.invalid[:, 0]
        if self.kd_mask in RAY_MASKS:  # decided once the pass is rendered (from the step's colours)
            trust = None
            if self.kd_mask == "learned":
                trust = self.trust_head(trust_features(teacher.raw, student.raw, tokens.tokens, tokens.invalid))
            kd.keep(student.raw, teacher.raw, inside, self.kd_loss, ray_mask=self.kd_mask, trust=trust)
        else:
            if self.kd_mask != "none":
                considered = inside
                inside = inside & self.trust_mask(points, encoded, tokens)
                kd.count_coverage(int(inside.sum()), int(considered.sum()))
            if self.kd_loss in RAY_LOSSES:  # needs whole rays: computed after the render pass
                kd.keep(student.raw, teacher.raw, inside, self.kd_loss)
            else:
                kd.add(distillation_loss(student.raw, teacher.raw, self.kd_loss)[inside])
        if self.recipe == "joint":
            return teacher
        if self.student_photometric:
            return student
        # Render through the student for the logs, without a photometric gradient.
        return DensityOutput(student.sigma.detach(), student.raw.detach(), student.invalid)

    def trust_mask(self, points: Float[Tensor, "B N 3"], encoded: EncodedViews, tokens) -> Bool[Tensor, "B N"]:
        """``kd.mask`` at the points (:mod:`bts.losses.trust`): where the teacher has evidence. The teacher's depth
        image of each encoded view is rendered once per encoding (the step queries its points in chunks)."""
        if self._view_depths is None or self._view_depths[0]() is not encoded:
            self._view_depths = (weakref.ref(encoded), teacher_view_depths(self.field, encoded))
        return trust_mask(self.kd_mask, self.field, points, encoded, self._view_depths[1], tokens)

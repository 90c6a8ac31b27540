"""A trained model for evaluation and rendering: loading it from a checkpoint and running it on views.

Every inference entry point (``evaluation/occupancy.py``, ``render_novel_view.py``, ...) goes through
:func:`load_model`, so they accept the same checkpoints: BTS, MVBTS (with a chosen view subset), KDBTS (whose
single-view student is what is evaluated) and the single-view export of a KDBTS run.

Conventions: images are in [-1, 1], ``[B, V, 3, H, W]``; intrinsics are normalised (``[-1, 1]`` image coordinates,
pixel centres, as in the data layer); ``cam_to_world`` maps each view's camera frame to a common world frame. View 0
is the input view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from jaxtyping import Float
from omegaconf import OmegaConf
from torch import Tensor, nn

from bts.checkpoints.format import MODEL_KINDS, CheckpointError, load_checkpoint, load_state_strict
from bts.fields import EncodedViews
from bts.models.contract import FieldModel
from bts.models.factory import build_model, model_spec
from bts.models.views import view_subset
from bts.rendering.pixels import RAY_POSITIONS
from bts.rendering.renderer import RendererConfig

DEFAULT_IMAGE_SIZE = (192, 640)


def find_run_config(checkpoint: Path) -> dict[str, Any] | None:
    """The resolved config of the training run that wrote ``checkpoint`` (``<run>/checkpoints/x.pt`` ->
    ``<run>/config.yaml``), or ``None`` for a checkpoint outside a run folder."""
    candidate = Path(checkpoint).resolve().parent.parent / "config.yaml"
    if not candidate.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(candidate), resolve=False)  # type: ignore[return-value]


@dataclass
class LoadedModel:
    """A model in eval mode with what the entry points need to know about it."""

    model: nn.Module
    kind: str                      # bts | mvbts | kdbts (a KDBTS model evaluates and renders its student)
    model_config: dict[str, Any]
    checkpoint: Path
    run_config: dict[str, Any] | None = None
    source_format: str = "project"  # project | original (a released checkpoint of the original code, issue 8)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def field_model(self) -> FieldModel:
        """The model through its contract (:class:`bts.models.contract.FieldModel`)."""
        return cast(FieldModel, self.model)

    @property
    def multi_view(self) -> bool:
        """Whether the kind is evaluated on a named view subset (the registry's ``multi_view_eval``: MVBTS)."""
        return model_spec(self.kind).multi_view_eval

    @property
    def single_view(self) -> bool:
        return not self.multi_view or self.views == "mono"

    @property
    def views(self) -> str:
        """The named view subset the model encodes (docs/decisions.md §7): ``mono`` for single-view models."""
        return getattr(self.model, "eval_views", "mono") if self.multi_view else "mono"

    @property
    def description(self) -> str:
        """How the model is named in tables: ``bts``, ``kdbts`` or ``mvbts[stereo_temporal]``."""
        return f"{self.kind}[{self.views}]" if self.multi_view else self.kind

    def record(self) -> dict[str, Any]:
        """What every results file says about the model: checkpoint, kind, description, views, source format."""
        return {"checkpoint": str(self.checkpoint), "kind": self.kind, "description": self.description,
                "views": self.views, "source_format": self.source_format}

    @property
    def conventions(self) -> dict[str, str]:
        """The conventions an imported original model was used with (``config.imported.conventions``: intrinsics,
        rays, depth samples); empty for a model of this project."""
        return dict((self.model_config.get("imported") or {}).get("conventions") or {})

    @property
    def ray_positions(self) -> str:
        """Where this model's rendered rays pass through a pixel: ``centres`` (the project's models), or the
        convention recorded for an imported original model (``align_corners``: the original's ``linspace(-1, 1)``)."""
        rays = self.conventions.get("rays", "centres")
        if rays not in RAY_POSITIONS:
            raise ValueError(f"{self.checkpoint}: config.imported.conventions.rays must be one of {RAY_POSITIONS}, "
                             f"got {rays!r}")
        return rays

    def training_image_size(self) -> tuple[int, int] | None:
        """The (H, W) the model was trained at, when the run's config is known."""
        try:
            size = self.run_config["data"]["image_size"]  # type: ignore[index]
        except (KeyError, TypeError):
            return None
        return int(size[0]), int(size[1])

    def renderer_config(self, **overrides: Any) -> RendererConfig:
        """The renderer of the training run (its near/far and sample count), or the defaults."""
        values = dict((self.run_config or {}).get("renderer") or {})
        values.update(overrides)
        try:
            return RendererConfig(**values)
        except TypeError as e:
            raise ValueError(f"invalid renderer setting: {e}") from None

    def encoder_views(self, num_views: int) -> list[int]:
        return self.field_model.encoder_views(num_views, training=False)

    @torch.no_grad()
    def encode(self, images: Float[Tensor, "B V 3 H W"], intrinsics: Float[Tensor, "B V 3 3"],
               cam_to_world: Float[Tensor, "B V 4 4"]) -> EncodedViews:
        """Encode the views of a batch that this model uses (the input view, or the MVBTS subset)."""
        dev = self.device
        views = self.encoder_views(images.shape[1])
        return self.field_model.encode(images.to(dev), intrinsics.to(dev), cam_to_world.to(dev), views)

    def density_fn(self, encoded: EncodedViews):
        """``world points [B, N, 3] -> (sigma, invalid)`` for the renderer (gradients off)."""
        fn = self.field_model.density_fn(encoded)

        def no_grad_fn(points: Tensor):
            with torch.no_grad():
                return fn(points)

        return no_grad_fn


def load_model(checkpoint: Path | str, *, device: str | torch.device = "cpu",
               kinds: tuple[str, ...] = MODEL_KINDS, views: str | None = None) -> LoadedModel:
    """Rebuild the model of a checkpoint from its saved config (never downloading weights) in eval mode.

    ``views`` names the encoded view subset of an MVBTS model (docs/decisions.md §7; ``None``: the model's own
    ``model.views.eval_views``); for single-view models only ``mono`` (or ``None``) is accepted.
    """
    path = Path(checkpoint)
    data, source_format = _read(path, kinds)
    kind = data["model_kind"]
    model = build_model(data["config"], pretrained=False)
    if hasattr(model, "add_trust_head") and any(k.startswith("trust_head.") for k in data["model"]):
        model.add_trust_head()  # a KDBTS run with kd.mask=learned also saved its mask head
    load_state_strict(model, data["model"], str(path))
    if views is not None:
        view_subset(views)  # unknown names fail here, listing the known ones
        if model_spec(kind).multi_view_eval:
            model.eval_views = views
        elif views != "mono":
            raise ValueError(f"{path} holds a single-view {kind!r} model; views={views!r} needs an MVBTS "
                             "checkpoint (train.py -cn mvbts)")
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(model, kind, data["config"], path, find_run_config(path), source_format)


def _read(path: Path, kinds: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """A checkpoint of this project, or (through the importer of issue 8, when it recognises the file) a released
    checkpoint of the original code converted on the fly."""
    try:
        return load_checkpoint(path, kinds=kinds), "project"
    except CheckpointError as error:
        converted = _convert_original(path, kinds)
        if converted is None:
            raise error from None
        return converted, "original"


def _convert_original(path: Path, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """Convert a released original checkpoint in memory, or ``None`` when the file is not one (or the importer is
    not available)."""
    try:
        from bts.checkpoints.convert import convert_for_inference  # noqa: PLC0415 - optional, issue 8
    except ImportError:
        return None
    return convert_for_inference(path, kinds)

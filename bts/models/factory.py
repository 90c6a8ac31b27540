"""Models from the ``model`` config node (plain containers), and back from checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from bts.encoders import ImageEncoder
from bts.fields import PositionalEncoding, SingleViewField
from bts.fields.fusion import ConfidenceFusionHead, TransformerFusionHead
from bts.fields.multi_view import MultiViewField
from bts.models.bts import BTSModel
from bts.models.kdbts import KDBTSModel
from bts.models.mvbts import MVBTSModel

FUSION_HEADS = {"confidence": ConfidenceFusionHead, "transformer": TransformerFusionHead}


def _construct(cls, kwargs: dict[str, Any], where: str):
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"invalid key in {where}: {e}") from None


def build_encoder(cfg: dict[str, Any], pretrained: bool | None = None) -> ImageEncoder:
    """The image encoder of ``model.encoder``, starting from ImageNet weights (``pretrained: true``) or from an
    encoder weights file (``weights: FILE``, :mod:`bts.encoders.weights`), or from scratch. ``pretrained=False``
    skips both (the weights come from a checkpoint)."""
    kwargs = dict(cfg)
    weights = kwargs.pop("weights", None)
    if weights is not None and kwargs.get("pretrained"):
        raise ValueError("model.encoder: pretrained=true (ImageNet) and weights=FILE are two starting points; set one "
                         "(model.encoder.pretrained=false to start from the file)")
    if pretrained is not None:
        kwargs["pretrained"] = pretrained
    encoder = _construct(ImageEncoder, kwargs, "model.encoder")
    if weights is not None and pretrained is not False:
        from bts.encoders.weights import load_encoder_weights  # noqa: PLC0415 - bts.checkpoints imports this module

        load_encoder_weights(encoder, weights, kwargs)
    return encoder


@dataclass(frozen=True)
class ModelSpec:
    """One kind of model: its class, how it is built from the ``model`` config, and what evaluation sees."""

    cls: type[nn.Module]
    build: Callable[[dict[str, Any], ImageEncoder, dict[str, Any] | None], nn.Module]
    multi_view_eval: bool  # evaluated on a named view subset (views=...); otherwise on the input view only
    distills: bool = False  # trained with a teacher (kd.* config, teacher checkpoint)


def _bts(cfg: dict[str, Any], encoder: ImageEncoder, distillation: dict[str, Any] | None) -> BTSModel:
    field = _construct(SingleViewField, {"feature_dim": encoder.feature_dim, **cfg["field"]}, "model.field")
    return BTSModel(encoder, field)


def _mvbts(cfg: dict[str, Any], encoder: ImageEncoder, distillation: dict[str, Any] | None) -> MVBTSModel:
    return MVBTSModel(encoder, build_multi_view_field(cfg, encoder.feature_dim), **cfg["views"])


def _kdbts(cfg: dict[str, Any], encoder: ImageEncoder, distillation: dict[str, Any] | None) -> KDBTSModel:
    kd = distillation or {}
    recipe = {k: kd[k] for k in ("recipe", "student_photometric", "loss", "mask") if k in kd}
    return KDBTSModel(encoder, build_multi_view_field(cfg, encoder.feature_dim),
                      student_hidden_dim=cfg["student"]["hidden_dim"], **cfg["views"], **recipe)


# The one registry of model kinds: training, checkpoints, inference and rendering read it instead of kind strings.
MODELS: dict[str, ModelSpec] = {
    "bts": ModelSpec(BTSModel, _bts, multi_view_eval=False),
    "mvbts": ModelSpec(MVBTSModel, _mvbts, multi_view_eval=True),
    "kdbts": ModelSpec(KDBTSModel, _kdbts, multi_view_eval=False, distills=True),
}


def model_spec(kind: str) -> ModelSpec:
    if kind not in MODELS:
        raise ValueError(f"model.kind must be one of {tuple(MODELS)}, got {kind!r}")
    return MODELS[kind]


def build_model(cfg: dict[str, Any], pretrained: bool | None = None,
                distillation: dict[str, Any] | None = None) -> nn.Module:
    """Build the model a config describes. ``pretrained=False`` skips ImageNet weights (used when the weights come
    from a checkpoint anyway, so that rebuilding never downloads anything). ``distillation``: the ``kd`` node of a
    KDBTS run (``recipe``, ``student_photometric``, ``loss``), given to its constructor; without it the defaults
    (``frozen``, no student photometric loss, ``l1``), which is all evaluation needs."""
    spec = model_spec(cfg["kind"])
    return spec.build(cfg, build_encoder(cfg["encoder"], pretrained), distillation)


def build_multi_view_field(cfg: dict[str, Any], feature_dim: int) -> MultiViewField:
    field = dict(cfg["field"])
    head_cfg = dict(cfg["fusion"])
    head_type = head_cfg.pop("type")
    if head_type not in FUSION_HEADS:
        raise ValueError(f"model.fusion.type must be one of {sorted(FUSION_HEADS)}, got {head_type!r}")
    d_in = feature_dim + PositionalEncoding(3, field["num_freqs"]).out_dim
    head = _construct(FUSION_HEADS[head_type], {"d_in": d_in, **head_cfg}, "model.fusion")
    return _construct(MultiViewField, {"head": head, **field}, "model.field")

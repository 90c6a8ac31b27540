"""Models from the ``model`` config node (plain containers), and back from checkpoints."""

from __future__ import annotations

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
    kwargs = dict(cfg)
    if pretrained is not None:
        kwargs["pretrained"] = pretrained
    return _construct(ImageEncoder, kwargs, "model.encoder")


def build_model(cfg: dict[str, Any], pretrained: bool | None = None) -> nn.Module:
    """Build the model a config describes. ``pretrained=False`` skips ImageNet weights (used when the weights come
    from a checkpoint anyway, so that rebuilding never downloads anything)."""
    kind = cfg["kind"]
    if kind == "bts":
        encoder = build_encoder(cfg["encoder"], pretrained)
        field = _construct(SingleViewField, {"feature_dim": encoder.feature_dim, **cfg["field"]}, "model.field")
        return BTSModel(encoder, field)
    if kind == "mvbts":
        encoder = build_encoder(cfg["encoder"], pretrained)
        return MVBTSModel(encoder, build_multi_view_field(cfg, encoder.feature_dim), **cfg["views"])
    if kind == "kdbts":
        encoder = build_encoder(cfg["encoder"], pretrained)
        return KDBTSModel(encoder, build_multi_view_field(cfg, encoder.feature_dim),
                          student_hidden_dim=cfg["student"]["hidden_dim"], **cfg["views"])
    raise ValueError(f"model.kind must be one of ('bts', 'mvbts', 'kdbts'), got {kind!r}")


def build_multi_view_field(cfg: dict[str, Any], feature_dim: int) -> MultiViewField:
    field = dict(cfg["field"])
    head_cfg = dict(cfg["fusion"])
    head_type = head_cfg.pop("type")
    if head_type not in FUSION_HEADS:
        raise ValueError(f"model.fusion.type must be one of {sorted(FUSION_HEADS)}, got {head_type!r}")
    d_in = feature_dim + PositionalEncoding(3, field["num_freqs"]).out_dim
    head = _construct(FUSION_HEADS[head_type], {"d_in": d_in, **head_cfg}, "model.fusion")
    return _construct(MultiViewField, {"head": head, **field}, "model.field")

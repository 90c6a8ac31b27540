"""Models from the ``model`` config node (plain containers), and back from checkpoints."""

from __future__ import annotations

from typing import Any

from torch import nn

from bts.encoders import ImageEncoder
from bts.fields import SingleViewField
from bts.models.bts import BTSModel


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
    raise ValueError(f"model.kind must be one of ('bts',), got {kind!r}")

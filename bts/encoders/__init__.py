"""Image encoders: ResNet backbone plus upsampling decoder to a per-pixel feature map."""

from bts.encoders.backbone import PretrainedWeightsUnavailable, ResnetBackbone
from bts.encoders.decoder import UpsamplingDecoder
from bts.encoders.image_encoder import ImageEncoder

__all__ = ["ImageEncoder", "PretrainedWeightsUnavailable", "ResnetBackbone", "UpsamplingDecoder"]

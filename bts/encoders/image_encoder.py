"""Image encoder: per-pixel feature maps at the input resolution (docs/method.md §1.1)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from bts.encoders.backbone import ResnetBackbone
from bts.encoders.decoder import UpsamplingDecoder

# Monodepth2's single scalar normalisation, applied after mapping [-1, 1] to [0, 1].
IMAGE_MEAN = 0.45
IMAGE_STD = 0.225
MIN_SIZE = 33


class ImageEncoder(nn.Module):
    """ResNet encoder and upsampling decoder; images in ``[-1, 1]``, features ``[N, C, H, W]``.

    Two speed settings that the trainer sets (:meth:`use_fast_path`; off by default, so evaluation and the parity
    tests run the plain float32 path): ``compute_dtype`` (``None``: float32), the precision of the convolutions
    under autocast (``trainer.amp``, bf16 on CPUs with native bf16 kernels); and ``channels_last``, the memory
    format of the convolutions (``trainer.channels_last``, faster oneDNN kernels on the CPU). The features are
    returned in float32 whatever the encoder computes in, so that the geometry, the density field and the losses stay
    float32, and always channels-last in memory (the shape is ``[N, C, H, W]`` as ever): the layout the density
    field's feature sampling reads fast (``bts.fields.tokens``), so no path copies the maps to another layout.
    """

    def __init__(self, depth: int = 50, pretrained: bool = False, on_missing_weights: str = "error",
                 decoder_widths=(32, 32, 64, 128, 256), feature_dim: int = 64):
        super().__init__()
        self.backbone = ResnetBackbone(depth, pretrained, on_missing_weights)
        self.decoder = UpsamplingDecoder(self.backbone.channels, tuple(decoder_widths), feature_dim)
        self.feature_dim = feature_dim
        self.compute_dtype: torch.dtype | None = None
        self.channels_last = False

    def use_fast_path(self, compute_dtype: torch.dtype | None = None, channels_last: bool = False) -> ImageEncoder:
        """Set the precision and memory format of the convolutions (see the class docstring)."""
        self.compute_dtype, self.channels_last = compute_dtype, channels_last
        self.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        return self

    def forward(self, images: Float[Tensor, "N 3 H W"], flip: bool = False) -> Float[Tensor, "N C H W"]:
        """Encode images. With ``flip`` the input is mirrored and the features mirrored back, so they stay
        aligned with the unflipped image (the flip augmentation of docs/method.md §1.1; poses and colours are
        untouched)."""
        if min(images.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"images must be at least {MIN_SIZE} pixels high and wide (the 1/32 map needs 2 "
                             f"pixels for its reflection padding), got {tuple(images.shape[-2:])}")
        x = (images * 0.5 + 0.5 - IMAGE_MEAN) / IMAGE_STD
        if flip:
            x = x.flip(-1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, dtype=self.compute_dtype, enabled=self.compute_dtype is not None):
            features = self.decoder(self.backbone(x), out_size=tuple(images.shape[-2:]))
        features = features.float()
        if flip:
            features = features.flip(-1)
        return features.contiguous(memory_format=torch.channels_last)  # a no-op on the channels-last path

"""The Monodepth2-style upsampling decoder of BTS (docs/method.md §1.1), producing only the scale-0 map.

Stages i = 4..0: conv block to width[i]; nearest x2 upsampling; for i > 0 concatenation with encoder map i-1
(the upsampled map is cropped if it is larger); a second conv block. A 3x3 output convolution without activation
gives the feature map at the input resolution. The original also computes three coarser outputs that nothing uses;
they are left out here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvBlock(nn.Module):
    """3x3 convolution with reflection padding, then ELU."""

    def __init__(self, in_channels: int, out_channels: int, activation: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return F.elu(x) if self.activation else x


class UpsamplingDecoder(nn.Module):
    def __init__(self, encoder_channels: tuple[int, ...], widths=(32, 32, 64, 128, 256), out_channels: int = 64):
        super().__init__()
        if len(encoder_channels) != 5 or len(widths) != 5:
            raise ValueError("the decoder needs five encoder maps and five widths")
        # Every width is raised to at least the output width, as in the original.
        w = [max(int(c), out_channels) for c in widths]
        self.widths = tuple(w)
        first, second = [], []
        for i in range(4, -1, -1):
            c_in = encoder_channels[4] if i == 4 else w[i + 1]
            first.append(ConvBlock(c_in, w[i]))
            second.append(ConvBlock(w[i] + (encoder_channels[i - 1] if i > 0 else 0), w[i]))
        self.first = nn.ModuleList(first)  # index k is stage 4 - k
        self.second = nn.ModuleList(second)
        self.output = ConvBlock(w[0], out_channels, activation=False)

    def forward(self, features: list[Tensor], out_size: tuple[int, int]) -> Tensor:
        x = features[4]
        for k, i in enumerate(range(4, -1, -1)):
            x = F.interpolate(self.first[k](x), scale_factor=2.0, mode="nearest")
            if i > 0:
                skip = features[i - 1]
                x = torch.cat([x[..., : skip.shape[-2], : skip.shape[-1]], skip], dim=1)
            x = self.second[k](x)
        return self.output(x[..., : out_size[0], : out_size[1]])

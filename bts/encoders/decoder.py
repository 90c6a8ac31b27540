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


def elu(x: Tensor) -> Tensor:
    """``F.elu(x)`` (alpha 1) with its negative branch as ``exp(x) - 1`` in float32, which PyTorch vectorises on the
    CPU, instead of ``expm1``, which it computes one value at a time there (5x slower on a full-resolution map,
    BENCHMARKS.md, "The decoder's ELU"). The two differ by at most about 5e-8 (the rounding of ``exp`` near 1; F.elu
    itself is 3e-8 from the exact value); bf16 inputs are computed in float32 and rounded once, as F.elu does.
    The backward is F.elu's own (``elu_backward`` on the input). Elsewhere than on the CPU it is ``F.elu``."""
    if x.device.type != "cpu" or not x.is_floating_point() or x.dtype == torch.float64:
        return F.elu(x)
    return _ExpELU.apply(x)


class _ExpELU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        wide = x.float()
        y = wide.clamp_max(0.0).exp_().sub_(1.0).add_(wide.clamp_min(0.0)).to(x.dtype)
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, 1.0, 1.0, 1.0, False, x)


class ConvBlock(nn.Module):
    """3x3 convolution with reflection padding, then ELU (:func:`elu`)."""

    def __init__(self, in_channels: int, out_channels: int, activation: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return elu(x) if self.activation else x


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

"""Colour jitter (docs/method.md §3.8): one draw per datapoint, applied identically to all of its frames."""

from __future__ import annotations

from dataclasses import dataclass

import torchvision.transforms.functional as TF
from torch import Tensor
from torchvision.transforms import ColorJitter

BRIGHTNESS = (0.8, 1.2)
CONTRAST = (0.8, 1.2)
SATURATION = (0.8, 1.2)
HUE = (-0.1, 0.1)


@dataclass(frozen=True)
class ColorJitterParams:
    order: tuple[int, ...]  # order of the four operations (0 brightness, 1 contrast, 2 saturation, 3 hue)
    brightness: float
    contrast: float
    saturation: float
    hue: float

    @classmethod
    def sample(cls) -> ColorJitterParams:
        """Draw from torch's global generator (seeded per DataLoader worker)."""
        order, b, c, s, h = ColorJitter.get_params(BRIGHTNESS, CONTRAST, SATURATION, HUE)
        return cls(tuple(int(i) for i in order), float(b), float(c), float(s), float(h))

    def apply(self, image: Tensor) -> Tensor:
        """Jitter an RGB image ``[3, H, W]`` in ``[0, 1]``; the four operations run in ``order``."""
        ops = (
            lambda x: TF.adjust_brightness(x, self.brightness),
            lambda x: TF.adjust_contrast(x, self.contrast),
            lambda x: TF.adjust_saturation(x, self.saturation),
            lambda x: TF.adjust_hue(x, self.hue),
        )
        for i in self.order:
            image = ops[i](image)
        return image.clamp(0.0, 1.0)

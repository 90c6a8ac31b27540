"""ResNet backbones from torchvision, with ImageNet weights when asked for and available.

The weights are never downloaded behind the user's back in tests (``pretrained: false``). When they are asked for
and cannot be had (no network, no cached file), the error says where to put the file or how to switch them off;
``on_missing_weights="warn"`` trains from scratch with a warning instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from bts.errors import UserError

log = logging.getLogger(__name__)

_RESNETS = {
    18: ("resnet18", "ResNet18_Weights", (64, 64, 128, 256, 512)),
    34: ("resnet34", "ResNet34_Weights", (64, 64, 128, 256, 512)),
    50: ("resnet50", "ResNet50_Weights", (64, 256, 512, 1024, 2048)),
    101: ("resnet101", "ResNet101_Weights", (64, 256, 512, 1024, 2048)),
    152: ("resnet152", "ResNet152_Weights", (64, 256, 512, 1024, 2048)),
}


class PretrainedWeightsUnavailable(RuntimeError, UserError):
    """ImageNet weights were asked for but cannot be loaded (the message says where to put them)."""


def _imagenet_state_dict(depth: int) -> dict[str, Tensor]:
    _, weights_name, _ = _RESNETS[depth]
    # IMAGENET1K_V1 is what `pretrained=True` gave, i.e. the weights of the original BTS encoder.
    weights = getattr(torchvision.models, weights_name).IMAGENET1K_V1
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return weights.get_state_dict(progress=False)
    except Exception as e:  # noqa: BLE001 - any download or read failure means the same to the user
        filename = os.path.basename(weights.url)
        raise PretrainedWeightsUnavailable(
            f"ImageNet weights for ResNet-{depth} are not available ({type(e).__name__}: {e}). Either download "
            f"{weights.url} to {hub_dir / filename} (TORCH_HOME moves that folder), or train from scratch with "
            f"model.encoder.pretrained=false, or set model.encoder.on_missing_weights=warn."
        ) from e


def require_imagenet_weights(depth: int) -> None:
    """Raise :class:`PretrainedWeightsUnavailable` now if ResNet-``depth``'s ImageNet weights cannot be loaded (the
    entry point calls it before it generates or reads any data)."""
    if depth not in _RESNETS:
        raise ValueError(f"ResNet depth must be one of {sorted(_RESNETS)}, got {depth}")
    _imagenet_state_dict(depth)


class ResnetBackbone(nn.Module):
    """A torchvision ResNet returning the five maps of Monodepth2: conv1 (1/2) and layer1..4 (1/4..1/32)."""

    def __init__(self, depth: int = 50, pretrained: bool = False, on_missing_weights: str = "error"):
        super().__init__()
        if depth not in _RESNETS:
            raise ValueError(f"ResNet depth must be one of {sorted(_RESNETS)}, got {depth}")
        if on_missing_weights not in ("error", "warn"):
            raise ValueError(f"on_missing_weights must be 'error' or 'warn', got {on_missing_weights!r}")
        factory, _, self.channels = _RESNETS[depth]
        net = getattr(torchvision.models, factory)(weights=None)
        if pretrained:
            try:
                net.load_state_dict(_imagenet_state_dict(depth))
                log.info("loaded ImageNet weights for ResNet-%d", depth)
            except PretrainedWeightsUnavailable as e:
                if on_missing_weights == "error":
                    raise
                log.warning("%s Continuing with random initialisation.", e)
        del net.fc, net.avgpool  # the classifier is unused
        self.net = net

    def forward(self, x: Tensor) -> list[Tensor]:
        n = self.net
        f0 = n.relu(n.bn1(n.conv1(x)))
        f1 = n.layer1(n.maxpool(f0))
        f2 = n.layer2(f1)
        f3 = n.layer3(f2)
        f4 = n.layer4(f3)
        return [f0, f1, f2, f3, f4]

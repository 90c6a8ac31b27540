"""LPIPS (AlexNet) for the novel-view evaluation (docs/method.md §8.3), when its backbone weights can be had.

``lpips.LPIPS(net="alex")`` needs two sets of weights: its linear calibration layers, which ship inside the
``lpips`` package, and torchvision's ImageNet AlexNet, which torchvision downloads on first use into the torch hub
cache. Machines without internet access cannot download them, so the backbone is read from a file (the hub cache by
default, or ``weights=<file>``); when there is none, :func:`build_lpips` returns the reason instead of a model and
the evaluation reports ``lpips: null`` with that reason. Nothing is ever downloaded here.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor, nn

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1


@dataclass
class Lpips:
    """An LPIPS model, or ``None`` and why not."""

    model: nn.Module | None
    reason: str | None = None
    weights: Path | None = None

    @torch.no_grad()
    def __call__(self, pred: Float[Tensor, "C H W"], target: Float[Tensor, "C H W"]) -> float | None:
        """LPIPS distance of two images in ``[0, 1]`` (``normalize=True`` maps them to ``[-1, 1]``), or ``None``."""
        if self.model is None:
            return None
        dev = next(self.model.parameters()).device
        return self.model(pred[None].float().to(dev), target[None].float().to(dev), normalize=True).item()


def default_alexnet_weights() -> Path:
    """Where torchvision keeps the AlexNet weights: ``<torch hub dir>/checkpoints/`` (``$TORCH_HOME/hub``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def build_lpips(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                enabled: bool = True) -> Lpips:
    """LPIPS with torchvision's ImageNet AlexNet read from ``weights`` (default: the torch hub cache).

    A missing default file (or a missing ``lpips`` package) gives a model of ``None`` with the reason; an explicitly
    given file that does not exist or does not hold AlexNet weights is an error.
    """
    if not enabled:
        return Lpips(None, "LPIPS disabled (lpips=false)")
    try:
        import lpips  # noqa: PLC0415 - optional at run time
    except ImportError as e:
        return Lpips(None, f"LPIPS skipped: the 'lpips' package cannot be imported ({e}); pip install lpips")
    path = Path(weights) if weights is not None else default_alexnet_weights()
    if not path.is_file():
        if weights is not None:
            raise FileNotFoundError(f"lpips_alexnet_weights={path}: no such file (expected torchvision's ImageNet "
                                    f"AlexNet state dict, {ALEXNET_FILE})")
        return Lpips(None, f"LPIPS skipped: its backbone, torchvision's ImageNet AlexNet ({ALEXNET_FILE}), is not at "
                           f"{path} and is not downloaded here (no internet access assumed); copy the file there "
                           "(or set TORCH_HOME, or lpips_alexnet_weights=<file>) to get LPIPS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation warning for lpips's `pretrained=` argument
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)  # random backbone: no download
    load_alexnet_features(model.net, path)
    return Lpips(model.eval().to(device), None, path)


def load_alexnet_features(backbone: nn.Module, path: Path) -> None:
    """Copy torchvision AlexNet ``features.<i>.*`` weights into lpips's AlexNet slices (``slice<k>.<i>.*``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors have many types
        raise ValueError(f"{path} is not a readable torch state dict: {e}") from e
    params = dict(backbone.named_parameters())
    missing = []
    with torch.no_grad():
        for name, param in params.items():
            key = "features." + name.split(".", 1)[1]
            if key not in state or state[key].shape != param.shape:
                missing.append(key)
                continue
            param.copy_(state[key])
    if missing:
        raise ValueError(f"{path} does not hold torchvision AlexNet weights: missing or misshapen {missing}")

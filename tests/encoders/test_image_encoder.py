import logging

import pytest
import torch

from bts.encoders import ImageEncoder, PretrainedWeightsUnavailable
from bts.encoders import backbone as backbone_module


@pytest.mark.parametrize("depth,size", [(18, (48, 160)), (34, (37, 101)), (50, (64, 96))])
def test_feature_map_at_input_resolution(depth, size):
    enc = ImageEncoder(depth=depth)
    out = enc(torch.rand(2, 3, *size) * 2 - 1)
    assert out.shape == (2, 64, *size)
    assert torch.isfinite(out).all()


def test_effective_decoder_widths_are_raised_to_the_feature_dim():
    assert ImageEncoder(depth=18).decoder.widths == (64, 64, 64, 128, 256)


def test_flip_keeps_features_aligned_with_the_image():
    torch.manual_seed(0)
    enc = ImageEncoder(depth=18).eval()
    x = torch.rand(1, 3, 40, 64) * 2 - 1
    with torch.no_grad():
        flipped = enc(x, flip=True)
        manual = enc(x.flip(-1)).flip(-1)
        plain = enc(x)
    assert torch.allclose(flipped, manual)
    assert not torch.allclose(flipped, plain, atol=1e-4)


def test_gradients_reach_the_first_layer():
    enc = ImageEncoder(depth=18)
    enc(torch.rand(1, 3, 40, 64)).square().mean().backward()
    assert enc.backbone.net.conv1.weight.grad.abs().sum() > 0


def _offline(*args, **kwargs):
    raise OSError("network unreachable")


def test_missing_imagenet_weights_error_says_what_to_do(monkeypatch):
    monkeypatch.setattr(backbone_module.torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__,
                        "get_state_dict", _offline)
    with pytest.raises(PretrainedWeightsUnavailable) as e:
        ImageEncoder(depth=18, pretrained=True)
    msg = str(e.value)
    assert "resnet18-f37072fd.pth" in msg and "pretrained=false" in msg and "network unreachable" in msg


def test_missing_imagenet_weights_can_warn(monkeypatch, caplog):
    monkeypatch.setattr(backbone_module.torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__,
                        "get_state_dict", _offline)
    with caplog.at_level(logging.WARNING):
        enc = ImageEncoder(depth=18, pretrained=True, on_missing_weights="warn")
    assert enc is not None and "random initialisation" in caplog.text


def test_bad_depth_is_named():
    with pytest.raises(ValueError, match="ResNet depth must be one of"):
        ImageEncoder(depth=42)


def test_too_small_images_are_refused():
    with pytest.raises(ValueError, match="at least 33 pixels"):
        ImageEncoder(depth=18)(torch.rand(1, 3, 32, 64))

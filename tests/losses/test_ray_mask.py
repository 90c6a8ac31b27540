import torch

from bts.losses import masked_mean, weight_guided_mask


def test_weight_guided_mask_by_hand():
    # 4 rays, 2 colour frames, 4 samples; the weights of each ray sum to 1.
    weights = torch.tensor([
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.1, 0.0, 0.0, 0.9],
        [0.05, 0.0, 0.0, 0.95],
    ], dtype=torch.float64)
    invalid = torch.zeros(2, 4, 4, dtype=torch.bool)
    invalid[:, 0, 1] = True  # ray 0: its surface is outside both frames -> masked
    invalid[0, 1, 1] = True  # ray 1: outside frame 0 only -> frame 1 still sees it
    invalid[:, 2, 3] = True  # ray 2: exactly 0.9 of the weight outside both frames: not more than 0.9 -> kept
    invalid[:, 3, 3] = True  # ray 3: 0.95 outside both frames -> masked
    mask = weight_guided_mask(weights, invalid)
    assert mask.tolist() == [True, False, False, True]
    assert weight_guided_mask(weights, invalid, threshold=0.96).tolist() == [True, False, False, False]


def test_mask_batch_shapes():
    weights = torch.rand(2, 5, 7, 16).softmax(-1)
    invalid = torch.rand(2, 5, 4, 7, 16) > 0.5
    assert weight_guided_mask(weights, invalid).shape == (2, 5, 7)
    assert not weight_guided_mask(weights, torch.zeros_like(invalid)).any()
    assert weight_guided_mask(weights, torch.ones_like(invalid)).all()


def test_masked_mean():
    values = torch.tensor([1.0, 2.0, 3.0, float("inf")])
    mask = torch.tensor([False, False, True, True])
    assert masked_mean(values, mask).item() == 3.0 / 4.0
    assert masked_mean(values[:3], None).item() == 2.0

import math

import pytest
import torch

from evaluation.metrics import depth_metrics


def test_perfect_prediction():
    gt = torch.tensor([2.0, 10.0, 40.0])
    m = depth_metrics(gt.clone(), gt)
    assert m["abs_rel"] == 0 and m["rmse"] == 0 and m["a1"] == 1


def test_hand_computed_values():
    gt = torch.tensor([[10.0, 20.0], [0.0, 100.0]])  # 0 and 100 are outside the valid range
    pred = torch.tensor([[12.0, 15.0], [5.0, 5.0]])
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((0.2 + 0.25) / 2)
    assert m["sq_rel"] == pytest.approx((4 / 10 + 25 / 20) / 2)
    assert m["rmse"] == pytest.approx(math.sqrt((4 + 25) / 2))
    assert m["rmse_log"] == pytest.approx(math.sqrt((math.log(1.2) ** 2 + math.log(0.75) ** 2) / 2))
    assert m["a1"] == pytest.approx(0.5) and m["a2"] == 1.0


def test_prediction_is_clamped_and_empty_gives_nan():
    m = depth_metrics(torch.tensor([1000.0]), torch.tensor([40.0]))
    assert m["abs_rel"] == pytest.approx(1.0)
    assert math.isnan(depth_metrics(torch.ones(3), torch.zeros(3))["abs_rel"])

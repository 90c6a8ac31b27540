import math

import pytest
import torch

from evaluation.metrics import occupancy_metrics


def test_hand_built_grid():
    # 8 points: 2 visible (empty), 6 hidden of which 3 occupied
    gt = torch.tensor([0, 0, 1, 1, 1, 0, 0, 0], dtype=torch.bool)
    vis = torch.tensor([1, 1, 0, 0, 0, 0, 0, 0], dtype=torch.bool)
    pred = torch.tensor([0, 1, 1, 1, 0, 1, 0, 0], dtype=torch.bool)
    m = occupancy_metrics(pred, gt, vis)
    assert m["o_acc"] == pytest.approx(5 / 8)  # wrong: 1, 4, 5
    assert m["o_prec"] == pytest.approx(2 / 4) and m["o_rec"] == pytest.approx(2 / 3)
    assert m["ie_acc"] == pytest.approx(4 / 6)  # hidden 2..7, wrong: 4, 5
    assert m["ie_rec"] == pytest.approx(2 / 3)  # hidden empty 5, 6, 7 -> predicted empty 6, 7
    assert m["ie_prec"] == pytest.approx(2 / 3)  # hidden predicted empty 4, 6, 7 -> empty 6, 7


def test_empty_sets_give_nan_and_visible_must_be_empty():
    m = occupancy_metrics(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool),
                          torch.ones(3, dtype=torch.bool))
    assert m["o_acc"] == 1 and math.isnan(m["ie_acc"]) and math.isnan(m["ie_rec"])
    with pytest.raises(ValueError, match="ground-truth empty"):
        occupancy_metrics(torch.ones(1, dtype=torch.bool), torch.ones(1, dtype=torch.bool),
                          torch.ones(1, dtype=torch.bool))

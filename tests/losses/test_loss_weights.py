import pytest
import torch

from bts.losses import LossWeights, combine_losses


def test_defaults_and_total():
    weights = LossWeights()
    assert (weights.photometric, weights.smoothness) == (1.0, 5e-4)
    ph = torch.tensor(0.2, requires_grad=True)
    sm = torch.tensor(3.0, requires_grad=True)
    out = combine_losses({"photometric": ph, "smoothness": sm}, weights)
    assert out.total.item() == pytest.approx(0.2 + 5e-4 * 3.0)
    assert set(out.terms) == {"photometric", "smoothness", "total"}
    assert not any(t.requires_grad for t in out.terms.values())
    out.total.backward()
    assert ph.grad.item() == pytest.approx(1.0) and sm.grad.item() == pytest.approx(5e-4)


def test_original_weighting_doubles_the_photometric_term():
    ph, sm = torch.tensor(0.2), torch.tensor(3.0)
    original = combine_losses({"photometric": ph, "smoothness": sm}, LossWeights(photometric=2.0, smoothness=1e-3))
    ours = combine_losses({"photometric": ph, "smoothness": sm}, LossWeights())
    assert original.total.item() == pytest.approx(2 * ours.total.item())


def test_unknown_or_missing_terms():
    with pytest.raises(KeyError, match="photometrc"):
        combine_losses({"photometrc": torch.tensor(1.0)}, LossWeights())
    with pytest.raises(ValueError):
        combine_losses({}, LossWeights())
    only = combine_losses({"photometric": torch.tensor(0.5)}, LossWeights())
    assert only.total.item() == 0.5

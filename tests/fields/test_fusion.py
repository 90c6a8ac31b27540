"""Multi-view fusion: order invariance, masking, single-view reduction, view dropout (issue 4)."""

import pytest
import torch

from bts.fields.fusion import ConfidenceFusionHead, TransformerFusionHead, drop_views


def heads():
    torch.manual_seed(0)
    return [ConfidenceFusionHead(d_in=10, hidden_dim=12, feature_dim=4, out_hidden_dim=4).double().eval(),
            TransformerFusionHead(d_in=10, token_dim=8, embed_hidden=8, num_layers=2, num_heads=2, ff_dim=8,
                                  probe_hidden=4).double().eval()]


def inputs(v=4, n=50):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randn(2, v, n, 10, generator=g, dtype=torch.float64)
    invalid = torch.rand(2, v, n, generator=g) < 0.3
    return tokens, invalid


@pytest.mark.parametrize("head", heads(), ids=["confidence", "transformer"])
def test_invariant_to_view_order(head):
    tokens, invalid = inputs()
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        assert torch.allclose(head(tokens, invalid), head(tokens[:, perm], invalid[:, perm]), atol=1e-10)


@pytest.mark.parametrize("head", heads(), ids=["confidence", "transformer"])
def test_masked_views_have_no_influence(head):
    tokens, invalid = inputs()
    invalid[:, 0] = False  # keep one valid view per point
    changed = tokens.clone()
    changed[invalid] = torch.randn_like(changed[invalid]) * 100
    with torch.no_grad():
        assert torch.allclose(head(tokens, invalid), head(changed, invalid), atol=1e-10)


def test_single_valid_view_equals_the_head_on_that_token_alone():
    head = heads()[0]
    tokens, _ = inputs()
    invalid = torch.ones(2, 4, 50, dtype=torch.bool)
    invalid[:, 2] = False
    with torch.no_grad():
        fused = head(tokens, invalid)
        alone = head(tokens[:, 2:3], torch.zeros(2, 1, 50, dtype=torch.bool))
    assert (fused - alone).abs().max() <= 1e-6


def test_all_views_invalid_averages_like_the_original():
    head = heads()[0]
    tokens, _ = inputs()
    with torch.no_grad():
        out = head(tokens, torch.ones(2, 4, 50, dtype=torch.bool))
        e = head.phi1(tokens)
        want = head.phi2(e[..., 1:].mean(dim=1)).squeeze(-1)
    assert torch.allclose(out, want, atol=1e-10)


def test_view_dropout_never_drops_the_input_view():
    invalid = torch.zeros(3, 4, 10000, dtype=torch.bool)
    dropped = drop_views(invalid, 0.5, torch.Generator().manual_seed(0))
    assert not dropped[:, 0].any()
    rate = dropped[:, 1:].float().mean().item()
    assert 0.48 < rate < 0.52
    assert torch.equal(drop_views(invalid, 0.0), invalid)

import math

import pytest
import torch

from bts.fields import EncodedViews, PositionalEncoding, SingleViewField, inverse_depth_code, view_tokens
from bts.geometry import make_rigid, rotation_y


def test_inverse_depth_code_range():
    z = torch.tensor([3.0, 80.0, 1e-6, 1000.0])
    code = inverse_depth_code(z, 3.0, 80.0)
    assert code[0].item() == pytest.approx(1.0) and code[1].item() == pytest.approx(-1.0)
    assert code[2].item() == pytest.approx(2 * (1e3 - 1 / 80) / (1 / 3 - 1 / 80) - 1, rel=1e-5)
    assert -1.1 < code[3].item() < -1.0


def test_positional_encoding_layout():
    pe = PositionalEncoding(3, 6, 1.5)
    x = torch.tensor([[0.3, -0.2, 0.7]])
    out = pe(x)
    assert out.shape == (1, 39) and pe.out_dim == 39
    assert torch.equal(out[0, :3], x[0])
    for k in range(6):
        w = 1.5 * 2**k
        base = 3 + 6 * k
        assert torch.allclose(out[0, base:base + 3], torch.sin(w * x[0]), atol=1e-6)
        assert torch.allclose(out[0, base + 3:base + 6], torch.cos(w * x[0]), atol=1e-5)


def encoded_two_views(b=1, c=4, h=6, w=10):
    feats = torch.randn(b, 2, c, h, w)
    k = torch.tensor([[1.0, 0, 0.1], [0, 2.0, -0.1], [0, 0, 1]]).expand(b, 2, 3, 3)
    c2w = torch.stack([torch.eye(4), make_rigid(rotation_y(20).float(), torch.tensor([0.5, 0.0, 1.0]))])
    return EncodedViews.create(feats, k, c2w.expand(b, 2, 4, 4))


def test_tokens_batched_over_views_equal_one_view_at_a_time():
    enc = encoded_two_views()
    pe = PositionalEncoding(3, 2, 1.5)
    pts = torch.randn(1, 50, 3) * 3 + torch.tensor([0.0, 0.0, 8.0])
    both = view_tokens(pts, enc, pe, 3.0, 80.0)
    for v in range(2):
        one = view_tokens(pts, enc.select([v]), pe, 3.0, 80.0)
        assert torch.allclose(both.tokens[:, v], one.tokens[:, 0])
        assert torch.equal(both.invalid[:, v], one.invalid[:, 0])


def test_feature_of_a_point_on_a_pixel_centre_is_that_pixels_feature():
    feats = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 1, 2, 3, 4)
    enc = EncodedViews.create(feats, torch.eye(3).expand(1, 1, 3, 3), torch.eye(4).expand(1, 1, 4, 4))
    # pixel (row 1, col 2) of a 3x4 map has its centre at u = (2*2+1)/4 - 1, v = (2*1+1)/3 - 1
    u, v = 5 / 4 - 1, 3 / 3 - 1
    z = 10.0
    tok = view_tokens(torch.tensor([[[u * z, v * z, z]]]), enc, PositionalEncoding(3, 1, 1.0), 3.0, 80.0)
    assert torch.allclose(tok.tokens[0, 0, 0, :2], feats[0, 0, :, 1, 2])


def test_invalid_flags():
    field = SingleViewField(feature_dim=4)
    enc = encoded_two_views()
    pts = torch.tensor([[[0.0, 0.0, 10.0], [0.0, 0.0, -5.0], [50.0, 0.0, 1.0], [0.0, 0.0, 5e-4]]])
    out = field(pts, enc)
    assert out.invalid[0].tolist() == [False, True, True, True]
    assert torch.isfinite(out.sigma).all() and (out.sigma >= 0).all()
    assert torch.allclose(out.sigma, torch.nn.functional.softplus(out.raw))


def test_head_initialisation():
    field = SingleViewField()
    w = field.head.lin_in.weight
    assert w.shape == (64, 103) and torch.all(field.head.lin_in.bias == 0)
    assert abs(w.std().item() - math.sqrt(2 / 103)) < 0.02

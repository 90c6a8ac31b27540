import torch

from bts.fields import EncodedViews
from bts.models import build_model

CFG = {"kind": "mvbts", "encoder": {"depth": 18, "pretrained": False},
       "field": {"num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0, "view_dropout": 0.5},
       "fusion": {"type": "confidence", "hidden_dim": 128, "feature_dim": 16, "out_hidden_dim": 16},
       "views": {"num_train_views": 3, "train_candidates": [1, 2, 3], "eval_views": "stereo"}}


def test_encoder_views_in_training_and_evaluation():
    model = build_model(CFG)
    torch.manual_seed(0)
    drawn = [model.encoder_views(8, training=True) for _ in range(50)]
    assert all(v[0] == 0 and len(v) == 3 and set(v[1:]) <= {1, 2, 3} for v in drawn)
    assert len({tuple(v) for v in drawn}) == 3
    assert model.encoder_views(8, training=False) == [0, 2]


def test_one_view_reduces_to_the_single_view_path():
    model = build_model(CFG).eval()
    enc = EncodedViews.create(torch.randn(1, 1, 64, 12, 40), torch.eye(3).expand(1, 1, 3, 3),
                              torch.eye(4).expand(1, 1, 4, 4))
    points = torch.randn(1, 200, 3) + torch.tensor([0.0, 0.0, 6.0])
    with torch.no_grad():
        out = model.density(points, enc)
        tokens = model.field.tokens(points, enc)
        e = model.field.head.phi1(tokens.tokens[:, 0])
        want = model.field.head.phi2(e[..., 1:]).squeeze(-1)
    assert torch.allclose(out.raw, want, atol=1e-6)
    assert torch.equal(out.invalid, tokens.invalid[:, 0])

"""MVBTS and KDBTS heads reproduce the original code's densities (shared/parity, both cases, every head)."""

import pytest
import torch

from bts.checkpoints.original import map_original_keys
from bts.fields import EncodedViews
from bts.models import build_model
from tests.parity_weights import assert_parity, parity_rel, rebuild_state_dict

VIEWS_CFG = {"num_train_views": 3, "train_candidates": [1, 2, 3], "eval_views": "mono"}
FIELD = {"num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0, "view_dropout": 0.5}
FUSION = {"type": "confidence", "hidden_dim": 128, "feature_dim": 16, "out_hidden_dim": 16}


@pytest.mark.parametrize("stem,kind", [("mvbts_train_kitti_360_base", "mvbts"), ("kdbts_train_kitti_360_KD", "kdbts")])
def test_multi_view_heads_match_the_original(stem, kind):
    torch.set_num_threads(2)
    sd, golden = rebuild_state_dict(stem)
    cfg = {"kind": kind, "encoder": {"depth": 50, "pretrained": False}, "field": FIELD, "fusion": FUSION,
           "views": VIEWS_CFG}
    if kind == "kdbts":
        cfg["student"] = {"hidden_dim": 64}
    model = build_model(cfg)
    mapped, _ = map_original_keys(sd)
    model.load_state_dict(mapped, strict=True)
    model.eval()
    group = golden["inputs"]["point_group"]
    points = golden["inputs"]["xyz"]
    for name, case in golden["cases"].items():
        images = case["images_u8"].float() / 127.5 - 1.0
        views = case["ids_encoder"]
        with torch.no_grad():
            features = model.encoder(images[0, views])[None]
            encoded = EncodedViews.create(features, case["projs"][:, views], case["poses_c2w"][:, views])
            tokens = model.field.tokens(points, encoded)
            outputs = {"multiviewhead3": model.field(points, encoded, tokens=tokens).raw}
            if kind == "kdbts":
                outputs["singleviewhead"] = model.density(points, encoded).raw
        assert torch.equal(tokens.invalid[0].T, case["invalid"].reshape(-1, len(views))), name
        for head, raw in outputs.items():
            r = parity_rel(raw, case["sigma_raw"][head])
            assert_parity(r, group, (name, head))
            s = parity_rel(torch.nn.functional.softplus(raw), case["sigma"][head])
            assert_parity(s, group, (name, head, "sigma"))

"""The BTS encoder and density field reproduce the original code's outputs (shared/parity; bounds: assert_parity)."""

import torch

from bts.checkpoints.original import map_original_keys
from bts.encoders import ImageEncoder
from bts.fields import EncodedViews, SingleViewField
from tests.parity_weights import assert_parity, parity_rel, rebuild_state_dict


def test_bts_field_matches_the_original():
    torch.set_num_threads(2)
    sd, golden = rebuild_state_dict("bts_exp_kitti_360")
    mapped, dropped = map_original_keys(sd)
    assert sorted(k.split("renderer.net.")[1] for k in dropped if "decoder" in k) == [
        f"encoder.decoder.decoder.{i}.conv.{p}" for i in (11, 12, 13) for p in ("bias", "weight")]
    model = torch.nn.ModuleDict({"encoder": ImageEncoder(depth=50), "field": SingleViewField()})
    model.load_state_dict(mapped, strict=True)
    model.eval()
    case = golden["cases"]["1view"]
    images = case["images_u8"].float() / 127.5 - 1.0
    rows, cols = golden["inputs"]["pixels_rc"].unbind(-1)
    group = golden["inputs"]["point_group"]
    with torch.no_grad():
        features = model["encoder"](images[:, 0])
        assert parity_rel(features[:, :, rows, cols], case["features_scale0_at_pixels"][:, 0]).max() <= 1e-5
        encoded = EncodedViews.create(features[:, None], case["projs"], case["poses_c2w"])
        out = model["field"](golden["inputs"]["xyz"], encoded)
    for got, want in ((out.sigma, case["sigma"]["mlp_coarse"]), (out.raw, case["sigma_raw"]["mlp_coarse"])):
        r = parity_rel(got, want)
        assert_parity(r, group)
    assert torch.equal(out.invalid.reshape(-1), case["invalid"].reshape(-1))

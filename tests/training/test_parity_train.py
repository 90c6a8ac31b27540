"""Training-step parity (issue 15 item 1): one training step of the original BTS code, replayed.

tests/data/parity_train holds one step of the original code on rule-filled weights and a fixed batch, with every
random draw it made (frame split, flip, patches, depth jitter), its per-ray intermediate values, loss terms and
gradients (made by the original code, never by this project). The step is replayed through
:class:`bts.training.objective.StepDraws` with the original's options selected (rays through ``linspace(-1, 1)``,
photometric weight 2 and smoothness 1e-3), and everything is compared with the bounds that the files' own
documentation measured for a re-implementation (loss terms 1e-5 relative; per-ray values on rays whose points all
have a valid feature; gradients norm-relative).
"""

from pathlib import Path

import pytest
import torch

from bts.checkpoints.original import original_key
from bts.checkpoints.convert import BTS_HEADS, KDBTS_HEADS, MVBTS_HEADS, convert_state_dict, find_state_dict
from bts.losses import LossWeights
from bts.models import build_model
from bts.rendering.renderer import RendererConfig
from bts.training.engine import objective_config
from bts.training.objective import ObjectiveConfig, StepDraws, training_step
from tests.parity_weights import rebuild_state_dict
from tests.training.helpers import debug_config

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "parity_train"
# The original's options: its ray positions and its patch bound (the weights below).
ORIGINAL = dict(patch_size=8, rays_per_element=1024, frame_split="kitti360_mono", num_timesteps=2,
                invalid_threshold=0.9, ssim_weight=0.85, exclusive_patch_bound=True, ray_positions="align_corners")
RENDERER = RendererConfig(near=3.0, far=80.0, num_samples=64, lindisp=True, hard_alpha_cap=True)


@pytest.fixture(autouse=True)
def _one_thread():
    """The files were made with one thread; with one thread the reductions run in the same order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


STEMS = {"bts": "bts_exp_kitti_360", "mvbts": "mvbts_train_kitti_360_base", "kdbts": "kdbts_train_kitti_360_KD"}
HEADS = {"bts": BTS_HEADS, "mvbts": MVBTS_HEADS, "kdbts": KDBTS_HEADS}
# The original's loss weights: photometric 1 + 1 (coarse and a copied fine pass), smoothness 1e-3, and for KDBTS
# the distillation's lambda 0.01.
WEIGHTS = {"bts": LossWeights(photometric=2.0, smoothness=1e-3),
           "mvbts": LossWeights(photometric=2.0, smoothness=1e-3),
           "kdbts": LossWeights(photometric=2.0, smoothness=1e-3, distillation=1e-2)}


def replay(kind: str, *, options=None):
    """The model with the file's weights, the batch, the original's draws and the project's step on them."""
    stem = STEMS[kind]
    golden = torch.load(GOLDEN / f"{stem}_train.pt", weights_only=True)
    state, _ = rebuild_state_dict(stem)  # the same rule, seed and keys as the density file of this stem
    conversion = convert_state_dict(find_state_dict({"model": state, "optimizer": {}}), kind,
                                    "both" if kind == "kdbts" else None)
    model = build_model(conversion.config)
    model.load_state_dict(conversion.state)
    if kind == "kdbts":
        model.configure("joint", student_photometric=False)  # the original trains all; the teacher renders
    model.train()
    inputs, sampled, outputs = golden["inputs"], golden["sampled"], golden["outputs"]
    batch = {"images": (inputs["imgs_u8"].float() / 127.5 - 1.0)[None], "intrinsics": inputs["projs"][None],
             "cam_to_world": outputs["poses_rebased"][None]}
    frames, patches = sampled["frames"], sampled["patches"]
    dropped = None
    if "dropout" in sampled:  # keep [N, V - 1] of the views 1.. -> dropped [1, V, N], view 0 never
        keep = sampled["dropout"]["keep"]
        dropped = torch.cat([torch.zeros(1, keep.shape[0], dtype=torch.bool), ~keep.T])[None]
    draws = StepDraws(loss_views=list(frames["ids_loss"]), colour_views=list(frames["ids_render"]),
                      flip=bool(sampled["flip"]["do_flip"]), encoder_views=list(frames["ids_encoder"]),
                      patches=[(patches["slot"][None], patches["y"][None], patches["x"][None])],
                      distances=sampled["depth"]["t"][None], view_dropout=dropped)
    config = ObjectiveConfig(**{**ORIGINAL, "weights": WEIGHTS[kind], **(options or {})})
    out = training_step(model, batch, config, RENDERER, draws=draws)
    return model, out, golden


@pytest.fixture(scope="module", params=["bts", "mvbts", "kdbts"])
def step(request):
    kind = request.param
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, out, golden = replay(kind)
        out.encoded.features.retain_grad()  # the scale-0 feature map the field samples
        out.loss.total.backward()
    finally:
        torch.set_num_threads(before)
    grads = {original_key(name, HEADS[kind]): p.grad for name, p in model.named_parameters() if p.requires_grad}
    return kind, model, out, golden, grads


def rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).norm() / want.double().norm())


def test_loss_terms_equal_the_original(step):
    kind, _, out, golden, _ = step
    logged = golden["outputs"]["loss"]["loss_dict"]
    terms = out.loss.terms
    # The original adds its photometric term twice (a copied "fine" pass); the project weights it 2.
    assert float(terms["photometric"]) == pytest.approx(logged["loss_rgb_coarse"], rel=1e-5)
    assert float(terms["smoothness"]) == pytest.approx(logged["loss_eas"], rel=1e-5)
    if kind == "kdbts":
        assert float(terms["distillation"]) == pytest.approx(logged["loss_pseudo_ground_truth"], rel=1e-5)
    else:
        assert "distillation" not in terms
    assert float(terms["total"]) == pytest.approx(float(golden["outputs"]["loss"]["total"]), rel=1e-5)
    assert float(out.ray_mask.float().mean()) == pytest.approx(logged["loss_invalid_ratio"], abs=1e-9)


def test_rays_samples_and_render_equal_the_original(step):
    _, _, out, golden, _ = step
    o = golden["outputs"]
    r = out.render.weights.shape[1]
    rays = o["rays"]
    torch.testing.assert_close(out.rays.origins[0], rays[:, :3], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.rays.directions[0], rays[:, 3:6], atol=1e-6, rtol=0)
    torch.testing.assert_close(out.render.points[0], o["points"], atol=1e-4, rtol=1e-5)
    target = out.target[0].movedim(1, -1).reshape(r, 3)
    assert torch.equal(target, o["rgb_gt"])  # the integer pixel, in both ray conventions
    wc = o["well_conditioned"]
    sigma_rel = (out.render.sigma[0] - o["sigma"]).abs() / o["sigma"].abs().clamp_min(1.0)
    assert sigma_rel[wc].max() <= 5e-4
    # A sample has no feature when it is outside every encoded view (BTS: the one).
    assert torch.equal(out.render.invalid[0], o["invalid_features"].all(-1))
    rays_wc = wc.all(-1)
    assert rays_wc.sum() > 100  # enough rays to compare on
    assert (out.render.weights[0] - o["weights"]).abs()[rays_wc].max() <= 1e-4
    assert ((out.render.distance[0] - o["depth"]).abs() / o["depth"])[rays_wc].max() <= 1e-4
    assert ((out.render.distance[0] - o["depth"]).abs() / o["depth"]).max() <= 1e-2
    rendered = out.rendered[0].movedim(2, -1).reshape(-1, r, 3).transpose(0, 1)  # [R, Vc, 3]
    assert (rendered - o["rgb"]).abs().max() <= 2e-3
    assert torch.equal(out.ray_mask[0].reshape(r), o["photometric"]["invalid"])


def test_gradients_equal_the_original(step):
    _, _, out, golden, grads = step
    g, features = golden["outputs"]["grads"], golden["outputs"]["features"]
    # Features and their gradient at the stored pixels: everything up to the encoder's output (measured 2e-6 and
    # 5e-5 here; the files' bounds 1e-5 and 1e-3).
    rows, cols = features["pixels_rc"].unbind(-1)
    value = out.encoded.features.detach()[0][:, :, rows, cols]
    assert (value - features["scale0_at_pixels"]).abs().max() <= 1e-5 * features["scale0_at_pixels"].abs().max()
    assert rel(out.encoded.features.grad[0][:, :, rows, cols], features["grad_at_pixels"]) <= 1e-3
    for name, want in g["full"].items():
        # The ResNet's first layer: the backward through 50 layers of train-mode BatchNorm amplifies rounding (the
        # files measured 9e-3 for a change of thread count and recommend 2e-2; this implementation's op order
        # measured 1.8e-2 for BTS here, with its feature gradient at 5e-5). A logic error is off by O(1).
        bound = 5e-2 if ".encoder.encoder.encoder." in name else 1e-2
        assert rel(grads[name], want) <= bound, name
    without = {name for name, grad in grads.items() if grad is None}
    assert without == {n for n in g["none"] if n in grads}  # unused decoder outputs get no gradient, as there
    norms = dict(zip(g["names"], g["sumsq"].sqrt().tolist()))
    for name, grad in grads.items():
        if grad is not None and norms[name] > 0:
            assert float(grad.double().norm()) == pytest.approx(norms[name], rel=1e-2), name


def test_batch_norm_statistics_after_the_step_equal_the_original(step):
    kind, model, _, golden, _ = step
    buffers = {original_key(name, HEADS[kind]): value for name, value in model.state_dict().items()
               if name.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    after = golden["outputs"]["bn_after_step"]
    assert after and set(after) <= set(buffers)
    for name, want in after.items():
        assert (buffers[name].double() - want.double()).abs().max() <= 1e-4, name


def test_the_projects_ray_positions_change_the_step_measurably():
    """The project's default puts rays through pixel centres, where the colours and targets are read; the
    original's rays pass through linspace(-1, 1) (docs/method.md §11-2). On this step that moves the ray
    directions by about 2e-3 and the loss terms by 2e-3 (photometric) and 9e-3 (smoothness) relative: far
    beyond the replay's 1e-5, so the parity above rests on the original's option being selected."""
    _, out, golden = replay("bts", options={"ray_positions": "centres"})
    logged = golden["outputs"]["loss"]["loss_dict"]
    assert (out.rays.directions[0] - golden["outputs"]["rays"][:, 3:6]).abs().max() > 1e-3
    assert abs(float(out.loss.terms["photometric"]) / logged["loss_rgb_coarse"] - 1) > 1e-3
    assert abs(float(out.loss.terms["smoothness"]) / logged["loss_eas"] - 1) > 1e-3


ORIGINAL_OVERRIDES = ["kd=joint", "loss.ray_positions=align_corners", "loss.exclusive_patch_bound=true",
                      "loss.weights.photometric=2", "loss.weights.smoothness=1e-3", "loss.weights.distillation=1e-2"]


def test_the_documented_original_options_give_the_replayed_objective(tmp_path):
    """docs/original_checkpoints.md ("Training the original way") lists these overrides; they must compose into the
    objective that the replay above uses."""
    cfg = debug_config(tmp_path, "kdbts", overrides=ORIGINAL_OVERRIDES)
    objective = objective_config(cfg)
    for key in ("frame_split", "patch_size", "invalid_threshold", "ssim_weight", "exclusive_patch_bound",
                "ray_positions"):
        assert getattr(objective, key) == ORIGINAL[key], key
    assert objective.weights == WEIGHTS["kdbts"]
    assert cfg["kd"]["recipe"] == "joint" and cfg["kd"]["student_photometric"] is False
    with pytest.raises(ValueError, match="loss.ray_positions"):
        objective_config(debug_config(tmp_path, "bts", overrides=["loss.ray_positions=corners"]))

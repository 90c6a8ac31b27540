"""Importing the released original BTS / MVBTS / KDBTS checkpoints (issue 8): strict key mapping, densities computed
by hand from the original tensors, parity with the original code, the CLI and ``load_model`` on original files.

The original-layout state dicts are built from the key listings the original code wrote (tests/data/parity), with
random values, independently of the importer's mapping.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bts.checkpoints.format import CheckpointError, load_checkpoint
from bts.checkpoints.original import OriginalCheckpointError, map_original_keys, original_key
from bts.checkpoints.convert import (
    BTS_HEADS,
    KDBTS_HEADS,
    convert_for_inference,
    convert_state_dict,
    find_state_dict,
    original_state_dict,
)
from scripts.convert_original import main
from bts.fields import EncodedViews
from bts.inference import load_model
from bts.models import build_model
from tests.checkpoints.original_layout import STEMS, random_original
from tests.parity_weights import assert_parity, parity_rel, rebuild_state_dict

ROOT = Path(__file__).resolve().parents[2]
P = "renderer.net."
DROPPED = {P + "encoder.encoder.encoder.fc.weight", P + "encoder.encoder.encoder.fc.bias",
           P + "code_xyz._freqs", P + "code_xyz._phases", "renderer.renderer.iter_idx", "renderer.renderer.last_sched",
           *(f"{P}encoder.decoder.decoder.{i}.conv.{p}" for i in (11, 12, 13) for p in ("weight", "bias"))}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and spare threads stall on a busy machine; the parity test sets its
    own count. The previous count is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and (a.data_ptr() == b.data_ptr() or torch.equal(a, b))


@pytest.mark.parametrize("kind,part,model_kind,left_out", [
    ("bts", None, "bts", 0), ("mvbts", None, "mvbts", 0), ("kdbts", "student", "bts", 8),
    ("kdbts", "teacher", "mvbts", 4), ("kdbts", "both", "kdbts", 0)])
def test_documented_layout_imports_without_leftovers(kind, part, model_kind, left_out):
    sd = random_original(kind)
    conv = convert_state_dict(sd, None, part)
    assert conv.original_kind == kind and conv.model_kind == model_kind
    assert set(conv.dropped) == DROPPED
    assert len(conv.left_out) == left_out
    assert set(conv.mapped) | set(conv.dropped) | set(conv.left_out) == set(sd)
    assert not set(conv.mapped) & (set(conv.dropped) | set(conv.left_out))
    model = build_model(conv.config)
    model.load_state_dict(conv.state, strict=True, assign=True)
    assert conv.config["encoder"]["pretrained"] is False and conv.config["encoder"]["depth"] == 50
    for theirs, ours in conv.mapped.items():
        assert same(conv.state[ours], sd[theirs]), theirs
    # The decoder's flat list, read from the spec: (stage 4, first) is 0, (stage 0, second) is 9, scale-0 output 10.
    dec = model.encoder.decoder
    assert torch.equal(dec.first[0].conv.weight, sd[P + "encoder.decoder.decoder.0.conv.conv.weight"])
    assert torch.equal(dec.second[4].conv.bias, sd[P + "encoder.decoder.decoder.9.conv.conv.bias"])
    assert torch.equal(dec.output.conv.weight, sd[P + "encoder.decoder.decoder.10.conv.weight"])
    assert torch.equal(model.encoder.backbone.net.layer4[2].bn3.running_var,
                       sd[P + "encoder.encoder.encoder.layer4.2.bn3.running_var"])


def test_forward_and_inverse_mappings_agree():
    sd = random_original("kdbts")
    mapped, dropped = map_original_keys(sd)
    assert set(dropped) == DROPPED
    assert {original_key(k, KDBTS_HEADS) for k in mapped} == set(sd) - DROPPED
    assert original_key("field.head.lin_in.weight", BTS_HEADS) == P + "mlp_coarse.lin_in.weight"


@pytest.mark.parametrize("edit,names", [
    ("rename", [P + "heads.singleviewhead.lin_in.weight", P + "heads.singleviewhead.lin_in.weights"]),
    ("reshape", [P + "encoder.decoder.decoder.3.conv.conv.weight", "(128, 640, 3, 3)"]),
    ("extra", [P + "heads.extrahead.lin_in.weight"]),
    ("extra_decoder", [P + "encoder.decoder.decoder.14.conv.weight"]),
    ("missing", [P + "encoder.encoder.encoder.layer2.1.bn2.running_mean"]),
    ("constant", [P + "code_xyz._freqs"]),
])
def test_layout_errors_name_the_key(edit, names):
    sd = random_original("kdbts")
    if edit == "rename":
        sd[names[1]] = sd.pop(names[0])
    elif edit == "reshape":
        sd[names[0]] = sd[names[0]].reshape(128, 320, 6, 3)
    elif edit in ("extra", "extra_decoder"):
        sd[names[0]] = torch.zeros(3, 3)
    elif edit == "missing":
        del sd[names[0]]
    else:
        sd[names[0]] = sd[names[0]] * 2
    with pytest.raises(OriginalCheckpointError) as e:
        convert_state_dict(sd, source="released.pt")
    for name in names:
        assert name in str(e.value)
    assert "released.pt" in str(e.value)


def test_kind_and_part_are_checked():
    with pytest.raises(OriginalCheckpointError, match="holds an original KDBTS checkpoint, not MVBTS.*--teacher"):
        convert_state_dict(random_original("kdbts"), "mvbts")
    with pytest.raises(OriginalCheckpointError, match="only KDBTS has a student and a teacher"):
        convert_state_dict(random_original("bts"), None, "teacher")
    both = random_original("bts") | {k: v for k, v in random_original("mvbts").items() if "multiviewhead3" in k}
    with pytest.raises(OriginalCheckpointError, match="unexpected keys .*mlp_coarse.lin_in.weight"):
        convert_state_dict(both)
    with pytest.raises(OriginalCheckpointError, match="no density head found"):
        convert_state_dict({k: v for k, v in random_original("bts").items() if "mlp_coarse" not in k})


def test_wrapped_bare_and_foreign_files():
    sd = random_original("bts")
    assert find_state_dict({"model": sd, "optimizer": {}, "trainer": {"iteration": 3}}).keys() == sd.keys()
    assert find_state_dict(sd).keys() == sd.keys()
    for foreign, message in (({"weights": sd}, "found a dict with keys \\['weights'\\]"),
                             ({"format_version": 1, "model_kind": "bts", "config": {}, "model": {}},
                              "already a checkpoint of this project"),
                             ([1, 2], "found list")):
        assert find_state_dict(foreign) is None
        with pytest.raises(OriginalCheckpointError, match=f"x.pt is not an original BTS/MVBTS/KDBTS.*{message}"):
            original_state_dict(foreign, "x.pt")


# --- densities by hand from the original tensors ----------------------------------------------------------------

def _bilinear_border(features, u, v):
    """``grid_sample`` (bilinear, border, align_corners=False) of ``[C, H, W]`` at one point, written out."""
    _, h, w = features.shape
    x = min(max(((u + 1) * w - 1) / 2, 0.0), w - 1.0)
    y = min(max(((v + 1) * h - 1) / 2, 0.0), h - 1.0)
    x0, y0 = min(int(math.floor(x)), w - 2), min(int(math.floor(y)), h - 2)
    ax, ay = x - x0, y - y0
    return ((1 - ay) * ((1 - ax) * features[:, y0, x0] + ax * features[:, y0, x0 + 1])
            + ay * ((1 - ax) * features[:, y0 + 1, x0] + ax * features[:, y0 + 1, x0 + 1]))


def _token(features, K, cam_to_world, point):
    """The original's 103-vector of one point in one view, and whether it is outside the view."""
    p = cam_to_world[:3, :3].T @ (point - cam_to_world[:3, 3])
    q = K @ p
    zc = max(float(p[2]), 1e-3)
    u, v = float(q[0]) / zc, float(q[1]) / zc
    d = 2 * (1 / zc - 1 / 80) / (1 / 3 - 1 / 80) - 1
    code = [u, v, d]
    for k in range(6):
        w = 1.5 * 2**k
        code += [math.sin(w * u), math.sin(w * v), math.sin(w * d), math.cos(w * u), math.cos(w * v), math.cos(w * d)]
    invalid = p[2] <= 1e-3 or abs(u) > 1 or abs(v) > 1
    return torch.cat([_bilinear_border(features, u, v), torch.tensor(code, dtype=torch.float64)]), bool(invalid)


def _mlp(sd, prefix, x):
    hidden = (sd[prefix + "lin_in.weight"].double() @ x + sd[prefix + "lin_in.bias"].double()).relu()
    return sd[prefix + "lin_out.weight"].double() @ hidden + sd[prefix + "lin_out.bias"].double()


def _hand_density(sd, kind, features, K, cam_to_world, point):
    """The original's density of one point and whether it is outside every view, from the original's tensors."""
    tokens = [_token(features[i], K[i], cam_to_world[i], point) for i in range(features.shape[0])]
    invalid = all(inv for _, inv in tokens)
    if kind in ("bts", "kdbts"):
        head = P + ("mlp_coarse." if kind == "bts" else "heads.singleviewhead.")
        return F.softplus(_mlp(sd, head, tokens[0][0]))[0], invalid
    e = torch.stack([_mlp(sd, P + "heads.multiviewhead3.mlp.", t) for t, _ in tokens])
    logits = torch.where(torch.tensor([inv for _, inv in tokens]), torch.tensor(-1e9, dtype=e.dtype), e[:, 0])
    fused = (logits.softmax(0)[:, None] * e[:, 1:]).sum(0)
    return F.softplus(_mlp(sd, P + "heads.multiviewhead3.mlp2.", fused))[0], invalid


@pytest.mark.parametrize("kind", ["bts", "mvbts", "kdbts"])
def test_imported_density_equals_the_original_computed_by_hand(kind):
    torch.manual_seed(0)
    sd = random_original(kind)
    conv = convert_state_dict(sd)
    model = build_model(conv.config)
    model.load_state_dict(conv.state, assign=True)
    model.eval()
    images = torch.rand(1, 2, 3, 64, 64) * 2 - 1
    K = torch.tensor([[0.78, 0.0, -0.03], [0.0, 2.9, 0.27], [0.0, 0.0, 1.0]]).expand(1, 2, 3, 3)
    cam_to_world = torch.eye(4).repeat(1, 2, 1, 1)
    cam_to_world[0, 1, :3, 3] = torch.tensor([0.6, 0.0, 0.3])
    # In front of the camera, closer than 3 m, beyond the side of both views (border-clamped feature), and in view 0
    # only (the multi-view head must ignore view 1 there).
    points = torch.tensor([[[0.5, 0.2, 8.0], [-3.0, 1.0, 20.0], [0.1, -0.3, 2.0], [12.0, 0.5, 6.0],
                            [-0.4, 0.8, 45.0], [0.0, 0.0, 1.5], [-5.5, 0.3, 5.0]]])
    views = [0, 1] if conv.model_kind == "mvbts" else [0]
    with torch.no_grad():
        encoded = model.encode(images, K, cam_to_world, views)
        out = model.density(points, encoded)
        features = model.encoder(images[0, views])  # read from our encoder; all else by hand
    hand = [_hand_density(sd, kind, features.double(), K[0, views].double(), cam_to_world[0, views].double(),
                          point.double()) for point in points[0]]
    want = torch.stack([sigma for sigma, _ in hand])
    assert want.std() > 0.02  # the points give different densities, so a swap of inputs would show
    torch.testing.assert_close(out.sigma[0].double(), want, rtol=1e-5, atol=1e-5)
    assert out.invalid[0].tolist() == [inv for _, inv in hand] == [False, False, False, True, False, False, False]


# --- parity with the original code (shared/parity outputs) --------------------------------------------------------

def test_imported_models_reproduce_the_original_code():
    """BTS, and the KDBTS student and teacher (whose head is the MVBTS file's), against the original's outputs."""
    torch.set_num_threads(2)  # the reference outputs were made with 2 threads
    goldens, models = {}, {}
    for kind, part in (("bts", None), ("kdbts", "student"), ("kdbts", "teacher")):
        sd, goldens[kind] = rebuild_state_dict(STEMS[kind])
        conv = convert_state_dict(find_state_dict({"model": sd, "optimizer": {}}), kind, part)
        models[part or kind] = build_model(conv.config).eval()
        models[part or kind].load_state_dict(conv.state, assign=True)
    sd, goldens["mvbts"] = rebuild_state_dict(STEMS["mvbts"])
    mvbts = convert_state_dict(sd).state
    teacher = models["teacher"].state_dict()
    # The files share their encoder weights and the multi-view head, so one encoding serves every model.
    assert all(torch.equal(v, teacher[k]) for k, v in mvbts.items())
    assert all(torch.equal(v, teacher[k]) for k, v in models["bts"].encoder.state_dict(prefix="encoder.").items())
    case = goldens["mvbts"]["cases"]["3view"]
    with torch.no_grad():
        features = models["bts"].encoder(case["images_u8"][0].float() / 127.5 - 1.0)[None]
    rows, cols = goldens["bts"]["inputs"]["pixels_rc"].unbind(-1)
    assert parity_rel(features[..., rows, cols], case["features_scale0_at_pixels"]).max() <= 1e-5
    checks = [("bts", "bts", "1view", "mlp_coarse"), ("kdbts", "student", "3view", "singleviewhead"),
              ("kdbts", "teacher", "1view", "multiviewhead3"), ("kdbts", "teacher", "3view", "multiviewhead3"),
              ("mvbts", "teacher", "1view", "multiviewhead3"), ("mvbts", "teacher", "3view", "multiviewhead3")]
    for kind, model, name, head in checks:
        golden = goldens[kind]
        c = golden["cases"][name]
        assert torch.equal(c["images_u8"], case["images_u8"][:, : len(c["ids_encoder"])])
        group, points = golden["inputs"]["point_group"], golden["inputs"]["xyz"]
        views = c["ids_encoder"] if models[model].kind == "mvbts" else [0]
        encoded = EncodedViews.create(features[:, views], c["projs"][:, views], c["poses_c2w"][:, views])
        with torch.no_grad():
            out = models[model].density(points, encoded)
        for got, want in ((out.sigma, c["sigma"][head]), (out.raw, c["sigma_raw"][head])):
            r = parity_rel(got, want)
            assert_parity(r, group, (kind, model, name, head))
        invalid = c["invalid"].reshape(-1, 1) if kind == "bts" else c["invalid"].reshape(-1, len(c["ids_encoder"]))
        assert torch.equal(out.invalid[0], invalid[:, : len(views)].all(dim=1)), (kind, model, name)


# --- files: the CLI and bts.inference.load_model ------------------------------------------------------------------

@pytest.fixture(scope="module")
def kdbts_file(tmp_path_factory):
    """A released-style KDBTS training checkpoint: ignite's dict with the state dict under ``model`` (~140 MB,
    removed after the module's tests, like the other large files here)."""
    path = tmp_path_factory.mktemp("original") / "training-checkpoint.pt"
    torch.save({"model": random_original("kdbts"), "optimizer": {"state": {}, "param_groups": []},
                "lr_scheduler": {"step_size": 120000}, "trainer": {"iteration": 250000, "epoch": 20}}, path)
    yield path
    path.unlink(missing_ok=True)


def test_cli_writes_a_checkpoint_that_load_model_reads(kdbts_file, tmp_path):
    out = tmp_path / "ours.pt"
    run = subprocess.run([sys.executable, "-m", "scripts.convert_original", "--checkpoint", str(kdbts_file),
                          "--kind", "kdbts", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "mapped 344 keys -> model_kind 'bts'" in run.stdout and "dropped 12 keys" in run.stdout
    assert "heads.multiviewhead3.* (8)" in run.stdout
    assert load_checkpoint(out)["model_kind"] == "bts"
    loaded = load_model(out)
    assert loaded.kind == "bts" and loaded.source_format == "project"
    sd = random_original("kdbts")
    assert torch.equal(loaded.model.field.head.lin_out.weight, sd[P + "heads.singleviewhead.lin_out.weight"])

    main(["--checkpoint", str(kdbts_file), "--teacher", "--out", str(tmp_path / "teacher.pt")])
    teacher = load_model(tmp_path / "teacher.pt", views="stereo")
    assert teacher.kind == "mvbts" and teacher.views == "stereo"
    assert torch.equal(teacher.model.field.head.phi2.lin_in.weight, sd[P + "heads.multiviewhead3.mlp2.lin_in.weight"])
    out.unlink()
    (tmp_path / "teacher.pt").unlink()


def test_cli_refuses_other_files_with_a_clear_error(tmp_path, capsys):
    torch.save({"state_dict": {"a": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(SystemExit, match="other.pt is not an original BTS/MVBTS/KDBTS checkpoint"):
        main(["--checkpoint", str(tmp_path / "other.pt"), "--out", str(tmp_path / "o.pt")])
    with pytest.raises(SystemExit, match="none.pt does not exist"):
        main(["--checkpoint", str(tmp_path / "none.pt")])
    assert not (tmp_path / "o.pt").exists()


def test_load_model_reads_original_files_directly(kdbts_file, tmp_path):
    student = load_model(kdbts_file)
    assert student.kind == "bts" and student.source_format == "original"
    assert student.model_config["imported"]["heads"] == ["heads.singleviewhead"]
    whole = load_model(kdbts_file, kinds=("kdbts",))
    assert whole.kind == "kdbts"
    with pytest.raises(CheckpointError, match="original KDBTS checkpoint.*--teacher"):
        load_model(kdbts_file, kinds=("mvbts",))
    bare = tmp_path / "best_model.pt"
    torch.save(random_original("bts"), bare)  # a "best model" file: the state dict itself
    loaded = load_model(bare, kinds=("bts",))
    assert loaded.kind == "bts" and loaded.source_format == "original"
    with pytest.raises(CheckpointError, match="original BTS checkpoint, a 'bts' model; expected one of \\['mvbts'\\]"):
        load_model(bare, kinds=("mvbts",))
    bare.unlink()
    torch.save({"model": {"x": torch.zeros(1)}}, tmp_path / "foreign.pt")
    assert convert_for_inference(tmp_path / "foreign.pt", ("bts",)) is None
    with pytest.raises(CheckpointError, match="not a checkpoint of this project.*scripts.convert_original"):
        load_model(tmp_path / "foreign.pt")

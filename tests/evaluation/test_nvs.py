"""Novel-view evaluation (docs/method.md §8.3): PSNR, SSIM (against skimage), LPIPS's degraded path, the colour path and
evaluation/nvs.py end to end."""

import csv
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from tests.evaluation.eval_fixtures import ROOT, save_untrained

from evaluation.selection import frame_selection, stereo_partner
from evaluation.metrics import psnr, ssim
from evaluation.nvs import crop_border, image_metrics, render_novel_view
from evaluation.perceptual import ALEXNET_FILE, build_lpips


@pytest.fixture(scope="module")
def bts_checkpoint(tmp_path_factory):
    return save_untrained(tmp_path_factory.mktemp("nvs_ckpt") / "bts.pt", "bts")


@pytest.fixture()
def no_hub_weights(tmp_path, monkeypatch):
    """An empty torch hub folder, so that the AlexNet weights are missing whatever this machine has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints" / ALEXNET_FILE


def test_identical_images():
    img = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(0))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert psnr(img, img) == math.inf  # MSE 0: documented as inf, like skimage


def test_psnr_of_a_known_error():
    target = torch.zeros(3, 8, 8)
    assert psnr(target + 0.1, target) == pytest.approx(20.0)  # MSE 0.01 -> 10 log10(1 / 0.01)
    noise = torch.tensor([0.1, -0.1]).repeat(3 * 32)[: 3 * 64].reshape(3, 8, 8)
    assert psnr(0.5 + noise, torch.full((3, 8, 8), 0.5)) == pytest.approx(20.0)


def test_ssim_of_constant_images_by_hand():
    a, b = 0.2, 0.6
    c1 = 0.01**2
    # No variance: S = (2ab + C1) C2 / ((a^2 + b^2 + C1) C2) everywhere, C2 = 0.03^2 cancels.
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(torch.full((3, 9, 9), a), torch.full((3, 9, 9), b)) == pytest.approx(expected)


def test_ssim_and_psnr_match_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 24, 40, generator=g)
    target[:, :, :20] = 0.3 + 0.1 * target[:, :, :20]  # flat and textured regions
    pred = (target + 0.08 * torch.randn(3, 24, 40, generator=g)).clamp(0, 1)
    reference = metrics.structural_similarity(pred.permute(1, 2, 0).double().numpy(),
                                              target.permute(1, 2, 0).double().numpy(), channel_axis=2,
                                              data_range=1.0)
    assert ssim(pred, target) == pytest.approx(reference, abs=1e-10)
    reference_psnr = metrics.peak_signal_noise_ratio(target.double().numpy(), pred.double().numpy(), data_range=1.0)
    assert psnr(pred, target) == pytest.approx(reference_psnr, abs=1e-10)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))
    with pytest.raises(ValueError, match="win_size must be odd and at most the image size"):
        ssim(torch.zeros(3, 6, 20), torch.zeros(3, 6, 20))


def test_crop_border_removes_five_percent_per_side():
    image = torch.arange(100 * 60).reshape(1, 100, 60).float()
    cropped = crop_border(image, 0.05)
    assert cropped.shape == (1, 90, 54) and cropped[0, 0, 0] == image[0, 5, 3]


def test_lpips_without_backbone_weights_degrades_with_the_reason(no_hub_weights):
    lpips = build_lpips()
    assert lpips.model is None
    assert "LPIPS skipped" in lpips.reason and str(no_hub_weights) in lpips.reason
    img = torch.rand(3, 40, 60)
    result = image_metrics(img, img.flip(-1), lpips)
    assert result["lpips"] is None and math.isfinite(result["psnr"])
    assert build_lpips(enabled=False).reason == "LPIPS disabled (lpips=false)"


def test_lpips_with_a_backbone_file(tmp_path):
    pytest.importorskip("lpips")
    import torchvision

    torch.manual_seed(0)
    path = tmp_path / ALEXNET_FILE
    torch.save(torchvision.models.alexnet().state_dict(), path)  # random weights in torchvision's layout
    lpips = build_lpips(path)
    assert lpips.model is not None and lpips.reason is None
    first = next(lpips.model.net.parameters())
    assert torch.equal(first, torch.load(path, weights_only=True)["features.0.weight"])
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 48, 64, generator=g), torch.rand(3, 48, 64, generator=g)
    assert lpips(a, a) == pytest.approx(0.0, abs=1e-6) and lpips(a, b) > 0
    with pytest.raises(FileNotFoundError, match="lpips_alexnet_weights=.*nope.pth: no such file"):
        build_lpips(tmp_path / "nope.pth")
    torch.save({"features.0.weight": torch.zeros(2)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not hold torchvision AlexNet weights"):
        build_lpips(tmp_path / "bad.pth")


def test_target_is_the_stereo_partner_at_t():
    # KITTI-360 item order with two timesteps: main t, t+1, other t, t+1 -> view 2 (side l and side r alike).
    assert stereo_partner(torch.tensor([0, 0, 1, 1]), torch.tensor([7, 8, 7, 8])) == 2
    assert stereo_partner(torch.tensor([1, 1, 0, 0, 3, 3, 2, 2]), torch.tensor([7, 8, 7, 8, 17, 18, 17, 18])) == 2
    assert stereo_partner(torch.tensor([2, 3]), torch.tensor([4, 4])) == 1  # KITTI Raw left + right
    with pytest.raises(ValueError, match="no stereo partner"):
        stereo_partner(torch.tensor([0, 0]), torch.tensor([7, 8]))
    assert frame_selection((0,), need_stereo=True) == {"num_timesteps": 1, "stereo": True, "fisheye": False}
    assert frame_selection((0, 1, 2, 3), need_stereo=False) == {"num_timesteps": 2, "stereo": True, "fisheye": False}
    assert frame_selection(tuple(range(8)), need_stereo=False)["fisheye"] is True


def test_rendering_the_input_view_with_its_own_colours_gives_the_input_image(synthetic_root, bts_checkpoint):
    # Every sample of a pixel's ray projects back onto that pixel's centre, and the weights sum to 1 (last sample
    # opaque), so whatever the density, the rendered image is the input image.
    from bts.inference import load_model
    from datasets.kitti_360 import FrameSelection, Kitti360Config, Kitti360Dataset

    cfg = Kitti360Config(image_size=(64, 240), frames=FrameSelection(num_timesteps=1, stereo=True, fisheye=False))
    item = Kitti360Dataset(synthetic_root, synthetic_root / "splits" / "test_files.txt", cfg)[0]
    loaded = load_model(bts_checkpoint)
    renderer = loaded.renderer_config(num_samples=8)
    same = render_novel_view(loaded, item, 0, renderer)
    assert same.shape == (3, 64, 240)
    assert torch.allclose(same, (item["images"][0] + 1) / 2, atol=1e-4)
    novel = render_novel_view(loaded, item, 1, renderer)
    assert not torch.allclose(novel, same, atol=1e-2)


def test_script_writes_results_with_lpips_null(synthetic_root, bts_checkpoint, tmp_path):
    out = tmp_path / "out"
    args = [f"checkpoint={bts_checkpoint}", "data=synthetic", f"data.root={synthetic_root}", "data.num_workers=0",
            "data.image_size=[64,240]", "num_samples=8", "max_frames=2", f"output_dir={out}"]
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}
    proc = subprocess.run([sys.executable, "evaluation/nvs.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "novel views | protocol=stereo_nvs | model=bts" in proc.stdout and "LPIPS skipped" in proc.stdout
    summary = json.loads((out / "results.json").read_text())
    assert summary["frames"] == 2 and summary["metrics"]["lpips"] is None
    assert "alexnet" in summary["lpips_reason"].lower()
    assert 0 < summary["metrics"]["ssim"] < 1 and 0 < summary["metrics"]["psnr"] < 100
    with open(out / "per_frame.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["target_view"] == "1" and r["lpips"] == "" for r in rows)


def test_kitti_raw_stereo_partner_is_the_right_camera(bts_checkpoint, tmp_path):
    import numpy as np
    from tests.evaluation.eval_fixtures import write_kitti_raw_tree
    from hydra import compose, initialize_config_dir

    from evaluation.nvs import run

    tree = write_kitti_raw_tree(tmp_path / "raw", {3: np.zeros((0, 3))})
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="eval_nvs", overrides=[
            f"checkpoint={bts_checkpoint}", "data=kitti_raw", f"data.root={tree.root}", "data.num_workers=0",
            f"data.split_file={tree.root / 'split.txt'}", "image_size=[40,120]", "num_samples=8", "lpips=false"])
    summary = run(cfg, tmp_path / "out", progress=False)
    assert summary["data"]["name"] == "kitti_raw" and summary["frames"] == 1
    assert summary["metrics"]["lpips"] is None and summary["lpips_reason"] == "LPIPS disabled (lpips=false)"
    assert "2011_09_26_drive_0001_sync/0000000003,1," in (tmp_path / "out" / "per_frame.csv").read_text()

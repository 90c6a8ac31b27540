"""``render_novel_view.py`` as a user runs it: every mode on the tiny synthetic city with an untrained tiny model."""

import logging
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import render_novel_view
from bts.visualization.trajectories import TrajectoryFileError
from tests.visualization.helpers import CONFIGS, IMAGE_SIZE, decode

ROOT = Path(__file__).resolve().parents[2]
H, W = IMAGE_SIZE
FAST = ["input.split=test", "render.num_samples=8", "bev.resolution=[16,16]", "bev.num_slices=8", "device=cpu"]


def run(checkpoint: Path, out: Path, *overrides: str) -> Path:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("render", [f"checkpoint={checkpoint}", f"output.dir={out}", *FAST, *overrides])
    return render_novel_view.render(cfg)


def test_default_run_as_subprocess_writes_a_sequence_video(tiny_checkpoint, synthetic_root, tmp_path):
    """data.* overrides replace the training run's data: here the city's native 64x240 instead of 48x176."""
    result = subprocess.run(
        [sys.executable, "render_novel_view.py", f"checkpoint={tiny_checkpoint}", f"output.dir={tmp_path}", *FAST,
         "sequence.count=2", "data=synthetic", f"data.root={synthetic_root}", "data.image_size=[64,240]",
         "data.num_workers=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    written = Path(result.stdout.strip().splitlines()[-1].removeprefix("wrote "))
    assert written.suffix == ".mp4" and written.is_file() and written.is_relative_to(tmp_path / "sequence")
    frames = decode(written)
    assert len(frames) == 2 and frames[0].shape == (128, 240 + 128, 3)  # image over depth | BEV as tall as both
    assert "sequence" in result.stderr and "frame/s" in result.stderr  # the progress bar


def test_nvs_builtin_and_file_trajectories(tiny_checkpoint, tmp_path):
    video = run(tiny_checkpoint, tmp_path, "mode=nvs", "nvs.trajectory=orbit", "nvs.num_frames=3")
    frames = decode(video)
    assert video.name.endswith("_orbit.mp4") and len(frames) == 3 and frames[0].shape == (2 * H, W, 3)
    poses = np.tile(np.eye(4), (2, 1, 1))
    poses[1, 2, 3] = 1.0
    np.save(tmp_path / "path.npy", poses)
    video = run(tiny_checkpoint, tmp_path, "mode=nvs", f"nvs.trajectory={tmp_path / 'path.npy'}",
                "nvs.layout=horizontal", "output.frames=true")
    frames = decode(video)
    assert len(frames) == 2 and frames[0].shape == (H, 2 * W, 3)
    assert len(list(video.with_name(video.stem + "_frames").glob("*.png"))) == 2


def test_malformed_trajectory_file_is_named(tiny_checkpoint, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 3, 3)))
    with pytest.raises(TrajectoryFileError, match="bad.npy.*shape"):
        run(tiny_checkpoint, tmp_path, "mode=nvs", f"nvs.trajectory={tmp_path / 'bad.npy'}")


def test_transition_video(tiny_checkpoint, tmp_path):
    video = run(tiny_checkpoint, tmp_path, "mode=transition", "transition.num_frames=3", "transition.hold=1")
    frames = decode(video)
    assert len(frames) == 4 and frames[0].shape == (H, W, 3)
    assert frames[-1][:, :20].max() < 10  # the top-down view is narrowed to H columns and padded with black


def test_own_image_figure_with_and_without_intrinsics(tiny_checkpoint, tmp_path, caplog):
    photo = tmp_path / "photo.png"
    iio.imwrite(photo, (np.random.default_rng(0).random((150, 400, 3)) * 255).astype(np.uint8))
    with caplog.at_level(logging.WARNING):
        figure = run(tiny_checkpoint, tmp_path, "mode=figure", f"image={photo}", "camera.focal=300",
                     "camera.principal_point=[200,80]")
    assert "training camera" not in caplog.text
    assert figure.name == "photo.png" and iio.imread(figure).shape == (2 * H, W + 2 * H, 3)
    with caplog.at_level(logging.WARNING):
        run(tiny_checkpoint, tmp_path, "mode=figure", f"image={photo}", "camera.fit=resize")
    assert "assuming the training camera" in caplog.text
    with pytest.raises(ValueError, match="mode=sequence renders a sequence"):
        run(tiny_checkpoint, tmp_path, f"image={photo}")


def test_export_mode_writes_every_format(tiny_checkpoint, tmp_path):
    folder = run(tiny_checkpoint, tmp_path, "mode=export", "export.shape=[32,24,8]", "export.voxel_size=0.5",
                 "export.origin=[0,-6,-2]", "export.formats=[ply,npy,bin,obj]", "output.name=scene")
    grid = np.load(folder / "scene.npy")
    assert grid.shape == (32, 24, 8) and set(np.unique(grid)) <= {0, 1, 255}
    assert (folder / "scene.bin").stat().st_size == 32 * 24 * 8 // 8 and (folder / "scene.invalid").is_file()
    assert (folder / "scene.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0")
    assert (folder / "scene.obj").is_file()


def test_render_leaves_the_callers_autograd_and_threads_alone(tiny_checkpoint, tmp_path):
    import torch

    threads = torch.get_num_threads()
    run(tiny_checkpoint, tmp_path, "mode=figure", "threads=1")
    assert torch.is_grad_enabled() and torch.get_num_threads() == threads

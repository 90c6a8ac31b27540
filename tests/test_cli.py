"""The entry points' command-line contract (bts/cli.py): user errors as one line, keys added with '+' refused."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bts.checkpoints.format import CheckpointError, load_checkpoint
from bts.cli import added_keys

REPO = Path(__file__).resolve().parents[1]


def run(script, *args, env=None):
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(out, *fragments):
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_a_key_added_with_plus_is_refused_with_the_closest_key(tmp_path):
    out = run("train.py", "-cn", "bts", "preset=debug", "+trainer.max_stpes=2", f"paths.output_dir={tmp_path}")
    assert_one_line_error(out, "unknown config key 'trainer.max_stpes'", "did you mean trainer.max_steps?")
    assert not (tmp_path / "bts").exists() or not any((tmp_path / "bts").iterdir())  # no empty run folder left


def test_added_keys_skips_config_groups_and_hydra():
    groups = {"preset", "model"}
    assert added_keys(["+trainer.x=1", "++a=2", "+preset=debug", "+hydra.job.name=x", "seed=3"], groups) == \
        ["trainer.x", "a"]


@pytest.mark.parametrize("content", [b"\x13\x37" * 500, b"some text, not a checkpoint"])
def test_a_file_that_is_not_a_checkpoint_gets_one_line(tmp_path, content):
    bad = tmp_path / "random.pt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"is not a checkpoint: a PyTorch checkpoint \(torch.save\) is a zip"):
        load_checkpoint(bad)
    out = run("evaluation/occupancy.py", f"checkpoint={bad}", f"paths.output_dir={tmp_path}")
    assert_one_line_error(out, str(bad), "is not a checkpoint")
    assert "weights_only=False" not in out.stderr  # torch's unsafe advice is not passed on
    full = run("evaluation/occupancy.py", f"checkpoint={bad}", f"paths.output_dir={tmp_path}",
               env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode != 0 and "Traceback" in full.stderr


class Custom:
    pass


def test_a_pickle_with_python_objects_is_named_not_a_checkpoint_of_this_project(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"model": Custom()}, path)
    with pytest.raises(CheckpointError, match="holds Python objects beyond tensors") as info:
        load_checkpoint(path)
    assert "weights_only=False" not in str(info.value)


def test_a_pose_line_one_number_short_says_so(tmp_path):
    from datasets.kitti_360.errors import MalformedFileError
    from datasets.kitti_360.poses import read_poses

    path = tmp_path / "poses.txt"
    path.write_text("0 " + " ".join(["1"] * 12) + "\n1 " + " ".join(["1"] * 11) + "\n")
    with pytest.raises(MalformedFileError, match=r"line 2.*expected 13 fields \(a frame id and 12 numbers\), found 12 "
                                                 r"\(a frame id and 11 numbers\)"):
        read_poses(path)


def test_an_image_that_is_not_an_image_names_the_file_and_formats(tmp_path):
    from bts.visualization.inputs import ImageFileError, read_image

    path = tmp_path / "photo.png"
    path.write_text("not an image")
    with pytest.raises(ImageFileError, match=r"photo.png is not an image this reads.*PNG, JPEG"):
        read_image(path)


def test_a_misspelt_builtin_trajectory_lists_the_builtins():
    from bts.visualization.trajectories import TrajectoryFileError, resolve_trajectory

    with pytest.raises(TrajectoryFileError, match=r"orbitt: is neither a built-in trajectory \(forward, sideways, "
                                                  r"orbit\) nor a file"):
        resolve_trajectory("orbitt", 10)


def test_protocol_exact_without_the_exact_scene_says_what_to_use(synthetic_root, tmp_path):
    import shutil

    from datasets.kitti_360 import FrameSelection, Kitti360Config, Kitti360Dataset
    from evaluation.protocols import ExactTruthUnavailable, Frame, build_protocol

    root = tmp_path / "kitti_like"
    shutil.copytree(synthetic_root, root)
    shutil.rmtree(root / "ground_truth")
    cfg = Kitti360Config(image_size=(32, 120), frames=FrameSelection(num_timesteps=1, stereo=False, fisheye=False))
    ds = Kitti360Dataset(root, root / "splits" / "test_files.txt", cfg)
    with pytest.raises(ExactTruthUnavailable, match=r"scene.json is missing: a KITTI-360 tree has no exact truth; "
                                                    r"evaluate it with protocol=bts"):
        build_protocol("exact").ground_truth_files(Frame(ds, 0, ds[0]))


def test_a_run_that_fails_at_the_start_leaves_no_folder_but_a_named_one_stays(tmp_path):
    out = run("evaluation/occupancy.py", f"checkpoint={tmp_path / 'missing.pt'}", f"paths.output_dir={tmp_path}")
    assert_one_line_error(out, "missing.pt does not exist")
    assert not any((tmp_path / "eval_occupancy").iterdir())
    named = tmp_path / "mine"
    out = run("evaluation/occupancy.py", f"checkpoint={tmp_path / 'missing.pt'}", f"output_dir={named}")
    assert out.returncode == 1 and named.is_dir()  # a folder the user named is never removed


HELP = {  # entry point -> (words its --help must show, config groups it must not list)
    ("train.py",): (["python train.py -cn bts|mvbts|kdbts", "trainer.max_steps", "kd: frozen, joint", "Examples:",
                     "preset=synthetic"], ["protocol:"]),
    ("evaluation/occupancy.py",): (["checkpoint=PATH", "required", "protocol: bts, exact", "prediction=empty",
                                    "Examples:"], ["kd:", "loss:", "trainer:", "preset:"]),
    ("evaluation/depth.py",): (["checkpoint=PATH", "median_scaling", "Examples:"], ["kd:", "protocol:", "loss:"]),
    ("evaluation/nvs.py",): (["checkpoint=PATH", "lpips", "Examples:"], ["kd:", "protocol:", "loss:"]),
    ("render_novel_view.py",): (["checkpoint=PATH", "mode=sequence", "Examples:"], ["kd:", "protocol:", "loss:"]),
}


@pytest.mark.parametrize("entry", list(HELP), ids=lambda e: e[0])
def test_help_describes_the_entry_point_and_only_its_config_groups(entry, tmp_path):
    out = subprocess.run([sys.executable, str(REPO / entry[0]), "--help"], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    wanted, unwanted = HELP[entry]
    groups = out.split("== Config groups", 1)[1].split("== The composed config", 1)[0]
    for text in wanted:
        assert text in out, text
    for group in unwanted:
        assert group not in groups, group
    assert "Hydra" not in out.split("\n", 1)[0]  # not hydra's generic "... is powered by Hydra."

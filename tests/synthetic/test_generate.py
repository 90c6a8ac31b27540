"""Generating trees: determinism, the no-op rerun, refusals, atomic writes, the cache and the command line."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasets.synthetic import MANIFEST, ensure_synthetic_city, generate
from datasets.synthetic import writer as writer_module
from datasets.synthetic.__main__ import main
from datasets.synthetic.generate import GenerationParams
from tests import SYNTHETIC_PARAMS

REPO = Path(__file__).resolve().parents[2]
SMALLEST = dict(sequences=2, frames=13, seed=3, size="tiny")  # the smallest tree with non-empty splits


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_same_arguments_give_byte_identical_trees(synthetic_root, tmp_path):
    again = generate(tmp_path / "again", progress=False, **SYNTHETIC_PARAMS)
    files = _files(synthetic_root)
    assert files == _files(again) and len(files) > 200
    _, mismatch, errors = filecmp.cmpfiles(synthetic_root, again, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors, f"files differ between two runs: {mismatch[:5]}"


def test_second_run_is_a_no_op(synthetic_root):
    stamps = {f: (synthetic_root / f).stat().st_mtime_ns for f in _files(synthetic_root)}
    assert generate(synthetic_root, progress=False, **SYNTHETIC_PARAMS) == synthetic_root
    assert stamps == {f: (synthetic_root / f).stat().st_mtime_ns for f in _files(synthetic_root)}


def test_refuses_other_parameters_and_foreign_folders(synthetic_root, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite"):
        generate(synthetic_root, progress=False, **{**SYNTHETIC_PARAMS, "seed": 1})
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a synthetic city"):
            generate(foreign, progress=False, overwrite=overwrite, **SMALLEST)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("change", "message"), [
    ({"sequences": 1}, "at least 2|between 2"), ({"sequences": 10}, "between 2"), ({"frames": 5}, "too few frames"),
    ({"size": "huge"}, "unknown synthetic city size"),
])
def test_bad_parameters(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "x", progress=False, **{**SMALLEST, **change})
    assert not (tmp_path / "x").exists()


def test_overwrite_replaces_a_tree_and_an_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "city"
    generate(out, progress=False, **SMALLEST)
    generate(out, progress=False, overwrite=True, **{**SMALLEST, "seed": 4})
    assert '"seed": 4' in (out / MANIFEST).read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city"], "no temporary folders are left behind"

    calls = []

    def failing(self, row):
        calls.append(row)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return original(self, row)

    original = writer_module.SequenceWriter.write_frame
    monkeypatch.setattr(writer_module.SequenceWriter, "write_frame", failing)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "interrupted", progress=False, **SMALLEST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city"]


def test_ensure_synthetic_city_caches_by_parameters(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    root = ensure_synthetic_city(cache_dir=cache, **SMALLEST)
    assert root.parent == cache and "tiny" in root.name and (root / MANIFEST).is_file()
    stamp = (root / MANIFEST).stat().st_mtime_ns
    monkeypatch.setenv("BTS_CACHE_DIR", str(cache))
    assert ensure_synthetic_city(**SMALLEST) == root, "BTS_CACHE_DIR is the default cache folder"
    assert (root / MANIFEST).stat().st_mtime_ns == stamp, "the second call reuses the tree"
    assert GenerationParams(**{**SMALLEST, "seed": 5}).digest() != GenerationParams(**SMALLEST).digest()


def test_tests_do_not_use_the_user_cache(tmp_path_factory):
    assert Path(os.environ["BTS_CACHE_DIR"]).is_relative_to(tmp_path_factory.getbasetemp())


def test_command_line(tmp_path, capsys, caplog):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--size", "tiny", "--sequences", "2", "--frames", "13", "--seed", "3"]
    run = subprocess.run([sys.executable, "-m", "datasets.synthetic", *args], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "2 sequences" in run.stdout and "splits: train" in run.stdout
    assert (out / "calibration" / "image_02.yaml").read_text().startswith("%YAML:1.0")
    caplog.set_level("INFO")
    assert main(args) == 0 and "up to date" in caplog.text
    assert main(args[:-1] + ["4"]) == 2 and "--overwrite" in capsys.readouterr().err

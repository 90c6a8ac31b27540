"""The scene-completion recipe (scripts/completion.py) composes and runs end to end for two steps per model."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tests.reproduce.smoke import run_ok, smoke_command

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["bts", "bts_supervised"])
def test_completion_configs_compose_with_the_reproduction_preset(name):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(name, overrides=["preset=reproduce"])
    assert cfg.model.kind == "bts" and cfg.model.encoder.depth == 18 and not cfg.model.encoder.pretrained
    assert cfg.renderer.num_samples == 64, "the paper's samples per ray"
    assert list(cfg.data.frames.fisheye_offset) == [10, 4, 7, 13, 16], "side views drawn from the offset list"
    assert cfg.data.synthetic.sequences == 6 and cfg.data.synthetic.size == "small"


def test_the_completion_preset_is_the_reproduction_with_every_loss_ray_from_the_fisheyes():
    from hydra.errors import ConfigCompositionException
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        completion = OmegaConf.to_container(compose("bts", overrides=["preset=completion"]))
        reproduce = OmegaConf.to_container(compose("bts", overrides=["preset=reproduce"]))
        with pytest.raises(ConfigCompositionException, match="fisheye_share"):  # the bound has no photometric loss
            compose("bts_supervised", overrides=["preset=completion"])
    assert completion["loss"].pop("fisheye_share") == 1.0 and reproduce["loss"].pop("fisheye_share") is None
    assert completion == reproduce


def test_budgets_must_be_multiples_of_the_smallest(tmp_path):
    sys.path.insert(0, str(REPO))
    from scripts.completion import main

    with pytest.raises(ValueError, match="multiple"):
        main(["--dry-run", "--out", str(tmp_path), "--budgets", "100", "250"])


def test_dry_run_prints_every_stage(capsys, tmp_path):
    sys.path.insert(0, str(REPO))
    from scripts.completion import main

    main(["--dry-run", "--out", str(tmp_path), "--seeds", "0", "1", "--budgets", "10", "30"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[reproduce]")]
    train = [line for line in lines if "train.py" in line]
    assert len(train) == 4 and sum("-cn bts_supervised" in line for line in train) == 2
    assert all("trainer.checkpoint_every=10" in line and "trainer.max_steps=30" in line for line in train)
    assert all(("preset=reproduce" if "-cn bts_supervised" in line else "preset=completion") in line
               for line in train)
    evals = [line for line in lines if "evaluation/occupancy.py" in line and "protocol=exact" in line]
    # 4 runs x 2 budgets, all empty, behind each BTS run's depth, and four exact ceilings
    assert len(evals) == 8 + 1 + 2 + 4
    assert sum("prediction_margin=" in line for line in evals) == 3
    kyn = [line for line in lines if "evaluation/occupancy.py" in line and "protocol=kyn" in line]
    # every evaluation again under the kyn protocol, into its own folder
    assert len(kyn) == len(evals) and all(line.split("output_dir=")[1].endswith("/kyn") for line in kyn)
    assert [line.split(": ")[0].replace("[reproduce] kyn ", "") for line in kyn] == [
        line.split(": ")[0].replace("[reproduce] evaluate ", "") for line in evals]
    main(["--dry-run", "--no-kyn", "--out", str(tmp_path), "--seeds", "0", "--budgets", "10"])
    assert "protocol=kyn" not in capsys.readouterr().out


def test_dry_run_with_encoder_pretraining_starts_the_chosen_models_from_it(capsys, tmp_path):
    sys.path.insert(0, str(REPO))
    from scripts.completion import main

    main(["--dry-run", "--no-kyn", "--out", str(tmp_path), "--seeds", "0", "--budgets", "10",
          "--encoder-pretraining", "40", "--pretrained-models", "bts"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[reproduce]")]
    weights = tmp_path.resolve() / "encoder" / "materials.pt"
    assert "scripts/pretrain_encoder.py --steps 40" in lines[0] and f"--out {weights}" in lines[0]
    train = {line.split(":")[0]: line for line in lines if "train.py" in line}
    assert f"model.encoder.weights={weights}" in train["[reproduce] train bts_seed0"]
    assert "model.encoder.weights" not in train["[reproduce] train supervised_seed0"]


def test_dry_run_on_the_validation_sequence_from_given_encoder_weights(capsys, tmp_path):
    sys.path.insert(0, str(REPO))
    from scripts.completion import main

    weights = tmp_path / "materials.pt"
    with pytest.raises(FileNotFoundError, match="--encoder-weights"):
        main(["--dry-run", "--out", str(tmp_path), "--encoder-weights", str(weights)])
    weights.write_text("x")
    with pytest.raises(ValueError, match="exclude each other"):
        main(["--dry-run", "--out", str(tmp_path), "--encoder-weights", str(weights), "--encoder-pretraining", "5"])
    main(["--dry-run", "--no-kyn", "--out", str(tmp_path), "--seeds", "0", "--budgets", "10", "--split", "val",
          "--encoder-weights", str(weights), "--pretrained-models", "bts"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[reproduce]")]
    assert not any("pretrain_encoder" in line for line in lines)
    train = {line.split(":")[0]: line for line in lines if "train.py" in line}
    assert f"model.encoder.weights={weights.resolve()}" in train["[reproduce] train bts_seed0"]
    assert "model.encoder.weights" not in train["[reproduce] train supervised_seed0"]
    evaluations = [line for line in lines if "evaluation/occupancy.py" in line]
    assert evaluations and all(" split=val" in line for line in evaluations)


def test_dry_run_resuming_the_bts_seeds_of_an_earlier_run(capsys, tmp_path):
    sys.path.insert(0, str(REPO))
    from scripts.completion import main

    earlier = tmp_path / "earlier"
    args = ["--dry-run", "--no-kyn", "--out", str(tmp_path / "new"), "--seeds", "0", "1", "--budgets", "30"]
    with pytest.raises(ValueError, match="go together"):
        main([*args, "--bts-resume-step", "20"])
    with pytest.raises(ValueError, match="every budget must lie beyond it"):
        main([*args, "--bts-resume-from", str(earlier), "--bts-resume-step", "30"])
    (earlier / "bts_seed0" / "checkpoints").mkdir(parents=True)
    (earlier / "bts_seed0" / "checkpoints" / "step_20.pt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no checkpoint .*bts_seed1/checkpoints/step_20.pt"):
        main([*args, "--bts-resume-from", str(earlier), "--bts-resume-step", "20"])
    (earlier / "bts_seed1" / "checkpoints").mkdir(parents=True)
    (earlier / "bts_seed1" / "checkpoints" / "step_20.pt").write_text("x")
    main([*args, "--bts-resume-from", str(earlier), "--bts-resume-step", "20", "--bts-override",
          "trainer.lr_decay_at=0.7"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[reproduce]")]
    train = {line.split(":")[0]: line for line in lines if "train.py" in line}
    for seed in (0, 1):
        line = train[f"[reproduce] train bts_seed{seed}"]
        checkpoint = (earlier / f"bts_seed{seed}" / "checkpoints" / "step_20.pt").resolve()
        assert f"trainer.resume_from={checkpoint}" in line and "trainer.lr_decay_at=0.7" in line
        assert "trainer.resume_from" not in train[f"[reproduce] train supervised_seed{seed}"]


@pytest.mark.slow
def test_completion_smoke_runs_every_stage(synthetic_root, tmp_path):
    out = tmp_path / "completion"
    args, env = smoke_command("scripts/completion.py", ["--seeds", "0", "--out", str(out)], synthetic_root, tmp_path)
    run_ok(args, env)
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["runs"]) == {"bts_seed0", "supervised_seed0"}
    for info in summary["runs"].values():
        assert [p["steps"] for p in info["points"]] == [1, 2]
        assert set(info["points"][0]) >= {"exact", "bts", "command"}
        assert 0.0 <= info["points"][-1]["exact"]["ie_acc"] <= 1.0
    names = [b["name"] for b in summary["baselines"]]
    assert names[0] == "all empty (baseline)" and any("behind BTS's depth" in n for n in names)
    assert sum("ceiling" in n for n in names) == 4
    empty = summary["baselines"][0]["exact"]
    assert empty["ie_rec"] == 1.0
    behind = next(b for b in summary["baselines"] if b["name"] == "exact behind (ceiling)")["exact"]
    assert behind["ie_rec"] == 0.0 and behind["ie_acc"] == pytest.approx(1.0 - empty["ie_acc"])
    assert summary["verdict"]["met"] in (True, False)
    table = (out / "results.md").read_text()
    assert "| supervised bound | 2 |" in table and "| IE_acc (kyn) | IE_rec (kyn) | O_acc (kyn) |" in table
    assert all(0.0 <= p["kyn"]["o_acc"] <= 1.0 and "protocol=kyn" in p["kyn_command"]
               for info in summary["runs"].values() for p in info["points"])
    assert empty_kyn_recall_is_one(summary)
    assert (out / summary["figure"]).stat().st_size > 0
    again = run_ok(args, env, timeout=300)
    assert "train bts_seed0: done already" in again.stdout
    # An earlier run's results beside this one's (same frames, same budgets): its rows are added, not pooled.
    earlier = tmp_path / "earlier.json"
    earlier.write_text((out / "results.json").read_text())
    run_ok([*args, "--include-runs", str(earlier)], env, timeout=300)
    summary2 = json.loads((out / "results.json").read_text())
    assert set(summary2["runs"]) == {"bts_seed0", "supervised_seed0", "bts_seed0 (earlier)",
                                     "supervised_seed0 (earlier)"}
    assert summary2["runs"]["bts_seed0 (earlier)"]["model"] == "bts:earlier"
    assert summary2["verdict"] == summary["verdict"]  # the verdict is this run's BTS alone
    assert "| BTS (self-supervised) [earlier.json] | 2 |" in (out / "results.md").read_text()


def test_included_runs_must_come_from_the_same_frames_and_budgets(tmp_path):
    from scripts.completion import included_runs

    empty = {"name": "all empty (baseline)", "exact": {"ie_acc": 0.466, "ie_rec": 1.0, "o_acc": 0.855}, "frames": 30}
    file = tmp_path / "other.json"
    run = {"model": "supervised", "label": "supervised bound", "seed": 0,
           "points": [{"steps": 150, "exact": {}}, {"steps": 450, "exact": {}}]}
    file.write_text(json.dumps({"budgets": [150, 450], "baselines": [empty], "runs": {"supervised_seed0": run}}))
    rows = included_runs(file, [empty], [150, 450])
    assert list(rows) == ["supervised_seed0 (other)"]
    assert rows["supervised_seed0 (other)"]["model"] == "supervised:other"
    assert list(included_runs(file, [empty], [150, 450, 1500])) == ["supervised_seed0 (other)"]  # ours go further
    kept = included_runs(file, [empty], [150, 1500])["supervised_seed0 (other)"]["points"]  # or elsewhere
    assert [p["steps"] for p in kept] == [150]
    with pytest.raises(ValueError, match=r"budgets \[150, 450\] share none with this run's \[300\]"):
        included_runs(file, [empty], [300])
    shifted = {**empty, "exact": {**empty["exact"], "ie_acc": 0.5}}
    with pytest.raises(ValueError, match=r"all-empty baseline differs .*\['ie_acc'\]"):
        included_runs(file, [shifted], [150, 450])
    file.write_text("{}")
    with pytest.raises(ValueError, match="not a results.json of scripts/completion.py"):
        included_runs(file, [empty], [150, 450])


def empty_kyn_recall_is_one(summary) -> bool:
    """All empty predicts every point empty, under the kyn protocol too (where it has invisible empty points)."""
    kyn = summary["baselines"][0]["kyn"]
    return math.isnan(kyn["ie_rec"]) or kyn["ie_rec"] == 1.0


def test_the_table_leaves_out_the_budgets_an_included_run_lacks():
    from scripts.completion import markdown

    def point(steps, ie_acc):
        return {"steps": steps, "exact": {"ie_acc": ie_acc, "ie_rec": 0.5, "o_acc": 0.8, "occluded_auc": 0.6},
                "bts": {"ie_acc": ie_acc, "ie_rec": 0.5, "o_acc": 0.8}}

    runs = {"bts_seed0": {"model": "bts", "label": "BTS", "seed": 0, "points": [point(150, 0.4), point(300, 0.6)]},
            "sup_seed0 (old)": {"model": "supervised:old", "label": "bound [old.json]", "seed": 0,
                                "points": [point(150, 0.7)]}}
    empty = {"name": "all empty (baseline)", "exact": {"ie_acc": 0.466, "ie_rec": 1.0, "o_acc": 0.855}}
    summary = {"budgets": [150, 300], "runs": runs, "baselines": [empty], "stages": {}, "machine": "test",
               "verdict": {"met": None}}
    table = markdown(summary)
    assert "| BTS | 150 | 0 | 0.400 (0.400)" in table and "| BTS | 300 | 0 | 0.600 (0.600)" in table
    assert "| bound [old.json] | 150 | 0 | 0.700 (0.700)" in table and "| bound [old.json] | 300 |" not in table


def test_the_verdict_compares_with_the_better_trivial_baseline_under_both_protocols():
    from scripts.completion import markdown, verdict

    def point(steps, exact, bts):
        return {"steps": steps, "exact": {"ie_acc": exact[0], "ie_rec": exact[1]},
                "bts": {"ie_acc": bts[0], "ie_rec": bts[1]}}

    runs = {f"bts_seed{s}": {"model": "bts", "label": "BTS", "seed": s,
                             "points": [point(100, (0.50 + 0.02 * s, 0.45), (0.60, 0.3))]} for s in (0, 1)}
    baselines = [{"name": "all empty (baseline)", "exact": {"ie_acc": 0.46}, "bts": {"ie_acc": 0.21}},
                 {"name": "behind BTS's depth, seed 0 (baseline)", "exact": {"ie_acc": 0.47}, "bts": {"ie_acc": 0.78}},
                 {"name": "behind BTS's depth, seed 1 (baseline)", "exact": {"ie_acc": 0.49}, "bts": {"ie_acc": 0.80}}]
    v = verdict(runs, baselines, 100)
    # exact: BTS 0.51 against max(0.46, mean(0.47, 0.49) = 0.48): gain 0.03, IE_rec 0.45 -> met
    assert v["met"] is True and v["best_trivial_ie_acc"] == pytest.approx(0.48) and v["gain"] == pytest.approx(0.03)
    # bts protocol: 0.60 against the behind-depth baselines' 0.79
    assert v["bts"]["met"] is False and v["bts"]["gain"] == pytest.approx(-0.19)
    runs["bts_seed1"]["points"][0]["exact"]["ie_rec"] = 0.3  # mean IE_rec 0.375 < 0.4
    assert verdict(runs, baselines, 100)["met"] is False
    summary = {"budgets": [100], "runs": runs, "baselines": baselines, "stages": {}, "machine": "test",
               "verdict": v}
    table = markdown(summary)
    assert "Target (BTS at 100 steps" in table and ": met (IE_acc 0.510 vs 0.480, gain +0.030" in table
    assert "under the papers' `bts` protocol" in table and "not met (IE_acc 0.600 vs 0.790, gain -0.190" in table

"""The distillation experiment (scripts/distillation.py): its stages, and one smoke run of every stage."""

from __future__ import annotations

import json

from tests.reproduce.smoke import run_ok, smoke_command


def test_dry_run_trains_each_teacher_and_a_student_per_variant(capsys, tmp_path):
    from scripts import distillation

    distillation.main(["--dry-run", "--out", str(tmp_path / "d"), "--seeds", "0", "1", "--teachers", "stereo",
                       "seeing", "--variants", "paper", "bce_photometric"])
    printed = capsys.readouterr().out
    for run in ("bts_seed1", "mvbts_seeing_seed0", "mvbts_stereo_seed1", "kdbts_seeing_bce_photometric_seed1",
                "kdbts_stereo_paper_seed0"):
        assert f"train {run}:" in printed
    assert "trainer.max_steps=2000" in printed  # BTS: a teacher's and a student's budget together
    student = next(line for line in printed.splitlines() if "train kdbts_seeing_bce_photometric_seed1:" in line)
    assert "model/views=seeing" in student and "kd.loss=bce" in student and "kd.mask=photometric" in student
    assert "mvbts_seeing_seed1/checkpoints/last.pt" in student  # the same seed's teacher
    teacher_eval = next(line for line in printed.splitlines() if "evaluate MVBTS seeing seed 0:" in line)
    assert "trust_masks=true" in teacher_eval and "save_predictions=true" in teacher_eval
    assert printed.count("] compare ") == 2 * 2 + 2 * 2 * 2 * 2  # BTS-teacher, and BTS-student and teacher-student


def test_distillation_smoke_runs_every_stage(synthetic_root, tmp_path):
    out = tmp_path / "distillation"
    args, env = smoke_command("scripts/distillation.py", ["--seeds", "0", "--teachers", "seeing", "--variants",
                                                         "bce_learned", "--no-ceilings", "--out", str(out)],
                              synthetic_root, tmp_path)
    run_ok(args, env)
    summary = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in summary["rows"]] == ["BTS", "MVBTS teacher (seeing)",
                                                    "KDBTS bce_learned (seeing teacher)"]
    assert all(0.0 <= r["exact"]["ie_acc"] <= 1.0 and "protocol=exact" in r["command"] for r in summary["rows"])
    teacher = next(c for c in summary["comparisons"] if c["kind"] == "bts_teacher")
    assert set(teacher["regions"]) == {"visible", "occluded_seen", "occluded_unseen"}
    assert set(teacher["trust_masks_of_b"]) == {"visibility", "agreement"}
    fit = next(c for c in summary["comparisons"] if c["kind"] == "teacher_student")
    assert set(fit["where_a_is_unsure"]) == {"visibility", "agreement"}  # the teacher's masks, the student scored
    table = (out / "results.md").read_text()
    assert "| KDBTS bce_learned (seeing teacher) | 0 |" in table and "| occluded_seen |" in table
    assert "Students beating BTS in both exact IE_acc and IE_rec" in table
    assert "| seeing_bce_learned_seed0 | visibility |" in table  # the student where the teacher is unsure

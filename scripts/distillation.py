"""Distillation that transfers what the teacher sees: BTS, MVBTS teachers and KDBTS variants, scored on the exact truth.

    python scripts/distillation.py [--out outputs/distillation] [--seeds 0 1] [--teachers stereo seeing]
        [--variants paper bce vis_bce ...] [--teacher-steps 1500] [--student-steps 500] [--jobs 2]

What the distillation issue asks, as one pipeline of plain project commands (each a subprocess, printed, timed in
``<out>/stages.json`` and skipped when its output exists, so an interrupted run resumes; ``--jobs`` at a time):

1. per seed, ``train.py -cn bts preset=reproduce`` for as many steps as a teacher and a student together (the same
   budget), and per teacher views (``model/views``: ``stereo``, the paper's t+1 and stereo views, and ``seeing``,
   which adds the side fisheyes at later frames) ``train.py -cn mvbts preset=reproduce model/views=V``;
2. per teacher, variant (:data:`VARIANTS`: ``kd.loss`` and ``kd.mask`` choices) and seed, ``train.py -cn kdbts
   preset=reproduce model/views=V kd.teacher_checkpoint=<that seed's teacher>``, and the student exported as a
   single-view checkpoint (``scripts.export_single_view``);
3. ``evaluation/occupancy.py protocol=exact save_predictions=true`` (which also gives the papers' ``bts`` numbers)
   of every model on every ``--frame-stride``-th frame of the held-out test sequence; the teachers with
   ``trust_masks=true`` (their selective-distillation masks and ``exact_seen_by`` at every point); the all-empty
   baseline and the exact ceilings of the completion issue;
4. ``python -m evaluation.compare``: BTS against each teacher (per region: visible, occluded but seen by another
   encoded view, seen by none; and each mask scored against "teacher right"), BTS against each student, each
   teacher against its students;
5. ``<out>/results.json`` and ``<out>/results.md``: the models' table (mean over seeds, each seed in brackets), the
   per-region table, the mask scores, the student against its teacher where the teacher's masks say it is unsure,
   and whether a student beats BTS in both exact IE_acc and IE_rec.

``--smoke`` runs every stage for two steps on one frame (the test suite does). Checkpoints are not committed; copy
``results.*`` to ``docs/reproduce/`` to publish them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bts.results import write_json  # noqa: E402
from scripts.completion import CEILINGS, _f, _mean, _metrics, exact_stage, pipeline  # noqa: E402
from scripts.reproduce import _slug, machine  # noqa: E402

#: KDBTS variants: name -> the kd overrides (the paper's recipe is ``paper``).
VARIANTS: dict[str, tuple[str, ...]] = {
    "paper": (),
    "bce": ("kd.loss=bce",),
    "vis_bce": ("kd.loss=vis_bce",),
    "bce_visibility": ("kd.loss=bce", "kd.mask=visibility"),
    "bce_agreement": ("kd.loss=bce", "kd.mask=agreement"),
    "bce_photometric": ("kd.loss=bce", "kd.mask=photometric"),
    "bce_learned": ("kd.loss=bce", "kd.mask=learned"),
}
TEACHERS = ("stereo", "seeing")
COLUMNS = (("exact", "ie_acc"), ("exact", "ie_rec"), ("exact", "o_acc"), ("exact", "occluded_auc"),
           ("bts", "ie_acc"), ("bts", "ie_rec"), ("bts", "o_acc"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/distillation"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=list(TEACHERS),
                   help="the teachers' encoded views (model/views)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--teacher-steps", type=int, default=None, help="default 1500 (2 with --smoke)")
    p.add_argument("--student-steps", type=int, default=None, help="default 500 (2 with --smoke)")
    p.add_argument("--bts-steps", type=int, default=None, help="default: teacher + student steps (the same budget)")
    p.add_argument("--frame-stride", type=int, default=3, help="evaluate every n-th test frame")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--override", action="append", default=[], help="extra hydra override for every training run")
    p.add_argument("--student-override", action="append", default=[], help="extra override for the KDBTS runs")
    p.add_argument("--eval-override", action="append", default=[], help="extra override for every evaluation")
    p.add_argument("--jobs", type=int, default=1, help="run up to N stages of a batch at once, one thread each")
    p.add_argument("--no-ceilings", dest="ceilings", action="store_false", help="skip the exact ceilings' rows")
    p.add_argument("--smoke", action="store_true", help="two steps per training, one test frame (the test suite)")
    p.add_argument("--force", action="store_true", help="redo stages whose output exists")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    a = p.parse_args(argv)
    for key, default in (("teacher_steps", 1500), ("student_steps", 500)):
        if getattr(a, key) is None:
            setattr(a, key, 2 if a.smoke else default)
    bts_steps = a.bts_steps if a.bts_steps is not None else a.teacher_steps + a.student_steps
    out, runner, py, limit = pipeline(a)

    def train(run: str, config: str, steps: int, extra: list[str]) -> Path:
        runner.stage(f"train {run}", out / run / "stage_done.json",
                     [py, "train.py", "-cn", config, "preset=reproduce", f"trainer.max_steps={steps}",
                      f"hydra.run.dir={out / run}", *extra, *a.override], marker=True)
        return out / run / "checkpoints" / "last.pt"

    def evaluate(name: str, checkpoint: Path, extra: tuple[str, ...] = ()) -> Path:
        folder = out / "eval" / _slug(name)
        exact_stage(runner, py, limit, a.eval_override, name, checkpoint, folder, extra)
        return folder

    bts, teachers, students = {}, {}, {}
    with runner.batch():
        for seed in a.seeds:
            bts[seed] = train(f"bts_seed{seed}", "bts", bts_steps, [f"seed={seed}"])
            for views in a.teachers:
                teachers[views, seed] = train(f"mvbts_{views}_seed{seed}", "mvbts", a.teacher_steps,
                                              [f"seed={seed}", f"model/views={views}"])
    with runner.batch():
        for (views, seed), teacher in teachers.items():
            for variant in a.variants:
                run = f"kdbts_{views}_{variant}_seed{seed}"
                students[views, variant, seed] = train(
                    run, "kdbts", a.student_steps, [f"seed={seed}", f"model/views={views}",
                                                     f"kd.teacher_checkpoint={teacher}", *VARIANTS[variant],
                                                     *a.student_override])
    exported = {}
    for key, checkpoint in students.items():
        exported[key] = checkpoint.with_name("last_single_view.pt")
        runner.stage(f"export {checkpoint.parent.parent.name}", exported[key],
                     [py, "-m", "scripts.export_single_view", str(checkpoint), "--out", str(exported[key])])

    rows: list[dict[str, Any]] = []  # (kind, name, seed, folder)
    first = bts[a.seeds[0]]
    with runner.batch():
        for seed, checkpoint in bts.items():
            stage = f"BTS seed {seed}"
            rows.append({"kind": "bts", "name": "BTS", "seed": seed, "stage": stage,
                         "folder": evaluate(stage, checkpoint)})
        for (views, seed), checkpoint in teachers.items():
            stage = f"MVBTS {views} seed {seed}"
            rows.append({"kind": "teacher", "name": f"MVBTS teacher ({views})", "views": views, "seed": seed,
                         "stage": stage, "folder": evaluate(stage, checkpoint, ("trust_masks=true",))})
        for (views, variant, seed), checkpoint in exported.items():
            stage = f"KDBTS {views} {variant} seed {seed}"
            rows.append({"kind": "student", "name": f"KDBTS {variant} ({views} teacher)", "views": views,
                         "variant": variant, "seed": seed, "stage": stage, "folder": evaluate(stage, checkpoint)})
        baselines = [("all empty (baseline)", evaluate("all empty", first, ("prediction=empty",)))]
        baselines += [(name, evaluate(name, first, extra)) for name, extra in (CEILINGS if a.ceilings else ())]

    def folder_of(kind: str, seed: int, views: str | None = None, variant: str | None = None) -> Path:
        return next(r["folder"] for r in rows if r["kind"] == kind and r["seed"] == seed
                    and r.get("views") == views and r.get("variant") == variant)

    comparisons: list[tuple[str, str, str, Path, Path, Path]] = []  # (kind, question, key, A, B, json)
    for seed in a.seeds:
        for views in a.teachers:
            teacher = folder_of("teacher", seed, views)
            key = f"{views}_seed{seed}"
            comparisons.append(("bts_teacher", f"is the {views} teacher right where BTS is wrong?", key,
                                folder_of("bts", seed), teacher, out / "compare" / f"bts_vs_{key}.json"))
            for variant in a.variants:
                student = folder_of("student", seed, views, variant)
                key = f"{views}_{variant}_seed{seed}"
                comparisons.append(("bts_student", "does the student beat BTS?", key, folder_of("bts", seed),
                                    student, out / "compare" / f"bts_vs_{key}.json"))
                comparisons.append(("teacher_student", "does the student fit its teacher?", key, teacher, student,
                                    out / "compare" / f"teacher_vs_{key}.json"))
    with runner.batch():
        for *_, left, right, target in comparisons:
            runner.stage(f"compare {target.stem}", target,
                         [py, "-m", "evaluation.compare", str(left), str(right), "--json", str(target)])
    if a.dry_run:
        return {}

    for row in rows:
        row.update(_metrics(row["folder"], with_auc=True))
        row["command"] = runner.stages.get(f"evaluate {row.pop('stage')}", {}).get("command", "")
        row["folder"] = str(row["folder"].relative_to(out))
    fixed = [{"name": name, **_metrics(folder, with_auc=False)} for name, folder in baselines]
    compared = [{"kind": kind, "question": q, "key": key, **json.loads(target.read_text())}
                for kind, q, key, _, _, target in comparisons]
    trainings = {k: v for k, v in runner.stages.items() if k.startswith("train ")}
    summary = {"machine": machine(), "seeds": a.seeds, "teachers": a.teachers, "variants": a.variants,
               "steps": {"bts": bts_steps, "teacher": a.teacher_steps, "student": a.student_steps},
               "rows": rows, "baselines": fixed, "comparisons": compared, "trainings": trainings,
               "stages": runner.stages}
    summary["verdict"] = verdict(summary)
    write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown(summary))
    print((out / "results.md").read_text())
    return summary


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["name"], []).append(row)
    return groups


def verdict(summary: dict[str, Any]) -> dict[str, Any]:
    """The students that beat BTS in both exact IE_acc and IE_rec (means over seeds)."""
    groups = _group(summary["rows"])
    base = {k: _mean([r["exact"].get(k, math.nan) for r in groups.get("BTS", [])]) for k in ("ie_acc", "ie_rec")}
    better = [name for name, rows in groups.items() if rows[0]["kind"] == "student"
              and all(_mean([r["exact"].get(k, math.nan) for r in rows]) > base[k] for k in base)]
    return {"bts": base, "students_beating_bts_in_ie_acc_and_ie_rec": better}


def markdown(summary: dict[str, Any]) -> str:
    names = {"ie_acc": "IE_acc", "ie_rec": "IE_rec", "o_acc": "O_acc", "occluded_auc": "occluded AUC"}
    head = "| model | seeds | " + " | ".join(
        names[k] if k == "occluded_auc" else f"{names[k]} ({g})" for g, k in COLUMNS) + " |"
    steps = summary["steps"]
    lines = [f"BTS {steps['bts']} steps; teachers {steps['teacher']} steps; students {steps['student']} steps from "
             "their teacher. Per-frame means over the held-out test sequence's evaluated frames; model rows are the "
             "mean over seeds (each seed's value in brackets).", "", head, "|" + "---|" * (head.count("|") - 1)]
    for name, rows in _group(summary["rows"]).items():
        cells = []
        for group, key in COLUMNS:
            values = [r.get(group, {}).get(key, math.nan) for r in rows]
            cells.append(f"{_f(_mean(values))} ({' / '.join(_f(v) for v in values)})")
        lines.append(f"| {name} | {', '.join(str(r['seed']) for r in rows)} | " + " | ".join(cells) + " |")
    for b in summary["baselines"]:
        cells = ["" if k == "occluded_auc" else _f(b.get(g, {}).get(k)) for g, k in COLUMNS]
        lines.append(f"| {b['name']} | | " + " | ".join(cells) + " |")
    v = summary["verdict"]
    lines += ["", "Students beating BTS in both exact IE_acc and IE_rec (means over seeds): "
              + (", ".join(v["students_beating_bts_in_ie_acc_and_ie_rec"]) or "none") + "."]
    regions = [c for c in summary["comparisons"] if c["kind"] == "bts_teacher" and "regions" in c]
    if regions:
        lines += ["", "Where the teacher (B) is right and BTS (A) is wrong, by region of the teacher's evidence "
                  "(pooled points; the ceiling of what any distillation can transfer):", "",
                  "| teacher, seed | region | points | occupied | BTS right | teacher right | teacher right where BTS "
                  "wrong | teacher wrong where BTS right | net gain of the teacher |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in regions:
            for region, r in c["regions"].items():
                lines.append(f"| {c['key']} | {region} | {r['points']} | {_f(r['occupied_fraction'])} "
                             f"| {_f(r['a_acc'])} | {_f(r['b_acc'])} | {_f(r['b_right_where_a_wrong'])} | "
                             f"{_f(r['b_wrong_where_a_right'])} | {r['net_gain_of_b']:+.4f} |")
    masks = [c for c in regions if c.get("trust_masks_of_b")]
    if masks:
        lines += ["", "The teachers' masks as predictors of \"teacher right\" on the occluded points:", "",
                  "| teacher, seed | mask | coverage | AUC | precision | net gain | random mask, same coverage | "
                  "oracle |", "|---|---|---|---|---|---|---|---|"]
        for c in masks:
            for name, m in c["trust_masks_of_b"].items():
                lines.append(f"| {c['key']} | {name} | {_f(m['coverage'])} | {_f(m['auc'])} | "
                             f"{_f(m['precision'])} | {m['net_gain']:+.4f} | {m['random_gain']:+.4f} | "
                             f"{m['oracle_gain']:+.4f} |")
    unsure = [c for c in summary["comparisons"] if c["kind"] == "teacher_student" and c.get("where_a_is_unsure")]
    if unsure:
        lines += ["", "Where the teacher is unsure (occluded points outside its mask), is the student at least as "
                  "good?", "", "| student, seed | teacher's mask | points | teacher right | student right |",
                  "|---|---|---|---|---|"]
        for c in unsure:
            for name, r in c["where_a_is_unsure"].items():
                lines.append(f"| {c['key']} | {name} | {r['points']} | {_f(r['a_acc'])} | {_f(r['b_acc'])} |")
    stages = ", ".join(f"{k[len('train '):]} {x['seconds'] / 60:.1f} min" if x.get("seconds") is not None
                       else f"{k[len('train '):]} not timed" for k, x in summary["trainings"].items())
    lines += ["", f"Machine: {summary['machine']}. Training wall-clock: {stages}.", "",
              "Commands: every row's command is in results.json (`rows[].command`, `stages`)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

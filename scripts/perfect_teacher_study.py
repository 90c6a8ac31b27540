"""What each distillation loss carries from a teacher that knows everything: the perfect-teacher study.

    python scripts/perfect_teacher_study.py [--out outputs/perfect_teacher] [--losses l1 bce vis_bce]
        [--seeds 0 1] [--budgets 150 450] [--jobs 2] [--include-runs docs/reproduce/completion_supervised.json]

The distillation issue's item 4 as one pipeline of plain project commands (printed, timed in ``<out>/stages.json``,
skipped when their output exists; ``--jobs`` at a time, one thread each):

1. per ``kd.loss`` and seed, ``python -m scripts.perfect_teacher --loss L --seed S`` (:mod:`scripts.perfect_teacher`:
   the BTS network from scratch, the KDBTS sample points, the exact scene as the teacher, the distillation term
   alone) for the largest budget, keeping the checkpoint of every budget;
2. ``evaluation/occupancy.py protocol=exact save_predictions=true`` (with the papers' ``bts`` numbers) of every
   checkpoint on every ``--frame-stride``-th frame of the held-out test sequence, and the all-empty baseline;
3. ``<out>/results.json``, ``<out>/results.md`` (the table of :func:`scripts.completion.markdown`, plus each run's
   share of distilled points the student predicts occupied at each budget: 0 is the collapse to empty space) and
   ``<out>/learning_curves.png``.

``--include-runs`` puts the runs of a ``scripts/completion.py`` results file beside them (the supervised bound:
the same network and rate with binary cross-entropy on points sampled around the exact surfaces, which tells
what the sample points of the distillation cost). ``--smoke`` runs every stage for two steps on one frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bts.losses.distillation import KD_LOSSES, RAY_LOSSES  # noqa: E402
from bts.results import write_json  # noqa: E402
from scripts.completion import (_f, _metrics, checked_budgets, exact_stage, included_runs,  # noqa: E402
                                learning_curves, markdown, pipeline)
from scripts.reproduce import machine  # noqa: E402

LOSSES = (*sorted(KD_LOSSES), *RAY_LOSSES)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/perfect_teacher"))
    p.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="steps at which every run is evaluated (default 150 450; 1 2 with --smoke); multiples of the "
                   "smallest one")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's rate (the supervised bound's)")
    p.add_argument("--frame-stride", type=int, default=3, help="evaluate every n-th test frame")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--override", action="append", default=[], help="extra hydra override for every training run")
    p.add_argument("--eval-override", action="append", default=[], help="extra override for every evaluation")
    p.add_argument("--include-runs", type=Path, nargs="+", default=[], metavar="RESULTS_JSON",
                   help="also tabulate the runs of results.json files of scripts/completion.py on the same frames")
    p.add_argument("--smoke", action="store_true", help="two steps, one test frame (for the test suite)")
    p.add_argument("--force", action="store_true", help="redo stages whose output exists")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    p.add_argument("--jobs", type=int, default=1, help="run up to N trainings (then evaluations) at once")
    a = p.parse_args(argv)
    if a.budgets is None:
        a.budgets = [1, 2] if a.smoke else [150, 450]
    budgets = checked_budgets(a.budgets)
    out, runner, py, limit = pipeline(a)
    train_overrides = ["preset=reproduce", *a.override]  # scripts.perfect_teacher composes the bts config with them

    runs: dict[str, dict[str, Any]] = {}
    with runner.batch():
        for loss in a.losses:
            for seed in a.seeds:
                run = f"{loss}_seed{seed}"
                runner.stage(f"train {run}", out / run / "log.json",
                             [py, "-m", "scripts.perfect_teacher", "--loss", loss, "--seed", str(seed),
                              "--steps", str(budgets[-1]), "--checkpoint-every", str(budgets[0]),
                              "--lr", str(a.lr), "--out", str(out / run), *train_overrides])
                runs[run] = {"model": f"perfect_{loss}", "label": f"perfect teacher, kd.loss={loss}", "seed": seed,
                             "loss": loss, "points": []}

    def evaluate(name: str, checkpoint: Path, folder: Path, extra: tuple[str, ...] = ()) -> None:
        exact_stage(runner, py, limit, a.eval_override, name, checkpoint, folder, extra)

    with runner.batch():
        for run in runs:
            for steps in budgets:
                evaluate(f"{run} step {steps}", out / run / "checkpoints" / f"step_{steps}.pt",
                         out / "eval" / run / f"step_{steps}")
        first = next(iter(runs))
        evaluate("all empty", out / first / "checkpoints" / f"step_{budgets[-1]}.pt", out / "eval" / "empty",
                 ("prediction=empty",))
    if a.dry_run:
        return {}

    for run, info in runs.items():
        history = json.loads((out / run / "log.json").read_text())["history"]
        for steps in budgets:
            folder = out / "eval" / run / f"step_{steps}"
            command = runner.stages.get(f"evaluate {run} step {steps}", {}).get("command", "")
            logged = [row for row in history if row["step"] <= steps]
            point = {"steps": steps, "command": command, **_metrics(folder, with_auc=True),
                     "predicted_occupied": logged[-1]["predicted_occupied"] if logged else None,
                     "distillation_loss": logged[-1]["loss"] if logged else None}
            info["points"].append(point)
        info["train_command"] = runner.stages.get(f"train {run}", {}).get("command", "")
    empty = {"name": "all empty (baseline)", "run": None,
             "command": runner.stages.get("evaluate all empty", {}).get("command", ""),
             **_metrics(out / "eval" / "empty", False)}
    for file in a.include_runs:
        runs.update(included_runs(file, [empty], budgets))
    summary = {"machine": machine(), "split": "test", "budgets": budgets, "seeds": a.seeds, "lr": a.lr,
               "runs": runs, "baselines": [empty], "stages": runner.stages, "verdict": {"met": None}}
    summary["figure"] = str(learning_curves(out, summary).relative_to(out))
    write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown(summary) + "\n" + collapse_table(summary))
    print((out / "results.md").read_text())
    return summary


def collapse_table(summary: dict[str, Any]) -> str:
    """Per run and budget, the share of the distilled points (inside the input frustum) that the student predicts
    occupied (sigma > 0.5) at the last logged step, and the distillation loss there."""
    lines = ["Share of the distilled points the student predicts occupied (sigma > 0.5) and its distillation loss, "
             "at the last logged step up to each budget (0 occupied: the collapse to empty space):", "",
             "| run | " + " | ".join(f"{s} steps: occupied / loss" for s in summary["budgets"]) + " |",
             "|---|" + "---|" * len(summary["budgets"])]
    for run, info in summary["runs"].items():
        if "loss" not in info:
            continue  # an included run: no distillation log
        cells = [f"{_f(p.get('predicted_occupied'))} / {_f(p.get('distillation_loss'))}" for p in info["points"]]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

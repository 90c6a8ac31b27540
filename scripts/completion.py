"""Scene completion on the built-in city: learning curves of BTS and of its supervised upper bound, with ceilings.

    python scripts/completion.py [--out outputs/completion] [--seeds 0 1] [--budgets 150 450 1500 2100]

Does a self-supervised BTS complete occluded space on the synthetic city, and how far is it from what the same
network learns in the same budget from the exact occupancy? Stages, each a plain project command run as a
subprocess (printed, timed in ``<out>/stages.json``, skipped when its output exists, so an interrupted run resumes):

0. with ``--encoder-pretraining STEPS``, ``scripts/pretrain_encoder.py`` (the encoder segments the city's materials
   on the training sequences: the offline stand-in for the paper's ImageNet weights), whose file the runs of
   ``--pretrained-models`` start from (``model.encoder.weights``);
1. per seed, ``train.py -cn bts preset=completion seed=S`` (the reproduction's preset with every loss ray from the
   fisheyes, ``loss.fisheye_share=1.0``: the recipe chosen on the validation sequence) and ``train.py -cn
   bts_supervised preset=reproduce seed=S trainer.lr=1e-3`` (the supervised upper bound: the same network and data
   (the presets differ only in the photometric loss, which the bound does not have), binary cross-entropy against
   the exact occupancy, at the rate chosen for it on the validation sequence; ``--supervised-override`` and
   ``--bts-override`` change one model's runs) for the largest budget, keeping the checkpoint of every budget;
2. ``evaluation/occupancy.py protocol=exact save_predictions=true`` (which also gives the papers' ``bts`` numbers) of
   every checkpoint at every budget, on every ``--frame-stride``-th frame of the held-out test sequence, and the same
   under ``protocol=kyn`` (KYN's and ViPOcc's protocol: z to 50 m, up to 300 aggregated scans, the far invisible
   area cut; ``--no-kyn`` skips it);
3. the trivial baselines (all empty; occupied behind each BTS run's own rendered depth) and the ceilings from the
   exact truth (occupied behind the exact first surface; exact depth + 1, 2 and 4 m along the ray);
4. ``<out>/results.json``, ``<out>/results.md`` (the README's tables) and ``<out>/learning_curves.png`` (exact
   IE_acc, IE_rec and the occluded AUC against steps, every seed and their mean).

The target (the issue "Scene completion shown on the built-in city"): BTS's mean over seeds at the largest budget
beats the better of the two trivial baselines on the exact IE_acc by at least 0.03 with an exact IE_rec of 0.4 or
more. ``results.md`` says whether it is met. Checkpoints are not committed; copy ``results.*`` and the figure to
``docs/reproduce/`` to publish them. ``--smoke`` runs every stage for two steps on one frame (the test suite does).
``--split val`` evaluates on the validation sequence instead (to check a recipe variant before it meets the test
sequence); ``--encoder-weights FILE`` starts ``--pretrained-models`` from an existing encoder file instead of
pretraining one. ``--bts-resume-from OUT --bts-resume-step N`` continues each BTS seed from the step-``N`` checkpoint
of an earlier run of this script (for instance with another schedule for the steps after ``N``:
``--bts-override trainer.lr_decay_at=...``); the earlier rows can be put beside with ``--include-runs``.
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

import numpy as np  # noqa: E402

from scripts.reproduce import Runner, _slug, machine  # noqa: E402
from bts.results import write_json  # noqa: E402

# model: (label, config, preset). preset=completion is preset=reproduce with loss.fisheye_share=1.0, a key of the
# photometric loss only.
MODELS = {"bts": ("BTS (self-supervised)", "bts", "completion"),
          "supervised": ("supervised bound", "bts_supervised", "reproduce")}
CEILINGS = (("exact behind (ceiling)", ("prediction=exact_behind",)),
            ("exact depth + 1 m (ceiling)", ("prediction=exact_behind", "prediction_margin=1")),
            ("exact depth + 2 m (ceiling)", ("prediction=exact_behind", "prediction_margin=2")),
            ("exact depth + 4 m (ceiling)", ("prediction=exact_behind", "prediction_margin=4")))
TARGET_GAIN, TARGET_IE_REC = 0.03, 0.4
# The supervised bound learns hidden space at 1e-3, not at the recipe's 1e-4 (docs/reproduce/completion_validation.md).
SUPERVISED_DEFAULT = ["trainer.lr=1e-3"]


def occluded_auc(folder: Path) -> float:
    """Threshold-free: does the density rank the occluded occupied points above the occluded empty ones (pooled over
    frames, exact truth)? NaN without per-point densities."""
    from evaluation.compare import load_predictions, ranking_auc  # noqa: PLC0415

    p = load_predictions(folder)
    hidden = ~p.visible
    if not np.isfinite(p.sigma[hidden]).all():
        return math.nan
    return ranking_auc(p.sigma[hidden], p.truth[hidden])


def _metrics(folder: Path, with_auc: bool) -> dict[str, Any]:
    result = json.loads((folder / "results.json").read_text())
    row = {"exact": result["metrics"].get("exact", {}), "bts": result["metrics"].get("bts", {}),
           "frames": result["frames"]}
    kyn = folder / "kyn" / "results.json"
    if kyn.is_file():
        row["kyn"] = json.loads(kyn.read_text())["metrics"].get("kyn", {})
    if with_auc:
        row["exact"]["occluded_auc"] = occluded_auc(folder)
    return row


def checked_budgets(budgets: list[int]) -> list[int]:
    """``--budgets`` sorted and distinct; refused unless each is a positive multiple of the smallest (a run keeps a
    checkpoint every smallest budget)."""
    budgets = sorted(set(budgets))
    if budgets[0] < 1 or any(b % budgets[0] for b in budgets):
        raise ValueError(f"--budgets {budgets}: every budget must be a positive multiple of the smallest one")
    return budgets


def exact_stage(runner: Runner, py: str, limit: list[str], eval_override: list[str], name: str, checkpoint: Path,
                folder: Path, extra: tuple[str, ...] = ()) -> None:
    """The stage ``evaluate <name>``: ``evaluation/occupancy.py protocol=exact save_predictions=true`` of
    ``checkpoint`` into ``folder`` (which also gives the papers' ``bts`` numbers and, saved, the occluded AUC)."""
    runner.stage(f"evaluate {name}", folder / "results.json",
                 [py, "evaluation/occupancy.py", f"checkpoint={checkpoint}", "protocol=exact", *extra, *limit,
                  "save_predictions=true", f"output_dir={folder}", *eval_override])


def pipeline(a: argparse.Namespace) -> tuple[Path, Runner, str, list[str]]:
    """What the experiment scripts share: ``--smoke``'s one frame and no validation, the output folder, the stage
    runner, the interpreter and the evaluations' frame selection."""
    if a.smoke:
        a.max_frames = 1
        a.override += ["trainer.validate_every=1000", "trainer.val_samples=1"]
    out = a.out.resolve()
    limit = [f"frame_stride={a.frame_stride}"] + ([f"max_frames={a.max_frames}"] if a.max_frames is not None else [])
    return out, Runner(out, a.force, a.dry_run, jobs=a.jobs), sys.executable, limit


def _mean(values: list[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/completion"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="training steps at which every model is evaluated (default 150 450 1500 2100; 1 2 with "
                   "--smoke); they must be multiples of the smallest one")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--frame-stride", type=int, default=3, help="evaluate every n-th test frame")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="the sequence every evaluation runs on: the held-out test sequence (the issue's numbers) or "
                   "the validation sequence (to choose a recipe variant before it meets the test sequence)")
    p.add_argument("--encoder-weights", type=Path, default=None, metavar="FILE",
                   help="start --pretrained-models from this encoder file of scripts/pretrain_encoder.py (e.g. an "
                   "earlier run's <out>/encoder/materials.pt) instead of pretraining one (--encoder-pretraining)")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--override", action="append", default=[], help="extra hydra override for every training run")
    p.add_argument("--bts-override", action="append", default=[], help="extra override for the BTS runs only")
    p.add_argument("--supervised-override", action="append", default=None,
                   help=f"extra override for the supervised bound only (default: {' '.join(SUPERVISED_DEFAULT)}, "
                        "the rate chosen on the validation sequence for a ResNet trained from scratch)")
    p.add_argument("--eval-override", action="append", default=[], help="extra override for every evaluation")
    p.add_argument("--encoder-pretraining", type=int, default=0, metavar="STEPS",
                   help="first pretrain the encoder on the city's material labels for STEPS steps "
                   "(scripts/pretrain_encoder.py, into <out>/encoder/materials.pt) and start the runs of "
                   "--pretrained-models from it (model.encoder.weights); 0: every run starts from scratch")
    p.add_argument("--pretrained-models", nargs="+", default=list(MODELS), choices=list(MODELS),
                   help="the models that start from the pretrained encoder (default: all)")
    p.add_argument("--no-kyn", dest="kyn", action="store_false",
                   help="skip the evaluations under protocol=kyn (KYN / ViPOcc; z to 50 m, up to 300 scans)")
    p.add_argument("--include-runs", type=Path, nargs="+", default=[], metavar="RESULTS_JSON",
                   help="also tabulate and plot the runs of earlier results.json files of this script, evaluated on "
                   "the same frames (checked: their all-empty baseline must agree), at the budgets they share")
    p.add_argument("--bts-resume-from", type=Path, default=None, metavar="OUT",
                   help="continue each BTS seed from the checkpoint of an earlier run of this script, "
                   "OUT/bts_seedS/checkpoints/step_<--bts-resume-step>.pt (trainer.resume_from: same model config, "
                   "its optimizer, step counter and RNG states), e.g. to change the schedule of the last steps; "
                   "every budget must lie beyond that step")
    p.add_argument("--bts-resume-step", type=int, default=None, metavar="STEP")
    p.add_argument("--smoke", action="store_true", help="two steps, one test frame (for the test suite)")
    p.add_argument("--force", action="store_true", help="redo stages whose output exists")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    p.add_argument("--jobs", type=int, default=1,
                   help="run up to N trainings (then N evaluations) at once, one thread each, output in <out>/logs/ "
                   "(2 on a 2-core machine)")
    a = p.parse_args(argv)
    per_model = {"bts": a.bts_override,
                 "supervised": SUPERVISED_DEFAULT if a.supervised_override is None else a.supervised_override}
    if a.budgets is None:
        a.budgets = [1, 2] if a.smoke else [150, 450, 1500, 2100]
    budgets = checked_budgets(a.budgets)
    if a.encoder_weights is not None and a.encoder_pretraining > 0:
        raise ValueError("--encoder-weights and --encoder-pretraining exclude each other: give the file or train one")
    if a.encoder_weights is not None and not a.encoder_weights.is_file():
        raise FileNotFoundError(f"--encoder-weights {a.encoder_weights}: no such file (scripts/pretrain_encoder.py "
                                "writes one)")
    resume = resume_checkpoints(a.bts_resume_from, a.bts_resume_step, a.seeds, budgets) if "bts" in a.models else {}
    out, runner, py, limit = pipeline(a)
    if a.split == "val":
        limit = [*limit, "split=val"]

    def evaluate(name: str, checkpoint: Path, folder: Path, extra: tuple[str, ...] = ()) -> None:
        exact_stage(runner, py, limit, a.eval_override, name, checkpoint, folder, extra)
        if a.kyn:
            runner.stage(f"kyn {name}", folder / "kyn" / "results.json",
                         [py, "evaluation/occupancy.py", f"checkpoint={checkpoint}", "protocol=kyn", *extra, *limit,
                          f"output_dir={folder / 'kyn'}", *a.eval_override])

    if a.encoder_pretraining > 0:  # the stand-in for ImageNet weights, trained on the training sequences only
        weights = out / "encoder" / "materials.pt"
        runner.stage("pretrain encoder", weights,
                     [py, "scripts/pretrain_encoder.py", "--steps", str(a.encoder_pretraining), "--out", str(weights),
                      "preset=reproduce", *a.override])
    else:
        weights = a.encoder_weights.resolve() if a.encoder_weights is not None else None
    if weights is not None:
        for model in a.pretrained_models:
            per_model[model] = [*per_model[model], f"model.encoder.weights={weights}"]
    runs: dict[str, dict[str, Any]] = {}
    with runner.batch():  # the trainings, --jobs at a time
        for model in a.models:
            label, config, preset = MODELS[model]
            for seed in a.seeds:
                run = f"{model}_seed{seed}"
                runner.stage(f"train {run}", out / run / "stage_done.json",
                             [py, "train.py", "-cn", config, f"preset={preset}", f"seed={seed}",
                              f"trainer.max_steps={budgets[-1]}", f"trainer.checkpoint_every={budgets[0]}",
                              f"trainer.keep_checkpoints={budgets[-1] // budgets[0] + 1}",
                              f"hydra.run.dir={out / run}", *a.override, *per_model[model],
                              *([f"trainer.resume_from={resume[seed]}"] if model == "bts" and resume else [])],
                             marker=True)
                runs[run] = {"model": model, "label": label, "seed": seed, "points": []}
    first = next(iter(runs))
    final = out / first / "checkpoints" / f"step_{budgets[-1]}.pt"
    baselines: list[tuple[str, Path, str | None]] = [("all empty (baseline)", out / "eval" / "empty", None)]
    with runner.batch():  # then every evaluation
        for run in runs:
            for steps in budgets:
                evaluate(f"{run} step {steps}", out / run / "checkpoints" / f"step_{steps}.pt",
                         out / "eval" / run / f"step_{steps}")
        evaluate("all empty", final, out / "eval" / "empty", ("prediction=empty",))
        for run, info in runs.items():
            if info["model"] == "bts":
                folder = out / "eval" / run / "behind_depth"
                evaluate(f"behind {run}'s depth", out / run / "checkpoints" / f"step_{budgets[-1]}.pt", folder,
                         ("prediction=behind_depth",))
                baselines.append((f"behind BTS's depth, seed {info['seed']} (baseline)", folder, run))
        for name, extra in CEILINGS:
            folder = out / "eval" / _slug(name)
            evaluate(name, final, folder, extra)
            baselines.append((name, folder, None))
    if a.dry_run:
        return {}

    for run, info in runs.items():
        for steps in budgets:
            folder = out / "eval" / run / f"step_{steps}"
            command = runner.stages.get(f"evaluate {run} step {steps}", {}).get("command", "")
            point = {"steps": steps, "command": command, **_metrics(folder, with_auc=True)}
            if "kyn" in point:
                point["kyn_command"] = runner.stages.get(f"kyn {run} step {steps}", {}).get("command", "")
            info["points"].append(point)
        info["train_command"] = runner.stages.get(f"train {run}", {}).get("command", "")
    fixed = []
    for name, folder, run in baselines:
        row = {"name": name, "run": run, "command": _command(runner, name, run), **_metrics(folder, False)}
        if "kyn" in row:
            row["kyn_command"] = _command(runner, name, run, "kyn")
        fixed.append(row)
    for file in a.include_runs:
        runs.update(included_runs(file, fixed, budgets))
    summary = {"machine": machine(), "split": a.split, "budgets": budgets, "seeds": a.seeds, "runs": runs,
               "baselines": fixed,
               "stages": runner.stages, "verdict": verdict(runs, fixed, budgets[-1])}
    summary["figure"] = str(learning_curves(out, summary).relative_to(out))
    write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown(summary))
    print((out / "results.md").read_text())
    return summary


def resume_checkpoints(earlier: Path | None, step: int | None, seeds: list[int],
                       budgets: list[int]) -> dict[int, Path]:
    """``--bts-resume-from`` / ``--bts-resume-step``: each seed's checkpoint to continue from (checked to exist)."""
    if earlier is None and step is None:
        return {}
    if earlier is None or step is None:
        raise ValueError("--bts-resume-from and --bts-resume-step go together: the earlier run's folder and the step")
    if budgets[0] <= step:
        raise ValueError(f"--bts-resume-step {step}: every budget must lie beyond it (the continued run has no "
                         f"checkpoint at or before it), got budgets {budgets}")
    paths = {seed: (earlier / f"bts_seed{seed}" / "checkpoints" / f"step_{step}.pt").resolve() for seed in seeds}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"--bts-resume-from {earlier}: no checkpoint {', '.join(missing)}")
    return paths


def included_runs(file: Path, baselines: list[dict[str, Any]], budgets: list[int]) -> dict[str, dict[str, Any]]:
    """The runs of an earlier ``results.json`` (``--include-runs``), as rows beside this run's: model
    ``<model>:<file stem>`` (never pooled with this run's seeds, never part of the verdict), label naming the file.
    Its points at this run's budgets are kept (the table and the figure leave out a budget it lacks). Refused unless
    it shares a budget with this run and its all-empty baseline (so its frames and exact truth) equals this run's."""
    try:
        other = json.loads(Path(file).read_text())
        theirs = next(b for b in other["baselines"] if b["name"].startswith("all empty"))
        ours = next(b for b in baselines if b["name"].startswith("all empty"))
        runs = other["runs"]
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise ValueError(f"--include-runs {file}: not a results.json of scripts/completion.py ({e})") from None
    theirs_budgets = other.get("budgets")
    if not isinstance(theirs_budgets, list) or not set(theirs_budgets) & set(budgets):
        raise ValueError(f"--include-runs {file}: its budgets {theirs_budgets} share none with this run's {budgets}")
    differ = [k for k in ("ie_acc", "ie_rec", "o_acc") if not math.isclose(theirs["exact"].get(k, math.nan),
                                                                            ours["exact"].get(k, math.nan),
                                                                            rel_tol=0, abs_tol=1e-9)]
    if differ or theirs["frames"] != ours["frames"]:
        raise ValueError(f"--include-runs {file}: its all-empty baseline differs from this run's ({differ or 'frames'}"
                         "): it was evaluated on other frames or another city")
    stem = Path(file).stem
    return {f"{run} ({stem})": {**info, "model": f"{info['model']}:{stem}",
                                "label": f"{info['label']} [{Path(file).name}]", "included_from": Path(file).name,
                                "points": [pt for pt in info.get("points", []) if pt.get("steps") in budgets]}
            for run, info in runs.items()}


def _command(runner: Runner, name: str, run: str | None, stage: str = "evaluate") -> str:
    key = f"{stage} all empty" if name.startswith("all empty") else (
        f"{stage} behind {run}'s depth" if run else f"{stage} {name}")
    return runner.stages.get(key, {}).get("command", "")


def _at(info: dict[str, Any], steps: int, group: str, key: str) -> float:
    for point in info["points"]:
        if point["steps"] == steps:
            return point.get(group, {}).get(key, math.nan)
    return math.nan


def verdict(runs: dict[str, Any], baselines: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    """The issue's target at the largest budget, on the exact truth: BTS's mean IE_acc minus the better trivial
    baseline (all empty; behind BTS's own depth, mean over seeds) >= 0.03, with BTS's mean IE_rec >= 0.4. The same
    comparison under the papers' ``bts`` protocol is under ``"bts"`` (reported beside it; the target is the exact
    one's)."""
    bts = [info for info in runs.values() if info["model"] == "bts"]
    if not bts:
        return {"met": None, "why": "no BTS run"}
    result = _comparison(bts, baselines, steps, "exact")
    return {**result, "bts": _comparison(bts, baselines, steps, "bts")}


def _comparison(bts: list[dict[str, Any]], baselines: list[dict[str, Any]], steps: int, group: str) -> dict[str, Any]:
    ie_acc = _mean([_at(i, steps, group, "ie_acc") for i in bts])
    ie_rec = _mean([_at(i, steps, group, "ie_rec") for i in bts])
    empty = next(b.get(group, {}).get("ie_acc", math.nan) for b in baselines if b["name"].startswith("all empty"))
    behind = _mean([b.get(group, {}).get("ie_acc", math.nan) for b in baselines if b["name"].startswith("behind BTS")])
    finite = [v for v in (empty, behind) if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite or not math.isfinite(ie_acc):
        return {"met": None, "why": f"no {group} numbers", "steps": steps}
    best = max(finite)
    met = ie_acc - best >= TARGET_GAIN and ie_rec >= TARGET_IE_REC
    return {"met": bool(met), "steps": steps, "bts_ie_acc": ie_acc, "bts_ie_rec": ie_rec,
            "best_trivial_ie_acc": best, "gain": ie_acc - best}


def learning_curves(out: Path, summary: dict[str, Any]) -> Path:
    """``<out>/learning_curves.png``: exact IE_acc, IE_rec and occluded AUC against steps (every seed thin, the
    mean thick), with the all-empty baseline and the best ceiling as horizontal lines."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import matplotlib.ticker  # noqa: PLC0415

    panels = (("ie_acc", "IE_acc (exact truth)"), ("ie_rec", "IE_rec (exact truth)"),
              ("occluded_auc", "occluded AUC (exact truth)"))
    colors = {"bts": "tab:blue", "supervised": "tab:red"}
    others = iter(("tab:orange", "tab:purple", "tab:brown", "tab:olive", "tab:cyan"))
    for model in dict.fromkeys(info["model"] for info in summary["runs"].values()):
        colors.setdefault(model, next(others, "tab:gray"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8))
    budgets = summary["budgets"]
    for ax, (key, title) in zip(axes, panels):
        for model in dict.fromkeys(info["model"] for info in summary["runs"].values()):
            infos = [i for i in summary["runs"].values() if i["model"] == model]
            for info in infos:
                ax.plot(budgets, [_at(info, s, "exact", key) for s in budgets], color=colors[model], alpha=0.35,
                        lw=1, marker=".")
            ax.plot(budgets, [_mean([_at(i, s, "exact", key) for i in infos]) for s in budgets],
                    color=colors[model], lw=2.2, marker="o", label=f"{infos[0]['label']} (mean of {len(infos)})")
        if key != "occluded_auc":
            empty = next(b for b in summary["baselines"] if b["name"].startswith("all empty"))
            ax.axhline(empty["exact"][key], color="black", ls="--", lw=1, label="all empty")
            behind = [b["exact"][key] for b in summary["baselines"] if b["name"].startswith("behind BTS")]
            if behind:
                ax.axhline(_mean(behind), color="tab:gray", ls=":", lw=1.2, label="behind BTS's depth")
            ceilings = [b for b in summary["baselines"] if "ceiling" in b["name"]]
            if ceilings:
                best = max(ceilings, key=lambda b: b["exact"]["ie_acc"])
                ax.axhline(best["exact"][key], color="tab:green", ls="-.", lw=1,
                           label=best["name"].replace(" (ceiling)", ""))
        else:
            ax.axhline(0.5, color="black", ls="--", lw=1, label="chance")
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training steps")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    target = out / "learning_curves.png"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


def _f(v: Any) -> str:
    return "n/a" if not isinstance(v, (int, float)) or not math.isfinite(v) else f"{v:.3f}"


def markdown(summary: dict[str, Any]) -> str:
    budgets = summary["budgets"]
    columns = [("exact", "ie_acc"), ("exact", "ie_rec"), ("exact", "o_acc"), ("exact", "occluded_auc"),
               ("bts", "ie_acc"), ("bts", "ie_rec"), ("bts", "o_acc")]
    rows = [p for i in summary["runs"].values() for p in i["points"]] + summary["baselines"]
    if any("kyn" in row for row in rows):
        columns += [("kyn", "ie_acc"), ("kyn", "ie_rec"), ("kyn", "o_acc")]
    names = {"ie_acc": "IE_acc", "ie_rec": "IE_rec", "o_acc": "O_acc"}
    head = "| model | steps | seeds | " + " | ".join(
        "occluded AUC" if key == "occluded_auc" else f"{names[key]} ({group})" for group, key in columns) + " |"
    sequence = "validation" if summary.get("split") == "val" else "held-out test"
    lines = [f"Per-frame means over the {sequence} sequence's evaluated frames; model rows are the mean over "
             "seeds (each seed's value in brackets).", "", head, "|" + "---|" * (head.count("|") - 1)]
    for model in dict.fromkeys(info["model"] for info in summary["runs"].values()):
        infos = [i for i in summary["runs"].values() if i["model"] == model]
        for s in budgets:
            if not any(p["steps"] == s for i in infos for p in i["points"]):
                continue  # an included run without this budget
            cells = []
            for group, key in columns:
                values = [_at(i, s, group, key) for i in infos]
                cells.append(f"{_f(_mean(values))} ({' / '.join(_f(v) for v in values)})")
            lines.append(f"| {infos[0]['label']} | {s} | {', '.join(str(i['seed']) for i in infos)} | "
                         + " | ".join(cells) + " |")
    for b in summary["baselines"]:
        cells = ["" if key == "occluded_auc" else _f(b.get(group, {}).get(key)) for group, key in columns]
        lines.append(f"| {b['name']} | | | " + " | ".join(cells) + " |")
    v = summary["verdict"]
    if v.get("met") is not None:
        lines += ["", f"Target (BTS at {v['steps']} steps, mean of seeds, exact truth: IE_acc at least "
                      f"{TARGET_GAIN} above the better trivial baseline, IE_rec >= {TARGET_IE_REC}): "
                      f"{'met' if v['met'] else 'not met'} (IE_acc {_f(v['bts_ie_acc'])} vs "
                      f"{_f(v['best_trivial_ie_acc'])}, gain {v['gain']:+.3f}; IE_rec {_f(v['bts_ie_rec'])})"
                      + (" on the validation sequence: a recipe check, not the target's test-sequence result."
                         if summary.get("split") == "val" else ".")]
        b = v.get("bts", {})
        if b.get("met") is not None:
            lines += ["", f"The same comparison under the papers' `bts` protocol (its visibility and truth from "
                          f"the lidar scans; each behind-depth baseline uses its own checkpoint's depth): "
                          f"{'met' if b['met'] else 'not met'} (IE_acc {_f(b['bts_ie_acc'])} vs "
                          f"{_f(b['best_trivial_ie_acc'])}, gain {b['gain']:+.3f}; IE_rec {_f(b['bts_ie_rec'])})."]
    stages = ", ".join(f"{k} {x['seconds'] / 60:.1f} min" if x.get("seconds") is not None else f"{k} not timed"
                       for k, x in summary["stages"].items() if k.startswith("train"))
    lines += ["", f"Machine: {summary['machine']}. Training wall-clock: {stages}.", "",
              "Commands: every row's command is in results.json (`runs.*.train_command`, `runs.*.points[].command`, "
              "`baselines[].command`)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""Reproduce the papers' finding on the synthetic city (issue 7): KDBTS beats BTS in occluded regions.

    python -m scripts.reproduce [--out outputs/reproduce] [--bts-steps 800] [--mvbts-steps 400] [--kdbts-steps 400]

Stages, each a plain command of the project run as a subprocess (so what is reproduced is what users run), with
its wall-clock time recorded in ``<out>/stages.json``:

1. ``train.py -cn bts preset=reproduce`` for as many steps as MVBTS and KDBTS together (the same budget);
2. ``train.py -cn mvbts preset=reproduce``;
3. ``train.py -cn kdbts preset=reproduce kd.teacher_checkpoint=<MVBTS>``, then ``python -m scripts.export_single_view``;
4. ``evaluation/occupancy.py protocol=exact`` (which also scores under ``bts``) for BTS, MVBTS with one input view and
   with its multi-view subsets, KDBTS, and two trivial baselines (all empty; occupied behind BTS's depth), and the
   same rows under ``protocol=kyn`` (KYN's and ViPOcc's protocol: z to 50 m, up to 300 scans, the far invisible area
   cut; ``--no-kyn`` skips it);
   ``evaluation/depth.py`` against the exact depth when that tool is present;
5. ``python -m evaluation.compare`` on the occluded points of the exact truth, for docs/decisions.md §11's questions
   (is the teacher better than BTS where BTS is wrong? do more views help? does the student fit the teacher?);
6. ``<out>/results.json`` and ``<out>/results.md`` (the README tables), ``<out>/curves.png`` (training curves from
   the TensorBoard logs), and a side-by-side video of the three models on the test sequence.

A stage whose output exists is skipped (delete it or pass ``--force`` to redo it), so an interrupted run resumes.
Checkpoints are not committed. ``--smoke`` runs every stage for two steps on one frame (the test suite does this).
``--continue-from <earlier out>``
gives a larger budget without retraining: BTS and MVBTS resume from the earlier run's checkpoints and train on to the
new step counts, KDBTS distils the longer-trained teacher afresh.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from bts.results import cpu_model, write_json

REPO = Path(__file__).resolve().parent.parent

#: The evaluated rows: name, checkpoint stage, extra evaluation arguments.
EVALUATIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("empty (baseline)", "bts", ("prediction=empty",)),
    ("behind BTS depth (baseline)", "bts", ("prediction=behind_depth",)),
    ("BTS", "bts", ()),
    ("MVBTS, mono", "mvbts", ("views=mono",)),
    ("MVBTS, mono_temporal", "mvbts", ("views=mono_temporal",)),
    ("MVBTS, stereo", "mvbts", ("views=stereo",)),
    ("MVBTS, stereo_temporal", "mvbts", ("views=stereo_temporal",)),
    ("KDBTS", "kdbts_single_view", ()),
)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def portable_command(command: list[str]) -> str:
    """``command`` as it is recorded in results files: the interpreter as ``python`` and every path inside the
    repository relative to its root (the commands run from there), so that no machine's folders are committed."""
    root = f"{REPO}{os.sep}"
    return " ".join("python" if arg == sys.executable else arg.replace(root, "") for arg in command)


class Runner:
    """Runs the stages of a pipeline as subprocesses from the repository root, skips a stage whose output exists,
    and records every stage's command and seconds in ``<out>/stages.json``.

    Inside ``with runner.batch():`` stages are queued and run when the block ends, up to ``jobs`` at once: with
    ``jobs > 1`` each gets ``OMP_NUM_THREADS=1`` (unless the environment sets it; two PyTorch processes with two
    threads each on a 2-core machine run several times slower than one at a time) and writes its output to
    ``<out>/logs/<stage>.log`` instead of the console. A block that queued one stage runs it as ``stage()`` would.

    A training stage (``marker``) that was interrupted resumes: when its ``hydra.run.dir`` holds a
    ``checkpoints/last.pt`` and the stage is not done, the run continues from it (``trainer.resume_from``, which
    gives the parameters and step of an uninterrupted run; ``tests/training/test_train_bts.py``). The recorded
    command stays the plain one; ``resumed_from`` names the checkpoint. ``--force`` starts afresh."""

    def __init__(self, out: Path, force: bool, dry_run: bool = False, jobs: int = 1):
        if jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {jobs}")
        self.out, self.force, self.dry_run, self.jobs = out, force, dry_run, jobs
        self.stages_file = out / "stages.json"
        self.stages: dict[str, Any] = json.loads(self.stages_file.read_text()) if self.stages_file.is_file() else {}
        self._queue: list[tuple[str, Path, list[str], bool, list[str]]] | None = None
        self._lock = threading.Lock()

    def stage(self, name: str, done: Path, command: list[str], marker: bool = False) -> None:
        """Run ``command`` unless ``done`` exists. With ``marker``, ``done`` is a file this runner writes after the
        command succeeded (a training run writes its checkpoint before it has finished)."""
        if done.exists() and not self.force:
            print(f"[reproduce] {name}: done already ({done})")
            if name not in self.stages and not self.dry_run:  # done outside this runner: keep its command
                recorded = json.loads(done.read_text()) if marker else {}
                self.stages[name] = recorded if "command" in recorded else {"seconds": None,
                                                                           "command": portable_command(command)}
            return
        recorded = command
        if marker and not self.force:
            command = self._resumed(command)
        if self._queue is not None:
            self._queue.append((name, done, command, marker, recorded))
            return
        self._run(name, done, command, marker, recorded, log=None)

    @staticmethod
    def _resumed(command: list[str]) -> list[str]:
        """``command`` continued from its own run folder's last checkpoint, if an interrupted run left one."""
        run_dirs = [arg.split("=", 1)[1] for arg in command if arg.startswith("hydra.run.dir=")]
        if not run_dirs:
            return command
        last = Path(run_dirs[-1]) / "checkpoints" / "last.pt"
        if not last.is_file():
            return command
        kept = [arg for arg in command if not arg.startswith("trainer.resume_from=")]
        return [*kept, f"trainer.resume_from={last}"]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Queue the stages of the block; run them when it ends, ``jobs`` at a time (independent stages only)."""
        if self._queue is not None:
            raise RuntimeError("Runner.batch() blocks do not nest")
        self._queue = []
        try:
            yield
            queued = self._queue
        finally:
            self._queue = None
        if self.jobs == 1 or len(queued) <= 1:
            for item in queued:
                self._run(*item, log=None)
            return
        logs = self.out / "logs"
        with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
            futures = [pool.submit(self._run, *item, log=logs / f"{_slug(item[0])}.log") for item in queued]
            failed = [e for e in (f.exception() for f in futures) if e is not None]
        if failed:
            raise failed[0]

    def _run(self, name: str, done: Path, command: list[str], marker: bool, recorded: list[str],
             log: Path | None) -> None:
        resumed = command != recorded
        print(f"[reproduce] {name}: {' '.join(command)}" + (f" (log: {log})" if log else "")
              + (" (resuming the interrupted run)" if resumed else ""), flush=True)
        if self.dry_run:
            return
        start = time.perf_counter()
        if log is None:
            subprocess.run(command, cwd=REPO, check=True)
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            env = {"OMP_NUM_THREADS": "1", **os.environ}
            with log.open("w") as f:
                if subprocess.run(command, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT).returncode:
                    raise RuntimeError(f"stage {name!r} failed; its output is in {log}")
        seconds = time.perf_counter() - start
        with self._lock:
            self.stages[name] = {"seconds": round(seconds, 1), "command": portable_command(recorded)}
            if resumed:
                self.stages[name]["resumed_from"] = portable_command([command[-1].split("=", 1)[1]])
            self.out.mkdir(parents=True, exist_ok=True)
            self.stages_file.write_text(json.dumps(self.stages, indent=2))
            if marker:
                done.write_text(json.dumps(self.stages[name], indent=2))
        print(f"[reproduce] {name}: {seconds / 60:.1f} min", flush=True)


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu_model()}, {os.cpu_count()} CPU cores, {gpu}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/reproduce"))
    p.add_argument("--mvbts-steps", type=int, default=None, help="default: 400 (2 with --smoke)")
    p.add_argument("--kdbts-steps", type=int, default=None, help="default: 400 (2 with --smoke)")
    p.add_argument("--bts-steps", type=int, default=None, help="default: MVBTS + KDBTS steps (the same budget)")
    p.add_argument("--continue-from", type=Path, default=None,
                   help="an earlier reproduction folder: BTS and MVBTS resume from its last checkpoints and train on "
                   "to the new step counts (a larger budget without retraining); KDBTS distils the new teacher afresh")
    p.add_argument("--max-frames", type=int, default=None, help="evaluate at most this many test frames")
    p.add_argument("--frame-stride", type=int, default=3, help="evaluate every n-th test frame (neighbours are "
                   "nearly the same view)")
    p.add_argument("--override", action="append", default=[], help="extra hydra override for every training run")
    p.add_argument("--kdbts-override", action="append", default=[],
                   help="extra hydra override for the KDBTS run only (after --override), e.g. trainer.lr=1e-5")
    p.add_argument("--eval-override", action="append", default=[],
                   help="extra override for every occupancy evaluation (evaluation/occupancy.py)")
    p.add_argument("--depth-override", action="append", default=[],
                   help="extra override for every depth evaluation (evaluation/depth.py)")
    p.add_argument("--video-frames", type=int, default=None, help="frames of the side-by-side test-sequence video "
                   "(0: none; default 40, 2 with --smoke)")
    p.add_argument("--render-override", action="append", default=[], help="extra override for render_novel_view.py")
    p.add_argument("--no-kyn", dest="kyn", action="store_false",
                   help="skip the evaluations under protocol=kyn (KYN / ViPOcc; z to 50 m, up to 300 scans)")
    p.add_argument("--smoke", action="store_true", help="two steps per stage, one test frame (for the test suite)")
    p.add_argument("--force", action="store_true", help="redo stages whose output exists")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    a = p.parse_args(argv)
    for key, default, smoke in (("mvbts_steps", 400, 2), ("kdbts_steps", 400, 2), ("video_frames", 40, 2)):
        if getattr(a, key) is None:
            setattr(a, key, smoke if a.smoke else default)
    if a.smoke:
        a.max_frames = 1
        a.override += ["trainer.validate_every=1000", "trainer.checkpoint_every=1000", "trainer.val_samples=1"]
    bts_steps = a.bts_steps if a.bts_steps is not None else a.mvbts_steps + a.kdbts_steps
    out = a.out.resolve()
    runner = Runner(out, a.force, a.dry_run)
    py = sys.executable
    ckpt = {name: out / name / "checkpoints" / "last.pt" for name in ("bts", "mvbts", "kdbts")}
    ckpt["kdbts_single_view"] = out / "kdbts" / "checkpoints" / "last_single_view.pt"

    def train(name: str, steps: int, extra: list[str], own: list[str] = ()) -> None:
        if a.continue_from is not None and name != "kdbts":
            earlier = a.continue_from.resolve() / name / "checkpoints" / "last.pt"
            if not earlier.is_file():
                raise FileNotFoundError(f"--continue-from {a.continue_from}: no {name} checkpoint at {earlier}")
            extra = [*extra, f"trainer.resume_from={earlier}"]
        runner.stage(f"train {name}", out / name / "stage_done.json",
                     [py, "train.py", "-cn", name, "preset=reproduce", f"trainer.max_steps={steps}",
                      f"hydra.run.dir={out / name}", *extra, *a.override, *own], marker=True)

    train("bts", bts_steps, [])
    train("mvbts", a.mvbts_steps, [])
    train("kdbts", a.kdbts_steps, [f"kd.teacher_checkpoint={ckpt['mvbts']}"], a.kdbts_override)
    runner.stage("export kdbts student", ckpt["kdbts_single_view"],
                 [py, "-m", "scripts.export_single_view", str(ckpt["kdbts"]), "--out", str(ckpt["kdbts_single_view"])])

    rows: list[dict[str, Any]] = []
    limit = [f"frame_stride={a.frame_stride}"] + ([f"max_frames={a.max_frames}"] if a.max_frames is not None else [])
    for name, stage, extra in EVALUATIONS:
        folder = out / "eval" / _slug(name)
        runner.stage(f"evaluate {name}", folder / "results.json",
                     [py, "evaluation/occupancy.py", f"checkpoint={ckpt[stage]}", "protocol=exact", *extra, *limit,
                      "save_predictions=true", f"output_dir={folder}", *a.eval_override])
        kyn = folder / "kyn"
        if a.kyn:
            runner.stage(f"kyn {name}", kyn / "results.json",
                         [py, "evaluation/occupancy.py", f"checkpoint={ckpt[stage]}", "protocol=kyn", *extra, *limit,
                          f"output_dir={kyn}", *a.eval_override])
        depth_tool = REPO / "evaluation" / "depth.py"
        if depth_tool.is_file() and "prediction" not in " ".join(extra):
            runner.stage(f"depth {name}", folder / "depth" / "results.json",
                         [py, "evaluation/depth.py", f"checkpoint={ckpt[stage]}", "gt=exact", *extra, *limit,
                          f"output_dir={folder / 'depth'}", *a.depth_override])
        if a.dry_run:
            continue
        result = json.loads((folder / "results.json").read_text())
        row: dict[str, Any] = {"model": name, "checkpoint": str(ckpt[stage].relative_to(out)),
                               "command": runner.stages.get(f"evaluate {name}", {}).get("command", ""),
                               "occupancy": result["metrics"], "frames": result["frames"]}
        if (kyn / "results.json").is_file():
            row["kyn"] = json.loads((kyn / "results.json").read_text())["metrics"].get("kyn")
            row["kyn_command"] = runner.stages.get(f"kyn {name}", {}).get("command", "")
        depth_file = folder / "depth" / "results.json"
        if depth_file.is_file():
            row["depth"] = json.loads(depth_file.read_text()).get("metrics")
        rows.append(row)
    diagnosis = diagnose(runner, py, out)
    curves = None if a.dry_run else training_curves(out, a.continue_from.resolve() if a.continue_from else None)
    videos = side_by_side_video(runner, py, out, ckpt, a.video_frames, a.render_override) if a.video_frames else None
    if a.dry_run:
        return {}
    summary = {"machine": machine(), "steps": {"bts": bts_steps, "mvbts": a.mvbts_steps, "kdbts": a.kdbts_steps},
               "continued_from": str(a.continue_from) if a.continue_from is not None else None,
               "stages": runner.stages, "rows": rows, "diagnosis": diagnosis,
               "curves": str(curves.relative_to(out)),
               "video": str(videos.relative_to(out)) if videos else None}
    write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown(summary))
    print((out / "results.md").read_text())
    return summary


# docs/decisions.md §11's questions, answered point by point on the occluded points of the exact truth
# (python -m evaluation.compare A B): (question, A, B) with A and B names of EVALUATIONS.
DIAGNOSIS = (
    ("is the teacher better than BTS where BTS is wrong?", "BTS", "MVBTS, stereo_temporal"),
    ("do more views help MVBTS?", "MVBTS, mono", "MVBTS, stereo_temporal"),
    ("does the student fit the teacher?", "MVBTS, stereo_temporal", "KDBTS"),
    ("does KDBTS beat BTS?", "BTS", "KDBTS"),
)


def diagnose(runner: Runner, py: str, out: Path) -> list[dict[str, Any]]:
    """Run ``evaluation.compare`` for each question of :data:`DIAGNOSIS`; returns its numbers."""
    found = []
    for question, a, b in DIAGNOSIS:
        target = out / "diagnosis" / f"{_slug(a)}__vs__{_slug(b)}.json"
        runner.stage(f"compare {a} / {b}", target,
                     [py, "-m", "evaluation.compare", str(out / "eval" / _slug(a)), str(out / "eval" / _slug(b)),
                      "--names", a, b, "--json", str(target)])
        if not runner.dry_run:
            found.append({"question": question, **json.loads(target.read_text())})
    return found


CURVE_COLORS = {"bts": "tab:blue", "mvbts": "tab:orange", "kdbts": "tab:green"}
CURVES = (("train/photometric", "photometric loss (train)"), ("train/distillation", "distillation loss (train)"),
          ("val/abs_rel", "depth abs_rel (validation)"))


def read_scalars(folders: list[Path], tags: list[str]) -> dict[str, tuple[list[int], list[float]]]:
    """TensorBoard scalars over the event files of ``folders`` (an earlier run first), each sorted by step; every
    folder is read once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: PLC0415

    points: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    for folder in folders:
        if not folder.is_dir():
            continue
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        logged = events.Tags().get("scalars", [])
        for tag in tags:
            if tag in logged:
                points[tag].update({e.step: e.value for e in events.Scalars(tag)})
    return {tag: (sorted(p), [p[k] for k in sorted(p)]) for tag, p in points.items()}


def earlier_runs(earlier: Path | None, limit: int = 20) -> list[Path]:
    """The chain of runs ``earlier`` continued (each run's ``results.json`` names the one it continued), oldest
    first, ending with ``earlier``."""
    chain: list[Path] = []
    while earlier is not None and len(chain) < limit and earlier not in chain:
        chain.insert(0, earlier)
        results = earlier / "results.json"
        before = json.loads(results.read_text()).get("continued_from") if results.is_file() else None
        earlier = Path(before).resolve() if before else None
    return chain


def training_curves(out: Path, earlier: Path | None) -> Path:
    """``<out>/curves.png``: the training curves of BTS, MVBTS and KDBTS (with the earlier runs', when continued)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    chain = earlier_runs(earlier)
    scalars = {}
    for name in ("bts", "mvbts", "kdbts"):
        runs = [out] if name == "kdbts" else [*chain, out]  # KDBTS distils afresh; the others continue the chain
        scalars[name] = read_scalars([run / name / "tensorboard" for run in runs], [tag for tag, _ in CURVES])
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.6))
    for ax, (tag, title) in zip(axes, CURVES):
        for name, curves in scalars.items():
            steps, values = curves[tag]
            if steps:
                ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=name.upper(),
                        color=CURVE_COLORS[name])
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    target = out / "curves.png"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


VIDEO_MODELS = (("BTS", "bts"), ("MVBTS", "mvbts"), ("KDBTS", "kdbts_single_view"))


def side_by_side_video(runner: Runner, py: str, out: Path, ckpt: dict[str, Path], frames: int,
                       overrides: list[str]) -> Path:
    """A sequence video (input, depth, bird's-eye profile) of the test sequence per model, stacked top to bottom
    (BTS, MVBTS with one view, KDBTS) into ``<out>/videos/side_by_side.mp4``."""
    folder = out / "videos"
    paths = []
    for name, stage in VIDEO_MODELS:
        target = folder / f"{name.lower()}.mp4"
        runner.stage(f"video {name}", target,
                     [py, "render_novel_view.py", f"checkpoint={ckpt[stage]}", "mode=sequence", "input.split=test",
                      f"sequence.count={frames}", f"output.dir={folder / 'render'}", f"output.name={name.lower()}",
                      *overrides])
        if not runner.dry_run and not target.exists():
            written = sorted((folder / "render").rglob(f"{name.lower()}.mp4"))
            if not written:
                raise FileNotFoundError(f"render_novel_view.py wrote no {name.lower()}.mp4 under {folder / 'render'}")
            written[-1].replace(target)
        paths.append(target)
    combined = folder / "side_by_side.mp4"
    if runner.dry_run or (combined.exists() and not runner.force):
        return combined
    import imageio.v3 as iio  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from bts.visualization.video import FrameWriter  # noqa: PLC0415

    clips = [iio.imread(p) for p in paths]
    width = max(c.shape[2] for c in clips)
    with FrameWriter(combined, fps=10) as writer:
        for i in range(min(len(c) for c in clips)):
            writer.write(np.concatenate([np.pad(c[i], ((0, 0), (0, width - c.shape[2]), (0, 0))) for c in clips]))
    print(f"[reproduce] side-by-side video (top to bottom: {', '.join(m for m, _ in VIDEO_MODELS)}): {combined}")
    return combined


def _f(v: Any) -> str:
    return "n/a" if not isinstance(v, (int, float)) or v != v else f"{v:.3f}"


def _depth_values(depth: Any) -> dict[str, Any]:
    """The depth tool's metrics, flat (``abs_rel``, ...) or under one group."""
    if not isinstance(depth, dict):
        return {}
    if "abs_rel" in depth:
        return depth
    for value in depth.values():
        if isinstance(value, dict) and "abs_rel" in value:
            return value
    return {}


def markdown(summary: dict[str, Any]) -> str:
    with_kyn = any("kyn" in r for r in summary["rows"])
    head = ("| model | O_acc (exact) | IE_acc (exact) | IE_rec (exact) | O_acc (bts) | IE_acc (bts) | IE_rec (bts) "
            + ("| O_acc (kyn) | IE_acc (kyn) | IE_rec (kyn) " if with_kyn else "") + "| abs_rel | a1 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in summary["rows"]:
        e, b, k = r["occupancy"].get("exact", {}), r["occupancy"].get("bts", {}), r.get("kyn") or {}
        d = _depth_values(r.get("depth"))
        kyn = f"{_f(k.get('o_acc'))} | {_f(k.get('ie_acc'))} | {_f(k.get('ie_rec'))} | " if with_kyn else ""
        lines.append(f"| {r['model']} | {_f(e.get('o_acc'))} | {_f(e.get('ie_acc'))} | {_f(e.get('ie_rec'))} | "
                     f"{_f(b.get('o_acc'))} | {_f(b.get('ie_acc'))} | {_f(b.get('ie_rec'))} | {kyn}"
                     f"{_f(d.get('abs_rel'))} | {_f(d.get('a1'))} |")
    if summary.get("diagnosis"):
        lines += ["", "| question (A vs B, exact truth, occluded points pooled) | IE_acc A / B | IE_rec A / B "
                  "| occluded AUC A / B | seen-surface density (median) A / B "
                  "| B right where A wrong (occupied / empty truth) | net gain of B | agreement (occluded) "
                  "| density L1 (clipped) |", "|---|---|---|---|---|---|---|---|---|"]
        for d in summary["diagnosis"]:
            ma, mb, w, g = d["models"]["a"], d["models"]["b"], d["where_a_is_wrong"], d["agreement"]
            lines.append(f"| {d['question']} ({d['a']} vs {d['b']}) | {_f(ma['ie_acc'])} / {_f(mb['ie_acc'])} "
                         f"| {_f(ma['ie_rec'])} / {_f(mb['ie_rec'])} "
                         f"| {_f(ma.get('occluded_auc'))} / {_f(mb.get('occluded_auc'))} "
                         f"| {_f(ma.get('seen_surface_sigma_median'))} / {_f(mb.get('seen_surface_sigma_median'))} "
                         f"| {_f(w['b_right'])} ({_f(w['b_right_on_occupied'])} / {_f(w['b_right_on_empty'])}) "
                         f"| {d['occluded_net_gain_of_b']:+.4f} | {_f(g['occluded'])} "
                         f"| {_f(g.get('density_l1_clipped'))} |")
    steps = summary["steps"]
    stages = ", ".join(f"{k} {v['seconds'] / 60:.1f} min" if v.get("seconds") is not None else f"{k} not timed"
                       for k, v in summary["stages"].items())
    lines += ["", f"Machine: {summary['machine']}. Steps: BTS {steps['bts']}, MVBTS {steps['mvbts']}, "
                  f"KDBTS {steps['kdbts']}. Frames: {summary['rows'][0]['frames'] if summary['rows'] else 0}.",
              f"Wall-clock: {stages}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

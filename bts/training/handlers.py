"""Event handlers of the training loop: checkpoints, TensorBoard logs and validation."""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from torch import Tensor
from torch.utils.data import Dataset
from torch.utils.tensorboard import SummaryWriter

from bts.errors import UserError
from bts.metrics import DEPTH_METRICS, depth_metrics
from bts.rendering.renderer import RendererConfig, render_depth
from bts.training.state import save_training_state
from bts.visualization import colorize_depth

log = logging.getLogger(__name__)


class NonFiniteLoss(FloatingPointError, UserError):
    """Training stops at a NaN or Inf loss (or, with a finite loss, NaN or Inf gradients), naming the step, every
    loss term and the parameters with bad gradients; ``saved_to`` is the checkpoint of the last good state."""

    def __init__(self, step: int, terms: dict[str, float], saved_to: Path | None = None,
                 gradients: list[str] | None = None, note: str = ""):
        self.step, self.terms, self.saved_to, self.gradients, self.note = step, terms, saved_to, gradients, note
        shown = ", ".join(f"{k}={v:.6g}" for k, v in terms.items())
        what = "non-finite loss"
        if gradients:
            names = ", ".join(gradients[:5]) + (f" and {len(gradients) - 5} more" if len(gradients) > 5 else "")
            what = f"non-finite gradients ({len(gradients)} parameters: {names})"
        saved = (f"; the state before this step is saved in {saved_to} (resume with trainer.resume_from={saved_to} "
                 "once the cause is fixed: usually a learning rate too large, or a bad input)") if saved_to else ""
        super().__init__(f"{what} at step {step}: {shown}{saved}{note}")


def non_finite_state(*modules_or_states) -> list[str]:
    """Names of the tensors (parameters, buffers, optimizer moments) that hold a NaN or Inf."""
    bad = []
    for item in modules_or_states:
        tensors = item.state_dict() if hasattr(item, "state_dict") else item
        for name, value in _flatten(tensors):
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                bad.append(name)
    return bad


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), value


def _link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` hold the content of ``source``: a hard link (no extra disk) where the file system has them.

    ``target`` stays a file of its own: deleting ``source`` later (rotation of step files) leaves it intact.
    """
    temporary = target.with_name(target.name + ".tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


class CheckpointSaver:
    """Writes ``step_<N>.pt`` and ``last.pt``, keeping only the newest ``keep`` step files; calls ``on_first_save``
    once, after the first file is written."""

    def __init__(self, folder: Path, model_config: dict, parts, keep: int = 3,
                 on_first_save: Callable[[], None] | None = None):
        self.folder, self.model_config, self.parts, self.keep = folder, model_config, parts, keep
        self.on_first_save = on_first_save
        self.saved_at = -1

    def save(self, engine: Engine, name: str) -> Path:
        p = self.parts
        return save_training_state(self.folder / name, model_kind=self.model_config["kind"],
                                   model_config=self.model_config, model=p.model, optimizer=p.optimizer,
                                   scheduler=p.scheduler, engine=engine)

    def __call__(self, engine: Engine) -> None:
        if engine.state.iteration == self.saved_at:  # e.g. the last step is also a checkpoint step
            return
        self.saved_at = engine.state.iteration
        path = self.save(engine, f"step_{engine.state.iteration}.pt")
        _link_or_copy(path, self.folder / "last.pt")
        steps = sorted(self.folder.glob("step_*.pt"), key=lambda f: int(f.stem.split("_")[1]))
        for old in steps[: -self.keep]:
            old.unlink()
        log.info("checkpoint %s", path)
        self._first_saved()

    def _first_saved(self) -> None:
        if self.on_first_save is not None:
            callback, self.on_first_save = self.on_first_save, None
            callback()

    def on_exception(self, engine: Engine, error: BaseException) -> None:
        if isinstance(error, NonFiniteLoss) and error.saved_to is None and not error.note:
            # ignite fires this event once per loop level; save only the first time. The failing step made no
            # update and put BatchNorm's statistics back, so this is the state after the last good step -- unless
            # an earlier step already made it non-finite (a finite loss with NaN statistics), which is not saved.
            p = self.parts
            bad = non_finite_state(p.model, p.optimizer)
            if bad:
                good = self.folder / "last.pt"
                note = (f"; the current state is not finite either ({len(bad)} tensors, e.g. {bad[0]}) and was not "
                        "saved" + (f": the last good checkpoint is {good}" if good.is_file() else ""))
                raise NonFiniteLoss(error.step, error.terms, gradients=error.gradients, note=note) from None
            engine.state.iteration -= 1
            self(engine)  # step_<N-1>.pt and last.pt, as a regular checkpoint (kept as is if N-1 was one)
            raise NonFiniteLoss(error.step, error.terms, self.folder / "last.pt", gradients=error.gradients) from None
        raise error


class StepProgress:
    """A progress bar over the run's steps (``trainer.max_steps``, or epochs x epoch length), starting at the resumed
    step, with the loss: not ignite's per-epoch bar, which reads "Epoch [3/3]: [12/44]" when the run ends early."""

    def __init__(self, total: int):
        self.total = total
        self.bar = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.step)
        engine.add_event_handler(Events.COMPLETED | Events.TERMINATE | Events.EXCEPTION_RAISED, self.close)

    def start(self, engine: Engine) -> None:
        from tqdm import tqdm  # noqa: PLC0415

        self.bar = tqdm(total=self.total, initial=engine.state.iteration, desc="training", unit="step",
                        dynamic_ncols=True)

    def step(self, engine: Engine) -> None:
        if self.bar is not None:
            self.bar.update(engine.state.iteration - self.bar.n)
            output = engine.state.output or {}
            if "total" in output:
                self.bar.set_postfix(loss=f"{output['total']:.4g}", refresh=False)

    def close(self, engine: Engine, *_) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


PATCH_ZOOM = 8  # training patches are shown 8x enlarged in TensorBoard


class Logger:
    """TensorBoard scalars every ``every`` steps, and images of the steps that keep their output."""

    def __init__(self, folder: Path, every: int):
        self.writer = SummaryWriter(str(folder))
        self.every = every
        self.validated_at = -1

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.every), self.log_scalars)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.log_images)
        engine.add_event_handler(Events.COMPLETED, lambda e: self.writer.flush())

    def close(self) -> None:
        """Flush and stop the writer's background thread (the engine calls it when the run ends, also on an
        error), so that nothing writes into the run folder after the run has returned."""
        self.writer.close()

    def log_scalars(self, engine: Engine) -> None:
        for k, v in engine.state.output.items():
            self.writer.add_scalar(f"train/{k}", v, engine.state.iteration)

    def log_images(self, engine: Engine) -> None:
        out = getattr(engine.state, "last_step", None)
        if out is None or getattr(out, "render", None) is None:
            return  # no kept step, or a step that renders no rays (the supervised objective)
        step = engine.state.iteration
        # First patches of the first batch element: ground truth over the reconstruction (per pixel from the colour
        # frame closest to it, as the loss's minimum picks) and the rendered distance, each patch enlarged 8x
        # (nearest neighbour) with a gap between patches, so that an 8x8 patch is visible in TensorBoard.
        target = out.target[0, :8].detach().float().cpu()
        rendered = out.rendered[0, :, :8].detach().float().cpu()  # [F, n, 3, ps, ps]
        closest = (rendered - target).abs().mean(dim=2).argmin(dim=0)  # [n, ps, ps]
        best = rendered.gather(0, closest[None, :, None].expand(1, -1, 3, -1, -1))[0]
        n, ps = target.shape[0], target.shape[-1]
        distance = out.render.distance[0, : n * ps * ps].detach().float().cpu()
        depth = colorize_depth(distance.reshape(n, ps, ps))
        rows = []
        for x in (target, best, depth):
            big = x.repeat_interleave(PATCH_ZOOM, dim=-1).repeat_interleave(PATCH_ZOOM, dim=-2)
            rows.append(torch.cat([torch.nn.functional.pad(p, (1, 1, 1, 1), value=1.0) for p in big], dim=-1))
        self.writer.add_image("train/patches_target_reconstruction_distance", torch.cat(rows, dim=-2).clamp(0, 1),
                              step)

    def log_validation(self, engine: Engine, result: dict) -> None:
        step = engine.state.iteration
        self.validated_at = step
        for k, v in result["metrics"].items():
            if math.isfinite(v):
                self.writer.add_scalar(f"val/{k}", v, step)
        self.writer.add_scalar("val/far_fraction", result["far_fraction"], step)
        self.writer.add_image("val/input", result["image"], step)
        self.writer.add_image("val/depth", result["depth"], step)
        log.info("validation at step %d: %s, far_fraction %.4f", step,
                 ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()), result["far_fraction"])


# A field that has collapsed to empty space renders its pixels where the rays of an empty field end (their last
# sample), the road in front of the car included: ``far_fraction`` is the share of the validation pixels with a lidar
# return (a surface, so the sky never counts) rendered beyond 0.95 of that depth (logged as val/far_fraction).
# Measured on the reproduction's validation sequence (8 frames): 0.00 and 0.05 for healthy BTS runs (abs_rel 0.39,
# 0.38), 0.95 for a run that had collapsed (abs_rel 7.7, which the earlier all-pixels rule at 0.99 missed), 1.00 for
# a complete collapse; a field of the ground alone scores 0.58 on the tests' tiny city.
COLLAPSE_DEPTH = 0.95
COLLAPSE_FRACTION = 0.8


def _empty_field(points: Tensor) -> tuple[Tensor, Tensor]:
    return points.new_zeros(points.shape[:-1]), torch.zeros(points.shape[:-1], dtype=torch.bool, device=points.device)


@torch.no_grad()
def validate(model, dataset: Dataset, renderer: RendererConfig, device: torch.device, num_samples: int) -> dict:
    """Depth metrics of the input view, rendered with ``renderer``, against projected lidar on the first
    ``num_samples`` val datapoints."""
    was_training = model.training
    model.eval()
    totals = {k: 0.0 for k in DEPTH_METRICS}
    count, first, non_finite, far, pixels = 0, None, 0, 0, 0
    for i in range(min(num_samples, len(dataset))):
        item = dataset[i]
        images = item["images"][None].to(device)
        intr, c2w = item["intrinsics"][None].to(device), item["cam_to_world"][None].to(device)
        encoded = model.encode(images, intr, c2w, model.encoder_views(images.shape[1], training=False))
        h, w = images.shape[-2:]
        depth = render_depth(model.density_fn(encoded), intr[:, 0], c2w[:, 0], h, w, renderer)[0]
        non_finite += int((~torch.isfinite(depth)).sum())
        empty = render_depth(_empty_field, intr[:, 0], c2w[:, 0], h, w, renderer)[0]  # where empty space ends
        surface = item["lidar_depth"][0].to(depth.device) > 0  # pixels with a lidar return: a surface, never the sky
        far += int((depth > COLLAPSE_DEPTH * empty)[surface].sum())
        pixels += int(surface.sum())
        metrics = depth_metrics(depth.cpu(), item["lidar_depth"][0])
        if all(math.isfinite(v) for v in metrics.values()):
            count += 1
            for k in totals:
                totals[k] += metrics[k]
        if first is None:
            first = ((item["images"][0] + 1) / 2, colorize_depth(depth.cpu()))
    model.train(was_training)
    if non_finite:
        log.warning("validation: the rendered depth is NaN or Inf at %d pixels of %d images (the model has diverged "
                    "or is diverging; metrics skip those images)", non_finite, min(num_samples, len(dataset)))
    far_fraction = far / max(pixels, 1)
    if far_fraction > COLLAPSE_FRACTION:
        log.warning("validation: at %.1f %% of the pixels with a lidar return the rendered depth lies where the rays "
                    "of an empty field end: the density field has collapsed to empty space, and training rarely "
                    "recovers from it. Start again with a lower trainer.lr or a longer trainer.warmup_steps",
                    100 * far_fraction)
    mean = {k: (v / count if count else float("nan")) for k, v in totals.items()}
    return {"metrics": mean, "image": first[0], "depth": first[1], "far_fraction": far_fraction}

"""Event handlers of the training loop: checkpoints, TensorBoard logs and validation."""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from torch.utils.data import Dataset
from torch.utils.tensorboard import SummaryWriter

from bts.metrics import DEPTH_METRICS, depth_metrics
from bts.rendering.renderer import RendererConfig, render_depth
from bts.training.state import save_training_state
from bts.visualization import colorize_depth

log = logging.getLogger(__name__)


class NonFiniteLoss(FloatingPointError):
    """Training stops at a NaN or Inf loss, naming the step and every loss term."""

    def __init__(self, step: int, terms: dict[str, float], saved_to: Path | None = None):
        self.step, self.terms, self.saved_to = step, terms, saved_to
        shown = ", ".join(f"{k}={v:.6g}" for k, v in terms.items())
        saved = f"; the last good state is saved in {saved_to}" if saved_to else ""
        super().__init__(f"non-finite loss at step {step}: {shown}{saved}")


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
    """Writes ``step_<N>.pt`` and ``last.pt``, keeping only the newest ``keep`` step files."""

    def __init__(self, folder: Path, model_config: dict, parts, keep: int = 3):
        self.folder, self.model_config, self.parts, self.keep = folder, model_config, parts, keep
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

    def on_exception(self, engine: Engine, error: BaseException) -> None:
        if isinstance(error, NonFiniteLoss) and error.saved_to is None:
            # ignite fires this event once per loop level; save only the first time. The parameters are still
            # those of the last good step: the failing step made no update.
            engine.state.iteration -= 1
            raise NonFiniteLoss(error.step, error.terms, self.save(engine, "last.pt")) from None
        raise error


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

    def log_scalars(self, engine: Engine) -> None:
        for k, v in engine.state.output.items():
            self.writer.add_scalar(f"train/{k}", v, engine.state.iteration)

    def log_images(self, engine: Engine) -> None:
        out = getattr(engine.state, "last_step", None)
        if out is None or getattr(out, "render", None) is None:
            return  # no kept step, or a step that renders no rays (the supervised objective)
        step = engine.state.iteration
        # First patches of the first batch element: ground truth over the best reconstruction, and the distance.
        target = out.target[0, :8].detach().float().cpu()
        best = out.rendered[0, 0, :8].detach().float().cpu()
        n, ps = target.shape[0], target.shape[-1]
        distance = out.render.distance[0, : n * ps * ps].detach().float().cpu()
        depth = colorize_depth(distance.reshape(n, ps, ps))
        grid = torch.cat([torch.cat(list(x), dim=-1) for x in (target, best, depth)], dim=-2)
        self.writer.add_image("train/patches_target_reconstruction_distance", grid.clamp(0, 1), step)

    def log_validation(self, engine: Engine, result: dict) -> None:
        step = engine.state.iteration
        self.validated_at = step
        for k, v in result["metrics"].items():
            if math.isfinite(v):
                self.writer.add_scalar(f"val/{k}", v, step)
        self.writer.add_image("val/input", result["image"], step)
        self.writer.add_image("val/depth", result["depth"], step)
        log.info("validation at step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()))


@torch.no_grad()
def validate(model, dataset: Dataset, cfg: dict, device: torch.device, num_samples: int) -> dict:
    """Depth metrics of the input view against projected lidar on the first ``num_samples`` val datapoints."""
    was_training = model.training
    model.eval()
    renderer = RendererConfig(**cfg["renderer"])
    totals = {k: 0.0 for k in DEPTH_METRICS}
    count, first = 0, None
    for i in range(min(num_samples, len(dataset))):
        item = dataset[i]
        images = item["images"][None].to(device)
        intr, c2w = item["intrinsics"][None].to(device), item["cam_to_world"][None].to(device)
        encoded = model.encode(images, intr, c2w, model.encoder_views(images.shape[1], training=False))
        h, w = images.shape[-2:]
        depth = render_depth(model.density_fn(encoded), intr[:, 0], c2w[:, 0], h, w, renderer)[0]
        metrics = depth_metrics(depth.cpu(), item["lidar_depth"][0])
        if all(math.isfinite(v) for v in metrics.values()):
            count += 1
            for k in totals:
                totals[k] += metrics[k]
        if first is None:
            first = ((item["images"][0] + 1) / 2, colorize_depth(depth.cpu()))
    model.train(was_training)
    mean = {k: (v / count if count else float("nan")) for k, v in totals.items()}
    return {"metrics": mean, "image": first[0], "depth": first[1]}

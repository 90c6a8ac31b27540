"""The ignite training loop: one process per device, launched unchanged by ``python`` or ``torchrun``.

``train(cfg, run_dir, build_datasets)`` takes the typed :class:`~bts.training.config.TrainConfig` (the entry point
converts the composed config once: ``TrainConfig.from_dict``) and runs under ``ignite.distributed.Parallel``:
without a backend it is a single process (CPU or one GPU); under ``torchrun`` with ``trainer.backend=nccl`` (or
``gloo`` on CPU) every process trains a shard of each batch and DDP averages the gradients.

The engine knows no dataset: the entry point (``train.py``) hands it ``build_datasets``, a picklable callable
``cfg -> (train_set, val_set)`` that every process calls once.

``loss.objective`` selects the training signal: ``photometric`` (BTS, MVBTS, KDBTS; :mod:`bts.training.objective`)
or ``supervised`` (the upper bound fitted to the synthetic city's exact occupancy; :mod:`bts.training.supervised`,
whose labelled points the data layer adds to the training set, sampled as ``TrainConfig.occupancy_points`` says).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import DeterministicEngine, Engine, Events
from ignite.utils import manual_seed
from torch import nn
from torch.utils.data import Dataset

from bts.models.factory import build_model, model_spec
from bts.numerics import flush_subnormals, flushed_share, set_cpu_memory
from bts.rendering.renderer import RendererConfig
from bts.training.config import AMP_MODES, TrainConfig
from bts.training.handlers import CheckpointSaver, Logger, NonFiniteLoss, StepProgress, validate
from bts.training.objective import ObjectiveConfig, training_step
from bts.training.sampling import SeededItems, SeededRandomSampler
from bts.training.state import restore_training_state
from bts.training.supervised import SupervisedConfig, supervised_step
from bts.training.teacher import load_teacher

log = logging.getLogger(__name__)

# ``cfg -> (train_set, val_set)``: the training set (with the labelled points of the supervised objective,
# ``cfg.occupancy_points``) and the validation set (with lidar depth, for :func:`validate`).
DatasetBuilder = Callable[[TrainConfig], tuple[Dataset, Dataset]]


class Trainee(nn.Module):
    """Model plus objective, so that DDP sees the whole training forward pass in ``forward``."""

    def __init__(self, model: nn.Module, objective: ObjectiveConfig | SupervisedConfig, renderer: RendererConfig):
        super().__init__()
        self.model = model
        self.objective = objective
        self.renderer = renderer

    def forward(self, batch: dict):
        if isinstance(self.objective, SupervisedConfig):
            return supervised_step(self.model, batch, self.objective)
        return training_step(self.model, batch, self.objective, self.renderer)


@dataclass
class TrainingParts:
    trainee: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    engine: Engine


def objective_config(cfg: dict | TrainConfig) -> ObjectiveConfig | SupervisedConfig:
    """The typed objective of a training config (for scripts that compose a config and run single steps)."""
    return (cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).objective


def occupancy_labels_config(cfg: dict | TrainConfig) -> dict | None:
    """The sampling of labelled points for the training set (``loss.points``), or ``None`` when not supervised."""
    return (cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).occupancy_points


def _restore(targets, saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for target, value in zip(targets, saved, strict=True):
            target.copy_(value)


def non_finite_gradients(module: nn.Module) -> list[str]:
    """Names of the parameters whose gradient holds a NaN or Inf (one fused norm per parameter)."""
    named = [(n, p.grad) for n, p in module.named_parameters() if p.grad is not None]
    if not named:
        return []
    norms = torch._foreach_norm([g for _, g in named], math.inf)  # max |g|: inf or NaN only where an entry is
    finite = torch.isfinite(torch.stack(norms)).tolist()
    return [n for (n, _), ok in zip(named, finite, strict=True) if not ok]


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA device with bf16 support, or a CPU with AVX512-BF16 or AMX
    (where the bf16 encoder is 1.3-1.96x faster than float32, BENCHMARKS.md; elsewhere oneDNN emulates bf16 and it
    is slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(bool(check()) for check in checks if check is not None)
    return False


def resolve_amp(amp: str, device: torch.device) -> str:
    """``trainer.amp`` with ``auto`` resolved: ``bf16`` where :func:`native_bf16`, else ``none``."""
    if amp == "auto":
        return "bf16" if native_bf16(device) else "none"
    return amp


def fused_adam(device: torch.device) -> bool:
    """Adam's fused kernel (one pass over all parameters instead of a dozen elementwise kernels per tensor: ResNet-50's
    update 0.13-0.19 s -> 0.04-0.05 s on one CPU thread, BENCHMARKS.md; the same update to float rounding) where
    PyTorch has it."""
    return device.type in ("cpu", "cuda")


def encoder_precision(amp: str, device: torch.device) -> torch.dtype | None:
    """The encoder's compute dtype for ``trainer.amp`` (``ImageEncoder.compute_dtype``): mixed precision covers the
    convolutional encoder only, where the time is; rays, projections, the field and the losses stay float32.
    bf16 runs on CUDA and on CPUs (fast where the CPU has native bf16 kernels: AVX512-BF16 or AMX); fp16 needs CUDA;
    ``auto`` is bf16 where the device has native bf16 kernels and float32 elsewhere (:func:`resolve_amp`)."""
    amp = resolve_amp(amp, device)
    if amp not in AMP_DTYPES:
        raise ValueError(f"trainer.amp must be one of {list(AMP_MODES)}, got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"trainer.amp=fp16 needs a CUDA device (this run is on {device.type}); use bf16 or none")
    return AMP_DTYPES[amp]


def prepare_distillation(model: nn.Module, cfg: TrainConfig, resuming: bool) -> None:
    """KDBTS: a new run starts from the MVBTS teacher's weights (docs/decisions.md §4); the recipe came with the
    constructor (``build_model(..., distillation=cfg.kd.model_recipe())``)."""
    if not resuming:
        load_teacher(model, cfg.model, Path(cfg.kd.teacher_checkpoint))


def needs_imagenet_weights(cfg: TrainConfig) -> bool:
    """Whether building the model for this run loads encoder weights (ImageNet's, or a ``model.encoder.weights``
    file): not for a resume (every weight comes from the checkpoint) nor for a new KDBTS run (encoder and teacher
    come from the MVBTS checkpoint)."""
    if cfg.trainer.resume_from or model_spec(cfg.model["kind"]).distills:
        return False
    encoder = cfg.model["encoder"]
    return bool(encoder.get("pretrained", False)) or encoder.get("weights") is not None


def lr_factor(step_size: int, gamma: float, warmup_steps: int = 0) -> Callable[[int], float]:
    """The learning rate's factor after ``step`` updates: StepLR's ``gamma ** (step // step_size)`` (the original's
    schedule), times a linear warm-up ``(step + 1) / warmup_steps`` over the first ``warmup_steps`` updates."""
    if step_size < 1 or warmup_steps < 0:
        raise ValueError(f"trainer.lr_step must be >= 1 and trainer.warmup_steps >= 0, got {step_size} and "
                         f"{warmup_steps}")

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
        return warm * gamma ** (step // step_size)

    return factor


def build_parts(cfg: TrainConfig, device: torch.device) -> TrainingParts:
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"build_parts takes a TrainConfig (TrainConfig.from_dict(cfg)), got {type(cfg).__name__}")
    distills = model_spec(cfg.model["kind"]).distills
    model = build_model(cfg.model, pretrained=None if needs_imagenet_weights(cfg) else False,
                        distillation=cfg.kd.model_recipe() if distills else None)
    if distills:
        prepare_distillation(model, cfg, resuming=bool(cfg.trainer.resume_from))
    t = cfg.trainer
    model.encoder.use_fast_path(encoder_precision(t.amp, device), t.channels_last)
    if t.amp == "auto":
        log.info("trainer.amp=auto: the encoder runs in %s on %s", resolve_amp(t.amp, device), device.type)
    trainee = idist.auto_model(Trainee(model, cfg.objective, cfg.renderer))
    optimizer = idist.auto_optim(torch.optim.Adam(trainee.parameters(), lr=t.lr, fused=fused_adam(device)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(t.schedule_step(), t.lr_gamma, t.warmup_steps))
    scaler = torch.amp.GradScaler("cuda", enabled=t.amp == "fp16" and device.type == "cuda")
    clip = t.grad_clip

    def update(engine: Engine, batch: dict) -> dict[str, float]:
        trainee.train()
        batch = _to_device(batch, device)
        # The forward pass updates BatchNorm's running statistics: keep them, so that a failing step leaves the
        # state of the last good step behind (a few thousand numbers; the parameters change only in step()).
        buffers = [b.detach().clone() for b in trainee.buffers()]
        out = trainee(batch)
        terms = {k: float(v) for k, v in out.loss.terms.items()}
        if not all(math.isfinite(v) for v in terms.values()):
            _restore(trainee.buffers(), buffers)
            raise NonFiniteLoss(engine.state.iteration, terms)
        terms.update({k: float(v) for k, v in getattr(out, "metrics", {}).items()})  # logged, not optimised
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out.loss.total).backward()
        if not scaler.is_enabled():  # (fp16's scaler skips steps with non-finite gradients itself)
            bad = non_finite_gradients(trainee)
            if bad:
                _restore(trainee.buffers(), buffers)
                raise NonFiniteLoss(engine.state.iteration, terms, gradients=bad)
        # The global gradient norm, logged every step (a collapsing run shows it first); with trainer.grad_clip
        # the gradients are scaled down to that norm before the update (fp16: after unscaling).
        if scaler.is_enabled():
            scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(trainee.parameters(), clip if clip is not None else math.inf)
        terms["grad_norm"] = float(norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        engine.state.last_step = out if engine.state.iteration % t.image_every == 0 else None
        terms["lr"] = optimizer.param_groups[0]["lr"]
        return terms

    engine = DeterministicEngine(update)
    return TrainingParts(trainee, model, optimizer, scheduler, engine)


def _training(local_rank: int, cfg: TrainConfig, run_dir: Path, build_datasets: DatasetBuilder,
              on_first_checkpoint: Callable[[], None] | None) -> None:
    rank, device = idist.get_rank(), idist.device()
    t = cfg.trainer
    if not flush_subnormals(t.flush_denormal) and t.flush_denormal:
        log.warning("trainer.flush_denormal: only %.0f %% of PyTorch's CPU work flushes subnormal floats (the CPU "
                    "cannot, or worker threads started before the run; bts/numerics.py): the steps run slower",
                    100 * flushed_share())
    if not set_cpu_memory(t.cpu_memory) and device.type == "cpu":
        log.warning("trainer.cpu_memory=%s is not in effect (the C library is not glibc; bts/numerics.py): every "
                    "step faults in its large tensors' pages again and runs slower", t.cpu_memory)
    if t.threads is not None:  # two processes with two threads each on two cores run 3-7x slower than one at a time
        torch.set_num_threads(t.threads)
    manual_seed(cfg.seed + rank)
    train_set, val_set = build_datasets(cfg)
    # Every item loads under a seed of its own, from the run's seed, the epoch and its position (bts/training/
    # sampling.py), so that a resume in the middle of an epoch sees the same data as the uninterrupted run.
    sampler = SeededRandomSampler(len(train_set), seed=cfg.seed)
    workers = cfg.data["num_workers"]
    loader = idist.auto_dataloader(SeededItems(train_set), sampler=sampler, batch_size=t.batch_size,
                                   num_workers=workers, drop_last=True, persistent_workers=workers > 0)
    if len(loader) == 0:
        raise ValueError(f"the train split has {len(train_set)} datapoints, fewer than batch_size={t.batch_size}")
    parts = build_parts(cfg, device)
    engine = parts.engine

    @engine.on(Events.EPOCH_STARTED)
    def _epoch_of_sampler(e: Engine) -> None:  # before the epoch's first batch is drawn, also on resume
        sampler.set_epoch(e.state.epoch)
        if loader.sampler is not sampler and hasattr(loader.sampler, "set_epoch"):  # DDP's proxy around it
            loader.sampler.set_epoch(e.state.epoch)
    saver = CheckpointSaver(run_dir / "checkpoints", cfg.model, parts, keep=t.keep_checkpoints,
                            on_first_save=on_first_checkpoint)
    if t.resume_from:
        restore_training_state(Path(t.resume_from), model_kind=cfg.model["kind"], model_config=cfg.model,
                               model=parts.model, optimizer=parts.optimizer, scheduler=parts.scheduler, engine=engine)
    if rank == 0:
        logger = Logger(run_dir / "tensorboard", t.log_every)
        logger.attach(engine)
        total = t.max_steps if t.max_steps is not None else t.epochs * len(loader)
        StepProgress(total).attach(engine)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=t.checkpoint_every), saver)
        engine.add_event_handler(Events.COMPLETED, saver)

        def run_validation(e: Engine) -> None:
            if e.state.iteration != logger.validated_at:
                logger.log_validation(e, validate(parts.model, val_set, cfg.renderer, device, t.val_samples))

        engine.add_event_handler(Events.ITERATION_COMPLETED(every=t.validate_every) | Events.COMPLETED,
                                 run_validation)
    engine.add_event_handler(Events.EXCEPTION_RAISED, saver.on_exception)
    max_steps = t.max_steps
    if max_steps is not None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(once=max_steps), lambda e: e.terminate())
        epochs = math.ceil(max_steps / len(loader))
    else:
        epochs = t.epochs
    try:
        engine.run(loader, max_epochs=max(epochs, engine.state.epoch))
    finally:
        if rank == 0:
            logger.close()


def train(cfg: TrainConfig, run_dir: Path, build_datasets: DatasetBuilder,
          on_first_checkpoint: Callable[[], None] | None = None) -> None:
    """Train the model ``cfg`` describes on the datasets ``build_datasets(cfg)`` returns (called in every process),
    writing checkpoints and logs into ``run_dir``. ``cfg`` is the typed config (``TrainConfig.from_dict`` of the
    composed one; a plain dict is refused). ``on_first_checkpoint`` (picklable; rank 0 only) is called once, right
    after this run's first checkpoint is written (``train.py`` moves the ``latest`` link then)."""
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"train() takes a TrainConfig (bts.training.config.TrainConfig.from_dict(cfg)), got "
                        f"{type(cfg).__name__}")
    backend = cfg.trainer.backend
    with idist.Parallel(backend=backend) as parallel:
        parallel.run(_training, cfg, run_dir, build_datasets, on_first_checkpoint)

"""Distillation from a perfect teacher: what each distillation loss can carry when the teacher knows everything.

``python -m scripts.perfect_teacher --loss l1|bce|vis_bce --steps N --out DIR [--lr LR] [--seed S] [overrides ...]``

The student is this project's BTS network (the config's encoder and field, trained from scratch); the teacher is the
synthetic city's exact scene, density 1000 inside objects and the ground and 0 elsewhere (raw outputs +1000 and
-30, through softplus). The distilled points are those of KDBTS: every sample point of the ordinary training render
(the loss rays of the input and the side views, 64 samples each), restricted to the input view's frustum; the step
is :func:`~bts.training.objective.training_step` with the photometric and smoothness weights at 0, so the only
gradient is the distillation term of ``--loss`` (:mod:`bts.losses.distillation`). This separates what a loss can
transfer from what a teacher knows: a loss that fails here fails with any teacher.

Writes ``DIR/config.yaml`` (the composed config) and ``DIR/checkpoints/step_<N>.pt`` every ``--checkpoint-every``
steps as ordinary BTS checkpoints, so ``python evaluation/occupancy.py checkpoint=DIR/checkpoints/step_<N>.pt``
scores them like any model, and ``DIR/log.json`` (the loss and the share of distilled points the student predicts
occupied, per logged step).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import ClassVar

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bts.checkpoints.format import save_checkpoint
from bts.fields import DensityOutput
from bts.losses import LossWeights
from bts.losses.distillation import KD_LOSSES, RAY_LOSSES, DistillationAccumulator, distillation_loss
from bts.models import build_model
from bts.numerics import flush_subnormals, set_cpu_memory
from bts.rendering.renderer import RendererConfig
from bts.training.engine import objective_config
from bts.training.objective import training_step
from datasets.factory import build_dataset, dataset_root
from scripts.oracle_loss import OracleField, compose_config

OCCUPIED_RAW, EMPTY_RAW = 1000.0, -30.0  # softplus: 1000 and ~1e-13


class PerfectTeacherStudent(nn.Module):
    """A BTS model trained through the KDBTS interface (``training_density``) against the exact scene (the
    ``truth`` field of :class:`scripts.oracle_loss.OracleField`, which also holds the batch's sequences and poses).
    It is a :class:`~bts.models.contract.DistillingModel`, so the training step renders through
    :meth:`training_density` and adds the distillation term."""

    kind: ClassVar[str] = "bts"  # what its checkpoints hold: the student alone

    def __init__(self, student: nn.Module, root: Path, loss: str):
        super().__init__()
        self.student, self.loss = student, loss
        self.teacher = OracleField(root, "truth")
        self.occupied_share = DistillationAccumulator()

    def encoder_views(self, num_views: int, training: bool) -> list[int]:
        return self.student.encoder_views(num_views, training)

    def encode(self, *args, **kwargs):
        return self.student.encode(*args, **kwargs)

    def density(self, points: Tensor, encoded) -> DensityOutput:
        return self.student.density(points, encoded)

    def density_fn(self, encoded):
        return self.student.density_fn(encoded)

    def teacher_raw(self, points: Tensor) -> Tensor:
        occupied = torch.stack([self.teacher.sigma_of(points[i].detach(), i) > 0 for i in range(points.shape[0])])
        return torch.where(occupied, OCCUPIED_RAW, EMPTY_RAW).to(points.device)

    def training_density(self, points: Tensor, encoded, kd: DistillationAccumulator, **_) -> DensityOutput:
        out = self.student.density(points, encoded)
        inside = ~out.invalid
        if self.loss in RAY_LOSSES:  # the ray loss needs whole rays: the step computes it after the render
            kd.keep(out.raw, self.teacher_raw(points), inside, self.loss)
        else:
            kd.add(distillation_loss(out.raw, self.teacher_raw(points), self.loss)[inside])
        self.occupied_share.add((out.sigma.detach() > 0.5)[inside].float())
        return out


def train(cfg: dict, loss: str, steps: int, out: Path, lr: float, seed: int, checkpoint_every: int,
          log=print) -> list[dict[str, float]]:
    torch.manual_seed(seed)
    dataset = build_dataset(cfg["data"], cfg["paths"], "train", train=True)
    root = dataset_root(cfg["data"], cfg["paths"])
    objective = objective_config(cfg)
    objective = dataclasses.replace(objective, weights=LossWeights(photometric=0.0, smoothness=0.0, distillation=1.0,
                                                                   occupancy=0.0))
    renderer = RendererConfig(**cfg["renderer"])
    model = PerfectTeacherStudent(build_model(cfg["model"]), root, loss).train()
    opt = torch.optim.Adam(model.student.parameters(), lr=lr)
    loader = DataLoader(dataset, batch_size=cfg["trainer"]["batch_size"], shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed), num_workers=0)
    generator = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    history: list[dict[str, float]] = []
    step, start = 0, time.perf_counter()
    while step < steps:
        for batch in loader:
            model.teacher.sequences = [dataset.datapoints[int(j)][0] for j in batch["index"]]
            model.teacher.world_from_view0 = batch["world_from_view0"].double()
            model.occupied_share = DistillationAccumulator()
            result = training_step(model, batch, objective, renderer, generator=generator)
            opt.zero_grad()
            result.loss.total.backward()
            opt.step()
            step += 1
            if step % 10 == 0 or step == 1:
                row = {"step": step, "loss": float(result.loss.terms["distillation"]),
                       "predicted_occupied": float(model.occupied_share.mean()),
                       "seconds": time.perf_counter() - start}
                history.append(row)
                log(json.dumps(row))
            if step % checkpoint_every == 0 or step == steps:
                save_checkpoint(out / "checkpoints" / f"step_{step}.pt", model_kind="bts", config=cfg["model"],
                                model=model.student.state_dict())
            if step == steps:
                break
    (out / "log.json").write_text(json.dumps({"loss": loss, "steps": steps, "lr": lr, "seed": seed,
                                              "history": history}, indent=1) + "\n")
    return history


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loss", choices=[*sorted(KD_LOSSES), *RAY_LOSSES], required=True)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("overrides", nargs="*", default=["preset=reproduce"],
                   help="config overrides of the bts config (default: preset=reproduce)")
    a = p.parse_args(argv)
    cfg = compose_config(a.overrides)
    set_cpu_memory(cfg["trainer"]["cpu_memory"])  # as train.py does (bts/numerics.py)
    flush_subnormals(cfg["trainer"]["flush_denormal"])
    if cfg["data"].get("name") != "synthetic":
        p.error("the perfect teacher is the synthetic city's exact scene: use data=synthetic (or a preset on it)")
    cfg["data"]["num_workers"] = 0
    train(cfg, a.loss, a.steps, a.out, a.lr, a.seed, a.checkpoint_every, log=lambda s: print(s, file=sys.stderr))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

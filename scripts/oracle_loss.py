"""Does the training loss prefer the true scene? The self-supervised objective scored on oracle density fields.

``python -m scripts.oracle_loss [--batches N] [--seed S] [--fields truth,thin,shadow] [--checkpoint CKPT ...]
[--out FILE] [overrides ...]``

A density field that the photometric loss scores no worse than the true scene can be a minimum of training: if a
field that holds only the surfaces the input view sees (``thin``, what BTS predicts on the synthetic city) scores as
well as the truth, the loss gives hidden space no direction, however long one trains. This script builds, from the
synthetic city's exact geometry, density fields that agree with the truth wherever the input view sees and differ
behind its surfaces, and scores each with the project's own :func:`~bts.training.objective.training_step` on the same
batches and the same random draws (frame split, flip, patches, depth jitter: one generator, re-seeded per field):

- ``truth``: density 1000 inside every object and the ground, 0 elsewhere (the exact scene);
- ``thin``: objects only a ``--thin-m`` (0.3 m) skin deep behind each surface the input view sees, hidden object
  parts empty (the ground complete);
- ``shadow``: the truth plus everything the input view cannot see (an endless shadow behind every surface);
- ``depth_plus_2m``: the truth in the input view's sight; hidden space occupied exactly up to 2 m behind the
  surface (the ground complete).

Besides the loss terms, the photometric term is reported over the patches of the perspective loss frames and of the
fisheye loss frames apart (``photometric_perspective``, ``photometric_fisheye``): which cameras' rays prefer which
field.

``--checkpoint`` adds trained BTS models (eval mode, no gradients) on the same draws: how far a trained model's
loss is from the truth's says whether training stopped short of a better optimum or sits where the loss cannot tell.

Everything else is the training config (``-cn``-like overrides, default ``preset=reproduce``): the fisheye offsets,
the loss frames, 64 samples per ray, the patch and ray counts. Prints, per field, the mean total loss and each term,
and the paired difference to ``truth`` with its standard error over batches; ``--out`` writes them as JSON.
Oracle fields mark a point invalid where the model would (outside the input view's frustum), so the loss's masks are
the model's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bts.config import register_configs
from bts.fields import EncodedViews
from bts.geometry.cameras import PinholeCamera
from bts.geometry.transforms import transform_points
from bts.inference import load_model
from bts.models.views import FISHEYE_VIEWS
from bts.rendering.renderer import RendererConfig
from bts.training.engine import objective_config
from bts.training.objective import training_step
from datasets.factory import build_dataset, dataset_root
from datasets.synthetic import load_scene

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("truth", "thin", "shadow", "depth_plus_2m")
SIGMA = 1000.0


@dataclass
class OracleOutput:
    sigma: Tensor
    invalid: Tensor


class OracleField(nn.Module):
    """A 'model' for :func:`training_step` whose density comes from the exact scene of each batch element's
    sequence; ``variant`` selects what it does behind the surfaces the input view sees (see the module docstring).
    It keeps the model contract (:class:`~bts.models.contract.FieldModel`, as a ``bts`` kind), so the training
    step scores it like a network."""

    kind: ClassVar[str] = "bts"

    def __init__(self, root: Path, variant: str, thin_m: float = 0.3):
        super().__init__()
        if variant not in FIELDS:
            raise ValueError(f"unknown oracle field {variant!r}; known: {FIELDS}")
        self.root, self.variant, self.thin_m = root, variant, thin_m
        self.scenes: dict[str, Any] = {}
        self.sequences: list[str] = []
        self.world_from_view0: Tensor | None = None
        self._dummy = nn.Parameter(torch.zeros(1))

    def scene(self, sequence: str):
        if sequence not in self.scenes:
            self.scenes[sequence] = load_scene(self.root, sequence)
        return self.scenes[sequence]

    def encoder_views(self, num_views: int, training: bool) -> list[int]:
        return [0]

    def encode(self, images, intrinsics, cam_to_world, views, flip: bool = False):
        # The input view's camera, without features; flipping the encoder's input does not change a field that is
        # not predicted.
        return EncodedViews.create(torch.zeros(images.shape[0], 1, 1, 1, 1), intrinsics[:, :1], cam_to_world[:, :1])

    def density_fn(self, encoded: EncodedViews):
        def fn(points: Tensor) -> tuple[Tensor, Tensor]:
            out = self.density(points, encoded)
            return out.sigma, out.invalid

        return fn

    def density(self, points: Tensor, encoded: EncodedViews) -> OracleOutput:
        b, n, _ = points.shape
        cam = transform_points(encoded.world_to_cam[:, 0], points)
        invalid = ~PinholeCamera(encoded.intrinsics[:, 0]).project(cam).valid  # the field's own frustum test
        sigma = torch.zeros(b, n)
        for i in range(b):
            sigma[i] = self.sigma_of(points[i].detach(), i)
        return OracleOutput(sigma=sigma, invalid=invalid)

    def sigma_of(self, points: Tensor, i: int) -> Tensor:
        """Density of this field at points ``[N, 3]`` (input-view frame) of batch element ``i``."""
        scene = self.scene(self.sequences[i])
        world = points.double() @ self.world_from_view0[i, :3, :3].T + self.world_from_view0[i, :3, 3]
        occupied = scene.occupied(world.float())
        if self.variant == "truth":
            return occupied.float() * SIGMA
        origin = self.world_from_view0[i, :3, 3]
        offsets = world - origin
        distance = offsets.norm(dim=-1)
        hit = scene.ray_distance(origin.float(), offsets.float(), max_distance=float(distance.max()) + 1.0).double()
        behind = distance - hit  # > 0: hidden from the input view
        # The ground stays as it is in every field: the question is the objects' hidden extent, not holes in the road.
        ground = world[:, 2].float() < scene.description.ground.height(world[:, 1].float())
        if self.variant == "thin":
            keep = ground | (occupied & (behind <= self.thin_m))
        elif self.variant == "shadow":
            keep = occupied | (behind > 0)
        else:  # depth_plus_2m
            keep = ground | (occupied & (behind <= 0)) | ((behind > 0) & (behind <= 2.0))
        return keep.float() * SIGMA


def compose_config(overrides: list[str]) -> dict:
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base=None):
        cfg = compose(config_name="bts", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def score(cfg: dict, fields: list[str], batches: int, seed: int, thin_m: float, log=print,
          checkpoints: list[Path] | None = None) -> dict[str, Any]:
    torch.manual_seed(seed)  # the loader's augmentations; the step's own draws come from its generator
    dataset = build_dataset(cfg["data"], cfg["paths"], "train", train=True)
    root = dataset_root(cfg["data"], cfg["paths"])
    objective, renderer = objective_config(cfg), RendererConfig(**cfg["renderer"])
    loader = DataLoader(dataset, batch_size=cfg["trainer"]["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(seed), num_workers=0)
    models: dict[str, nn.Module] = {name: OracleField(root, name, thin_m) for name in fields}
    for path in checkpoints or []:
        loaded = load_model(path, kinds=("bts",))
        models[f"model:{path}"] = loaded.model.eval()
    names = list(models)
    per_batch: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    start = time.perf_counter()
    for index, batch in enumerate(loader):
        if index == batches:
            break
        sequences = [dataset.datapoints[int(j)][0] for j in batch["index"]]
        for name, model in models.items():
            if isinstance(model, OracleField):
                model.sequences, model.world_from_view0 = sequences, batch["world_from_view0"].double()
            with torch.no_grad():
                out = training_step(model, batch, objective, renderer,
                                    generator=torch.Generator().manual_seed(seed * 100_003 + index))
            values = {"total": float(out.loss.total), **{k: float(v) for k, v in out.loss.terms.items()},
                      **by_camera(out)}
            per_batch[name].append(values)
        log(f"batch {index + 1}/{batches}: " + ", ".join(f"{n} {per_batch[n][-1]['total']:.5f}" for n in names)
            + f" ({time.perf_counter() - start:.0f} s)")
    return summarise(per_batch)




def by_camera(out) -> dict[str, float]:
    """The photometric term over the loss patches of the perspective views (0-3) and of the fisheye views (4-7)
    apart (each the loss's own masked mean, over that kind's pixels): which cameras prefer which field."""
    per_pixel = out.photometric_per_pixel
    kept = per_pixel.where(~out.ray_mask, per_pixel.new_zeros(()))  # [B, P, ps, ps]
    fisheye = torch.isin(out.patch_views, torch.tensor(FISHEYE_VIEWS))  # [B, P]
    values = {}
    for name, chosen in (("photometric_perspective", ~fisheye), ("photometric_fisheye", fisheye)):
        if bool(chosen.any()):
            values[name] = float(kept[chosen].mean())
    return values


def summarise(per_batch: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Mean of each term per field, and each field's paired difference to ``truth`` (mean, standard error)."""
    out: dict[str, Any] = {"batches": len(next(iter(per_batch.values()))), "fields": {}}
    for name, rows in per_batch.items():
        terms = rows[0].keys()
        entry: dict[str, Any] = {"mean": {t: sum(r[t] for r in rows) / len(rows) for t in terms}}
        if name != "truth" and "truth" in per_batch:
            entry["minus_truth"] = {}
            for t in terms:
                diffs = [r[t] - q[t] for r, q in zip(rows, per_batch["truth"])]
                mean = sum(diffs) / len(diffs)
                var = sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1)
                entry["minus_truth"][t] = {"mean": mean, "stderr": math.sqrt(var / len(diffs)),
                                           "wins_of_truth": sum(d > 0 for d in diffs)}
        out["fields"][name] = entry
    return out


def table(summary: dict[str, Any]) -> str:
    lines = [f"{summary['batches']} batches; loss minus the truth's (mean +- standard error; > 0: the truth scores "
             "better), and in how many batches the truth wins", ""]
    for name, entry in summary["fields"].items():
        mean = entry["mean"]
        text = ", ".join(f"{t} {v:.5f}" for t, v in mean.items())
        lines.append(f"{name} {text}")
        for t, d in (entry.get("minus_truth") or {}).items():
            lines.append(f"    {t}: {d['mean']:+.5f} +- {d['stderr']:.5f} (truth better in "
                         f"{d['wins_of_truth']}/{summary['batches']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fields", default=",".join(FIELDS), help=f"comma-separated, from {FIELDS}")
    parser.add_argument("--thin-m", type=float, default=0.3)
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="a trained BTS checkpoint to score on the same draws (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="write the summary as JSON")
    parser.add_argument("overrides", nargs="*", default=["preset=reproduce"],
                        help="config overrides of the bts config (default: preset=reproduce)")
    args = parser.parse_args(argv)
    fields = [f for f in args.fields.split(",") if f]
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        parser.error(f"unknown field(s) {unknown}; known: {list(FIELDS)}")
    if "truth" not in fields:
        fields.insert(0, "truth")
    cfg = compose_config(args.overrides)
    if cfg["data"].get("name") != "synthetic":
        parser.error("oracle fields need the synthetic city's exact scene: use data=synthetic (or a preset on it)")
    cfg["data"]["num_workers"] = 0
    summary = score(cfg, fields, args.batches, args.seed, args.thin_m, log=lambda s: print(s, file=sys.stderr),
                    checkpoints=args.checkpoint)
    summary["overrides"] = args.overrides
    summary["command"] = "python -m scripts.oracle_loss " + " ".join(sys.argv[1:] if argv is None else argv)
    print(table(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    main()

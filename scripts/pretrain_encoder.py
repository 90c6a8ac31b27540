"""Pretrain the image encoder on the synthetic city's material labels: the offline stand-in for ImageNet weights.

    python scripts/pretrain_encoder.py preset=reproduce [--steps 1500] [--out outputs/encoders/materials.pt]
    python train.py -cn bts preset=reproduce model.encoder.weights=outputs/encoders/materials.pt

The paper's encoder starts from ImageNet weights (``model.encoder.pretrained=true``); they cannot be downloaded on an
offline machine, and from scratch, at a CPU budget, BTS's depth stays a positional prior (the README, "Scene
completion"). This script trains the same encoder (ResNet backbone and upsampling decoder, from the run's
``model.encoder`` config) with a 1x1 classification head on a 2D task that uses no depth and no occupancy: the
material of the surface each pixel sees (:mod:`datasets.synthetic.materials`; 16 materials and sky), per-pixel
cross-entropy. Data: the perspective images (``image_00`` and ``image_01``) of every frame of the **training** split
of the config's dataset, as the loader gives them (the same resolution), with the loader's colour jitter and random
horizontal flips. Validation sequences and the test sequence are never read. The head is dropped; the encoder is
written as an encoder weights file (:mod:`bts.encoders.weights`) that ``model.encoder.weights=FILE`` loads.

Everything after the options is a Hydra override of the ``bts`` training config (the data, the paths and
``model.encoder``; ``trainer.threads`` sets the CPU threads). The file records the options, the config's data node,
the number of images and the final training accuracy and loss.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from bts.config import register_configs  # noqa: E402
from bts.encoders import ImageEncoder  # noqa: E402
from bts.encoders.weights import save_encoder_weights  # noqa: E402
from bts.models.factory import build_encoder  # noqa: E402
from datasets.factory import build_dataset, dataset_root  # noqa: E402
from datasets.kitti_360.augment import ColorJitterParams  # noqa: E402
from datasets.synthetic.ground_truth import SyntheticScene  # noqa: E402
from datasets.synthetic.materials import CLASS_NAMES, NUM_CLASSES, material_image, surface_materials  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CAMERAS = ("image_00", "image_01")


def compose_config(overrides: list[str]) -> dict[str, Any]:
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(config_name="bts", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def labelled_images(cfg: dict[str, Any], log=print) -> tuple[Tensor, Tensor]:
    """Every training-split perspective image ``[N, 3, H, W]`` (``[0, 1]``) and its material labels ``[N, H, W]``.
    Each (sequence, frame) of the split is taken once, whichever side it is listed with."""
    if cfg["data"]["name"] != "synthetic" and cfg["data"]["root"] is not None:
        raise ValueError("material labels exist for the built-in synthetic city only (data=synthetic or a preset "
                         "that selects it), not for a KITTI-360 tree")
    dataset = build_dataset(cfg["data"], cfg["paths"], "train", train=False)
    root = dataset_root(cfg["data"], cfg["paths"])
    h, w = dataset.config.image_size
    images, labels = [], []
    seen: set[tuple[str, int]] = set()
    scenes: dict[str, tuple[SyntheticScene, Tensor]] = {}
    start = time.perf_counter()
    for sequence, row, _side in dataset.datapoints:
        if (sequence, row) in seen:
            continue
        seen.add((sequence, row))
        if sequence not in scenes:
            scene = SyntheticScene(root, sequence)
            scenes[sequence] = (scene, surface_materials(scene))
        scene, table = scenes[sequence]
        for camera in CAMERAS:
            image, pose = dataset.perspective_view(sequence, camera, row)
            images.append(image)
            labels.append(material_image(scene, dataset.intrinsics, pose, h, w, table))
    log(f"{len(images)} labelled images ({len(seen)} frames of {len(scenes)} training sequences, {h}x{w}) in "
        f"{time.perf_counter() - start:.0f} s")
    return torch.stack(images), torch.stack(labels)


def augment(images: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The loader's colour jitter (one draw per image) and a horizontal flip of image and labels with p = 0.5."""
    out_i, out_l = [], []
    for image, label in zip(images, labels, strict=True):
        image = ColorJitterParams.sample().apply(image)
        if torch.rand((), generator=generator) < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        out_i.append(image)
        out_l.append(label)
    return torch.stack(out_i), torch.stack(out_l)


def pixel_accuracy(logits: Tensor, labels: Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


def pretrain(encoder: ImageEncoder, images: Tensor, labels: Tensor, steps: int, batch_size: int, lr: float,
             seed: int, log_every: int = 50, log=print) -> dict[str, Any]:
    """Train ``encoder`` and a 1x1 head with per-pixel cross-entropy; returns the training record (loss and
    accuracy of the last ``log_every`` steps, and the curve)."""
    torch.manual_seed(seed)  # the head's initialisation and the colour jitter
    generator = torch.Generator().manual_seed(seed)
    head = nn.Conv2d(encoder.feature_dim, NUM_CLASSES, kernel_size=1)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    encoder.train()
    curve, window = [], []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        pick = torch.randint(len(images), (batch_size,), generator=generator)
        x, y = augment(images[pick], labels[pick], generator)
        logits = head(encoder(x * 2.0 - 1.0))
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append((float(loss.detach()), pixel_accuracy(logits.detach(), y)))
        if step % log_every == 0 or step == steps:
            mean_loss = sum(v[0] for v in window) / len(window)
            mean_acc = sum(v[1] for v in window) / len(window)
            curve.append({"step": step, "loss": mean_loss, "accuracy": mean_acc})
            log(f"step {step}/{steps}: loss {mean_loss:.4f}, pixel accuracy {mean_acc:.3f} "
                f"({time.perf_counter() - start:.0f} s)")
            window = []
    last = curve[-1]
    return {"final_loss": last["loss"], "final_accuracy": last["accuracy"], "curve": curve,
            "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("outputs/encoders/materials.pt"))
    parser.add_argument("--amp", choices=("none", "bf16"), default="bf16",
                        help="precision of the convolutions (bf16: about 2x faster on CPUs with native bf16)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the bts config, e.g. preset=reproduce")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or not math.isfinite(args.lr) or args.lr <= 0:
        parser.error("--steps and --batch-size must be >= 1 and --lr positive")
    cfg = compose_config(list(args.overrides))
    threads = cfg["trainer"].get("threads")
    if threads is not None:
        torch.set_num_threads(int(threads))
    encoder_cfg = dict(cfg["model"]["encoder"])
    if encoder_cfg.get("pretrained") or encoder_cfg.get("weights") is not None:
        print("note: the pretraining starts from scratch (model.encoder.pretrained and weights are ignored)")
    encoder_cfg.update(pretrained=False, weights=None)
    encoder = build_encoder(encoder_cfg)
    if args.amp == "bf16":
        encoder.use_fast_path(torch.bfloat16, channels_last=True)
    images, labels = labelled_images(cfg)
    counts = torch.bincount(labels.reshape(-1), minlength=NUM_CLASSES).tolist()
    record = pretrain(encoder, images, labels, args.steps, args.batch_size, args.lr, args.seed, args.log_every)
    provenance = {
        "task": "material segmentation of the synthetic city (scripts/pretrain_encoder.py)",
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": cfg["data"], "images": len(images), "classes": list(CLASS_NAMES),
        "class_pixels": counts, **{k: v for k, v in record.items() if k != "curve"},
    }
    encoder.use_fast_path(None, channels_last=False)  # the file holds plain float32 weights in the usual layout
    out = save_encoder_weights(args.out, encoder, encoder_cfg, provenance)
    out.with_suffix(".json").write_text(json.dumps({**provenance, "curve": record["curve"]}, indent=2) + "\n")
    print(f"wrote {out} (final pixel accuracy {record['final_accuracy']:.3f}); train with "
          f"model.encoder.weights={out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

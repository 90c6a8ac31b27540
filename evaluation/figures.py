"""Bird's-eye figures of an occupancy evaluation: input image, prediction, ground truth, visibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from evaluation.protocols import Frame, OccupancyProtocol

EMPTY, OCCUPIED, HIDDEN = (235, 235, 235), (40, 40, 40), (120, 160, 220)


def _grid(values: Tensor, protocol: OccupancyProtocol) -> np.ndarray:
    """``[P]`` -> ``[Z, X]`` (far at the top), the maximum over y slices."""
    x_res, y_res, z_res = protocol.grid_size
    return values.reshape(y_res, z_res, x_res).any(dim=0).numpy()


def _panel(occupied: np.ndarray, hidden: np.ndarray | None, scale: int) -> np.ndarray:
    rgb = np.empty((*occupied.shape, 3), dtype=np.uint8)
    rgb[:] = EMPTY
    if hidden is not None:
        rgb[hidden] = HIDDEN
    rgb[occupied] = OCCUPIED
    return rgb.repeat(scale, 0).repeat(scale, 1)


def occupancy_figure(protocol: OccupancyProtocol, gt: dict[str, Tensor], pred_occupied: Tensor,
                     depth: Tensor | None, frame: Frame, path: Path, scale: int = 3) -> Path:
    """Input image above three bird's-eye panels: prediction, ground truth (occluded cells tinted) and the visible
    cells. Ground truth and visibility are the exact ones for ``exact``, the lidar ones otherwise."""
    if "exact_occupied" in gt:
        truth, visible = gt["exact_occupied"], gt["exact_visible"]
    else:
        from evaluation.protocols import BtsProtocol  # noqa: PLC0415

        assert isinstance(protocol, BtsProtocol)
        _, truth, visible = protocol.bts_metrics(gt, pred_occupied, depth, frame)
    hidden = _grid(~visible, protocol)
    panels = [_panel(_grid(pred_occupied, protocol), None, scale), _panel(_grid(truth, protocol), hidden, scale),
              _panel(np.zeros_like(hidden), hidden, scale)]
    gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
    row = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    image = ((frame.item["images"][0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).mul(255).byte().numpy()
    w = row.shape[1]
    h = max(1, round(image.shape[0] * w / image.shape[1]))
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([image, row], axis=0)).save(path)
    return path


__all__ = ["occupancy_figure"]

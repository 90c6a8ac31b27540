"""Bird's-eye figures of an occupancy evaluation: the input image above four panels of the scored slice.

Panels, each with x (right) and z (forward) in metres of the levelled camera frame, far at the top: the predicted
density (log scale, with its colour bar and the threshold marked), the predicted occupancy, the ground truth with the
occluded cells tinted, and which cells the camera sees. One legend names the colours (occupied, empty, occluded,
visible).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from evaluation.protocols import DepthMap, Frame, OccupancyProtocol

EMPTY, OCCUPIED, HIDDEN, VISIBLE = (0.92, 0.92, 0.92), (0.16, 0.16, 0.16), (0.47, 0.63, 0.86), (0.98, 0.85, 0.55)


def _grid(values: Tensor, protocol: OccupancyProtocol, reduce: str = "any") -> np.ndarray:
    """``[P]`` -> ``[Z, X]`` (far at the top), over the y slices: any (masks) or max (densities)."""
    x_res, y_res, z_res = protocol.grid_size
    grid = values.reshape(y_res, z_res, x_res)
    return (grid.any(dim=0) if reduce == "any" else grid.amax(dim=0)).float().numpy()


def _classes(occupied: np.ndarray, hidden: np.ndarray | None, visible_tint: bool = False) -> np.ndarray:
    rgb = np.empty((*occupied.shape, 3))
    rgb[:] = EMPTY
    if hidden is not None:
        rgb[hidden > 0] = HIDDEN
        if visible_tint:
            rgb[hidden == 0] = VISIBLE
    rgb[occupied > 0] = OCCUPIED
    return rgb


def occupancy_figure(protocol: OccupancyProtocol, gt: dict[str, Tensor], pred_occupied: Tensor,
                     depth: DepthMap | None, frame: Frame, path: Path, sigma: Tensor | None = None,
                     title: str | None = None) -> Path:
    """Write the figure of one frame to ``path`` (PNG). Ground truth and visibility are the exact ones for the
    ``exact`` protocol, the lidar-built ones otherwise; ``sigma`` (the predicted density per point) adds the density
    panel."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.colors import LogNorm  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415

    if "exact_occupied" in gt:
        truth, visible, source = gt["exact_occupied"], gt["exact_visible"], "exact scene"
    else:
        from evaluation.protocols import BtsProtocol  # noqa: PLC0415

        assert isinstance(protocol, BtsProtocol)
        _, truth, visible = protocol.bts_metrics(gt, pred_occupied, depth, frame)
        source = "lidar"
    p = protocol.params
    x0, x1 = min(p.x_range), max(p.x_range)
    z0, z1 = min(p.z_range), max(p.z_range)
    extent = (x0, x1, z0, z1)  # row 0 is the far end (z_range runs far -> near)
    hidden = _grid(~visible, protocol)
    panels = [("prediction", _classes(_grid(pred_occupied, protocol), None)),
              (f"ground truth ({source})", _classes(_grid(truth, protocol), hidden)),
              ("visibility from the camera", _classes(np.zeros_like(hidden), hidden, visible_tint=True))]
    n = len(panels) + (sigma is not None)
    fig = plt.figure(figsize=(2.6 * n + 0.6, 7.2), dpi=100)
    grid = fig.add_gridspec(2, n, height_ratios=[1.0, 2.6], hspace=0.25, wspace=0.45)
    top = fig.add_subplot(grid[0, :])
    image = ((frame.item["images"][0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()
    top.imshow(image)
    top.set_axis_off()
    top.set_title(title or f"{frame.sequence}, frame {frame.frame_id}", fontsize=10)
    col, axes = 0, []
    if sigma is not None:
        ax = fig.add_subplot(grid[1, col])
        axes.append(ax)
        density = np.clip(_grid(sigma.float(), protocol, "max"), 1e-3, None)
        shown = ax.imshow(density, extent=extent, norm=LogNorm(vmin=1e-3, vmax=max(1e2, float(density.max()))),
                          cmap="magma", aspect="auto")
        bar = fig.colorbar(shown, ax=ax, fraction=0.1, pad=0.04)
        bar.ax.axhline(p.sigma_threshold, color="cyan", lw=1.5)
        bar.ax.tick_params(labelsize=7)
        ax.set_title(f"density σ, max over the slice\n(log; cyan: threshold {p.sigma_threshold:g})", fontsize=9)
        col += 1
    for name, rgb in panels:
        ax = fig.add_subplot(grid[1, col])
        axes.append(ax)
        ax.imshow(rgb, extent=extent, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        col += 1
    for ax in axes:
        ax.set_xlabel("x, right (m)", fontsize=8)
        ax.set_ylabel("z, forward (m)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.legend(handles=[Patch(color=OCCUPIED, label="occupied"), Patch(color=EMPTY, label="empty"),
                        Patch(color=HIDDEN, label="occluded (not seen by the camera)"),
                        Patch(color=VISIBLE, label="visible")],
               loc="lower center", ncol=4, fontsize=8, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def depth_figure(image: Tensor, pred: Tensor, gt: Tensor, path: Path, *, min_depth: float = 3.0,
                 max_depth: float = 40.0, title: str | None = None) -> Path:
    """Write one frame's depth figure to ``path`` (PNG): the input image, the ground truth, the prediction (both as
    inverse depth between ``1 / max_depth`` and ``1 / min_depth``, magma, as the videos) and the absolute relative
    error |pred - gt| / gt where there is ground truth (0 to 0.5; grey: none). ``image`` is ``[3, H, W]`` in
    [-1, 1]; ``pred`` and ``gt`` are ``[H, W]`` at one size (<= 0, inf or NaN in ``gt``: no ground truth)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if tuple(pred.shape) != tuple(gt.shape):
        raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ in size")
    gt_np = gt.float().numpy()
    pred_np = pred.float().numpy()
    valid = np.isfinite(gt_np) & (gt_np > 0)
    inverse = {"vmin": 1.0 / max_depth, "vmax": 1.0 / min_depth, "cmap": "magma"}
    error = np.where(valid, np.abs(pred_np - gt_np) / np.where(valid, gt_np, 1.0), np.nan)
    fig, axes = plt.subplots(4, 1, figsize=(7.0, 8.2), dpi=100)
    axes[0].imshow(((image.permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy())
    axes[0].set_title(title or "input image", fontsize=9)
    axes[1].imshow(np.where(valid, 1.0 / np.where(valid, gt_np, 1.0), np.nan), **inverse)
    axes[1].set_title("ground truth (inverse depth)", fontsize=9)
    shown = axes[2].imshow(1.0 / np.clip(pred_np, 1e-3, None), **inverse)
    axes[2].set_title("prediction (inverse depth)", fontsize=9)
    bar = fig.colorbar(shown, ax=axes[1:3], fraction=0.05, pad=0.02)
    ticks = [d for d in (3, 5, 10, 20, 40) if min_depth <= d <= max_depth]
    bar.set_ticks([1.0 / d for d in ticks], labels=[f"{d} m" for d in ticks])
    bar.ax.tick_params(labelsize=7)
    cmap = plt.get_cmap("viridis").with_extremes(bad=(0.6, 0.6, 0.6))
    err = axes[3].imshow(error, vmin=0.0, vmax=0.5, cmap=cmap)
    mean = float(np.nanmean(error)) if valid.any() else float("nan")
    axes[3].set_title(f"absolute relative error (mean {mean:.3f}; grey: no ground truth)", fontsize=9)
    fig.colorbar(err, ax=axes[3], fraction=0.05, pad=0.02).ax.tick_params(labelsize=7)
    for ax in axes:
        ax.set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


__all__ = ["depth_figure", "occupancy_figure"]

"""Writing frames: MP4 through imageio-ffmpeg (H.264, yuv420p) and/or numbered PNG files; composing frames.

H.264 in yuv420p needs even frame sizes, so frames are padded with black to even sizes (never resized).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import imageio.v2 as imageio
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor


def to_uint8(image: Float[Tensor, "3 H W"] | np.ndarray) -> np.ndarray:
    """``[3, H, W]`` floats in ``[0, 1]`` (tensor) to an ``[H, W, 3]`` uint8 array; uint8 arrays pass through."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return image
    t = torch.as_tensor(image).detach().float().cpu()
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def pad_to(image: Float[Tensor, "3 H W"], height: int, width: int) -> Float[Tensor, "3 h w"]:
    """Pad with black at the bottom and on the right to ``height x width``."""
    _, h, w = image.shape
    return torch.nn.functional.pad(image, (0, width - w, 0, height - h))


def pad_centred(image: Float[Tensor, "3 H W"], width: int) -> Float[Tensor, "3 H w"]:
    """Pad with black on both sides to ``width`` columns."""
    left = (width - image.shape[2]) // 2
    return torch.nn.functional.pad(image, (left, width - image.shape[2] - left))


def vstack(*images: Float[Tensor, "3 _ _"]) -> Float[Tensor, "3 h w"]:
    """Stack images top to bottom, padding narrower ones on the right."""
    width = max(i.shape[2] for i in images)
    return torch.cat([pad_to(i, i.shape[1], width) for i in images], dim=1)


def hstack(*images: Float[Tensor, "3 _ _"]) -> Float[Tensor, "3 h w"]:
    """Place images side by side, padding shorter ones at the bottom."""
    height = max(i.shape[1] for i in images)
    return torch.cat([pad_to(i, height, i.shape[2]) for i in images], dim=2)


def label(image: Float[Tensor, "3 H W"], text: str) -> Float[Tensor, "3 H W"]:
    """``image`` with ``text`` in small white letters on a dark box in its top-left corner (PIL's built-in font, about
    10 pixels high); an image too small for the text is returned unchanged."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    _, height, width = image.shape
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    _, _, right, bottom = probe.textbbox((3, 2), text)
    box_w, box_h = right + 3, bottom + 2
    if box_w > width or box_h + 1 > height:
        return image
    box = Image.new("RGB", (box_w, box_h), (20, 20, 20))
    ImageDraw.Draw(box).text((3, 2), text, fill=(255, 255, 255))
    out = image.clone()
    out[:, :box_h, :box_w] = torch.from_numpy(np.asarray(box).copy()).permute(2, 0, 1).to(image).div(255.0)
    return out


def even(frame: np.ndarray) -> np.ndarray:
    """Pad an ``[H, W, 3]`` frame with black to even height and width."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))


class FrameWriter:
    """Write frames to an MP4 (``video``) and/or as ``frames_dir/%05d.png``; use as a context manager.

    Every frame must have the size of the first one (after padding to even sizes).
    """

    def __init__(self, video: Path | None, frames_dir: Path | None = None, fps: float = 10.0):
        if video is None and frames_dir is None:
            raise ValueError("nothing to write: give a video path, a frames folder or both")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.video, self.frames_dir, self.fps = video, frames_dir, fps
        self.count = 0
        self._size: tuple[int, ...] | None = None
        self._writer = None
        if video is not None:
            Path(video).parent.mkdir(parents=True, exist_ok=True)
            self._writer = imageio.get_writer(video, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                              pixelformat="yuv420p", quality=8, macro_block_size=2)
        if frames_dir is not None:
            Path(frames_dir).mkdir(parents=True, exist_ok=True)

    def write(self, frame: Float[Tensor, "3 H W"] | np.ndarray) -> None:
        image = even(to_uint8(frame))
        if self._size is None:
            self._size = image.shape
        elif image.shape != self._size:
            raise ValueError(f"frame {self.count} is {image.shape[1]}x{image.shape[0]}, the first frame was "
                             f"{self._size[1]}x{self._size[0]}")
        if self._writer is not None:
            self._writer.append_data(image)
        if self.frames_dir is not None:
            imageio.imwrite(Path(self.frames_dir) / f"{self.count:05d}.png", image)
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

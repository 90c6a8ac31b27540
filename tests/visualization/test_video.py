"""Writing frames: MP4 files that decode with the right count and size, PNG frames, frame composition."""

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from bts.visualization.colormap import colorize_depth
from bts.visualization.video import FrameWriter, hstack, pad_centred, to_uint8, vstack
from tests.visualization.helpers import decode


def test_mp4_decodes_with_frame_count_and_size(tmp_path):
    frames = [torch.full((3, 21, 35), i / 5.0) for i in range(6)]  # odd sizes: padded to 22 x 36
    with FrameWriter(tmp_path / "v.mp4", tmp_path / "png", fps=10) as writer:
        for f in frames:
            writer.write(f)
    decoded = decode(tmp_path / "v.mp4")
    assert len(decoded) == 6 and decoded[0].shape == (22, 36, 3)
    assert abs(int(decoded[3][5, 5].mean()) - round(0.6 * 255)) < 8  # grey level survives the codec
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert [p.name for p in pngs[:2]] == ["00000.png", "00001.png"] and len(pngs) == 6
    np.testing.assert_array_equal(imageio.imread(pngs[2])[:21, :35], to_uint8(frames[2]))


def test_frames_of_another_size_are_refused(tmp_path):
    with FrameWriter(None, tmp_path / "png") as writer:
        writer.write(torch.zeros(3, 8, 8))
        with pytest.raises(ValueError, match="frame 1 is 10x8"):
            writer.write(torch.zeros(3, 8, 10))
    with pytest.raises(ValueError, match="nothing to write"):
        FrameWriter(None, None)


def test_stacking_pads_with_black():
    a, b = torch.ones(3, 2, 4), torch.ones(3, 3, 2)
    v, h = vstack(a, b), hstack(a, b)
    assert v.shape == (3, 5, 4) and v[:, 2:, 2:].sum() == 0
    assert h.shape == (3, 3, 6) and h[:, 2:, :4].sum() == 0
    c = pad_centred(torch.ones(3, 2, 2), 6)
    assert c.shape == (3, 2, 6) and c[:, :, 2:4].min() == 1 and c[:, :, :2].sum() == 0


def test_depth_colouring_near_is_bright_and_clamped():
    rgb = colorize_depth(torch.tensor([[1.0, 3.0, 40.0, 100.0]]), d_min=3.0, d_max=40.0)
    assert rgb.shape == (3, 1, 4)
    torch.testing.assert_close(rgb[:, 0, 0], rgb[:, 0, 1])  # nearer than d_min: clamped
    torch.testing.assert_close(rgb[:, 0, 2], rgb[:, 0, 3])  # farther than d_max: clamped
    assert rgb[:, 0, 1].sum() > rgb[:, 0, 2].sum()

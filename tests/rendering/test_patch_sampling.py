import pytest
import torch

from bts.geometry import pixel_grid, pixels_to_normalized
from bts.rendering import gather_patches, image_uv, sample_patches, to_patches

H, W, PS = 10, 12, 3


def _draw(seed=0, exclusive=False, num=4000, frames=4, batch=2):
    return sample_patches(num, PS, H, W, frames, torch.Generator().manual_seed(seed), batch_size=batch,
                          exclusive_bound=exclusive)


def test_inclusive_bound_reaches_last_row_and_column():
    p = _draw()
    assert p.top.min() == 0 and p.top.max() == H - PS
    assert p.left.min() == 0 and p.left.max() == W - PS
    assert p.pixels[..., 1].max() == H - 1 and p.pixels[..., 0].max() == W - 1


def test_exclusive_bound_never_reaches_last_row_and_column():
    p = _draw(exclusive=True)
    assert p.top.max() == H - PS - 1 and p.left.max() == W - PS - 1
    assert p.pixels[..., 1].max() == H - 2 and p.pixels[..., 0].max() == W - 2


def test_frames_uniform_and_shapes():
    p = _draw(frames=4, batch=3)
    assert p.frame.shape == p.top.shape == p.left.shape == (3, 4000)
    assert p.pixels.shape == p.uv.shape == (3, 4000, PS * PS, 2)
    counts = torch.bincount(p.frame.flatten(), minlength=4)
    assert counts.numel() == 4 and (counts > 0.2 * p.frame.numel()).all()


def test_seeded_generator_is_deterministic():
    a, b, c = _draw(seed=7), _draw(seed=7), _draw(seed=8)
    for name in ("frame", "top", "left", "pixels", "uv"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.top, c.top)


def test_ray_layout_is_row_major_inside_a_patch():
    p = _draw(num=5, batch=1)
    s = torch.arange(PS * PS)
    expected_rows = p.top[..., None] + s // PS
    expected_cols = p.left[..., None] + s % PS
    assert torch.equal(p.pixels[..., 1].long(), expected_rows)
    assert torch.equal(p.pixels[..., 0].long(), expected_cols)
    assert torch.allclose(p.uv, pixels_to_normalized(p.pixels, W, H))
    # pixel centres: the uv of pixel (i, j) is the pixel_grid entry of that pixel
    grid = pixel_grid(H, W)
    assert torch.allclose(p.uv[0, 0, 0], grid[p.top[0, 0], p.left[0, 0]])


def test_gather_patches_cuts_the_right_pixels():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 4, 3, H, W, generator=gen)
    p = _draw(num=20)
    patches = gather_patches(images, p)
    assert patches.shape == (2, 20, 3, PS, PS)
    for b in range(2):
        for i in range(20):
            f, top, left = p.frame[b, i], p.top[b, i], p.left[b, i]
            assert torch.equal(patches[b, i], images[b, f, :, top:top + PS, left:left + PS])


def test_to_patches_round_trip_and_bad_size():
    values = torch.arange(2 * 9 * 3).float().reshape(1, 2, 9, 3)
    patch = to_patches(values, 3)
    assert patch.shape == (1, 2, 3, 3, 3)
    assert patch[0, 1, 2, 1, 0] == values[0, 1, 3, 2]  # channel 2 of ray (row 1, col 0) = ray 3
    with pytest.raises(ValueError):
        to_patches(values, 2)


def test_bad_sizes_raise():
    with pytest.raises(ValueError):
        sample_patches(1, 11, H, W, 1)
    with pytest.raises(ValueError):
        sample_patches(1, H, H, W, 1, exclusive_bound=True)
    with pytest.raises(ValueError):
        sample_patches(1, 2, H, W, 0)
    # a patch as large as the image fits with the inclusive bound
    assert sample_patches(1, H, H, W, 1).top.item() == 0


def test_image_uv():
    uv = image_uv(H, W)
    assert uv.shape == (H * W, 2)
    assert torch.allclose(uv[0], torch.tensor([-1 + 1 / W, -1 + 1 / H]))
    assert torch.allclose(uv[-1], torch.tensor([1 - 1 / W, 1 - 1 / H]))
    assert torch.allclose(uv[W + 2], pixels_to_normalized(torch.tensor([2.0, 1.0]), W, H))


def test_given_patches_that_do_not_fit_are_refused():
    from bts.rendering.pixels import check_patches

    ok = torch.zeros(1, 2, dtype=torch.long)
    check_patches(ok, ok, ok + W - PS, PS, H, W, num_frames=1)
    with pytest.raises(ValueError, match="one \\[B, P\\] shape"):
        check_patches(ok[0], ok[0], ok[0], PS, H, W, num_frames=1)
    with pytest.raises(ValueError, match="outside the group's 1 loss frames"):
        check_patches(ok + 1, ok, ok, PS, H, W, num_frames=1)
    with pytest.raises(ValueError, match="corner lies outside"):
        check_patches(ok, ok, ok + W - PS + 1, PS, H, W, num_frames=1)

import pytest
import torch

from bts.losses import photometric_error, photometric_loss, ssim
from bts.losses.photometric import SSIM_C1, SSIM_C2, SSIM_WINDOW

DT = torch.float64


def _ssim_reference(x, y):
    """SSIM of one [C, h, w] pair by explicit loops over pixels and the zero-padded 3x3 window."""
    c, h, w = x.shape
    win = torch.tensor(SSIM_WINDOW, dtype=x.dtype)
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    yp = torch.nn.functional.pad(y, (1, 1, 1, 1))
    out = torch.empty_like(x)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                a, b = xp[ch, i:i + 3, j:j + 3], yp[ch, i:i + 3, j:j + 3]
                mx, my = (win * a).sum(), (win * b).sum()
                vx = (win * a * a).sum() - mx * mx
                vy = (win * b * b).sum() - my * my
                cxy = (win * a * b).sum() - mx * my
                out[ch, i, j] = ((2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)
                                 / ((mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2)))
    return out


def test_window_is_the_originals():
    win = torch.tensor(SSIM_WINDOW)
    assert win.sum().item() == pytest.approx(1.0, abs=3e-4)
    assert win[0, 0] == win[2, 2] == pytest.approx(0.0947) and win[1, 1] == pytest.approx(0.1478)
    assert win[0, 1] == win[1, 2] == pytest.approx(0.1183)


def test_ssim_matches_loop_reference():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 5, 6, generator=gen, dtype=DT), torch.rand(2, 3, 5, 6, generator=gen, dtype=DT)
    fast = ssim(x, y)
    for n in range(2):
        assert torch.allclose(fast[n], _ssim_reference(x[n], y[n]), atol=1e-12)


def test_identical_patches_have_ssim_one_and_zero_error():
    x = torch.rand(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=DT)
    assert torch.allclose(ssim(x, x), torch.ones_like(x), atol=1e-12)
    assert photometric_error(x, x).abs().max() < 1e-12
    assert photometric_error(x, x).shape == (2, 4, 8, 8)


def test_error_mixes_ssim_and_l1():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.rand(3, 8, 8, generator=gen, dtype=DT), torch.rand(3, 8, 8, generator=gen, dtype=DT)
    dssim = (1 - _ssim_reference(x, y)).clamp(0, 1) / 2
    expected = 0.85 * dssim.mean(0) + 0.15 * (x - y).abs().mean(0)
    assert torch.allclose(photometric_error(x, y), expected, atol=1e-12)
    # anti-correlated patches: 1 - SSIM > 1 somewhere, and the clamp caps that pixel's SSIM part at 0.5
    anti = 1.0 - x
    assert (1 - ssim(anti, x)).max() > 1.0
    assert photometric_error(anti, x, ssim_weight=1.0).max() <= 0.5 + 1e-12


def test_min_over_frames_picks_the_lowest_error_frame():
    gen = torch.Generator().manual_seed(3)
    target = torch.rand(2, 5, 3, 4, 4, generator=gen, dtype=DT)
    noise_scale = torch.tensor([0.3, 0.02, 0.6, 0.1], dtype=DT)  # frame 1 is closest
    noise = torch.randn(2, 4, 5, 3, 4, 4, generator=gen, dtype=DT)
    rendered = (target[:, None] + noise_scale[None, :, None, None, None, None] * noise).clamp(0, 1)
    out = photometric_loss(rendered, target)
    errors = photometric_error(rendered, target[:, None])
    assert torch.equal(out.per_pixel, errors.min(dim=1).values)
    assert (out.best_frame == 1).float().mean() > 0.95
    assert out.loss.item() == pytest.approx(out.per_pixel.mean().item())
    # per pixel, not per patch: frame 2 copies the target in the left half of every patch
    rendered[:, 2, ..., :2] = target[..., :2]
    rendered[:, 2, ..., 2:] = 1.0 - target[..., 2:]
    out = photometric_loss(rendered, target)
    assert (out.best_frame[..., 0] == 2).all()
    assert (out.best_frame[..., 3] != 2).all()


def test_masked_rays_count_as_zero_but_stay_in_the_denominator():
    gen = torch.Generator().manual_seed(4)
    target = torch.rand(2, 3, 3, 4, 4, generator=gen)
    rendered = torch.rand(2, 2, 3, 3, 4, 4, generator=gen)
    mask = torch.rand(2, 3, 4, 4, generator=gen) > 0.5
    out = photometric_loss(rendered, target, mask)
    assert out.loss.item() == pytest.approx((out.per_pixel[~mask].sum() / mask.numel()).item(), rel=1e-6)
    # whatever a masked pixel renders does not matter, even if it is not finite
    rendered2 = rendered.clone()
    rendered2[:, :, 0, :, 0, 0] = float("nan")
    mask2 = mask.clone()
    mask2[:, 0, :, :] = True  # SSIM spreads the NaN over the whole 3x3 neighbourhood; mask the whole patch
    base = photometric_loss(rendered, target, mask2).loss
    assert torch.allclose(photometric_loss(rendered2, target, mask2).loss, base)
    assert photometric_loss(rendered, target, torch.ones_like(mask)).loss.item() == 0.0


def test_gradients():
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 4, 4, generator=gen, dtype=DT, requires_grad=True)
    y = torch.rand(1, 3, 4, 4, generator=gen, dtype=DT)
    # fast_mode checks random projections of the Jacobian: a full check costs one convolution per input element,
    # and small CPU convolutions are slow when the cores are busy.
    assert torch.autograd.gradcheck(lambda a: ssim(a, y), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: photometric_error(a, y), (x,), fast_mode=True)
    rendered = torch.rand(1, 2, 3, 3, 4, 4, generator=gen, requires_grad=True)
    photometric_loss(rendered, torch.rand(1, 3, 3, 4, 4, generator=gen)).loss.backward()
    assert rendered.grad is not None and rendered.grad.abs().sum() > 0

"""The rendering and loss pieces put together as a BTS training step uses them (docs/method.md §3.3-3.7)."""

import torch

from bts.geometry import PinholeCamera, make_rigid, rotation_y
from bts.losses import LossWeights, combine_losses, edge_aware_smoothness, photometric_loss, weight_guided_mask
from bts.rendering import (
    composite,
    composite_values,
    expected_distance,
    gather_patches,
    patch_rays,
    sample_colours_pinhole,
    sample_distances,
    sample_patches,
    sample_points,
    to_patches,
)

B, H, W, PS, P, K = 2, 12, 20, 4, 6, 16


def _step(sigma_scale, colour_frames_are_loss_frames):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(B, 2, 3, H, W, generator=gen)
    k = torch.tensor([[1.8, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]]).expand(B, 2, 3, 3)
    poses = torch.stack([make_rigid(rotation_y(0.0), torch.zeros(3)),
                         make_rigid(rotation_y(20.0), torch.tensor([1.0, 0.0, 0.0]))]).float().expand(B, 2, 4, 4)

    patches = sample_patches(P, PS, H, W, 2, torch.Generator().manual_seed(1), batch_size=B)
    rays = patch_rays(patches, PinholeCamera(k), poses)
    s = sample_distances(P * PS * PS, K, 3.0, 80.0, jitter=True, generator=gen, batch_shape=(B,))
    points = sample_points(rays.origins, rays.directions, s)  # [B, R, K, 3]
    sigma = (sigma_scale * torch.ones(B, P * PS * PS, K)).requires_grad_()
    weights = composite(sigma, s).weights

    colour_idx = [0, 1] if colour_frames_are_loss_frames else [1]
    sampled = sample_colours_pinhole(points.reshape(B, -1, 3), images[:, colour_idx], k[:, colour_idx],
                                     poses[:, colour_idx])
    nf = len(colour_idx)
    colours = composite_values(weights[:, None], sampled.colours.reshape(B, nf, P * PS * PS, K, 3))
    rendered = to_patches(colours.reshape(B, nf, P, PS * PS, 3), PS)  # [B, F, P, 3, ps, ps]
    mask = weight_guided_mask(weights, sampled.invalid.reshape(B, nf, P * PS * PS, K))
    mask = mask.reshape(B, P, PS, PS)
    target = gather_patches(images, patches)
    distance = to_patches(expected_distance(weights, s).reshape(B, P, PS * PS, 1), PS)[:, :, 0]
    terms = {"photometric": photometric_loss(rendered, target, mask).loss,
             "smoothness": edge_aware_smoothness(distance, target, mask)}
    out = combine_losses(terms, LossWeights())
    out.total.backward()
    return out, sigma.grad, patches


def test_a_frame_explains_itself_exactly():
    # Every loss frame is also a colour frame: each ray projects back onto its own pixel centre at every depth, so
    # the rendered colour equals the ground truth whatever the density, and the photometric loss is zero.
    out, grad, _ = _step(0.05, colour_frames_are_loss_frames=True)
    assert out.terms["photometric"].item() < 1e-6
    assert torch.isfinite(grad).all()


def test_shapes_fit_and_gradients_reach_the_density():
    out, grad, _ = _step(0.05, colour_frames_are_loss_frames=False)
    assert out.terms["photometric"].item() > 0.01
    assert torch.isfinite(out.total) and grad.abs().sum() > 0

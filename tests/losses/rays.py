"""Hand-built loss rays shared by the mask tests."""

from __future__ import annotations

import torch

# One 2x2 patch (4 rays) of 2 samples each: at sample 0 every colour frame shows the target (the true surface), at
# sample 1 its complement. A density of 1e4 on a sample puts all of the ray's weight there.
PATCH = torch.tensor([[0.1, 0.7], [0.4, 0.9]])


def _two_surface_rays(frames: int = 2):
    target = PATCH.expand(1, 1, 3, 2, 2)  # [B, P, 3, ps, ps]
    per_ray = PATCH.reshape(4)  # row-major inside the patch: the step's ray order
    colours = torch.stack([per_ray, 1.0 - per_ray], dim=-1)[..., None].expand(4, 2, 3)  # [R, K, 3]
    colours = colours.expand(1, frames, 4, 2, 3)
    distances = torch.tensor([5.0, 6.0]).expand(1, 4, 2)
    near = torch.tensor([1e4, 0.0]).expand(1, 4, 2)  # all weight on the true surface
    far = torch.tensor([0.0, 1e4]).expand(1, 4, 2)  # all weight on the wrong one (the last sample's cap)
    invalid = torch.zeros(1, frames, 4, 2, dtype=torch.bool)
    return target, colours, distances, near, far, invalid

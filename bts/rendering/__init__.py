"""From pixels to rays to samples, and from densities to rendered colour and distance.

- :mod:`~bts.rendering.pixels`: which pixels become rays (training patches, full images);
- :mod:`~bts.rendering.rays`: rays through those pixels;
- :mod:`~bts.rendering.samplers`: distances of the samples along each ray;
- :mod:`~bts.rendering.compositing`: densities to weights, expected distance and colours;
- :mod:`~bts.rendering.colour`: per-point colours read from the colour-source frames.
"""

from bts.rendering.colour import SampledColours, sample_colours, sample_colours_pinhole
from bts.rendering.compositing import (
    RenderWeights,
    composite,
    composite_reference,
    composite_values,
    distance_to_depth,
    expected_distance,
)
from bts.rendering.pixels import PatchBatch, gather_patches, image_uv, make_patches, sample_patches, to_patches
from bts.rendering.rays import Rays, image_rays, patch_rays, select_frames
from bts.rendering.samplers import sample_distances, sample_points

__all__ = [
    "PatchBatch",
    "Rays",
    "RenderWeights",
    "SampledColours",
    "composite",
    "composite_reference",
    "composite_values",
    "distance_to_depth",
    "expected_distance",
    "gather_patches",
    "make_patches",
    "image_rays",
    "image_uv",
    "patch_rays",
    "sample_colours",
    "sample_colours_pinhole",
    "sample_distances",
    "sample_patches",
    "sample_points",
    "select_frames",
    "to_patches",
]

"""Depth and colour of (novel) views: z-depth semantics, the exact synthetic scene, colour from the input frame."""

import torch

from bts.rendering.renderer import RendererConfig
from bts.visualization.frames import FrameSettings, depth_and_profile, nvs_frames
from bts.visualization.inputs import crop_intrinsics
from bts.visualization.render import ColourSource, render_view


def test_a_fronto_parallel_wall_has_one_z_depth_in_every_pixel():
    """Rays are parameterised by z (docs/method.md §10), so a wall at z = 10 renders 10 in the corners too; with
    distances along unit rays the corners would read 10 / cos(angle)."""
    k = torch.tensor([[1.2, 0.0, 0.05], [0.0, 3.9, -0.2], [0.0, 0.0, 1.0]])

    def wall(points):
        return (points[..., 2] > 10.0).float() * 50.0, torch.zeros(points.shape[:-1], dtype=torch.bool)

    config = RendererConfig(near=3.0, far=80.0, num_samples=64)
    depth = render_view(wall, k, torch.eye(4), 12, 40, config, rays_per_chunk=100).depth
    assert depth.shape == (12, 40)
    assert depth.std() < 1e-4
    assert 10.0 <= depth.mean() <= 10.6  # the first lindisp sample behind the wall


def test_exact_scene_renders_its_true_depth(exact_scene):
    """The lower half of the input view (a crop of the sensor, pixel-aligned with the full image) against the
    synthetic city's exact depth."""
    view, model, scene, frame = exact_scene
    h, w = view.size
    lower = crop_intrinsics(view.intrinsics[0], w, h, (h // 2, 0, h - h // 2, w))
    config = RendererConfig(near=3.0, far=27.0, num_samples=48, lindisp=False)
    depth = render_view(model.density_fn(None), lower, view.cam_to_world[0], h - h // 2, w, config).depth
    truth = scene.depth("image_00", frame)[h // 2:]
    mask = torch.isfinite(truth) & (truth > 4.0) & (truth < 25.0)
    assert mask.float().mean() > 0.3
    error = (depth[mask] - truth[mask]).abs()
    assert error.median() < 0.4 and (error < 0.8).float().mean() > 0.9  # one sample step is 0.5 m


def test_input_pose_reproduces_the_input_colours(exact_scene):
    """Every sample of a pixel's ray projects onto that pixel's centre, so at the input pose the composited colour
    is the input image itself."""
    view, model, _, _ = exact_scene
    h, w = view.size
    config = RendererConfig(near=3.0, far=80.0, num_samples=4)
    out = render_view(model.density_fn(None), view.intrinsics[0], view.cam_to_world[0], h, w, config,
                      ColourSource(view.rgb()[None], view.intrinsics[:1], view.cam_to_world[:1]))
    torch.testing.assert_close(out.rgb, view.rgb(), atol=1e-4, rtol=0)


def test_frame_layouts(exact_scene):
    view, model, _, _ = exact_scene
    h, w = view.size
    s = FrameSettings(RendererConfig(num_samples=4), layout="horizontal")
    frames = list(nvs_frames(model, view, torch.eye(4)[None].numpy(), s))
    assert len(frames) == 1 and frames[0].shape == (3, h, 2 * w)
    torch.testing.assert_close(frames[0][:, :, :w], view.rgb(), atol=1e-4, rtol=0)
    still = depth_and_profile(model, view, FrameSettings(RendererConfig(num_samples=4)), None)
    assert still.shape == (3, 2 * h, w)


def test_labels_caption_each_part_only_when_asked(exact_scene):
    from bts.visualization.video import label

    image = torch.full((3, 40, 120), 0.5)
    captioned = label(image, "depth")
    changed = (captioned != image).any(0)
    assert changed[:14, :40].any() and not changed[16:].any() and not changed[:, 60:].any()  # top-left corner only
    assert torch.equal(label(torch.full((3, 6, 8), 0.5), "too long for this"), torch.full((3, 6, 8), 0.5))
    view, model, _, _ = exact_scene
    bare = depth_and_profile(model, view, FrameSettings(RendererConfig(num_samples=4)), None)
    shown = depth_and_profile(model, view, FrameSettings(RendererConfig(num_samples=4), labels=True), None)
    h = view.size[0]
    assert (shown[:, :12] != bare[:, :12]).any() and (shown[:, h:h + 12] != bare[:, h:h + 12]).any()
    assert torch.equal(shown[:, 20:h], bare[:, 20:h])


def test_the_top_down_end_of_the_transition_is_readable(exact_scene):
    """The default near/far of the top-down view, [4, 9] m, put the road (about 6.8 m below the top-down camera) in the
    middle of the colour range; the original's [5, 7] puts it at the dark end, where a trained model's diffuse
    density (depth at the far plane) renders black."""
    from bts.visualization.frames import TransitionSettings, transition_frames

    view, model, _, _ = exact_scene
    s = FrameSettings(RendererConfig(num_samples=32))
    dark = {}
    for near_far in (TransitionSettings().near_far_end, (5.0, 7.0)):
        frames = list(transition_frames(model, view, s, TransitionSettings(num_frames=2, hold=0,
                                                                          near_far_end=near_far)))
        h, w = view.size
        last = frames[-1][:, :, (w - h) // 2:(w + h) // 2]  # the top-down view, without its black padding
        dark[near_far] = float(torch.quantile(last.amax(0).flatten(), 0.25))  # the road fills most of the view
    assert dark[(4.0, 9.0)] > 0.4 and dark[(5.0, 7.0)] < 0.25, dark

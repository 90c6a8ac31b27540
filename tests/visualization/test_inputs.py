"""Own images: intrinsics from numbers or calibration files, crop/resize to the model's size, the training camera."""

import logging

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from bts.geometry import PinholeCamera, normalized_to_pixels
from bts.visualization.inputs import (
    crop_box,
    crop_intrinsics,
    fit_image,
    load_user_image,
    read_calibration_file,
    training_camera,
    user_intrinsics,
)

KITTI360_PERSPECTIVE = """P_rect_00: 5.525543e+02 0.000000e+00 6.820495e+02 0.000000e+00 0.000000e+00 5.525543e+02 \
2.387695e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
R_rect_00: 1 0 0 0 1 0 0 0 1
"""
KITTI_ODOMETRY = """P0: 7.18856e+02 0 6.071928e+02 0 0 7.18856e+02 1.852157e+02 0 0 0 1 0
P2: 7.18856e+02 0 6.071928e+02 4.538225e+01 0 7.18856e+02 1.852157e+02 -1.130887e-01 0 0 1 3.779761e-03
"""


def test_calibration_files(tmp_path):
    (tmp_path / "perspective.txt").write_text(KITTI360_PERSPECTIVE)
    (tmp_path / "calib.txt").write_text(KITTI_ODOMETRY)
    k = read_calibration_file(tmp_path / "perspective.txt")
    assert k[0, 0] == pytest.approx(552.5543) and k[1, 2] == pytest.approx(238.7695)
    assert read_calibration_file(tmp_path / "calib.txt")[0, 2] == pytest.approx(607.1928)
    torch.testing.assert_close(user_intrinsics(1408, 376, calibration=str(tmp_path / "perspective.txt")),
                               training_camera(), atol=1e-5, rtol=0)


def test_bad_calibration_names_the_file_and_line(tmp_path):
    bad = tmp_path / "calib.txt"
    bad.write_text("P2: 1 2 3\n")
    with pytest.raises(ValueError, match=f"{bad}.*P2 must hold 12 numbers"):
        read_calibration_file(bad)
    bad.write_text("K: 1 2 3\n")
    with pytest.raises(ValueError, match="no line P_rect_00 / P2 / P_rect_02"):
        read_calibration_file(bad)
    with pytest.raises(ValueError, match="either camera.calibration or camera.focal"):
        user_intrinsics(10, 10, focal=5.0, calibration=str(bad))


def test_focal_and_principal_point_in_pixels():
    k = user_intrinsics(640, 480, focal=[500.0, 400.0], principal_point=[320.0, 200.0])
    # The principal pixel projects to its own pixel coordinates.
    uv = PinholeCamera(k).project(torch.tensor([[0.0, 0.0, 5.0]])).uv
    torch.testing.assert_close(normalized_to_pixels(uv, 640, 480), torch.tensor([[320.0, 200.0]]))
    assert k[0, 0] == pytest.approx(2 * 500 / 640) and k[1, 1] == pytest.approx(2 * 400 / 480)
    assert user_intrinsics(640, 480) is None
    with pytest.raises(ValueError, match="positive"):
        user_intrinsics(640, 480, focal=[-1.0, 2.0])


def test_crop_keeps_every_point_on_its_pixel():
    k = user_intrinsics(400, 300, focal=350.0, principal_point=[210.0, 140.0])
    box = crop_box(300, 400, (100, 320))  # a wide target: full width, centred rows
    assert box == (87, 0, 125, 400)
    cropped = crop_intrinsics(k, 400, 300, box)
    point = torch.tensor([[1.3, -0.4, 7.0]])
    before = normalized_to_pixels(PinholeCamera(k).project(point).uv, 400, 300)
    after = normalized_to_pixels(PinholeCamera(cropped).project(point).uv, box[3], box[2])
    torch.testing.assert_close(after, before - torch.tensor([[box[1], box[0]]], dtype=torch.float32))


def test_fit_resize_keeps_and_crop_changes_the_intrinsics():
    image = torch.rand(3, 300, 400)
    k = user_intrinsics(400, 300, focal=350.0)
    resized, k_resized = fit_image(image, k, (96, 352), "resize")
    cropped, k_cropped = fit_image(image, k, (96, 352), "crop")
    assert resized.shape == cropped.shape == (3, 96, 352)
    torch.testing.assert_close(k_resized, k)
    assert k_cropped[1, 1] > k[1, 1]  # fewer rows see the same focal length: a narrower vertical field of view
    with pytest.raises(ValueError, match="resize"):
        fit_image(image, k, (96, 352), "pad")


def test_own_image_without_intrinsics_warns_and_assumes_the_training_camera(tmp_path, caplog):
    path = tmp_path / "photo.png"
    iio.imwrite(path, (np.random.default_rng(0).random((120, 200, 3)) * 255).astype(np.uint8))
    with caplog.at_level(logging.WARNING):
        image, k = load_user_image(path, (48, 176))
    assert "assuming the training camera" in caplog.text and "camera.focal" in caplog.text
    assert image.shape == (3, 48, 176) and 0 <= image.min() and image.max() <= 1
    torch.testing.assert_close(k, training_camera())
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _, k_given = load_user_image(path, (48, 176), focal=150.0)
    assert caplog.text == "" and not torch.allclose(k_given, training_camera())
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_user_image(tmp_path / "missing.png", (48, 176))

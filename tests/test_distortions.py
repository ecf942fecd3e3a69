"""Robustness distortions: levels, identity-ish weakest levels, monotone degradation."""

import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio

from lstm_endec_jax.data import distortions


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
  return skimage.data.astronaut()[100:228, 150:278]  # 128x128 RGB uint8, face and background


def test_levels_cover_the_spec_ranges_weakest_first():
  levels = distortions.ROBUSTNESS_LEVELS
  assert set(levels) == set(distortions.STRENGTH_NAMES) == {"jpeg", "blur", "noise"}
  assert levels["jpeg"][0] == 100 and levels["jpeg"][-1] == 50
  assert np.all(np.diff(levels["jpeg"]) < 0)
  assert levels["blur"][0] == 3 and levels["blur"][-1] == 23
  assert all(k % 2 == 1 for k in levels["blur"])
  assert np.all(np.diff(levels["blur"]) > 0) and np.all(np.diff(levels["noise"]) > 0)


@pytest.mark.parametrize("name", sorted(distortions.ROBUSTNESS_LEVELS))
def test_weakest_level_is_nearly_identity_and_psnr_falls_with_strength(photo, name):
  psnr = [
      peak_signal_noise_ratio(photo, distortions.distort(photo, name, strength, seed=1))
      for strength in distortions.ROBUSTNESS_LEVELS[name]
  ]
  assert psnr[0] > 30.0, psnr
  assert np.all(np.diff(psnr) < 0), psnr


@pytest.mark.parametrize("name", sorted(distortions.ROBUSTNESS_LEVELS))
@pytest.mark.parametrize("shape", [(40, 56), (40, 56, 1), (40, 56, 3)])
def test_shape_and_dtype_are_preserved(name, shape):
  image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
  strength = distortions.ROBUSTNESS_LEVELS[name][-1]
  out = distortions.distort(image, name, strength)
  assert out.shape == shape and out.dtype == np.uint8
  assert not np.array_equal(out, image)


def test_noise_is_deterministic_given_the_seed_and_has_the_requested_sigma():
  gray = np.full((64, 64, 3), 128, np.uint8)
  first = distortions.distort(gray, "noise", 11, seed=3)
  assert np.array_equal(first, distortions.distort(gray, "noise", 11, seed=3))
  assert not np.array_equal(first, distortions.distort(gray, "noise", 11, seed=4))
  residual = first.astype(float) - 128
  assert abs(residual.mean()) < 0.5 and residual.std() == pytest.approx(11, rel=0.05)


def test_batch_distortion_does_not_depend_on_batch_size():
  images = np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  whole = distortions.distort_batch(images, "noise", 7, seed=2)
  parts = np.concatenate(
      [
          distortions.distort_batch(images[:2], "noise", 7, seed=2),
          distortions.distort_batch(images[2:], "noise", 7, seed=2, start_index=2),
      ]
  )
  assert np.array_equal(whole, parts)
  assert not np.array_equal(whole[0] - images[0], whole[1] - images[1])
  jpeg = distortions.distort_batch(images, "jpeg", 50)
  assert np.array_equal(jpeg[3], distortions.jpeg_compress(images[3], 50))


def test_gaussian_kernel_follows_opencv():
  assert list(distortions.gaussian_kernel(3)) == [0.25, 0.5, 0.25]
  assert distortions.opencv_sigma(9) == pytest.approx(1.7)
  kernel = distortions.gaussian_kernel(9)
  offsets = np.arange(9) - 4
  expected = np.exp(-(offsets**2) / (2 * 1.7**2))
  np.testing.assert_allclose(kernel, expected / expected.sum())
  with pytest.raises(ValueError, match="odd"):
    distortions.gaussian_kernel(4)


def test_blur_spreads_an_impulse_and_mirrors_the_border_like_opencv():
  image = np.zeros((32, 32), np.uint8)
  image[16, 16] = 200
  image[0, 0] = 200
  kernel = distortions.gaussian_kernel(11)
  blurred = distortions.gaussian_blur(image, 11)
  np.testing.assert_array_equal(blurred[11:22, 11:22], np.rint(200 * np.outer(kernel, kernel)))
  # BORDER_REFLECT_101 does not repeat the corner pixel, so it is not counted twice.
  assert blurred[0, 0] == np.rint(200 * kernel[5] ** 2)
  flat = np.full((20, 20, 3), 77, np.uint8)
  assert np.array_equal(distortions.gaussian_blur(flat, 23), flat)


def test_jpeg_quality_changes_the_file_and_grayscale_works():
  gray = skimage.data.camera()[100:164, 200:264]
  best = peak_signal_noise_ratio(gray, distortions.jpeg_compress(gray, 100))
  worst = peak_signal_noise_ratio(gray, distortions.jpeg_compress(gray, 50))
  assert best > 40 and worst < best - 5


def test_bad_input_is_rejected_with_a_clear_error():
  rgb = np.zeros((8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match="uint8"):
    distortions.distort(rgb.astype(np.float32), "blur", 3)
  with pytest.raises(ValueError, match="1 or 3 channels"):
    distortions.jpeg_compress(np.zeros((8, 8, 4), np.uint8), 90)
  with pytest.raises(ValueError, match="quality"):
    distortions.jpeg_compress(rgb, 0)
  with pytest.raises(ValueError, match="Unknown distortion"):
    distortions.distort(rgb, "rotate", 3)
  with pytest.raises(ValueError, match="sigma"):
    distortions.gaussian_noise(rgb, -1.0)

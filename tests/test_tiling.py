"""Overlapping windows and weighted stitching, with bounded memory for huge images."""

import tracemalloc

import numpy as np
from PIL import Image
import pytest

from lstm_endec_jax.data import image_io
from lstm_endec_jax.inference import tiling


@pytest.mark.parametrize("length", [1, 255, 256, 257, 300, 1536, 2048, 5000])
def test_window_starts_cover_flush_with_at_least_the_overlap(length):
  starts = tiling.window_starts(length, 256, 64)
  assert starts[0] == 0
  assert starts[-1] + 256 == max(length, 256)
  assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:]))
  assert len(set(starts)) == len(starts)


def test_window_starts_rejects_overlap_as_large_as_the_tile():
  with pytest.raises(ValueError, match="overlap"):
    tiling.window_starts(1000, 256, 256)


def test_blend_weights_are_positive_and_fall_to_the_border():
  weights = tiling.blend_weights(256, 64)
  assert weights.min() > 0 and weights[128, 128] == 1
  assert weights[0, 128] < weights[32, 128] < weights[64, 128]


def _red_channel(windows: np.ndarray) -> np.ndarray:
  return windows[..., 0].astype(np.float32) / 255


@pytest.mark.parametrize("shape", [(1, 1), (37, 300), (256, 256), (700, 513)])
def test_consistent_window_predictions_stitch_to_the_same_map(shape):
  image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
  stitched = tiling.predict_tiled(image, _red_channel)
  assert stitched.shape == shape and stitched.dtype == np.float32
  np.testing.assert_allclose(stitched, _red_channel(image), atol=1e-6)


def test_seams_are_blended():
  # Each window answers one constant (its mean brightness) on a left-to-right ramp, so neighbouring
  # windows disagree by about 0.25; a hard stitch would jump by that much where windows meet.
  ramp = np.broadcast_to(np.linspace(0, 255, 1000).astype(np.uint8)[None, :, None], (256, 1000, 3))

  def window_means(windows):
    means = _red_channel(windows).mean(axis=(1, 2))
    return np.broadcast_to(means[:, None, None], windows.shape[:3])

  row = tiling.predict_tiled(np.ascontiguousarray(ramp), window_means)[128]
  assert row[-1] - row[0] > 0.7
  assert np.abs(np.diff(row)).max() < 0.01


def test_huge_image_file_uses_bounded_memory(tmp_path):
  height, width, batch_size = 3000, 4000, 4
  stripes = np.broadcast_to(
      (np.arange(width) % 7 * 30).astype(np.uint8)[None, :, None], (height, width, 3)
  )
  Image.fromarray(np.ascontiguousarray(stripes)).save(tmp_path / "huge.png", compress_level=1)
  image = image_io.read_image(tmp_path / "huge.png")
  batch_sizes = []

  def predict(windows):
    batch_sizes.append(len(windows))
    return np.full(windows.shape[:3], 0.25, np.float32)

  tracemalloc.start()
  try:
    stitched = tiling.predict_tiled(image, predict, batch_size=batch_size)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert sum(batch_sizes) == tiling.num_windows(height, width) == 16 * 21
  assert max(batch_sizes) == batch_size
  np.testing.assert_allclose(stitched, 0.25, rtol=1e-6)
  accumulators = 2 * height * width * 4  # Weighted sum and weight sum, float32.
  window_bytes = 256 * 256 * (3 + 4)  # A uint8 window and its float32 probabilities.
  assert peak < accumulators + 4 * batch_size * window_bytes + (1 << 20)

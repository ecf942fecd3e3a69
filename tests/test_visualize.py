"""Heat-map colours, overlays and the PNG files written for people."""

import matplotlib
import numpy as np
import PIL.Image
import pytest

from lstm_endec_jax.data import distortions
from lstm_endec_jax.evaluation import metrics
from lstm_endec_jax.evaluation import visualize


def _read_png(path) -> np.ndarray:
  with PIL.Image.open(path) as image:
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def test_heatmap_colours_known_pixels():
  probabilities = np.array([[0.0, 0.5, 1.0], [-0.3, 1.7, 0.25]])
  heat = visualize.colorize_heatmap(probabilities)
  assert heat.shape == (2, 3, 3) and heat.dtype == np.uint8
  # jet: dark blue at 0, green in the middle, dark red at 1; out-of-range values are clipped.
  np.testing.assert_array_equal(heat[0, 0], [0, 0, 127])
  np.testing.assert_array_equal(heat[0, 2], [127, 0, 0])
  assert heat[0, 1, 1] > 200 and heat[0, 1, 1] > heat[0, 1, 0] and heat[0, 1, 1] > heat[0, 1, 2]
  np.testing.assert_array_equal(heat[1, 0], heat[0, 0])
  np.testing.assert_array_equal(heat[1, 1], heat[0, 2])
  gray = visualize.colorize_heatmap(probabilities, cmap="gray")
  np.testing.assert_array_equal(gray[0], [[0] * 3, [128] * 3, [255] * 3])
  viridis = matplotlib.colormaps["viridis"](0.25, bytes=True)[:3]
  np.testing.assert_array_equal(
      visualize.colorize_heatmap(probabilities, cmap="viridis")[1, 2], viridis
  )


def test_heatmap_rejects_bad_maps():
  with pytest.raises(ValueError, match=r"\(H, W\)"):
    visualize.colorize_heatmap(np.zeros((2, 4, 4)))
  with pytest.raises(ValueError, match="NaN"):
    visualize.colorize_heatmap(np.full((4, 4), np.nan))


def test_overlay_blends_image_and_heatmap():
  image = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
  probabilities = np.linspace(0, 1, 48).reshape(6, 8)
  heat = visualize.colorize_heatmap(probabilities)
  np.testing.assert_array_equal(visualize.overlay_heatmap(image, probabilities, alpha=0.0), image)
  np.testing.assert_array_equal(visualize.overlay_heatmap(image, probabilities, alpha=1.0), heat)
  half = visualize.overlay_heatmap(image, probabilities).astype(int)
  assert np.all(np.abs(half - (image.astype(int) + heat) / 2) <= 0.5)
  gray = visualize.overlay_heatmap(image[..., 0], probabilities, alpha=0.0)
  np.testing.assert_array_equal(gray, np.repeat(image[..., :1], 3, axis=-1))
  with pytest.raises(ValueError, match="differ in size"):
    visualize.overlay_heatmap(image, probabilities[:5])


def test_roc_png_is_written_with_the_expected_size(tmp_path):
  rng = np.random.default_rng(1)
  masks = (rng.random((2, 16, 16)) < 0.3).astype(np.uint8)
  probs = np.clip(0.3 * masks + 0.7 * rng.random(masks.shape), 0, 1)
  accumulator = metrics.MetricAccumulator(num_bins=64)
  accumulator.update(probs, masks)
  fpr, tpr, _ = accumulator.roc_curve()
  path = tmp_path / "eval" / "roc.png"
  pixels = visualize.write_roc_png(
      path,
      fpr,
      tpr,
      auc=accumulator.result()["pooled/pixel_auc"],
      title="test",
      size_inches=4.0,
      dpi=80,
  )
  assert pixels.shape == (320, 320, 3)
  np.testing.assert_array_equal(_read_png(path), pixels)
  assert np.any(np.all(pixels == [0xD6, 0x27, 0x28], axis=-1))  # the curve, in tab:red


def test_sample_grid_is_written_with_one_row_per_image(tmp_path):
  rng = np.random.default_rng(2)
  images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
  masks = np.zeros((5, 32, 32), np.uint8)
  masks[:, 8:24, 8:24] = 1
  probs = np.where(masks, 1.0, 0.0)
  path = tmp_path / "samples.png"
  pixels = visualize.write_sample_grid(
      path, images, masks, probs, max_images=3, panel_inches=2.0, dpi=50
  )
  assert pixels.shape == (3 * 100, 4 * 100, 3)
  np.testing.assert_array_equal(_read_png(path), pixels)
  jet_red = visualize.colorize_heatmap(np.ones((1, 1)))[0, 0]
  assert np.any(np.all(pixels == jet_red, axis=-1))  # heat map panels show P = 1 in jet red
  with pytest.raises(ValueError, match="same positive number"):
    visualize.write_sample_grid(path, images, masks[:2], probs)


def test_robustness_plot_has_one_panel_per_distortion(tmp_path):
  results = {
      name: {
          strength: {"pooled/pixel_auc": 0.9 - 0.01 * i, "per_image/f1": 0.6 - 0.02 * i}
          for i, strength in enumerate(levels)
      }
      for name, levels in distortions.ROBUSTNESS_LEVELS.items()
  }
  path = tmp_path / "robustness.png"
  pixels = visualize.write_robustness_plot(
      path,
      results,
      clean={"pooled/pixel_auc": 0.92, "per_image/f1": 0.65},
      panel_inches=3.0,
      dpi=60,
  )
  assert pixels.shape == (180, 3 * 180, 3)
  np.testing.assert_array_equal(_read_png(path), pixels)
  with pytest.raises(ValueError, match="No robustness results"):
    visualize.write_robustness_plot(path, {})

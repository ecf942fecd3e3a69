"""Full-resolution prediction in overlapping windows, stitched with weighted blending.

Resizing a 4000x3000 photograph to 256x256 destroys the resampling traces the model looks for, so
`--tile` runs the model on native-resolution 256x256 windows instead. Windows overlap and their
probabilities are blended with weights that fall towards each window's border, where the model sees
least context, which hides the seams. Memory stays bounded for huge images: windows are cut and
predicted `batch_size` at a time, and only two float32 accumulators of the image's size are kept.
"""

from collections.abc import Callable, Iterator

import numpy as np

# (b, tile, tile, 3) uint8 windows -> (b, tile, tile) float32 probabilities.
WindowPredictor = Callable[[np.ndarray], np.ndarray]


def window_starts(length: int, tile: int, overlap: int) -> list[int]:
  """Offsets of `tile` windows covering `length`, sharing >= `overlap`, the last one flush."""
  if not 0 <= overlap < tile:
    raise ValueError(f"overlap must be in [0, tile={tile}), got {overlap}")
  if length <= tile:
    return [0]
  stride = tile - overlap
  num_windows = -(-(length - tile) // stride) + 1  # ceil, so that the last window ends at `length`.
  # Spread the slack evenly so every overlap is >= `overlap` and no window is nearly redundant.
  return [round(i * (length - tile) / (num_windows - 1)) for i in range(num_windows)]


def blend_weights(tile: int, overlap: int) -> np.ndarray:
  """(tile, tile) weights: 1 inside, a linear ramp over `overlap` pixels at the border, never 0."""
  distance_to_edge = np.minimum(np.arange(tile), np.arange(tile)[::-1])
  ramp = np.minimum(1.0, (distance_to_edge + 1) / (overlap + 1)).astype(np.float32)
  return np.outer(ramp, ramp)


def _windows(image: np.ndarray, tile: int, overlap: int) -> Iterator[tuple[int, int, np.ndarray]]:
  """Yields (top, left, window); windows of images smaller than `tile` are padded by mirroring."""
  height, width = image.shape[:2]
  for top in window_starts(height, tile, overlap):
    for left in window_starts(width, tile, overlap):
      window = image[top : top + tile, left : left + tile]
      pad = ((0, tile - window.shape[0]), (0, tile - window.shape[1]), (0, 0))
      if pad[0][1] or pad[1][1]:
        window = np.pad(window, pad, mode="symmetric")
      yield top, left, window


def num_windows(height: int, width: int, *, tile: int = 256, overlap: int = 64) -> int:
  return len(window_starts(height, tile, overlap)) * len(window_starts(width, tile, overlap))


def predict_tiled(
    image: np.ndarray,
    predict_windows: WindowPredictor,
    *,
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 8,
) -> np.ndarray:
  """Probability map `(H, W)` of a uint8 `(H, W, 3)` image from overlapping `tile` windows."""
  height, width = image.shape[:2]
  weights = blend_weights(tile, overlap)
  weighted_sum = np.zeros((height, width), np.float32)
  weight_sum = np.zeros((height, width), np.float32)

  def accumulate(batch: list[tuple[int, int, np.ndarray]]) -> None:
    probabilities = predict_windows(np.stack([window for _, _, window in batch]))
    for (top, left, _), window_probabilities in zip(batch, probabilities):
      rows, cols = min(tile, height - top), min(tile, width - left)
      region = np.s_[top : top + rows, left : left + cols]
      weighted_sum[region] += window_probabilities[:rows, :cols] * weights[:rows, :cols]
      weight_sum[region] += weights[:rows, :cols]

  batch = []
  for item in _windows(image, tile, overlap):
    batch.append(item)
    if len(batch) == batch_size:
      accumulate(batch)
      batch = []
  if batch:
    accumulate(batch)
  weighted_sum /= weight_sum
  return weighted_sum

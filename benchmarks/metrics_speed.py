"""Host time of `MetricAccumulator.update` for one eval batch (16 x 256 x 256).

  python benchmarks/metrics_speed.py

"smooth" maps look like a model's output (blurred noise plus the mask, a few blobs); "noise" maps
are i.i.d. uniform with i.i.d. masks, the worst case for the box AP (thousands of components).
"""

import time

import numpy as np
import scipy.ndimage

from lstm_endec_jax.evaluation import metrics


def smooth_batch(rng: np.random.Generator, batch: int, size: int):
  masks = np.zeros((batch, size, size), np.uint8)
  for mask in masks[batch // 4 :]:
    top, left = rng.integers(0, size // 2, 2)
    mask[top : top + rng.integers(16, size // 2), left : left + rng.integers(16, size // 2)] = 1
  noise = scipy.ndimage.gaussian_filter(rng.normal(size=masks.shape), sigma=(0, 6, 6))
  logits = 4 * (masks - 0.5) + 40 * noise
  return (1 / (1 + np.exp(-logits))).astype(np.float32), masks


def noise_batch(rng: np.random.Generator, batch: int, size: int):
  probs = rng.random((batch, size, size), dtype=np.float32)
  return probs, (rng.random((batch, size, size)) < 0.2).astype(np.uint8)


def time_update(probs, masks, box_ap: bool, repeats: int = 5) -> float:
  accumulator = metrics.MetricAccumulator(box_ap=box_ap)
  accumulator.update(probs, masks)
  start = time.perf_counter()
  for _ in range(repeats):
    accumulator.update(probs, masks)
  return (time.perf_counter() - start) / repeats


def main():
  rng = np.random.default_rng(0)
  for name, make in (("smooth", smooth_batch), ("noise", noise_batch)):
    probs, masks = make(rng, 16, 256)
    for box_ap in (False, True):
      seconds = time_update(probs, masks, box_ap)
      print(f"{name:6s} box_ap={box_ap!s:5s}  {1e3 * seconds:7.1f} ms per batch of 16x256x256")


if __name__ == "__main__":
  main()

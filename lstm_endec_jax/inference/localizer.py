"""Python API for localizing manipulations in users' images with a trained checkpoint.

  localizer = Localizer.from_pretrained()                  # the weights shipped with the package
  localizer = Localizer.from_checkpoint("workdir")        # or a step directory inside it
  probabilities = localizer.predict(image)                 # (H, W) float32, P(manipulated)
  probabilities = localizer.predict(image, tile=True)      # full resolution, 256x256 windows

The model sees 256x256 images. By default an image is resized to that and the map resized back, as
in the paper; `tile=True` keeps the native resolution (see `tiling`).
"""

from collections.abc import Mapping
import functools
import os
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from lstm_endec_jax.data import image_io
from lstm_endec_jax.inference import tiling
from lstm_endec_jax.model import models
from lstm_endec_jax.runs import shipped
from lstm_endec_jax.runs import weights

IMAGE_SIZE = models.IMAGE_SIZE


class Localizer:
  """A trained model and its variables, ready to map images to P(manipulated)."""

  def __init__(
      self,
      model: nn.Module,
      variables: Mapping[str, Any],
      *,
      batch_size: int = 8,
      variant: str | None = None,
      source: str = "given variables",
  ):
    self.model = model
    self.variables = jax.device_put(variables)
    self.batch_size = batch_size
    self.variant = variant
    self.source = source  # where the weights came from, for messages
    self._probabilities = jax.jit(functools.partial(models.probabilities, model))

  @classmethod
  def _from_loaded(cls, loaded: weights.TrainedModel, batch_size: int, source: str) -> "Localizer":
    return cls(
        loaded.model, loaded.variables, batch_size=batch_size, variant=loaded.variant, source=source
    )

  @classmethod
  def from_pretrained(cls, name: str = shipped.DEFAULT_NAME, *, batch_size: int = 8) -> "Localizer":
    """The weights shipped with the package (`shipped.available()`; docs/model_card.md)."""
    return cls._from_loaded(
        weights.load(shipped.INIT_FROM_PREFIX + name),
        batch_size,
        f"the shipped {name!r} weights ({shipped.WEIGHTS_DIR / name}.npz)",
    )

  @classmethod
  def from_checkpoint(
      cls, path: str | os.PathLike[str], *, step: str | int = "latest", batch_size: int = 8
  ) -> "Localizer":
    """Loads a training run's model: `path` is its workdir or one step directory.

    `step` (for a workdir): "latest", "best" (by the run's validation metric) or a step number.
    """
    loaded = weights.load(path, step=step)
    return cls._from_loaded(loaded, batch_size, f"step {loaded.step} of {loaded.step_dir.parent}")

  def predict_batch(self, images: np.ndarray) -> np.ndarray:
    """P(manipulated) `(B, 256, 256)` of uint8 (or 0..255 float) `(B, 256, 256, 3)` images.

    Runs in chunks of `batch_size`; a short chunk is padded to the next power of two, so a handful
    of compiled shapes serve every batch size.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
      raise ValueError(
          f"predict_batch expects (B, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) images, got "
          f"{images.shape}; use predict() for a single image of any size"
      )
    chunks = [
        images[start : start + self.batch_size] for start in range(0, len(images), self.batch_size)
    ]
    return (
        np.concatenate(
            [
                self._predict_padded(
                    chunk, min(self.batch_size, 1 << (len(chunk) - 1).bit_length())
                )
                for chunk in chunks
            ]
        )
        if chunks
        else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    )

  def _predict_padded(self, images: np.ndarray, size: int) -> np.ndarray:
    """Runs the compiled model on `images` padded with zeros to `size` rows."""
    padding = np.zeros((size - len(images), *images.shape[1:]), images.dtype)
    probabilities = self._probabilities(self.variables, np.concatenate([images, padding]))
    return np.asarray(probabilities)[: len(images)]

  def predict(self, image: np.ndarray, *, tile: bool = False, overlap: int = 64) -> np.ndarray:
    """P(manipulated) `(H, W)` float32 of one uint8 RGB `(H, W, 3)` image, at its resolution."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0 or image.dtype != np.uint8:
      raise ValueError(
          f"predict expects one uint8 RGB image (H, W, 3), got {image.dtype} "
          f"{image.shape}; image_io.read_image converts files of any format"
      )
    if tile:
      # Every call gets a full batch, so one compiled shape serves all images and window counts.
      return tiling.predict_tiled(
          image,
          lambda windows: self._predict_padded(windows, self.batch_size),
          tile=IMAGE_SIZE,
          overlap=overlap,
          batch_size=self.batch_size,
      )
    height, width = image.shape[:2]
    small = image_io.resize_image(image, IMAGE_SIZE, IMAGE_SIZE)
    return image_io.resize_map(self.predict_batch(small[None])[0], height, width)

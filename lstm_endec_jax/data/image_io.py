"""The one image decoder (users' photos, dataset builders), and writing result images.

Images come in whatever form a camera, an editor or a dataset produced: JPEG with an EXIF
rotation, 16-bit TIFF, float TIFF, grayscale or palette PNG with transparency. `read_image` turns
every one into uint8 RGB in display orientation, and both `predict` and the TFDS builders read
through it, so the model is trained on images decoded exactly as the ones it is later shown. Pixel
values are never composited or colour-managed: forensic traces live in them.
"""

from collections.abc import Iterable, Iterator
import os
import pathlib

from absl import logging
import numpy as np
from PIL import Image

from lstm_endec_jax.runtime import files

# Lower-case suffixes a directory walk picks up. Files named explicitly are always tried.
PNG_COMPRESS_LEVEL = 1
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".ppm", ".pgm"}
)

# EXIF orientation (tag 0x0112) -> the numpy transposition that shows the stored pixels upright,
# as `PIL.ImageOps.exif_transpose` does (1 or absent: as stored).
ORIENTATION_TAG = 0x0112
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


class ImageReadError(Exception):
  """An image file that cannot be read; the message names the file and the problem."""

  def __init__(self, path: str | os.PathLike[str], problem: str):
    self.path = pathlib.Path(path)
    self.problem = problem
    super().__init__(f"{self.path}: {problem}")


def read_image(path: str | os.PathLike[str], *, orientation: int | None = None) -> np.ndarray:
  """Returns the image at `path` as uint8 RGB `(H, W, 3)`, upright.

  `orientation`: the EXIF orientation to apply; None (the default) applies the file's own. Dataset
  builders read a mask with its image's orientation, since masks are drawn on the image's stored
  pixel grid. Alpha is dropped (not composited) and only the first frame of multi-frame files is
  used. Integer images above 8 bits are scaled by 255/65535 unless every value fits in 8 bits
  (8-bit content stored in a 16-bit container); float images are taken as 0..1 when no value
  exceeds 1, else as 0..255.

  Raises:
    ImageReadError: the file is missing, not an image, truncated or otherwise undecodable.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise ImageReadError(path, "no such file" if not path.exists() else "not a regular file")
  try:
    with Image.open(path) as image:
      image.load()  # Decodes now, so truncation is reported here and not later.
      if getattr(image, "n_frames", 1) > 1:
        logging.warning("%s holds %d frames; only the first is used.", path, image.n_frames)
      own_orientation = image.getexif().get(ORIENTATION_TAG, 1)
      pixels = _to_rgb_uint8(image)
  except Image.UnidentifiedImageError:
    raise ImageReadError(path, "not an image format Pillow can read") from None
  except Exception as error:  # Pillow signals broken files with many exception types.
    raise ImageReadError(path, f"cannot decode image ({type(error).__name__}: {error})") from error
  upright = _UPRIGHT.get(own_orientation if orientation is None else orientation)
  return np.ascontiguousarray(upright(pixels)) if upright else pixels


def exif_orientation(path: str | os.PathLike[str]) -> int:
  """The EXIF orientation of an image file (1 when it has none), from its header."""
  with Image.open(path) as image:
    return int(image.getexif().get(ORIENTATION_TAG, 1))


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
  """Converts any Pillow mode to uint8 RGB without clipping high-bit-depth values."""
  if image.mode.startswith("I"):  # 16- and 32-bit integer single-channel images
    values = np.asarray(image, dtype=np.float64)
    if values.max(initial=0) > 255:
      values = values * (255.0 / 65535.0)
    return _gray_to_rgb(values)
  if image.mode == "F":
    values = np.asarray(image, dtype=np.float64)
    return _gray_to_rgb(values * 255.0 if values.max(initial=0) <= 1.0 else values)
  return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _gray_to_rgb(values: np.ndarray) -> np.ndarray:
  gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
  return np.repeat(gray[:, :, None], 3, axis=2)


def find_images(root: str | os.PathLike[str]) -> list[pathlib.Path]:
  """All files below `root` (recursively) with an image suffix, in a stable sorted order."""
  root = pathlib.Path(root)
  found = []
  for directory, subdirectories, names in os.walk(root):
    subdirectories.sort()
    found.extend(
        pathlib.Path(directory) / name
        for name in sorted(names)
        if pathlib.Path(name).suffix.lower() in IMAGE_EXTENSIONS
    )
  return found


def expand_inputs(
    inputs: Iterable[str | os.PathLike[str]],
) -> Iterator[tuple[pathlib.Path, pathlib.Path]]:
  """Yields (file, path relative to its input) for files and the images inside directories.

  The relative path lets callers mirror a folder tree in their output. Paths that do not exist are
  yielded as given so that reading them reports the problem alongside the other results.
  """
  for item in inputs:
    item = pathlib.Path(item)
    if item.is_dir():
      for path in find_images(item):
        yield path, path.relative_to(item)
    else:
      yield item, pathlib.Path(item.name)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear resize of uint8 `(H, W, 3)` or `(H, W)` pixels: the model's input in training,
  evaluation and prediction alike."""
  if image.shape[:2] == (height, width):
    return image
  return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def resize_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear resize of a float `(h, w)` map, to bring probabilities back to the input's size."""
  if values.shape == (height, width):
    return values.astype(np.float32, copy=False)
  image = Image.fromarray(np.asarray(values, dtype=np.float32))
  return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def write_png(path: str | os.PathLike[str], pixels: np.ndarray) -> None:
  """Writes uint8 `(H, W)` or `(H, W, 3)` pixels; a partial file is never left behind."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
  # zlib level 1: large heat maps are written several times faster than at Pillow's default 6,
  # and smooth maps compress nearly as well.
  files.replace_atomically(
      path,
      lambda temporary: image.save(temporary, format="PNG", compress_level=PNG_COMPRESS_LEVEL),
  )

"""Reading users' images and writing result images.

Users bring photographs in whatever form their camera or editor produced: JPEG with an EXIF
rotation, 16-bit TIFF, grayscale or palette PNG with transparency. Everything becomes uint8 RGB in
display orientation so the model always sees what a person sees. Pixel values are never composited
or colour-managed: forensic traces live in them.
"""
from collections.abc import Iterable, Iterator
import os
import pathlib

import numpy as np
from PIL import Image
from PIL import ImageOps

# Lower-case suffixes a directory walk picks up. Files named explicitly are always tried.
PNG_COMPRESS_LEVEL = 1
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".ppm", ".pgm"})

# Full scale of single-channel high-bit-depth modes that `Image.convert` would clip, not scale.
_INTEGER_FULL_SCALE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


class ImageReadError(Exception):
  """An image file that cannot be read; the message names the file and the problem."""

  def __init__(self, path: str | os.PathLike[str], problem: str):
    self.path = pathlib.Path(path)
    self.problem = problem
    super().__init__(f"{self.path}: {problem}")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
  """Returns the image at `path` as uint8 RGB `(H, W, 3)`, EXIF orientation applied.

  Alpha is dropped (not composited) and only the first frame of multi-frame files is used.
  16-bit single-channel images are scaled by 255/65535; float images are taken as 0..1.

  Raises:
    ImageReadError: the file is missing, not an image, truncated or otherwise undecodable.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise ImageReadError(path, "no such file" if not path.exists() else "not a regular file")
  try:
    with Image.open(path) as image:
      image.load()  # Decodes now, so truncation is reported here and not later.
      image = ImageOps.exif_transpose(image)
      return _to_rgb_uint8(image)
  except Image.UnidentifiedImageError:
    raise ImageReadError(path, "not an image format Pillow can read") from None
  except ImageReadError:
    raise
  except Exception as error:  # Pillow signals broken files with many exception types.
    raise ImageReadError(path, f"cannot decode image ({type(error).__name__}: {error})") from error


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
  """Converts any Pillow mode to uint8 RGB without clipping high-bit-depth values."""
  if image.mode in _INTEGER_FULL_SCALE:
    values = np.asarray(image, dtype=np.float32) * (255.0 / _INTEGER_FULL_SCALE[image.mode])
    return _gray_to_rgb(values)
  if image.mode == "F":
    return _gray_to_rgb(np.asarray(image, dtype=np.float32) * 255.0)
  return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _gray_to_rgb(values: np.ndarray) -> np.ndarray:
  gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
  return np.repeat(gray[:, :, None], 3, axis=2)


def find_images(root: str | os.PathLike[str]) -> list[pathlib.Path]:
  """All files below `root` (recursively) with an image suffix, in a stable sorted order."""
  root = pathlib.Path(root)
  found = []
  for directory, subdirectories, files in os.walk(root):
    subdirectories.sort()
    found.extend(pathlib.Path(directory) / name for name in sorted(files)
                 if pathlib.Path(name).suffix.lower() in IMAGE_EXTENSIONS)
  return found


def expand_inputs(inputs: Iterable[str | os.PathLike[str]]
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
  """Bilinear resize of a uint8 `(H, W, 3)` image, as the model's 256x256 input."""
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
  partial = path.with_name(path.name + ".partial")
  # zlib level 1: large heat maps are written several times faster than at Pillow's default 6,
  # and smooth maps compress nearly as well.
  Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(partial, format="PNG",
                                                           compress_level=PNG_COMPRESS_LEVEL)
  os.replace(partial, path)

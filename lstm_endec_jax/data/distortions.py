"""Post-processing distortions for robustness evaluation (docs/method.md section 6, issue 4).

Every function takes and returns a uint8 image, (H, W) or (H, W, C), with the shape unchanged,
and is deterministic (noise draws from a seeded generator). Only numpy, Pillow and scipy: the
evaluation does not depend on OpenCV, but the blur reproduces `cv2.GaussianBlur(image, (k, k), 0)`
up to rounding.
"""

from collections.abc import Callable
import io

import numpy as np
import PIL.Image
import scipy.ndimage

# Strengths that `evaluate --robustness` loops over, weakest first. JPEG quality 100..50 and blur
# kernels 3..23 are the ranges of docs/method.md section 6. The noise sigmas (0..255 scale) follow
# the blur kernels' steps; sigma 3 and 15 are the levels other localization papers report
# (e.g. ObjectFormer, CVPR 2022).
ROBUSTNESS_LEVELS: dict[str, list[int]] = {
    "jpeg": [100, 90, 80, 70, 60, 50],
    "blur": [3, 7, 11, 15, 19, 23],
    "noise": [3, 7, 11, 15, 19, 23],
}

# What the strength of each distortion means, for tables and plot axes.
STRENGTH_NAMES: dict[str, str] = {
    "jpeg": "JPEG quality",
    "blur": "Gaussian blur kernel size",
    "noise": "Gaussian noise sigma",
}

# OpenCV's fixed kernels for odd sizes <= 7 when sigma is not given (`getGaussianKernel`).
_OPENCV_SMALL_KERNELS = {
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
}


def _check_image(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim not in (2, 3):
    raise ValueError(
        f"Expected a uint8 image of shape (H, W) or (H, W, C); got {image.dtype} {image.shape}."
    )
  return image


def _to_uint8(values: np.ndarray) -> np.ndarray:
  return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
  """Encodes with Pillow's libjpeg at `quality` (1..100, default 4:2:0 chroma) and decodes."""
  image = _check_image(image)
  if not 1 <= quality <= 100:
    raise ValueError(f"JPEG quality must be in 1..100, got {quality}.")
  channels = 1 if image.ndim == 2 else image.shape[2]
  if channels not in (1, 3):
    raise ValueError(f"JPEG needs 1 or 3 channels, got an image of shape {image.shape}.")
  buffer = io.BytesIO()
  PIL.Image.fromarray(image.reshape(image.shape[:2]) if channels == 1 else image).save(
      buffer, format="JPEG", quality=int(quality)
  )
  decoded = np.asarray(PIL.Image.open(buffer))
  return decoded.reshape(image.shape)


def opencv_sigma(kernel_size: int) -> float:
  """The sigma OpenCV derives from an odd kernel size when none is given."""
  return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def gaussian_kernel(kernel_size: int) -> np.ndarray:
  """OpenCV's 1-D Gaussian kernel of `kernel_size` taps for sigma = 0 ("derive it from k").

  Sizes 1..7 use OpenCV's fixed binomial-like tables; larger sizes sample a Gaussian of
  sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8 at the integer offsets and normalise it.
  """
  if kernel_size < 1 or kernel_size % 2 == 0:
    raise ValueError(f"Blur kernel size must be a positive odd integer, got {kernel_size}.")
  if kernel_size in _OPENCV_SMALL_KERNELS:
    return np.array(_OPENCV_SMALL_KERNELS[kernel_size])
  offsets = np.arange(kernel_size) - (kernel_size - 1) / 2
  weights = np.exp(-(offsets**2) / (2 * opencv_sigma(kernel_size) ** 2))
  return weights / weights.sum()


def gaussian_blur(image: np.ndarray, kernel_size: int) -> np.ndarray:
  """Separable Gaussian blur like `cv2.GaussianBlur(image, (k, k), 0)`.

  The border is mirrored without repeating the edge pixel (OpenCV's default BORDER_REFLECT_101,
  scipy's "mirror").
  """
  image = _check_image(image)
  kernel = gaussian_kernel(kernel_size)
  blurred = image.astype(np.float64)
  for axis in (0, 1):
    blurred = scipy.ndimage.convolve1d(blurred, kernel, axis=axis, mode="mirror")
  return _to_uint8(blurred)


def gaussian_noise(
    image: np.ndarray, sigma: float, *, rng: np.random.Generator | int = 0
) -> np.ndarray:
  """Adds i.i.d. N(0, sigma^2) noise (0..255 scale) to every value, rounds and clips."""
  image = _check_image(image)
  if sigma < 0:
    raise ValueError(f"Noise sigma must be >= 0, got {sigma}.")
  rng = np.random.default_rng(rng)
  return _to_uint8(image + rng.normal(0.0, sigma, image.shape))


def _distortion_function(
    name: str,
) -> Callable[[np.ndarray, float, np.random.Generator], np.ndarray]:
  functions = {
      "jpeg": lambda image, strength, rng: jpeg_compress(image, int(strength)),
      "blur": lambda image, strength, rng: gaussian_blur(image, int(strength)),
      "noise": lambda image, strength, rng: gaussian_noise(image, strength, rng=rng),
  }
  if name not in functions:
    raise ValueError(f"Unknown distortion {name!r}; expected one of {sorted(functions)}.")
  return functions[name]


def distort(image: np.ndarray, name: str, strength: float, *, seed: int = 0) -> np.ndarray:
  """Applies distortion `name` ("jpeg", "blur" or "noise") at `strength` to one image."""
  return _distortion_function(name)(image, strength, np.random.default_rng(seed))


def distort_batch(
    images: np.ndarray, name: str, strength: float, *, seed: int = 0, start_index: int = 0
) -> np.ndarray:
  """Distorts a batch (B, H, W[, C]); image i draws its noise from seed (seed, start_index + i).

  Pass the dataset index of the batch's first image as `start_index` so that every image is
  distorted the same way whatever the batch size.
  """
  function = _distortion_function(name)
  images = np.asarray(images)
  if not len(images):
    return images.copy()
  return np.stack(
      [
          function(image, strength, np.random.default_rng((seed, start_index + i)))
          for i, image in enumerate(images)
      ]
  ).reshape(images.shape)

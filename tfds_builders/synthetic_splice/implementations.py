"""Interchangeable implementations of each step of the forgery generator, and the recipes that
choose among them.

A model trained on one generator learns that generator's traces (its resampler, its blending, its
inpainting, its codec) more than forgery in general. So each step here has several independent
implementations (Pillow, OpenCV, SciPy, scikit-image, or our own numpy code), one drawn per
forgery and recorded in its `parameters`. A recipe lists the implementations a split may draw:

  paper     the authors' chain (HLED): PIL bilinear/bicubic warps, alpha compositing, Reinhard
            colour transfer, one JPEG; biharmonic removal (ours, HLED has none).
  train     every implementation except one per step, which is held out.
  heldout   only the held-out implementation of each step (`HELD_OUT`): the held-out-generator
            test split, made from the test scenes, measures transfer to forgeries of a tool the
            model never saw.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable, Sequence
from typing import Any
import warnings

import cv2
import numpy as np
import PIL.Image
import PIL.ImageFilter
import scipy.ndimage
import scipy.sparse
import scipy.sparse.linalg
import skimage.color
import skimage.exposure


@dataclasses.dataclass(frozen=True)
class Recipe:
  """The implementation names each step may draw from (uniformly; repeats weight a name)."""

  warps: tuple[str, ...]
  resizes: tuple[str, ...]  # whole-image downscaling of a larger window
  colours: tuple[str, ...]
  blends: tuple[str, ...]
  inpainters: tuple[str, ...]
  filters: tuple[str, ...]
  codecs: tuple[str, ...]


HELD_OUT = {
    "warps": "cv2_lanczos4",
    "resizes": "pil_lanczos",
    "colours": "histogram_match",
    "blends": "multiband",
    "inpainters": "exemplar",
    "filters": "median",
    "codecs": "webp",
}

RECIPES = {
    "paper": Recipe(
        warps=("pil_bilinear", "pil_bilinear", "pil_bicubic"),  # HLED: bicubic one time in three
        resizes=("pil_bilinear",),
        colours=("reinhard",),
        blends=("alpha",),
        inpainters=("biharmonic",),
        filters=(),
        codecs=("jpeg",),
    ),
    "train": Recipe(
        warps=(
            "pil_nearest",
            "pil_bilinear",
            "pil_bicubic",
            "cv2_linear",
            "cv2_cubic",
            "scipy_spline3",
        ),
        resizes=("pil_bilinear", "pil_bicubic", "pil_box", "cv2_area", "cv2_linear"),
        colours=("reinhard", "gamma_gain"),
        blends=("alpha", "hard", "feather", "poisson"),
        inpainters=("biharmonic", "telea", "navier_stokes", "clone"),
        filters=("gaussian_blur", "noise", "unsharp"),
        codecs=("jpeg", "jpeg", "double_jpeg"),
    ),
    "heldout": Recipe(**{step: (name,) for step, name in HELD_OUT.items()}),
}
# The training recipe with one step's held-out implementation swapped in: which step, held out
# alone, costs the most (experiments/generator_ablation.py).
RECIPES.update(
    {
        f"heldout_{step}": dataclasses.replace(RECIPES["train"], **{step: (name,)})
        for step, name in HELD_OUT.items()
    }
)


def choose(rng: np.random.Generator, names: Sequence[str]) -> str:
  return names[int(rng.integers(len(names)))]


def to_uint8(array: np.ndarray) -> np.ndarray:
  return np.clip(np.round(array), 0, 255).astype(np.uint8)


# --- Resampling ---------------------------------------------------------------------------------

_PIL_FILTERS = {
    "nearest": PIL.Image.NEAREST,
    "bilinear": PIL.Image.BILINEAR,
    "bicubic": PIL.Image.BICUBIC,
    "box": PIL.Image.BOX,
    "lanczos": PIL.Image.LANCZOS,
}
_CV2_FLAGS = {
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos4": cv2.INTER_LANCZOS4,
}


def warp(
    array: np.ndarray, coefficients: Sequence[float], size: tuple[int, int], method: str
) -> np.ndarray:
  """Affine resampling of an (h, w) float32 matte or (h, w, 3) uint8 image; output pixel (x, y)
  reads input (a x + b y + c, d x + e y + f); zero outside. Returns float32 (matte) or uint8."""
  library, kernel = method.split("_", 1)
  a, b, c, d, e, f = coefficients
  width, height = size
  if library == "pil":
    out = PIL.Image.fromarray(array).transform(
        size, PIL.Image.AFFINE, tuple(coefficients), _PIL_FILTERS[kernel]
    )
    return np.asarray(out)
  source = array.astype(np.float32)
  if library == "cv2":
    matrix = np.array([[a, b, c], [d, e, f]], np.float64)
    out = cv2.warpAffine(
        source,
        matrix,
        (width, height),
        flags=_CV2_FLAGS[kernel] | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
  elif library == "scipy":
    order = int(kernel.removeprefix("spline"))
    matrix = np.array([[e, d], [b, a]])  # (row, col) of the input from (row, col) of the output
    channels = source[..., None] if source.ndim == 2 else source
    out = np.stack(
        [
            scipy.ndimage.affine_transform(
                channels[..., k], matrix, offset=(f, c), output_shape=(height, width), order=order
            )
            for k in range(channels.shape[-1])
        ],
        axis=-1,
    )
    out = out[..., 0] if source.ndim == 2 else out
  else:
    raise ValueError(f"unknown warp {method!r}")
  return to_uint8(out) if array.dtype == np.uint8 else out.astype(np.float32)


def resize(image: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
  """Whole-image resampling of uint8 RGB to `size` (width, height)."""
  library, kernel = method.split("_", 1)
  if library == "pil":
    return np.asarray(PIL.Image.fromarray(image).resize(size, _PIL_FILTERS[kernel]))
  if library == "cv2":
    return cv2.resize(image, size, interpolation=_CV2_FLAGS[kernel])
  raise ValueError(f"unknown resize {method!r}")


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """A downscaled mask: 1 where the pixel's footprint (box filter) covers any manipulated pixel."""
  coverage = np.asarray(PIL.Image.fromarray(mask.astype(np.float32)).resize(size, PIL.Image.BOX))
  return (coverage > 1e-6).astype(np.uint8)


# --- Colour adjustment of a pasted object -------------------------------------------------------


def reinhard(
    rgb: np.ndarray, alpha: np.ndarray, target: np.ndarray, rng
) -> tuple[np.ndarray, dict]:
  """Reinhard et al. (2001) colour transfer in Lab: the object takes the target's mean and std."""
  del rng
  source_lab = skimage.color.rgb2lab(rgb)
  target_lab = skimage.color.rgb2lab(target)
  inside = alpha > 0.5
  if not inside.any():
    return rgb, {}
  source_mean, source_std = source_lab[inside].mean(0), source_lab[inside].std(0) + 1e-6
  target_mean, target_std = target_lab.reshape(-1, 3).mean(0), target_lab.reshape(-1, 3).std(0)
  lab = (source_lab - source_mean) / source_std * target_std + target_mean
  with warnings.catch_warnings():  # out-of-gamut colours are clipped, which is what we want
    warnings.simplefilter("ignore", UserWarning)
    rgb_float = skimage.color.lab2rgb(lab)
  return to_uint8(rgb_float * 255.0), {}


def gamma_gain(rgb: np.ndarray, alpha, target, rng) -> tuple[np.ndarray, dict]:
  """A brightness and gamma change, as a curves tool would make."""
  del alpha, target
  gamma, gain = float(rng.uniform(0.7, 1.4)), float(rng.uniform(0.85, 1.15))
  return to_uint8(255.0 * gain * (rgb / 255.0) ** gamma), {"gamma": gamma, "gain": gain}


def histogram_match(rgb: np.ndarray, alpha, target, rng) -> tuple[np.ndarray, dict]:
  """Per-channel histogram matching to the background (scikit-image)."""
  del alpha, rng
  matched = skimage.exposure.match_histograms(rgb, target, channel_axis=-1)
  return to_uint8(matched), {}


COLOURS: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {
    "reinhard": reinhard,
    "gamma_gain": gamma_gain,
    "histogram_match": histogram_match,
}


# --- Blending a pasted object into the background -----------------------------------------------


def quantised_alpha(alpha: np.ndarray) -> np.ndarray:
  """The matte in 0..255, as 8-bit compositing stores it: alpha 0 leaves the background exact."""
  return np.round(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.int32)


def alpha_composite(
    background: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, top: int, left: int
):
  """`alpha * object + (1 - alpha) * background` in integers; returns the image and its region."""
  height, width = alpha.shape
  out = background.copy()
  window = out[top : top + height, left : left + width].astype(np.int32)
  weight = quantised_alpha(alpha)[..., None]
  blended = (weight * rgb.astype(np.int32) + (255 - weight) * window + 127) // 255
  out[top : top + height, left : left + width] = blended.astype(np.uint8)
  region = np.zeros(background.shape[:2], bool)
  region[top : top + height, left : left + width] = weight[..., 0] > 0
  return out, region


def blend_alpha(background, rgb, alpha, top, left, rng) -> tuple[np.ndarray, np.ndarray, dict]:
  del rng
  return *alpha_composite(background, rgb, alpha, top, left), {}


def blend_hard(background, rgb, alpha, top, left, rng):
  """A binary matte (a lasso cut-out pasted as is)."""
  del rng
  return *alpha_composite(background, rgb, (alpha > 0.5).astype(np.float32), top, left), {}


def blend_feather(background, rgb, alpha, top, left, rng):
  """The matte blurred inside the object box (a feathered selection)."""
  sigma = float(rng.uniform(1.5, 4.0))
  soft = scipy.ndimage.gaussian_filter(alpha, sigma, mode="constant")
  return *alpha_composite(background, rgb, soft, top, left), {"sigma": sigma}


def blend_poisson(background, rgb, alpha, top, left, rng):
  """Gradient-domain cloning (Perez et al. 2003): inside the matte the result has the object's
  gradients and meets the background on the region's boundary (one sparse solve per channel)."""
  del rng
  region = alpha > 0.5
  region[[0, -1], :] = False
  region[:, [0, -1]] = False  # a ring of known pixels inside the box holds the boundary values
  height, width = region.shape
  destination = background[top : top + height, left : left + width].astype(np.float64)
  if not region.any():
    return background.copy(), np.zeros(background.shape[:2], bool), {}
  source = rgb.astype(np.float64)
  index = -np.ones(region.shape, np.int64)
  rows, cols = np.nonzero(region)
  count = rows.size
  index[rows, cols] = np.arange(count)
  entries_row, entries_col, entries_value = (
      [np.arange(count)],
      [np.arange(count)],
      [np.full(count, 4.0)],
  )
  rhs = 4.0 * source[rows, cols]
  for d_row, d_col in ((-1, 0), (1, 0), (0, -1), (0, 1)):
    n_rows, n_cols = rows + d_row, cols + d_col
    rhs -= source[n_rows, n_cols]
    inside = region[n_rows, n_cols]
    entries_row.append(np.nonzero(inside)[0])
    entries_col.append(index[n_rows[inside], n_cols[inside]])
    entries_value.append(np.full(int(inside.sum()), -1.0))
    rhs[~inside] += destination[n_rows[~inside], n_cols[~inside]]
  matrix = scipy.sparse.csc_matrix(
      (np.concatenate(entries_value), (np.concatenate(entries_row), np.concatenate(entries_col))),
      shape=(count, count),
  )
  solved = scipy.sparse.linalg.factorized(matrix)
  window = destination.copy()
  window[rows, cols] = np.stack([solved(rhs[:, k]) for k in range(3)], axis=-1)
  out = background.copy()
  out[top : top + height, left : left + width] = to_uint8(window)
  touched = np.zeros(background.shape[:2], bool)
  touched[top : top + height, left : left + width] = region
  return out, touched, {}


MULTIBAND_LEVELS = 4


def blend_multiband(background, rgb, alpha, top, left, rng):
  """Laplacian-pyramid blending (Burt and Adelson 1983): each frequency band is mixed with a
  matte blurred to that band's scale, as panorama and compositing tools do."""
  del rng
  image_height, image_width = background.shape[:2]
  height, width = alpha.shape
  margin = 2**MULTIBAND_LEVELS
  win_top, win_left = max(0, top - margin), max(0, left - margin)
  win_bottom = min(image_height, top + height + margin)
  win_right = min(image_width, left + width + margin)
  base = background[win_top:win_bottom, win_left:win_right].astype(np.float32)
  pasted, matte = base.copy(), np.zeros(base.shape[:2], np.float32)
  rows = slice(top - win_top, top - win_top + height)
  cols = slice(left - win_left, left - win_left + width)
  hard = alpha > 0.5
  pasted[rows, cols][hard] = rgb[hard]
  matte[rows, cols] = hard
  mixed = _pyramid_blend(pasted, base, matte, MULTIBAND_LEVELS)
  out = background.copy()
  out[win_top:win_bottom, win_left:win_right] = to_uint8(mixed)
  touched = (out != background).any(-1)
  touched[win_top:win_bottom, win_left:win_right] |= matte > 0
  return out, touched, {"levels": MULTIBAND_LEVELS}


def _pyramid_blend(first: np.ndarray, second: np.ndarray, matte: np.ndarray, levels: int):
  gaussian_first, gaussian_second, gaussian_matte = [first], [second], [matte]
  for _ in range(levels):
    gaussian_first.append(cv2.pyrDown(gaussian_first[-1]))
    gaussian_second.append(cv2.pyrDown(gaussian_second[-1]))
    gaussian_matte.append(cv2.pyrDown(gaussian_matte[-1]))
  mixed = (
      gaussian_matte[-1][..., None] * gaussian_first[-1]
      + (1 - gaussian_matte[-1][..., None]) * gaussian_second[-1]
  )
  for level in range(levels - 1, -1, -1):
    size = gaussian_first[level].shape[1::-1]
    band_first = gaussian_first[level] - cv2.pyrUp(gaussian_first[level + 1], dstsize=size)
    band_second = gaussian_second[level] - cv2.pyrUp(gaussian_second[level + 1], dstsize=size)
    weight = gaussian_matte[level][..., None]
    mixed = cv2.pyrUp(mixed, dstsize=size) + weight * band_first + (1 - weight) * band_second
  return mixed


BLENDS = {
    "alpha": blend_alpha,
    "hard": blend_hard,
    "feather": blend_feather,
    "poisson": blend_poisson,
    "multiband": blend_multiband,
}


# --- Inpainting of a removed region ------------------------------------------------------------

# The biharmonic fill is solved on a window downscaled to at most this side (the solution has no
# detail to lose, and the sparse solve grows with the pixel count).
INPAINT_MAX_SIDE = 48
TEXTURE_SIGMA = 1.5  # grain = source window - its Gaussian blur at this sigma


def _smooth_fill(window: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """Biharmonic inpainting (scikit-image) of `hole` in float RGB `window`, at reduced size."""
  import skimage.restoration  # pylint: disable=g-import-not-at-top

  height, width = hole.shape
  factor = max(1, math.ceil(max(height, width) / INPAINT_MAX_SIDE))
  if factor == 1:
    return skimage.restoration.inpaint_biharmonic(window, hole, channel_axis=-1)
  small_size = (max(2, width // factor), max(2, height // factor))
  small = np.stack([_resize_float(window[..., c], small_size) for c in range(3)], axis=-1)
  small_hole = _resize_float(hole.astype(np.float32), small_size) > 0
  filled = skimage.restoration.inpaint_biharmonic(small, small_hole, channel_axis=-1)
  return np.stack([_resize_float(filled[..., c], (width, height)) for c in range(3)], axis=-1)


def _resize_float(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  return np.asarray(
      PIL.Image.fromarray(channel.astype(np.float32)).resize(size, PIL.Image.BILINEAR)
  )


def _other_window(
    photo: np.ndarray, height: int, width: int, avoid: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
  """A random window of `photo` of this size that does not overlap the one at `avoid`."""
  photo_height, photo_width = photo.shape[:2]
  for _ in range(20):
    top = int(rng.integers(0, photo_height - height + 1))
    left = int(rng.integers(0, photo_width - width + 1))
    if abs(top - avoid[0]) >= height or abs(left - avoid[1]) >= width:
      break
  return photo[top : top + height, left : left + width].astype(np.float32), [top, left]


def _grain(photo, height, width, avoid, rng) -> tuple[np.ndarray, list[int]]:
  """The fine texture (minus its local mean) of another window of the photograph."""
  source, origin = _other_window(photo, height, width, avoid, rng)
  return source - scipy.ndimage.gaussian_filter(source, (TEXTURE_SIGMA, TEXTURE_SIGMA, 0)), origin


def inpaint_biharmonic(window, hole, photo, origin, rng) -> tuple[np.ndarray, dict]:
  """Smooth biharmonic fill plus the grain of another place, so the hole is not flat."""
  grain, grain_from = _grain(photo, *hole.shape, origin, rng)
  return _smooth_fill(window.astype(np.float32), hole) + grain, {"grain_from": grain_from}


def _opencv_inpaint(flag: int, window, hole, photo, origin, rng) -> tuple[np.ndarray, dict]:
  radius = int(rng.integers(3, 8))
  fill = cv2.inpaint(window, hole.astype(np.uint8) * 255, radius, flag).astype(np.float32)
  params: dict[str, Any] = {"radius": radius, "grain_from": None}
  if rng.random() < 0.5:
    grain, params["grain_from"] = _grain(photo, *hole.shape, origin, rng)
    fill += grain
  return fill, params


def inpaint_telea(window, hole, photo, origin, rng):
  """Fast-marching inpainting (Telea 2004, OpenCV)."""
  return _opencv_inpaint(cv2.INPAINT_TELEA, window, hole, photo, origin, rng)


def inpaint_navier_stokes(window, hole, photo, origin, rng):
  """Fluid-dynamics diffusion inpainting (Bertalmio et al. 2001, OpenCV)."""
  return _opencv_inpaint(cv2.INPAINT_NS, window, hole, photo, origin, rng)


def inpaint_clone(window, hole, photo, origin, rng):
  """A clone stamp: the hole takes the pixels of another window of the same photograph."""
  del window
  source, source_origin = _other_window(photo, *hole.shape, origin, rng)
  return source, {"clone_from": source_origin}


EXEMPLAR_PATCH = 9
EXEMPLAR_CANDIDATES = 400


def inpaint_exemplar(window, hole, photo, origin, rng):
  """Exemplar-based inpainting (after Criminisi et al. 2004): the most-known patch on the hole's
  front takes the unknown pixels of the best-matching (SSD over known pixels) fully known patch of
  the window; repeated until the hole is full. Candidates are a random sample of source patches."""
  del photo, origin
  radius = EXEMPLAR_PATCH // 2
  image = np.pad(window.astype(np.float32), ((radius, radius), (radius, radius), (0, 0)))
  known = np.pad(~hole, radius, constant_values=False)
  inside = np.pad(np.ones(hole.shape, bool), radius, constant_values=False)
  footprint = np.ones((EXEMPLAR_PATCH, EXEMPLAR_PATCH), bool)
  sources = np.argwhere(scipy.ndimage.binary_erosion(known, footprint, border_value=0))
  if len(sources) == 0:
    return inpaint_biharmonic(window, hole, window, (0, 0), rng)
  sources = sources[rng.permutation(len(sources))[:EXEMPLAR_CANDIDATES]]
  offsets = np.arange(-radius, radius + 1)
  patch_rows = sources[:, 0, None, None] + offsets[None, :, None]
  patch_cols = sources[:, 1, None, None] + offsets[None, None, :]
  candidates = image[patch_rows, patch_cols]  # (n, p, p, 3)
  while True:
    missing = inside & ~known
    if not missing.any():
      break
    confidence = scipy.ndimage.uniform_filter(known.astype(np.float32), EXEMPLAR_PATCH)
    front = missing & scipy.ndimage.binary_dilation(known)
    row, col = np.unravel_index(np.argmax(np.where(front, confidence, -1.0)), known.shape)
    rows, cols = slice(row - radius, row + radius + 1), slice(col - radius, col + radius + 1)
    target_known = known[rows, cols]
    difference = (candidates - image[rows, cols][None]) ** 2
    best = int(np.argmin((difference * target_known[None, ..., None]).sum((1, 2, 3))))
    fill_here = ~target_known & inside[rows, cols]
    image[rows, cols][fill_here] = candidates[best][fill_here]
    known[rows, cols] |= fill_here
  return image[radius:-radius, radius:-radius], {"patch": EXEMPLAR_PATCH}


INPAINTERS = {
    "biharmonic": inpaint_biharmonic,
    "telea": inpaint_telea,
    "navier_stokes": inpaint_navier_stokes,
    "clone": inpaint_clone,
    "exemplar": inpaint_exemplar,
}


# --- Whole-image post-processing ----------------------------------------------------------------


def filter_gaussian_blur(image: np.ndarray, rng) -> tuple[np.ndarray, dict]:
  sigma = float(rng.uniform(0.3, 1.0))
  return to_uint8(scipy.ndimage.gaussian_filter(image.astype(np.float32), (sigma, sigma, 0))), {
      "sigma": sigma
  }


def filter_noise(image: np.ndarray, rng) -> tuple[np.ndarray, dict]:
  sigma = float(rng.uniform(0.5, 3.0))
  return to_uint8(image + rng.normal(0.0, sigma, image.shape)), {"sigma": sigma}


def filter_unsharp(image: np.ndarray, rng) -> tuple[np.ndarray, dict]:
  radius, percent = float(rng.uniform(0.5, 2.0)), int(rng.integers(30, 121))
  sharpened = PIL.Image.fromarray(image).filter(PIL.ImageFilter.UnsharpMask(radius, percent, 0))
  return np.asarray(sharpened), {"radius": radius, "percent": percent}


def filter_median(image: np.ndarray, rng) -> tuple[np.ndarray, dict]:
  del rng
  return np.asarray(PIL.Image.fromarray(image).filter(PIL.ImageFilter.MedianFilter(3))), {"size": 3}


FILTERS = {
    "gaussian_blur": filter_gaussian_blur,
    "noise": filter_noise,
    "unsharp": filter_unsharp,
    "median": filter_median,
}


def _roundtrip(rgb: np.ndarray, image_format: str, quality: int) -> np.ndarray:
  buffer = io.BytesIO()
  PIL.Image.fromarray(rgb).save(buffer, format=image_format, quality=int(quality))
  buffer.seek(0)
  with PIL.Image.open(buffer) as image:
    return np.asarray(image.convert("RGB"))


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
  """Compress and decode with JPEG at `quality` (libjpeg through Pillow, 4:2:0 subsampling)."""
  return _roundtrip(rgb, "JPEG", quality)


def codec_jpeg(image: np.ndarray, quality: int, rng) -> tuple[np.ndarray, dict]:
  del rng
  return jpeg_roundtrip(image, quality), {}


def codec_double_jpeg(image: np.ndarray, quality: int, rng) -> tuple[np.ndarray, dict]:
  """A first JPEG on a shifted 8x8 grid (the image was cropped after it), then an aligned one."""
  first_quality = int(rng.integers(50, 100))
  shift = [int(s) for s in rng.integers(0, 8, 2)]
  padded = np.pad(image, ((shift[0], 0), (shift[1], 0), (0, 0)), mode="edge")
  once = jpeg_roundtrip(padded, first_quality)[shift[0] :, shift[1] :]
  return jpeg_roundtrip(np.ascontiguousarray(once), quality), {
      "first_quality": first_quality,
      "grid_shift": shift,
  }


def codec_webp(image: np.ndarray, quality: int, rng) -> tuple[np.ndarray, dict]:
  del rng
  return _roundtrip(image, "WEBP", quality), {}


CODECS = {"jpeg": codec_jpeg, "double_jpeg": codec_double_jpeg, "webp": codec_webp}

"""Synthetic splicing, copy-move and removal forgeries (paper 4.1.1, HLED `synthetic_data/`).

The paper cuts MS-COCO objects with their segmentation masks and pastes them onto 1024x1024 corner
crops of DRESDEN images, six splices per pristine crop, sometimes the same object twice (copy-move).
The per-paste randomisation follows the authors' code (docs/method.md section 5): Reinhard colour
transfer, flip/rot90, JPEG of the object, affine warp with bilinear or bicubic resampling,
alpha-edge blur, alpha compositing at a random place, JPEG of the result.

With no downloads possible, the offline sources are the photographs of `photos.py`, split by
scene so that the test splits measure generalisation to unseen backgrounds and objects. Objects are
cut from them with random smooth shapes or a Felzenszwalb segment. The paper's third manipulation,
object removal, has no generator in the authors' code: `removal` fills a random region from its
surroundings. Each step (warp, colour, blend, inpainting, whole-image filter and codec) draws one of
several implementations allowed by the options' recipe (`implementations.py`), and an example may
be made on a larger window and downscaled as a whole. Everything is driven by an explicit
`np.random.Generator`, so one seed gives one dataset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.ndimage
import skimage.draw
import skimage.segmentation

from tfds_builders.synthetic_splice import implementations
from tfds_builders.synthetic_splice import photos as photos_lib

SHAPES = ("ellipse", "polygon", "blob", "segment")


@dataclasses.dataclass(frozen=True)
class SpliceOptions:
  """Probabilities and ranges of one forgery (docs/method.md section 5 unless marked as ours)."""

  recipe: str = "paper"  # which implementations each step may draw (implementations.RECIPES)
  colour_transfer_prob: float = 0.3
  vflip_prob: float = 0.5
  rot90: bool = True  # k uniform in 0..3
  object_jpeg_prob: float = 0.95
  jpeg_quality: tuple[int, int] = (65, 99)  # inclusive; also the final codec's quality
  affine_prob: float = 0.4
  rotation_prob: float = 0.5
  max_rotation_deg: float = 90.0
  scale_prob: float = 0.6
  max_log_scale: float = math.log(2.0)  # per axis scale = exp(U(-max, max))
  shear_prob: float = 0.2
  max_shear: float = 0.3  # ours: HLED's shear range is not documented; shear factor U(-0.3, 0.3)
  max_shift: float = 4.5  # sub-pixel shift in pixels, part of the affine warp
  alpha_blur_prob: float = 0.3
  alpha_blur_sigma: float = 1.0
  final_jpeg_prob_transformed: float = 0.95
  final_jpeg_prob_untransformed: float = 0.1425
  # Ours: object side as a fraction of the background side (COCO objects in 1024 crops vary widely).
  object_size: tuple[float, float] = (0.1, 0.5)
  # Ours: a whole-image filter (blur, noise, sharpening) before the final codec.
  filter_prob: float = 0.0
  # Ours: the share of groups made on a window 1 / U(downscale_range) times larger than the
  # output and downscaled as a whole (forgery included), as a photo shared online is.
  downscale_prob: float = 0.0
  downscale_range: tuple[float, float] = (0.5, 0.8)

  def without_post(self) -> SpliceOptions:
    """Options with the whole-image steps (filter, final codec) off."""
    return dataclasses.replace(
        self, final_jpeg_prob_transformed=0.0, final_jpeg_prob_untransformed=0.0, filter_prob=0.0
    )

  def without_jpeg(self) -> SpliceOptions:
    """Options with every codec and filter off, e.g. to check masks against the pasted pixels."""
    return dataclasses.replace(self.without_post(), object_jpeg_prob=0.0)

  @property
  def implementations(self) -> implementations.Recipe:
    return implementations.RECIPES[self.recipe]


@dataclasses.dataclass
class DonorObject:
  """An object cut from a photograph: colours of its bounding box and its alpha matte in [0, 1]."""

  rgb: np.ndarray  # (h, w, 3) uint8
  alpha: np.ndarray  # (h, w) float32
  source: str
  box: tuple[int, int, int, int]  # (top, left, height, width) in the source photograph
  shape: str


@dataclasses.dataclass
class Forgery:
  """One generated example; `regions` holds each paste's mask so copy-move can be checked."""

  image: np.ndarray  # (H, W, 3) uint8
  mask: np.ndarray  # (H, W) uint8, 1 = manipulated
  manipulation_type: str  # "none", "splicing", "copy_move" or "removal"
  parameters: dict[str, Any]
  regions: list[np.ndarray]


def _ellipse_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  mask = np.zeros((height, width), bool)
  rows, cols = skimage.draw.ellipse(
      (height - 1) / 2,
      (width - 1) / 2,
      height / 2 * rng.uniform(0.6, 1.0),
      width / 2 * rng.uniform(0.6, 1.0),
      shape=(height, width),
      rotation=rng.uniform(-math.pi, math.pi),
  )
  mask[rows, cols] = True
  return mask


def _polygon_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """A random star-shaped polygon: sorted angles, radii in [0.4, 1] of the half-box."""
  num_vertices = int(rng.integers(3, 11))
  angles = np.sort(rng.uniform(0, 2 * math.pi, num_vertices))
  radii = rng.uniform(0.4, 1.0, num_vertices)
  rows = (height - 1) / 2 * (1 + radii * np.sin(angles))
  cols = (width - 1) / 2 * (1 + radii * np.cos(angles))
  mask = np.zeros((height, width), bool)
  rr, cc = skimage.draw.polygon(rows, cols, shape=(height, width))
  mask[rr, cc] = True
  return mask


def _blob_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """Smoothed noise inside an elliptic window, thresholded: an irregular smooth blob."""
  sigma = max(height, width) / rng.uniform(4.0, 10.0)
  noise = scipy.ndimage.gaussian_filter(rng.standard_normal((height, width)), sigma)
  noise /= noise.std() + 1e-12
  y, x = np.mgrid[0:height, 0:width]
  radius2 = ((y - (height - 1) / 2) / (height / 2)) ** 2 + (
      (x - (width - 1) / 2) / (width / 2)
  ) ** 2
  return noise + 2.0 * (1.0 - radius2) > 1.0


def _segment_mask(rng: np.random.Generator, crop: np.ndarray) -> np.ndarray:
  """The Felzenszwalb segment under the box centre, holes filled: an object-like region."""
  height, width = crop.shape[:2]
  segments = skimage.segmentation.felzenszwalb(
      crop, scale=float(rng.uniform(100, 500)), sigma=0.8, min_size=max(height * width // 20, 1)
  )
  mask = segments == segments[height // 2, width // 2]
  return scipy.ndimage.binary_fill_holes(mask)


def random_shape_mask(rng: np.random.Generator, crop: np.ndarray) -> tuple[np.ndarray, str]:
  """A random object shape for the box `crop`; an ellipse when one fills under 10% or over 90%."""
  height, width = crop.shape[:2]
  shape = implementations.choose(rng, SHAPES)
  if shape == "ellipse":
    mask = _ellipse_mask(rng, height, width)
  elif shape == "polygon":
    mask = _polygon_mask(rng, height, width)
  elif shape == "blob":
    mask = _blob_mask(rng, height, width)
  else:
    mask = _segment_mask(rng, crop)
  if not 0.1 <= mask.mean() <= 0.9:
    return _ellipse_mask(rng, height, width), "ellipse"
  return mask, shape


def cut_random_object(
    photo: np.ndarray, rng: np.random.Generator, *, min_side: int, max_side: int, source: str
) -> DonorObject:
  """Cuts an object of side `min_side..max_side` at a random place of `photo`, random shape."""
  photo_height, photo_width = photo.shape[:2]
  height = int(rng.integers(min_side, min(max_side, photo_height) + 1))
  width = int(rng.integers(min_side, min(max_side, photo_width) + 1))
  top = int(rng.integers(0, photo_height - height + 1))
  left = int(rng.integers(0, photo_width - width + 1))
  rgb = photo[top : top + height, left : left + width]
  mask, shape = random_shape_mask(rng, rgb)
  return DonorObject(
      rgb=rgb.copy(),
      alpha=mask.astype(np.float32),
      source=source,
      box=(top, left, height, width),
      shape=shape,
  )


def _affine_matrix(rng: np.random.Generator, options: SpliceOptions) -> tuple[np.ndarray, dict]:
  """A 2x2 linear map (x, y) and its parameters: rotation, per-axis scale, shear."""
  params = {"rotation_deg": 0.0, "scale": [1.0, 1.0], "shear": 0.0}
  if rng.random() < options.rotation_prob:
    params["rotation_deg"] = float(rng.uniform(-options.max_rotation_deg, options.max_rotation_deg))
  if rng.random() < options.scale_prob:
    params["scale"] = [
        float(s) for s in np.exp(rng.uniform(-options.max_log_scale, options.max_log_scale, 2))
    ]
  if rng.random() < options.shear_prob:
    params["shear"] = float(rng.uniform(-options.max_shear, options.max_shear))
  theta = math.radians(params["rotation_deg"])
  rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
  shear = np.array([[1.0, params["shear"]], [0.0, 1.0]])
  return rotation @ shear @ np.diag(params["scale"]), params


def affine_warp(
    obj: DonorObject, rng: np.random.Generator, options: SpliceOptions
) -> tuple[DonorObject, dict]:
  """Warps colours and alpha together onto a canvas that holds the whole transformed object."""
  linear, params = _affine_matrix(rng, options)
  shift = rng.uniform(-options.max_shift, options.max_shift, 2)
  method = implementations.choose(rng, options.implementations.warps)
  params.update(shift=[float(s) for s in shift], interpolation=method)
  height, width = obj.alpha.shape
  corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64) @ linear.T
  # Canvas from the transformed corners; the fractional part of the shift stays in the map so the
  # object is resampled at a sub-pixel offset, the integer part only moves the paste position.
  origin = np.floor(corners.min(0))
  out_width, out_height = (np.ceil(corners.max(0)) - origin).astype(int) + 2
  fraction = shift - np.floor(shift)
  inverse = np.linalg.inv(linear)
  offset = inverse @ (origin - fraction)  # output q = linear @ p - origin + fraction
  coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
  size = (int(out_width), int(out_height))
  rgb = implementations.warp(obj.rgb, coefficients, size, method)
  alpha = implementations.warp(obj.alpha, coefficients, size, method)
  warped = dataclasses.replace(obj, rgb=rgb, alpha=np.clip(alpha, 0.0, 1.0).astype(np.float32))
  return warped, params


def _jpeg_quality(rng: np.random.Generator, options: SpliceOptions) -> int:
  low, high = options.jpeg_quality
  return int(rng.integers(low, high + 1))


def randomise_object(
    obj: DonorObject, background: np.ndarray, rng: np.random.Generator, options: SpliceOptions
) -> tuple[DonorObject, dict]:
  """HLED's per-paste chain up to compositing: colour, flip/rot90, JPEG, affine, alpha blur."""
  params: dict[str, Any] = {"source": obj.source, "box": list(obj.box), "shape": obj.shape}
  rgb, alpha = obj.rgb, obj.alpha
  params["colour"] = None
  if rng.random() < options.colour_transfer_prob:
    params["colour"] = implementations.choose(rng, options.implementations.colours)
    rgb, params["colour_parameters"] = implementations.COLOURS[params["colour"]](
        rgb, alpha, background, rng
    )
  params["vflip"] = bool(rng.random() < options.vflip_prob)
  if params["vflip"]:
    rgb, alpha = rgb[::-1], alpha[::-1]
  params["rot90"] = int(rng.integers(4)) if options.rot90 else 0
  rgb, alpha = np.rot90(rgb, params["rot90"]), np.rot90(alpha, params["rot90"])
  params["object_jpeg_quality"] = None
  if rng.random() < options.object_jpeg_prob:
    params["object_jpeg_quality"] = _jpeg_quality(rng, options)
    rgb = implementations.jpeg_roundtrip(np.ascontiguousarray(rgb), params["object_jpeg_quality"])
  obj = dataclasses.replace(obj, rgb=np.ascontiguousarray(rgb), alpha=np.ascontiguousarray(alpha))
  params["affine"] = None
  if rng.random() < options.affine_prob:
    obj, params["affine"] = affine_warp(obj, rng, options)
  params["alpha_blur"] = bool(rng.random() < options.alpha_blur_prob)
  if params["alpha_blur"]:
    obj = blur_alpha_edge(obj, options.alpha_blur_sigma)
  return obj, params


def blur_alpha_edge(obj: DonorObject, sigma: float) -> DonorObject:
  """Gaussian blur of the matte, on a canvas padded by 3 sigma so the soft edge is not cut off."""
  pad = int(math.ceil(3 * sigma))
  rgb = np.pad(obj.rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
  alpha = scipy.ndimage.gaussian_filter(np.pad(obj.alpha, pad), sigma, mode="constant")
  return dataclasses.replace(obj, rgb=rgb, alpha=alpha.astype(np.float32))


def fit_object(obj: DonorObject, height: int, width: int) -> DonorObject:
  """Crops an object larger than the background to the background size, keeping its centre."""
  obj_height, obj_width = obj.alpha.shape
  top, left = max(0, (obj_height - height) // 2), max(0, (obj_width - width) // 2)
  window = (slice(top, top + height), slice(left, left + width))
  return dataclasses.replace(obj, rgb=obj.rgb[window], alpha=obj.alpha[window])


def paste(
    image: np.ndarray,
    obj: DonorObject,
    top: int,
    left: int,
    rng: np.random.Generator,
    options: SpliceOptions,
    params: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
  """Blends `obj` into `image` at (top, left) by one of the recipe's blends; returns the image and
  the boolean region of every pixel the blend touched, and records the blend in `params`."""
  params["position"] = [top, left]
  params["blend"] = implementations.choose(rng, options.implementations.blends)
  image, region, params["blend_parameters"] = implementations.BLENDS[params["blend"]](
      image, obj.rgb, obj.alpha, top, left, rng
  )
  return image, region


def random_position(
    rng: np.random.Generator, obj: DonorObject, height: int, width: int
) -> tuple[int, int]:
  """A uniform random top-left corner that keeps the object inside the background."""
  obj_height, obj_width = obj.alpha.shape
  return int(rng.integers(0, height - obj_height + 1)), int(rng.integers(0, width - obj_width + 1))


def _object_sides(background: np.ndarray, options: SpliceOptions) -> tuple[int, int]:
  side = min(background.shape[:2])
  low, high = options.object_size
  return max(8, int(low * side)), max(9, int(high * side))


def post_process(
    image: np.ndarray, transformed: bool, rng: np.random.Generator, options: SpliceOptions
) -> tuple[np.ndarray, dict[str, Any]]:
  """Whole-image steps after the forgery: maybe a filter, then maybe the final codec (more likely
  after an affine warp or a fill, as in HLED)."""
  recipe = options.implementations
  params: dict[str, Any] = {"filter": None, "final_codec": None, "final_quality": None}
  if recipe.filters and rng.random() < options.filter_prob:
    params["filter"] = implementations.choose(rng, recipe.filters)
    image, params["filter_parameters"] = implementations.FILTERS[params["filter"]](image, rng)
  jpeg_prob = (
      options.final_jpeg_prob_transformed if transformed else options.final_jpeg_prob_untransformed
  )
  if rng.random() < jpeg_prob:
    params["final_codec"] = implementations.choose(rng, recipe.codecs)
    params["final_quality"] = _jpeg_quality(rng, options)
    image, params["codec_parameters"] = implementations.CODECS[params["final_codec"]](
        image, params["final_quality"], rng
    )
  return image, params


def _finish(
    image: np.ndarray,
    regions: list[np.ndarray],
    transformed: bool,
    rng: np.random.Generator,
    options: SpliceOptions,
    manipulation_type: str,
    params: dict[str, Any],
) -> Forgery:
  """Post-processing and the mask: the union of the regions the blends touched."""
  image, post_params = post_process(image, transformed, rng, options)
  params.update(post_params, transformed=transformed)
  regions = [region.astype(np.uint8) for region in regions]
  return Forgery(
      image=image,
      mask=np.maximum.reduce(regions).astype(np.uint8),
      manipulation_type=manipulation_type,
      parameters=params,
      regions=regions,
  )


def splice(
    background: np.ndarray,
    donors: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    options: SpliceOptions = SpliceOptions(),
) -> Forgery:
  """Pastes one object cut from a random donor photograph onto `background`."""
  name = implementations.choose(rng, sorted(donors))
  min_side, max_side = _object_sides(background, options)
  obj = cut_random_object(donors[name], rng, min_side=min_side, max_side=max_side, source=name)
  return splice_object(background, obj, rng, options)


def cut_copy_move_object(
    photo: np.ndarray,
    background: np.ndarray,
    rng: np.random.Generator,
    options: SpliceOptions,
    source: str,
) -> DonorObject:
  """An object up to 2/3 of the splice size, leaving room for two copies on `background`."""
  min_side, max_side = _object_sides(background, options)
  return cut_random_object(
      photo, rng, min_side=min_side, max_side=max(min_side, max_side * 2 // 3), source=source
  )


def copy_move(
    background: np.ndarray,
    rng: np.random.Generator,
    options: SpliceOptions = SpliceOptions(),
    *,
    obj: DonorObject | None = None,
    max_tries: int = 50,
) -> Forgery:
  """Pastes one object twice, each with its own randomisation, at two places that do not touch.

  The object is cut from `background` itself (a true copy-move) unless `obj` is given (the paper's
  variant: a COCO object pasted twice). The source region is authentic and not masked.
  Pastes once when no non-touching place is found in `max_tries` (then a donor object makes it a
  splice).
  """
  height, width = background.shape[:2]
  from_background = obj is None
  if from_background:
    obj = cut_copy_move_object(background, background, rng, options, "background")
  image, regions, all_params = background, [], []
  taken = np.zeros((height, width), bool)
  for _ in range(2):
    pasted, paste_params = randomise_object(obj, background, rng, options)
    pasted = fit_object(pasted, height, width)
    for _ in range(max_tries):
      top, left = random_position(rng, pasted, height, width)
      footprint = np.zeros((height, width), bool)
      footprint[top : top + pasted.alpha.shape[0], left : left + pasted.alpha.shape[1]] = (
          pasted.alpha > 0
      )
      if not (scipy.ndimage.binary_dilation(footprint) & taken).any():
        break
    else:
      break
    image, region = paste(image, pasted, top, left, rng, options, paste_params)
    taken |= region
    regions.append(region)
    all_params.append(paste_params)
  transformed = any(p["affine"] is not None for p in all_params)
  kind = "copy_move" if from_background or len(regions) == 2 else "splicing"
  return _finish(image, regions, transformed, rng, options, kind, {"pastes": all_params})


def random_pristine_crop(
    photos: Mapping[str, np.ndarray], size: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
  """A `size` x `size` crop of a photograph large enough for it, flipped/rotated losslessly.

  A scene is drawn first, then one of its photographs (keys `scene:file`, `photos.py`), so a
  scene of 25 shots is not 25 times as likely as a scene of one. No resizing: like the paper's
  1024x1024 corner crops, the background carries no resampling trace. Photographs smaller than
  `size` only serve as donors.
  """
  names = sorted(name for name, photo in photos.items() if min(photo.shape[:2]) >= size)
  if not names:
    raise ValueError(f"no photograph among {sorted(photos)} is at least {size}x{size}")
  scenes = sorted({photos_lib.scene_of(name) for name in names})
  scene = implementations.choose(rng, scenes)
  name = implementations.choose(rng, [name for name in names if photos_lib.scene_of(name) == scene])
  photo = photos[name]
  top = int(rng.integers(0, photo.shape[0] - size + 1))
  left = int(rng.integers(0, photo.shape[1] - size + 1))
  hflip, rot90 = bool(rng.random() < 0.5), int(rng.integers(4))
  crop = photo[top : top + size, left : left + size]
  crop = np.rot90(crop[:, ::-1] if hflip else crop, rot90)
  return np.ascontiguousarray(crop), {
      "background": name,
      "crop": [top, left],
      "hflip": hflip,
      "rot90": rot90,
  }


def generate_forgery(
    background: np.ndarray,
    donors: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    *,
    copy_move_prob: float,
    removal_prob: float = 0.0,
    options: SpliceOptions = SpliceOptions(),
    copy_move_from_background: bool = True,
) -> Forgery:
  """A copy-move (`copy_move_prob`), a removal (`removal_prob`) or else a splice of `background`.

  `copy_move_from_background` switches between a true copy-move (object from the background) and
  the paper's duplicated donor object (paper 4.1.1 step 3).
  """
  draw = rng.random()
  if draw < copy_move_prob:
    if copy_move_from_background:
      return copy_move(background, rng, options)
    name = implementations.choose(rng, sorted(donors))
    obj = cut_copy_move_object(donors[name], background, rng, options, name)
    return copy_move(background, rng, options, obj=obj)
  if draw < copy_move_prob + removal_prob:
    return removal(background, rng, options)
  return splice(background, donors, rng, options)


def removal(
    background: np.ndarray, rng: np.random.Generator, options: SpliceOptions = SpliceOptions()
) -> Forgery:
  """Removes a random region: fills it from its surroundings, as an object-removal tool would.

  The region has the size and shapes of a copy-move object. Its fill comes from one of the
  recipe's inpainters (the paper recipe's: the biharmonic inpainting of the surroundings plus the
  fine grain of another place of the same photograph, so the hole is neither flat nor visibly
  blurred); the edge is feathered like a pasted object's alpha (`alpha_blur_prob`). The final
  codec follows the rule of transformed pastes: the fill is resampled, as a warped object is.
  """
  height, width = background.shape[:2]
  min_side, max_side = _object_sides(background, options)
  max_side = max(min_side, max_side * 2 // 3)
  box_height = int(rng.integers(min_side, max_side + 1))
  box_width = int(rng.integers(min_side, max_side + 1))
  margin = max(4, min(box_height, box_width) // 4)  # known pixels around the hole for the solve
  top = int(rng.integers(0, height - box_height + 1))
  left = int(rng.integers(0, width - box_width + 1))
  region, shape = random_shape_mask(
      rng, background[top : top + box_height, left : left + box_width]
  )
  alpha = region.astype(np.float32)
  params: dict[str, Any] = {"shape": shape, "box": [top, left, box_height, box_width]}
  params["alpha_blur"] = bool(rng.random() < options.alpha_blur_prob)
  # Window = box + margin, clipped to the image; the hole is the region dilated by the feather.
  win_top, win_left = max(0, top - margin), max(0, left - margin)
  win_bottom = min(height, top + box_height + margin)
  win_right = min(width, left + box_width + margin)
  hole = np.zeros((win_bottom - win_top, win_right - win_left), np.float32)
  rows, cols = top - win_top, left - win_left
  hole[rows : rows + box_height, cols : cols + box_width] = alpha
  if params["alpha_blur"]:
    hole = scipy.ndimage.gaussian_filter(hole, options.alpha_blur_sigma, mode="constant")
  window = background[win_top:win_bottom, win_left:win_right]
  params["inpainter"] = implementations.choose(rng, options.implementations.inpainters)
  fill, params["inpainter_parameters"] = implementations.INPAINTERS[params["inpainter"]](
      window, hole > 0, background, (win_top, win_left), rng
  )
  image, region = implementations.alpha_composite(
      background, implementations.to_uint8(fill), hole, win_top, win_left
  )
  return _finish(
      image, [region], True, rng, options, "removal", {"pastes": [], "removals": [params]}
  )


def authentic(background: np.ndarray) -> Forgery:
  """The pristine crop itself, all-zero mask."""
  mask = np.zeros(background.shape[:2], np.uint8)
  return Forgery(
      image=background, mask=mask, manipulation_type="none", parameters={"pastes": []}, regions=[]
  )


def _window_side(
    photos: Mapping[str, np.ndarray], size: int, rng: np.random.Generator, options: SpliceOptions
) -> int:
  """The side of the window a group is made on: `size`, or larger when it is to be downscaled."""
  if options.downscale_prob <= 0 or rng.random() >= options.downscale_prob:
    return size
  side = int(round(size / rng.uniform(*options.downscale_range)))
  largest = max(min(photo.shape[:2]) for photo in photos.values())
  return max(size, min(side, largest))


def downscale(
    forgery: Forgery, size: int, method: str, rng: np.random.Generator, options: SpliceOptions
) -> Forgery:
  """Resizes a forgery made on a larger window to `size` (mask: any manipulated pixel under the
  output pixel's footprint), then post-processes the whole image."""
  image = implementations.resize(forgery.image, (size, size), method)
  regions = [implementations.resize_mask(region, (size, size)) for region in forgery.regions]
  mask = implementations.resize_mask(forgery.mask, (size, size))
  image, post_params = post_process(
      image, forgery.parameters.get("transformed", False), rng, options
  )
  parameters = {**forgery.parameters, **post_params, "downscale": method}
  return dataclasses.replace(
      forgery, image=image, mask=mask, regions=regions, parameters=parameters
  )


def generate_group(
    photos: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    *,
    size: int,
    splices_per_pristine: int,
    include_authentic: bool,
    copy_move_prob: float,
    removal_prob: float = 0.0,
    options: SpliceOptions = SpliceOptions(),
    copy_move_from_background: bool = True,
) -> list[Forgery]:
  """One pristine crop and its forgeries (the paper makes six splices per 1024x1024 crop).

  `include_authentic` adds the crop itself as an authentic example (ours: the paper's synthetic set
  has none, but image-level scores need negatives). With `options.downscale_prob`, the group may be
  made on a larger window and every example, the authentic one too, downscaled by one kernel and
  then post-processed, so that resampling and compression traces alone never tell the classes
  apart. Outside the paper recipe, the authentic crop is post-processed like an untransformed
  forgery for the same reason.
  """
  side = _window_side(photos, size, rng, options)
  background, crop_params = random_pristine_crop(photos, side, rng)
  making = options.without_post() if side != size else options
  group = [authentic(background)] if include_authentic else []
  for _ in range(splices_per_pristine):
    group.append(
        generate_forgery(
            background,
            photos,
            rng,
            copy_move_prob=copy_move_prob,
            removal_prob=removal_prob,
            options=making,
            copy_move_from_background=copy_move_from_background,
        )
    )
  if side != size:
    method = implementations.choose(rng, options.implementations.resizes)
    group = [downscale(forgery, size, method, rng, options) for forgery in group]
  elif include_authentic and options.recipe != "paper":
    image, post_params = post_process(group[0].image, False, rng, options)
    group[0] = dataclasses.replace(
        group[0], image=image, parameters={**group[0].parameters, **post_params}
    )
  for forgery in group:
    forgery.parameters.update(crop_params, recipe=options.recipe)
  return group


def corner_crops(photo: np.ndarray, size: int) -> list[tuple[str, np.ndarray]]:
  """The paper's pristine crops: `size` x `size` at the four corners (DRESDEN, paper 4.1.1 (1))."""
  height, width = photo.shape[:2]
  if min(height, width) < size:
    return []
  corners = {
      "top_left": (0, 0),
      "top_right": (0, width - size),
      "bottom_left": (height - size, 0),
      "bottom_right": (height - size, width - size),
  }
  return [
      (name, photo[top : top + size, left : left + size]) for name, (top, left) in corners.items()
  ]


def splice_object(
    background: np.ndarray,
    obj: DonorObject,
    rng: np.random.Generator,
    options: SpliceOptions = SpliceOptions(),
) -> Forgery:
  """Pastes a given object (e.g. a COCO instance with its segmentation) onto `background`."""
  height, width = background.shape[:2]
  obj, paste_params = randomise_object(obj, background, rng, options)
  obj = fit_object(obj, height, width)
  top, left = random_position(rng, obj, height, width)
  image, region = paste(background, obj, top, left, rng, options, paste_params)
  return _finish(
      image,
      [region],
      paste_params["affine"] is not None,
      rng,
      options,
      "splicing",
      {"pastes": [paste_params]},
  )

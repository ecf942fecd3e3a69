"""The interchangeable implementations of the forgery generator and its recipes."""

import json

import numpy as np
import pytest
import scipy.ndimage

from tfds_builders.synthetic_splice import implementations as impl
from tfds_builders.synthetic_splice import photos
from tfds_builders.synthetic_splice import splicing


def _smooth_image(seed: int, height: int = 64, width: int = 80) -> np.ndarray:
  noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3))
  return impl.to_uint8(scipy.ndimage.gaussian_filter(noise, (4, 4, 0)) * 3 - 255)


def _disc(height: int, width: int, radius: float) -> np.ndarray:
  y, x = np.mgrid[0:height, 0:width]
  return (((y - height / 2) ** 2 + (x - width / 2) ** 2) <= radius**2).astype(np.float32)


@pytest.mark.parametrize(
    "method", sorted(set(impl.RECIPES["train"].warps) | {impl.HELD_OUT["warps"]})
)
def test_every_warp_translates_like_the_others(method):
  """An integer translation moves the image by that many pixels in every library, and a small
  rotation agrees with SciPy's cubic spline to within a few grey levels on a smooth image."""
  image = _smooth_image(0)
  height, width = image.shape[:2]
  shifted = impl.warp(image, (1, 0, 3, 0, 1, 2), (width, height), method)  # reads (x+3, y+2)
  np.testing.assert_allclose(
      shifted[5 : height - 10, 5 : width - 10].astype(float),
      image[7 : height - 8, 8 : width - 7].astype(float),
      atol=1.0,
  )
  angle = np.radians(5)
  rotation = (np.cos(angle), -np.sin(angle), 6.0, np.sin(angle), np.cos(angle), -4.0)
  reference = impl.warp(image, rotation, (width, height), "scipy_spline3").astype(float)
  rotated = impl.warp(image, rotation, (width, height), method).astype(float)
  inner = (slice(12, height - 12), slice(12, width - 12))
  tolerance = 12.0 if method == "pil_nearest" else 4.0
  assert np.abs(rotated[inner] - reference[inner]).mean() < tolerance


def test_mattes_warp_as_float_and_stay_in_range():
  matte = _disc(40, 40, 12)
  for method in impl.RECIPES["train"].warps + (impl.HELD_OUT["warps"],):
    out = impl.warp(matte, (0.8, 0.1, 2, -0.1, 0.8, 3), (48, 48), method)
    assert out.dtype == np.float32 and out.shape == (48, 48)
    area = matte.sum() / np.linalg.det(
        [[0.8, 0.1], [-0.1, 0.8]]
    )  # the map reads input = A @ output
    assert abs(float(np.clip(out, 0, 1).sum()) - area) < 0.1 * area


@pytest.mark.parametrize(
    "method", sorted(set(impl.RECIPES["train"].resizes) | {impl.HELD_OUT["resizes"]})
)
def test_every_resize_keeps_a_flat_image_flat(method):
  flat = np.full((90, 90, 3), 123, np.uint8)
  out = impl.resize(flat, (60, 60), method)
  assert out.shape == (60, 60, 3) and np.all(out == 123)


def test_resized_mask_marks_every_pixel_whose_footprint_holds_a_manipulated_pixel():
  mask = np.zeros((90, 90), np.uint8)
  mask[31, 44] = 1  # one pixel: footprint of output (20, 29) at factor 1.5
  out = impl.resize_mask(mask, (60, 60))
  assert out.sum() >= 1 and out[20, 29] == 1 and out.sum() <= 4


@pytest.mark.parametrize("name", sorted(impl.COLOURS))
def test_every_colour_step_changes_the_object_and_keeps_its_shape(name):
  rng = np.random.default_rng(1)
  obj, background = _smooth_image(1, 40, 40), _smooth_image(2, 64, 64) // 2
  out, params = impl.COLOURS[name](obj, _disc(40, 40, 15), background, rng)
  assert out.shape == obj.shape and out.dtype == np.uint8
  assert np.abs(out.astype(int) - obj).mean() > 2 and isinstance(params, dict)


@pytest.mark.parametrize("name", sorted(impl.BLENDS))
def test_every_blend_touches_only_its_region_and_pastes_the_object(name):
  background, obj = _smooth_image(3, 96, 96), _smooth_image(4, 40, 40)
  alpha = _disc(40, 40, 16)
  out, region, _ = impl.BLENDS[name](background, obj, alpha, 30, 28, np.random.default_rng(0))
  assert out.shape == background.shape and region.shape == background.shape[:2]
  changed = (out != background).any(-1)
  assert not changed[~region].any(), "a pixel outside the region differs from the background"
  centre = (slice(30 + 14, 30 + 26), slice(28 + 14, 28 + 26))
  assert changed[centre].mean() > 0.9
  if name != "poisson":  # the others paste the object's own colours at its centre
    np.testing.assert_allclose(out[centre].astype(float), obj[14:26, 14:26], atol=12)


def test_poisson_blend_keeps_the_objects_gradients_and_meets_the_background():
  """Gradient-domain cloning of a ramp onto the same ramp made brighter gives the background."""
  ramp = np.broadcast_to(np.linspace(40, 160, 96)[None, :, None], (96, 96, 3))
  background = impl.to_uint8(ramp + 50)
  obj = impl.to_uint8(ramp[20:60, 30:70])  # the same ramp, 50 darker
  out, region, _ = impl.blend_poisson(background, obj, _disc(40, 40, 16), 20, 30, None)
  assert region.sum() > 600
  np.testing.assert_allclose(out[region].astype(float), background[region], atol=1)


def test_multiband_blend_is_the_object_inside_and_the_background_far_outside():
  background, obj = _smooth_image(5, 128, 128), _smooth_image(6, 64, 64)
  alpha = np.zeros((64, 64), np.float32)
  alpha[8:56, 8:56] = 1
  out, region, _ = impl.blend_multiband(background, obj, alpha, 32, 32, None)
  np.testing.assert_allclose(out[32 + 24 : 32 + 40, 32 + 24 : 32 + 40], obj[24:40, 24:40], atol=3)
  assert np.array_equal(out[:8], background[:8])  # more than the pyramid's reach away


@pytest.mark.parametrize("name", sorted(impl.INPAINTERS))
def test_every_inpainter_fills_the_whole_hole_from_the_photograph(name):
  photo = _smooth_image(7, 160, 160)
  window = photo[40:100, 50:110]
  hole = _disc(60, 60, 18) > 0
  fill, params = impl.INPAINTERS[name](window, hole, photo, (40, 50), np.random.default_rng(3))
  assert fill.shape == window.shape and np.isfinite(fill).all()
  composite = impl.to_uint8(np.where(hole[..., None], fill, window))
  assert np.abs(composite[hole].astype(int) - window[hole]).mean() > 1  # the content is replaced
  assert np.array_equal(composite[~hole], window[~hole])
  assert json.dumps(params)  # recorded with the example
  if name == "exemplar":  # every filled pixel is a pixel of the known part of the window
    known = {tuple(p) for p in window[~hole].astype(int)}
    assert all(tuple(p) in known for p in impl.to_uint8(fill)[hole].astype(int))


@pytest.mark.parametrize("name", sorted(impl.FILTERS))
def test_every_filter_changes_the_image_slightly(name):
  image = impl.to_uint8(_smooth_image(8) + np.random.default_rng(0).normal(0, 8, (64, 80, 3)))
  out, _ = impl.FILTERS[name](image, np.random.default_rng(4))
  difference = np.abs(out.astype(int) - image)
  assert out.shape == image.shape and 0.1 < difference.mean() < 12


@pytest.mark.parametrize("name", sorted(impl.CODECS))
def test_every_codec_compresses_and_decodes_at_the_same_size(name):
  image = _smooth_image(9)
  out, params = impl.CODECS[name](image, 60, np.random.default_rng(5))
  assert out.shape == image.shape and 0 < np.abs(out.astype(int) - image).mean() < 10
  if name == "double_jpeg":
    assert 50 <= params["first_quality"] <= 99 and all(0 <= s < 8 for s in params["grid_shift"])


def _drawn_names(forgery) -> dict[str, set]:
  params = forgery.parameters
  names = {step: set() for step in impl.HELD_OUT}
  for paste in params["pastes"]:
    names["blends"].add(paste["blend"])
    if paste["colour"]:
      names["colours"].add(paste["colour"])
    if paste["affine"]:
      names["warps"].add(paste["affine"]["interpolation"])
  for removal in params.get("removals", []):
    names["inpainters"].add(removal["inpainter"])
  for step, key in (("filters", "filter"), ("codecs", "final_codec"), ("resizes", "downscale")):
    if params.get(key):
      names[step].add(params[key])
  return names


@pytest.fixture(scope="module")
def test_photos():
  return photos.load_split("test")


def _options(recipe, **overrides):
  base = dict(
      recipe=recipe,
      colour_transfer_prob=0.5,
      filter_prob=0.5,
      downscale_prob=0.5,
      affine_prob=0.8,
      final_jpeg_prob_untransformed=0.5,
  )
  return splicing.SpliceOptions(**(base | overrides))


def _groups(photos_, recipe, seeds, **overrides):
  for seed in seeds:
    yield splicing.generate_group(
        photos_,
        np.random.default_rng(seed),
        size=96,
        splices_per_pristine=6,
        include_authentic=True,
        copy_move_prob=0.3,
        removal_prob=0.3,
        options=_options(recipe, **overrides),
    )


def test_training_never_draws_a_held_out_implementation_and_the_held_out_split_only_those(
    test_photos,
):
  seen = {recipe: {step: set() for step in impl.HELD_OUT} for recipe in ("train", "heldout")}
  for recipe in seen:
    for group in _groups(test_photos, recipe, range(12)):
      for forgery in group:
        for step, names in _drawn_names(forgery).items():
          seen[recipe][step] |= names
  for step, held_out in impl.HELD_OUT.items():
    assert held_out not in seen["train"][step], step
    assert seen["heldout"][step] <= {held_out}, step
  assert all(seen["heldout"].values()), "a held-out implementation was never drawn"
  assert all(len(names) >= 2 for names in seen["train"].values()), seen["train"]


@pytest.mark.parametrize("recipe", ["train", "heldout"])
def test_masks_hold_every_changed_pixel_and_groups_are_deterministic(test_photos, recipe):
  """Without whole-image steps, a native forgery differs from its authentic crop only under its
  mask; a downscaled one's mask is the footprint rule applied to the mask at window size. One
  seed gives one group."""
  for seed in range(6):
    group, again = (
        next(
            _groups(
                test_photos,
                recipe,
                [seed],
                final_jpeg_prob_untransformed=0.0,
                final_jpeg_prob_transformed=0.0,
                filter_prob=0.0,
            )
        )
        for _ in range(2)
    )
    for a, b in zip(group, again):
      assert np.array_equal(a.image, b.image) and a.parameters == b.parameters
    authentic = group[0]
    assert authentic.manipulation_type == "none" and not authentic.mask.any()
    for forgery in group[1:]:
      assert forgery.mask.any() and forgery.image.shape == (96, 96, 3)
      if "downscale" not in forgery.parameters:
        changed = (forgery.image != authentic.image).any(-1)
        assert not changed[forgery.mask == 0].any(), forgery.parameters
      union = np.maximum.reduce(forgery.regions)
      np.testing.assert_array_equal(forgery.mask, union)

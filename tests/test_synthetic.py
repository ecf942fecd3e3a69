"""Synthetic splicing generator and the `synthetic_splice` TFDS builder."""

import json
import pathlib

import numpy as np
import PIL.Image
import pytest
import scipy.ndimage
import tensorflow_datasets as tfds

from synthetic_data import TINY, tiny_data_dir  # noqa: F401  (session fixture)
from tfds_builders import manual
from tfds_builders.synthetic_splice import photos
from tfds_builders.synthetic_splice import splicing
from tfds_builders.synthetic_splice import synthetic_splice_dataset_builder as builder_lib

NO_JPEG = splicing.SpliceOptions().without_jpeg()


def _skimage_photos(split):
  return photos.load_split(split, ("skimage",))


@pytest.fixture(scope="module")
def train_photos():
  return _skimage_photos("train")


def _group(photos, seed, options=splicing.SpliceOptions(), copy_move_prob=0.3):
  return splicing.generate_group(
      photos,
      np.random.default_rng(seed),
      size=96,
      splices_per_pristine=6,
      include_authentic=True,
      copy_move_prob=copy_move_prob,
      options=options,
  )


def test_same_seed_same_forgeries_other_seed_others(train_photos):
  first, again, other = (_group(train_photos, seed) for seed in (7, 7, 8))
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.parameters == b.parameters and a.manipulation_type == b.manipulation_type
  assert any(not np.array_equal(a.image, c.image) for a, c in zip(first, other))


@pytest.mark.parametrize("copy_move_prob", [0.0, 1.0])
def test_mask_marks_exactly_the_pasted_pixels(train_photos, copy_move_prob):
  """Without JPEG, every pixel outside the mask is the pristine background's, bit for bit."""
  for seed in range(6):
    group = _group(train_photos, seed, NO_JPEG, copy_move_prob)
    background = group[0].image  # the authentic crop
    assert group[0].manipulation_type == "none" and not group[0].mask.any()
    for forgery in group[1:]:
      changed = np.any(forgery.image != background, axis=-1)
      mask = forgery.mask.astype(bool)
      assert mask.any() and set(np.unique(forgery.mask)) <= {0, 1}
      assert not changed[~mask].any(), "a pixel outside the mask differs from the background"
      assert changed[mask].mean() > 0.3, "the mask covers mostly untouched pixels"
      assert forgery.parameters["final_quality"] is None


def test_final_jpeg_changes_the_whole_image(train_photos):
  options = splicing.SpliceOptions(
      final_jpeg_prob_transformed=1.0, final_jpeg_prob_untransformed=1.0
  )
  group = _group(train_photos, 3, options)
  forgery = group[1]
  assert forgery.parameters["final_codec"] == "jpeg"
  assert 65 <= forgery.parameters["final_quality"] <= 99
  assert np.any(forgery.image != group[0].image, axis=-1)[~forgery.mask.astype(bool)].any()


def test_copy_move_pastes_two_separate_copies_of_a_background_object(train_photos):
  for seed in range(5):
    background, _ = splicing.random_pristine_crop(train_photos, 128, np.random.default_rng(seed))
    forgery = splicing.copy_move(background, np.random.default_rng(seed), NO_JPEG)
    assert forgery.manipulation_type == "copy_move"
    first, second = (region.astype(bool) for region in forgery.regions)
    assert first.any() and second.any()
    assert not (scipy.ndimage.binary_dilation(first) & second).any(), "copies touch or overlap"
    np.testing.assert_array_equal(forgery.mask, (first | second).astype(np.uint8))
    pastes = forgery.parameters["pastes"]
    assert len(pastes) == 2 and pastes[0]["source"] == pastes[1]["source"] == "background"
    assert pastes[0]["box"] == pastes[1]["box"]  # one object, cut once


def test_affine_warp_keeps_the_object_and_records_parameters(train_photos):
  options = splicing.SpliceOptions(affine_prob=1.0, rotation_prob=1.0, scale_prob=1.0)
  obj = splicing.cut_random_object(
      train_photos["astronaut:astronaut.png"],
      np.random.default_rng(0),
      min_side=40,
      max_side=60,
      source="astronaut.png",
  )
  warped, params = splicing.affine_warp(obj, np.random.default_rng(1), options)
  assert -90 <= params["rotation_deg"] <= 90 and all(0.5 <= s <= 2 for s in params["scale"])
  assert all(abs(s) <= 4.5 for s in params["shift"])
  assert params["interpolation"] in ("pil_bilinear", "pil_bicubic")  # the paper recipe's
  # The warped matte keeps the object's area up to the scale (nothing is cut off by the canvas).
  expected = obj.alpha.sum() * np.prod(params["scale"])
  assert warped.alpha.sum() == pytest.approx(expected, rel=0.05)


def test_scenes_are_disjoint_by_split_and_every_photograph_is_a_real_colour_photo():
  files = [(scene.source, file) for scene in photos.SCENES for file in scene.files]
  assert len(files) == len(set(files)), "a photograph is listed twice"
  assert len({scene.name for scene in photos.SCENES}) == len(photos.SCENES)
  split_of = {scene.name: scene.split for scene in photos.SCENES}
  assert split_of["motorcycle"] == "train" and split_of["campus"] == "train"
  # The cross-source test is one whole source, and no other split reads it.
  assert {s.source for s in photos.SCENES if s.split == "test_cross_source"} == {"sporco"}
  assert all(s.split == "test_cross_source" for s in photos.SCENES if s.source == "sporco")
  contents = set()
  for split in photos.SCENE_SPLITS:
    for key, photo in photos.load_split(split).items():
      assert photo.ndim == 3 and photo.shape[2] == 3 and photo.std() > 10, key
      channel_spread = np.abs(photo.astype(int) - photo.mean(-1, keepdims=True)).mean()
      assert channel_spread > 2, f"{key} is a grey-level image"
      contents.add(photo.tobytes())
  assert len(contents) == len(files), "two listed files hold the same pixels"


def test_no_dataset_reads_the_photographs_kept_for_outside_tests():
  """scikit-learn's and matplotlib's sample images are reserved for an outside test."""
  for scene in photos.SCENES:
    assert photos.SOURCES[scene.source].package not in ("sklearn", "matplotlib")
    for file in scene.files:
      path = photos.source_dir(scene.source) / file
      assert path.is_file() and "sklearn" not in str(path) and "matplotlib" not in str(path)


def test_tiny_build_round_trip(tiny_data_dir):
  sources = tfds.data_source(TINY, data_dir=tiny_data_dir)
  assert {split: len(source) for split, source in sources.items()} == {
      "train": 16,
      "validation": 8,
      "test": 8,
      "test_heldout_generator": 8,
      "test_cross_source": 8,
  }
  for split, source in sources.items():
    scenes = {s.name for s in photos.scenes_of_split(builder_lib.PHOTO_SPLIT[split])}
    for record in source:
      params = json.loads(record["parameters"])
      assert photos.scene_of(params["background"]) in scenes
      assert {photos.scene_of(paste["source"]) for paste in params["pastes"]} <= scenes | {
          "background"
      }
      assert params["recipe"] == builder_lib.RECIPE[split]
      assert record["image"].shape == (128, 128, 3) and record["mask"].shape == (128, 128, 1)
      assert record["label"] == int(record["mask"].any())
      assert (record["manipulation_type"] == 0) == (record["label"] == 0)  # 0 = "none"
      assert record["original_size"].tolist() == [128, 128]


def test_stored_examples_are_the_generator_output(tiny_data_dir):
  """PNG storage is lossless: a record equals the forgery regenerated from its key's seed."""
  config = tfds.builder(TINY, data_dir=tiny_data_dir).builder_config
  records = {
      record["file_name"].decode(): record
      for record in tfds.data_source(TINY, split="validation", data_dir=tiny_data_dir)
  }
  group = splicing.generate_group(
      _skimage_photos("validation"),
      np.random.default_rng([config.seed, 1, 1]),
      size=config.image_size,
      splices_per_pristine=config.splices_per_pristine,
      include_authentic=config.include_authentic,
      copy_move_prob=config.copy_move_prob,
      removal_prob=config.removal_prob,
      options=config.options("validation"),
  )
  for k, forgery in enumerate(group):
    record = records[f"validation_000001_{k}"]
    np.testing.assert_array_equal(record["image"], forgery.image)
    np.testing.assert_array_equal(record["mask"][..., 0], forgery.mask)


def _write_manual_tree(root: pathlib.Path, num_photos: int = 20, num_coco: int = 20) -> None:
  """Pristine photographs plus a COCO-format set (polygon instances), one broken pristine file."""
  rng = np.random.default_rng(0)
  (root / "pristine" / "cam").mkdir(parents=True)
  for i in range(num_photos):
    photo = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (72, 80, 3)), (3, 3, 0))
    PIL.Image.fromarray(photo.astype(np.uint8)).save(root / "pristine" / "cam" / f"P{i:03d}.png")
  (root / "pristine" / "broken.png").write_bytes(b"not a png")
  (root / "coco" / "val2017").mkdir(parents=True)
  (root / "coco" / "annotations").mkdir()
  images, annotations = [], []
  for i in range(num_coco):
    colour = rng.integers(0, 255, 3)
    pixels = np.broadcast_to(colour, (40, 48, 3)).astype(np.uint8)
    PIL.Image.fromarray(pixels).save(root / "coco" / "val2017" / f"{i:012d}.jpg")
    images.append({"id": i + 1, "file_name": f"{i:012d}.jpg", "height": 40, "width": 48})
    polygon = [8, 6, 40, 10, 30, 34, 10, 30]
    annotations.append(
        {
            "id": 100 + i,
            "image_id": i + 1,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": [polygon],
            "area": 700.0,
            "bbox": [8, 6, 32, 28],
        }
    )
  annotations.append(
      {
          "id": 999,
          "image_id": 1,
          "category_id": 1,
          "iscrowd": 0,  # too small
          "segmentation": [[1, 1, 4, 1, 4, 4]],
          "area": 4.5,
          "bbox": [1, 1, 3, 3],
      }
  )
  coco = {
      "images": images,
      "annotations": annotations,
      "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}],
  }
  (root / "coco" / "annotations" / "instances_val2017.json").write_text(json.dumps(coco))


def test_manual_source_with_coco_donors(tmp_path):
  _write_manual_tree(tmp_path / "manual")
  config = builder_lib.SyntheticSpliceConfig(
      name="manual_test",
      source="manual",
      image_size=64,
      num_pristine=(0, 0, 0),
      splices_per_pristine=2,
      min_object_area=100,
  )
  builder = builder_lib.Builder(config=config, data_dir=tmp_path / "data")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=tmp_path / "manual", try_download_gcs=False
      )
  )
  sources = builder.as_data_source()
  backgrounds, donors = {}, {}
  for split, source in sources.items():
    params = [json.loads(record["parameters"]) for record in source]
    backgrounds[split] = {p["background"] for p in params}
    donors[split] = {
        paste["source"].split("#")[0]
        for p in params
        for paste in p["pastes"]
        if paste["source"] != "background"
    }
    # Each pristine photograph gives 4 corner crops x (1 authentic + 2 forgeries).
    assert len(source) == 12 * len(backgrounds[split]) > 0
    for record in source:
      assert record["image"].shape == (64, 64, 3)
      assert record["label"] == int(record["mask"].any())
  assert "broken.png" not in set().union(*backgrounds.values())
  assert sum(len(names) for names in backgrounds.values()) == 20
  for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
    assert not backgrounds[a] & backgrounds[b] and not donors[a] & donors[b]
  assert donors["train"], "no COCO object was pasted"


def test_manual_source_without_layout_names_the_dataset(tmp_path):
  (tmp_path / "manual").mkdir()
  (tmp_path / "manual" / "readme.txt").write_text("wrong folder")
  builder = tfds.builder("synthetic_splice/manual", data_dir=tmp_path / "data")
  with pytest.raises(manual.ManualDirError, match="synthetic_splice/manual.*pristine"):
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=tmp_path / "manual", try_download_gcs=False
        )
    )


def test_removal_fills_exactly_the_masked_region(train_photos):
  """A removal changes pixels only under its mask, changes most of them, and hides no flat hole."""
  for seed in range(4):
    rng = np.random.default_rng(seed)
    background, _ = splicing.random_pristine_crop(train_photos, 96, rng)
    forgery = splicing.removal(background, rng, NO_JPEG)
    assert forgery.manipulation_type == "removal" and forgery.mask.any()
    changed = (forgery.image != background).any(-1)
    assert not (changed & (forgery.mask == 0)).any()
    assert changed[forgery.mask == 1].mean() > 0.5
    filled = forgery.image[forgery.mask == 1].astype(np.float64)
    assert filled.std(0).max() > 1.0  # grain, not a flat patch


def test_removal_share_of_a_group(train_photos):
  """`removal_prob` = 1 makes every forgery of a group a removal; 0 makes none."""
  for prob, expected in ((1.0, {"removal"}), (0.0, {"splicing", "copy_move"})):
    group = splicing.generate_group(
        train_photos,
        np.random.default_rng(0),
        size=96,
        splices_per_pristine=6,
        include_authentic=False,
        copy_move_prob=0.0 if prob else 0.5,
        removal_prob=prob,
    )
    assert {forgery.manipulation_type for forgery in group} <= expected
    assert (prob == 0.0) or all(f.manipulation_type == "removal" for f in group)

"""Manual-download builders built from fixture trees that copy each dataset's real layout."""

import collections
import logging

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from lstm_endec_jax.data import image_io
import tfds_builders  # noqa: F401  (registers the builders)
from tfds_builders import manual
import fixture_trees

NAMES = sorted(fixture_trees.WRITERS)


def read_back(name: str, data_dir) -> dict[str, dict[str, dict]]:
  """Every example of every split, by split and file name, through `tfds.data_source`."""
  sources = tfds.data_source(name, data_dir=data_dir, download=False)
  return {
      split: {example["file_name"].decode(): example for example in source}
      for split, source in sources.items()
  }


@pytest.mark.parametrize("name", NAMES)
def test_builder_reads_fixture_tree(name, tmp_path, caplog):
  # A manual directory shared by several datasets: each one reads its own `<name>[/<config>]/`.
  tree = fixture_trees.WRITERS[name](tmp_path / "manual" / name)
  fixture_trees.write_hled_synthetic(tmp_path / "manual" / "not_this_dataset")
  builder = tree.builder(config=tree.config, data_dir=tmp_path / "data")
  with caplog.at_level(logging.WARNING):
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
    )

  by_split = read_back(name, tmp_path / "data")
  split_of = {file_name: split for split, examples in by_split.items() for file_name in examples}
  examples = {name: ex for split in by_split.values() for name, ex in split.items()}
  assert sum(map(len, by_split.values())) == len(examples)  # no file in two splits
  assert set(examples) == set(tree.examples)

  types = builder.info.features["manipulation_type"]
  for file_name, expected in tree.examples.items():
    example = examples[file_name]
    assert example["label"] == expected.label, file_name
    assert types.int2str(example["manipulation_type"]) == expected.manipulation_type, file_name
    assert example["mask"].shape == (*expected.mask.shape, 1), file_name
    np.testing.assert_array_equal(example["mask"][..., 0], expected.mask, file_name)
    np.testing.assert_array_equal(example["original_size"], expected.mask.shape)
    if expected.image is not None:
      np.testing.assert_array_equal(example["image"], expected.image, file_name)

  stored = tfds.builder(name, data_dir=tmp_path / "data").info.metadata["skipped_files"]
  reasons = {skip["file_name"]: skip["reason"] for skip in stored}
  assert set(reasons) == set(tree.skipped)
  for file_name, reason in tree.skipped.items():
    assert reason in reasons[file_name], (file_name, reasons[file_name])
    assert f"{file_name}: {reasons[file_name]}" in caplog.text  # the summary line of the log

  if tree.splits is not None:
    assert set(by_split) == tree.splits
  else:
    assert {"train", "test"} <= set(by_split) <= {"train", "validation", "test"}
    assert len(by_split["train"]) > len(by_split["test"])
  for family in tree.families:
    assert len({split_of[file_name] for file_name in family}) == 1, family


@pytest.mark.parametrize("state", ["missing", "empty", "unrelated"])
@pytest.mark.parametrize("name", NAMES)
def test_bad_manual_dir_names_dataset_and_layout(name, state, tmp_path):
  manual_dir = tmp_path / "manual"
  if state != "missing":
    manual_dir.mkdir()
  if state == "unrelated":
    (manual_dir / "notes.txt").write_text("not the dataset")
  builder = tfds.builder(name, data_dir=tmp_path / "data")
  with pytest.raises(manual.ManualDirError) as error:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
  message = str(error.value)
  assert message.startswith(f"{builder.name}: ")
  assert builder.MANUAL_DOWNLOAD_INSTRUCTIONS in message
  assert str(manual_dir) in message


def test_manual_dir_may_be_the_dataset_folder_itself(tmp_path):
  tree = fixture_trees.write_coverage(tmp_path / "COVERAGE-download")
  builder = tfds.builder("coverage", data_dir=tmp_path / "data")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "COVERAGE-download")
  )
  assert set(read_back("coverage", tmp_path / "data")["test"]) == set(tree.examples)


def test_group_split_keeps_groups_whole_and_meets_fractions():
  rng = np.random.default_rng(1)
  groups = [f"scene{g}" for g in rng.integers(0, 400, size=2000)]
  splits = manual.group_split(groups, seed=3)
  assert splits == manual.group_split(groups, seed=3)
  assert splits != manual.group_split(groups, seed=4)
  split_of_group = collections.defaultdict(set)
  for group, split in zip(groups, splits):
    split_of_group[group].add(split)
  assert all(len(names) == 1 for names in split_of_group.values())
  largest_group = max(collections.Counter(groups).values())
  counts = collections.Counter(splits)
  for split, fraction in manual.SPLIT_FRACTIONS:
    assert abs(counts[split] - fraction * len(groups)) <= largest_group


def test_union_find_joins_chains_of_related_files():
  families = manual.UnionFind()
  families.union(["probe/a.jpg", "world/base.jpg"])
  families.union(["probe/b.jpg", "world/base.jpg", "probe/control.jpg"])
  families.union(["probe/c.jpg"])
  assert families.find("probe/a.jpg") == families.find("probe/control.jpg")
  assert families.find("probe/c.jpg") != families.find("probe/a.jpg")


def test_builders_decode_images_as_predict_does(tmp_path):
  """One decoder: what a dataset stores is what `predict` reads from the same file (16-bit PNG,
  EXIF-rotated JPEG), and a mask drawn on the stored pixels turns with its image."""
  folder = tmp_path / "manual" / "imd2020" / "IMD2020" / "a1"
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  sixteen_bit = (rng.integers(0, 65536, (24, 40))).astype(np.uint16)
  Image.fromarray(sixteen_bit).save(folder / "deep_0.png")
  stored = rng.integers(0, 256, (24, 40, 3), np.uint8)
  exif = Image.Exif()
  exif[image_io.ORIENTATION_TAG] = 6  # displayed rotated 90 degrees clockwise
  Image.fromarray(stored).save(folder / "turned_0.jpg", exif=exif, quality=95)
  mask = np.zeros((24, 40), np.uint8)
  mask[:8, :10] = 255  # top-left corner of the stored pixels
  for name in ("deep_0", "turned_0"):
    Image.fromarray(mask).save(folder / f"{name}_mask.png")
  Image.fromarray(stored).save(folder / "a1_orig.png")

  builder = tfds.builder("imd2020", data_dir=tmp_path / "data")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
  )
  examples = {
      name: example
      for split in read_back("imd2020", tmp_path / "data").values()
      for name, example in split.items()
  }

  for name in ("IMD2020/a1/deep_0.png", "IMD2020/a1/turned_0.jpg"):
    np.testing.assert_array_equal(
        examples[name]["image"], image_io.read_image(tmp_path / "manual" / "imd2020" / name)
    )
  assert examples["IMD2020/a1/deep_0.png"]["image"].max() > 128  # scaled, not clipped to 255
  turned = examples["IMD2020/a1/turned_0.jpg"]
  assert turned["image"].shape == (40, 24, 3)
  # Clockwise: the stored top-left corner is now the top-right corner.
  np.testing.assert_array_equal(turned["mask"][..., 0], np.rot90(mask > 0, -1))

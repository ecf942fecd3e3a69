"""The bring-your-own-dataset builder: Tp/Gt/Au folders and IMDL-BenCo JSON lists."""

import json
import logging

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

import tfds_builders  # noqa: F401  (registers the builders)

SIZE = 24


def _image(path, seed):
  path.parent.mkdir(parents=True, exist_ok=True)
  pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), np.uint8)
  Image.fromarray(pixels).save(path)
  return pixels


def _mask(path, top, size=(SIZE, SIZE), white=True):
  path.parent.mkdir(parents=True, exist_ok=True)
  manipulated = np.zeros(size, bool)
  manipulated[top : top + 5, 2:9] = True
  Image.fromarray(np.where(manipulated == white, 255, 0).astype(np.uint8)).save(path)
  return manipulated


def _build(tmp_path, caplog):
  with caplog.at_level(logging.WARNING):
    tfds.builder("own_forgeries", data_dir=tmp_path / "data").download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
    )
  sources = tfds.data_source("own_forgeries", data_dir=tmp_path / "data", download=False)
  examples = {
      example["file_name"].decode(): (split, example)
      for split, source in sources.items()
      for example in source
  }
  skipped = tfds.builder("own_forgeries", data_dir=tmp_path / "data").info.metadata
  return examples, {s["file_name"]: s["reason"] for s in skipped["skipped_files"]}


def test_folders_pair_by_stem_never_by_sorted_order(tmp_path, caplog):
  root = tmp_path / "manual" / "own_forgeries"
  expected = {}
  # b has no mask: pairing sorted listings would give b the mask of c, and c that of d.
  for index, (stem, mask_name) in enumerate(
      (("a", "a_gt.png"), ("c", "c_mask.png"), ("d", "d_edgemask.png"), ("e", "e.png"))
  ):
    _image(root / "Tp" / f"{stem}.png", index)
    expected[f"Tp/{stem}.png"] = _mask(root / "Gt" / mask_name, top=2 + 3 * index)
  _image(root / "Tp" / "b.png", 10)
  _image(root / "Tp" / "f.png", 11)
  _mask(root / "Gt" / "f_gt.png", top=1)
  _mask(root / "Gt" / "f_mask.png", top=1)  # two masks fit f: ambiguous
  _image(root / "Tp" / "g.png", 12)
  _mask(root / "Gt" / "g_gt.png", top=1, size=(SIZE // 2, SIZE))  # wrong size
  _mask(root / "Gt" / "orphan_gt.png", top=1)
  for index in range(3):
    _image(root / "Au" / f"au{index}.png", 20 + index)

  examples, skipped = _build(tmp_path, caplog)

  assert set(examples) == set(expected) | {f"Au/au{index}.png" for index in range(3)}
  for name, mask in expected.items():
    np.testing.assert_array_equal(examples[name][1]["mask"][..., 0], mask, name)
    assert examples[name][1]["label"] == 1
  assert all(examples[f"Au/au{i}.png"][1]["label"] == 0 for i in range(3))
  assert "missing mask" in skipped["Tp/b.png"]
  assert "several masks" in skipped["Tp/f.png"]
  assert "12x24, image is 24x24" in skipped["Tp/g.png"]
  assert "without an image" in skipped["Gt/orphan_gt.png"]


def test_imdl_benco_json_list_with_splits_and_black_masks(tmp_path, caplog):
  root = tmp_path / "manual" / "own_forgeries"
  elsewhere = tmp_path / "elsewhere"  # absolute paths outside the dataset folder work too
  (root).mkdir(parents=True)
  (root / "options.json").write_text(json.dumps({"manipulated": "black"}))
  lists = {"train": [], "test": []}
  truth = {}
  for index in range(4):
    split = "train" if index < 3 else "test"
    _image(root / "img" / f"t{index}.jpg", index)
    truth[f"img/t{index}.jpg"] = _mask(root / "masks" / f"t{index}.png", top=index, white=False)
    lists[split].append([f"img/t{index}.jpg", f"masks/t{index}.png"])
  _image(elsewhere / "authentic.png", 9)
  lists["train"].append([str(elsewhere / "authentic.png"), "Negative"])
  lists["test"].append(["img/missing.jpg", "Negative"])
  # A mask whose "manipulated" part is most of the image: a warning, the example is kept.
  _image(root / "img" / "inverted.png", 7)
  _mask(root / "masks" / "inverted.png", top=3, white=True)
  lists["test"].append(["img/inverted.png", "masks/inverted.png"])
  for split, entries in lists.items():
    (root / f"{split}.json").write_text(json.dumps(entries))

  examples, skipped = _build(tmp_path, caplog)

  assert {name: split for name, (split, _) in examples.items()} == {
      "img/t0.jpg": "train",
      "img/t1.jpg": "train",
      "img/t2.jpg": "train",
      "img/t3.jpg": "test",
      (elsewhere / "authentic.png").as_posix(): "train",
      "img/inverted.png": "test",
  }
  for name, mask in truth.items():
    np.testing.assert_array_equal(examples[name][1]["mask"][..., 0], mask, name)
  assert examples[(elsewhere / "authentic.png").as_posix()][1]["label"] == 0
  assert "no such image file" in skipped["img/missing.jpg"]
  assert "inverted, set" in caplog.text


def test_a_folder_without_either_layout_names_both(tmp_path):
  (tmp_path / "manual" / "own_forgeries" / "photos").mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match="no Tp/ folder.*JSON list"):
    tfds.builder("own_forgeries", data_dir=tmp_path / "data").download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
    )

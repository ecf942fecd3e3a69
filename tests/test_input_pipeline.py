"""grain input pipeline over the tiny synthetic_splice build."""

import itertools

import grain
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from lstm_endec_jax.data import input_pipeline
from synthetic_data import TINY, tiny_data_dir  # noqa: F401  (session fixture)


@pytest.fixture
def config(tiny_data_dir):
  config = ml_collections.ConfigDict()
  config.dataset = input_pipeline.default_dataset_config()
  config.dataset.name = TINY
  config.dataset.data_dir = str(tiny_data_dir)
  config.dataset.crop_size = 96  # of the tiny 128x128 images
  config.dataset.worker_count = 0
  config.dataset.read_threads = 2
  config.batch_size = 4
  return config


def _batches(loader, count):
  return list(itertools.islice(iter(loader), count))


def _assert_same(batches, others):
  assert len(batches) == len(others)
  for batch, other in zip(batches, others):
    for key in batch:
      np.testing.assert_array_equal(batch[key], other[key])


def test_train_batches_have_the_model_layout(config):
  for batch in _batches(input_pipeline.create_train_loader(config, seed=0), 5):
    assert set(batch) == {"image", "mask", "label"}
    assert batch["image"].shape == (4, 256, 256, 3) and batch["image"].dtype == np.uint8
    assert batch["mask"].shape == (4, 256, 256) and batch["mask"].dtype == np.uint8
    assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32
    assert set(np.unique(batch["mask"])) <= {0, 1} and set(batch["label"]) <= {0, 1}
    # A crop can cut the object out, never put one into an authentic image.
    assert not batch["mask"][batch["label"] == 0].any()


def test_train_loader_is_deterministic_for_a_seed(config):
  first = _batches(input_pipeline.create_train_loader(config, seed=3), 6)
  _assert_same(first, _batches(input_pipeline.create_train_loader(config, seed=3), 6))
  other = _batches(input_pipeline.create_train_loader(config, seed=4), 6)
  assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(first, other))


def test_restored_iterator_continues_with_the_next_unseen_batches(config):
  iterator = iter(input_pipeline.create_train_loader(config, seed=1))
  _batches(iterator, 5)  # past the first 16-record epoch: 5 x 4 records
  state = iterator.get_state()
  expected = _batches(iterator, 3)
  resumed = iter(input_pipeline.create_train_loader(config, seed=1))
  resumed.set_state(state)
  _assert_same(expected, _batches(resumed, 3))


def test_worker_processes_deliver_the_same_batches(config):
  expected = _batches(input_pipeline.create_train_loader(config, seed=2), 3)
  config.dataset.worker_count = 1
  _assert_same(expected, _batches(input_pipeline.create_train_loader(config, seed=2), 3))


def test_eval_loader_covers_every_example_once_unaugmented(config):
  batches = list(input_pipeline.create_eval_loader(config, "validation", batch_size=3))
  assert [len(batch["image"]) for batch in batches] == [3, 3, 2]
  records = tfds.data_source(TINY, split="validation", data_dir=config.dataset.data_dir)
  resize = input_pipeline.EvalResize(256)
  expected = [resize.map(record) for record in records]
  images = np.concatenate([batch["image"] for batch in batches])
  masks = np.concatenate([batch["mask"] for batch in batches])
  np.testing.assert_array_equal(images, np.stack([e["image"] for e in expected]))
  np.testing.assert_array_equal(masks, np.stack([e["mask"] for e in expected]))
  # The whole 128x128 mask scaled by 2: the manipulated area is kept, up to the edges.
  areas = [record["mask"].sum() * 4 for record in records]
  np.testing.assert_allclose(masks.sum((1, 2)), areas, rtol=0.1, atol=64)


def _coordinate_element(size=128):
  rows, cols = np.mgrid[0:size, 0:size]
  image = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
  mask = ((rows < 20) & (cols < 20)).astype(np.uint8)[..., None]
  return {"image": image, "mask": mask, "label": 1, "dataset_index": 0}


def test_training_crops_are_the_four_corners_and_the_centre():
  augment = input_pipeline.TrainAugmentation(
      crop_sizes=(96,), image_size=96, horizontal_flip=False, vertical_flip=False
  )
  corners = set()
  for seed in range(60):
    out = augment.random_map(_coordinate_element(), np.random.default_rng(seed))
    top, left = int(out["image"][0, 0, 0]), int(out["image"][0, 0, 1])
    np.testing.assert_array_equal(
        out["image"], _coordinate_element()["image"][top : top + 96, left : left + 96]
    )
    np.testing.assert_array_equal(
        out["mask"], _coordinate_element()["mask"][top : top + 96, left : left + 96, 0]
    )
    corners.add((top, left))
  assert corners == {(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)}


def test_flips_mirror_image_and_mask_together():
  augment = input_pipeline.TrainAugmentation(
      crop_sizes=(128,), image_size=128, horizontal_flip=True, vertical_flip=True
  )
  element = _coordinate_element()
  seen = set()
  for seed in range(40):
    out = augment.random_map(element, np.random.default_rng(seed))
    flip_rows, flip_cols = out["image"][0, 0, 0] == 127, out["image"][0, 0, 1] == 127
    expected = element["mask"][:: -1 if flip_rows else 1, :: -1 if flip_cols else 1, 0]
    np.testing.assert_array_equal(out["mask"], expected)
    seen.add((bool(flip_rows), bool(flip_cols)))
  assert len(seen) == 4


def test_mixture_shows_every_record_at_the_configured_weights():
  small = [{"name": "small", "index": i} for i in range(10)]
  large = [{"name": "large", "index": i} for i in range(300)]
  mixture = input_pipeline.MixtureDataSource([small, large], [0.75, 0.25])
  assert len(mixture) == 1200  # 300 / 0.25: every large record once, small ones 90 times
  records = [mixture[i] for i in range(len(mixture))]
  assert sum(r["dataset_index"] == 0 for r in records) == 900
  assert {(r["name"], r["index"]) for r in records} == {
      (r["name"], r["index"]) for r in small + large
  }
  # Shuffled as the train loader does, a few batches already come close to the weights.
  sampler = grain.samplers.IndexSampler(len(mixture), shuffle=True, num_epochs=None, seed=0)
  first = [mixture[sampler[i].record_key]["dataset_index"] for i in range(400)]
  assert np.mean(np.equal(first, 0)) == pytest.approx(0.75, abs=0.06)


def test_mixture_spec_and_crop_sizes_parse():
  dataset = input_pipeline.default_dataset_config()
  dataset.mixture = "synthetic_splice/default:3, nist16:1"
  assert input_pipeline.training_mixture(dataset) == [
      ("synthetic_splice/default", 3.0),
      ("nist16", 1.0),
  ]
  assert input_pipeline.crop_size_of(dataset, "nist16") == 1024
  assert input_pipeline.crop_size_of(dataset, "synthetic_splice/default") == dataset.crop_size
  dataset.mixture = "nist16"
  with pytest.raises(ValueError, match="name:value"):
    input_pipeline.training_mixture(dataset)


def test_ensure_dataset_built_builds_once_offline(tmp_path, config):
  config.dataset.data_dir = str(tmp_path)
  input_pipeline.ensure_dataset_built(config)
  built = tfds.builder(TINY, data_dir=tmp_path)
  assert built.is_prepared() and built.info.splits["train"].num_examples == 16
  files = sorted(tmp_path.rglob("*.array_record*"))
  stamps = [path.stat().st_mtime_ns for path in files]
  input_pipeline.ensure_dataset_built(config)
  assert [path.stat().st_mtime_ns for path in files] == stamps

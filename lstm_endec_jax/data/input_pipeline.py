"""Input pipeline: grain over `tfds.data_source` (array_record, no TensorFlow).

Training follows the paper (section 4.1.2): a crop at one of the 4 corners or the centre (1024 for
NIST'16, 512 for IEEE, `crop_size` here), resized to the model's 256x256, plus random flips;
evaluation resizes the whole image and does nothing else. Several datasets can be mixed by weight
(the authors' batches mixed NIST, synthetic and MFC images). Every random choice comes from grain's
per-record generator, so a loader is deterministic for its seed, and the iterator's
`get_state`/`set_state` resume a run at the next unseen batch.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from collections.abc import Sequence
from typing import Any

from absl import flags
from absl import logging
import grain
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from lstm_endec_jax.data import image_io
from lstm_endec_jax.runtime import files
from lstm_endec_jax.runtime.errors import UserError
import tfds_builders  # noqa: F401  (registers the project's TFDS builders)

# The paper's 5 training crops: corners and centre, as fractions of the free room (top, left).
CROP_POSITIONS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.5))


def default_data_dir() -> str:
  """`$TFDS_DATA_DIR` when set, else TFDS's own default `~/tensorflow_datasets`."""
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def default_dataset_config() -> ml_collections.ConfigDict:
  """The `config.dataset` section.

  Fields:
    name: TFDS name (with config) trained on when `mixture` is empty and evaluated on.
    data_dir: where TFDS datasets are built and read.
    manual_dir: where manual-download datasets lie; "" = `<data_dir>/downloads/manual`.
    train_split: split the training loader reads (eval splits are passed by the caller).
    mixture: training mixture "name:weight,name:weight" (e.g.
      "synthetic_splice/default:0.5,nist16:0.5"); "" = `name` alone. Weights are relative.
    crop_size: side of the training crops of `name` and of any dataset not in `crop_sizes`;
      320 of the 384x384 synthetic_splice images (resize factor 0.8, as the paper's 1024 -> 256
      crops downscale).
    crop_sizes: per-dataset crop sides "dataset:size,...", keyed by the name before any "/";
      the paper's 1024 for NIST'16 and 512 for IEEE IFS-TC.
    image_size: side of the model input every image and mask is resized to.
    horizontal_flip, vertical_flip: random flips (p = 0.5 each) in training.
    worker_count: grain worker processes doing the decoding and augmentation (0 = in-process).
      One keeps the pipeline well ahead of the CPU train step (benchmarks/input_pipeline.py);
      raise it on GPU hosts.
    worker_buffer_size: batches each worker prepares ahead.
    read_threads, read_prefetch: grain's record-reading threads and read-ahead buffer.
  There is no shuffle buffer: grain's IndexSampler draws a full random permutation of the records
  every epoch from the loader's `seed`.
  """
  config = ml_collections.ConfigDict()
  config.name = "synthetic_splice/default"
  config.data_dir = default_data_dir()
  config.manual_dir = ""
  config.train_split = "train"
  config.mixture = ""
  config.crop_size = 320
  config.crop_sizes = "nist16:1024,ieee_ifs_tc:512"
  config.image_size = 256
  config.horizontal_flip = True
  config.vertical_flip = False
  config.worker_count = 1
  config.worker_buffer_size = 2
  config.read_threads = 8
  config.read_prefetch = 64
  return config


def parse_pairs(spec: str, value_type: type) -> list[tuple[str, Any]]:
  """Parses "a:1,b:2" into [("a", 1), ("b", 2)]; raises naming the bad entry."""
  pairs = []
  for entry in filter(None, (part.strip() for part in spec.split(","))):
    name, sep, value = entry.rpartition(":")
    if not sep or not name:
      raise ValueError(f"expected 'name:value' in {spec!r}, got {entry!r}")
    pairs.append((name.strip(), value_type(value)))
  return pairs


def training_mixture(dataset_config: ml_collections.ConfigDict) -> list[tuple[str, float]]:
  """The (name, weight) pairs trained on."""
  mixture = parse_pairs(dataset_config.mixture, float) or [(dataset_config.name, 1.0)]
  if any(weight < 0 for _, weight in mixture) or sum(w for _, w in mixture) <= 0:
    raise ValueError(
        f"mixture weights must be >= 0 with a positive sum: {dataset_config.mixture!r}"
    )
  return mixture


def crop_size_of(dataset_config: ml_collections.ConfigDict, name: str) -> int:
  sizes = dict(parse_pairs(dataset_config.crop_sizes, int))
  return sizes.get(name.split("/")[0], dataset_config.crop_size)


def data_source(dataset_config: ml_collections.ConfigDict, name: str, split: str):
  """Random access to one split, decoded with PIL."""
  return tfds.data_source(name, split=split, data_dir=dataset_config.data_dir)


class MixtureDataSource(grain.sources.RandomAccessDataSource):
  """Datasets mixed by weight in one index space, each record tagged with its dataset.

  The length is the smallest that shows every record of every dataset at least once per epoch at
  the given proportions (smaller datasets repeat), so the proportions are exact over an epoch and
  no large dataset is cut short by a small one (as `MapDataset.mix` would).
  """

  def __init__(self, sources: Sequence[Any], weights: Sequence[float]):
    sizes = np.array([len(source) for source in sources])
    if np.any(sizes == 0):
      raise ValueError(f"empty dataset in mixture: sizes {sizes.tolist()}")
    shares = np.asarray(weights, np.float64) / np.sum(weights)
    used = shares > 0
    length = int(np.ceil(np.max(sizes[used] / shares[used])))
    counts = np.floor(shares * length).astype(np.int64)
    remainders = shares * length - counts
    counts[np.argsort(-remainders)[: length - counts.sum()]] += 1  # largest remainder
    self._sources = list(sources)
    self._shares = shares.round(6).tolist()
    self._dataset = np.repeat(np.arange(len(sources)), counts)
    self._record = np.concatenate([np.arange(count) % size for count, size in zip(counts, sizes)])

  def __len__(self) -> int:
    return len(self._dataset)

  def __getitem__(self, index: int) -> dict[str, Any]:
    dataset = int(self._dataset[index])
    record = dict(self._sources[dataset][int(self._record[index])])
    record["dataset_index"] = dataset
    return record

  def __repr__(self) -> str:
    # grain checks this on `set_state`: a checkpoint resumes only on the same mixture.
    return (
        f"MixtureDataSource(sources={self._sources!r}, shares={self._shares}, "
        f"length={len(self)})"
    )


def resize_pair(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
  """Image resized as `predict` resizes a photo (image_io.resize_image, Pillow's antialiased
  bilinear filter); the mask by the same filter, > 0.5."""
  if image.shape[:2] == (size, size):
    return image, mask
  soft = image_io.resize_image(mask * np.uint8(255), size, size)
  return image_io.resize_image(image, size, size), (soft >= 128).astype(np.uint8)


def model_inputs(image: np.ndarray, mask: np.ndarray, label: Any) -> dict[str, np.ndarray]:
  return {
      "image": np.ascontiguousarray(image, np.uint8),
      "mask": np.ascontiguousarray(mask, np.uint8),
      "label": np.int32(label),
  }


def binary_mask(record: dict[str, Any]) -> np.ndarray:
  return (np.asarray(record["mask"])[..., 0] > 0).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class TrainAugmentation(grain.transforms.RandomMap):
  """One of the paper's 5 crops (4 corners, centre), resized to `image_size`, random flips."""

  crop_sizes: tuple[int, ...]  # by `dataset_index`
  image_size: int
  horizontal_flip: bool
  vertical_flip: bool

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    image, mask = np.asarray(element["image"]), binary_mask(element)
    height, width = mask.shape
    crop = self.crop_sizes[element["dataset_index"]]
    crop_height, crop_width = min(crop, height), min(crop, width)
    top_fraction, left_fraction = CROP_POSITIONS[int(rng.integers(len(CROP_POSITIONS)))]
    top = int(round(top_fraction * (height - crop_height)))
    left = int(round(left_fraction * (width - crop_width)))
    window = (slice(top, top + crop_height), slice(left, left + crop_width))
    image, mask = resize_pair(image[window], mask[window], self.image_size)
    if self.horizontal_flip and rng.random() < 0.5:
      image, mask = image[:, ::-1], mask[:, ::-1]
    if self.vertical_flip and rng.random() < 0.5:
      image, mask = image[::-1], mask[::-1]
    return model_inputs(image, mask, element["label"])


@dataclasses.dataclass(frozen=True)
class EvalResize(grain.transforms.Map):
  """The whole image resized to `image_size`, no augmentation."""

  image_size: int

  def map(self, element: dict[str, Any]) -> dict[str, np.ndarray]:
    image, mask = resize_pair(np.asarray(element["image"]), binary_mask(element), self.image_size)
    return model_inputs(image, mask, element["label"])


def _loader(
    source: Any,
    sampler: grain.samplers.IndexSampler,
    operations: list[Any],
    dataset_config: ml_collections.ConfigDict,
    shard_options: grain.sharding.ShardOptions,
) -> grain.DataLoader:
  if dataset_config.worker_count and not flags.FLAGS.is_parsed():
    # grain's worker processes read absl flags; outside an absl app (tests, notebooks) take the
    # defaults, as grain's own notebook examples do.
    flags.FLAGS.mark_as_parsed()
  return grain.DataLoader(
      data_source=source,
      sampler=sampler,
      operations=operations,
      worker_count=dataset_config.worker_count,
      worker_buffer_size=dataset_config.worker_buffer_size,
      shard_options=shard_options,
      read_options=grain.ReadOptions(
          num_threads=dataset_config.read_threads, prefetch_buffer_size=dataset_config.read_prefetch
      ),
  )


def create_train_loader(config: ml_collections.ConfigDict, *, seed: int) -> grain.DataLoader:
  """Infinite, shuffled, augmented batches of `config.batch_size // jax.process_count()`.

  Each process reads its own shard of every epoch's permutation (record i goes to process
  i mod process_count), so the processes together see a global batch of `config.batch_size`.
  """
  dataset_config = config.dataset
  if config.batch_size % jax.process_count():
    raise ValueError(
        f"batch_size {config.batch_size} is not divisible by the "
        f"{jax.process_count()} processes"
    )
  mixture = training_mixture(dataset_config)
  source = MixtureDataSource(
      [data_source(dataset_config, name, dataset_config.train_split) for name, _ in mixture],
      [weight for _, weight in mixture],
  )
  logging.info("Training on %s: %d records per epoch", mixture, len(source))
  augmentation = TrainAugmentation(
      crop_sizes=tuple(crop_size_of(dataset_config, name) for name, _ in mixture),
      image_size=dataset_config.image_size,
      horizontal_flip=dataset_config.horizontal_flip,
      vertical_flip=dataset_config.vertical_flip,
  )
  sampler = grain.samplers.IndexSampler(len(source), shuffle=True, num_epochs=None, seed=seed)
  batch = grain.transforms.Batch(config.batch_size // jax.process_count(), drop_remainder=True)
  return _loader(
      source,
      sampler,
      [augmentation, batch],
      dataset_config,
      grain.sharding.ShardByJaxProcess(drop_remainder=True),
  )


def create_eval_loader(
    config: ml_collections.ConfigDict, split: str, *, batch_size: int
) -> grain.DataLoader:
  """One pass over `split` of `config.dataset.name` in order, `batch_size` per process.

  The last batch may be smaller. With several processes each reads every process_count-th record
  and the last `len % process_count` records are left out, so all processes run the same number of
  (collective) eval steps.
  """
  dataset_config = config.dataset
  source = data_source(dataset_config, dataset_config.name, split)
  sampler = grain.samplers.IndexSampler(len(source), shuffle=False, num_epochs=1)
  operations = [
      EvalResize(dataset_config.image_size),
      grain.transforms.Batch(batch_size, drop_remainder=False),
  ]
  return _loader(
      source,
      sampler,
      operations,
      dataset_config,
      grain.sharding.ShardByJaxProcess(drop_remainder=False),
  )


class DatasetWriteError(UserError, RuntimeError):
  """A dataset could not be written to its data directory (full, read-only, size limit)."""


def build_dataset(name: str, *, data_dir: str, manual_dir: str = "", force: bool = False) -> bool:
  """Builds the TFDS dataset `name` into `data_dir` unless it is there; True when it built now.

  `force` deletes an existing build first (e.g. to rebuild from another manual directory). What
  a killed build left behind (TFDS's `incomplete.*` folders) is removed, with a warning.
  """
  builder = tfds.builder(name, data_dir=data_dir)
  version_dir = pathlib.Path(builder.data_dir)
  if force and version_dir.is_dir():
    logging.warning("Deleting the existing build of %s in %s to rebuild it.", name, version_dir)
    shutil.rmtree(version_dir)
    builder = tfds.builder(name, data_dir=data_dir)
  if builder.is_prepared():
    return False
  for leftover in version_dir.parent.glob(f"incomplete.*_{version_dir.name}"):
    logging.warning("Removing %s, left by a build that did not finish.", leftover)
    shutil.rmtree(leftover, ignore_errors=True)
  logging.info("Building %s into %s", name, data_dir)
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir or None, try_download_gcs=False
        )
    )
  except (OSError, RuntimeError) as error:
    reason = files.write_failure(error)
    if reason is None:
      raise
    raise DatasetWriteError(
        f"Cannot build {name} in {data_dir}: {reason} ({str(error).splitlines()[0]}). Free space "
        "or choose a writable data directory (--data_dir, config.dataset.data_dir), then run the "
        "same command again; the unfinished build is removed."
    ) from None
  return True


def ensure_dataset_built(config: ml_collections.ConfigDict) -> None:
  """Builds every dataset the config reads that is not in `data_dir` yet, with no network.

  `synthetic_splice` builds offline from scikit-image's photographs; manual-download datasets read
  `manual_dir` and fail with their layout instructions when it is missing.
  """
  dataset_config = config.dataset
  mixture_names = [name for name, _ in training_mixture(dataset_config)]
  for name in dict.fromkeys([dataset_config.name] + mixture_names):
    build_dataset(name, data_dir=dataset_config.data_dir, manual_dir=dataset_config.manual_dir)

"""TFDS builder `synthetic_splice`: splicing, copy-move and removal forgeries made by `splicing.py`.

Configs (examples = pristine crops x (splices_per_pristine + 1 authentic)):
  tiny     scikit-image and sporco photographs, 128x128, 16 / 8 / 8 / 8 / 8 examples: for tests.
  default  the many-scene photographs of `photos.py` (scikit-image, mvtb-data, sporco), 384x384,
           3500 / 280 / 700 / 700 / 350 examples: the CPU training set (the README gives its size
           and build time).
  large    the same photographs, 70000 / 2100 / 7000 / 7000 / 3500 examples: GPU-scale, the size
           of the paper's ~65k set.
  manual   the paper's recipe at full size: 1024x1024 corner crops of the pristine photographs in
           `<manual_dir>/pristine/` (DRESDEN, NIST pristine...) with MS-COCO objects as donors.
  Crops are made in parallel processes (up to 8) when there are 64 or more per split; the result
  does not depend on the process count.

Splits of the offline configs (photographs disjoint by scene, `photos.SCENES`):
  train, validation, test    the training scenes / unseen scenes, forgeries by the `train` recipe
                             (every implementation of `implementations.py` but the held-out ones);
  test_heldout_generator     the test scenes, forgeries made only by the held-out implementation
                             of each step (`implementations.HELD_OUT`): transfer to another tool;
  test_cross_source          the `train` recipe on a photo source training never sees (sporco).

Stored images are square crops larger than the model input (256): the input pipeline takes the
paper's training crops (4 corners + centre, `crop_size` 320 of 384 by default) and resizes them to
256, and resizes the whole image for evaluation. Native crops are never resized when generated; a
share of groups (`downscale_prob`) is made on a larger window and downscaled as a whole.
The manual source splits its pristine photographs and COCO images 70 / 5 / 25 (seeded).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
import pathlib
from collections.abc import Iterator, Sequence
from concurrent import futures

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from tfds_builders import schema
from tfds_builders import manual
from tfds_builders.synthetic_splice import photos
from tfds_builders.synthetic_splice import splicing

SPLITS = ("train", "validation", "test", "test_heldout_generator", "test_cross_source")
MANUAL_SPLITS = SPLITS[:3]
# Which scenes (`photos.SCENE_SPLITS`) and which recipe each offline split is made of.
PHOTO_SPLIT = {
    "train": "train",
    "validation": "validation",
    "test": "test",
    "test_heldout_generator": "test",
    "test_cross_source": "test_cross_source",
}
RECIPE = {split: "train" for split in SPLITS} | {"test_heldout_generator": "heldout"}
PARALLEL_MIN_GROUPS = 64  # fewer pristine crops are made in-process (worker start-up costs more)
MAX_PROCESSES = 8


@dataclasses.dataclass
class SyntheticSpliceConfig(tfds.core.BuilderConfig):
  """Size and randomisation of one variant of the dataset.

  Attributes:
    source: "photos" (offline, the pip-installed photographs of `photos.py`) or "manual"
      (pristine folder plus COCO donors in the manual dir).
    photo_sources: the `photos.SOURCES` an offline config reads.
    image_size: side of the stored square pristine crop.
    num_pristine: pristine crops per split (in `SPLITS` order); for the manual source the most
      pristine photographs used per split (train, validation, test; 4 corner crops each), 0 = all.
    splices_per_pristine: forgeries made from each pristine crop (paper: six).
    include_authentic: also emit each pristine crop as an authentic example (not in the paper).
    copy_move_prob: share of forgeries that paste one object twice (HLED's release: ~27K of 125K).
    removal_prob: share of forgeries that remove a region by inpainting (paper: the third
      manipulation type; HLED generates none). The rest are splices.
    copy_move_from_background: cut the copy-move object from the background itself (true
      copy-move) instead of the paper's duplicated donor object.
    min_object_area: smallest COCO instance area in pixels (manual source).
    seed: the dataset's seed; one seed, one dataset.
  """

  source: str = "photos"
  photo_sources: tuple[str, ...] = ("skimage", "mvtb", "sporco")
  image_size: int = 384
  num_pristine: tuple[int, ...] = (500, 40, 100, 100, 50)
  splices_per_pristine: int = 6
  include_authentic: bool = True
  copy_move_prob: float = 0.2
  removal_prob: float = 0.2
  copy_move_from_background: bool = True
  min_object_area: int = 1024
  seed: int = 0

  def options(self, split: str) -> splicing.SpliceOptions:
    """The generator options of an offline split: its recipe, plus the variety of ours."""
    return splicing.SpliceOptions(
        recipe=RECIPE[split],
        colour_transfer_prob=0.5,
        jpeg_quality=(50, 99),
        filter_prob=0.3,
        downscale_prob=0.3,
    )


MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Only the `manual` config reads the manual dir (the other configs build offline). Layout:

  <manual_dir>/pristine/**/*.{jpg,png,tif}   pristine photographs, e.g. DRESDEN
      (https://dde.binghamton.edu/dresden/) and NIST'16 pristine images; photographs smaller than
      the crop size are skipped.
  <manual_dir>/coco/annotations/instances_<set>.json   MS-COCO instance annotations
      (https://cocodataset.org/#download, e.g. annotations_trainval2017.zip)
  <manual_dir>/coco/<set>/*.jpg                         the images of that set, e.g. train2017/
"""


def split_assignment(names: Sequence[str], seed: int) -> dict[str, list[str]]:
  """The paper's seeded 70 / 5 / 25 split of sorted names (shared with the manual builders)."""
  names = sorted(names)
  splits = manual.group_split(names, seed=seed)
  return {split: [name for name, s in zip(names, splits) if s == split] for split in MANUAL_SPLITS}


def to_example(forgery: splicing.Forgery, file_name: str) -> dict:
  height, width = forgery.mask.shape
  manipulated = forgery.manipulation_type != "none"
  return {
      "image": manual.encode_png(forgery.image),
      "mask": manual.encode_png(forgery.mask),
      "label": int(manipulated),
      "manipulation_type": forgery.manipulation_type,
      "original_size": np.array([height, width], np.int32),
      "file_name": file_name,
      "parameters": json.dumps(forgery.parameters, sort_keys=True),
  }


@functools.lru_cache(maxsize=None)
def _photos(photo_split: str, sources: tuple[str, ...]) -> dict:
  """The photographs of one `photos.SCENE_SPLITS` split from `sources` (once per process: the
  two test splits share theirs)."""
  return photos.load_split(photo_split, sources)


def photo_group(
    config: SyntheticSpliceConfig, split: str, group_index: int
) -> list[tuple[str, dict]]:
  """The examples of one pristine crop: a function of its arguments only, so any process can make
  any group and the dataset does not depend on how many processes built it."""
  rng = np.random.default_rng([config.seed, SPLITS.index(split), group_index])
  group = splicing.generate_group(
      _photos(PHOTO_SPLIT[split], config.photo_sources),
      rng,
      size=config.image_size,
      splices_per_pristine=config.splices_per_pristine,
      include_authentic=config.include_authentic,
      copy_move_prob=config.copy_move_prob,
      removal_prob=config.removal_prob,
      options=config.options(split),
      copy_move_from_background=config.copy_move_from_background,
  )
  keys = [f"{split}_{group_index:06d}_{k}" for k in range(len(group))]
  return [(key, to_example(forgery, key)) for key, forgery in zip(keys, group)]


class CocoDonors:
  """MS-COCO instances (non-crowd, area >= `min_area`) of some images, cut with their masks."""

  def __init__(self, coco_dir: pathlib.Path, split: str, *, seed: int, min_area: int):
    from pycocotools import coco as coco_lib  # pylint: disable=g-import-not-at-top

    annotation_files = sorted((coco_dir / "annotations").glob("instances_*.json"))
    if not annotation_files:
      raise manual.ManualDirError(
          f"synthetic_splice/manual: no {coco_dir}/annotations/"
          f"instances_*.json\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    self._instances = []  # (COCO api, image folder, annotation)
    for path in annotation_files:
      api = coco_lib.COCO(str(path))
      image_dir = coco_dir / path.stem.removeprefix("instances_")
      image_ids = split_assignment([str(i) for i in api.getImgIds()], seed)[split]
      annotation_ids = api.getAnnIds(imgIds=[int(i) for i in image_ids], iscrowd=False)
      self._instances += [
          (api, image_dir, annotation)
          for annotation in api.loadAnns(annotation_ids)
          if annotation["area"] >= min_area
      ]
    if not self._instances:
      raise ValueError(
          f"synthetic_splice/manual: no COCO instance of area >= {min_area} in the "
          f"{split} images of {coco_dir}"
      )
    self.skipped: list[str] = []

  def sample(self, rng: np.random.Generator, max_tries: int = 20) -> splicing.DonorObject:
    """A random instance, cut to its box; unreadable images are skipped and listed."""
    for _ in range(max_tries):
      api, image_dir, annotation = self._instances[int(rng.integers(len(self._instances)))]
      info = api.loadImgs(annotation["image_id"])[0]
      path = image_dir / info["file_name"]
      try:
        photo = photos.load_photo(path)
      except OSError as error:
        logging.warning("synthetic_splice: skipping donor: %s", error)
        self.skipped.append(str(path))
        continue
      mask = api.annToMask(annotation).astype(bool)
      if mask.shape != photo.shape[:2]:
        logging.warning(
            "synthetic_splice: skipping donor %s: annotation size %s != image size %s",
            path,
            mask.shape,
            photo.shape[:2],
        )
        self.skipped.append(str(path))
        continue
      rows, cols = np.nonzero(mask)
      if rows.size == 0:
        continue
      top, left = rows.min(), cols.min()
      height, width = rows.max() - top + 1, cols.max() - left + 1
      window = (slice(top, top + height), slice(left, left + width))
      return splicing.DonorObject(
          rgb=photo[window].copy(),
          alpha=mask[window].astype(np.float32),
          source=f"{path.name}#{annotation['id']}",
          box=(int(top), int(left), int(height), int(width)),
          shape="coco",
      )
    raise ValueError(f"synthetic_splice/manual: no readable COCO donor after {max_tries} tries")


class Builder(tfds.core.GeneratorBasedBuilder):
  """Synthetic splicing / copy-move forgeries with exact masks (1 = manipulated)."""

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release.",
      "1.1.0": "Removal forgeries (removal_prob of the forgeries) in every config.",
      "2.0.0": "Offline configs: many-scene photographs (scikit-image, mvtb-data, sporco) split by "
      "scene; several implementations per generator step; test_heldout_generator and "
      "test_cross_source splits.",
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      SyntheticSpliceConfig(
          name="tiny",
          photo_sources=("skimage", "sporco"),
          image_size=128,
          num_pristine=(4, 2, 2, 2, 2),
          splices_per_pristine=3,
          description="For tests: 16 / 8 / 8 / 8 / 8 examples.",
      ),
      SyntheticSpliceConfig(
          name="default", description="CPU training set: 3500 / 280 / 700 / 700 / 350."
      ),
      SyntheticSpliceConfig(
          name="large",
          num_pristine=(10000, 300, 1000, 1000, 500),
          description="GPU-scale: 70000 / 2100 / 7000 / 7000 / 3500.",
      ),
      SyntheticSpliceConfig(
          name="manual",
          source="manual",
          image_size=1024,
          num_pristine=(0, 0, 0),
          description="Paper recipe: pristine corner crops + MS-COCO objects.",
      ),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def __init__(self, **kwargs):
    kwargs.setdefault("file_format", "array_record")  # random access with tfds.data_source, no TF
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=schema.forgery_features(
            parameters=tfds.features.Text(doc="JSON of the manipulation parameters")
        ),
        homepage="https://github.com/jawadbappy/forgery_localization_HLED",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    if config.source == "photos":
      return {split: self._generate_examples(split) for split in SPLITS}
    if config.source == "manual":
      manual_dir = pathlib.Path(dl_manager.manual_dir)
      pristine_dir, coco_dir = manual_dir / "pristine", manual_dir / "coco"
      for folder in (pristine_dir, coco_dir):
        if not folder.is_dir():
          raise manual.ManualDirError(
              f"synthetic_splice/manual: missing {folder}\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
          )
      photos = [str(path) for path in manual.image_files(pristine_dir, recursive=True)]
      if not photos:
        raise manual.ManualDirError(
            f"synthetic_splice/manual: no photographs in {pristine_dir}\n"
            f"{MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
      by_split = split_assignment(photos, config.seed)
      return {
          split: self._generate_examples(split, by_split[split], coco_dir)
          for split in MANUAL_SPLITS
      }
    raise ValueError(f"synthetic_splice: unknown source {config.source!r}")

  def _generate_examples(
      self, split: str, photo_paths: Sequence[str] = (), coco_dir: pathlib.Path | None = None
  ) -> Iterator[tuple[str, dict]]:
    if self.builder_config.source == "manual":
      yield from self._generate_manual(split, photo_paths, coco_dir)
    else:
      yield from self._generate_photos(split)

  def _generate_photos(self, split: str) -> Iterator[tuple[str, dict]]:
    make_group = functools.partial(photo_group, self.builder_config, split)
    groups = range(self.builder_config.num_pristine[SPLITS.index(split)])
    processes = min(os.cpu_count() or 1, MAX_PROCESSES)
    if len(groups) < PARALLEL_MIN_GROUPS or processes == 1:
      for examples in map(make_group, groups):
        yield from examples
      return
    # "spawn": the parent may have started JAX's threads, which a fork would copy half-way.
    # A worker that dies raises BrokenProcessPool here instead of being restarted forever.
    with futures.ProcessPoolExecutor(
        processes, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
      for examples in pool.map(make_group, groups, chunksize=4):
        yield from examples

  def _generate_manual(
      self, split: str, photo_paths: Sequence[str], coco_dir: pathlib.Path
  ) -> Iterator[tuple[str, dict]]:
    config = self.builder_config
    split_index = SPLITS.index(split)
    donors = CocoDonors(coco_dir, split, seed=config.seed, min_area=config.min_object_area)
    limit = config.num_pristine[split_index] or len(photo_paths)
    skipped = []
    for photo_index, path in enumerate(photo_paths[:limit]):
      try:
        photo = photos.load_photo(pathlib.Path(path))
      except OSError as error:
        logging.warning("synthetic_splice: skipping pristine photograph: %s", error)
        skipped.append(path)
        continue
      crops = splicing.corner_crops(photo, config.image_size)
      if not crops:
        logging.warning("synthetic_splice: skipping %s: smaller than %d", path, config.image_size)
        skipped.append(path)
      for corner_index, (corner, background) in enumerate(crops):
        rng = np.random.default_rng([config.seed, split_index, photo_index, corner_index])
        group = [splicing.authentic(background)] if config.include_authentic else []
        for _ in range(config.splices_per_pristine):
          group.append(self._manual_forgery(background, donors, rng))
        for k, forgery in enumerate(group):
          forgery.parameters.update(background=pathlib.Path(path).name, corner=corner)
          key = f"{split}_{photo_index:06d}_{corner}_{k}"
          yield key, to_example(forgery, f"{pathlib.Path(path).name}:{corner}:{k}")
    skipped += donors.skipped
    logging.info("synthetic_splice/%s: %d files skipped: %s", split, len(skipped), skipped)

  def _manual_forgery(
      self, background: np.ndarray, donors: CocoDonors, rng: np.random.Generator
  ) -> splicing.Forgery:
    """A COCO object pasted once, a copy-move as configured, or a removal, by their shares."""
    config = self.builder_config
    draw = rng.random()
    if draw < config.copy_move_prob:
      if config.copy_move_from_background:
        return splicing.copy_move(background, rng)
      obj = donors.sample(rng)
      return splicing.copy_move(background, rng, obj=obj)
    if draw < config.copy_move_prob + config.removal_prob:
      return splicing.removal(background, rng)
    return splicing.splice_object(background, donors.sample(rng), rng)

"""Shared machinery of the manual-download forgery builders.

Each dataset builder only says how its files are named and paired (`_list_candidates`) and, where
the dataset has one, which official split a file belongs to. Everything else lives here so that all
datasets behave the same way:

* images and masks are read with Pillow (8/16-bit, grey, palette, RGBA, CMYK, TIFF, BMP);
* masks are binarised by a per-dataset rule and always emitted as 1 = manipulated;
* a bad file (unreadable image or mask, missing mask, mask of another size) is skipped, logged with
  its file name, counted, and stored in `builder.info.metadata["skipped_files"]`; it never stops the
  build and never gets paired with the wrong mask;
* without an official split, a seeded 70 / 5 / 25 split (the paper's) keeps every group of near
  duplicates in one split;
* the manual directory holds either just this dataset or several, each in `<name>[/<config>]/`;
* a missing or empty manual directory raises `ManualDirError` naming the dataset, the layout and the
  instructions.
"""

import abc
import collections
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
import dataclasses
import io
import pathlib
from typing import Any

from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from lstm_endec_jax.data import image_io
from tfds_builders import schema

SPLIT_FRACTIONS = (("train", 0.70), ("validation", 0.05), ("test", 0.25))
DEFAULT_SPLIT_SEED = 0

Binarizer = Callable[[np.ndarray], np.ndarray]
READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class ManualDirError(FileNotFoundError):
  """The manual directory is missing, empty, or does not have the expected layout."""


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One image found in the manual directory, before any pixel is read.

  `mask` is None for authentic images (they get an all-zero mask). `group` names the near-duplicate
  family: every candidate of a group lands in the same split.
  """

  image: pathlib.Path
  mask: pathlib.Path | None
  binarize: Binarizer | None
  manipulation_type: str
  group: str


@dataclasses.dataclass(frozen=True)
class Skipped:
  """A file left out of the dataset, with the reason, for the build log and the metadata."""

  file_name: str
  reason: str


# --- reading --------------------------------------------------------------------------------------


def image_size(path: pathlib.Path) -> tuple[int, int]:
  """(height, width) from the file header, without decoding the pixels."""
  with Image.open(path) as image:
    return image.height, image.width


def gray_array(rgb: np.ndarray) -> np.ndarray:
  """Luma of uint8 RGB mask pixels, as Pillow's "L" conversion computes it."""
  return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint8)


# --- mask conventions (uint8 RGB mask pixels -> bool array, True = manipulated) -------------------


def dark_is_manipulated(mask: np.ndarray) -> np.ndarray:
  """NIST NC2016 and the HLED synthetic sets: black (0) marks the manipulated pixels."""
  return gray_array(mask) < 128


def bright_above(threshold: int) -> Binarizer:
  """Masks where manipulated pixels are brighter than `threshold` (white or any non-zero value)."""

  def binarize(mask: np.ndarray) -> np.ndarray:
    return gray_array(mask) > threshold

  return binarize


def dark_unless_majority(mask: np.ndarray) -> np.ndarray:
  """IEEE IFS-TC: dark marks the tampered part, but some masks are inverted.

  A forgery covers less than half of its image, so a "tampered" part larger than half is taken to
  be the inverted background and flipped.
  """
  dark = gray_array(mask) < 128
  return ~dark if dark.mean() > 0.5 else dark


def green_dominant(mask: np.ndarray) -> np.ndarray:
  """Columbia: the colour JPEG edge mask paints the spliced camera's region green.

  Red (200,0,0)/(255,0,0) is the host camera, green (0,200,0)/(0,255,0) the spliced one; JPEG blurs
  the colours, so a pixel is spliced when green dominates red and blue and is not near black.
  """
  rgb = mask.astype(np.int16)
  red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  return (green > red) & (green > blue) & (green >= 64)


# --- splits ---------------------------------------------------------------------------------------


def group_split(
    groups: Sequence[str],
    *,
    seed: int = DEFAULT_SPLIT_SEED,
    fractions: Sequence[tuple[str, float]] = SPLIT_FRACTIONS,
) -> list[str]:
  """Assigns a split name to each item so that items of one group share a split.

  Groups are shuffled with `seed` and handed out in that order until each split holds its fraction
  of the items, so the proportions are met up to one group.
  """
  sizes = collections.Counter(groups)
  order = sorted(sizes)
  np.random.default_rng(seed).shuffle(order)
  bounds = np.cumsum([fraction for _, fraction in fractions]) * len(groups)
  split_of_group, filled, index = {}, 0, 0
  for group in order:
    while index < len(fractions) - 1 and filled >= bounds[index] - 1e-9:
      index += 1
    split_of_group[group] = fractions[index][0]
    filled += sizes[group]
  return [split_of_group[group] for group in groups]


class UnionFind:
  """Connected components of file names that are near duplicates of each other."""

  def __init__(self):
    self._parent: dict[str, str] = {}

  def find(self, item: str) -> str:
    self._parent.setdefault(item, item)
    while self._parent[item] != item:
      self._parent[item] = self._parent[self._parent[item]]
      item = self._parent[item]
    return item

  def union(self, items: Iterable[str]) -> None:
    roots = sorted({self.find(item) for item in items})
    for root in roots[1:]:
      self._parent[root] = roots[0]


# --- files ----------------------------------------------------------------------------------------


def is_image_file(path: pathlib.Path) -> bool:
  return (
      path.is_file()
      and path.suffix.lower() in image_io.IMAGE_EXTENSIONS
      and not path.name.startswith(".")
  )


def image_files(directory: pathlib.Path, *, recursive: bool = False) -> list[pathlib.Path]:
  """Image files of a folder in a stable order (Thumbs.db, hidden and text files ignored)."""
  paths = directory.rglob("*") if recursive else directory.iterdir()
  return sorted(path for path in paths if is_image_file(path))


def find_dir(root: pathlib.Path, name: str, *, max_depth: int = 3) -> pathlib.Path | None:
  """The shallowest folder called `name` (case-insensitive) under `root`, `root` included.

  Archives unpack with or without an extra top folder (`4cam_auth/4cam_auth/...`), so builders look
  for their marker folders instead of demanding one exact nesting; the deepest of a chain of
  same-named folders is taken.
  """
  frontier = [root]
  for _ in range(max_depth + 1):
    for folder in frontier:
      if folder.name.lower() == name.lower():
        while (nested := folder / folder.name).is_dir():
          folder = nested
        return folder
    frontier = sorted(child for folder in frontier for child in folder.iterdir() if child.is_dir())
  return None


def encode_png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()


def relative_name(path: pathlib.Path, root: pathlib.Path) -> str:
  """`path` relative to `root`, or its absolute path when outside it (a list may point anywhere)."""
  for child, parent in ((path, root), (path.resolve(), root.resolve())):
    if child.is_relative_to(parent):
      return child.relative_to(parent).as_posix()
  return path.as_posix()


# --- builder --------------------------------------------------------------------------------------


class ManualForgeryBuilder(tfds.core.GeneratorBasedBuilder, abc.ABC):
  """Base of every manual-download builder: subclasses list candidates, this class does the rest."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  SPLIT_SEED = DEFAULT_SPLIT_SEED

  def __init__(self, *, file_format: str | None = "array_record", **kwargs: Any):
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(self.__doc__ or "").strip(),
        features=schema.forgery_features(),
        metadata=tfds.core.MetadataDict(),
    )

  @abc.abstractmethod
  def _list_candidates(self, manual_dir: pathlib.Path) -> list[Candidate]:
    """Pairs images with masks; reports unpairable files with `self._skip`."""

  def _official_split(self, candidate: Candidate) -> str | None:
    """The dataset's own split for a candidate; None (the default) means a seeded 70/5/25 split."""
    del candidate
    return None

  # The build log: every skipped file, with its reason.
  def _skip(self, file_name: str, reason: str) -> None:
    logging.warning("%s: skipping %s: %s", self.name, file_name, reason)
    self._skipped.append(Skipped(file_name, reason))

  def _checked_manual_dir(self, dl_manager: tfds.download.DownloadManager) -> pathlib.Path:
    """The dataset's folder: `<manual_dir>/<name>[/<config>]` when present, else `<manual_dir>`.

    One manual directory can so hold every dataset (as the input pipeline passes it), while a
    directory holding just this dataset works too.
    """
    try:
      manual_dir = pathlib.Path(dl_manager.manual_dir)
    except AssertionError as error:  # "Manual directory <path> does not exist or is empty. ..."
      raise ManualDirError(self._error_text(str(error).split(". ")[0])) from None
    own = manual_dir / self.name
    if self.builder_config is not None and (own / self.builder_config.name).is_dir():
      own = own / self.builder_config.name
    return own if own.is_dir() else manual_dir

  def layout_error(self, manual_dir: pathlib.Path, problem: str) -> ManualDirError:
    """The error for a manual directory that exists but lacks the expected files."""
    return ManualDirError(self._error_text(f"{problem} under the manual directory {manual_dir}"))

  def _error_text(self, problem: str) -> str:
    return (
        f"{self.name}: {problem}. This dataset cannot be downloaded automatically: download it "
        "by hand, lay it out as below and pass the folder as the manual directory "
        "(`--manual_dir` of `python -m lstm_endec_jax.build_dataset`, "
        "`--config.dataset.manual_dir` of training), either "
        f"directly or as its subfolder `{self.name}/` (`{self.name}/<config>/` for a config)."
        f"\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )

  def _download_and_prepare(self, dl_manager, download_config):
    self._skipped: list[Skipped] = []
    super()._download_and_prepare(dl_manager=dl_manager, download_config=download_config)
    self.info.metadata["skipped_files"] = [dataclasses.asdict(skip) for skip in self._skipped]
    if self._skipped:
      logging.warning(
          "%s: skipped %d file(s):\n%s",
          self.name,
          len(self._skipped),
          "\n".join(f"  {skip.file_name}: {skip.reason}" for skip in self._skipped),
      )
    else:
      logging.info("%s: no file skipped.", self.name)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> Mapping[str, Iterator]:
    manual_dir = self._checked_manual_dir(dl_manager)
    candidates = self._list_candidates(manual_dir)
    if not candidates:
      raise self.layout_error(manual_dir, "no image of the expected names was found")
    # Bad files are dropped before splitting, so that no split is left with nothing to write.
    candidates = [candidate for candidate in candidates if self._usable(manual_dir, candidate)]
    official = [self._official_split(candidate) for candidate in candidates]
    if all(split is None for split in official):
      official = group_split([candidate.group for candidate in candidates], seed=self.SPLIT_SEED)
    by_split = collections.defaultdict(list)
    for candidate, split in zip(candidates, official):
      by_split[split].append(candidate)
    return {
        split: self._generate_examples(manual_dir, members)
        for split, members in sorted(by_split.items())
    }

  def _usable(self, manual_dir: pathlib.Path, candidate: Candidate) -> bool:
    """Checks from the file headers that image and mask open and have the same size."""
    file_name = relative_name(candidate.image, manual_dir)
    sizes = {}
    for role, path in (("image", candidate.image), ("mask", candidate.mask)):
      if path is not None:
        try:
          sizes[role] = image_size(path)
        except READ_ERRORS as error:
          self._skip(file_name, f"unreadable {role} {relative_name(path, manual_dir)} ({error})")
          return False
    if len(set(sizes.values())) > 1:
      (height, width), (mask_height, mask_width) = sizes["image"], sizes["mask"]
      self._skip(
          file_name,
          f"mask {relative_name(candidate.mask, manual_dir)} is "
          f"{mask_height}x{mask_width}, image is {height}x{width}",
      )
      return False
    return True

  def _generate_examples(self, manual_dir: pathlib.Path, candidates: list[Candidate]):
    for candidate in candidates:
      example = self._load(manual_dir, candidate)
      if example is not None:
        yield example["file_name"], example

  def _load(self, manual_dir: pathlib.Path, candidate: Candidate) -> dict[str, Any] | None:
    """Decodes one image and its mask; None (and a log line) when a file is truncated."""
    file_name = relative_name(candidate.image, manual_dir)
    # Decoded as `predict` decodes a user's photo (image_io, upright); the mask is drawn on the
    # image's stored pixel grid, so it is turned with the image's EXIF orientation.
    try:
      image = image_io.read_image(candidate.image)
      mask_pixels = (
          None
          if candidate.mask is None
          else image_io.read_image(
              candidate.mask, orientation=image_io.exif_orientation(candidate.image)
          )
      )
    except (image_io.ImageReadError, *READ_ERRORS) as error:
      self._skip(file_name, f"image or mask fails to decode ({error})")
      return None
    height, width = image.shape[:2]
    if mask_pixels is None:
      mask = np.zeros((height, width), dtype=np.uint8)
    else:
      mask = candidate.binarize(mask_pixels).astype(np.uint8)
    return {
        "image": encode_png(image),
        "mask": encode_png(mask),
        "label": "authentic" if candidate.mask is None else "manipulated",
        "manipulation_type": candidate.manipulation_type,
        "original_size": np.array([height, width], dtype=np.int32),
        "file_name": file_name,
    }
